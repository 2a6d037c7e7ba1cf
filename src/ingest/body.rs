//! Request bodies of ingestion endpoints: size limits, gzip, the memory
//! budget that bodies and their decompression share, and the media type
//! that says how to split them into events.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use flate2::read::GzDecoder;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::IngestState;
use super::error::IngestError;
use super::pipeline::Item;

/// Largest body accepted on the wire (compressed or not).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest body after decompression: a gzip bomb stops here.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// The default memory budget of ingest bodies, MiB.
pub const DEFAULT_BUDGET_MIB: usize = 128;
/// The smallest budget: one maximal body and its maximal decompression.
const MIN_BUDGET_BYTES: usize = MAX_BODY_BYTES + MAX_DECODED_BYTES;
/// How long a request waits for its share of the budget before it is
/// answered `503`.
const BUDGET_WAIT: Duration = Duration::from_secs(5);
/// Decompression reads this much at a time.
const CHUNK: usize = 64 * 1024;

/// The memory that ingest bodies may take at once: the bodies as received
/// and their decompressed form (counted as the decoder's buffer grows).
/// Without it, 64 parallel gzip bombs of 64 MiB each took the server to
/// ~1.9 GB. A request that cannot get its share within [`BUDGET_WAIT`] is
/// answered `503` with `Retry-After` (exporters retry). Parsed events are
/// not counted (at most `MAX_EVENTS` per request).
#[derive(Clone, Debug)]
pub struct DecodeBudget {
    /// In KiB; `None`: no bound.
    kib: Option<Arc<Semaphore>>,
}

impl Default for DecodeBudget {
    fn default() -> Self {
        DecodeBudget::new(DEFAULT_BUDGET_MIB * 1024 * 1024)
    }
}

impl DecodeBudget {
    /// A budget of `bytes` (at least one maximal body and its maximal
    /// decompression); 0 for no bound.
    pub fn new(bytes: usize) -> DecodeBudget {
        if bytes == 0 {
            return DecodeBudget::unbounded();
        }
        let kib = (bytes.max(MIN_BUDGET_BYTES) / 1024).min(Semaphore::MAX_PERMITS);
        DecodeBudget {
            kib: Some(Arc::new(Semaphore::new(kib))),
        }
    }

    pub fn unbounded() -> DecodeBudget {
        DecodeBudget { kib: None }
    }

    /// A reservation of `bytes`, waiting up to [`BUDGET_WAIT`].
    pub async fn reserve(&self, bytes: usize) -> Result<Reservation, IngestError> {
        let mut reservation = Reservation {
            kib: self.kib.clone(),
            held: 0,
        };
        let Some(want) = reservation.missing(bytes) else {
            return Ok(reservation);
        };
        let Some(semaphore) = &self.kib else {
            return Ok(reservation);
        };
        match tokio::time::timeout(BUDGET_WAIT, semaphore.acquire_many(want)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                reservation.held = want;
                Ok(reservation)
            }
            _ => Err(busy()),
        }
    }
}

/// A request's share of the [`DecodeBudget`]; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    kib: Option<Arc<Semaphore>>,
    held: u32,
}

impl Reservation {
    /// A reservation that never waits (tools, fuzzing).
    pub fn unbounded() -> Reservation {
        Reservation { kib: None, held: 0 }
    }

    /// KiB still to reserve for `bytes` in all, if any.
    fn missing(&self, bytes: usize) -> Option<u32> {
        self.kib.as_ref()?;
        let want = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        (want > self.held).then(|| want - self.held)
    }

    /// Grows the reservation to `bytes` in all, waiting up to
    /// [`BUDGET_WAIT`]. Blocks the thread: call it off the async threads
    /// (decoding runs in `spawn_blocking`).
    fn grow_blocking(&mut self, bytes: usize) -> Result<(), IngestError> {
        let (Some(want), Some(semaphore)) = (self.missing(bytes), self.kib.clone()) else {
            return Ok(());
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(IngestError::internal(
                "the decode budget needs a Tokio runtime",
            ));
        };
        let acquired = runtime.block_on(async {
            tokio::time::timeout(BUDGET_WAIT, semaphore.acquire_many(want)).await
        });
        match acquired {
            Ok(Ok(permit)) => {
                permit.forget();
                self.held += want;
                Ok(())
            }
            _ => Err(busy()),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(semaphore) = &self.kib
            && self.held > 0
        {
            semaphore.add_permits(self.held as usize);
        }
    }
}

fn busy() -> IngestError {
    IngestError::Busy(
        "the server is decoding too many large request bodies at once; nothing of this \
         request was stored, send it again in a few seconds"
            .into(),
    )
}

/// An ingest request's body, read only once its share of the
/// [`DecodeBudget`] is reserved (its `Content-Length`, or the largest
/// body when it has none): bodies waiting to be decoded are bounded too.
pub struct BudgetedBody {
    pub bytes: Bytes,
    pub reservation: Reservation,
}

impl FromRequest<IngestState> for BudgetedBody {
    type Rejection = IngestError;

