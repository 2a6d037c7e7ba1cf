//! `tokentally import` through the real binary: a realistic Claude Code
//! transcript (content-block repeats, a sidechain replay, a synthetic
//! message, a huge snapshot line), our own JSONL and CSV, incremental
//! re-runs, and every unusable line named.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::server::run_cli;
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/claude-code/projects/-home-ada-src-web-shop"
);
const SESSION: &str = "5c1a7f0e-8a55-4f7e-9a55-0d3c3b2b9e11.jsonl";

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(users: &[&str]) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let work = Workspace { dir };
        for user in users {
            let (ok, _, err) = work.cli(
                &["user", "add", user, "--role", "member", "--password-stdin"],
                Some("a long enough password\n"),
            );
            assert!(ok, "{err}");
        }
        work
    }

    fn data(&self) -> &str {
        self.dir.path().to_str().expect("utf-8")
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut full = vec!["--data-dir", self.data()];
        full.extend_from_slice(args);
        run_cli(&full, &[], stdin)
    }

    /// A copy of the fixture transcript folder inside the workspace.
    fn transcripts(&self) -> PathBuf {
        let projects = self
            .dir
            .path()
            .join("claude/projects/-home-ada-src-web-shop");
        std::fs::create_dir_all(&projects).expect("mkdir");
        std::fs::copy(Path::new(FIXTURE).join(SESSION), projects.join(SESSION)).expect("copy");
        projects.join(SESSION)
    }

    fn totals(&self) -> Value {
        let (ok, out, err) = self.cli(
            &[
                "report",
                "--json",
                "--from",
                "2020-01-01",
                "--to",
                "2030-01-01",
                "--tz",
                "UTC",
                "--bucket",
                "month",
            ],
            None,
        );
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).expect("json")["totals"].clone()
    }
}

/// An event's id, project, session and machine.
type Labels = (String, Option<String>, Option<String>, Option<String>);

/// The [`Labels`] of every event in the database of the data directory
/// `data`, ordered by id.
fn labels_in(data: &Path) -> Vec<Labels> {
    let conn = rusqlite::Connection::open(data.join("tokentally.db")).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT e.external_id, p.name, s.name, m.name FROM events e
             LEFT JOIN projects p ON p.id = e.project_id
             LEFT JOIN event_sessions s ON s.id = e.session_id
             LEFT JOIN event_machines m ON m.id = e.machine_id ORDER BY 1",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
}

/// This host's name, as the import sends it by default (Linux).
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// The oracle: unique (message id, request id) usages of a transcript,
/// computed straight from its lines, without `<synthetic>` ones.
fn expected_from_transcript(path: &Path) -> [i64; 5] {
    let mut seen = std::collections::HashSet::new();
    let mut sums = [0i64; 5];
    for line in std::fs::read_to_string(path).expect("read").lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let message = &value["message"];
        let usage = &message["usage"];
        if usage.is_null() || message["model"] == "<synthetic>" {
            continue;
        }
        let key = format!("{}:{}", message["id"], value["requestId"]);
        if !seen.insert(key) {
            continue;
        }
        sums[0] += 1;
        for (i, field) in [
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ]
        .iter()
        .enumerate()
        {
            sums[i + 1] += usage[field].as_i64().unwrap_or(0);
        }
    }
    sums
}

fn as_array(totals: &Value) -> [i64; 5] {
    [
        "events",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
    ]
    .map(|f| totals[f].as_i64().unwrap_or(-1))
}

