//! The edge of the real binary: built-in TLS (and its reload on SIGHUP),
//! slow or silent clients cut off, the connection cap, and the client
//! address behind a trusted proxy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::server::Server;

/// A self-signed certificate for localhost/127.0.0.1, made by openssl.
fn make_cert(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-subj")
        .arg(format!("/CN={name}"))
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .args(["-addext", "extendedKeyUsage=serverAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

fn trusting(cert_pem: &str) -> ureq::Agent {
    let pem = std::fs::read(cert_pem).expect("cert");
    let cert = ureq::tls::Certificate::from_pem(&pem)
        .expect("pem")
        .to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

#[test]
fn serves_https_and_reloads_the_certificate_on_sighup() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI needs openssl");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (first_cert, first_key) = make_cert(dir.path(), "first");
    let (second_cert, second_key) = make_cert(dir.path(), "second");
    let (cert, key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&first_cert, &cert).expect("copy");
    std::fs::copy(&first_key, &key).expect("copy");
    let server = Server::start(
        dir.path(),
        &[
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
    );
    assert!(
        server.base_url.starts_with("https://"),
        "{}",
        server.base_url
    );
    let url = server.url("/healthz").replace("127.0.0.1", "localhost");
    let first = trusting(&first_cert);
    let response = first
        .get(&url)
        .call()
        .expect("https with the first certificate");
    assert_eq!(response.status(), 200);
    let headers = first
        .get(&server.url("/login").replace("127.0.0.1", "localhost"))
        .call()
        .expect("login");
    assert!(
        headers.headers().contains_key("strict-transport-security"),
        "HSTS over TLS"
    );
    // Plain HTTP on the TLS port gets nowhere.
    assert!(
        common::server::agent()
            .get(&url.replace("https://", "http://"))
            .call()
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );

    std::fs::copy(&second_cert, &cert).expect("copy");
    std::fs::copy(&second_key, &key).expect("copy");
    let pid = server.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let second = trusting(&second_cert);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if second.get(&url).call().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        trusting(&first_cert).get(&url).call().is_err(),
        "the old certificate is gone"
    );
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
}

fn port(server: &Server) -> u16 {
    server
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// Whether the server closed `stream` (read gives end-of-file or an error)
/// within `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 page before the close is fine
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Whether `stream` receives any byte within `wait` (`false` on a
/// timeout; a close or an error counts as an answer too).
fn answered_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(_) => true,
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            false
        }
        Err(_) => true,
    }
}

/// Everything the server sends on `stream` until it closes it (or `wait`
/// passes); an error after some bytes (a reset) keeps those bytes.
fn answer(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut all = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buffer[..n]);
    }
    all
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_connections_are_capped() {
    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // The cap: with two connections allowed and both held (idle, well
    // within the header timeout), a third is not served ...
    let dir = tempfile::tempdir().expect("tempdir");
    let capped = Server::start(dir.path(), &["--max-connections", "2"]);
    capped.wait_ready();
    let address = format!("127.0.0.1:{}", port(&capped));
    let first = TcpStream::connect(&address).expect("connect");
    let second = TcpStream::connect(&address).expect("connect");
    let mut third = TcpStream::connect(&address).expect("the backlog takes it");
    third.write_all(GET).expect("write");
    assert!(
        !answered_within(&mut third, Duration::from_secs(2)),
        "a connection beyond the cap was served while both slots were held"
    );
    // ... until one of the two goes away; then it is.
    drop(first);
    let served = answer(&mut third, Duration::from_secs(10));
    assert!(
        served.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&served)
    );
    drop(second);
    let (status, stderr) = capped.terminate();
    assert!(status.success(), "{stderr}");

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &["--header-timeout", "1", "--max-connections", "2"],
    );
    server.wait_ready();
    let address = format!("127.0.0.1:{}", port(&server));
    // Two connections take both slots: one silent, one sending its
    // headers a byte at a time and never finishing.
    let mut silent = TcpStream::connect(&address).expect("connect");
    let mut slow = TcpStream::connect(&address).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    // A third client waits for a slot, and gets one once they are cut off.
    let third = std::thread::spawn({
        let url = server.url("/healthz");
        move || common::server::agent().get(&url).call().map(|r| r.status())
    });
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)),
        "a silent connection is closed"
    );
    assert!(
        closed_within(&mut slow, Duration::from_secs(10)),
        "a slow header is cut off"
    );
    assert_eq!(third.join().expect("join").expect("served").as_u16(), 200);
    // Headers past the 64 KiB buffer are refused before any handler runs.
    let mut huge = TcpStream::connect(&address).expect("connect");
    let filler = "a".repeat(100 * 1024);
    let _ = huge.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n").as_bytes(),
    );
    let refused = answer(&mut huge, Duration::from_secs(10));
    assert!(
        refused.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&refused[..refused.len().min(80)])
    );
    // A keep-alive connection that goes quiet after a request is closed too.
    let mut idle = TcpStream::connect(&address).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)),
        "an idle keep-alive connection is closed"
    );
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
}

