//! The edge of the real binary: built-in TLS (and its reload on SIGHUP),
//! slow or silent clients cut off, the connection cap, and the client
//! address behind a trusted proxy.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::Server;

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
