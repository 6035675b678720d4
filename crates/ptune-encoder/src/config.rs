//! What encoder to build, and building it: seeded, from PyTorch-named tensors, or from a file.
//! (Return types spell out `Result<T, EncoderError>`: burn's `Config` derive expands to code that
//! names `Result` with two parameters.)

use crate::embedding::EmbeddingEncoder;
use crate::encoder::PromptEncoder;
use crate::error::EncoderError;
use crate::io::read_safetensors;
use crate::lstm::{LstmEncoder, LstmEncoderDims};
use crate::mlp::MlpEncoder;
use crate::tensors::{NamedTensors, TensorTaker};
use burn::config::Config;
use burn::tensor::Device;
use std::path::Path;
use std::str::FromStr;

/// The reparameterization that produces the prompt vectors.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum EncoderKind {
    /// THUDM's P-tuning reference: Embedding → 2-layer BiLSTM (H/2 per direction) → MLP H→H→H.
    Lstm,
    /// PEFT's `encoder_reparameterization_type="LSTM"`: BiLSTM h per direction → MLP 2h→2h→H.
    PeftLstm,
    /// PEFT's default `"MLP"`: Embedding → MLP H→h→h→H.
    Mlp,
    /// Plain prompt tuning: the embedding table is the prompt.
    Embedding,
}

impl EncoderKind {
    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderKind::Lstm => "lstm",
            EncoderKind::PeftLstm => "peft-lstm",
            EncoderKind::Mlp => "mlp",
            EncoderKind::Embedding => "embedding",
        }
    }
}

impl FromStr for EncoderKind {
    type Err = EncoderError;

    fn from_str(s: &str) -> Result<Self, EncoderError> {
        [Self::Lstm, Self::PeftLstm, Self::Mlp, Self::Embedding]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                EncoderError::Config(format!(
                    "unknown encoder `{s}`; use lstm, peft-lstm, mlp or embedding"
                ))
            })
    }
}

/// Configuration of a [`PromptEncoder`]; `init` is reproducible for a given `seed`.
#[derive(Config, Debug)]
pub struct PromptEncoderConfig {
    /// Which reparameterization.
    pub kind: EncoderKind,
    /// Number of prompt vectors (pseudo tokens).
    pub n_prompt: usize,
    /// The backbone's hidden size H: the width of each prompt vector.
    pub hidden: usize,
    /// Hidden width h of `Mlp` and `PeftLstm` (PEFT's `encoder_hidden_size`); default H.
    /// THUDM's `Lstm` has fixed widths and ignores it.
    pub mlp_hidden: Option<usize>,
    /// Dropout between the LSTM layers (LSTM kinds only).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Seed of the initial weights.
    #[config(default = 0)]
    pub seed: u64,
    /// Start with a zero output: the last linear layer's weights and bias (the table, for the
    /// plain embedding) are zero, so prompts built as fixed vectors plus this encoder's output
    /// begin exactly at those vectors and learn a correction.
    #[config(default = false)]
    pub zero_output: bool,
}

/// The names of the tensors that make the encoder's output: the MLP head's last linear
/// (`mlp_head.N.weight`/`.bias` with the largest N), or the table when there is no head.
fn output_layer(tensors: &NamedTensors) -> Vec<String> {
    let index = |name: &str| -> Option<usize> {
        name.strip_prefix("mlp_head.")?
            .split('.')
            .next()?
            .parse()
            .ok()
    };
    match tensors.keys().filter_map(|k| index(k)).max() {
        Some(last) => ["weight", "bias"]
            .map(|p| format!("mlp_head.{last}.{p}"))
            .to_vec(),
        None => vec![crate::embedding::EMBEDDING.to_string()],
    }
}

impl PromptEncoderConfig {
    /// A new encoder with seeded initial weights (PyTorch's default distributions).
    pub fn init(&self, device: &Device) -> Result<PromptEncoder, EncoderError> {
        self.from_tensors(&self.init_tensors()?, device)
    }

