//! The activations named by `hidden_act` / `activation_function` in configs.

use crate::error::{BackboneError, Result};
use burn::tensor::{Tensor, activation};

/// An activation as transformers' `ACT2FN` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact (erf) GELU: `gelu`.
    Gelu,
    /// tanh approximation: `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`.
    GeluTanh,
    Relu,
    Silu,
}

impl Activation {
    /// The names [`Activation::parse`] knows, for error messages.
    pub const SUPPORTED: &str = "gelu, gelu_new, relu, silu";

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            "silu" | "swish" => Some(Self::Silu),
            _ => None,
        }
    }

    /// Configs are checked when read (with their path), so this fails only for a config built
    /// by hand.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::parse(name).ok_or_else(|| BackboneError::Config {
            path: Default::default(),
            message: format!("activation `{name}` is not supported ({})", Self::SUPPORTED),
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => activation::gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::Relu => activation::relu(x),
            Self::Silu => activation::silu(x),
        }
    }
}
