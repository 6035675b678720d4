//! The prompt table every encoder starts from (`embedding.weight`, `[n_prompt, H]`), and plain
//! prompt tuning, where that table is the prompt.

use crate::error::Result;
use crate::tensors::{NamedTensors, ParamReader, TensorTaker};
use burn::module::Module;
use burn::nn::Embedding;
use burn::tensor::Tensor;
use ptune_host::rng;

pub(crate) const EMBEDDING: &str = "embedding.weight";

/// Seeded `nn.Embedding(n, hidden)` weights, `N(0, 1)` as PyTorch initialises them.
pub(crate) fn embedding_tensors(seed: u64, n: usize, hidden: usize) -> NamedTensors {
    NamedTensors::from([(
        EMBEDDING.to_string(),
        rng::normal(seed, EMBEDDING, vec![n, hidden]),
    )])
}

pub(crate) fn embedding_param(
    taker: &mut TensorTaker<'_>,
    n: usize,
    hidden: usize,
) -> Result<Embedding> {
    Ok(Embedding {
        weight: taker.param(EMBEDDING, [n, hidden])?,
    })
}

pub(crate) fn export_embedding(
    embedding: &Embedding,
    reader: &impl ParamReader,
    out: &mut NamedTensors,
) {
    if let Some(w) = reader.read(&embedding.weight) {
        out.insert(EMBEDDING.to_string(), w);
    }
}

/// Plain prompt tuning (Lester et al.): the trainable table itself is the prompt.
///
/// The encoders' input is always all `n_prompt` rows in order, so the lookup `embedding(0..n)`
/// is the table itself; reading the table avoids a gather (same values, same gradients).
#[derive(Module, Debug)]
pub struct EmbeddingEncoder {
    pub embedding: Embedding,
}

impl EmbeddingEncoder {
    pub(crate) fn import(taker: &mut TensorTaker<'_>, n: usize, hidden: usize) -> Result<Self> {
        Ok(Self {
            embedding: embedding_param(taker, n, hidden)?,
        })
    }

    pub(crate) fn export(&self, reader: &impl ParamReader, out: &mut NamedTensors) {
        export_embedding(&self.embedding, reader, out);
    }

    /// `[n_prompt, H]`.
    pub fn forward(&self) -> Tensor<2> {
        self.embedding.weight.val()
    }
}
