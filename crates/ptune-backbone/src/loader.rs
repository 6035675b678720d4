//! Builds burn modules from checkpoint tensors named as in Hugging Face, checking every shape.

use crate::error::{BackboneError, Result};
use crate::precision::Precision;
use crate::weights::{HostTensor, TensorSource};
use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::nn::{RmsNorm, RmsNormConfig};
use burn::tensor::{Device, Tensor, TensorCreationOptions, TensorData};
use ptune_host::transpose;

/// A view of a checkpoint under a name prefix, the way candle's `VarBuilder` walks a model.
/// Weight matrices come out in `precision`; vectors and position tables always in f32.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    src: &'a dyn TensorSource,
    device: &'a Device,
    precision: Precision,
}

impl<'a> Loader<'a> {
    pub fn new(src: &'a dyn TensorSource, device: &'a Device, precision: Precision) -> Self {
        Self {
            src,
            device,
            precision,
        }
    }

    pub fn device(&self) -> &Device {
        self.device
    }

    pub fn contains(&self, name: &str) -> bool {
        self.src.shape(name).is_some()
    }

    /// A tensor of exactly `shape`.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let host = self.src.read_expect(name, &shape)?;
        Ok(self.upload(host, shape))
    }

    /// A weight matrix (what a matmul or a word lookup reads), in the loader's precision.
    pub fn matrix(&self, name: &str, shape: [usize; 2]) -> Result<Tensor<2>> {
        let host = self.src.read_expect(name, &shape)?;
        Ok(self.upload_matrix(host.data, shape))
    }

    fn upload<const D: usize>(&self, host: HostTensor, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(host.data, shape), self.device)
    }

    /// Lowered on the host, so the device never holds an f32 copy of a bf16 matrix.
    fn upload_matrix(&self, data: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        let options =
            TensorCreationOptions::new(self.device.clone()).with_dtype(self.precision.dtype());
        Tensor::from_data(self.precision.data(data, shape.to_vec()), options)
    }

    /// `nn.Linear`: weight stored `[out, in]`, transposed once here to burn's `[in, out]`.
    pub fn linear(&self, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Linear> {
        let w = self
            .src
            .read_expect(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let weight = self.upload_matrix(transpose(&w.data, d_out, d_in), [d_in, d_out]);
        self.linear_from(prefix, weight, d_out, bias)
    }

    /// GPT-2's `Conv1D`: weight already stored `[in, out]`.
    pub fn conv1d(&self, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = self.matrix(&format!("{prefix}.weight"), [d_in, d_out])?;
        self.linear_from(prefix, weight, d_out, true)
    }

    /// The module built around the checkpoint's tensors (no random initialisation first).
    fn linear_from(
        &self,
        prefix: &str,
        weight: Tensor<2>,
        d_out: usize,
        bias: bool,
    ) -> Result<Linear> {
        let bias = match bias {
            true => Some(Param::from_tensor(
                self.tensor(&format!("{prefix}.bias"), [d_out])?,
            )),
            false => None,
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    /// A word-embedding table, in the loader's precision (lookups come back in its dtype).
    pub fn embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding> {
        Ok(embedding_of(self.matrix(name, [n, d])?))
    }

    /// A position or token-type table: added to activations, so always f32.
    pub fn position_embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding> {
        Ok(embedding_of(self.tensor(name, [n, d])?))
    }

    /// LayerNorm, accepting both `weight`/`bias` and the older `gamma`/`beta` names.
    pub fn layer_norm(&self, prefix: &str, d: usize, eps: f64) -> Result<LayerNorm> {
        let (w, b) = if self.contains(&format!("{prefix}.gamma")) {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        let mut norm = LayerNormConfig::new(1).with_epsilon(eps).init(self.device);
        norm.gamma = Param::from_tensor(self.tensor(&format!("{prefix}.{w}"), [d])?);
        norm.beta = Some(Param::from_tensor(
            self.tensor(&format!("{prefix}.{b}"), [d])?,
        ));
        Ok(norm)
    }

    pub fn rms_norm(&self, prefix: &str, d: usize, eps: f64) -> Result<RmsNorm> {
        let mut norm = RmsNormConfig::new(1).with_epsilon(eps).init(self.device);
        norm.gamma = Param::from_tensor(self.tensor(&format!("{prefix}.weight"), [d])?);
        Ok(norm)
    }

    /// Finds which of several name prefixes a checkpoint uses (`bert.` vs none, for example).
    pub fn prefix_with(&self, candidates: &[&'static str], probe: &str) -> Result<&'static str> {
        candidates
            .iter()
            .copied()
            .find(|p| self.contains(&format!("{p}{probe}")))
            .ok_or_else(|| BackboneError::MissingTensor {
                name: format!("{}{probe}", candidates[0]),
                source_desc: self.src.describe(),
            })
    }
}

fn embedding_of(table: Tensor<2>) -> Embedding {
    Embedding {
        weight: Param::from_tensor(table),
    }
}
