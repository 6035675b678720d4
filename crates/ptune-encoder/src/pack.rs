//! [`PromptPack`]: the exported result of P-tuning. The encoder is not needed at inference, only
//! its output; the pack keeps that matrix with what is needed to use it correctly.
//!
//! On disk, a directory with `prompt.safetensors` (one F32 tensor `prompt_embeddings`
//! `[n_prompt, H]`) and `prompt.json` (template, relation, ranking vocabulary, backbone identity,
//! metrics, and the SHA-256 of the safetensors file). Each file is written under a temporary name
//! and renamed; the JSON goes last and names the tensor file's hash, so a pack cut short by a crash
//! is refused on load instead of pairing new prompts with old metadata.
//!
//! Version 2 packs also record `pack_sha256`, a hash over the tensor file's hash, the template,
//! the relation and the backbone identity, so a `prompt.json` whose template (or relation, or
//! backbone) was changed after export is refused too. Version 1 packs, written before, have no
//! such hash and still load; for every pack, the template's prompt slots must match the matrix's
//! rows and the relation must be a plain name.

use crate::error::{EncoderError, Result};
use crate::io::{
    ensure_dir, json_bytes, parse_safetensors, read_bytes, read_json, safetensors_bytes,
    sha256_hex, write_atomic,
};
use crate::tensors::{HostTensor, HostTensorExt, NamedTensors};
use burn::tensor::{Device, Tensor};
use ptune_data::VocabStrategy;
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
const VERSION: u32 = 2;
/// Packs of version 1 have no `pack_sha256`; everything else is checked as for version 2.
const VERSION_WITHOUT_PACK_HASH: u32 = 1;

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
            ptune_data::short(&self.architecture),
            self.hidden_size
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
    /// The vocabulary the objects were ranked over, in training and by `ptune eval`.
    pub vocab: VocabStrategy,
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
    /// Absent in packs written before it was a field: their metrics hold it, or it is `original`.
    #[serde(default)]
    vocab: Option<VocabStrategy>,
    #[serde(default)]
    metrics: Map<String, Value>,
    tensor_file: String,
    tensor_sha256: String,
    /// [`pack_sha256`] of the pack; absent in version 1 packs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pack_sha256: Option<String>,
}

impl Manifest {
    /// The hash the manifest's own fields imply (see [`pack_sha256`]).
    fn expected_pack_sha256(&self) -> Result<String> {
        pack_sha256(
            &self.tensor_sha256,
            &self.template,
            &self.relation,
            &self.backbone,
        )
    }
}

