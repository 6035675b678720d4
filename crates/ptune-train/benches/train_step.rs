//! One P-tuning training step (prompt encoder forward, splice, frozen backbone forward and
//! backward to the inputs, LM head at the targets, Adam on the encoder), one evaluation step with
//! the prompt matrix cached (splice, forward, LM head at the targets), and the splice alone:
//! batch 8 × 16 tokens, template `[P:3] [X] [P:3] [Y]`, paper's LSTM encoder. Tiny GPT-2 fixture
//! and a SmolLM2-135M-shaped model with random weights. And a mixed batch (the same rows, two
//! from each of 4 packs) evaluated with each pack's leading prompts computed once per pack, and
//! with none shared, the ablation.
//!
//! Run: `cargo bench -p ptune-train --bench train_step` (add `--profile dev` to reuse the test
//! build of burn instead of a release build).

use burn::tensor::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use ptune_backbone::synthetic::RandomWeights;
use ptune_backbone::{Backbone, ModelBundle, SharedPrefix};
use ptune_data::Batch;
use ptune_encoder::{EncoderKind, PromptEncoderConfig};
use ptune_train::model::{BatchTensors, optimizer, target_logits, train_step};

const BATCH: usize = 8;
const SEQ: usize = 16;

fn batch(vocab: usize) -> Batch {
    let prompt = [0, 1, 2, 8, 9, 10];
    Batch {
        input_ids: (0..BATCH * SEQ)
            .map(|i| ((i * 7919) % vocab) as u32)
            .collect(),
        attention_mask: vec![1; BATCH * SEQ],
        batch_size: BATCH,
        seq_len: SEQ,
        n_prompts: prompt.len(),
        prompt_positions: (0..BATCH).flat_map(|_| prompt).collect(),
        target_positions: vec![SEQ - 1; BATCH],
        object_ids: (0..BATCH).map(|i| ((i * 31) % vocab) as u32).collect(),
        fact_indices: (0..BATCH).collect(),
        leads: Vec::new(),
        prompt_spans: Vec::new(),
    }
}

/// The same rows as [`batch`], two from each of 4 packs, each pack with its own 6 prompt rows.
fn mixed_batch(vocab: usize) -> Batch {
    let mut batch = batch(vocab);
    batch.prompt_spans = (0..BATCH).map(|e| ((e % 4) * 6, 6)).collect();
    batch
}

fn models(device: &Device) -> Vec<(&'static str, Backbone)> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ptune-backbone/tests/fixtures/gpt2"
    );
    let tiny = ModelBundle::open(fixture)
        .unwrap()
        .backbone(device)
        .unwrap();
    let smollm2 = ptune_backbone::synthetic::shape("smollm2-135m").unwrap();
    let smollm2 = Backbone::load(&smollm2, &RandomWeights::new(&smollm2, 3), device).unwrap();
    vec![("tiny-gpt2", tiny), ("smollm2-135m", smollm2)]
}

fn bench_train_step(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for (name, backbone) in models(&device) {
        let inputs = BatchTensors::new(&batch(backbone.vocab_size()), &device);
        let config = PromptEncoderConfig::new(EncoderKind::Lstm, 6, backbone.hidden_size());
        let mut encoder = Some(config.init(&device).unwrap());
        let mut optim = optimizer(5e-4, None);
        group.bench_function(format!("{name}/b{BATCH}x{SEQ}"), |b| {
            b.iter(|| {
                let (next, loss) = train_step(
                    &backbone,
                    encoder.take().unwrap(),
                    &mut optim,
                    &inputs,
                    1e-4,
                    None,
                )
                .unwrap();
                encoder = Some(next);
                loss
            })
        });
    }
    group.finish();
}

fn bench_eval_step_and_splice(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("eval_step");
    group.sample_size(10);
    for (name, backbone) in models(&device) {
        let inputs = BatchTensors::new(&batch(backbone.vocab_size()), &device);
        let config = PromptEncoderConfig::new(EncoderKind::Lstm, 6, backbone.hidden_size());
        let prompts = config.init(&device).unwrap().forward();
        group.bench_function(format!("{name}/b{BATCH}x{SEQ}"), |b| {
            b.iter(|| {
                target_logits(&backbone, Some(prompts.clone()), &inputs, None)
                    .unwrap()
                    .into_data()
            })
        });
        let embeds = backbone.embed_tokens(inputs.ids.clone());
        group.bench_function(format!("splice/{name}/b{BATCH}x{SEQ}"), |b| {
            b.iter(|| inputs.splice(embeds.clone(), prompts.clone()).into_data())
        });
    }
    group.finish();
}

fn bench_mixed_eval_step(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("mixed_eval_step");
    group.sample_size(10);
    for (name, backbone) in models(&device) {
        let grouped = BatchTensors::new(&mixed_batch(backbone.vocab_size()), &device);
        assert_eq!(grouped.shared_prefix.len, 3, "each pack's leading prompts");
        let mut unshared = BatchTensors::new(&mixed_batch(backbone.vocab_size()), &device);
        unshared.shared_prefix = SharedPrefix::none();
        let config = PromptEncoderConfig::new(EncoderKind::Lstm, 24, backbone.hidden_size());
        let prompts = config.init(&device).unwrap().forward();
        for (label, inputs) in [("prefix-per-pack", &grouped), ("no-prefix", &unshared)] {
            group.bench_function(format!("{name}/4-packs/b{BATCH}x{SEQ}/{label}"), |b| {
                b.iter(|| {
                    target_logits(&backbone, Some(prompts.clone()), inputs, None)
                        .unwrap()
                        .into_data()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_train_step,
    bench_eval_step_and_splice,
    bench_mixed_eval_step
);
criterion_main!(benches);
