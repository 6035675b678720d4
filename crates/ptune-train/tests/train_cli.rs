//! `ptune train` end to end on a tiny fixture model and a generated relation: it must learn
//! (loss falls, dev P@1 rises above the manual prompt), write every output, and refuse bad input.

mod common;

use assert_cmd::Command;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// `ptune eval --json` of a pack on `data`'s test split (plus `extra` flags); the command's
/// output and its JSON.
fn eval_json(
    pack: &Path,
    data: &Path,
    extra: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let out = Command::cargo_bin("ptune")
        .unwrap()
        .args(["eval", "--pack", pack.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

/// Per relation of a run's summary: its id, dev and test P@1, test MRR, best epoch and epochs.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let s: serde_json::Value = read_json(&dir.join("summary.json"));
    let rows = s["relations"].as_array().unwrap().iter();
    rows.map(|r| {
        let keys = [
            "relation",
            "dev_p1",
            "test_p1",
            "test_mrr",
            "best_epoch",
            "epochs",
        ];
        serde_json::Value::from(keys.map(|k| r[k].clone()).to_vec())
    })
    .collect()
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    train_epochs(data, out, "8", extra)
}

fn train_epochs(data: &Path, out: &Path, epochs: &str, extra: &[&str]) -> std::process::Output {
    train_command(data, out, epochs, "8", extra)
        .output()
        .unwrap()
}

#[test]
fn learns_and_writes_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    // The paper's start (the fast preset's own, from the manual words, has its test below).
    let output = train(&data, &out, &["--init", "random"]);
    succeeds(&output);

    let summary: serde_json::Value = read_json(&out.join("summary.json"));
    let row = &summary["relations"][0];
    assert_eq!(row["relation"], "P1");
    assert_eq!(row["train"], 24);
    let (dev, test, manual) = (
        row["dev_p1"].as_f64().unwrap(),
        row["test_p1"].as_f64().unwrap(),
        row["manual_p1"].as_f64().unwrap(),
    );
    assert!(
        dev >= 0.7,
        "dev P@1 {dev}: predicting the majority object gives 0.75"
    );
    assert!(test >= 0.7, "test P@1 {test}");
    assert!(
        test > manual,
        "P-tuning {test} should beat the manual prompt {manual}"
    );
    // The "P-tuning loses" flag agrees with the dev scores, in the table and the terminal.
    let manual_dev = row["manual_dev_p1"].as_f64().unwrap();
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "loses").unwrap();
    let flag = csv.lines().nth(1).unwrap().split(',').nth(column).unwrap();
    let warned = String::from_utf8_lossy(&output.stdout).contains("P-tuning loses");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("causal-LM head tied to the token embeddings"),
        "{stdout}"
    );
    assert!(stdout.contains("at best epoch"), "{stdout}");
    assert_eq!(flag == "LOSES", dev < manual_dev, "{csv}");
    assert_eq!(warned, dev < manual_dev);

    let history = read_json(&out.join("P1/history.json"));
    let history = history.as_array().unwrap();
    let losses: Vec<f64> = history
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses.last().unwrap() < &(losses[0] * 0.6),
        "loss should fall: {losses:?}"
    );

    for file in [
        "run.json",
        "summary.md",
        "summary.csv",
        "P1/prompt.safetensors",
        "P1/prompt.json",
        "P1/curves.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let pack: serde_json::Value = read_json(&out.join("P1/prompt.json"));
    assert_eq!(pack["n_prompt"], 6);
    assert_eq!(pack["template"], "[P:3] [X] [P:3] [Y]");
    let table = fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        table.contains("| P1 | near |") && table.contains("| macro | average |"),
        "{table}"
    );

    // The exported pack alone reproduces the run's test score, and predicts for new subjects.
    let (eval, scored) = eval_json(&out.join("P1/prompt.safetensors"), &data, &[]);
    succeeds(&eval);
    assert_eq!(
        scored["p_at_1"].as_f64().unwrap(),
        test,
        "eval must reproduce the run's test P@1"
    );
    assert_eq!(scored["n"], row["test"]);
    let predict = ptune([
        "predict",
        "--pack",
        out.join("P1").to_str().unwrap(),
        "--json",
        "--top-k",
        "1",
        "town 99",
    ]);
    succeeds(&predict);
    let predicted: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    assert_eq!(predicted["predictions"][0]["top"][0]["token"], " sea");
}

