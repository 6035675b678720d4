//! `config.json` of each supported family, read with serde; defaults follow transformers.

use crate::activation::Activation;
use crate::error::{BackboneError, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// A parsed config, one variant per model family.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    Bert(BertConfig),
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
}

/// Which BERT-shaped checkpoint: they differ in names, position ids and the LM head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BertFlavor {
    #[default]
    Bert,
    Roberta,
}

/// `position_embedding_type`: only learned absolute positions are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionEmbeddingType {
    #[default]
    Absolute,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "int::<2>")]
    pub type_vocab_size: usize,
    #[serde(default = "eps_1e12")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    #[serde(default)]
    pub position_embedding_type: PositionEmbeddingType,
    #[serde(skip)]
    pub flavor: BertFlavor,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "gelu_new")]
    pub activation_function: Activation,
    #[serde(default = "eps_1e5")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "eps_1e6")]
    pub rms_norm_eps: f64,
    /// transformers 4.x writes `rope_theta`; 5.x nests it in `rope_parameters`.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    #[serde(default = "int::<2048>")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default = "silu")]
    pub hidden_act: Activation,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(skip)]
    pub qwen2: bool,
}

/// transformers' RoPE base when a config states none.
const DEFAULT_ROPE_THETA: f64 = 10_000.0;

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The RoPE base; [`ModelConfig::from_value`] has refused configs where it is invalid.
    pub fn rope_theta(&self) -> f64 {
        self.checked_rope_theta().unwrap_or(DEFAULT_ROPE_THETA)
    }

    /// `rope_theta`, else `rope_parameters.rope_theta`, else transformers' default; anything
    /// present but not a positive number is an error rather than a silent default.
    fn checked_rope_theta(&self) -> std::result::Result<f64, String> {
        let nested =
            match &self.rope_parameters {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::Object(p)) => match p.get("rope_theta") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(v) => Some(v.as_f64().ok_or_else(|| {
                        format!("`rope_parameters.rope_theta` is {v}, not a number")
                    })?),
                },
                Some(other) => return Err(format!("`rope_parameters` is {other}, not an object")),
            };
        let theta = self.rope_theta.or(nested).unwrap_or(DEFAULT_ROPE_THETA);
        match theta > 0.0 && theta.is_finite() {
            true => Ok(theta),
            false => Err(format!(
                "`rope_theta` is {theta}; it must be a positive finite number"
            )),
        }
    }

    /// A RoPE variant other than the default one (linear, dynamic, llama3, yarn scaling).
    fn rope_variant(&self) -> Option<String> {
        let named = |v: &serde_json::Value| {
            v.get("rope_type")
                .or_else(|| v.get("type"))
                .and_then(|t| t.as_str())
                .map(str::to_string)
        };
        let scaling = self.rope_scaling.as_ref().filter(|v| !v.is_null());
        match (scaling, self.rope_parameters.as_ref().and_then(named)) {
            (Some(v), _) => Some(named(v).unwrap_or_else(|| v.to_string())),
            (None, Some(t)) if t != "default" => Some(t),
            _ => None,
        }
    }

    /// Qwen2 always has q/k/v biases; Llama only when `attention_bias` says so.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.qwen2)
    }
}

/// The family comes from `model_type`, as transformers' Auto classes decide it. `architectures`
/// is not read: fine-tuned checkpoints often name their own class there, and the tensors present
/// decide which head loads (see [`crate::Backbone::head`]).
#[derive(Deserialize)]
struct Probe {
    model_type: Option<String>,
}

