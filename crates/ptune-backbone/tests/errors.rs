//! Broken models are refused at load with one sentence naming the file and what is wrong:
//! never a panic, never a model that computes garbage. Each case damages a copy of a fixture.

mod common;

use burn::tensor::Device;
use common::fixture;
use ptune_backbone::ModelBundle;
use safetensors::SafeTensors;
use safetensors::tensor::TensorView;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;
use tempfile::TempDir;

/// A private copy of a fixture directory.
fn copy_fixture(name: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// A copy of `name` whose `config.json` was changed by `edit`.
fn with_config(name: &str, edit: impl FnOnce(&mut Value)) -> TempDir {
    let dir = copy_fixture(name);
    let path = dir.path().join("config.json");
    let mut config: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    fs::write(&path, config.to_string()).unwrap();
    dir
}

/// Opens and builds the model; the error it must fail with, as a user sees it.
fn load_error(path: &Path) -> String {
    let loaded = ModelBundle::open(path.to_str().unwrap())
        .and_then(|bundle| bundle.backbone(&Device::flex()));
    match loaded {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

/// Fails with a config.json error naming the file and containing `needle`.
fn config_refused(dir: &TempDir, needle: &str) {
    let err = load_error(dir.path());
    let file = dir.path().join("config.json");
    assert!(
        err.starts_with(&format!("{}: invalid config.json: ", file.display())),
        "{err}"
    );
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn zero_heads_and_sizes_are_refused() {
    for (fixture, field) in [
        ("bert", "num_attention_heads"),
        ("bert", "hidden_size"),
        ("bert", "intermediate_size"),
        ("bert", "type_vocab_size"),
        ("bert", "vocab_size"),
        ("gpt2", "n_head"),
        ("gpt2", "n_embd"),
        ("gpt2", "n_inner"),
        ("llama_gqa_tied", "num_attention_heads"),
        ("llama_gqa_tied", "num_key_value_heads"),
        ("llama_gqa_tied", "head_dim"),
        ("llama_gqa_tied", "intermediate_size"),
        ("qwen2", "num_key_value_heads"),
    ] {
        let dir = with_config(fixture, |c| c[field] = json!(0));
        config_refused(&dir, &format!("`{field}` is 0; it must be positive"));
    }
}

#[test]
fn zero_layers_are_refused() {
    for (fixture, field) in [
        ("bert", "num_hidden_layers"),
        ("gpt2", "n_layer"),
        ("llama_untied", "num_hidden_layers"),
    ] {
        let dir = with_config(fixture, |c| c[field] = json!(0));
        config_refused(&dir, &format!("`{field}` is 0; it must be positive"));
    }
}

#[test]
fn odd_or_empty_head_dimensions_are_refused() {
    let dir = with_config("llama_gqa_tied", |c| c["head_dim"] = json!(7));
    config_refused(
        &dir,
        "the head dimension is 7, but RoPE needs a positive even one",
    );
    let dir = with_config("qwen2", |c| c["num_attention_heads"] = json!(3));
    config_refused(&dir, "num_attention_heads is not a multiple");
}

#[test]
fn non_positive_norm_epsilons_are_refused() {
    for (fixture, field, value) in [
        ("bert", "layer_norm_eps", 0.0),
        ("roberta", "layer_norm_eps", -1e-5),
        ("gpt2", "layer_norm_epsilon", 0.0),
        ("llama_gqa_tied", "rms_norm_eps", -1e-6),
    ] {
        let dir = with_config(fixture, |c| c[field] = json!(value));
        config_refused(
            &dir,
            &format!("`{field}` is {value}; it must be a positive finite number"),
        );
    }
}

/// A change to a config.json.
type Edit = fn(&mut Value);

#[test]
fn bad_rope_theta_is_refused_not_defaulted() {
    let cases: [(&str, Edit, &str); 4] = [
        (
            "llama_untied",
            |c| c["rope_theta"] = json!(0.0),
            "`rope_theta` is 0; it must be a positive finite number",
        ),
        (
            "llama_untied",
            |c| c["rope_theta"] = json!(-10000.0),
            "`rope_theta` is -10000",
        ),
        (
            "llama_gqa_tied",
            |c| c["rope_parameters"]["rope_theta"] = json!("10000"),
            "`rope_parameters.rope_theta` is \"10000\", not a number",
        ),
        (
            "qwen2",
            |c| c["rope_parameters"] = json!("default"),
            "`rope_parameters` is \"default\", not an object",
        ),
    ];
    for (fixture, edit, needle) in cases {
        config_refused(&with_config(fixture, edit), needle);
    }
}

#[test]
fn unknown_activation_names_the_file() {
    let dir = with_config("bert", |c| c["hidden_act"] = json!("mish"));
    config_refused(
        &dir,
        "`hidden_act`: unknown variant `mish`, expected one of `gelu`",
    );
    let dir = with_config("gpt2", |c| c["activation_function"] = json!("mish"));
    config_refused(
        &dir,
        "`activation_function`: unknown variant `mish`, expected one of `gelu`",
    );
}

#[test]
fn roberta_positions_must_exceed_the_padding_offset() {
    let dir = with_config("roberta", |c| c["max_position_embeddings"] = json!(2));
    config_refused(&dir, "max_position_embeddings is 2 but RoBERTa's positions");
}

#[test]
fn weights_of_layers_the_config_lacks_are_refused() {
    for (fixture, field, tensor) in [
        ("bert", "num_hidden_layers", "bert.encoder.layer.1."),
        ("gpt2", "n_layer", "transformer.h.1."),
        ("llama_gqa_tied", "num_hidden_layers", "model.layers.1."),
        ("llama_untied", "num_hidden_layers", "model.layers.1."),
    ] {
        let dir = with_config(fixture, |c| c[field] = json!(1));
        let err = load_error(dir.path());
        assert!(err.contains(&format!("tensor `{tensor}")), "{err}");
        assert!(
            err.contains("is never read by the model the config describes"),
            "{err}"
        );
    }
}

/// Rewrites `model.safetensors` in `dir` after `edit` changed its f32 tensors.
fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, shape, data)| {
            let view = TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

#[test]
fn buffers_poolers_and_extra_heads_are_not_refused() {
    let dir = copy_fixture("bert");
    rewrite_weights(dir.path(), |tensors| {
        let zeros = |n: usize| vec![0u8; 4 * n];
        for (name, shape) in [
            ("bert.embeddings.position_ids", vec![1, 64]),
            ("bert.pooler.dense.weight", vec![32, 32]),
            ("bert.pooler.dense.bias", vec![32]),
            ("cls.seq_relationship.weight", vec![2, 32]),
            ("cls.seq_relationship.bias", vec![2]),
            ("cls.predictions.decoder.bias", vec![120]),
            // A fine-tuned checkpoint's own heads (AntiBERTy carries `cls.species` and friends).
            ("cls.species.weight", vec![6, 32]),
            ("cls.species.bias", vec![6]),
        ] {
            let n = shape.iter().product();
            tensors.push((name.into(), shape, zeros(n)));
        }
    });
    let bundle = ModelBundle::open(dir.path().to_str().unwrap()).unwrap();
    bundle.backbone(&Device::flex()).unwrap();
}

#[test]
fn nan_and_infinite_weights_are_refused_naming_the_tensor() {
    for (value, spelled) in [(f32::NAN, "NaN"), (f32::NEG_INFINITY, "-inf")] {
        let dir = copy_fixture("bert");
        let name = "bert.encoder.layer.1.attention.self.value.weight";
        rewrite_weights(dir.path(), |tensors| {
            let (_, _, data) = tensors.iter_mut().find(|(n, ..)| n == name).unwrap();
            data[12..16].copy_from_slice(&value.to_le_bytes());
        });
        let err = load_error(dir.path());
        let file = dir.path().join("model.safetensors");
        assert!(err.starts_with(&file.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("tensor `{name}` holds {spelled} at index 3")),
            "{err}"
        );
    }
}

#[test]
fn vocabulary_larger_than_the_embedding_is_refused() {
    let dir = copy_fixture("bert");
    let vocab = dir.path().join("vocab.txt");
    let extra: String = (0..5).map(|i| format!("extra{i}\n")).collect();
    fs::write(&vocab, fs::read_to_string(&vocab).unwrap() + &extra).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains(
            "its token `extra4` has id 124, but the model's embedding table has only 120 rows"
        ),
        "{err}"
    );

    let dir = copy_fixture("llama_gqa_tied");
    let path = dir.path().join("tokenizer.json");
    let mut tok: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    tok["post_processor"]["special_tokens"]["<s>"]["ids"] = json!([400]);
    fs::write(&path, tok.to_string()).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("a token its template adds has id 400, but the model's embedding table has only 360 rows"),
        "{err}"
    );
}

/// A copy of the GGUF fixture with the u32 or f32 metadata value of `key` replaced.
fn patched_gguf(key: &str, value: [u8; 4]) -> (TempDir, std::path::PathBuf) {
    let mut bytes = fs::read(fixture("llama_gguf").join("model.gguf")).unwrap();
    let mut encoded = (key.len() as u64).to_le_bytes().to_vec();
    encoded.extend(key.as_bytes());
    let at = bytes
        .windows(encoded.len())
        .position(|w| w == encoded)
        .unwrap_or_else(|| panic!("{key} in the fixture"));
    let value_at = at + encoded.len() + 4;
    let type_id = u32::from_le_bytes(bytes[value_at - 4..value_at].try_into().unwrap());
    assert!(type_id == 4 || type_id == 6, "{key} is a u32 or an f32");
    bytes[value_at..value_at + 4].copy_from_slice(&value);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.gguf");
    fs::write(&file, bytes).unwrap();
    (dir, file)
}

#[test]
fn gguf_special_token_past_the_embedding_is_refused() {
    let (_dir, file) = patched_gguf(
        "tokenizer.ggml.padding_token_id",
        1_000_000_000u32.to_le_bytes(),
    );
    let err = load_error(&file);
    assert!(
        err.contains(&format!(
            "{}: the padding token has id 1000000000, but the model's embedding table has only 380 rows",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn gguf_with_more_layers_than_its_block_count_is_refused() {
    let (_dir, file) = patched_gguf("llama.block_count", 1u32.to_le_bytes());
    let err = load_error(&file);
    assert!(err.starts_with(&file.display().to_string()), "{err}");
    assert!(err.contains("tensor `model.layers.1."), "{err}");
}

#[test]
fn gguf_metadata_errors_name_the_file() {
    let (_dir, file) = patched_gguf("llama.attention.head_count_kv", 3u32.to_le_bytes());
    let err = load_error(&file);
    assert!(
        err.starts_with(&format!("{}: invalid model metadata: ", file.display())),
        "{err}"
    );
    assert!(
        err.contains("not a multiple of num_key_value_heads"),
        "{err}"
    );

    for (key, value) in [
        ("llama.attention.head_count_kv", 0u32.to_le_bytes()),
        (
            "llama.attention.layer_norm_rms_epsilon",
            f32::NAN.to_le_bytes(),
        ),
        ("llama.rope.freq_base", f32::NAN.to_le_bytes()),
    ] {
        let (_dir, file) = patched_gguf(key, value);
        let err = load_error(&file);
        assert!(err.starts_with(&file.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("metadata key {key:?} holds")),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_not_models() {
    let err = load_error(Path::new("/dev/null"));
    assert_eq!(
        err,
        "/dev/null: a device, not a model directory, a .gguf file or a hub id"
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.gguf");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let err = load_error(&fifo);
    assert!(
        err.ends_with("a FIFO (named pipe), not a model directory, a .gguf file or a hub id"),
        "{err}"
    );
}
