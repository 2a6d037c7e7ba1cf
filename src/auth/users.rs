//! The user store: typed ids and roles, and every SQL statement on `users`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::DbError;
pub use crate::model::{Role, User, UserId};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("no user named {0:?}")]
    NotFound(String),
    #[error(
        "a username is 1 to 64 characters: letters, digits, '.', '-', '_' or '@', starting with a letter or digit"
    )]
    InvalidName,
    #[error("{0:?} is the last enabled admin; make another admin first")]
    LastAdmin(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for UserError {
    fn from(e: rusqlite::Error) -> Self {
        UserError::Db(DbError::from(e))
    }
}

/// Usernames appear in URLs, logs and CSV files: keep them plain.
pub fn validate_username(name: &str) -> Result<(), UserError> {
    if crate::model::names::is_plain_name(name) {
        Ok(())
    } else {
        Err(UserError::InvalidName)
    }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: Option<&'a str>,
    pub role: Role,
    pub password_hash: &'a str,
}

const USER_COLUMNS: &str =
    "id, username, display_name, role, disabled, created_at, email, time_zone";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(3)?;
    Ok(User {
        id: UserId(row.get(0)?),
        username: row.get(1)?,
        display_name: row.get(2)?,
        role: role.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
        })?,
        disabled: row.get(4)?,
        created_at: row.get(5)?,
        email: row.get(6)?,
        time_zone: row.get(7)?,
    })
}

pub fn insert(conn: &Connection, new: &NewUser<'_>, now: i64) -> Result<UserId, UserError> {
    insert_row(
        conn,
        new.username,
        new.display_name,
        new.role,
        Some(new.password_hash),
        now,
    )
}

/// A person without a password, who chooses one through a one-time setup
/// link (`auth::invites`); until then they cannot sign in.
pub fn insert_without_password(
    conn: &Connection,
    username: &str,
    role: Role,
    now: i64,
) -> Result<UserId, UserError> {
    insert_row(conn, username, None, role, None, now)
}

fn insert_row(
    conn: &Connection,
    username: &str,
    display_name: Option<&str>,
    role: Role,
    password_hash: Option<&str>,
    now: i64,
) -> Result<UserId, UserError> {
    validate_username(username)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO users (username, display_name, role, password_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    match insert.execute(params![
        username,
        display_name,
        role.as_str(),
        password_hash,
        now
    ]) {
        Ok(_) => Ok(UserId(conn.last_insert_rowid())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(UserError::Exists(username.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The people who have no password yet (created from an identity, waiting
/// for their setup link).
pub fn without_password(conn: &Connection) -> Result<Vec<UserId>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM users WHERE kind = 'person' AND password_hash IS NULL ORDER BY id",
    )?;
    let ids = stmt
        .query_map([], |row| Ok(UserId(row.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// A username proposed for `value` (an email's local part, or an end
/// user's name) that [`validate_username`] accepts: other characters
/// become `-`, runs of them one, and it starts with a letter or digit.
/// `member` when nothing usable is left.
pub fn suggested_username(value: &str) -> String {
    let local = value.split('@').next().unwrap_or(value);
    let mut name = String::with_capacity(local.len());
    for c in local.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        let starting = !name
            .chars()
            .next()
            .is_some_and(|f: char| f.is_ascii_alphanumeric());
        if starting && !c.is_ascii_alphanumeric() {
            continue;
        }
        if c == '-' && name.ends_with('-') {
            continue;
        }
        name.push(c);
    }
    let name: String = name.chars().take(64).collect();
    let name = name.trim_end_matches(['-', '.', '_']).to_owned();
    if validate_username(&name).is_ok() {
        name
    } else {
        "member".to_owned()
    }
}

pub fn by_id(conn: &Connection, id: UserId) -> Result<Option<User>, DbError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?;
    Ok(stmt.query_row([id.0], user_from_row).optional()?)
}

pub fn by_name(conn: &Connection, username: &str) -> Result<Option<User>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
    ))?;
    Ok(stmt.query_row([username], user_from_row).optional()?)
}

/// The user and their password hash, for a login attempt.
pub fn credentials(
    conn: &Connection,
    username: &str,
) -> Result<Option<(User, Option<String>)>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"
    ))?;
    Ok(stmt
        .query_row([username], |row| Ok((user_from_row(row)?, row.get(8)?)))
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<User>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        // Holders of unassigned identities (`usage::identities`) are not people.
        "SELECT {USER_COLUMNS} FROM users WHERE kind = 'person' ORDER BY username"
    ))?;
    let users = stmt
        .query_map([], user_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(users)
}

pub fn enabled_admin_count(conn: &Connection) -> Result<i64, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")?;
    Ok(stmt.query_row([], |row| row.get(0))?)
}

