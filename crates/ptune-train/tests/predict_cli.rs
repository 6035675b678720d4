//! `ptune predict` as a user runs it: the output on tiny fixtures, and one clear sentence with a
//! non-zero exit (never a panic) for each kind of bad input.

use assert_cmd::Command;
use std::fs;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ptune-backbone/tests/fixtures")
        .join(name)
}

fn ptune(args: &[&str]) -> (bool, String, String) {
    let out = Command::cargo_bin("ptune")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs predict, expects failure with exactly one `error:` line containing `needle`.
fn fails_with(model: &Path, text: &str, needle: &str) {
    let (ok, _, err) = ptune(&["predict", "--model", model.to_str().unwrap(), text]);
    assert!(!ok, "expected failure for {}", model.display());
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one sentence expected, got: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

/// A private copy of a fixture to damage.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn masked_lm_prints_top_k_per_mask() {
    let model = fixture("bert");
    let (ok, out, err) = ptune(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--top-k",
        "3",
        "paris is the capital of [MASK] .",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("mask 1 (token 6):"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count(),
        3,
        "{out}"
    );
}

#[test]
fn causal_lm_json_has_ids_and_logprobs() {
    let model = fixture("gpt2");
    let (ok, out, err) = ptune(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--top-k",
        "4",
        "the capital of france is",
    ]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["objective"], "causal");
    let top = json["predictions"][0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 4);
    let logprobs: Vec<f64> = top.iter().map(|c| c["logprob"].as_f64().unwrap()).collect();
    assert!(
        logprobs.windows(2).all(|w| w[0] >= w[1]),
        "sorted: {logprobs:?}"
    );
    assert!(logprobs.iter().all(|&l| l < 0.0));
    let prob = top[0]["prob"].as_f64().unwrap();
    assert!((prob - logprobs[0].exp()).abs() < 1e-6);
}

#[test]
fn missing_model_path() {
    fails_with(
        Path::new("/nonexistent/model-dir"),
        "x",
        "no such file or directory",
    );
}

#[test]
fn directory_without_config() {
    let dir = copy_fixture("bert");
    fs::remove_file(dir.path().join("config.json")).unwrap();
    fails_with(
        dir.path(),
        "x [MASK]",
        "config.json: no such file or directory",
    );
}

#[test]
fn directory_without_weights() {
    let dir = copy_fixture("bert");
    fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    fails_with(dir.path(), "x [MASK]", "no weights found");
}

#[test]
fn unknown_model_type() {
    let dir = copy_fixture("bert");
    let config = fs::read_to_string(dir.path().join("config.json")).unwrap();
    fs::write(
        dir.path().join("config.json"),
        config.replace("\"bert\"", "\"t5\""),
    )
    .unwrap();
    fails_with(dir.path(), "x [MASK]", "unsupported model_type `t5`");
}

/// The class name does not decide what loads, the tensors do: a question-answering checkpoint
/// (no MLM head, a `qa_outputs` head) loads as an encoder and `predict` says it has no head.
#[test]
fn a_checkpoint_without_an_mlm_head_is_refused_at_predict() {
    use ptune_encoder::io::{read_safetensors, write_safetensors};
    let dir = copy_fixture("bert");
    let config = fs::read_to_string(dir.path().join("config.json")).unwrap();
    fs::write(
        dir.path().join("config.json"),
        config.replace("BertForMaskedLM", "BertForQuestionAnswering"),
    )
    .unwrap();
    let weights = dir.path().join("model.safetensors");
    let mut tensors = read_safetensors(&weights).unwrap().tensors;
    tensors.retain(|name, _| !name.starts_with("cls."));
    let qa = ptune_encoder::HostTensor::new(vec![2, 32], vec![0.0; 64]);
    tensors.insert("qa_outputs.weight".into(), qa);
    write_safetensors(&weights, &tensors, None).unwrap();
    fails_with(
        dir.path(),
        "x [MASK]",
        "has no language-model head (an encoder only)",
    );
}

#[test]
fn tensor_of_the_wrong_shape() {
    let dir = copy_fixture("bert");
    let config = fs::read_to_string(dir.path().join("config.json")).unwrap();
    fs::write(
        dir.path().join("config.json"),
        config.replace("\"intermediate_size\": 64", "\"intermediate_size\": 65"),
    )
    .unwrap();
    fails_with(
        dir.path(),
        "x [MASK]",
        "has shape [64, 32] but the config implies [65, 32]",
    );
}

#[test]
fn tensor_missing() {
    let dir = copy_fixture("bert");
    let config = fs::read_to_string(dir.path().join("config.json")).unwrap();
    fs::write(
        dir.path().join("config.json"),
        config.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"),
    )
    .unwrap();
    fails_with(
        dir.path(),
        "x [MASK]",
        "has no tensor `bert.encoder.layer.2.",
    );
}

#[test]
fn truncated_safetensors() {
    let dir = copy_fixture("bert");
    let weights = dir.path().join("model.safetensors");
    let bytes = fs::read(&weights).unwrap();
    fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(dir.path(), "x [MASK]", "corrupt or truncated");
}

#[test]
fn garbage_safetensors() {
    let dir = copy_fixture("bert");
    fs::write(
        dir.path().join("model.safetensors"),
        b"this is not a checkpoint",
    )
    .unwrap();
    fails_with(dir.path(), "x [MASK]", "corrupt or truncated");
}

#[test]
fn corrupt_pytorch_pickle() {
    let dir = copy_fixture("bert_bin");
    let weights = dir.path().join("pytorch_model.bin");
    let bytes = fs::read(&weights).unwrap();
    fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();
    fails_with(dir.path(), "x [MASK]", "corrupt or truncated");
}

#[test]
fn truncated_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.gguf");
    let bytes = fs::read(fixture("llama_gguf").join("model.gguf")).unwrap();
    fs::write(&file, &bytes[..bytes.len() - 1000]).unwrap();
    fails_with(&file, "hello", "truncated");
}

