//! Where imported events go: the local database (events and file positions
//! in one transaction), or a remote tokentally through its event API (file
//! positions in a local state file, saved after each acknowledged batch).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::runtime::Handle;

use super::ImportError;
use super::state::{self, Position};
use crate::db::{Db, DbError};
use crate::ingest::event::ApiEvent;
use crate::model::UserId;
use crate::model::format::decimal;
use crate::usage::store::{InsertOutcome, Inserter, NewEvent};

/// Events per request to a remote server (well under its limits).
const EVENTS_PER_REQUEST: usize = 1_000;

/// Events of one file, and the position in it after them.
pub struct Chunk {
    /// The file's place in the list being imported.
    pub file: usize,
    /// Its canonical path.
    pub key: String,
    pub format: &'static str,
    /// The events with their line numbers.
    pub events: Vec<(u64, ApiEvent)>,
    pub position: Position,
    /// Bytes of the file read for this chunk.
    pub bytes: u64,
}

/// What storing a batch did.
#[derive(Debug, Default)]
pub struct Stored {
    pub accepted: u64,
    pub duplicates: u64,
    /// Lines refused (by user attribution here, or by the server).
    pub problems: Vec<(u64, String)>,
}

pub enum Sink {
    Local(Local),
    Remote(Remote),
}

pub struct Local {
    db: Db,
    runtime: Handle,
    /// Every user by lower-cased name (a line may name its user).
    users: HashMap<String, UserId>,
    /// Whose events lines without a user are.
    default_user: Option<UserId>,
    /// The unusual-usage rule with its default knobs.
    unusual: std::sync::Arc<crate::budgets::UnusualWatch>,
}

impl Local {
    pub fn new(db: Db, runtime: Handle, default_user: Option<&str>) -> Result<Local, ImportError> {
        let all = runtime.block_on(db.read(crate::auth::users::list))?;
        let users: HashMap<String, UserId> = all
            .iter()
            .map(|u| (u.username.to_lowercase(), u.id))
            .collect();
        let default_user =
            match default_user {
                Some(name) => Some(*users.get(&name.to_lowercase()).ok_or_else(|| {
                    ImportError::Usage(format!("--user: no user named {name:?}"))
                })?),
                // With a single account there is no one else to mean.
                None if all.len() == 1 => Some(all[0].id),
                None => None,
            };
        Ok(Local {
            db,
            runtime,
            users,
            default_user,
            unusual: Default::default(),
        })
    }

    fn attribute(&self, event: ApiEvent) -> Result<NewEvent, String> {
        let user = match &event.user {
            Some(name) => *self
                .users
                .get(&name.to_lowercase())
                .ok_or_else(|| format!("user: no user named {name:?}"))?,
            None => self.default_user.ok_or_else(|| {
                "the line names no user and there are several: pass --user NAME".to_owned()
            })?,
        };
        Ok(event.into_new_event(user))
    }
}

pub struct Remote {
    agent: ureq::Agent,
    events_url: String,
    token: String,
    /// Sent as every event's `user` (an admin's token may name users).
    user: Option<String>,
    state_file: PathBuf,
    positions: Mutex<HashMap<String, Position>>,
}