#[test]
fn pack_for_another_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    assert!(train_epochs(&data, &out, "1", &[]).status.success());
    let other = fixture("llama_gqa_tied");
    let eval = Command::cargo_bin("ptune")
        .unwrap()
        .args([
            "eval",
            "--pack",
            out.join("P1").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args(["--model", other.to_str().unwrap()])
        .output()
        .unwrap();
    fails_with(eval, "this pack was trained for gpt2");
}

#[test]
fn same_seed_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let run = |name: &str| {
        let out = tmp.path().join(name);
        assert!(train_epochs(&data, &out, "2", &[]).status.success());
        fs::read(out.join("P1/prompt.safetensors")).unwrap()
    };
    assert_eq!(
        run("a"),
        run("b"),
        "two runs with one seed must give the same prompts"
    );
}

#[test]
fn existing_run_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let out = tmp.path().join("run");
    fs::create_dir_all(&out).unwrap();
    fails_with(train(&data, &out, &[]), "already exists: pass --overwrite");
}

#[test]
fn unknown_relation_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let out = Command::cargo_bin("ptune")
        .unwrap()
        .args([
            "train",
            "--model",
            fixture("gpt2").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args([
            "--relation",
            "P999",
            "--out",
            tmp.path().join("run").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    fails_with(out, "P999");
}

#[test]
fn empty_split_after_filtering_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    // Objects the tiny tokenizer splits into several tokens.
    let dev = data.join("fact-retrieval/original/P1/dev.jsonl");
    fs::write(
        &dev,
        "{\"sub_label\": \"x\", \"obj_label\": \"zebrafish\", \"predicate_id\": \"P1\"}\n",
    )
    .unwrap();
    fails_with(
        train(&data, &tmp.path().join("run"), &[]),
        "has no usable dev facts: kept 0 of 1 facts (dropped: 1 multi-token object)",
    );
}

#[test]
fn causal_template_with_prompts_after_the_object_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    fails_with(
        train(&data, &tmp.path().join("run"), &["--template", "3,3,3"]),
        "[Y]",
    );
}

#[test]
fn resume_after_a_stop_reproduces_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    add_second_relation(&data);
    // Eight epochs: the interrupt lands well inside the first relation.
    let run = |out: &Path| train_command(&data, out, "8", "8", &["--relation", "P2"]);
    let whole = tmp.path().join("whole");
    succeeds(&run(&whole).output().unwrap());

    // Interrupt the first relation after its first checkpoint, then resume.
    let broken = tmp.path().join("broken");
    let first = interrupt_after_first_checkpoint(run(&broken), &broken);
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("--resume"), "{err}");
    assert!(broken.join("P1/checkpoint/state.json").is_file());
    let resumed = ptune(["train", "--resume", broken.to_str().unwrap()]);
    // The resumed run finishes both relations.
    succeeds(&resumed);

    for rel in ["P1", "P2"] {
        let a = fs::read(whole.join(rel).join("prompt.safetensors")).unwrap();
        let b = fs::read(broken.join(rel).join("prompt.safetensors")).unwrap();
        assert_eq!(
            a, b,
            "{rel}: the resumed run's prompts differ from the uninterrupted run's"
        );
    }
    assert_eq!(metrics(&whole), metrics(&broken));

    // Resuming a finished run keeps every relation's result and rewrites the same summary.
    let again = ptune(["train", "--resume", broken.to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("(finished before)")
            .count(),
        2
    );
    assert_eq!(metrics(&whole), metrics(&broken));
}

#[test]
fn leading_prompt_templates_also_export_a_peft_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    let output = train_epochs(
        &data,
        &out,
        "1",
        &["--template", "[P:4] [X] is near the [Y]"],
    );
    succeeds(&output);
    let config: serde_json::Value = read_json(&out.join("P1/peft/adapter_config.json"));
    assert_eq!(config["peft_type"], "P_TUNING");
    assert_eq!(config["num_virtual_tokens"], 4);
    let adapter = ptune_encoder::peft::read_adapter(&out.join("P1/peft"), 32).unwrap();
    let pack = ptune_encoder::PromptPack::load(&out.join("P1")).unwrap();
    assert_eq!(
        adapter.prompts, pack.prompts,
        "the adapter holds the pack's prompts"
    );
    // The default template has prompts after the subject: PEFT could not express it.
    let plain = tmp.path().join("plain");
    assert!(train_epochs(&data, &plain, "1", &[]).status.success());
    assert!(!plain.join("P1/peft").exists());
}