#[test]
fn not_a_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.gguf");
    fs::write(&file, b"GGML and then nothing useful at all").unwrap();
    fails_with(&file, "hello", "not a GGUF file");
}

#[test]
fn unsupported_activation_names_the_config_file() {
    let dir = copy_fixture("bert");
    let path = dir.path().join("config.json");
    let config = fs::read_to_string(&path).unwrap();
    fs::write(&path, config.replace("\"gelu\"", "\"mish\"")).unwrap();
    fails_with(
        dir.path(),
        "x [MASK]",
        &format!("{}: invalid config.json: `hidden_act`", path.display()),
    );
}

#[test]
fn nan_weight_is_refused_not_printed() {
    let dir = copy_fixture("bert");
    let path = dir.path().join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = "bert.embeddings.word_embeddings.weight";
    let mut table = st.tensor(name).unwrap().data().to_vec();
    table[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![120, 32], &table)
        .unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| if n == name { (n, view.clone()) } else { (n, v) })
        .collect();
    safetensors::serialize_to_file(kept, None, &path).unwrap();
    fails_with(
        dir.path(),
        "x [MASK]",
        &format!("tensor `{name}` holds NaN at index 0"),
    );
}

#[cfg(unix)]
#[test]
fn dev_null_is_not_a_model() {
    fails_with(
        Path::new("/dev/null"),
        "x",
        "/dev/null: a device, not a model directory, a .gguf file or a hub id",
    );
}

#[test]
fn masked_lm_without_mask() {
    fails_with(
        &fixture("bert"),
        "paris is the capital of france .",
        "the text has no [MASK]",
    );
}

#[test]
fn input_longer_than_positions() {
    let long = "the capital ".repeat(100);
    fails_with(
        &fixture("gpt2"),
        &long,
        "but the model takes at most 64 positions",
    );
}

#[test]
fn encoder_only_checkpoint_cannot_predict() {
    let dir = copy_fixture("bert");
    let config = fs::read_to_string(dir.path().join("config.json")).unwrap();
    fs::write(
        dir.path().join("config.json"),
        config.replace("BertForMaskedLM", "BertModel"),
    )
    .unwrap();
    // Strip the MLM head tensors by rewriting the safetensors without `cls.*`.
    let path = dir.path().join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("cls."))
        .collect();
    safetensors::serialize_to_file(kept, None, &path).unwrap();
    fails_with(dir.path(), "x [MASK]", "has no language-model head");
}

#[test]
fn unavailable_backend_names_the_feature() {
    let model = fixture("bert");
    let (ok, _, err) = ptune(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--backend",
        "tch",
        "x [MASK]",
    ]);
    assert!(!ok);
    assert!(err.contains("--features tch"), "{err}");
}

#[test]
fn hub_id_offline_says_so_in_one_sentence() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("ptune")
        .unwrap()
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["predict", "--model", "someone/some-model", "x [MASK]"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("could not download `someone/some-model`"),
        "{err}"
    );
    assert!(
        err.contains("pass a local directory or .gguf file to --model instead"),
        "{err}"
    );
}

#[test]
fn hub_id_resolves_from_the_standard_cache() {
    // The layout hub clients share: hub/models--OWNER--NAME/{refs/main, snapshots/REV/...}.
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("hub/models--tiny--gpt2");
    let snapshot = repo.join("snapshots/0123456789abcdef");
    fs::create_dir_all(&snapshot).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    for file in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
    ] {
        fs::copy(fixture("gpt2").join(file), snapshot.join(file)).unwrap();
    }
    let out = Command::cargo_bin("ptune")
        .unwrap()
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args([
            "predict",
            "--model",
            "tiny/gpt2",
            "--top-k",
            "2",
            "the capital of",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("next token:"));
}

