//! GELU (erf) and SiLU, forward and backward, on flex at the size of a bert-base training
//! step's feed-forward layer (8 × 24 rows, 3072 wide): ptune's kernels against flex's own ops
//! (`fuse_activations(false)`), the same comparison as the bench's `--ablate fused-activations`.
//!
//! Run: `cargo bench -p ptune-backbone --bench activation` (flex backend, all cores).

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use ptune_backbone::{Activation, fuse_activations};

const ROWS: usize = 8 * 24;
const WIDTH: usize = 3072;

/// The activation's gradient of a sum, read back: one forward and one backward pass.
fn forward_backward(activation: Activation, x: &Tensor<2>) -> Vec<f32> {
    let x = x.clone().require_grad();
    let grads = activation.forward(x.clone()).sum().backward();
    let grad = x.grad(&grads).expect("x is tracked");
    grad.into_data().try_to_vec().expect("f32")
}

fn bench_activations(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::random([ROWS, WIDTH], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group("activation_fwd_bwd");
    group.sample_size(20);
    for activation in [Activation::Gelu, Activation::Silu] {
        for (fused, name) in [(true, "ptune"), (false, "flex")] {
            group.bench_function(format!("{activation:?}/{name}/{ROWS}x{WIDTH}"), |b| {
                fuse_activations(fused);
                b.iter(|| forward_backward(activation, &x))
            });
        }
    }
    fuse_activations(true);
    group.finish();
}

criterion_group!(benches, bench_activations);
criterion_main!(benches);