    async fn from_request(request: Request, state: &IngestState) -> Result<Self, Self::Rejection> {
        let length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // Over the limit: refused (413) below without being read.
        let bytes = match length {
            Some(n) if n > MAX_BODY_BYTES as u64 => 0,
            Some(n) => usize::try_from(n).unwrap_or(MAX_BODY_BYTES),
            None => MAX_BODY_BYTES,
        };
        let reservation = state.decode_budget.reserve(bytes).await?;
        let bytes = accept(Bytes::from_request(request, state).await)?;
        Ok(BudgetedBody { bytes, reservation })
    }
}

/// How a body holds its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A JSON array of events (or one event object).
    JsonArray,
    /// One JSON event per line.
    Ndjson,
    /// Whichever of the two the body is (for producers that send NDJSON
    /// as `application/json`, such as LiteLLM).
    Sniff,
}

/// The body of an accepted request, or a 413 in our JSON shape.
pub fn accept(body: Result<Bytes, BytesRejection>) -> Result<Bytes, IngestError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large_body(),
        _ => IngestError::BadRequest(rejection.body_text()),
    })
}

/// The body's items with their NDJSON line numbers; a line that is not
/// JSON is that item's problem, a JSON array that is not JSON is the
/// request's. More than `max_items` items is refused before any of them is
/// built: a 16 MiB `[0,0,…]` would otherwise become half a gigabyte of
/// values before the count could be checked.
pub fn split(framing: Framing, body: &[u8], max_items: usize) -> Result<Vec<Item>, IngestError> {
    match framing {
        Framing::JsonArray => match raw_items(body, max_items) {
            Ok(items) => whole(items),
            Err(RawError::TooMany) => Err(too_many(max_items)),
            Err(RawError::Json(e)) => Err(IngestError::BadRequest(format!(
                "the body is not valid JSON: {e}"
            ))),
        },
        Framing::Ndjson => lines(body, max_items),
        Framing::Sniff => match raw_items(body, max_items) {
            Ok(items) => whole(items),
            Err(RawError::TooMany) => Err(too_many(max_items)),
            Err(RawError::Json(_)) => lines(body, max_items),
        },
    }
}

fn too_many(max_items: usize) -> IngestError {
    IngestError::TooLarge(format!(
        "more than {max_items} events in one request; send at most {max_items}"
    ))
}

/// A body's top level: an array's elements, or one object, unparsed.
enum Raw<'a> {
    Array(Vec<&'a serde_json::value::RawValue>),
    Object(&'a serde_json::value::RawValue),
    Other,
}

enum RawError {
    TooMany,
    Json(serde_json::Error),
}

/// The top level of `body`, holding at most `max_items` array elements
/// (each only a slice of the body until it is parsed).
fn raw_items(body: &[u8], max_items: usize) -> Result<Raw<'_>, RawError> {
    use serde::de::Error as _;
    let top: &serde_json::value::RawValue = serde_json::from_slice(body).map_err(RawError::Json)?;
    let text = top.get();
    match text.trim_start().as_bytes().first() {
        Some(b'[') => {}
        Some(b'{') => return Ok(Raw::Object(top)),
        _ => return Ok(Raw::Other),
    }
    struct Bounded<'f>(usize, &'f std::cell::Cell<bool>);
    impl<'de> serde::de::Visitor<'de> for Bounded<'_> {
        type Value = Vec<&'de serde_json::value::RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == self.0 {
                    self.1.set(true);
                    return Err(A::Error::custom("too many items"));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    let too_many = std::cell::Cell::new(false);
    let mut reader = serde_json::Deserializer::from_str(text);
    match serde::Deserializer::deserialize_seq(&mut reader, Bounded(max_items, &too_many)) {
        Ok(items) => Ok(Raw::Array(items)),
        Err(_) if too_many.get() => Err(RawError::TooMany),
        Err(e) => Err(RawError::Json(e)),
    }
}