impl Remote {
    pub fn new(
        server: &str,
        token: String,
        user: Option<String>,
        state_file: PathBuf,
    ) -> Result<Remote, ImportError> {
        let positions = match std::fs::read(&state_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ImportError::Usage(format!(
                    "{} is not an import state file: {e}",
                    state_file.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => {
                return Err(ImportError::Io {
                    path: state_file,
                    source,
                });
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .into();
        Ok(Remote {
            agent,
            events_url: format!("{}/api/v1/events", server.trim_end_matches('/')),
            token,
            user,
            state_file,
            positions: Mutex::new(positions),
        })
    }

    fn body(&self, event: &ApiEvent) -> Value {
        let timestamp = Timestamp::from_millisecond(event.ts_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut body = json!({
            "id": event.id, "timestamp": timestamp, "model": event.model,
            "source": event.source, "input_tokens": event.tokens[0],
            "output_tokens": event.tokens[1], "cache_read_tokens": event.tokens[2],
            "cache_write_tokens": event.tokens[3],
        });
        let optional = [
            ("user", event.user.clone().or_else(|| self.user.clone())),
            ("provider", event.provider.clone()),
            ("activity", event.activity.clone()),
            ("project", event.project.clone()),
            ("cost", event.cost_micros.map(decimal)),
            ("session", event.session.clone()),
            ("machine", event.machine.clone()),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                body[field] = Value::from(value);
            }
        }
        body
    }

    /// Sends one request; on 422, drops the events the server names (as
    /// problems) and sends the rest again.
    fn send(&self, mut events: Vec<(u64, Value)>, stored: &mut Stored) -> Result<(), ImportError> {
        while !events.is_empty() {
            let ndjson: String = events.iter().map(|(_, e)| format!("{e}\n")).collect();
            let mut response = self
                .agent
                .post(&self.events_url)
                .header("Authorization", &format!("Bearer {}", self.token))
                .header("Content-Type", "application/x-ndjson")
                .send(ndjson)
                .map_err(|e| ImportError::Remote(format!("{}: {e}", self.events_url)))?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match status {
                200 => {
                    stored.accepted += answer["accepted"].as_u64().unwrap_or(0);
                    stored.duplicates += answer["duplicates"].as_u64().unwrap_or(0);
                    return Ok(());
                }
                422 => {
                    let refused = refused_indexes(&answer);
                    if refused.is_empty() {
                        return Err(ImportError::Remote(format!(
                            "the server refused the events: {text}"
                        )));
                    }
                    for (index, reason) in &refused {
                        if let Some((line, _)) = events.get(*index) {
                            stored.problems.push((*line, reason.clone()));
                        }
                    }
                    let keep: Vec<(u64, Value)> = events
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !refused.contains_key(i))
                        .map(|(_, e)| e)
                        .collect();
                    events = keep;
                }
                _ => {
                    let message = answer["error"].as_str().unwrap_or(&text).to_owned();
                    return Err(ImportError::Remote(format!(
                        "{} answered {status}: {message}",
                        self.events_url
                    )));
                }
            }
        }
        Ok(())
    }

    fn save_positions(&self, positions: &HashMap<String, Position>) -> Result<(), ImportError> {
        let io = |source| ImportError::Io {
            path: self.state_file.clone(),
            source,
        };
        if let Some(dir) = self.state_file.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_vec_pretty(positions)
            .map_err(|e| ImportError::Usage(format!("cannot write the import state: {e}")))?;
        // Written aside, then renamed: a crash leaves the old state or the new.
        let partial = self.state_file.with_extension("tmp");
        std::fs::write(&partial, text).map_err(io)?;
        std::fs::rename(&partial, &self.state_file).map_err(io)
    }
}

/// Index → reason of each event a 422 answer names.
fn refused_indexes(answer: &Value) -> HashMap<usize, String> {
    let mut refused: HashMap<usize, String> = HashMap::new();
    for error in answer["errors"].as_array().into_iter().flatten() {
        let Some(index) = error["index"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
        else {
            continue;
        };
        let reason = match error["field"].as_str() {
            Some(field) => format!("{field}: {}", error["reason"].as_str().unwrap_or("")),
            None => error["reason"].as_str().unwrap_or("").to_owned(),
        };
        refused
            .entry(index)
            .and_modify(|r| {
                r.push_str("; ");
                r.push_str(&reason);
            })
            .or_insert(reason);
    }
    refused
}

impl Sink {
    /// Whether events without a user have someone to belong to (a remote
    /// server gives them to the token's owner).
    pub fn has_default_user(&self) -> bool {
        match self {
            Sink::Local(local) => local.default_user.is_some(),
            Sink::Remote(_) => true,
        }
    }

    /// Where each file was read up to, by canonical path.
    pub fn load_positions(&self) -> Result<HashMap<String, Position>, ImportError> {
        match self {
            Sink::Local(local) => Ok(local.runtime.block_on(local.db.read(state::load_all))?),
            Sink::Remote(remote) => Ok(remote
                .positions
                .lock()
                .map_err(|_| ImportError::Usage("the import state lock is poisoned".into()))?
                .clone()),
        }
    }

    /// Stores the events of `chunks` (with their line numbers) and, with
    /// them, the position each chunk reaches in its file: locally in one
    /// transaction; remotely a chunk at a time. With `dry_run`, only
    /// checks. What storing did, per chunk.
    pub fn store(&self, chunks: Vec<Chunk>, dry_run: bool) -> Result<Vec<Stored>, ImportError> {
        match self {
            Sink::Local(local) => local.store(chunks, dry_run),
            Sink::Remote(remote) => chunks
                .into_iter()
                .map(|chunk| remote.store(chunk, dry_run))
                .collect(),
        }
    }
}

impl Local {
    fn store(&self, chunks: Vec<Chunk>, dry_run: bool) -> Result<Vec<Stored>, ImportError> {
        let mut stored: Vec<Stored> = Vec::with_capacity(chunks.len());
        let mut batches = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let mut outcome = Stored::default();
            let mut attributed = Vec::with_capacity(chunk.events.len());
            for (line, event) in chunk.events {
                match self.attribute(event) {
                    Ok(event) => attributed.push(event),
                    Err(reason) => outcome.problems.push((line, reason)),
                }
            }
            stored.push(outcome);
            batches.push((chunk.key, chunk.format, attributed, chunk.position));
        }
        if dry_run {
            return Ok(stored);
        }
        let now = Timestamp::now();
        let unusual = self.unusual.clone();
        let outcomes = self.runtime.block_on(self.db.write(move |conn| {
            let mut inserter = Inserter::new(conn)?;
            let mut outcomes = Vec::with_capacity(batches.len());
            let mut all = InsertOutcome::default();
            for (key, format, events, position) in &batches {
                let outcome = inserter.insert(conn, events)?;
                all.merge(&outcome);
                state::save(conn, key, format, position, now.as_second())?;
                outcomes.push(outcome);
            }
            crate::budgets::watch::after_insert(conn, now, &all, &unusual)?;
            Ok::<_, DbError>(outcomes)
        }))?;
        for (stored, outcome) in stored.iter_mut().zip(outcomes) {
            stored.accepted = outcome.accepted as u64;
            stored.duplicates = outcome.duplicates as u64;
        }
        Ok(stored)
    }
}

impl Remote {
    fn store(&self, chunk: Chunk, dry_run: bool) -> Result<Stored, ImportError> {
        let mut stored = Stored::default();
        if dry_run {
            return Ok(stored);
        }
        let bodies: Vec<(u64, Value)> = chunk
            .events
            .iter()
            .map(|(line, e)| (*line, self.body(e)))
            .collect();
        for part in bodies.chunks(EVENTS_PER_REQUEST) {
            self.send(part.to_vec(), &mut stored)?;
        }
        let mut positions = self
            .positions
            .lock()
            .map_err(|_| ImportError::Usage("the import state lock is poisoned".into()))?;
        positions.insert(chunk.key, chunk.position);
        self.save_positions(&positions)?;
        Ok(stored)
    }
}
