//! The activations named by `hidden_act` / `activation_function` in configs.

mod flex;
mod kernels;

use burn::tensor::{Tensor, activation};
use serde::Deserialize;

pub use flex::fuse_activations;

/// An activation as transformers' `ACT2FN` names it; any other name is refused when the config
/// is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact (erf) GELU.
    Gelu,
    /// The tanh approximation.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    Relu,
    #[serde(alias = "swish")]
    Silu,
}

impl Activation {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => flex::gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::Relu => activation::relu(x),
            Self::Silu => flex::silu(x),
        }
    }

    /// `act(gate) · up`, a gated MLP's product (SwiGLU with SiLU): on flex one kernel pass each
    /// way, which keeps no `silu(gate)` for the backward pass.
    pub fn gated<const D: usize>(&self, gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Silu => flex::swiglu(gate, up),
            _ => self.forward(gate) * up,
        }
    }
}
