//! `ptune train --task`: a task file trains end to end on the tiny GPT-2 fixture, and each kind
//! of bad task input stops the command with one sentence before anything is written.

mod common;

use common::{fails_with, fixture, read_json, succeeds, write_task};
use std::fs;
use std::path::Path;

fn train(task: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let model = fixture("gpt2");
    std::process::Command::new(assert_cmd::cargo::cargo_bin("ptune"))
        .args(["train", "--model", model.to_str().unwrap(), "--task"])
        .args([task.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--lr", "0.01", "--seed", "3"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_task_trains_and_writes_its_pack_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let task = write_task(&tmp.path().join("data"), |_| {});
    let out = tmp.path().join("run");
    let output = train(
        &task,
        &out,
        &["--epochs", "8", "--patience", "8", "--init", "random"],
    );
    succeeds(&output);
    for file in [
        "prompt.safetensors",
        "prompt.json",
        "task.json",
        "history.json",
        "curves.png",
    ] {
        assert!(
            out.join("near").join(file).is_file(),
            "near/{file} is missing"
        );
    }
    let summary = read_json(&out.join("summary.json"));
    let row = &summary["relations"][0];
    assert_eq!(row["relation"], "near");
    assert_eq!(
        (
            row["train"].as_u64(),
            row["dev"].as_u64(),
            row["test"].as_u64()
        ),
        (Some(24), Some(12), Some(12))
    );
    let history = read_json(&out.join("near/history.json"));
    let losses: Vec<f64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses.last() < losses.first(),
        "the task loss should fall: {losses:?}"
    );
    // Two candidates: accuracy is P@1; the prompts must at least find the majority answer.
    let test_p1 = row["test_p1"].as_f64().unwrap();
    assert!(test_p1 >= 0.75, "test accuracy {test_p1}");
    let saved: serde_json::Value = read_json(&out.join("near/task.json"));
    assert_eq!(saved["template"], "[P:2] [place] is near the [P] [Y] .");
    // The pack alone reproduces the run's scores and answers new examples.
    let pack = out.join("near");
    let pack = pack.to_str().unwrap();
    for (split, key) in [("test", "test_p1"), ("dev", "dev_p1")] {
        let output = common::ptune(["eval", "--pack", pack, "--split", split, "--json"]);
        succeeds(&output);
        let eval: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(eval["p_at_1"].as_f64(), row[key].as_f64(), "{split}");
        let f1 = eval["macro_f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1), "{split}: macro-F1 {f1}");
    }
    let output = common::ptune(["predict", "--pack", pack, "--json", "town 99"]);
    succeeds(&output);
    let answers: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let answers = answers["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2);
    let total: f64 = answers.iter().map(|a| a["prob"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-5, "{answers:?}");
    let same = common::ptune([
        "predict",
        "--pack",
        pack,
        "--json",
        "{\"place\": \"town 99\"}",
    ]);
    assert_eq!(
        same.stdout, output.stdout,
        "plain text fills the task's one field"
    );
    fails_with(
        common::ptune(["predict", "--pack", pack, "{\"where\": 1}"]),
        "no field \"place\"",
    );
}

/// Each bad input: a non-zero exit, the sentence that names the problem, and no run directory.
#[test]
fn bad_task_input_is_refused_before_anything_is_written() {
    type Edit = Box<dyn FnOnce(&mut serde_json::Value, &Path)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "names the field [town], which is not in \"fields\"",
            Box::new(|t, _| t["template"] = "[P] [town] is [Y]".into()),
        ),
        (
            "\"maybe\" is not in the verbalizers (water, animal)",
            Box::new(|_, d| {
                fs::write(
                    d.join("dev.jsonl"),
                    "{\"place\": \"x\", \"label\": \"maybe\"}\n",
                )
                .unwrap()
            }),
        ),
        (
            "no field \"place\"",
            Box::new(|_, d| {
                fs::write(
                    d.join("test.jsonl"),
                    "{\"where\": \"x\", \"label\": \"water\"}\n",
                )
                .unwrap()
            }),
        ),
        (
            "has no examples",
            Box::new(|_, d| fs::write(d.join("train.jsonl"), "\n").unwrap()),
        ),
        (
            "tokenize the same",
            Box::new(|t, _| {
                t["answer"]["verbalizers"] =
                    serde_json::json!([["water", "sea"], ["animal", " sea "]])
            }),
        ),
        (
            "has no candidates",
            Box::new(|t, d| {
                t["answer"] = serde_json::json!({"kind": "choices", "from": ["a", "b"]});
                fs::write(
                    d.join("train.jsonl"),
                    "{\"place\": \"x\", \"a\": \"\", \"b\": \"\", \"label\": 0}\n",
                )
                .unwrap();
            }),
        ),
        (
            "names no test data file",
            Box::new(|t, _| {
                t["data"].as_object_mut().unwrap().remove("test");
            }),
        ),
        (
            "has [X]",
            Box::new(|t, _| t["template"] = "[P] [X] is [Y]".into()),
        ),
    ];
    for (needle, edit) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut edit = Some(edit);
        let task = write_task(&data, |t| (edit.take().unwrap())(t, &data));
        let out = tmp.path().join("run");
        fails_with(train(&task, &out, &["--epochs", "1"]), needle);
        assert!(!out.exists(), "{needle}: a run directory was left behind");
    }
}

/// `--init manual` (the fast preset's default) on a task: its pattern without the `[P]` slots
/// is the manual prompt, its words become prompt slots at their embeddings, so the prompts
/// before training score exactly as the manual pattern on dev and the kept ones never below it;
/// the pack's task.json records the template they were trained in, and reproduces the run.
#[test]
fn a_task_starts_from_its_manual_pattern_and_never_ends_below_it() {
    let tmp = tempfile::tempdir().unwrap();
    let task = write_task(&tmp.path().join("data"), |_| {});
    let out = tmp.path().join("run");
    succeeds(&train(&task, &out, &["--epochs", "2"]));
    let row = common::assert_starts_at_manual(&out);
    // The causal model sees the pattern up to [Y]: "[place] is near the [Y]", words as prompts.
    let template = read_json(&out.join("near/task.json"))["template"].clone();
    let template = template.as_str().unwrap();
    assert!(
        template.starts_with("[place] [P")
            && template.ends_with("[Y]")
            && !template.contains("near"),
        "{template}"
    );
    let pack = out.join("near");
    let output = common::ptune(["eval", "--pack", pack.to_str().unwrap(), "--json"]);
    succeeds(&output);
    let eval: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(eval["p_at_1"].as_f64(), row["test_p1"].as_f64());
}

/// Prompts that start at the manual pattern and only lose on dev (training on the other label
/// wrecks them) are kept as that pattern: the run reports the manual test scores without a
/// second pass over test, and `ptune eval` of the pack, which computes them, agrees.
#[test]
fn a_manual_start_never_beaten_keeps_the_manual_test_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let task = write_task(&tmp.path().join("data"), |_| {});
    let data = tmp.path().join("data");
    let lines = |range: std::ops::Range<usize>, label: &str| -> String {
        let line = |i| format!("{{\"place\": \"town {i}\", \"label\": \"{label}\"}}\n");
        range.map(line).collect()
    };
    fs::write(data.join("train.jsonl"), lines(0..24, "animal")).unwrap();
    fs::write(data.join("dev.jsonl"), lines(24..36, "water")).unwrap();
    fs::write(
        data.join("test.jsonl"),
        lines(36..48, "water") + &lines(48..52, "animal"),
    )
    .unwrap();
    let out = tmp.path().join("run");
    succeeds(&train(&task, &out, &["--epochs", "2"]));
    let row = common::assert_starts_at_manual(&out);
    assert_eq!(row["best_epoch"], 0, "the case must lose on dev: {row}");
    assert_eq!(row["test_p1"], row["manual_p1"], "{row}");
    let pack = out.join("near");
    let output = common::ptune(["eval", "--pack", pack.to_str().unwrap(), "--json"]);
    succeeds(&output);
    let eval: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(eval["p_at_1"].as_f64(), row["test_p1"].as_f64(), "{eval}");
}