#[test]
fn candidate_ranking_is_recorded_and_reproduced_by_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    assert!(
        train_epochs(&data, &out, "2", &["--vocab", "candidates"])
            .status
            .success()
    );
    let summary: serde_json::Value = read_json(&out.join("summary.json"));
    let (test, manual) = (
        &summary["relations"][0]["test_p1"],
        &summary["relations"][0]["manual_p1"],
    );
    // Two candidates (" sea", " dog"): even the manual prompt's rank is 1 or 2.
    let mrr = summary["relations"][0]["test_mrr"].as_f64().unwrap();
    assert!(
        mrr >= 0.5,
        "MRR over two candidates is at least 0.5, got {mrr}"
    );
    let (eval, scored) = eval_json(&out.join("P1"), &data, &[]);
    succeeds(&eval);
    assert_eq!(&scored["p_at_1"], test, "manual {manual}");
    assert!(scored["mrr"].as_f64().unwrap() >= 0.5);
}

#[test]
fn ctrl_c_keeps_a_resumable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let out = tmp.path().join("run");
    // Interrupt as a user would, once the first checkpoint is on disk.
    let output =
        interrupt_after_first_checkpoint(train_command(&data, &out, "400", "400", &[]), &out);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("interrupted") && err.contains("--resume"),
        "{err}"
    );
    // The first checkpoint comes before the first epoch, with the manual prompt's scores.
    let state = read_json(&out.join("P1/checkpoint/state.json"));
    assert!(state["epochs_done"].as_u64().is_some(), "{state}");
    assert!(state["manual_test"]["p_at_1"].as_f64().is_some(), "{state}");
}

/// A full disk (here a file-size limit, which fails a write the same way) stops the run with one
/// error line, leaves no half-written checkpoint, temp file or pack, and `--resume` finishes it.
#[test]
fn a_failed_write_leaves_nothing_half_written_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let out = tmp.path().join("run");
    let train = train_command(&data, &out, "2", "2", &[]);
    // The shell ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing.
    // 100 blocks (50 or 100 KiB, by shell) is below the size of the first checkpoint's files.
    let limited = std::process::Command::new("sh")
        .args(["-c", r#"trap "" XFSZ; ulimit -f 100; exec "$0" "$@""#])
        .arg(train.get_program())
        .args(train.get_args())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(1), "{err}");
    assert!(
        err.contains("File too large") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    let left: Vec<PathBuf> = files_under(&out)
        .into_iter()
        .filter(|p| {
            let p = p.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
            p.contains(".tmp") || p.contains("checkpoint") || p.ends_with("prompt.safetensors")
        })
        .collect();
    assert!(left.is_empty(), "half-written files left behind: {left:?}");

    let resumed = ptune(["train", "--resume", out.to_str().unwrap()]);
    succeeds(&resumed);
    assert!(out.join("P1/prompt.safetensors").is_file());
}

/// `--precision bf16`: the run learns as f32's does, records its precision, resumes in it (the
/// resumed prompts equal an uninterrupted bf16 run's, not f32's), and eval scores the pack in it.
#[test]
fn bf16_runs_learn_and_resume_in_bf16() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let bf16 = ["--precision", "bf16"];
    let (whole, broken, plain) = (
        tmp.path().join("whole"),
        tmp.path().join("broken"),
        tmp.path().join("f32"),
    );
    let whole_run = train(&data, &whole, &bf16);
    succeeds(&whole_run);
    succeeds(&train(&data, &plain, &[]));
    let header = String::from_utf8_lossy(&whole_run.stdout).into_owned();
    assert!(header.contains("parameters in bf16"), "{header}");
    let run = read_json(&whole.join("run.json"));
    assert_eq!(run["args"]["precision"], "bf16", "{run}");
    let row = &read_json(&whole.join("summary.json"))["relations"][0];
    let test = row["test_p1"].as_f64().unwrap();
    assert!(
        test >= 0.7,
        "bf16 test P@1 {test}: the majority object gives 0.75"
    );

    interrupt_after_first_checkpoint(train_command(&data, &broken, "8", "8", &bf16), &broken);
    succeeds(&ptune(["train", "--resume", broken.to_str().unwrap()]));
    let prompts = |dir: &Path| fs::read(dir.join("P1/prompt.safetensors")).unwrap();
    assert_eq!(
        prompts(&whole),
        prompts(&broken),
        "the resumed run left bf16"
    );
    assert_ne!(
        prompts(&whole),
        prompts(&plain),
        "bf16 trained exactly as f32 did"
    );

    let pack = whole.join("P1/prompt.safetensors");
    let (eval, scored) = eval_json(&pack, &data, &bf16);
    succeeds(&eval);
    assert_eq!(scored["p_at_1"].as_f64().unwrap(), test);
}