/// Runs ptune with `args`, expects failure with exactly one `error:` line containing `needle`.
fn command_fails_with(args: &[&str], needle: &str) {
    let (ok, _, err) = ptune(args);
    assert!(!ok, "expected failure for {args:?}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one sentence expected: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

/// A saved pack for a 4-wide backbone whose `prompt.json` is then edited by `edit`, as a
/// version 1 pack (which has no hash over its template and relation).
fn edited_pack(edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let identity = ptune_encoder::BackboneIdentity::new("gpt2", 4, "h");
    let prompts = ptune_encoder::HostTensor::new(vec![2, 4], vec![0.5; 8]);
    let pack = ptune_encoder::PromptPack::from_host(prompts, "[P:2] [X] [Y]", identity, "P1");
    pack.unwrap().save(dir.path()).unwrap();
    let path = dir.path().join("prompt.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    json["version"] = 1.into();
    json.as_object_mut().unwrap().remove("pack_sha256");
    edit(&mut json);
    fs::write(&path, json.to_string()).unwrap();
    dir
}

#[test]
fn packs_whose_template_or_relation_do_not_fit_are_refused() {
    let gpt2 = fixture("gpt2");
    let model = gpt2.to_str().unwrap();
    let more = edited_pack(|j| j["template"] = "[P:3] [X] [Y]".into());
    let args = [
        "predict",
        "--model",
        model,
        "--pack",
        more.path().to_str().unwrap(),
        "x",
    ];
    command_fails_with(
        &args,
        "has 3 prompt slots, but the prompt matrix has 2 rows",
    );
    let fewer = edited_pack(|j| j["template"] = "[P] [X] [Y]".into());
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ptune-data/tests/fixtures/lama");
    let args = [
        "eval",
        "--model",
        model,
        "--pack",
        fewer.path().to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    command_fails_with(
        &args,
        "has 1 prompt slots, but the prompt matrix has 2 rows",
    );
    let outside = edited_pack(|j| j["relation"] = "../../x".into());
    let args = [
        "predict",
        "--model",
        model,
        "--pack",
        outside.path().to_str().unwrap(),
        "x",
    ];
    command_fails_with(&args, "relation id \"../../x\" is not a plain name");
}

/// Every choice a flag has is listed in `--help`, and a value outside them is one clap error.
#[test]
fn help_lists_the_choices() {
    let (ok, stdout, _) = ptune(&["eval", "--help"]);
    assert!(ok);
    assert!(
        stdout.contains("possible values: train, dev, test"),
        "{stdout}"
    );
    let (ok, _, stderr_bad) = ptune(&["eval", "--pack", "p", "--data", "d", "--split", "val"]);
    assert!(!ok);
    assert!(
        stderr_bad.contains("invalid value 'val' for '--split"),
        "{stderr_bad}"
    );
}

/// `--threads N` sizes the worker pool without changing a number; 0 is refused by name.
#[test]
fn threads_flag_changes_no_result() {
    let model = fixture("bert");
    let text = "paris is the capital of [MASK] .";
    let base = ptune(&["predict", "--model", model.to_str().unwrap(), text]);
    let one = ptune(&[
        "predict",
        "--threads",
        "1",
        "--model",
        model.to_str().unwrap(),
        text,
    ]);
    assert!(one.0, "{}", one.2);
    assert_eq!(one.1, base.1);
    let (ok, _, stderr) = ptune(&["predict", "--threads", "0", "--model", "m", "x"]);
    assert!(!ok);
    assert!(stderr.contains("'--threads <N>'"), "{stderr}");
}

/// `ptune -h` describes what the binary does today: its three commands and what each is for.
#[test]
fn short_help_is_current() {
    let (ok, stdout, _) = ptune(&["-h"]);
    assert!(ok);
    let first = stdout.lines().next().unwrap();
    assert!(
        first.contains("train prompts for a frozen language model"),
        "{stdout}"
    );
    for command in ["predict", "train", "eval"] {
        assert!(
            stdout.contains(&format!("  {command} ")),
            "{command}: {stdout}"
        );
    }
    assert!(!stdout.contains("come with the trainer"), "{stdout}");
}

/// A fine-tuned checkpoint whose config names its own class loads by `model_type`, as
/// transformers' Auto classes load it, and predicts exactly as the same weights under the usual
/// class name.
#[test]
fn a_custom_architectures_name_loads_by_model_type() {
    let dir = copy_fixture("bert");
    let config = dir.path().join("config.json");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("BertForMaskedLM", "ProteinBertForMyTask"),
    )
    .unwrap();
    let text = "paris is the capital of [MASK] .";
    let ours = ptune(&["predict", "--model", dir.path().to_str().unwrap(), text]);
    let original = ptune(&[
        "predict",
        "--model",
        fixture("bert").to_str().unwrap(),
        text,
    ]);
    assert!(ours.0, "{}", ours.2);
    assert_eq!(ours.1, original.1);
}