pub fn set_password(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<User, UserError> {
    let user = by_name(conn, username)?.ok_or_else(|| UserError::NotFound(username.into()))?;
    let mut stmt =
        conn.prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?;
    stmt.execute(params![user.id.0, password_hash, now])?;
    // A new password ends every existing session of that user.
    super::session_store::delete_user_sessions(conn, user.id)?;
    Ok(user)
}

/// Disables or re-enables a user. Disabling ends their sessions and is
/// refused for the last enabled admin, so the instance stays manageable.
pub fn set_disabled(
    conn: &Connection,
    username: &str,
    disabled: bool,
    now: i64,
) -> Result<User, UserError> {
    let user = by_name(conn, username)?.ok_or_else(|| UserError::NotFound(username.into()))?;
    if disabled && user.is_admin() && !user.disabled && enabled_admin_count(conn)? <= 1 {
        return Err(UserError::LastAdmin(user.username));
    }
    let mut stmt =
        conn.prepare_cached("UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1")?;
    stmt.execute(params![user.id.0, disabled, now])?;
    if disabled {
        super::session_store::delete_user_sessions(conn, user.id)?;
    }
    Ok(User { disabled, ..user })
}

/// What a user may change about themself.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub time_zone: Option<String>,
}

/// Checks a profile: lengths, an email with one `@`, a known IANA zone.
pub fn validate_profile(profile: &Profile) -> Result<(), UserError> {
    if profile
        .display_name
        .as_deref()
        .is_some_and(|name| name.chars().count() > 100 || name.chars().any(char::is_control))
    {
        return Err(UserError::Invalid(
            "display name: at most 100 characters, no control characters".into(),
        ));
    }
    if let Some(email) = profile.email.as_deref() {
        let parts: Vec<&str> = email.split('@').collect();
        let plausible = parts.len() == 2
            && !parts[0].is_empty()
            && parts[1].contains('.')
            && email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(UserError::Invalid(format!(
                "email: {email:?} is not an email address"
            )));
        }
    }
    if let Some(zone) = profile.time_zone.as_deref()
        && jiff::tz::TimeZone::get(zone).is_err()
    {
        return Err(UserError::Invalid(format!(
            "time zone: {zone:?} is not an IANA time zone (e.g. Europe/Berlin)"
        )));
    }
    Ok(())
}

pub fn update_profile(
    conn: &Connection,
    id: UserId,
    profile: &Profile,
    now: i64,
) -> Result<(), UserError> {
    validate_profile(profile)?;
    let mut stmt = conn.prepare_cached(
        "UPDATE users SET display_name = ?2, email = ?3, time_zone = ?4, updated_at = ?5
         WHERE id = ?1",
    )?;
    stmt.execute(params![
        id.0,
        profile.display_name,
        profile.email,
        profile.time_zone,
        now
    ])?;
    Ok(())
}

/// The stored password hash of a user, to check their current password.
pub fn password_hash(conn: &Connection, id: UserId) -> Result<Option<String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT password_hash FROM users WHERE id = ?1")?;
    Ok(stmt
        .query_row([id.0], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// Changes a role; demoting the last enabled admin is refused.
pub fn set_role(
    conn: &Connection,
    username: &str,
    role: Role,
    now: i64,
) -> Result<User, UserError> {
    let user = by_name(conn, username)?.ok_or_else(|| UserError::NotFound(username.into()))?;
    if role != Role::Admin && user.is_admin() && !user.disabled && enabled_admin_count(conn)? <= 1 {
        return Err(UserError::LastAdmin(user.username));
    }
    let mut stmt =
        conn.prepare_cached("UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1")?;
    stmt.execute(params![user.id.0, role.as_str(), now])?;
    Ok(User { role, ..user })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_usernames_follow_the_rules() {
        for (value, want) in [
            ("carol@example.com", "carol"),
            ("Carol.Smith+work@example.com", "Carol.Smith-work"),
            ("__x__@example.com", "x"),
            ("jöhn doe", "j-hn-doe"),
            ("@example.com", "member"),
            ("ümlaut", "mlaut"),
            ("---", "member"),
        ] {
            let name = suggested_username(value);
            assert_eq!(name, want, "{value}");
            assert!(validate_username(&name).is_ok(), "{value}: {name}");
        }
        assert_eq!(suggested_username(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn usernames() {
        for good in ["ada", "Ada.Lovelace", "a", "grace_h-1", "x@example.com"] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-ada",
            "ada lovelace",
            "<script>",
            "ada/../x",
            &"a".repeat(65),
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
