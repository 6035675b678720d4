//! The Hugging Face view on hand-built files: names, Q/K un-permutation per family, config
//! fields that the fixtures do not exercise.

mod common;

use common::{GgufBuilder, f32_bytes};
use ptune_gguf::hf::{Family, hf_name, unpermute_rows};
use ptune_gguf::{GgufError, GgufFile, HfView, hf_config};

/// Row `r` of a `rows x cols` matrix holds the value `r` everywhere, so a row order is readable.
fn row_ids(rows: usize, cols: usize) -> Vec<f32> {
    (0..rows).flat_map(|r| vec![r as f32; cols]).collect()
}

fn model(arch: &str) -> GgufBuilder {
    let key = |k: &str| format!("{arch}.{k}");
    // 2 heads of dim 4 for Q, 1 KV head for K; hidden 8.
    GgufBuilder::default()
        .kv_str("general.architecture", arch)
        .kv_u32(&key("embedding_length"), 8)
        .kv_u32(&key("feed_forward_length"), 16)
        .kv_u32(&key("block_count"), 1)
        .kv_u32(&key("attention.head_count"), 2)
        .kv_u32(&key("attention.head_count_kv"), 1)
        .kv_u32(&key("context_length"), 32)
        .kv_f32(&key("attention.layer_norm_rms_epsilon"), 1e-6)
        .tensor(
            "blk.0.attn_q.weight",
            &[2, 8],
            0,
            &f32_bytes(&row_ids(8, 2)),
        )
        .tensor(
            "blk.0.attn_k.weight",
            &[2, 4],
            0,
            &f32_bytes(&row_ids(4, 2)),
        )
        .tensor("blk.0.attn_q.bias", &[8], 0, &f32_bytes(&row_ids(8, 1)))
        .tensor("token_embd.weight", &[8, 10], 0, &f32_bytes(&[0.0; 80]))
        .tensor("output.weight", &[8, 10], 0, &f32_bytes(&[0.0; 80]))
}

fn rows_of(view: &HfView, name: &str) -> Vec<f32> {
    let (shape, data) = view.read(name).unwrap().unwrap();
    let cols: usize = shape[1..].iter().product();
    data.iter().step_by(cols).copied().collect()
}