#[test]
fn a_claude_code_transcript_is_counted_once_and_read_incrementally() {
    let work = Workspace::new(&["ada"]);
    let transcript = work.transcripts();
    // The huge snapshot line of a long session: read past, never held.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&transcript)
        .expect("open");
    let snapshot = format!(
        "{{\"type\":\"file-history-snapshot\",\"snapshot\":\"{}\"}}\n",
        "x".repeat(17 * 1024 * 1024)
    );
    file.write_all(snapshot.as_bytes()).expect("append");
    drop(file);
    let expected = expected_from_transcript(&transcript);
    assert_eq!(expected[0], 3, "the fixture holds three distinct calls");

    let folder = work.dir.path().join("claude");
    let (ok, out, err) = work.cli(&["import", folder.to_str().expect("utf-8")], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("[claude-code]"), "{out}");
    assert!(out.contains("3 new"), "{out}");
    assert!(
        out.contains("1 <synthetic> messages") && out.contains("1 lines over 16 MiB"),
        "{out}"
    );
    assert_eq!(as_array(&work.totals()), expected);

    // Again: nothing to read.
    let (ok, out, _) = work.cli(&["import", folder.to_str().expect("utf-8")], None);
    assert!(ok);
    assert!(out.contains("0 bytes read"), "{out}");

    // Claude Code appends a call and starts another line.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&transcript)
        .expect("open");
    let new_call = r#"{"type":"assistant","sessionId":"s","cwd":"/home/ada/src/web-shop","requestId":"req_011CD","timestamp":"2026-05-01T10:05:00.000Z","message":{"id":"msg_01New","model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":5,"output_tokens":50,"cache_read_input_tokens":100,"cache_creation_input_tokens":0}}}"#;
    write!(file, "{new_call}\n{}", &new_call[..40]).expect("append");
    drop(file);
    let (ok, out, _) = work.cli(&["import", folder.to_str().expect("utf-8")], None);
    assert!(ok, "{out}");
    assert!(
        out.contains("1 events (1 new") && out.contains("from byte"),
        "{out}"
    );
    let totals = as_array(&work.totals());
    assert_eq!(totals[0], 4);
    assert_eq!(totals[1], expected[1] + 5);

    // The unfinished line is read once it is complete.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&transcript)
        .expect("open");
    let rest = new_call[40..]
        .replace("msg_01New", "msg_01Nxt")
        .replace("req_011CD", "req_011CE");
    writeln!(file, "{rest}").expect("append");
    drop(file);
    // The unfinished line was left alone; now whole, it is read (as a call
    // of its own: its second half names another message).
    let (ok, out, err) = work.cli(&["import", folder.to_str().expect("utf-8")], None);
    assert!(ok, "{out}{err}");
    assert_eq!(as_array(&work.totals())[0], 5);
}

