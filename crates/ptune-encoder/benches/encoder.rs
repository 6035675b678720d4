//! The prompt encoder's cost per training step: THUDM's LSTM encoder, forward + backward on
//! flex autodiff, at n_prompt 9 and the hidden sizes of BERT-base (768) and SmolLM2-135M (576).
//!
//! Each runs with ptune's one-buffer 2-D matmuls (`one_buffer`, as built) and with flex's own
//! (`flex`: `one_buffer_matmuls(false)`, what the bench's `--ablate one-buffer-matmul` turns off).
//!
//! `burn_bilstm` runs the same LSTM shape with two stacked `burn::nn::BiLstm` layers (per-gate
//! `Linear`s): the reason `StackedBiLstm` fuses its gates.

use burn::nn::{BiLstm, BiLstmConfig};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ptune_encoder::{EncoderKind, PromptEncoderConfig};
use ptune_kernels::one_buffer_matmuls;
use std::hint::black_box;

const N_PROMPT: usize = 9;
const HIDDEN: [usize; 2] = [768, 576];

fn lstm_encoder(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut group = c.benchmark_group("lstm_encoder_fwd_bwd");
    group.sample_size(20);
    for hidden in HIDDEN {
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, N_PROMPT, hidden)
            .init(&device)
            .expect("valid config");
        for (on, name) in [(true, "one_buffer"), (false, "flex")] {
            group.bench_with_input(BenchmarkId::new(name, hidden), &encoder, |b, enc| {
                one_buffer_matmuls(on);
                b.iter(|| black_box(enc.forward().sum().backward()))
            });
        }
    }
    one_buffer_matmuls(true);
    group.finish();
}

fn burn_bilstm(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut group = c.benchmark_group("burn_bilstm_2_layers_fwd_bwd");
    group.sample_size(10);
    for hidden in HIDDEN {
        let layer = || BiLstmConfig::new(hidden, hidden / 2, true).init(&device);
        let layers: [BiLstm; 2] = [layer(), layer()];
        let input = Tensor::<3>::random([1, N_PROMPT, hidden], Distribution::Default, &device)
            .require_grad();
        group.bench_with_input(BenchmarkId::new("n9", hidden), &layers, |b, layers| {
            b.iter(|| {
                let x = layers[0].forward(input.clone(), None).0;
                black_box(layers[1].forward(x, None).0.sum().backward())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lstm_encoder, burn_bilstm);
criterion_main!(benches);
