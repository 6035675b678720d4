//! `config.json` of each supported family, read with serde; defaults follow transformers.

use crate::error::{BackboneError, Result};
use serde::Deserialize;
use std::path::Path;

/// A parsed config, one variant per model family.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    Bert(BertConfig),
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
}

/// Which BERT-shaped checkpoint: they differ in names, position ids and the LM head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BertFlavor {
    Bert,
    Roberta,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps_1e12")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
    #[serde(skip, default = "bert_flavor")]
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
    pub activation_function: String,
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
    #[serde(default = "positions_2048")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default = "silu")]
    pub hidden_act: String,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(skip)]
    pub qwen2: bool,
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref()?.get("rope_theta")?.as_f64())
            .unwrap_or(10_000.0)
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

#[derive(Deserialize)]
struct Probe {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
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
        let probe: Probe =
            serde_json::from_value(value.clone()).map_err(|e| config_error(Path::new(""), e))?;
        let model_type = probe.model_type.ok_or_else(|| BackboneError::Config {
            path: Default::default(),
            message: "it has no `model_type`".into(),
        })?;
        check_architectures(&model_type, &probe.architectures)?;
        let parse_err = |e| config_error(Path::new(""), e);
        let config = match model_type.as_str() {
            "bert" | "roberta" => {
                let mut c: BertConfig = serde_json::from_value(value).map_err(parse_err)?;
                if model_type == "roberta" {
                    c.flavor = BertFlavor::Roberta;
                }
                ModelConfig::Bert(c)
            }
            "gpt2" => ModelConfig::Gpt2(serde_json::from_value(value).map_err(parse_err)?),
            "llama" | "mistral" | "qwen2" => {
                let mut c: LlamaConfig = serde_json::from_value(value).map_err(parse_err)?;
                c.qwen2 = model_type == "qwen2";
                ModelConfig::Llama(c)
            }
            other => return Err(BackboneError::UnknownModelType(other.to_string())),
        };
        config.validate()?;
        Ok(config)
    }

    /// Rejects settings the implementation would silently compute wrongly.
    fn validate(&self) -> Result<()> {
        let unsupported = |what: String| {
            Err(BackboneError::Config {
                path: Default::default(),
                message: what,
            })
        };
        match self {
            ModelConfig::Bert(c) if c.position_embedding_type != "absolute" => {
                unsupported(format!(
                    "position_embedding_type `{}` is not supported (only `absolute`)",
                    c.position_embedding_type
                ))
            }
            ModelConfig::Bert(c) if c.hidden_size % c.num_attention_heads != 0 => {
                unsupported("hidden_size is not a multiple of num_attention_heads".into())
            }
            ModelConfig::Gpt2(c) if c.n_embd % c.n_head != 0 => {
                unsupported("n_embd is not a multiple of n_head".into())
            }
            ModelConfig::Llama(c) if c.num_attention_heads % c.kv_heads() != 0 => {
                unsupported("num_attention_heads is not a multiple of num_key_value_heads".into())
            }
            ModelConfig::Llama(c) if c.rope_variant().is_some() => unsupported(format!(
                "RoPE scaling `{}` is not supported yet (only the default RoPE)",
                c.rope_variant().unwrap_or_default()
            )),
            _ => Ok(()),
        }
    }
}

/// Architectures ptune implements for each model type; anything else would load wrongly.
const KNOWN_ARCHITECTURES: &[(&str, &[&str])] = &[
    (
        "bert",
        &[
            "BertForMaskedLM",
            "BertModel",
            "BertForPreTraining",
            "BertLMHeadModel",
        ],
    ),
    ("roberta", &["RobertaForMaskedLM", "RobertaModel"]),
    ("gpt2", &["GPT2LMHeadModel", "GPT2Model"]),
    ("llama", &["LlamaForCausalLM", "LlamaModel"]),
    ("mistral", &["MistralForCausalLM", "MistralModel"]),
    ("qwen2", &["Qwen2ForCausalLM", "Qwen2Model"]),
];

fn check_architectures(model_type: &str, architectures: &[String]) -> Result<()> {
    let Some((_, known)) = KNOWN_ARCHITECTURES.iter().find(|(t, _)| *t == model_type) else {
        return Err(BackboneError::UnknownModelType(model_type.to_string()));
    };
    match architectures.iter().find(|a| !known.contains(&a.as_str())) {
        Some(arch) => Err(BackboneError::UnknownArchitecture(
            arch.clone(),
            format!(
                "for model_type `{model_type}` ptune knows {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn config_error(path: &Path, e: serde_json::Error) -> BackboneError {
    BackboneError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn gelu() -> String {
    "gelu".into()
}
fn gelu_new() -> String {
    "gelu_new".into()
}
fn silu() -> String {
    "silu".into()
}
fn absolute() -> String {
    "absolute".into()
}
fn two() -> usize {
    2
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
fn positions_2048() -> usize {
    2048
}
fn bert_flavor() -> BertFlavor {
    BertFlavor::Bert
}