/// A connection to `to` from the loopback address `source` (127.0.0.0/8
/// is all loopback on Linux), as a blocking std stream.
fn connect_from(source: &str, to: &str) -> TcpStream {
    try_connect_from(source, to).expect("connect")
}

/// A connection from the loopback address `source`, or `None` when
/// nothing listens at `to` (yet).
fn try_connect_from(source: &str, to: &str) -> Option<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("source"))
            .expect("bind the source address");
        let stream = socket.connect(to.parse().expect("address")).await.ok()?;
        let stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        Some(stream)
    })
}

/// Waits for `/readyz` over connections from `source`, so that the wait
/// holds no connection of the address a test then counts (the shared
/// `wait_ready` connects from 127.0.0.1, and the server may see that
/// connection close only after the test has opened its own).
fn wait_ready_from(source: &str, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(mut stream) = try_connect_from(source, address)
            && status_line(&mut stream, "/readyz").as_deref() == Some("HTTP/1.1 200 OK")
        {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz never said ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `GET path` on `stream` and returns the status line, or `None`
/// when the server closed the connection instead of answering.
fn status_line(stream: &mut TcpStream, path: &str) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().map(str::to_owned)
}

#[test]
fn one_address_cannot_take_every_connection_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            "--max-connections",
            "8",
            "--max-connections-per-address",
            "4",
        ],
    );
    let address = format!("127.0.0.1:{}", port(&server));
    wait_ready_from("127.0.0.9", &address);
    // 127.0.0.1 holds its four connections, silent (they would stay open
    // for the 30 s header timeout)…
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&address).expect("connect"))
        .collect();
    // …and each further one is closed at once, without an answer, and
    // takes no global slot (four of them would have filled the cap of 8).
    for n in 0..6 {
        let mut excess = TcpStream::connect(&address).expect("connect");
        assert!(
            closed_within(&mut excess, Duration::from_secs(10)),
            "excess connection {n} is closed"
        );
    }
    // Another client is served meanwhile.
    let mut other = connect_from("127.0.0.2", &address);
    assert_eq!(
        status_line(&mut other, "/readyz").as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    // The held ones were not touched, and one of them is served when it
    // speaks.
    assert_eq!(
        status_line(&mut held[0], "/healthz").as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    // A closed connection gives its address's slot back: a new one from
    // 127.0.0.1 is served once the server has seen the close (each try
    // is a real connection; the refused ones are closed at once).
    drop(held.drain(..2));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut again = TcpStream::connect(&address).expect("connect");
        if status_line(&mut again, "/healthz").as_deref() == Some("HTTP/1.1 200 OK") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(held);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_trusted_proxy_is_not_held_to_the_per_address_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            "--max-connections-per-address",
            "2",
            "--trusted-proxies",
            "127.0.0.1",
        ],
    );
    server.wait_ready();
    let address = format!("127.0.0.1:{}", port(&server));
    // The proxy carries many clients: more than the cap of 2 stay open.
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&address).expect("connect"))
        .collect();
    for stream in &mut held {
        assert_eq!(
            status_line(stream, "/healthz").as_deref(),
            Some("HTTP/1.1 200 OK")
        );
    }
    // Any other address is capped.
    let first = connect_from("127.0.0.3", &address);
    let second = connect_from("127.0.0.3", &address);
    let mut third = connect_from("127.0.0.3", &address);
    assert!(closed_within(&mut third, Duration::from_secs(10)));
    drop((first, second));
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
}

/// (VmRSS, VmHWM) of a process, in MiB.
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("field")
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A JSON array holding only blanks, just under the 64 MiB decompression
/// limit, gzipped to ~64 KiB.
fn gzip_bomb() -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"[").expect("gzip");
    let blanks = vec![b' '; 1024 * 1024];
    for _ in 0..63 {
        encoder.write_all(&blanks).expect("gzip");
    }
    encoder
        .write_all(&blanks[..1024 * 1024 - 4096])
        .expect("gzip");
    encoder.write_all(b"]").expect("gzip");
    encoder.finish().expect("gzip")
}