/// Precisions a backend cannot hold are refused in one sentence before any work.
#[test]
fn bf16_on_wgpu_and_unknown_precisions_are_refused() {
    let model = fixture("gpt2");
    let predict = |precision: &str, backend: &str| {
        ptune([
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--precision",
            precision,
            "--backend",
            backend,
            "a",
        ])
    };
    fails_with(
        predict("f16", "flex"),
        "unknown precision `f16`: f32 or bf16",
    );
    fails_with(
        predict("bf16", "wgpu"),
        "--precision bf16 needs --backend flex, tch or tch-cuda",
    );
}

/// A run started with relative paths records them absolute: its pack evaluates from any working
/// directory with no --model; the run directory itself is refused as a pack, naming its packs.
#[test]
fn relative_paths_work_from_another_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    write_dataset(&work.join("data"));
    let model = work.join("model");
    fs::create_dir_all(&model).unwrap();
    for entry in fs::read_dir(fixture("gpt2")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let command = train_command(Path::new("data"), Path::new("run"), "1", "1", &[]);
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let model_at = args.iter().position(|a| a == "--model").unwrap() + 1;
    let mut command = std::process::Command::new(command.get_program());
    for (i, arg) in args.iter().enumerate() {
        command.arg(if i == model_at {
            "model".as_ref()
        } else {
            arg.as_os_str()
        });
    }
    succeeds(&command.current_dir(&work).output().unwrap());

    let eval = |pack: &Path| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("ptune"))
            .args(["eval", "--pack", pack.to_str().unwrap(), "--data"])
            .arg(work.join("data"))
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    succeeds(&eval(&work.join("run/P1")));
    fails_with(
        eval(&work.join("run")),
        "is a ptune train run directory, not a prompt pack: pass one relation's folder inside it (P1)",
    );
}

/// A relation that cannot be trained (every object several tokens) is found before training:
/// `--all-relations` skips it with a line saying why and trains the rest; named on purpose, it
/// is an error and nothing is written.
#[test]
fn an_untrainable_relation_is_skipped_by_all_relations_and_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let dir = data.join("fact-retrieval/original/P2");
    fs::create_dir_all(&dir).unwrap();
    let mut relations = fs::read_to_string(data.join("relations.jsonl")).unwrap();
    relations +=
        "{\"relation\": \"P2\", \"template\": \"[X] likes [Y] .\", \"label\": \"likes\"}\n";
    fs::write(data.join("relations.jsonl"), relations).unwrap();
    let fact = "{\"sub_label\": \"town 1\", \"obj_label\": \"xylophonequartzwhimsy\", \"predicate_id\": \"P2\"}\n";
    for split in ["train", "dev", "test"] {
        fs::write(dir.join(format!("{split}.jsonl")), fact).unwrap();
    }
    let all = tmp.path().join("all");
    // train_command names P1; --all-relations takes the place of `--relation P1`.
    let command = train_command(&data, &all, "1", "1", &[]);
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let relation_at = args.iter().position(|a| a == "--relation").unwrap();
    let mut command = std::process::Command::new(command.get_program());
    for (i, arg) in args.iter().enumerate() {
        if i == relation_at {
            command.arg("--all-relations");
        } else if i != relation_at + 1 {
            command.arg(arg);
        }
    }
    let output = command.output().unwrap();
    succeeds(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("skipping P2: P2 has no usable train facts"),
        "{stdout}"
    );
    let summary = read_json(&all.join("summary.json"));
    assert_eq!(summary["relations"].as_array().unwrap().len(), 1);
    assert_eq!(summary["relations"][0]["relation"], "P1");

    let named = tmp.path().join("named");
    let mut named_run = train_command(&data, &named, "1", "1", &["--relation", "P2"]);
    fails_with(named_run.output().unwrap(), "P2 has no usable train facts");
    assert!(!named.exists());
}