/// A built-in task by name reads FewGLUE's layout under --task-data; several tasks make one run
/// with a macro average.
#[test]
fn builtin_tasks_read_fewglue_layout_and_share_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fewglue");
    let rte = data.join("RTE");
    fs::create_dir_all(&rte).unwrap();
    let lines = |n: usize| -> String {
        (0..n)
            .map(|i| {
                let label = if i % 2 == 0 { "entailment" } else { "not_entailment" };
                format!("{{\"premise\": \"the dog sat on the mat {i}\", \"hypothesis\": \"a dog sat\", \"label\": \"{label}\", \"idx\": {i}}}\n")
            })
            .collect()
    };
    for (file, n) in [("train.jsonl", 8), ("dev32.jsonl", 4), ("val.jsonl", 4)] {
        fs::write(rte.join(file), lines(n)).unwrap();
    }
    let own = write_task(&tmp.path().join("own"), |_| {});
    let out = tmp.path().join("run");
    let model = fixture("gpt2");
    let run = |extra: &[&str]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("ptune"))
            .args([
                "train",
                "--model",
                model.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--epochs", "1", "--init", "random"])
            .args(extra)
            .output()
            .unwrap()
    };
    fails_with(run(&["--task", "rte"]), "pass --task-data DIR");
    fails_with(
        run(&["--task", "nosuch"]),
        "neither a task file nor a built-in task (boolq, cb, copa, multirc, record, rte, wic, wsc)",
    );
    let own = own.to_str().unwrap();
    fails_with(
        run(&["--task", own, "--task", own]),
        "two tasks are named near",
    );
    assert!(!out.exists());
    // Data paths of a task file are relative to --task-data when it is given.
    let moved = tmp.path().join("moved");
    fs::create_dir_all(&moved).unwrap();
    fs::copy(tmp.path().join("own/task.json"), moved.join("task.json")).unwrap();
    let moved_task = moved.join("task.json");
    let own_dir = tmp.path().join("own");
    let data_dir = data.to_str().unwrap();
    fails_with(
        run(&[
            "--task",
            moved_task.to_str().unwrap(),
            "--task-data",
            data_dir,
        ]),
        "train.jsonl",
    );
    assert!(!out.exists());
    let output = run(&[
        "--task",
        "rte",
        "--task",
        moved_task.to_str().unwrap(),
        "--task-data",
        own_dir.to_str().unwrap(),
    ]);
    fails_with(output, "RTE");
    let output = run(&["--task", "rte", "--task-data", data_dir]);
    succeeds(&output);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["relations"][0]["relation"], "rte");
    assert_eq!(summary["relations"][0]["test"].as_u64(), Some(4));
    let saved = read_json(&out.join("rte/task.json"));
    assert_eq!(
        saved["template"],
        "[premise] Question: [hypothesis] ? [P] Answer: [Y] ."
    );
}

