//! `ptune predict --pack P --input FILE` (and `-` for standard input): one JSON line per input,
//! in order, with the numbers `ptune predict --pack P TEXT` prints for that input; a bad line
//! gets its own `error` and the rest still run, and the command then exits non-zero.

mod common;

use common::{fails_with, fixture, read_json, succeeds, train_command, write_dataset, write_task};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn ptune(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ptune"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The single-input prediction's list (`predictions[0].top` or `answers`).
fn single(pack: &str, text: &str, key: &str) -> Value {
    let output = ptune(&["predict", "--pack", pack, "--json", text], None);
    succeeds(&output);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    match key {
        "top" => value["predictions"][0]["top"].clone(),
        _ => value[key].clone(),
    }
}

/// Same entries in the same order, numbers within 1e-4 (batched rows are padded).
fn assert_same(batched: &Value, alone: &Value, number: &str) {
    let (a, b) = (batched.as_array().unwrap(), alone.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for key in ["token", "answer"] {
            assert_eq!(x[key], y[key]);
        }
        let (x, y) = (x[number].as_f64().unwrap(), y[number].as_f64().unwrap());
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}

#[test]
fn a_relation_pack_predicts_a_file_of_subjects() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    succeeds(&train_command(&data, &out, "2", "8", &[]).output().unwrap());
    let pack = out.join("P1");
    let pack = pack.to_str().unwrap();
    let file = tmp.path().join("subjects.jsonl");
    let subjects = ["town 99", "\"town 7\"", "", "{\"subject\": \"town 1\"}"];
    std::fs::write(&file, subjects.join("\n")).unwrap();
    let output = ptune(
        &["predict", "--pack", pack, "--input", file.to_str().unwrap()],
        None,
    );
    succeeds(&output);
    let lines = json_lines(&output);
    let numbers: Vec<u64> = lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        [1, 2, 4],
        "one line per non-empty input line, in order"
    );
    for (line, subject) in lines.iter().zip(["town 99", "town 7", "town 1"]) {
        assert_eq!(line["subject"], subject);
        assert_same(&line["top"], &single(pack, subject, "top"), "logprob");
    }
    // Standard input, with a line that is not a subject: its error, the rest, exit 1.
    let stdin = "town 3\n{\"subject\": 5}\ntown 4\n";
    let output = ptune(&["predict", "--pack", pack, "--input", "-"], Some(stdin));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("expected a subject")
    );
    assert_eq!(lines[2]["subject"], "town 4");
    fails_with(output, "1 of 3 inputs could not be predicted");
}

#[test]
fn a_task_pack_predicts_a_file_of_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let task_file = write_task(&tmp.path().join("data"), |_| {});
    let out = tmp.path().join("run");
    let model = fixture("gpt2");
    let train = [
        "train",
        "--model",
        model.to_str().unwrap(),
        "--task",
        task_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "1",
        "--seed",
        "3",
    ];
    succeeds(&ptune(&train, None));
    let pack = out.join("near");
    let pack = pack.to_str().unwrap();
    assert_eq!(
        read_json(&Path::new(pack).join("task.json"))["name"],
        "near"
    );
    let stdin = "town 40\n{\"place\": \"town 41\"}\n{\"where\": 1}\n";
    let output = ptune(&["predict", "--pack", pack, "--input", "-"], Some(stdin));
    let lines = json_lines(&output);
    assert_same(
        &lines[0]["answers"],
        &single(pack, "town 40", "answers"),
        "score",
    );
    assert_same(
        &lines[1]["answers"],
        &single(pack, "town 41", "answers"),
        "score",
    );
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("no field \"place\""),
        "{}",
        lines[2]
    );
    fails_with(output, "1 of 3 inputs could not be predicted");
    // An empty file is one sentence, nothing else.
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    let output = ptune(
        &[
            "predict",
            "--pack",
            pack,
            "--input",
            empty.to_str().unwrap(),
        ],
        None,
    );
    fails_with(output, "has no inputs");
}
