//! Dimension tables: repeated strings (model, provider, activity, project,
//! source) stored once and referred to by small integer ids.

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

/// Interns names into their tables, remembering the ids it has seen; new
/// names are charged to the budget, if there is one.
#[derive(Debug, Default)]
pub struct Interner {
    known: HashMap<(Dim, String), i64>,
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
