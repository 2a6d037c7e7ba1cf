//! [`Store`]: the usage store on the real database layer (the writer and
//! the read pool over a temporary file), with a few users.

use rusqlite::Connection;
use tokentally::auth::UserId;
use tokentally::db::{Db, DbError, DbOptions};
use tokentally::usage::query::QueryError;
use tokentally::usage::store::{InsertOutcome, Inserter, NewEvent};

pub struct Store {
    _dir: tempfile::TempDir,
    pub db: Db,
    pub runtime: tokio::runtime::Runtime,
    pub users: Vec<UserId>,
}

impl Store {
    /// A fresh, migrated database with one member per name in `usernames`.
    pub fn new(usernames: &[&str]) -> Store {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let db = Db::open_with(
            &dir.path().join("t.db"),
            &DbOptions::default(),
            &tokentally::usage::price_sync::prepare,
        )
        .expect("db");
        let names: Vec<String> = usernames.iter().map(|n| (*n).to_owned()).collect();
        let users = runtime
            .block_on(db.write(move |conn| {
                names
                    .iter()
                    .map(|name| {
                        conn.execute(
                            "INSERT INTO users (username, role, created_at, updated_at) VALUES (?1, 'member', 0, 0)",
                            [name],
                        )?;
                        Ok(UserId(conn.last_insert_rowid()))
                    })
                    .collect::<Result<Vec<_>, DbError>>()
            }))
            .expect("users");
        Store {
            _dir: dir,
            db,
            runtime,
            users,
        }
    }

    /// Inserts `events` in `batches` transactions.
    /// Inserts `events` in `batches` transactions, then folds them all
    /// into the rollups (as the server's roller would).
    pub fn insert(&self, events: Vec<NewEvent>, batches: usize) -> InsertOutcome {
        let outcome = self.insert_unfolded(events, batches);
        self.fold(usize::MAX);
        outcome
    }

    /// Folds up to `limit` events past the watermark into the rollups;
    /// returns how many.
    pub fn fold(&self, limit: usize) -> usize {
        self.write(move |conn| tokentally::usage::rollup::roll(conn, limit))
    }

    /// Inserts `events` in `batches` transactions and leaves them past the
    /// rollup watermark (reads add them from the raw rows).
    pub fn insert_unfolded(&self, events: Vec<NewEvent>, batches: usize) -> InsertOutcome {
        let size = events.len().div_ceil(batches.max(1)).max(1);
        let mut total = InsertOutcome::default();
        for chunk in events.chunks(size) {
            let chunk = chunk.to_vec();
            let outcome = self
                .runtime
                .block_on(
                    self.db
                        .write(move |conn| Inserter::new(conn)?.insert(conn, &chunk)),
                )
                .expect("insert");
            total.accepted += outcome.accepted;
            total.duplicates += outcome.duplicates;
        }
        total
    }

    /// Runs `work` in the writer's transaction.
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> T {
        self.runtime.block_on(self.db.write(work)).expect("write")
    }

    pub fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, QueryError> + Send + 'static,
    ) -> T {
        self.runtime.block_on(self.db.read(f)).expect("query")
    }
}

/// Inserts `events` into a database at a schema before V22 (no rollup
/// watermark) as the releases of then did: the events and their rollups
/// together. Today's inserter, with a watermark for the occasion that is
/// dropped again.
pub fn insert_at_previous_schema(
    conn: &Connection,
    events: &[NewEvent],
) -> Result<InsertOutcome, DbError> {
    conn.execute_batch(
        "CREATE TABLE rollup_watermark (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL);
         INSERT INTO rollup_watermark SELECT 1, COALESCE(MAX(id), 0) FROM events;",
    )?;
    let outcome = Inserter::new(conn)?.insert(conn, events)?;
    tokentally::usage::rollup::roll_all(conn)?;
    conn.execute_batch("DROP TABLE rollup_watermark")?;
    Ok(outcome)
}