fn whole(raw: Raw<'_>) -> Result<Vec<Item>, IngestError> {
    // The whole body was read as JSON already; what fails now (nesting
    // past serde_json's limit) makes the body, not one event, unreadable.
    let parse = |raw: &serde_json::value::RawValue| {
        serde_json::from_str::<Value>(raw.get())
            .map_err(|e| IngestError::BadRequest(format!("the body is not valid JSON: {e}")))
    };
    match raw {
        Raw::Array(items) => items
            .into_iter()
            .map(|raw| Ok((None, Ok(parse(raw)?))))
            .collect(),
        Raw::Object(object) => Ok(vec![(None, Ok(parse(object)?))]),
        Raw::Other => Err(IngestError::BadRequest(
            "the body must be a JSON array of events (or one event object)".into(),
        )),
    }
}

fn lines(body: &[u8], max_items: usize) -> Result<Vec<Item>, IngestError> {
    let lines: Vec<(usize, &[u8])> = body
        .split(|byte| *byte == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.len() > max_items {
        return Err(too_many(max_items));
    }
    Ok(lines
        .into_iter()
        .map(|(number, line)| {
            let value = serde_json::from_slice::<Value>(line)
                .map_err(|e| format!("the line is not valid JSON: {e}"));
            (Some(number + 1), value)
        })
        .collect())
}

/// The framing named by `Content-Type` (parameters such as charset are
/// ignored).
pub fn framing(headers: &HeaderMap) -> Result<Framing, IngestError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(Framing::JsonArray),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(Framing::Ndjson),
        "" => Err(IngestError::UnsupportedMediaType(
            "Content-Type is missing: send application/json (an array of events) or \
             application/x-ndjson (one event per line)"
                .into(),
        )),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Type {other} is not supported: send application/json (an array of events) \
             or application/x-ndjson (one event per line)"
        ))),
    }
}

/// The body, decompressed when `Content-Encoding: gzip`, within the limits
/// and the `reservation` (which holds the body already and grows with the
/// decompressed bytes).
pub fn decode(
    headers: &HeaderMap,
    body: Bytes,
    reservation: &mut Reservation,
) -> Result<Bytes, IngestError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => gunzip(&body, reservation),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported; use gzip or none"
        ))),
    }
}

/// Decompresses into a buffer whose every growth is reserved first. The
/// gzip trailer's size (a hint: the client writes it) is reserved at
/// once, so an honest body needs one reservation and no reallocation.
fn gunzip(body: &[u8], reservation: &mut Reservation) -> Result<Bytes, IngestError> {
    let hinted = trailer_size(body).clamp(CHUNK, MAX_DECODED_BYTES);
    reservation.grow_blocking(body.len() + hinted)?;
    let mut decoded = Vec::with_capacity(hinted);
    let mut decoder = GzDecoder::new(body);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(IngestError::BadRequest(format!(
                    "the gzip body cannot be decoded: {e}"
                )));
            }
        };
        let len = decoded.len() + n;
        if len > MAX_DECODED_BYTES {
            return Err(too_large_decoded());
        }
        if len > decoded.capacity() {
            let capacity = (decoded.capacity() * 2).clamp(len, MAX_DECODED_BYTES);
            reservation.grow_blocking(body.len() + capacity)?;
            decoded.reserve_exact(capacity - decoded.len());
        }
        decoded.extend_from_slice(&chunk[..n]);
    }
    Ok(Bytes::from(decoded))
}

/// The uncompressed size a gzip body's trailer states (of its last member,
/// modulo 4 GiB); 0 when there is none.
fn trailer_size(body: &[u8]) -> usize {
    match body.len().checked_sub(4).map(|start| &body[start..]) {
        Some(&[a, b, c, d]) if body.len() >= 18 => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    }
}

pub fn too_large_body() -> IngestError {
    IngestError::TooLarge(format!(
        "the request body is over {} MiB; send fewer events per request",
        MAX_BODY_BYTES / (1024 * 1024)
    ))
}

fn too_large_decoded() -> IngestError {
    IngestError::TooLarge(format!(
        "the decompressed body is over {} MiB; send fewer events per request",
        MAX_DECODED_BYTES / (1024 * 1024)
    ))
}
