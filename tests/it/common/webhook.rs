//! A real webhook receiver for the alert tests: an axum server on
//! 127.0.0.1 (its own runtime, on its own thread) that records every
//! request's path, headers and body, answers 200, and can count what it
//! got once per `Idempotency-Key`, as a careful receiver would.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

pub struct Receiver {
    pub port: u16,
    log: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A port nothing listens on (yet): bound and let go.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn record(State(log): State<Log>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    log.lock().expect("log").push(Received {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    StatusCode::OK
}

impl Receiver {
    /// Listens on `port` (0: any free port), keeping `log` (a receiver
    /// that comes back keeps what it had).
    pub fn start_with(port: u16, log: Log) -> Receiver {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&log);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("the receiver binds");
                let port = listener.local_addr().expect("addr").port();
                ready_tx.send(port).expect("ready");
                let app = Router::new().fallback(record).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("the receiver serves");
            });
        });
        let port = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver started");
        Receiver {
            port,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn start(port: u16) -> Receiver {
        Self::start_with(port, Arc::default())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request to `path`, repeats included, in arrival order.
    pub fn all(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().expect("log");
        log.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The requests to `path`, each `Idempotency-Key` once (first seen).
    pub fn unique(&self, path: &str) -> Vec<Received> {
        let mut seen = HashSet::new();
        self.all(path)
            .into_iter()
            .filter(|r| seen.insert(r.header("idempotency-key").unwrap_or("").to_owned()))
            .collect()
    }

    /// Waits until `path` got `count` distinct deliveries; returns them.
    pub fn wait_for(&self, path: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.unique(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {count} deliveries after {timeout:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops listening; returns the log, for a receiver that comes back.
    pub fn stop(mut self) -> Log {
        self.shutdown();
        Arc::clone(&self.log)
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}