#[test]
fn llama_q_and_k_are_unpermuted() {
    let view = HfView::new(GgufFile::from_bytes(model("llama").build()).unwrap()).unwrap();
    assert_eq!(view.family(), Family::Llama);
    // GGUF row 2j+k of a head holds transformers' row k*d/2+j.
    let q = rows_of(&view, "model.layers.0.self_attn.q_proj.weight");
    assert_eq!(q, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
    let bias = rows_of(&view, "model.layers.0.self_attn.q_proj.bias");
    assert_eq!(bias, q, "biases are permuted like their weights");
    let k = rows_of(&view, "model.layers.0.self_attn.k_proj.weight");
    assert_eq!(k, vec![0.0, 2.0, 1.0, 3.0], "K uses the KV head count");
    let c = view.config();
    assert_eq!(c["tie_word_embeddings"], false);
    assert_eq!(c["attention_bias"], true);
    assert_eq!(c["rope_theta"], 10000.0, "llama.cpp's default");
    assert_eq!(c["head_dim"], 4);
    assert_eq!(c["rms_norm_eps"], 1e-6);
    assert_eq!(c["vocab_size"], 10);
    assert!(c.get("bos_token_id").is_none());
    assert!(view.names().contains(&"lm_head.weight".to_string()));
}

#[test]
fn mistral_reads_as_llama() {
    let view = HfView::new(GgufFile::from_bytes(model("mistral").build()).unwrap()).unwrap();
    assert_eq!(view.config()["model_type"], "llama");
    let q = rows_of(&view, "model.layers.0.self_attn.q_proj.weight");
    assert_eq!(q, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
}

#[test]
fn qwen2_is_not_permuted() {
    let view = HfView::new(GgufFile::from_bytes(model("qwen2").build()).unwrap()).unwrap();
    assert_eq!(view.family(), Family::Qwen2);
    assert_eq!(view.config()["model_type"], "qwen2");
    assert_eq!(view.config()["architectures"][0], "Qwen2ForCausalLM");
    let q = rows_of(&view, "model.layers.0.self_attn.q_proj.weight");
    assert_eq!(q, (0..8).map(|r| r as f32).collect::<Vec<_>>());
}

#[test]
fn rope_scaling_and_rope_freqs() {
    let linear = model("llama")
        .kv_str("llama.rope.scaling.type", "linear")
        .kv_f32("llama.rope.scaling.factor", 4.0);
    let c = hf_config(&GgufFile::from_bytes(linear.build()).unwrap()).unwrap();
    assert_eq!(c["rope_scaling"]["rope_type"], "linear");
    assert_eq!(c["rope_scaling"]["factor"], 4.0);

    let freqs = model("llama").tensor("rope_freqs.weight", &[2], 0, &f32_bytes(&[1.0, 1.0]));
    let err = hf_config(&GgufFile::from_bytes(freqs.build()).unwrap()).unwrap_err();
    assert!(matches!(err, GgufError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("rope_freqs.weight"), "{err}");
}

#[test]
fn q_rows_that_do_not_split_into_heads_are_an_error() {
    let b = GgufBuilder::default()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.embedding_length", 8)
        .kv_u32("llama.feed_forward_length", 16)
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.attention.head_count", 4)
        .kv_u32("llama.vocab_size", 10)
        .kv_u32("llama.context_length", 32)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6)
        .tensor(
            "blk.0.attn_q.weight",
            &[2, 6],
            0,
            &f32_bytes(&row_ids(6, 2)),
        );
    let view = HfView::new(GgufFile::from_bytes(b.build()).unwrap()).unwrap();
    let err = view
        .read("model.layers.0.self_attn.q_proj.weight")
        .unwrap_err();
    assert!(matches!(err, GgufError::InvalidTensor { .. }), "{err}");
    assert!(err.to_string().contains("4 heads"), "{err}");
    assert_eq!(unpermute_rows(&[0.0; 6], &[3, 2], 2), None);
}

#[test]
fn unknown_tensors_are_unmapped() {
    let b = model("llama").tensor("blk.0.attn_q.scale", &[1], 0, &[0; 4]);
    let view = HfView::new(GgufFile::from_bytes(b.build()).unwrap()).unwrap();
    assert_eq!(view.unmapped(), vec!["blk.0.attn_q.scale"]);
    assert_eq!(view.gguf_name("lm_head.weight"), Some("output.weight"));
    assert!(
        view.read("model.layers.9.mlp.up_proj.weight")
            .unwrap()
            .is_none()
    );
    assert!(view.shape("nope").is_none());
}

#[test]
fn names_map_both_ways() {
    let cases = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
        (
            "blk.12.attn_q.weight",
            "model.layers.12.self_attn.q_proj.weight",
        ),
        ("blk.0.attn_k.bias", "model.layers.0.self_attn.k_proj.bias"),
        (
            "blk.3.attn_v.weight",
            "model.layers.3.self_attn.v_proj.weight",
        ),
        (
            "blk.3.attn_output.weight",
            "model.layers.3.self_attn.o_proj.weight",
        ),
        (
            "blk.1.ffn_gate.weight",
            "model.layers.1.mlp.gate_proj.weight",
        ),
        ("blk.1.ffn_up.weight", "model.layers.1.mlp.up_proj.weight"),
        (
            "blk.1.ffn_down.weight",
            "model.layers.1.mlp.down_proj.weight",
        ),
        (
            "blk.7.attn_norm.weight",
            "model.layers.7.input_layernorm.weight",
        ),
        (
            "blk.7.ffn_norm.weight",
            "model.layers.7.post_attention_layernorm.weight",
        ),
    ];
    for (gguf, hf) in cases {
        assert_eq!(hf_name(gguf).as_deref(), Some(hf), "{gguf}");
    }
    for unknown in [
        "rope_freqs.weight",
        "blk.x.attn_q.weight",
        "blk.0.attn_q.scale",
        "blk.0.ffn_gate_exps.weight",
    ] {
        assert_eq!(hf_name(unknown), None, "{unknown}");
    }
}

#[test]
fn unpermute_inverts_the_converters_permute() {
    // convert_hf_to_gguf.py: reshape(heads, 2, d/2, cols).swapaxes(1, 2).
    let (heads, head_dim, cols) = (3, 6, 2);
    let rows = heads * head_dim;
    let hf: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
    let mut gguf = vec![0.0; hf.len()];
    for h in 0..heads {
        for k in 0..2 {
            for j in 0..head_dim / 2 {
                let (src, dst) = (
                    h * head_dim + k * head_dim / 2 + j,
                    h * head_dim + 2 * j + k,
                );
                gguf[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&hf[src * cols..(src + 1) * cols]);
            }
        }
    }
    assert_eq!(unpermute_rows(&gguf, &[rows, cols], heads), Some(hf));
}