/// Each split's counts (in the files, kept, dropped by reason) reach the terminal, train.log
/// and summary.json, and `--max-train` caps the facts kept after filtering, not the lines read.
#[test]
fn fact_counts_are_reported_and_max_train_caps_kept_facts() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    // Three unusable facts (multi-token objects) first, then the usual 24.
    let train_file = data.join("fact-retrieval/original/P1/train.jsonl");
    let bad = "{\"sub_label\": \"x\", \"obj_label\": \"zebrafish\", \"predicate_id\": \"P1\"}\n";
    let text = bad.repeat(3) + &fs::read_to_string(&train_file).unwrap();
    fs::write(&train_file, text).unwrap();
    let output = train_epochs(&data, &out, "1", &["--max-train", "5"]);
    succeeds(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let want = "train     5 of 27    3 multi-token object, 19 beyond --max-train";
    assert!(stdout.contains(want), "{stdout}");
    assert!(
        stdout.contains("dev      12 of 12    none dropped"),
        "{stdout}"
    );
    let log = fs::read_to_string(out.join("train.log")).unwrap();
    assert!(log.contains(want), "{log}");
    let summary = read_json(&out.join("summary.json"));
    let train = &summary["relations"][0]["facts"]["train"];
    assert_eq!(train["kept"], 5);
    assert_eq!(train["total"], 27);
    assert_eq!(train["dropped"]["multi-token-object"], 3);
    assert_eq!(summary["relations"][0]["train"], 5);
}

/// `--init manual`: the manual words become prompt slots that start at their embeddings, so
/// the prompts before training score exactly as the manual prompt on dev, the kept prompts
/// never score below it, and the pack records the relation's own template. With --template it
/// is refused in one sentence, before anything is written.
#[test]
fn manual_init_starts_at_the_manual_prompt_and_never_ends_below_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data);
    let output = train_epochs(&data, &out, "2", &["--init", "manual"]);
    succeeds(&output);
    common::assert_starts_at_manual(&out);
    let pack = read_json(&out.join("P1/prompt.json"));
    let template = pack["template"].as_str().unwrap();
    assert!(
        template.starts_with("[X] [P") && template.ends_with("[Y]"),
        "{template}"
    );
    assert!(out.join("P1/curves.png").is_file());

    let refused = tmp.path().join("refused");
    let output = train_epochs(
        &data,
        &refused,
        "1",
        &["--init", "manual", "--template", "3,3,0"],
    );
    fails_with(output, "--init manual builds each relation's template");
    assert!(!refused.exists());
}

/// `--mix` trains relations in shared forward passes, each with its own batches, Adam state, dev
/// selection and early stop: every relation ends as it does trained alone (same metrics, the
/// same prompts up to float rounding), including one that stops early and leaves the mix; a
/// stopped mixed run resumes to the same result.
#[test]
fn mixed_training_matches_one_by_one_and_resumes() {
    use ptune_encoder::io::read_safetensors;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    add_second_relation(&data);
    // Patience 3: P1 stops after 3 epochs without a dev gain, P2 trains all 8.
    let run = |out: &Path, extra: &[&str]| {
        let mut command = train_command(&data, out, "8", "3", &["--relation", "P2"]);
        command.args(extra);
        command
    };
    let alone = tmp.path().join("alone");
    succeeds(&run(&alone, &[]).output().unwrap());
    let mixed = tmp.path().join("mixed");
    let output = run(&mixed, &["--mix"]).output().unwrap();
    succeeds(&output);

    let (alone_rows, mixed_rows) = (metrics(&alone), metrics(&mixed));
    assert_eq!(alone_rows, mixed_rows);
    let epochs: Vec<&serde_json::Value> = alone_rows.iter().map(|r| &r[5]).collect();
    assert_ne!(
        epochs[0], epochs[1],
        "the case must have one relation leave the mix before the other: {alone_rows:?}"
    );
    for rel in ["P1", "P2"] {
        let read = |dir: &Path| read_safetensors(&dir.join(rel).join("prompt.safetensors"));
        let (a, b) = (read(&alone).unwrap().tensors, read(&mixed).unwrap().tensors);
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, t) in &a {
            let diff = t.max_abs_diff(&b[name]);
            assert!(
                diff < 1e-4,
                "{rel} {name}: mixed and alone differ by {diff}"
            );
        }
    }

    // Interrupted after the first checkpoint and resumed, the mixed run ends as it did whole.
    let broken = tmp.path().join("broken");
    interrupt_after_first_checkpoint(run(&broken, &["--mix"]), &broken);
    succeeds(&ptune(["train", "--resume", broken.to_str().unwrap()]));
    assert_eq!(metrics(&broken), mixed_rows);
}

