//! PEFT's p-tuning adapter format, both ways: a directory with `adapter_config.json`
//! (`peft_type: "P_TUNING"`) and `adapter_model.safetensors` holding one tensor
//! `prompt_embeddings` `[num_virtual_tokens, token_dim]`, the encoder's output.
//!
//! PEFT loads it with `PeftModel.from_pretrained(base, dir)` (inference mode: the saved matrix is
//! used as is, no encoder runs). Note that PEFT *prepends* the virtual tokens to the input,
//! while P-tuning places them in the template's slots: the vectors carry over, the positions
//! only when the template is all prompts before the input.

use crate::error::{EncoderError, Result};
use crate::io::{
    ensure_dir, json_bytes, read_json, read_safetensors, safetensors_bytes, write_atomic,
};
use crate::pack::{PROMPT_TENSOR, PromptPack, check_prompts, check_read_prompts};
use crate::tensors::{HostTensor, NamedTensors};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
const P_TUNING: &str = "P_TUNING";

/// PEFT's task type. PEFT has none for masked LMs; `FEATURE_EXTRACTION` wraps any model,
/// prepends the prompts and returns the base model's own output (MLM logits for a
/// `*ForMaskedLM`), so it is the one to use for BERT-like backbones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeftTaskType {
    CausalLm,
    FeatureExtraction,
}

impl PeftTaskType {
    pub fn as_str(self) -> &'static str {
        match self {
            PeftTaskType::CausalLm => "CAUSAL_LM",
            PeftTaskType::FeatureExtraction => "FEATURE_EXTRACTION",
        }
    }
}

/// `adapter_config.json` of a p-tuning adapter, the fields PEFT 0.21 writes; unknown fields of a
/// file being read are kept in `extra` and written back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeftAdapterConfig {
    pub peft_type: String,
    #[serde(default)]
    pub task_type: Option<String>,
    pub num_virtual_tokens: usize,
    pub token_dim: usize,
    #[serde(default = "one")]
    pub num_transformer_submodules: usize,
    #[serde(default)]
    pub num_attention_heads: Option<usize>,
    #[serde(default)]
    pub num_layers: Option<usize>,
    #[serde(default = "mlp")]
    pub encoder_reparameterization_type: String,
    #[serde(default)]
    pub encoder_hidden_size: Option<usize>,
    #[serde(default = "two")]
    pub encoder_num_layers: usize,
    #[serde(default)]
    pub encoder_dropout: f64,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default = "yes")]
    pub inference_mode: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn yes() -> bool {
    true
}
fn mlp() -> String {
    "MLP".into()
}

impl PeftAdapterConfig {
    /// An inference-mode adapter of `num_virtual_tokens` prompts of width `token_dim`.
    /// `num_attention_heads`/`num_layers` are informational for p-tuning; set them with the
    /// backbone's values when known (PEFT fills them from the model config).
    pub fn new(task: PeftTaskType, num_virtual_tokens: usize, token_dim: usize) -> Self {
        Self {
            peft_type: P_TUNING.into(),
            task_type: Some(task.as_str().into()),
            num_virtual_tokens,
            token_dim,
            num_transformer_submodules: 1,
            num_attention_heads: None,
            num_layers: None,
            encoder_reparameterization_type: mlp(),
            encoder_hidden_size: Some(token_dim),
            encoder_num_layers: 2,
            encoder_dropout: 0.0,
            base_model_name_or_path: None,
            inference_mode: true,
            extra: Map::new(),
        }
    }
}

impl PeftAdapterConfig {
    /// Rows of the prompt matrix: `num_virtual_tokens × num_transformer_submodules`, each at
    /// least 1 (as is `token_dim`), or what is wrong with them.
    fn rows(&self) -> std::result::Result<usize, String> {
        let fields = [
            ("num_virtual_tokens", self.num_virtual_tokens),
            ("token_dim", self.token_dim),
            (
                "num_transformer_submodules",
                self.num_transformer_submodules,
            ),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0, but it must be at least 1"));
        }
        self.num_virtual_tokens
            .checked_mul(self.num_transformer_submodules)
            .ok_or_else(|| {
                "num_virtual_tokens × num_transformer_submodules is too large".to_string()
            })
    }
}

/// A p-tuning adapter read from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftAdapter {
    pub config: PeftAdapterConfig,
    /// `[num_virtual_tokens, token_dim]`.
    pub prompts: HostTensor,
}

/// Writes `dir/adapter_model.safetensors` then `dir/adapter_config.json` (each atomically).
pub fn write_adapter(dir: &Path, prompts: &HostTensor, config: &PeftAdapterConfig) -> Result<()> {
    check_prompts(prompts, config.token_dim)?;
    let rows = config.rows().map_err(EncoderError::Config)?;
    if prompts.shape[0] != rows {
        return Err(EncoderError::PromptShape {
            found: prompts.shape.clone(),
            hidden: config.token_dim,
        });
    }
    ensure_dir(dir)?;
    let weights = dir.join(ADAPTER_WEIGHTS);
    let tensors = NamedTensors::from([(PROMPT_TENSOR.to_string(), prompts.clone())]);
    let metadata = [("format".to_string(), "pt".to_string())].into();
    let bytes = safetensors_bytes(&tensors, Some(metadata), &weights)?;
    let config_path = dir.join(ADAPTER_CONFIG);
    let json = json_bytes(config, &config_path)?;
    write_atomic(&weights, &bytes)?;
    write_atomic(&config_path, &json)
}

/// Reads a p-tuning adapter for a backbone of hidden size `hidden`.
pub fn read_adapter(dir: &Path, hidden: usize) -> Result<PeftAdapter> {
    let config_path = dir.join(ADAPTER_CONFIG);
    let config: PeftAdapterConfig = read_json(&config_path)?;
    if config.peft_type != P_TUNING {
        return Err(EncoderError::PeftType {
            path: config_path,
            found: config.peft_type,
        });
    }
    if config.token_dim != hidden {
        return Err(EncoderError::TokenDim {
            path: config_path,
            found: config.token_dim,
            expected: hidden,
        });
    }
    let rows = config
        .rows()
        .map_err(|m| EncoderError::format(&config_path, m))?;
    let weights = dir.join(ADAPTER_WEIGHTS);
    let mut file = read_safetensors(&weights)?;
    let prompts = file.tensors.remove(PROMPT_TENSOR).ok_or_else(|| {
        EncoderError::format(&weights, format!("has no tensor `{PROMPT_TENSOR}`"))
    })?;
    if prompts.shape != [rows, hidden] {
        let msg = format!(
            "holds {:?}, but {ADAPTER_CONFIG} implies [{rows}, {hidden}]",
            prompts.shape
        );
        return Err(EncoderError::format(&weights, msg));
    }
    check_read_prompts(&prompts, hidden, &weights)?;
    Ok(PeftAdapter { config, prompts })
}

impl PromptPack {
    /// Writes this pack's prompts as a PEFT p-tuning adapter in `dir`.
    pub fn write_peft(
        &self,
        dir: &Path,
        task: PeftTaskType,
        base_model: Option<&str>,
    ) -> Result<()> {
        let mut config = PeftAdapterConfig::new(task, self.n_prompt(), self.backbone.hidden_size);
        config.base_model_name_or_path = base_model.map(str::to_string);
        write_adapter(dir, &self.prompts, &config)
    }
}