/// A real server with an admin's ingest token (no rate limit).
fn ingest_server() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let (ok, _, err) = common::server::run_cli(
        &[
            "--data-dir",
            data,
            "user",
            "add",
            "ada",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &[],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
    let (ok, token, err) = common::server::run_cli(
        &[
            "--data-dir",
            data,
            "token",
            "create",
            "--user",
            "ada",
            "--scope",
            "ingest",
        ],
        &[],
        None,
    );
    assert!(ok, "{err}");
    let server = Server::start(dir.path(), &["--ingest-rate-per-token", "0"]);
    server.wait_ready();
    (dir, server, token.trim().to_owned())
}

#[test]
fn parallel_gzip_bombs_are_refused_within_a_memory_bound() {
    let (dir, server, token) = ingest_server();
    let bomb = Arc::new(gzip_bomb());
    let (_, idle_peak) = memory_mib(server.pid());
    let senders: Vec<_> = (0..64)
        .map(|_| {
            let (url, token, bomb) = (server.url("/api/v1/events"), token.clone(), bomb.clone());
            std::thread::spawn(move || {
                let mut response = common::server::agent()
                    .post(&url)
                    .header("authorization", &format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .send(&bomb[..])
                    .expect("an answer, not a dropped connection");
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.body_mut().read_to_string().unwrap_or_default();
                (status, retry_after, body)
            })
        })
        .collect();
    let answers: Vec<_> = senders
        .into_iter()
        .map(|s| s.join().expect("join"))
        .collect();
    let (rss_after, peak) = memory_mib(server.pid());
    let mut busy = 0;
    for (status, retry_after, body) in &answers {
        match status {
            // Decoded: blanks hold no events.
            400 => assert!(body.contains("no events"), "{body}"),
            503 => {
                busy += 1;
                assert!(retry_after.is_some(), "503 without Retry-After");
                let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
                assert!(
                    json["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("decoding too many")),
                    "{body}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    eprintln!(
        "64 gzip bombs: {busy} answered 503; peak RSS {peak} MiB (idle {idle_peak}), {rss_after} MiB after"
    );
    // Generous bounds (the measurement is in BENCHMARKS.md); unbounded,
    // this took well over a gigabyte.
    assert!(peak < 768, "peak RSS {peak} MiB");
    assert!(rss_after < 384, "RSS after the load {rss_after} MiB");
    // Still serving, and nothing of the bombs was stored.
    let agent = common::server::agent();
    assert_eq!(
        agent
            .get(&server.url("/readyz"))
            .call()
            .expect("readyz")
            .status(),
        200
    );
    let mut stored = agent
        .post(&server.url("/api/v1/events"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(r#"[{"id":"after","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":5,"output_tokens":1}]"#)
        .expect("ingest");
    assert_eq!(stored.status(), 200);
    let outcome = stored.body_mut().read_to_string().expect("body");
    assert!(outcome.contains(r#""accepted":1"#), "{outcome}");
    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(events, 1, "only the ordinary request's event is stored");
    drop(conn);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
}

/// A JSON array of a few million zeros: 15 MiB on the wire, half a
/// gigabyte as parsed values.
fn zeros_array() -> Vec<u8> {
    let mut body = Vec::with_capacity(15 * 1024 * 1024);
    body.push(b'[');
    while body.len() < 15 * 1024 * 1024 {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]");
    body
}

#[test]
fn parallel_huge_json_arrays_are_refused_before_they_are_built() {
    let (dir, server, token) = ingest_server();
    let body = Arc::new(zeros_array());
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (url, token, body) = (server.url("/api/v1/events"), token.clone(), body.clone());
            std::thread::spawn(move || {
                let sent = common::server::agent()
                    .post(&url)
                    .header("authorization", &format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .send(&body[..]);
                match sent {
                    Ok(mut response) => (
                        response.status().as_u16(),
                        response.body_mut().read_to_string().unwrap_or_default(),
                    ),
                    // The server may answer and close before the client has
                    // written all 15 MiB (a refusal before the body was
                    // read): the client then sees a broken pipe or a reset
                    // instead of the answer.
                    Err(ureq::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        (0, String::new())
                    }
                    Err(e) => panic!("an answer: {e}"),
                }
            })
        })
        .collect();
    for sender in senders {
        let (status, body) = sender.join().expect("join");
        match status {
            0 => {}
            413 => assert!(body.contains("send at most 10000"), "{body}"),
            503 => assert!(body.contains("error"), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (rss_after, peak) = memory_mib(server.pid());
    eprintln!("16 arrays of 7.9M zeros: peak RSS {peak} MiB, {rss_after} MiB after");
    // Counted before any element is built: the bodies themselves (within
    // the ingest memory budget) are what the peak holds. Built as values
    // first, each took ~500 MB.
    assert!(peak < 768, "peak RSS {peak} MiB");
    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(events, 0, "nothing of a refused array is stored");
}
