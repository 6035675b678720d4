//! What the CLI tests share: the tiny fixture model, a generated relation, and running `ptune`.
#![allow(dead_code)]

use assert_cmd::Command;
use std::fs;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ptune-backbone/tests/fixtures")
        .join(name)
}

/// A one-relation LAMA-layout data set whose objects are single tokens of the tiny GPT-2
/// tokenizer: three quarters " sea", one quarter " dog".
pub fn write_dataset(root: &Path) {
    let dir = root.join("fact-retrieval/original/P1");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        root.join("relations.jsonl"),
        r#"{"relation": "P1", "template": "[X] is near the [Y] .", "label": "near"}"#.to_string()
            + "\n",
    )
    .unwrap();
    let facts = |range: std::ops::Range<usize>| -> String {
        range
            .map(|i| {
                let object = if i % 4 == 3 { "dog" } else { "sea" };
                format!("{{\"sub_label\": \"town {i}\", \"obj_label\": \"{object}\", \"predicate_id\": \"P1\"}}\n")
            })
            .collect()
    };
    fs::write(dir.join("train.jsonl"), facts(0..24)).unwrap();
    fs::write(dir.join("dev.jsonl"), facts(24..36)).unwrap();
    fs::write(dir.join("test.jsonl"), facts(36..48)).unwrap();
}

pub fn ptune<const N: usize>(args: [&str; N]) -> std::process::Output {
    Command::cargo_bin("ptune")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// `ptune train` on the tiny GPT-2 fixture and relation P1 of `data`.
pub fn train_command(
    data: &Path,
    out: &Path,
    epochs: &str,
    patience: &str,
    extra: &[&str],
) -> std::process::Command {
    let model = fixture("gpt2");
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("ptune"));
    command
        .args([
            "train",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args([
            "--relation",
            "P1",
            "--out",
            out.to_str().unwrap(),
            "--lr",
            "0.01",
        ])
        .args(["--epochs", epochs, "--patience", patience, "--seed", "3"])
        .args(extra);
    command
}

/// The command exited 0; otherwise its stderr is the failure message.
pub fn succeeds(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn fails_with(output: std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

/// Adds a second relation with the same facts, so a run has a finished and an unfinished one.
pub fn add_second_relation(data: &Path) {
    let from = data.join("fact-retrieval/original/P1");
    let to = data.join("fact-retrieval/original/P2");
    fs::create_dir_all(&to).unwrap();
    for split in ["train", "dev", "test"] {
        let text = fs::read_to_string(from.join(format!("{split}.jsonl"))).unwrap();
        fs::write(
            to.join(format!("{split}.jsonl")),
            text.replace("\"P1\"", "\"P2\""),
        )
        .unwrap();
    }
    let mut relations = fs::read_to_string(data.join("relations.jsonl")).unwrap();
    relations.push_str(
        "{\"relation\": \"P2\", \"template\": \"[X] is by the [Y] .\", \"label\": \"by\"}\n",
    );
    fs::write(data.join("relations.jsonl"), relations).unwrap();
}

/// Every file and directory under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        }
        found.push(path);
    }
    found
}

/// Runs `command` (a `ptune train` of relation P1 into `out`) until P1's first checkpoint is on
/// disk, then interrupts it as Ctrl-C would. The run must still have been in progress: it exits
/// with 130 and P1 is unfinished.
pub fn interrupt_after_first_checkpoint(
    mut command: std::process::Command,
    out: &Path,
) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = out.join("P1/checkpoint/state.json");
    let start = std::time::Instant::now();
    while !state.is_file() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be interrupted"
    );
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(kill.unwrap().success());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(
        !out.join("P1/row.json").exists(),
        "the relation must not look finished"
    );
    output
}

/// A run that starts from the manual words: the prompts before training score exactly as the
/// manual prompt on dev (`train.log`'s epoch-0 line), and the kept ones no lower; returns its
/// summary row.
pub fn assert_starts_at_manual(out: &Path) -> serde_json::Value {
    let row = read_json(&out.join("summary.json"))["relations"][0].clone();
    let manual = row["manual_dev_p1"].as_f64().unwrap();
    assert!(row["dev_p1"].as_f64().unwrap() >= manual, "{row}");
    let log = fs::read_to_string(out.join("train.log")).unwrap();
    let initial: f64 = log
        .lines()
        .find_map(|l| l.split("dev P@1 after 0 epochs: ").nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (initial - manual).abs() < 1e-9,
        "{initial} vs manual {manual}"
    );
    row
}

/// A label task over the tiny tokenizer's words: three quarters "water" (" sea"), one quarter
/// "animal" (" dog"), in train, dev and test files beside `task.json`, edited by `edit`.
pub fn write_task(root: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    fs::create_dir_all(root).unwrap();
    let lines = |range: std::ops::Range<usize>| -> String {
        range
            .map(|i| {
                let label = if i % 4 == 3 { "animal" } else { "water" };
                format!("{{\"place\": \"town {i}\", \"label\": \"{label}\"}}\n")
            })
            .collect()
    };
    fs::write(root.join("train.jsonl"), lines(0..24)).unwrap();
    fs::write(root.join("dev.jsonl"), lines(24..36)).unwrap();
    fs::write(root.join("test.jsonl"), lines(36..48)).unwrap();
    let mut task = serde_json::json!({
        "name": "near",
        "fields": ["place"],
        "template": "[P:2] [place] is near the [P] [Y] .",
        "answer": {"kind": "label", "verbalizers": [["water", "sea"], ["animal", "dog"]]},
        "data": {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}
    });
    edit(&mut task);
    let path = root.join("task.json");
    fs::write(&path, serde_json::to_string_pretty(&task).unwrap()).unwrap();
    path
}
