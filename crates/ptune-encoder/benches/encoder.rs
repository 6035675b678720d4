//! The prompt encoder's cost per training step: THUDM's LSTM encoder, forward + backward on
//! flex autodiff, at n_prompt 9 and the hidden sizes of BERT-base (768) and SmolLM2-135M (576).

use burn::tensor::Device;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ptune_encoder::{EncoderKind, PromptEncoderConfig};
use std::hint::black_box;

fn lstm_forward_backward(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut group = c.benchmark_group("lstm_encoder_fwd_bwd");
    group.sample_size(20);
    for hidden in [768, 576] {
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, 9, hidden)
            .init(&device)
            .expect("valid config");
        group.bench_with_input(BenchmarkId::new("n9", hidden), &encoder, |b, enc| {
            b.iter(|| {
                let grads = enc.forward().sum().backward();
                black_box(grads);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lstm_forward_backward);
criterion_main!(benches);
