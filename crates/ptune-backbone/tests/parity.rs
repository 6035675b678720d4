//! Every family against transformers on tiny seeded checkpoints: hidden states and logits,
//! for a padded batch, within 1e-4.

mod common;

use burn::tensor::Device;
use common::{fixture, int_tensor, max_err_valid, read_ref, to_vec};
use ptune_backbone::{Backbone, ModelBundle};

const TOL: f32 = 1e-4;

/// Runs the fixture's reference batch and returns (hidden error, logits error).
fn parity(name: &str) -> (f32, f32) {
    let dir = fixture(name);
    let bundle = ModelBundle::open(dir.to_str().unwrap()).expect("fixture opens");
    let device = Device::flex();
    let model = bundle.backbone(&device).expect("fixture loads");
    let reference = dir.join("reference.safetensors");
    let ids = read_ref(&reference, "input_ids");
    let mask = read_ref(&reference, "attention_mask");
    let hidden_ref = read_ref(&reference, "hidden");
    let logits_ref = read_ref(&reference, "logits");
    let (b, t) = (ids.shape[0], ids.shape[1]);

    let embeds = model.embed_tokens(int_tensor(&ids, &device));
    let hidden = model.forward_embeds(embeds, int_tensor(&mask, &device));
    let h = hidden.dims()[2];
    let rows: Vec<(usize, usize)> = (0..b).flat_map(|e| (0..t).map(move |p| (e, p))).collect();
    let logits = model
        .lm_logits(Backbone::gather_rows(hidden.clone(), &rows))
        .expect("has a head");
    let v = logits.dims()[1];
    (
        max_err_valid(&to_vec(hidden), &hidden_ref.f32s, &mask.i64s, h),
        max_err_valid(&to_vec(logits), &logits_ref.f32s, &mask.i64s, v),
    )
}

fn assert_parity(name: &str) {
    let (hidden, logits) = parity(name);
    assert!(hidden <= TOL, "{name}: hidden states differ by {hidden}");
    assert!(logits <= TOL, "{name}: logits differ by {logits}");
}

#[test]
fn bert_matches_transformers() {
    assert_parity("bert");
}

#[test]
fn bert_from_pytorch_pickle_matches_transformers() {
    assert_parity("bert_bin");
}

#[test]
fn roberta_matches_transformers() {
    assert_parity("roberta");
}

#[test]
fn gpt2_matches_transformers() {
    assert_parity("gpt2");
}

#[test]
fn llama_gqa_tied_matches_transformers() {
    assert_parity("llama_gqa_tied");
}

#[test]
fn llama_untied_sharded_matches_transformers() {
    assert_parity("llama_untied");
}

#[test]
fn qwen2_matches_transformers() {
    assert_parity("qwen2");
}
