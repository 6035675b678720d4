//! Real pretrained weights against transformers' saved outputs. CI only: the weights come from
//! `cargo xtask fetch all` (into `$PTUNE_MODELS`, default `~/.cache/ptune/models`).

mod common;

use burn::tensor::Device;
use common::{models_dir, read_ref, reference_errors};
use ptune_backbone::{ModelBundle, Objective, Precision};
use std::path::PathBuf;

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

fn open(model: &str) -> ModelBundle {
    let dir = models_dir().join(model);
    ModelBundle::open(dir.to_str().unwrap())
        .unwrap_or_else(|e| panic!("{e} (run `cargo xtask fetch {model}` first)"))
}

fn reference_texts(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(reference(name)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Our tokenizer gives the reference's ids for each text (before padding).
fn assert_same_ids(bundle: &ModelBundle, texts: &[String], reference: &std::path::Path) {
    let ids = read_ref(reference, "input_ids");
    let mask = read_ref(reference, "attention_mask");
    let t = ids.shape[1];
    for (row, text) in texts.iter().enumerate() {
        let ours: Vec<i64> = bundle
            .tokenizer
            .encode(text.as_str(), true)
            .unwrap()
            .get_ids()
            .iter()
            .map(|&i| i as i64)
            .collect();
        let len = mask.i64s[row * t..(row + 1) * t].iter().sum::<i64>() as usize;
        assert_eq!(
            ours,
            ids.i64s[row * t..row * t + len],
            "token ids of {text:?}"
        );
    }
}

#[test]
#[ignore = "needs AntiBERTy weights: cargo xtask fetch antiberty"]
fn antiberty_mlm_head_matches_transformers() {
    let bundle = open("antiberty");
    let device = Device::flex();
    let model = bundle.backbone(&device).unwrap();
    assert_eq!(model.objective(), Objective::Masked);
    let path = reference("antiberty.safetensors");
    assert_same_ids(&bundle, &reference_texts("antiberty.json"), &path);
    let (hidden, logits) = reference_errors(&model, &path, &device);
    assert!(hidden <= 1e-4, "AntiBERTy hidden states differ by {hidden}");
    let logits = logits.unwrap();
    assert!(logits <= 1e-4, "AntiBERTy MLM logits differ by {logits}");
}

#[test]
#[ignore = "needs MiniLM weights: cargo xtask fetch minilm"]
fn minilm_encoder_matches_transformers() {
    let bundle = open("minilm");
    let device = Device::flex();
    let model = bundle.backbone(&device).unwrap();
    assert!(!model.has_lm_head(), "MiniLM ships no MLM head");
    let path = reference("minilm.safetensors");
    assert_same_ids(&bundle, &reference_texts("minilm.json"), &path);
    let (hidden, logits) = reference_errors(&model, &path, &device);
    assert!(hidden <= 1e-4, "MiniLM hidden states differ by {hidden}");
    assert!(logits.is_none());
}

/// `predict "The capital of France is"` on SmolLM2-135M: our top-10 next tokens and their
/// log-probs are transformers' (same ids, log-probs within 1e-3), " Paris" first.
#[test]
#[ignore = "needs the SmolLM2 GGUF: cargo xtask fetch smollm2"]
fn smollm2_next_token_matches_transformers() {
    smollm2_against_transformers(Precision::F32, 1e-3, 3);
}

/// The same in bf16: the top-ranked next token is transformers' f32 one and the top-10
/// log-probs stay within 0.25 nats of f32. PyTorch's own bf16 moves them as far: 0.16 under
/// autocast, 0.22 with the model cast to bf16 (measured on these prompts); ptune gives 0.17.
#[test]
#[ignore = "needs the SmolLM2 GGUF: cargo xtask fetch smollm2"]
fn smollm2_in_bf16_predicts_what_f32_predicts() {
    smollm2_against_transformers(Precision::Bf16, 0.25, 1);
}

/// Checks every reference prompt's top-10 log-probs within `tol` and the first `ranks` ranks.
fn smollm2_against_transformers(precision: Precision, tol: f32, ranks: usize) {
    let path = models_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let bundle =
        ModelBundle::open(path.to_str().unwrap()).expect("run `cargo xtask fetch smollm2`");
    let device = Device::flex();
    let model = bundle.backbone_as(&device, precision).unwrap();
    assert_eq!(model.objective(), Objective::Causal);
    assert_eq!(model.precision(), precision);
    let text = std::fs::read_to_string(reference("smollm2.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut worst = 0.0f32;
    for case in json["prompts"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let ids: Vec<u32> = bundle
            .tokenizer
            .encode(prompt, true)
            .unwrap()
            .get_ids()
            .to_vec();
        let expected_ids: Vec<u32> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, expected_ids, "token ids of {prompt:?}");
        let logprobs = next_token_logprobs(&model, &ids, &device);
        let mut ranked: Vec<usize> = (0..logprobs.len()).collect();
        ranked.sort_by(|&a, &b| logprobs[b].total_cmp(&logprobs[a]));
        for (rank, top) in case["top"].as_array().unwrap().iter().enumerate() {
            let id = top["id"].as_u64().unwrap() as usize;
            let expected = top["logprob"].as_f64().unwrap() as f32;
            worst = worst.max((logprobs[id] - expected).abs());
            assert!(
                (logprobs[id] - expected).abs() <= tol,
                "{prompt:?}: log-prob of {:?} is {} but transformers gives {expected}",
                top["text"],
                logprobs[id]
            );
            if rank < ranks {
                assert_eq!(ranked[rank], id, "{prompt:?}: rank {} differs", rank + 1);
            }
        }
    }
    eprintln!("{}: largest log-prob difference {worst}", precision.name());
}

fn next_token_logprobs(model: &ptune_backbone::Backbone, ids: &[u32], device: &Device) -> Vec<f32> {
    use burn::tensor::{Int, Tensor, TensorData, activation::log_softmax};
    let n = ids.len();
    let input = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, n]),
        device,
    );
    let hidden = model.forward_embeds(model.embed_tokens(input), Tensor::ones([1, n], device));
    let logits = model
        .lm_logits(ptune_backbone::Backbone::gather_rows(hidden, &[(0, n - 1)]))
        .unwrap();
    common::to_vec(log_softmax(logits, 1))
}
