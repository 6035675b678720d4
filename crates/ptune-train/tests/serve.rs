//! `ptune serve` end to end: a real server on 127.0.0.1 (a free port) and a real HTTP client.
//! Answers equal `ptune predict --pack`'s for relation and task packs, concurrent requests for
//! several packs are answered together, bad requests get a 4xx with one sentence and the
//! server keeps serving, packs load and unload at run time, a full queue answers 503, and
//! SIGTERM finishes the requests in flight and exits 0.

mod common;

use common::{fixture, succeeds, train_command, write_dataset, write_task};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `ptune serve` and the address it listens on.
struct Server {
    child: Child,
    base: String,
    stderr: std::process::ChildStderr,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("ptune"))
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Self {
            child,
            base: url.to_string(),
            stderr,
        }
    }

    /// SIGTERM (once more is harmless), then the exit status and what it wrote to stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).output();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut err).unwrap();
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Status and JSON body of a request (`body`: POST it; `None`: GET, or DELETE for `delete`).
fn call(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let url = format!("{}{path}", server.base);
    let agent = agent();
    let response = match (method, body) {
        ("POST", Some(b)) => agent
            .post(&url)
            .header("content-type", "application/json")
            .send(b),
        ("DELETE", _) => agent.delete(&url).call(),
        _ => agent.get(&url).call(),
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn predict(server: &Server, pack: &str, inputs: Value, top_k: usize) -> (u16, Value) {
    let body = json!({"pack": pack, "inputs": inputs, "top_k": top_k}).to_string();
    call(server, "POST", "/predict", Some(&body))
}

/// What `ptune predict --pack P --json TEXT` prints.
fn predicted(pack: &Path, text: &str) -> Value {
    let output = Command::new(assert_cmd::cargo::cargo_bin("ptune"))
        .args([
            "predict",
            "--pack",
            pack.to_str().unwrap(),
            "--json",
            "--top-k",
            "3",
            text,
        ])
        .output()
        .unwrap();
    succeeds(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Same entries in the same order, numbers within 1e-4.
fn assert_same(served: &Value, alone: &Value, number: &str) {
    let (a, b) = (served.as_array().unwrap(), alone.as_array().unwrap());
    assert_eq!(a.len(), b.len(), "{served} vs {alone}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x["token"], &x["answer"]), (&y["token"], &y["answer"]));
        let (x, y) = (x[number].as_f64().unwrap(), y[number].as_f64().unwrap());
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}

/// Relation P1's pack, trained one epoch on the tiny GPT-2 under `root`.
fn relation_pack(root: &Path) -> PathBuf {
    let data = root.join("data");
    write_dataset(&data);
    let run = root.join("run");
    succeeds(&train_command(&data, &run, "1", "8", &[]).output().unwrap());
    run.join("P1")
}

/// Two relation packs (P1, P2) and a task pack (near) on the tiny GPT-2.
fn packs(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = root.join("data");
    write_dataset(&data);
    common::add_second_relation(&data);
    let run = root.join("run");
    let mut train = train_command(&data, &run, "1", "8", &["--relation", "P2"]);
    succeeds(&train.output().unwrap());
    let task_file = write_task(&root.join("task"), |_| {});
    let task_run = root.join("task-run");
    let model = fixture("gpt2");
    let output = Command::new(assert_cmd::cargo::cargo_bin("ptune"))
        .args(["train", "--model", model.to_str().unwrap(), "--task"])
        .args([
            task_file.to_str().unwrap(),
            "--out",
            task_run.to_str().unwrap(),
        ])
        .args(["--epochs", "1", "--seed", "3"])
        .output()
        .unwrap();
    succeeds(&output);
    (run.join("P1"), run.join("P2"), task_run.join("near"))
}

#[test]
fn serves_mixed_packs_refuses_bad_requests_and_drains_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let (p1, p2, near) = packs(tmp.path());
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let missing = tmp.path().join("no-such-pack");
    let server = Server::start(&[
        "--pack",
        &s(&p1),
        "--pack",
        &s(&p2),
        "--pack",
        &format!("near={}", s(&near)),
        "--pack",
        &s(&missing),
        "--max-inputs",
        "4",
        "--max-wait-ms",
        "200",
    ]);
    let (status, health) = call(&server, "GET", "/health", None);
    assert_eq!((status, &health["packs"]), (200, &json!(3)), "{health}");

    // Each pack answers what `ptune predict --pack` prints, alone and in concurrent mixes.
    let cases = [
        (&p1, "P1", "town 40"),
        (&p2, "P2", "town 7"),
        (&near, "near", "town 41"),
    ];
    let expected: Vec<Value> = cases
        .iter()
        .map(|(dir, _, text)| predicted(dir, text))
        .collect();
    let check = |name: &str, text: &str, alone: &Value, served: &Value| match name {
        "near" => assert_same(&served["answers"], &alone["answers"], "score"),
        _ => {
            assert_eq!(served["subject"], text);
            assert_same(&served["top"], &alone["predictions"][0]["top"], "logprob");
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let (server, (_, name, text)) = (&server, cases[i % 3]);
                scope.spawn(move || (i % 3, predict(server, name, json!([text, text]), 3)))
            })
            .collect();
        for handle in handles {
            let (c, (status, body)) = handle.join().unwrap();
            assert_eq!(status, 200, "{body}");
            let (_, name, text) = cases[c];
            assert_eq!(body["pack"], name);
            for served in body["results"].as_array().unwrap() {
                check(name, text, &expected[c], served);
            }
        }
    });

    // Bad requests: a 4xx with one sentence each, and the server goes on.
    let bad = [
        ("{\"pack\": ", 400, "not a predict request"),
        (
            "{\"pack\": \"P1\", \"inputs\": []}",
            400,
            "\"inputs\" is empty",
        ),
        (
            "{\"pack\": \"P9\", \"inputs\": [\"x\"]}",
            404,
            "no pack named P9 is loaded (loaded: P1, P2, near)",
        ),
        (
            "{\"pack\": \"P1\", \"inputs\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}",
            413,
            "at most 4",
        ),
        (
            "{\"pack\": \"P1\", \"inputs\": [\"x\"], \"top_k\": 0}",
            400,
            "\"top_k\" must be",
        ),
        (
            "{\"pack\": \"P1\", \"inputs\": [\"x\", \"\"]}",
            422,
            "input 2 is empty",
        ),
        (
            "{\"pack\": \"near\", \"inputs\": [{\"where\": 1}]}",
            422,
            "input 1 is not",
        ),
    ];
    for (body, want, needle) in bad {
        let (status, reply) = call(&server, "POST", "/predict", Some(body));
        let message = reply["error"].as_str().unwrap_or_default();
        assert_eq!(status, want, "{body}: {reply}");
        assert!(message.contains(needle), "{body}: {message}");
    }
    let long = vec!["town"; 200].join(" ");
    let (status, reply) = predict(&server, "P1", json!(["town 1", long]), 3);
    assert_eq!(status, 422, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("input 2 cannot be predicted")
    );
    let (status, _) = call(&server, "GET", "/nowhere", None);
    assert_eq!(status, 404);

    // Packs load and unload at run time; a name is taken once; a bad pack is refused.
    let load = |body: Value| call(&server, "POST", "/packs", Some(&body.to_string()));
    let (status, info) = load(json!({"path": s(&p2), "name": "again"}));
    assert_eq!(
        (status, &info["name"], &info["kind"]),
        (201, &json!("again"), &json!("relation"))
    );
    assert_eq!(load(json!({"path": s(&p1), "name": "again"})).0, 409);
    let (status, reply) = load(json!({"path": s(&missing)}));
    assert_eq!(status, 422, "{reply}");
    let (status, listed) = call(&server, "GET", "/packs", None);
    let names: Vec<&str> = listed["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!((status, names), (200, vec!["P1", "P2", "near", "again"]));
    let (status, body) = predict(&server, "again", json!(["town 7"]), 3);
    assert_eq!(status, 200);
    check("P2", "town 7", &expected[1], &body["results"][0]);
    assert_eq!(call(&server, "DELETE", "/packs/again", None).0, 200);
    assert_eq!(call(&server, "DELETE", "/packs/again", None).0, 404);

    let (_, metrics) = call(&server, "GET", "/metrics", None);
    assert_eq!(metrics["requests"], 12 + 7 + 1 + 1, "{metrics}");
    assert!(metrics["batches"].as_u64().unwrap() <= 13, "{metrics}");
    assert!(
        metrics["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{metrics}"
    );

    // SIGTERM while a request is in flight (it waits --max-wait-ms for company): it is
    // answered, and the server exits 0.
    std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| predict(&server, "P1", json!(["town 1", "town 2"]), 3));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let pid = server.child.id().to_string();
        succeeds(&Command::new("kill").args(["-TERM", &pid]).output().unwrap());
        let (status, body) = in_flight.join().unwrap();
        assert_eq!(status, 200, "{body}");
    });
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("no-such-pack not loaded"), "{stderr}");
    assert!(stderr.contains("stopped after"), "{stderr}");
}

