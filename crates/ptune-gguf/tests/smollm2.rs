//! The real SmolLM2-135M-Instruct Q4_1 file against values transformers produced from it
//! (tests/reference/smollm2_tokens.json, written by scripts/make_gguf_fixtures.py).

mod common;

use std::path::PathBuf;

use ptune_gguf::{HfView, tokenizer, tokenizer_metadata};
use serde_json::Value;

fn model_path() -> PathBuf {
    let models = std::env::var_os("PTUNE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ptune/models")
        });
    models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn reference() -> Value {
    let path = common::crate_dir().join("tests/reference/smollm2_tokens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn values(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// `rows x cols` starting at (`row`, `col`) of a row-major matrix with `width` columns.
fn slice(data: &[f32], width: usize, row: usize, rows: usize, col: usize, cols: usize) -> Vec<f32> {
    (row..row + rows)
        .flat_map(|r| data[r * width + col..r * width + col + cols].to_vec())
        .collect()
}

#[test]
#[ignore = "needs the SmolLM2 GGUF: cargo xtask fetch smollm2"]
fn smollm2_config_weights_and_tokens() {
    let view = HfView::open(model_path()).unwrap();
    let c = view.config();
    let expect = [
        ("hidden_size", 576.0),
        ("intermediate_size", 1536.0),
        ("num_hidden_layers", 30.0),
        ("num_attention_heads", 9.0),
        ("num_key_value_heads", 3.0),
        ("head_dim", 64.0),
        ("rms_norm_eps", 1e-5),
        ("rope_theta", 100000.0),
        ("max_position_embeddings", 8192.0),
        ("vocab_size", 49152.0),
        ("bos_token_id", 1.0),
        ("eos_token_id", 2.0),
        ("pad_token_id", 2.0),
    ];
    for (key, value) in expect {
        assert_eq!(c[key].as_f64(), Some(value), "{key}");
    }
    assert_eq!(c["tie_word_embeddings"], true);

    let names = view.names();
    assert_eq!(
        names.len(),
        2 + 30 * 9,
        "embedding, final norm, 9 tensors per layer"
    );
    for name in &names {
        let shape = view.shape(name).unwrap();
        let (read_shape, data) = view.read(name).unwrap().unwrap();
        assert_eq!(read_shape, shape);
        assert_eq!(data.len(), shape.iter().product::<usize>());
        assert!(
            data.iter().all(|v| v.is_finite()),
            "{name} has non-finite values"
        );
    }
    assert_eq!(
        view.shape("model.layers.0.self_attn.k_proj.weight"),
        Some(vec![192, 576])
    );
    assert_eq!(
        view.shape("model.embed_tokens.weight"),
        Some(vec![49152, 576])
    );

    let r = reference();
    let w = &r["weights"];
    let embed = view.read("model.embed_tokens.weight").unwrap().unwrap().1;
    assert_eq!(slice(&embed, 576, 0, 1, 0, 32), values(&w["embed_row0"]));
    assert_eq!(
        slice(&embed, 576, 1000, 1, 0, 32),
        values(&w["embed_row1000"])
    );
    let q = view
        .read("model.layers.0.self_attn.q_proj.weight")
        .unwrap()
        .unwrap()
        .1;
    assert_eq!(
        slice(&q, 576, 0, 4, 0, 8),
        values(&w["q_proj0_rows0_4_cols0_8"])
    );
    assert_eq!(
        slice(&q, 576, 32, 4, 0, 8),
        values(&w["q_proj0_rows32_36_cols0_8"])
    );
    let k = view
        .read("model.layers.5.self_attn.k_proj.weight")
        .unwrap()
        .unwrap()
        .1;
    assert_eq!(
        slice(&k, 576, 60, 4, 100, 8),
        values(&w["k_proj5_rows60_64_cols100_108"])
    );
    let down = view
        .read("model.layers.29.mlp.down_proj.weight")
        .unwrap()
        .unwrap()
        .1;
    assert_eq!(
        slice(&down, 1536, 7, 1, 0, 16),
        values(&w["down_proj29_row7_cols0_16"])
    );
    let norm = view.read("model.norm.weight").unwrap().unwrap().1;
    assert_eq!(norm[..16].to_vec(), values(&w["norm_0_16"]));

    let specials = tokenizer_metadata(view.gguf()).unwrap();
    assert!(!specials.add_bos, "SmolLM2 asks for no BOS");
    let tok = tokenizer(view.gguf()).unwrap();
    let texts = r["texts"].as_array().unwrap();
    for (text, ids) in texts.iter().zip(r["ids"].as_array().unwrap()) {
        let text = text.as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
        assert_eq!(
            tok.encode(text, true).unwrap().get_ids(),
            expected,
            "{text:?}"
        );
    }
}
