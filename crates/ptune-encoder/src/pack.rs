//! [`PromptPack`]: the exported result of P-tuning. The encoder is not needed at inference, only
//! its output; the pack keeps that matrix with what is needed to use it correctly.
//!
//! On disk, a directory with `prompt.safetensors` (one F32 tensor `prompt_embeddings`
//! `[n_prompt, H]`) and `prompt.json` (template, relation, backbone identity, metrics, and the
//! SHA-256 of the safetensors file). Each file is written under a temporary name and renamed; the
//! JSON goes last and names the tensor file's hash, so a pack cut short by a crash is refused on
//! load instead of pairing new prompts with old metadata.

use crate::error::{EncoderError, Result};
use crate::io::{
    ensure_dir, json_bytes, parse_safetensors, read_bytes, read_json, safetensors_bytes,
    sha256_hex, write_atomic,
};
use crate::tensors::{HostTensor, NamedTensors};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// File name of the prompt matrix inside a pack directory.
pub const PACK_TENSORS: &str = "prompt.safetensors";
/// File name of the pack's metadata inside a pack directory.
pub const PACK_JSON: &str = "prompt.json";
/// Name of the prompt tensor (the same name PEFT uses).
pub const PROMPT_TENSOR: &str = "prompt_embeddings";
const FORMAT: &str = "ptune-prompt-pack";
const VERSION: u32 = 1;

/// Which backbone a pack fits: prompts are only meaningful in the embedding space they were
/// trained in, and the template's ids only under the tokenizer they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackboneIdentity {
    /// Architecture or model name, e.g. `GPT2LMHeadModel` or `bert-base-cased`.
    pub architecture: String,
    pub hidden_size: usize,
    /// A hash of the tokenizer's vocabulary, computed by the caller.
    pub tokenizer_hash: String,
}

impl BackboneIdentity {
    pub fn new(
        architecture: impl Into<String>,
        hidden_size: usize,
        tokenizer_hash: impl Into<String>,
    ) -> Self {
        Self {
            architecture: architecture.into(),
            hidden_size,
            tokenizer_hash: tokenizer_hash.into(),
        }
    }

    /// `gpt2 (hidden 576, tokenizer 3f2a9c01b7e4…)`.
    fn describe(&self) -> String {
        let hash: String = self.tokenizer_hash.chars().take(12).collect();
        let ellipsis = if self.tokenizer_hash.chars().count() > 12 {
            "…"
        } else {
            ""
        };
        format!(
            "{} (hidden {}, tokenizer {hash}{ellipsis})",
            self.architecture, self.hidden_size
        )
    }
}

/// The trained prompt matrix and what is needed to use it.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptPack {
    /// `[n_prompt, H]`, in the order of the template's prompt slots.
    pub prompts: HostTensor,
    /// The template the prompts were trained in, e.g. `[P][P][P] [X] [P][P][P] [Y] [P][P][P]`.
    pub template: String,
    pub backbone: BackboneIdentity,
    /// The relation (task) trained, e.g. `P17`.
    pub relation: String,
    /// Free-form results (P@1, steps, encoder kind, ...).
    pub metrics: Map<String, Value>,
}

/// `prompt.json`.
#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    n_prompt: usize,
    hidden_size: usize,
    template: String,
    relation: String,
    backbone: BackboneIdentity,
    #[serde(default)]
    metrics: Map<String, Value>,
    tensor_file: String,
    tensor_sha256: String,
}

impl PromptPack {
    /// A pack of `prompts` (`[n_prompt, backbone.hidden_size]`, all finite).
    pub fn new(
        prompts: Tensor<2>,
        template: impl Into<String>,
        backbone: BackboneIdentity,
        relation: impl Into<String>,
    ) -> Result<Self> {
        Self::from_host(
            HostTensor::from_tensor(prompts),
            template,
            backbone,
            relation,
        )
    }

    /// As [`new`](Self::new), from a host tensor.
    pub fn from_host(
        prompts: HostTensor,
        template: impl Into<String>,
        backbone: BackboneIdentity,
        relation: impl Into<String>,
    ) -> Result<Self> {
        check_prompts(&prompts, backbone.hidden_size)?;
        Ok(Self {
            prompts,
            template: template.into(),
            backbone,
            relation: relation.into(),
            metrics: Map::new(),
        })
    }

    /// Adds or replaces metric `key`.
    pub fn with_metric(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metrics.insert(key.into(), value.into());
        self
    }