impl ModelConfig {
    /// Reads `config.json` and picks the family from `model_type`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BackboneError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                BackboneError::Io {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            }
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| config_error(path, e))?;
        Self::from_value(value).map_err(|e| match e {
            BackboneError::Config { message, .. } => BackboneError::Config {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Builds a config from a parsed `config.json` (also what the GGUF reader produces).
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        let probe: Probe = parse(value.clone())?;
        let model_type = probe.model_type.ok_or_else(|| BackboneError::Config {
            path: Default::default(),
            message: "it has no `model_type`".into(),
        })?;
        let config = match model_type.as_str() {
            "bert" | "roberta" => {
                let mut c: BertConfig = parse(value)?;
                if model_type == "roberta" {
                    c.flavor = BertFlavor::Roberta;
                }
                ModelConfig::Bert(c)
            }
            "gpt2" => ModelConfig::Gpt2(parse(value)?),
            "llama" | "mistral" | "qwen2" => {
                let mut c: LlamaConfig = parse(value)?;
                c.qwen2 = model_type == "qwen2";
                ModelConfig::Llama(c)
            }
            other => return Err(BackboneError::UnknownModelType(other.to_string())),
        };
        config.validate()?;
        Ok(config)
    }

    /// Rejects settings the implementation would silently compute wrongly, or panic on.
    fn validate(&self) -> Result<()> {
        let checked = match self {
            ModelConfig::Bert(c) => c.check(),
            ModelConfig::Gpt2(c) => c.check(),
            ModelConfig::Llama(c) => c.check(),
        };
        checked.map_err(|message| BackboneError::Config {
            path: Default::default(),
            message,
        })
    }

    /// Rows of the word-embedding table (`vocab_size`): every token id must be below it.
    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Bert(c) => c.vocab_size,
            ModelConfig::Gpt2(c) => c.vocab_size,
            ModelConfig::Llama(c) => c.vocab_size,
        }
    }
}

impl BertConfig {
    fn check(&self) -> std::result::Result<(), String> {
        positive(&[
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ])?;
        epsilon("layer_norm_eps", self.layer_norm_eps)?;
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        let offset = self.pad_token_id.unwrap_or(1).saturating_add(1);
        if self.flavor == BertFlavor::Roberta && self.max_position_embeddings <= offset {
            return Err(format!(
                "max_position_embeddings is {} but RoBERTa's positions start at pad_token_id + 1 = {offset}",
                self.max_position_embeddings
            ));
        }
        Ok(())
    }
}

impl Gpt2Config {
    fn check(&self) -> std::result::Result<(), String> {
        positive(&[
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_inner", self.n_inner.unwrap_or(1)),
        ])?;
        epsilon("layer_norm_epsilon", self.layer_norm_epsilon)?;
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err("n_embd is not a multiple of n_head".into());
        }
        Ok(())
    }
}

impl LlamaConfig {
    fn check(&self) -> std::result::Result<(), String> {
        positive(&[
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads.unwrap_or(1)),
            ("head_dim", self.head_dim.unwrap_or(1)),
            ("max_position_embeddings", self.max_position_embeddings),
        ])?;
        epsilon("rms_norm_eps", self.rms_norm_eps)?;
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err("num_attention_heads is not a multiple of num_key_value_heads".into());
        }
        let d = self.head_dim();
        if d == 0 || !d.is_multiple_of(2) {
            return Err(format!(
                "the head dimension is {d}, but RoPE needs a positive even one"
            ));
        }
        self.checked_rope_theta()?;
        match self.rope_variant() {
            Some(v) => Err(format!(
                "RoPE scaling `{v}` is not supported yet (only the default RoPE)"
            )),
            None => Ok(()),
        }
    }
}

/// Sizes that must be positive: a zero divides by zero or builds a model that computes nothing.
fn positive(sizes: &[(&str, usize)]) -> std::result::Result<(), String> {
    match sizes.iter().find(|(_, size)| *size == 0) {
        Some((name, _)) => Err(format!("`{name}` is 0; it must be positive")),
        None => Ok(()),
    }
}

/// Norm epsilons: burn asserts they are positive, and a NaN would poison every activation.
fn epsilon(name: &str, eps: f64) -> std::result::Result<(), String> {
    match eps > 0.0 && eps.is_finite() {
        true => Ok(()),
        false => Err(format!(
            "`{name}` is {eps}; it must be a positive finite number"
        )),
    }
}

/// Reads a config into its struct; an error names the key it is about, so an unknown enum value
/// says which setting it is and what is accepted.
fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let message = match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            key => format!("`{key}`: {}", e.inner()),
        };
        BackboneError::Config {
            path: Default::default(),
            message,
        }
    })
}

fn config_error(path: &Path, e: serde_json::Error) -> BackboneError {
    BackboneError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn gelu() -> Activation {
    Activation::Gelu
}
fn gelu_new() -> Activation {
    Activation::GeluTanh
}
fn silu() -> Activation {
    Activation::Silu
}
fn int<const N: usize>() -> usize {
    N
}
fn yes() -> bool {
    true
}
fn eps_1e12() -> f64 {
    1e-12
}
fn eps_1e5() -> f64 {
    1e-5
}
fn eps_1e6() -> f64 {
    1e-6
}