/// `--mix` is for relations: with tasks it is refused before anything is written.
#[test]
fn mix_with_tasks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let output = ptune([
        "train",
        "--model",
        fixture("gpt2").to_str().unwrap(),
        "--task",
        "rte",
        "--mix",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--mix") && err.contains("--task"), "{err}");
    assert!(!out.exists());
}

/// `--multi-token` keeps facts whose object is several tokens and ranks every fact among the
/// relation's objects: every fact is kept, the pack records the task it answers (`ptune eval
/// --pack` gives its test P@1 again, `predict --pack` ranks the objects), and where every object
/// is one token the manual prompt ranks them exactly as `--vocab candidates` does.
#[test]
fn multi_token_objects_are_kept_and_ranked_among_the_relations_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    // Same baseline on one-token objects, two ways.
    let manual = |out: &Path, flag: &[&str]| {
        succeeds(&train_epochs(&data, out, "1", flag));
        let row = read_json(&out.join("summary.json"))["relations"][0].clone();
        (
            row["manual_p1"].clone(),
            row["manual_dev_p1"].clone(),
            row["train"].clone(),
        )
    };
    let candidates = manual(&tmp.path().join("candidates"), &["--vocab", "candidates"]);
    let multi = manual(&tmp.path().join("multi-one"), &["--multi-token"]);
    assert_eq!(candidates, multi);

    // Multi-token objects in every split.
    let dir = data.join("fact-retrieval/original/P1");
    for (split, n) in [("train", 3), ("dev", 2), ("test", 2)] {
        let file = dir.join(format!("{split}.jsonl"));
        let fish = |i: usize| {
            let object = ["zebrafish", "sea lion"][i % 2];
            format!(
                "{{\"sub_label\": \"pond {i}\", \"obj_label\": \"{object}\", \"predicate_id\": \"P1\"}}\n"
            )
        };
        let extra: String = (0..n).map(fish).collect();
        fs::write(&file, extra + &fs::read_to_string(&file).unwrap()).unwrap();
    }
    let out = tmp.path().join("multi");
    let output = train_epochs(
        &data,
        &out,
        "2",
        &["--multi-token", "--train-candidates", "3"],
    );
    succeeds(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("train    27 of 27    none dropped"),
        "{stdout}"
    );
    let row = read_json(&out.join("summary.json"))["relations"][0].clone();
    assert_eq!(
        (row["train"].clone(), row["test"].clone()),
        (27.into(), 14.into())
    );
    let pack = out.join("P1");
    let task: serde_json::Value = read_json(&pack.join("task.json"));
    assert_eq!(task["answer"]["verbalizers"].as_array().unwrap().len(), 4);
    let eval = ptune(["eval", "--pack", pack.to_str().unwrap(), "--json"]);
    succeeds(&eval);
    let eval: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(eval["p_at_1"].as_f64(), row["test_p1"].as_f64());
    // P@1 split by the right answer's length: the two facts the one-token path drops, apart.
    let groups = eval["by_answer_length"].as_array().unwrap();
    let (one, more) = (&groups[0], &groups[1]);
    assert_eq!(
        (&one["answer_tokens"], &one["n"]),
        (&"1".into(), &12.into())
    );
    assert_eq!(
        (&more["answer_tokens"], &more["n"]),
        (&"2+".into(), &2.into())
    );
    let p1 = |g: &serde_json::Value| g["p_at_1"].as_f64().unwrap();
    let mean = (12.0 * p1(one) + 2.0 * p1(more)) / 14.0;
    assert!((mean - row["test_p1"].as_f64().unwrap()).abs() < 1e-9);
    let predict = ptune([
        "predict",
        "--pack",
        pack.to_str().unwrap(),
        "--json",
        "pond 7",
    ]);
    succeeds(&predict);
    let answers: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    let answers: Vec<&str> = (answers["answers"].as_array().unwrap().iter())
        .map(|a| a["answer"].as_str().unwrap())
        .collect();
    for object in ["sea", "dog", "zebrafish", "sea lion"] {
        assert!(answers.contains(&object), "{answers:?}");
    }
}

/// `--multi-token` needs the manual start, and a sample needs the right answer and another.
#[test]
fn multi_token_settings_that_cannot_work_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data);
    let out = tmp.path().join("run");
    for (flags, needle) in [
        (
            &["--multi-token", "--init", "random"][..],
            "--multi-token starts",
        ),
        (
            &["--multi-token", "--train-candidates", "1"][..],
            "--train-candidates must be at least 2",
        ),
        (&["--multi-token", "--mix"][..], "cannot be used with"),
    ] {
        let output = train(&data, &out, flags);
        assert!(!output.status.success(), "{flags:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(needle), "{flags:?}: {err}");
        assert!(!out.exists(), "{flags:?} wrote {}", out.display());
    }
}
