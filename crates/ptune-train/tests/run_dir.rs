//! The run directory is ptune's alone: `--overwrite` only replaces a run ptune made that holds
//! none of the run's inputs, one process at a time holds a run, a bad start writes nothing, and a
//! run killed at any moment resumes to the bytes of an uninterrupted one.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `ptune train` of relation P1 on the tiny GPT-2 with only the given settings.
fn train_with(data: &Path, out: &Path, args: &[&str]) -> Command {
    let model = fixture("gpt2");
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("ptune"));
    command
        .args(["train", "--model", model.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap(), "--relation", "P1"])
        .args(["--out", out.to_str().unwrap()])
        .args(args);
    command
}

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

const QUICK: [&str; 6] = ["--epochs", "2", "--patience", "2", "--lr", "0.01"];

fn quick(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut command = train_with(data, out, &QUICK);
    command.args(extra);
    run(command)
}

fn dataset(tmp: &Path) -> std::path::PathBuf {
    let data = tmp.join("data");
    write_dataset(&data);
    data
}

#[test]
fn overwrite_refuses_what_ptune_did_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let mine = tmp.path().join("mine");
    fs::create_dir_all(&mine).unwrap();
    fs::write(mine.join("notes.txt"), "mine").unwrap();
    fails_with(
        quick(&data, &mine, &["--overwrite"]),
        "was not made by ptune train",
    );
    fails_with(
        quick(&data, &data, &["--overwrite"]),
        "was not made by ptune train",
    );
    fails_with(
        quick(&data, tmp.path(), &["--overwrite"]),
        "was not made by ptune train",
    );
    assert!(mine.join("notes.txt").is_file());
    assert!(data.join("relations.jsonl").is_file());
}

#[test]
fn overwrite_refuses_a_run_holding_an_input_or_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let out = tmp.path().join("run");
    succeeds(&quick(&data, &out, &[]));
    assert!(out.join(".ptune-run").is_file());

    // The data set moved into the finished run, then used by a run replacing it.
    let inner = out.join("data");
    write_dataset(&inner);
    fails_with(
        quick(&inner, &out, &["--overwrite"]),
        "an input of this run",
    );
    assert!(inner.join("relations.jsonl").is_file());
    fs::remove_dir_all(&inner).unwrap();

    let mut here = train_with(&data, Path::new("."), &QUICK);
    here.arg("--overwrite").current_dir(&out);
    fails_with(run(here), "the working directory");
    assert!(out.join("P1/prompt.safetensors").is_file());

    // A run of ptune's own that holds no input is replaced.
    fs::write(out.join("P1/stale.txt"), "old").unwrap();
    succeeds(&quick(&data, &out, &["--overwrite"]));
    assert!(!out.join("P1/stale.txt").exists());
    assert!(out.join("P1/prompt.safetensors").is_file());
}

#[test]
fn a_bad_start_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let out = tmp.path().join("run");
    let cases: [(&[&str], &str); 8] = [
        (&["--patience", "0"], "--patience must be at least 1"),
        (&["--lr", "inf"], "--lr must be a positive finite number"),
        (&["--lr-decay=-1"], "--lr-decay must be in (0, 1]"),
        (
            &["--weight-decay", "NaN"],
            "--weight-decay must be a finite",
        ),
        (
            &["--epochs", "18446744073709551615"],
            "--epochs must be between 1 and 100000",
        ),
        (&["--relation", "P1"], "--relation P1 is given twice"),
        (&["--template", "[P:2] [Y] [X]"], "[Y]"),
        (&["--encoder", "transformer"], "transformer"),
    ];
    for (args, needle) in cases {
        fails_with(run(train_with(&data, &out, args)), needle);
        assert!(!out.exists(), "{args:?} left {} behind", out.display());
    }
    let mut missing = train_with(&data, &out, &[]);
    let args: Vec<String> = missing
        .get_args()
        .map(|a| a.to_string_lossy().replace("gpt2", "no-such-model"))
        .collect();
    missing = Command::new(missing.get_program());
    missing.args(args);
    fails_with(run(missing), "no-such-model");
    assert!(!out.exists());
}

#[test]
fn a_manual_template_with_prompts_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let relations = data.join("relations.jsonl");
    let text = fs::read_to_string(&relations).unwrap();
    fs::write(&relations, text.replace("[X] is near", "[X] [P:3] is near")).unwrap();
    let out = tmp.path().join("run");
    fails_with(quick(&data, &out, &[]), "manual template");
    assert!(!out.exists());
}

