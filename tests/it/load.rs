//! The quick form of the load run (`just load` is the long one): the real
//! binary on a demo workload, eight clients at once mixing dashboard reads
//! from signed-in sessions with ingest batches; every answer must be a
//! success. Figures belong in BENCHMARKS.md, not here.

use std::sync::Arc;

use crate::common;
use crate::common::clients::admin_ingest_token;
use crate::common::server::{Server, run_cli, session_cookie};

const CLIENTS: usize = 8;
const REQUESTS: usize = 40;

fn sign_in(base: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let page = agent
        .get(&format!("{base}/login"))
        .call()
        .expect("login page");
    let cookie = |response: &ureq::http::Response<ureq::Body>| {
        session_cookie(response).expect("a session cookie")
    };
    let anonymous = cookie(&page);
    let body = page.into_body().read_to_string().unwrap_or_default();
    let csrf = common::csrf_token(&body).expect("csrf");
    let signed_in = agent
        .post(&format!("{base}/login"))
        .header("cookie", &anonymous)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!(
            "username=root&password=a+long+enough+password&csrf_token={csrf}"
        ))
        .expect("login");
    assert_eq!(signed_in.status(), 303);
    cookie(&signed_in)
}

#[test]
fn mixed_reads_and_ingest_from_many_clients_all_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let token = admin_ingest_token(&data);
    let (ok, _, err) = run_cli(
        &[
            "--data-dir",
            &data,
            "demo",
            "--events",
            "20000",
            "--seed",
            "3",
        ],
        &[],
        None,
    );
    assert!(ok, "{err}");
    let server = Server::start(dir.path(), &["--ingest-rate-per-token", "0"]);
    server.wait_ready();
    let base = Arc::new(server.base_url.clone());
    let reads = [
        "/",
        "/?range=7d&split=activity",
        "/events?sort=cost",
        "/team",
        "/api/v1/usage?group_by=model",
    ];
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, token) = (base.clone(), token.clone());
            std::thread::spawn(move || {
                let cookie = sign_in(&base);
                let agent = common::server::agent();
                let mut failures = Vec::new();
                for n in 0..REQUESTS {
                    let answer = if n % 5 == 4 {
                        let body = format!(
                            r#"{{"id":"load-{client}-{n}","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":1,"output_tokens":1}}"#
                        );
                        agent
                            .post(&format!("{base}/api/v1/events"))
                            .header("authorization", &format!("Bearer {token}"))
                            .header("content-type", "application/x-ndjson")
                            .send(body)
                    } else {
                        let path = reads[n % reads.len()];
                        agent.get(&format!("{base}{path}")).header("cookie", &cookie).call()
                    };
                    match answer {
                        Ok(response) if response.status() == 200 => {}
                        Ok(response) => failures.push(format!("request {n}: {}", response.status())),
                        Err(e) => failures.push(format!("request {n}: {e}")),
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("client"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    let (ok, out, err) = run_cli(&["--data-dir", &data, "verify"], &[], None);
    assert!(ok, "{out}{err}");
}
