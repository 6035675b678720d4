//! Forward pass per family at realistic sizes (random weights): batch 8 × 32 tokens, final
//! hidden states at one target row per example plus the LM head there — what a P-tuning eval
//! step does (`forward_rows`: the last layer runs at the targets only).
//!
//! Run: `cargo bench -p ptune-backbone --bench forward` (flex backend, all cores).

use burn::tensor::{Device, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use ptune_backbone::synthetic::{self, RandomWeights};
use ptune_backbone::{Backbone, SharedPrefix};

const BATCH: usize = 8;
const SEQ: usize = 32;

fn forward(
    model: &Backbone,
    ids: &Tensor<2, Int>,
    mask: &Tensor<2, Int>,
    rows: &[usize],
) -> Tensor<2> {
    let hidden = model.forward_rows(
        model.embed_tokens(ids.clone()),
        mask.clone(),
        rows,
        &SharedPrefix::none(),
        None,
    );
    model.lm_logits(hidden).expect("head")
}

fn bench_forward(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("backbone_forward");
    group.sample_size(10);
    let small = synthetic::SHAPES
        .iter()
        .filter(|s| !synthetic::SCALE_SHAPES.contains(s));
    for &name in small {
        let config = synthetic::shape(name).expect("known shape");
        let model =
            Backbone::load(&config, &RandomWeights::new(&config, 7), &device).expect("loads");
        let vocab = model.vocab_size() as i64;
        let data: Vec<i64> = (0..BATCH * SEQ)
            .map(|i| (i as i64 * 7919) % vocab)
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(data, [BATCH, SEQ]), &device);
        let mask = Tensor::<2, Int>::ones([BATCH, SEQ], &device);
        let rows = vec![SEQ - 1; BATCH];
        group.bench_function(format!("{name}/b{BATCH}x{SEQ}"), |b| {
            b.iter(|| forward(&model, &ids, &mask, &rows).into_data())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_forward);
criterion_main!(benches);