    /// The seeded initial weights under PyTorch names, as `init` uses them.
    pub fn init_tensors(&self) -> Result<NamedTensors, EncoderError> {
        self.validate()?;
        let (seed, n, h) = (self.seed, self.n_prompt, self.hidden);
        let mut tensors = match self.kind {
            EncoderKind::Lstm | EncoderKind::PeftLstm => {
                LstmEncoder::tensors(seed, self.lstm_dims())
            }
            EncoderKind::Mlp => MlpEncoder::tensors(seed, n, h, self.mlp_hidden()),
            EncoderKind::Embedding => crate::embedding::embedding_tensors(seed, n, h),
        };
        if self.zero_output {
            for name in output_layer(&tensors) {
                if let Some(t) = tensors.get_mut(&name) {
                    t.data.fill(0.0);
                }
            }
        }
        Ok(tensors)
    }

    /// An encoder holding `tensors` (PyTorch names, e.g. THUDM's `lstm_head.weight_ih_l0`);
    /// every tensor must be present with the right shape and none may be left over.
    pub fn from_tensors(
        &self,
        tensors: &NamedTensors,
        device: &Device,
    ) -> Result<PromptEncoder, EncoderError> {
        self.validate()?;
        let mut taker = TensorTaker::new(tensors, device);
        let (n, h) = (self.n_prompt, self.hidden);
        let encoder = match self.kind {
            EncoderKind::Lstm => PromptEncoder::Lstm(LstmEncoder::import(
                &mut taker,
                self.lstm_dims(),
                self.dropout,
            )?),
            EncoderKind::PeftLstm => PromptEncoder::PeftLstm(LstmEncoder::import(
                &mut taker,
                self.lstm_dims(),
                self.dropout,
            )?),
            EncoderKind::Mlp => {
                PromptEncoder::Mlp(MlpEncoder::import(&mut taker, n, h, self.mlp_hidden())?)
            }
            EncoderKind::Embedding => {
                PromptEncoder::Embedding(EmbeddingEncoder::import(&mut taker, n, h)?)
            }
        };
        taker.finish(self.kind.as_str())?;
        Ok(encoder)
    }

    /// An encoder from a safetensors file with PyTorch names (a PyTorch `state_dict` saved with
    /// `safetensors.torch.save_file`).
    pub fn load_torch(&self, path: &Path, device: &Device) -> Result<PromptEncoder, EncoderError> {
        let file = read_safetensors(path)?;
        self.from_tensors(&file.tensors, device)
            .map_err(|e| EncoderError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// Checks sizes and dropout so that building never panics.
    pub fn validate(&self) -> Result<(), EncoderError> {
        let bad = |m: String| Err(EncoderError::Config(m));
        if self.n_prompt == 0 || self.hidden == 0 {
            return bad("n_prompt and hidden must both be at least 1".into());
        }
        if self.kind == EncoderKind::Lstm && !self.hidden.is_multiple_of(2) {
            return bad(format!(
                "the lstm encoder splits hidden {} into two directions, so it must be even",
                self.hidden
            ));
        }
        if self.mlp_hidden == Some(0) {
            return bad("mlp_hidden must be at least 1".into());
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// The MLP/LSTM width h (`mlp_hidden`, or H).
    pub fn mlp_hidden(&self) -> usize {
        self.mlp_hidden.unwrap_or(self.hidden)
    }

    fn lstm_dims(&self) -> LstmEncoderDims {
        let h = self.hidden;
        match self.kind {
            EncoderKind::PeftLstm => LstmEncoderDims {
                n_prompt: self.n_prompt,
                hidden: h,
                lstm_hidden: self.mlp_hidden(),
                mlp_hidden: 2 * self.mlp_hidden(),
            },
            _ => LstmEncoderDims {
                n_prompt: self.n_prompt,
                hidden: h,
                lstm_hidden: h / 2,
                mlp_hidden: h,
            },
        }
    }
}
