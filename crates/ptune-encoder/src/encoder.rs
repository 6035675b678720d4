//! [`PromptEncoder`]: one type over every reparameterization, with one `forward()`, and its
//! state dict under PyTorch names (what packs and PEFT adapters export).

use crate::config::{EncoderKind, PromptEncoderConfig};
use crate::embedding::EmbeddingEncoder;
use crate::lstm::LstmEncoder;
use crate::mlp::MlpEncoder;
use crate::tensors::{Grads, NamedTensors, ParamGrads, ParamReader, Values};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Gradients, Tensor};

/// The trainable prompt encoder. `forward()` takes no input: it maps its own parameters to the
/// `[n_prompt, H]` prompt matrix, computed once per training step.
#[derive(Module, Debug)]
pub enum PromptEncoder {
    Lstm(LstmEncoder),
    PeftLstm(LstmEncoder),
    Mlp(MlpEncoder),
    Embedding(EmbeddingEncoder),
}

impl PromptEncoder {
    /// The prompt matrix `[n_prompt, H]`.
    pub fn forward(&self) -> Tensor<2> {
        match self {
            PromptEncoder::Lstm(e) | PromptEncoder::PeftLstm(e) => e.forward(),
            PromptEncoder::Mlp(e) => e.forward(),
            PromptEncoder::Embedding(e) => e.forward(),
        }
    }

    pub fn kind(&self) -> EncoderKind {
        match self {
            PromptEncoder::Lstm(_) => EncoderKind::Lstm,
            PromptEncoder::PeftLstm(_) => EncoderKind::PeftLstm,
            PromptEncoder::Mlp(_) => EncoderKind::Mlp,
            PromptEncoder::Embedding(_) => EncoderKind::Embedding,
        }
    }

    /// The prompt table `[n_prompt, H]` every kind starts from.
    fn table(&self) -> &burn::nn::Embedding {
        match self {
            PromptEncoder::Lstm(e) | PromptEncoder::PeftLstm(e) => &e.embedding,
            PromptEncoder::Mlp(e) => &e.embedding,
            PromptEncoder::Embedding(e) => &e.embedding,
        }
    }

    pub fn n_prompt(&self) -> usize {
        self.table().weight.dims()[0]
    }

    pub fn hidden(&self) -> usize {
        self.table().weight.dims()[1]
    }

    /// The config that rebuilds this encoder's shape (seed 0: the weights come from elsewhere).
    pub fn config(&self) -> PromptEncoderConfig {
        let base = PromptEncoderConfig::new(self.kind(), self.n_prompt(), self.hidden());
        match self {
            PromptEncoder::Lstm(e) => base.with_dropout(e.dropout()),
            PromptEncoder::PeftLstm(e) => base
                .with_mlp_hidden(Some(e.lstm_hidden()))
                .with_dropout(e.dropout()),
            PromptEncoder::Mlp(e) => base.with_mlp_hidden(Some(e.mlp_hidden())),
            PromptEncoder::Embedding(_) => base,
        }
    }

    /// Parameter values under PyTorch names (THUDM/PEFT `PromptEncoder.state_dict()`).
    pub fn state_dict(&self) -> NamedTensors {
        self.export(&Values)
    }

    /// Gradients under PyTorch names, laid out as the parameters (parameters without a
    /// gradient are left out).
    pub fn grads(&self, grads: &Gradients) -> NamedTensors {
        self.export(&Grads(grads))
    }

    /// [`grads`](Self::grads) from the gradients an optimizer step takes.
    pub fn param_grads(&self, grads: &GradientsParams) -> NamedTensors {
        self.export(&ParamGrads(grads))
    }

    fn export(&self, reader: &impl ParamReader) -> NamedTensors {
        let mut out = NamedTensors::new();
        match self {
            PromptEncoder::Lstm(e) | PromptEncoder::PeftLstm(e) => e.export(reader, &mut out),
            PromptEncoder::Mlp(e) => e.export(reader, &mut out),
            PromptEncoder::Embedding(e) => e.export(reader, &mut out),
        }
        out
    }
}