#[test]
fn transcripts_need_a_user_when_there_are_several_and_nothing_is_consumed() {
    let work = Workspace::new(&["ada", "grace"]);
    let transcript = work.transcripts();
    let (ok, _, err) = work.cli(&["import", transcript.to_str().expect("utf-8")], None);
    assert!(!ok && err.contains("--user"), "{err}");
    // Nothing was marked as read: with a user, every call is imported.
    let (ok, out, err) = work.cli(
        &[
            "import",
            "--user",
            "grace",
            transcript.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("3 new"), "{out}");
}

#[test]
fn a_replaced_file_is_read_again_without_double_counting() {
    let work = Workspace::new(&["ada"]);
    let transcript = work.transcripts();
    let (ok, _, err) = work.cli(&["import", transcript.to_str().expect("utf-8")], None);
    assert!(ok, "{err}");
    let before = as_array(&work.totals());
    // The same calls in another order: a new head, so read from the start.
    let text = std::fs::read_to_string(&transcript).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    std::fs::write(&transcript, lines.join("\n") + "\n").expect("rewrite");
    let (ok, out, _) = work.cli(&["import", transcript.to_str().expect("utf-8")], None);
    assert!(ok, "{out}");
    assert!(out.contains("0 new") && !out.contains("from byte"), "{out}");
    assert_eq!(as_array(&work.totals()), before);
}

#[test]
fn our_jsonl_and_csv_import_with_every_bad_line_named() {
    let work = Workspace::new(&["ada", "grace"]);
    let jsonl = work.dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"id":"j1","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5","user":"ada","input_tokens":100}"#, "\n",
            r#"{"id":"j2","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5","user":"grace","input_tokens":200,"cost":"0.01"}"#, "\n",
            r#"{"id":"j3","timestamp":"not a time","model":"gpt-5","user":"ada"}"#, "\n",
            r#"{"id":"j4","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5","user":"nobody"}"#, "\n",
            r#"{"id":"j5","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5"}"#, "\n",
        ),
    )
    .expect("write");
    let csv = work.dir.path().join("events.csv");
    std::fs::write(
        &csv,
        "id,timestamp,user,model,activity,input_tokens,output_tokens,cost\n\
         c1,2026-04-02T08:00:00+02:00,ada,claude-sonnet-4-5,\"review, quick\",1000,10,\n\
         c2,2026-04-02T08:00:00+02:00,ada,claude-sonnet-4-5,chat,lots,10,\n",
    )
    .expect("write");

    let (ok, _, _) = work.cli(
        &["import", "--dry-run", jsonl.to_str().expect("utf-8")],
        None,
    );
    assert!(!ok, "a dry run reports bad lines too");
    assert_eq!(work.totals()["events"], 0, "a dry run writes nothing");

    let (ok, out, err) = work.cli(
        &[
            "import",
            jsonl.to_str().expect("utf-8"),
            csv.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(!ok, "bad lines make the exit code non-zero");
    let jsonl_name = jsonl.display().to_string();
    for needle in [
        format!("{jsonl_name}:3: timestamp"),
        format!("{jsonl_name}:4: user: no user named \"nobody\""),
        format!("{jsonl_name}:5: the line names no user"),
        format!("{}:3: input_tokens", csv.display()),
    ] {
        assert!(out.contains(&needle), "{needle} missing from\n{out}");
    }
    assert!(err.contains("could not be imported"), "{err}");
    let totals = work.totals();
    assert_eq!(
        totals["events"], 3,
        "the valid lines were imported: {totals}"
    );
    assert_eq!(totals["input_tokens"], 1300);

    let (ok, out, err) = work.cli(
        &["import", csv.to_str().expect("utf-8"), "--format", "csv"],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("0 bytes read"), "{out}");
}

#[test]
fn import_into_a_remote_server_through_its_api() {
    use crate::common::server::Server;
    let server_side = Workspace::new(&["ada"]);
    let (ok, token, err) = server_side.cli(
        &["token", "create", "--user", "ada", "--scope", "ingest"],
        None,
    );
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let server = Server::start(server_side.dir.path(), &[]);
    server.wait_ready();

    // Another machine: no database of its own, only files.
    let laptop = tempfile::tempdir().expect("tempdir");
    let transcripts = laptop.path().join("projects");
    std::fs::create_dir_all(&transcripts).expect("mkdir");
    std::fs::copy(Path::new(FIXTURE).join(SESSION), transcripts.join(SESSION)).expect("copy");
    let events = laptop.path().join("more.jsonl");
    std::fs::write(
        &events,
        concat!(
            r#"{"id":"r1","timestamp":"2026-05-02T08:00:00Z","model":"gpt-5","input_tokens":7}"#, "\n",
            r#"{"id":"r2","timestamp":"2026-05-02T08:00:00Z","model":"gpt-5","user":"grace","input_tokens":9}"#, "\n",
        ),
    )
    .expect("write");
    let state = laptop.path().join("state.json");
    let remote = |paths: &[&str]| {
        let mut args = vec![
            "import",
            "--server",
            &server.base_url,
            "--token",
            &token,
            "--state",
            state.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(paths);
        let mut full = vec!["--data-dir"];
        let nowhere = laptop.path().join("no-database");
        let nowhere = nowhere.to_str().expect("utf-8").to_owned();
        full.push(&nowhere);
        full.extend(args);
        run_cli(&full, &[], None)
    };
    let (ok, out, err) = remote(&[
        transcripts.to_str().expect("utf-8"),
        events.to_str().expect("utf-8"),
    ]);
    assert!(!ok, "grace's line is refused by the server: {out}{err}");
    assert!(out.contains("3 new") && out.contains("1 new"), "{out}");
    assert!(
        out.contains(&format!("{}:2: user:", events.display())),
        "{out}"
    );
    assert!(
        !laptop.path().join("no-database").exists(),
        "no local database was made"
    );

    let (ok, out, _) = remote(&[
        transcripts.to_str().expect("utf-8"),
        events.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        out.matches("0 bytes read").count(),
        2,
        "positions were remembered: {out}"
    );

    let (ok, out, err) = {
        let mut args = vec![
            "import",
            "--server",
            server.base_url.as_str(),
            "--token",
            "tt_wrong",
        ];
        let state2 = laptop.path().join("state2.json");
        let state2 = state2.to_str().expect("utf-8").to_owned();
        args.extend(["--state", state2.as_str(), events.to_str().expect("utf-8")]);
        run_cli(&args, &[], None)
    };
    assert!(!ok, "{out}");
    assert!(err.contains("401"), "{err}");
    let (status, _) = server.terminate();
    assert!(status.success());
    let totals = server_side.totals();
    assert_eq!(totals["events"], 4, "{totals}");
    // Each event went with its session and this machine's name.
    let stored = labels_in(server_side.dir.path());
    assert_eq!(stored.len(), 4);
    let sessions: Vec<Option<&str>> = stored.iter().map(|e| e.2.as_deref()).collect();
    let session = Some("5c1a7f0e-8a55-4f7e-9a55-0d3c3b2b9e11");
    assert_eq!(sessions, [session, session, session, None], "{stored:?}");
    if let Some(host) = host_name() {
        assert!(
            stored.iter().all(|e| e.3.as_deref() == Some(host.as_str())),
            "{stored:?} from {host}"
        );
    }
}

/// What Claude Code names a working directory's folder under `projects/`.
fn claude_folder(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[test]
fn transcripts_name_their_project_session_and_machine() {
    let work = Workspace::new(&["ada"]);
    // A repository directory that exists on this machine, named by its
    // folder only: the lines of this (older) transcript carry no `cwd`.
    let repo = work.dir.path().join("src").join("web-shop.v2");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let folder = work
        .dir
        .path()
        .join(".claude/projects")
        .join(claude_folder(&repo));
    std::fs::create_dir_all(&folder).expect("mkdir");
    let line = |request: &str, cwd: Option<&str>| {
        let mut value = serde_json::json!({
            "type": "assistant", "sessionId": "s-42", "requestId": request,
            "timestamp": "2026-05-01T10:00:00Z",
            "message": {"id": format!("msg-{request}"), "model": "claude-sonnet-4-5",
                        "usage": {"input_tokens": 10, "output_tokens": 1}}
        });
        if let Some(cwd) = cwd {
            value["cwd"] = serde_json::json!(cwd);
        }
        value.to_string()
    };
    std::fs::write(
        folder.join("s-42.jsonl"),
        format!(
            "{}\n{}\n",
            line("r1", None),
            line("r2", Some("/home/ada/src/api"))
        ),
    )
    .expect("write");
    let events = work.dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        concat!(
            r#"{"id":"j1","timestamp":"2026-05-02T08:00:00Z","model":"gpt-5","session":"chat-7"}"#, "\n",
            r#"{"id":"j2","timestamp":"2026-05-02T08:00:00Z","model":"gpt-5","machine":"ci-runner"}"#, "\n",
        ),
    )
    .expect("write");
    let (ok, out, err) = work.cli(
        &[
            "import",
            "--machine",
            "build-box",
            work.dir.path().join(".claude").to_str().expect("utf-8"),
            events.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let text = |v: &str| Some(v.to_owned());
    assert_eq!(
        labels_in(work.dir.path()),
        vec![
            ("j1".into(), None, text("chat-7"), text("build-box")),
            ("j2".into(), None, None, text("ci-runner")),
            (
                "msg-r1:r1".into(),
                text("web-shop.v2"),
                text("s-42"),
                text("build-box")
            ),
            (
                "msg-r2:r2".into(),
                text("api"),
                text("s-42"),
                text("build-box")
            ),
        ]
    );
    // A machine name no event could carry is refused before anything is read.
    let (ok, _, err) = work.cli(
        &[
            "import",
            "--machine",
            "box\u{202e}",
            events.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        !ok && err.contains("--machine: must not contain invisible"),
        "{err}"
    );
}

#[test]
fn import_applies_the_event_apis_rules_and_names_file_and_line() {
    let work = Workspace::new(&["ada"]);
    let jsonl = work.dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"id":"ok","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5","user":"ada","input_tokens":1}"#, "\n",
            r#"{"id":"big","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5","user":"ada","input_tokens":10000000000}"#, "\n",
            r#"{"id":"esc","timestamp":"2026-04-01T08:00:00Z","model":"gpt\u001b[31m","user":"ada"}"#, "\n",
            r#"{"id":"epoch","timestamp":"1970-01-01T00:00:01Z","model":"gpt-5","user":"ada"}"#, "\n",
            r#"{"id":"rtl","timestamp":"2026-04-01T08:00:00Z","model":"gpt-5","project":"web\u202e","user":"ada"}"#, "\n",
        ),
    )
    .expect("write");
    let transcript = work.dir.path().join("session.jsonl");
    let long_id = "m".repeat(300);
    std::fs::write(
        &transcript,
        format!(
            concat!(
                r#"{{"type":"assistant","sessionId":"s","requestId":"r1","timestamp":"2026-04-01T08:00:00Z","message":{{"id":"{long}","model":"claude-sonnet-4-5","usage":{{"input_tokens":1}}}}}}"#, "\n",
                r#"{{"type":"assistant","sessionId":"s","requestId":"r2","timestamp":"2026-04-01T08:00:00Z","message":{{"id":"m2","model":"claude-sonnet-4-5","usage":{{"input_tokens":-5}}}}}}"#, "\n",
                r#"{{"type":"assistant","sessionId":"s","requestId":"r3","timestamp":"2026-04-01T08:00:00Z","message":{{"id":"m3","model":"claude-sonnet-4-5","usage":{{"cache_read_input_tokens":2000000000}}}}}}"#, "\n",
            ),
            long = long_id
        ),
    )
    .expect("write");
    let (ok, out, _) = work.cli(
        &[
            "import",
            "--user",
            "ada",
            jsonl.to_str().expect("utf-8"),
            transcript.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(!ok, "bad lines make the exit code non-zero");
    let (events, transcript) = (jsonl.display(), transcript.display());
    for needle in [
        format!("{events}:2: input_tokens: must be at most 1000000000"),
        format!("{events}:3: model: must not contain control characters"),
        format!("{events}:4: timestamp: is more than 3653 days"),
        format!("{events}:5: project: must not contain invisible"),
        format!("{transcript}:1: id: must be at most 256 characters"),
        format!("{transcript}:2: message.usage.input_tokens: must not be negative"),
        format!("{transcript}:3: cache_read_tokens: must be at most"),
    ] {
        assert!(out.contains(&needle), "{needle} missing from\n{out}");
    }
    assert_eq!(work.totals()["events"], 1, "only the valid line");
}

/// A transcript of `calls` calls in session `session`, each call written
/// once per content block (two or three times), as Claude Code does.
fn write_session(folder: &Path, session: usize, calls: usize) -> PathBuf {
    std::fs::create_dir_all(folder).expect("mkdir");
    let path = folder.join(format!("{session:08}-aaaa-4f7e-9a55-0d3c3b2b9e11.jsonl"));
    let mut text = String::new();
    for call in 0..calls {
        for _block in 0..2 + (call % 2) {
            text.push_str(&serde_json::json!({
                "type": "assistant", "sessionId": format!("s{session}"),
                "requestId": format!("req_{session}_{call}"),
                "timestamp": format!("2026-05-{:02}T10:{:02}:00Z", 1 + call % 28, call % 60),
                "message": {"id": format!("msg_{session}_{call}"), "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": "x".repeat(call % 300)}],
                    "usage": {"input_tokens": call + 1, "output_tokens": 10 * session + 1,
                        "cache_read_input_tokens": 7, "cache_creation_input_tokens": 0}}
            }).to_string());
            text.push('\n');
        }
    }
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn many_files_import_in_one_run_with_each_counted_and_a_failure_named() {
    let work = Workspace::new(&["ada"]);
    let root = work.dir.path().join("claude/projects");
    let mut expected = [0i64; 5];
    let mut sessions = Vec::new();
    for session in 0..24 {
        let folder = root.join(format!("-home-ada-src-p{}", session % 5));
        let path = write_session(&folder, session, 40 + session * 7);
        let sums = expected_from_transcript(&path);
        for (total, sum) in expected.iter_mut().zip(sums) {
            *total += sum;
        }
        sessions.push((path, sums[0]));
    }
    // A link to nowhere among them: the import names it and fails, and
    // nothing read is lost or counted twice by the runs after it.
    let dangling = root.join("-home-ada-src-p2/0000zzzz-dangling.jsonl");
    std::os::unix::fs::symlink(root.join("nowhere"), &dangling).expect("symlink");
    let root_arg = root.to_str().expect("utf-8");
    let (ok, out, err) = work.cli(&["import", root_arg], None);
    assert!(!ok, "{out}");
    assert!(err.contains("0000zzzz-dangling.jsonl"), "{err}");

    std::fs::remove_file(&dangling).expect("rm");
    let (ok, out, err) = work.cli(&["import", root_arg], None);
    assert!(ok, "{out}{err}");
    assert_eq!(as_array(&work.totals()), expected);
    // Every file reports its own calls; the repeated blocks are duplicates.
    for (path, calls) in &sessions {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let line = out
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in {out}"));
        assert!(line.contains("[claude-code]"), "{line}");
        let blocks = calls * 2 + calls / 2;
        let first_run_left = line.contains("from byte");
        if !first_run_left {
            assert!(
                line.contains(&format!("{blocks} events")),
                "{line}: {calls} calls in {blocks} lines"
            );
        }
    }
    let (ok, out, _) = work.cli(&["import", root_arg], None);
    assert!(ok && out.contains("imported 0 new events"), "{out}");
    assert!(out.contains("(0 bytes)"), "{out}");
    assert_eq!(as_array(&work.totals()), expected);
}