/// An interrupted task run resumes from its checkpoint to the uninterrupted run's prompts.
#[test]
fn an_interrupted_task_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    // Named P1: the shared interrupt helper watches P1's checkpoint.
    let task = write_task(&tmp.path().join("data"), |t| t["name"] = "P1".into());
    let model = fixture("gpt2");
    let run = |out: &Path| {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("ptune"));
        command
            .args(["train", "--model", model.to_str().unwrap(), "--task"])
            .args([task.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args([
                "--lr",
                "0.01",
                "--seed",
                "3",
                "--epochs",
                "8",
                "--patience",
                "8",
            ]);
        command
    };
    let whole = tmp.path().join("whole");
    succeeds(&run(&whole).output().unwrap());
    let broken = tmp.path().join("broken");
    common::interrupt_after_first_checkpoint(run(&broken), &broken);
    succeeds(&common::ptune([
        "train",
        "--resume",
        broken.to_str().unwrap(),
    ]));
    let prompts = |dir: &Path| fs::read(dir.join("P1/prompt.safetensors")).unwrap();
    assert_eq!(prompts(&whole), prompts(&broken));
    let row = |dir: &Path| read_json(&dir.join("summary.json"))["relations"][0].clone();
    assert_eq!(row(&whole)["test_p1"], row(&broken)["test_p1"]);
    assert_eq!(row(&whole)["epochs"], row(&broken)["epochs"]);
}