#[test]
fn a_full_queue_answers_503_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = relation_pack(tmp.path());
    let server = Server::start(&[
        "--pack",
        pack.to_str().unwrap(),
        "--queue",
        "1",
        "--max-batch",
        "1",
        "--max-wait-ms",
        "0",
    ]);
    let inputs = json!(["town 1", "town 2", "town 3", "town 4"]);
    let statuses: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..48)
            .map(|_| scope.spawn(|| predict(&server, "P1", inputs.clone(), 1)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy = statuses.iter().filter(|(s, _)| *s == 503).count();
    for (status, body) in &statuses {
        match status {
            200 => assert_eq!(body["results"].as_array().unwrap().len(), 4),
            503 => assert!(body["error"].as_str().unwrap().contains("queue is full")),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(busy > 0, "48 concurrent requests never filled a queue of 1");
    let (_, metrics) = call(&server, "GET", "/metrics", None);
    assert_eq!(metrics["busy"], busy);
    assert_eq!(call(&server, "GET", "/health", None).0, 200);
    let (exit, _) = server.stop();
    assert!(exit.success());
}

#[test]
fn a_pack_for_another_model_is_refused_and_the_server_still_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = relation_pack(tmp.path());
    let bert = fixture("bert");
    let server = Server::start(&[
        "--model",
        bert.to_str().unwrap(),
        "--pack",
        pack.to_str().unwrap(),
    ]);
    let (_, health) = call(&server, "GET", "/health", None);
    assert_eq!(health["packs"], 0, "{health}");
    let body = json!({"path": pack.to_str().unwrap()}).to_string();
    let (status, reply) = call(&server, "POST", "/packs", Some(&body));
    assert_eq!(status, 422, "{reply}");
    let message = reply["error"].as_str().unwrap();
    assert!(message.contains("this pack was trained for"), "{message}");
    let (status, reply) = predict(&server, "P1", json!(["town 1"]), 1);
    assert_eq!(status, 404, "{reply}");
    let (exit, stderr) = server.stop();
    assert!(exit.success());
    assert!(stderr.contains("this pack was trained for"), "{stderr}");
}
