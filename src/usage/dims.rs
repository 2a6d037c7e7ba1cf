//! Dimension tables: repeated strings (model, provider, activity, project,
//! source) stored once and referred to by small integer ids; and the label
//! tables of raw events (session, machine), interned the same way but
//! never rolled up.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::rollup::Dim;
use crate::db::DbError;

/// The table behind a string dimension (users have their own table).
pub fn table(dim: Dim) -> Option<&'static str> {
    match dim {
        Dim::User => None,
        Dim::Model => Some("models"),
        Dim::Activity => Some("activities"),
        Dim::Project => Some("projects"),
        Dim::Source => Some("sources"),
        Dim::Provider => Some("providers"),
    }
}

/// What a raw event says about where the call was made, besides its
/// dimensions. Not rollup dimensions: a new session starts every few hours,
/// so their number has no bound; a filter on them reads raw events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// The producer's session or conversation id.
    Session,
    /// The host the events came from.
    Machine,
}

impl Label {
    pub const ALL: [Label; 2] = [Label::Session, Label::Machine];

    /// The name in the event format, the read API and the URLs.
    pub fn name(self) -> &'static str {
        match self {
            Label::Session => "session",
            Label::Machine => "machine",
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Label::Session => "event_sessions",
            Label::Machine => "event_machines",
        }
    }

    /// The column of `events` that refers to the table.
    pub fn column(self) -> &'static str {
        match self {
            Label::Session => "session_id",
            Label::Machine => "machine_id",
        }
    }
}

/// Interns names into their tables, remembering the ids it has seen; new
/// names are charged to the budget, if there is one.
#[derive(Debug, Default)]
pub struct Interner {
    known: HashMap<(Dim, String), i64>,
    labels: HashMap<(Label, String), i64>,
    pub budget: Option<super::budget::NameBudget>,
}

impl Interner {
    /// The id of `name` in `dim`'s table, inserting it when new.
    pub fn id(&mut self, conn: &Connection, dim: Dim, name: &str) -> Result<i64, DbError> {
        if let Some(id) = self.known.get(&(dim, name.to_owned())) {
            return Ok(*id);
        }
        let Some(table) = table(dim) else {
            return Err(DbError::Check(format!("{dim:?} has no name table")));
        };
        // `table` is one of our constant names, never user input.
        let created = conn
            .prepare_cached(&format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"))?
            .execute([name])?;
        if let (1, Some(budget)) = (created, &self.budget) {
            budget.charge(conn, dim, name)?;
        }
        let id: i64 = conn
            .prepare_cached(&format!("SELECT id FROM {table} WHERE name = ?1"))?
            .query_row([name], |row| row.get(0))?;
        self.known.insert((dim, name.to_owned()), id);
        Ok(id)
    }

    /// The id of an optional name; 0 (none) for `None` or "".
    pub fn optional_id(
        &mut self,
        conn: &Connection,
        dim: Dim,
        name: Option<&str>,
    ) -> Result<i64, DbError> {
        match name {
            Some(name) if !name.is_empty() => self.id(conn, dim, name),
            _ => Ok(0),
        }
    }

    /// The id of a label, inserting it when new; `None` for `None` or "".
    /// Labels are not charged to the budget of new names: they make no
    /// series on any chart, and each costs one event to create.
    pub fn label_id(
        &mut self,
        conn: &Connection,
        label: Label,
        name: Option<&str>,
    ) -> Result<Option<i64>, DbError> {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        if let Some(id) = self.labels.get(&(label, name.to_owned())) {
            return Ok(Some(*id));
        }
        let table = label.table();
        conn.prepare_cached(&format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"))?
            .execute([name])?;
        let id: i64 = conn
            .prepare_cached(&format!("SELECT id FROM {table} WHERE name = ?1"))?
            .query_row([name], |row| row.get(0))?;
        self.labels.insert((label, name.to_owned()), id);
        Ok(Some(id))
    }
}

/// The id of an existing label, without inserting.
pub fn find_label(conn: &Connection, label: Label, name: &str) -> Result<Option<i64>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT id FROM {} WHERE name = ?1", label.table()))?
        .query_row([name], |row| row.get(0))
        .optional()?)
}

/// Looks up the id of an existing name, without inserting.
pub fn find(conn: &Connection, dim: Dim, name: &str) -> Result<Option<i64>, DbError> {
    let sql = match table(dim) {
        Some(table) => format!("SELECT id FROM {table} WHERE name = ?1"),
        None => "SELECT id FROM users WHERE username = ?1".to_owned(),
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([name], |row| row.get(0))
        .optional()?)
}

/// Every id → name of a dimension (users by username).
pub fn names(conn: &Connection, dim: Dim) -> Result<HashMap<i64, String>, DbError> {
    let sql = match table(dim) {
        Some(table) => format!("SELECT id, name FROM {table}"),
        None => "SELECT id, username FROM users".to_owned(),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let names = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}
