//! Adam as `torch.optim.Adam` runs it (L2 weight decay added to the gradient), with the CPU
//! backends' step in one pass per tensor: burn's `Adam` composes about fifteen elementwise ops
//! per tensor, each a pass over the encoder's 2–8M parameters into a fresh buffer;
//! [`cpu::step`] reads the parameter, its gradient and both moments once and writes them back
//! in place, rounding exactly as burn's ops do on flex. GPUs run burn's `Adam`. The state is
//! burn's [`AdamState`], so checkpoints (`--resume`) read and write the same records either way.

mod cpu;

use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
    decay::WeightDecayConfig, grad_clipping::GradientClippingConfig,
};
use burn::tensor::{Device, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the CPU backends take the one-pass step; process-wide, on by default.
static FUSED: AtomicBool = AtomicBool::new(true);

/// Turns the one-pass step off (`false`: burn's `Adam` on every backend) or back on: what the
/// bench's `--ablate fused-adam` measures against.
pub fn fuse_adam(on: bool) {
    FUSED.store(on, Ordering::Relaxed);
}

/// Adam's constants: burn's defaults but PyTorch's epsilon (1e-8; burn's is 1e-5).
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// Adam with L2 weight decay; `clip_norm` caps each parameter tensor's gradient norm (burn
/// clips per tensor, not over all of them as PyTorch's `clip_grad_norm_` does).
pub fn optimizer(weight_decay: f64, clip_norm: Option<f64>) -> ModuleOptimizer {
    let optim = ModuleOptimizer::from(OnePassAdam::new(weight_decay as f32));
    match clip_norm {
        Some(n) => optim.with_grad_clipping(GradientClippingConfig::Norm(n as f32).init()),
        None => optim,
    }
}

/// burn's `Adam` (what GPUs run) and the one-pass step the CPU backends run in its place.
#[derive(Clone)]
struct OnePassAdam {
    composed: Adam,
    weight_decay: f32,
}

impl OnePassAdam {
    fn new(weight_decay: f32) -> Self {
        let config = AdamConfig::new()
            .with_beta_1(BETA_1)
            .with_beta_2(BETA_2)
            .with_epsilon(EPSILON)
            .with_weight_decay(Some(WeightDecayConfig::new(weight_decay)));
        Self {
            composed: config.build(),
            weight_decay,
        }
    }
}

/// The scalars of one step, computed in `f32` as burn's `Adam` computes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepScalars {
    pub lr: f32,
    pub weight_decay: f32,
    /// `sqrt(1 - β₂ᵗ) / (1 - β₁ᵗ)`: both bias corrections in one factor of the first moment.
    pub factor: f32,
    /// `ε · sqrt(1 - β₂ᵗ)`: epsilon scaled as the factor scales the square root of `v`.
    pub epsilon: f32,
}

impl StepScalars {
    fn new(lr: LearningRate, weight_decay: f32, time: usize) -> Self {
        let t = time as i32;
        let correction_2 = (1.0 - BETA_2.powi(t)).sqrt();
        Self {
            lr: lr as f32,
            weight_decay,
            factor: correction_2 / (1.0 - BETA_1.powi(t)),
            epsilon: EPSILON * correction_2,
        }
    }
}

impl Optimizer for OnePassAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !FUSED.load(Ordering::Relaxed) || !cpu::takes(&tensor, &grad) {
            return self.composed.step(lr, tensor, grad, state);
        }
        let (time, m, v) = match state.map(|s| s.momentum) {
            Some(s) => (s.time + 1, s.moment_1, s.moment_2),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        let scalars = StepScalars::new(lr, self.weight_decay, time);
        let (tensor, m, v) = cpu::step(tensor, grad, m, v, scalars);
        let momentum = AdaptiveMomentumState::new(time, m, v);
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests;
