//! MLP pieces: PyTorch-compatible `nn.Linear` import/export, the `nn.Sequential` head
//! (Linear-ReLU-...-Linear) and PEFT's MLP reparameterization.

use crate::embedding::{embedding_param, embedding_tensors, export_embedding};
use crate::error::Result;
use crate::tensors::{HostTensorExt, NamedTensors, ParamReader, TensorTaker};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Tensor, activation::relu};
use ptune_host::rng;
use ptune_kernels::linear;

/// Seeded `nn.Linear(d_in, d_out)` weights as PyTorch initialises them, under `prefix`.
pub(crate) fn linear_tensors(seed: u64, prefix: &str, d_in: usize, d_out: usize) -> NamedTensors {
    let bound = 1.0 / (d_in as f64).sqrt();
    let w = format!("{prefix}.weight");
    let b = format!("{prefix}.bias");
    NamedTensors::from([
        (w.clone(), rng::uniform(seed, &w, vec![d_out, d_in], bound)),
        (b.clone(), rng::uniform(seed, &b, vec![d_out], bound)),
    ])
}

/// A burn `Linear` from PyTorch's `prefix.weight` `[out, in]` (transposed here) and `prefix.bias`.
pub(crate) fn import_linear(
    taker: &mut TensorTaker<'_>,
    prefix: &str,
    d_in: usize,
    d_out: usize,
) -> Result<Linear> {
    let weight = taker.host(&format!("{prefix}.weight"), &[d_out, d_in])?;
    let weight = burn::module::Param::from_tensor(weight.transposed().to_tensor(taker.device));
    let bias = taker.param(&format!("{prefix}.bias"), [d_out])?;
    Ok(Linear {
        weight,
        bias: Some(bias),
    })
}

/// Writes a `Linear` under `prefix` in PyTorch layout.
pub(crate) fn export_linear(
    linear: &Linear,
    prefix: &str,
    reader: &impl ParamReader,
    out: &mut NamedTensors,
) {
    if let Some(w) = reader.read(&linear.weight) {
        out.insert(format!("{prefix}.weight"), w.transposed());
    }
    if let Some(b) = linear.bias.as_ref().and_then(|b| reader.read(b)) {
        out.insert(format!("{prefix}.bias"), b);
    }
}

/// `nn.Sequential(Linear, ReLU, Linear, ..., Linear)`: ReLU between layers, none after the last.
/// PyTorch numbers the linears 0, 2, 4, ... because each ReLU takes an index.
#[derive(Module, Debug)]
pub struct MlpHead {
    pub layers: Vec<Linear>,
}

impl MlpHead {
    /// Layer widths `dims[0] → dims[1] → ... → dims[n]`.
    pub(crate) fn tensors(seed: u64, prefix: &str, dims: &[usize]) -> NamedTensors {
        dims.windows(2)
            .enumerate()
            .flat_map(|(i, w)| linear_tensors(seed, &format!("{prefix}.{}", 2 * i), w[0], w[1]))
            .collect()
    }

    pub(crate) fn import(
        taker: &mut TensorTaker<'_>,
        prefix: &str,
        dims: &[usize],
    ) -> Result<Self> {
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| import_linear(taker, &format!("{prefix}.{}", 2 * i), w[0], w[1]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    pub(crate) fn export(&self, prefix: &str, reader: &impl ParamReader, out: &mut NamedTensors) {
        for (i, layer) in self.layers.iter().enumerate() {
            export_linear(layer, &format!("{prefix}.{}", 2 * i), reader, out);
        }
    }

    /// `[n, in]` → `[n, out]`.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = linear(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()));
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

/// PEFT's MLP reparameterization: `Embedding(n, H)` → Linear(H,h)-ReLU-Linear(h,h)-ReLU-Linear(h,H).
#[derive(Module, Debug)]
pub struct MlpEncoder {
    pub embedding: burn::nn::Embedding,
    pub mlp_head: MlpHead,
}

impl MlpEncoder {
    fn dims(hidden: usize, mlp_hidden: usize) -> [usize; 4] {
        [hidden, mlp_hidden, mlp_hidden, hidden]
    }

    pub(crate) fn tensors(seed: u64, n: usize, hidden: usize, mlp_hidden: usize) -> NamedTensors {
        let mut t = embedding_tensors(seed, n, hidden);
        t.extend(MlpHead::tensors(
            seed,
            "mlp_head",
            &Self::dims(hidden, mlp_hidden),
        ));
        t
    }

    pub(crate) fn import(
        taker: &mut TensorTaker<'_>,
        n: usize,
        hidden: usize,
        mlp_hidden: usize,
    ) -> Result<Self> {
        Ok(Self {
            embedding: embedding_param(taker, n, hidden)?,
            mlp_head: MlpHead::import(taker, "mlp_head", &Self::dims(hidden, mlp_hidden))?,
        })
    }

    pub(crate) fn export(&self, reader: &impl ParamReader, out: &mut NamedTensors) {
        export_embedding(&self.embedding, reader, out);
        self.mlp_head.export("mlp_head", reader, out);
    }

    /// `[n_prompt, H]`.
    pub fn forward(&self) -> Tensor<2> {
        self.mlp_head.forward(self.embedding.weight.val())
    }

    /// The MLP's hidden width h.
    pub fn mlp_hidden(&self) -> usize {
        self.mlp_head
            .layers
            .first()
            .map_or(0, |l| l.weight.dims()[1])
    }
}