    pub fn n_prompt(&self) -> usize {
        self.prompts.shape[0]
    }

    /// The prompt matrix `[n_prompt, H]` on `device`.
    pub fn prompt_tensor(&self, device: &Device) -> Tensor<2> {
        self.prompts.to_tensor(device)
    }

    /// Refuses a backbone other than the one the pack was trained for.
    pub fn check_compatible(
        &self,
        architecture: &str,
        hidden: usize,
        tokenizer_hash: &str,
    ) -> Result<()> {
        let current = BackboneIdentity::new(architecture, hidden, tokenizer_hash);
        if current == self.backbone {
            return Ok(());
        }
        Err(EncoderError::Incompatible {
            trained: self.backbone.describe(),
            current: current.describe(),
        })
    }

    /// Writes `dir/prompt.safetensors` then `dir/prompt.json`, creating `dir` if needed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        check_prompts(&self.prompts, self.backbone.hidden_size)?;
        ensure_dir(dir)?;
        let tensor_path = dir.join(PACK_TENSORS);
        let tensors = NamedTensors::from([(PROMPT_TENSOR.to_string(), self.prompts.clone())]);
        let bytes = safetensors_bytes(&tensors, None, &tensor_path)?;
        let json_path = dir.join(PACK_JSON);
        let json = json_bytes(&self.manifest(sha256_hex(&bytes)), &json_path)?;
        write_atomic(&tensor_path, &bytes)?;
        write_atomic(&json_path, &json)
    }

    fn manifest(&self, tensor_sha256: String) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            n_prompt: self.n_prompt(),
            hidden_size: self.backbone.hidden_size,
            template: self.template.clone(),
            relation: self.relation.clone(),
            backbone: self.backbone.clone(),
            metrics: self.metrics.clone(),
            tensor_file: PACK_TENSORS.into(),
            tensor_sha256,
        }
    }

    /// Reads a pack directory, checking that its two files belong together.
    pub fn load(dir: &Path) -> Result<Self> {
        let json_path = dir.join(PACK_JSON);
        let m: Manifest = read_json(&json_path)?;
        if m.format != FORMAT || m.version != VERSION {
            let msg = format!(
                "is not a ptune prompt pack (format {} v{})",
                m.format, m.version
            );
            return Err(EncoderError::format(&json_path, msg));
        }
        let tensor_path = dir.join(PACK_TENSORS);
        let bytes = read_bytes(&tensor_path)?;
        if sha256_hex(&bytes) != m.tensor_sha256 {
            let msg = format!(
                "does not match {PACK_JSON}; the pack was not written completely, export it again"
            );
            return Err(EncoderError::format(&tensor_path, msg));
        }
        let mut file = parse_safetensors(&tensor_path, &bytes)?;
        let prompts = file.tensors.remove(PROMPT_TENSOR).ok_or_else(|| {
            EncoderError::format(&tensor_path, format!("has no tensor `{PROMPT_TENSOR}`"))
        })?;
        if prompts.shape != [m.n_prompt, m.hidden_size] {
            let msg = format!(
                "holds {:?}, but {PACK_JSON} says [{}, {}]",
                prompts.shape, m.n_prompt, m.hidden_size
            );
            return Err(EncoderError::format(&tensor_path, msg));
        }
        Self::from_host(prompts, m.template, m.backbone, m.relation).map(|p| Self {
            metrics: m.metrics,
            ..p
        })
    }

    /// [`load`](Self::load), then [`check_compatible`](Self::check_compatible) with `backbone`.
    pub fn load_for(dir: &Path, backbone: &BackboneIdentity) -> Result<Self> {
        let pack = Self::load(dir)?;
        pack.check_compatible(
            &backbone.architecture,
            backbone.hidden_size,
            &backbone.tokenizer_hash,
        )?;
        Ok(pack)
    }
}

/// A prompt matrix must be `[n ≥ 1, hidden]` and finite.
pub(crate) fn check_prompts(prompts: &HostTensor, hidden: usize) -> Result<()> {
    if prompts.shape.len() != 2 || prompts.shape[0] == 0 || prompts.shape[1] != hidden {
        return Err(EncoderError::PromptShape {
            found: prompts.shape.clone(),
            hidden,
        });
    }
    let count = prompts.data.iter().filter(|v| !v.is_finite()).count();
    if count > 0 {
        return Err(EncoderError::NonFinite { count });
    }
    Ok(())
}