/// A run being trained is held: replacing it or resuming it from another process is refused, and
/// of several processes started at once on one `--out`, exactly one runs.
#[test]
fn one_process_at_a_time_holds_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let out = tmp.path().join("run");
    let mut long = train_with(&data, &out, &["--epochs", "400", "--patience", "400"]);
    let mut child = long
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&out.join("P1/checkpoint/state.json"));
    fails_with(
        quick(&data, &out, &["--overwrite"]),
        "in use by another ptune process",
    );
    fails_with(
        ptune(["train", "--resume", out.to_str().unwrap()]),
        "in use by another ptune process",
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let racers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = train_with(&data, &tmp.path().join("race"), &QUICK);
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one of the simultaneous starts may run");
    for lost in outputs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&lost.stderr);
        assert!(
            err.contains("already exists") && !err.contains("panicked"),
            "{err}"
        );
    }
}

fn wait_for(path: &Path) {
    for _ in 0..1500 {
        if path.is_file() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never appeared", path.display());
}

/// `--resume` with another model under the recorded path is refused, not mixed into the run.
#[test]
fn resume_refuses_a_different_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let model = tmp.path().join("model");
    copy_dir(&fixture("gpt2"), &model);
    let out = tmp.path().join("run");
    let mut first = Command::new(assert_cmd::cargo::cargo_bin("ptune"));
    first
        .args(["train", "--model", model.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap(), "--relation", "P1"])
        .args(["--out", out.to_str().unwrap()])
        .args(["--epochs", "400", "--patience", "400", "--lr", "0.01"]);
    interrupt_after_first_checkpoint(first, &out);
    fs::remove_dir_all(&model).unwrap();
    copy_dir(&fixture("llama_gqa_tied"), &model);
    fails_with(
        ptune(["train", "--resume", out.to_str().unwrap()]),
        "no longer matches",
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A flat dev score no longer renews patience: with a learning rate too small to change P@1,
/// `--patience 1` stops after one epoch whatever `--epochs` says.
#[test]
fn a_flat_dev_score_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let out = tmp.path().join("run");
    let output = assert_cmd::Command::from_std(train_with(
        &data,
        &out,
        &["--epochs", "100000", "--patience", "1", "--lr", "1e-12"],
    ))
    .timeout(Duration::from_secs(120))
    .output()
    .unwrap();
    succeeds(&output);
    let row = read_json(&out.join("P1/row.json"));
    assert_eq!(row["epochs"], 1, "{row}");
}

/// kill -9 at random moments, then `--resume` until done: the packs and the metrics equal an
/// uninterrupted run's, byte for byte.
#[test]
fn kill_nine_at_random_moments_then_resume_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    add_second_relation(&data);
    let settings = [
        "--epochs",
        "12",
        "--patience",
        "12",
        "--lr",
        "0.01",
        "--seed",
        "5",
    ];
    let start = |out: &Path| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("ptune"));
        c.args(["train", "--model", fixture("gpt2").to_str().unwrap()])
            .args(["--data", data.to_str().unwrap(), "--all-relations"])
            .args(["--out", out.to_str().unwrap()])
            .args(settings);
        c
    };
    let whole = tmp.path().join("whole");
    let clock = std::time::Instant::now();
    succeeds(&run(start(&whole)));
    let mut span = clock.elapsed().as_millis() as u64;

    // Kill at moments spread over the run's length (resuming from its checkpoints, so every
    // attempt gets further), then let the last attempt finish. A run that finishes before any
    // kill lands (the timed run was slowed by a busy machine) starts over with a shorter span.
    let broken = tmp.path().join("broken");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut kills = 0;
    let mut command = start(&broken);
    while kills < 6 && span > 0 {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(span / 5 + rng % (span / 2 + 1)));
        if child.try_wait().unwrap().is_some_and(|s| s.success()) {
            if kills > 0 {
                break;
            }
            let _ = fs::remove_dir_all(&broken);
            command = start(&broken);
            span /= 2;
            continue;
        }
        child.kill().unwrap();
        kills += child.wait().unwrap().code().is_none() as usize;
        // Killed before it recorded the run: start again; after: resume.
        command = if broken.join("run.json").is_file() {
            let mut c = Command::new(assert_cmd::cargo::cargo_bin("ptune"));
            c.args(["train", "--resume", broken.to_str().unwrap()]);
            c
        } else {
            let _ = fs::remove_dir_all(&broken);
            start(&broken)
        };
    }
    assert!(kills > 0, "no kill landed: the test interrupted nothing");
    if !broken.join("summary.json").is_file() {
        succeeds(&run(command));
    }
    for rel in ["P1", "P2"] {
        for file in ["prompt.safetensors", "prompt.json"] {
            let a = fs::read(whole.join(rel).join(file)).unwrap();
            let b = fs::read(broken.join(rel).join(file)).unwrap();
            assert!(a == b, "{rel}/{file} differs after {kills} kills");
        }
    }
    let metrics = |dir: &Path| {
        let mut s = read_json(&dir.join("summary.json"));
        for row in s["relations"].as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("seconds");
        }
        s["relations"].to_string()
    };
    assert_eq!(metrics(&whole), metrics(&broken));
    let left: Vec<_> = files_under(&broken)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}
