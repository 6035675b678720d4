//! Builds burn modules from checkpoint tensors named as in Hugging Face, checking every shape.

use crate::error::{BackboneError, Result};
use crate::precision::Precision;
use crate::weights::{HostTensor, TensorSource};
use burn::module::Param;
use burn::nn::RmsNorm;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorCreationOptions, TensorData};
use ptune_host::transpose;

/// A view of a checkpoint under a name prefix, the way candle's `VarBuilder` walks a model:
/// `vb.pp("attention").pp("self").linear("query", ..)` reads `attention.self.query.weight`.
/// Weight matrices come out in `precision`; vectors and position tables always in f32.
#[derive(Clone)]
pub struct Loader<'a> {
    src: &'a dyn TensorSource,
    device: &'a Device,
    precision: Precision,
    prefix: String,
}

impl<'a> Loader<'a> {
    pub fn new(src: &'a dyn TensorSource, device: &'a Device, precision: Precision) -> Self {
        Self {
            src,
            device,
            precision,
            prefix: String::new(),
        }
    }

    /// The loader scoped under `name` (a module or a layer index).
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        Self {
            prefix: self.path(&name.to_string()),
            ..self.clone()
        }
    }

    /// The full name of `name` in this scope.
    fn path(&self, name: &str) -> String {
        match (self.prefix.as_str(), name) {
            ("", name) => name.to_string(),
            (prefix, "") => prefix.to_string(),
            (prefix, name) => format!("{prefix}.{name}"),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.src.shape(&self.path(name)).is_some()
    }

    /// A tensor of exactly `shape`.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let host = self.read(name, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(host.data, shape),
            self.device,
        ))
    }

    /// A weight matrix (what a matmul or a word lookup reads), in the loader's precision.
    pub fn matrix(&self, name: &str, shape: [usize; 2]) -> Result<Tensor<2>> {
        Ok(self.upload_matrix(self.read(name, &shape)?.data, shape))
    }

    fn read(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        self.src.read_expect(&self.path(name), shape)
    }

    /// Lowered on the host, so the device never holds an f32 copy of a bf16 matrix.
    fn upload_matrix(&self, data: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        let options =
            TensorCreationOptions::new(self.device.clone()).with_dtype(self.precision.dtype());
        Tensor::from_data(self.precision.data(data, shape.to_vec()), options)
    }

    /// `nn.Linear` `name`: weight stored `[out, in]`, transposed once here to burn's `[in, out]`.
    pub fn linear(&self, name: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Linear> {
        let vb = self.pp(name);
        let w = vb.read("weight", &[d_out, d_in])?;
        let weight = vb.upload_matrix(transpose(&w.data, d_out, d_in), [d_in, d_out]);
        vb.linear_from(weight, d_out, bias)
    }

    /// GPT-2's `Conv1D` `name`: weight already stored `[in, out]`.
    pub fn conv1d(&self, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let vb = self.pp(name);
        let weight = vb.matrix("weight", [d_in, d_out])?;
        vb.linear_from(weight, d_out, true)
    }

    /// The module built around the checkpoint's tensors (no random initialisation first).
    fn linear_from(&self, weight: Tensor<2>, d_out: usize, bias: bool) -> Result<Linear> {
        let bias = match bias {
            true => Some(Param::from_tensor(self.tensor("bias", [d_out])?)),
            false => None,
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    /// A word-embedding table, in the loader's precision (lookups come back in its dtype).
    pub fn embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding> {
        Ok(embedding_of(self.pp(name).matrix("weight", [n, d])?))
    }

    /// A position or token-type table: added to activations, so always f32.
    pub fn position_embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding> {
        Ok(embedding_of(self.pp(name).tensor("weight", [n, d])?))
    }

    /// LayerNorm `name`, accepting both `weight`/`bias` and the older `gamma`/`beta` names.
    /// burn keeps its epsilon private, so the module comes from its config (size 1, no copy of
    /// the checkpoint's size) and takes the loaded weights.
    pub fn layer_norm(&self, name: &str, d: usize, eps: f64) -> Result<LayerNorm> {
        let vb = self.pp(name);
        let (w, b) = match vb.contains("gamma") {
            true => ("gamma", "beta"),
            false => ("weight", "bias"),
        };
        let mut norm = LayerNormConfig::new(1).with_epsilon(eps).init(self.device);
        norm.gamma = Param::from_tensor(vb.tensor(w, [d])?);
        norm.beta = Some(Param::from_tensor(vb.tensor(b, [d])?));
        Ok(norm)
    }

    pub fn rms_norm(&self, name: &str, d: usize, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm {
            gamma: Param::from_tensor(self.pp(name).tensor("weight", [d])?),
            epsilon: eps,
        })
    }

    /// The first of several scopes a checkpoint uses (`bert` or none, for example) that holds
    /// `probe`.
    pub fn first_scope(&self, candidates: &[&str], probe: &str) -> Result<Self> {
        let scopes: Vec<Self> = candidates.iter().map(|c| self.pp(c)).collect();
        match scopes.iter().find(|vb| vb.contains(probe)) {
            Some(vb) => Ok(vb.clone()),
            None => Err(BackboneError::MissingTensor {
                name: scopes[0].path(probe),
                source_desc: self.src.describe(),
            }),
        }
    }
}

fn embedding_of(table: Tensor<2>) -> Embedding {
    Embedding {
        weight: Param::from_tensor(table),
    }
}