/// SHA-256 of what makes a pack's identity: the tensor file's hash, the template, the relation and
/// the backbone (as one JSON array, so no two different packs give the same bytes). Metrics are
/// free-form and left out.
fn pack_sha256(
    tensor_sha256: &str,
    template: &str,
    relation: &str,
    backbone: &BackboneIdentity,
) -> Result<String> {
    let identity = (FORMAT, tensor_sha256, template, relation, backbone);
    let bytes = serde_json::to_vec(&identity).map_err(|e| EncoderError::Config(e.to_string()))?;
    Ok(sha256_hex(&bytes))
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

    /// As [`new`](Self::new), from a host tensor. The template must have one prompt slot per
    /// row, and the relation must be a plain name (it names a folder).
    pub fn from_host(
        prompts: HostTensor,
        template: impl Into<String>,
        backbone: BackboneIdentity,
        relation: impl Into<String>,
    ) -> Result<Self> {
        let (template, relation) = (template.into(), relation.into());
        check_prompts(&prompts, backbone.hidden_size)?;
        check_fit(&template, &relation, prompts.shape[0])?;
        Ok(Self {
            prompts,
            template,
            backbone,
            relation,
            vocab: VocabStrategy::Original,
            metrics: Map::new(),
        })
    }

    pub fn with_vocab(self, vocab: VocabStrategy) -> Self {
        Self { vocab, ..self }
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
        check_fit(&self.template, &self.relation, self.n_prompt())?;
        ensure_dir(dir)?;
        let tensor_path = dir.join(PACK_TENSORS);
        let tensors = NamedTensors::from([(PROMPT_TENSOR.to_string(), self.prompts.clone())]);
        let bytes = safetensors_bytes(&tensors, None, &tensor_path)?;
        let json_path = dir.join(PACK_JSON);
        let json = json_bytes(&self.manifest(sha256_hex(&bytes))?, &json_path)?;
        write_atomic(&tensor_path, &bytes)?;
        write_atomic(&json_path, &json)
    }

    fn manifest(&self, tensor_sha256: String) -> Result<Manifest> {
        let pack_hash = pack_sha256(
            &tensor_sha256,
            &self.template,
            &self.relation,
            &self.backbone,
        )?;
        Ok(Manifest {
            format: FORMAT.into(),
            version: VERSION,
            n_prompt: self.n_prompt(),
            hidden_size: self.backbone.hidden_size,
            template: self.template.clone(),
            relation: self.relation.clone(),
            backbone: self.backbone.clone(),
            vocab: Some(self.vocab),
            metrics: self.metrics.clone(),
            tensor_file: PACK_TENSORS.into(),
            tensor_sha256,
            pack_sha256: Some(pack_hash),
        })
    }

    /// Reads a pack directory, checking that its two files belong together and that its template
    /// fits its matrix.
    pub fn load(dir: &Path) -> Result<Self> {
        let json_path = dir.join(PACK_JSON);
        let m: Manifest = read_json(&json_path)?;
        check_manifest(&m, &json_path)?;
        let tensor_path = dir.join(PACK_TENSORS);
        let bytes = read_bytes(&tensor_path)?;
        if sha256_hex(&bytes) != m.tensor_sha256 {
            let msg = format!(
                "does not match {PACK_JSON}; the pack was not written completely, export it again"
            );
            return Err(EncoderError::format(&tensor_path, msg));
        }
        let prompts = read_prompts(&tensor_path, &bytes, &m)?;
        let fit = check_fit(&m.template, &m.relation, m.n_prompt);
        fit.map_err(|e| EncoderError::format(&json_path, e.to_string()))?;
        let old = m.metrics.get("vocab").and_then(Value::as_str);
        let vocab = match (m.vocab, old) {
            (Some(v), _) => v,
            (None, Some(name)) => name
                .parse()
                .map_err(|e: ptune_data::Error| EncoderError::format(&json_path, e.to_string()))?,
            (None, None) => VocabStrategy::Original,
        };
        Self::from_host(prompts, m.template, m.backbone, m.relation).map(|p| Self {
            vocab,
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

/// The format and version, and for version 2 the pack hash, of a `prompt.json`.
fn check_manifest(m: &Manifest, json_path: &Path) -> Result<()> {
    let known = (VERSION_WITHOUT_PACK_HASH..=VERSION).contains(&m.version);
    if m.format != FORMAT || !known {
        let msg = format!(
            "is not a ptune prompt pack this version reads (format {} v{}; it reads v1 and v2)",
            ptune_data::short(&m.format),
            m.version
        );
        return Err(EncoderError::format(json_path, msg));
    }
    let recorded = match (&m.pack_sha256, m.version) {
        (Some(hash), _) => hash,
        (None, VERSION_WITHOUT_PACK_HASH) => return Ok(()),
        (None, _) => return Err(EncoderError::format(json_path, "has no pack_sha256")),
    };
    if *recorded != m.expected_pack_sha256()? {
        let msg = "does not match its pack_sha256: its template, relation or backbone was changed \
                   after export; export the pack again";
        return Err(EncoderError::format(json_path, msg));
    }
    Ok(())
}

/// The prompt matrix of a pack's tensor file: F32-readable, `[n_prompt, hidden_size]` as the
/// manifest says, and finite. Errors name the file.
fn read_prompts(tensor_path: &Path, bytes: &[u8], m: &Manifest) -> Result<HostTensor> {
    let in_file = |e: EncoderError| match e {
        EncoderError::Dtype { .. } => EncoderError::format(tensor_path, e.to_string()),
        other => other,
    };
    let mut file = parse_safetensors(tensor_path, bytes).map_err(in_file)?;
    let prompts = file.tensors.remove(PROMPT_TENSOR).ok_or_else(|| {
        EncoderError::format(tensor_path, format!("has no tensor `{PROMPT_TENSOR}`"))
    })?;
    if prompts.shape != [m.n_prompt, m.hidden_size] {
        let msg = format!(
            "holds {:?}, but {PACK_JSON} says [{}, {}]",
            prompts.shape, m.n_prompt, m.hidden_size
        );
        return Err(EncoderError::format(tensor_path, msg));
    }
    check_read_prompts(&prompts, m.hidden_size, tensor_path)?;
    Ok(prompts)
}

/// A pack's template (a relation's, or a task's) must parse with one prompt slot per matrix row
/// (more slots would index past the matrix, fewer would silently use a part of it), and its
/// relation must be a plain name.
fn check_fit(template: &str, relation: &str, rows: usize) -> Result<()> {
    ptune_data::check_relation_id(relation)?;
    let parsed = ptune_data::Template::parse(template)
        .or_else(|e| ptune_data::Template::parse_task(template).map_err(|_| e))?;
    let slots = parsed.n_prompts();
    if slots != rows {
        return Err(EncoderError::SlotCount {
            template: template.to_string(),
            slots,
            rows,
        });
    }
    Ok(())
}

/// [`check_prompts`] for a matrix read from `path`: errors name the file, and non-finite values
/// there mean a damaged file, not a diverged run.
pub(crate) fn check_read_prompts(prompts: &HostTensor, hidden: usize, path: &Path) -> Result<()> {
    check_prompts(prompts, hidden).map_err(|e| match e {
        EncoderError::NonFinite { count } => EncoderError::format(
            path,
            format!("holds {count} non-finite values (NaN or infinity); the file is damaged"),
        ),
        other => EncoderError::format(path, other.to_string()),
    })
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
