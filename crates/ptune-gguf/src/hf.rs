//! A Hugging Face view of a Llama-family GGUF: `config.json` values and tensors under
//! transformers' names, with llama.cpp's rotary permutation of Q and K undone.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value as Json, json};

use crate::error::{GgufError, Result};
use crate::file::GgufFile;
use crate::value::Metadata;

/// The model families this view understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `llama` and `mistral` files; Q and K rows are permuted by llama.cpp's converter.
    Llama,
    /// `qwen2` files; Q/K/V have biases and are stored unpermuted.
    Qwen2,
}

impl Family {
    /// The family of a `general.architecture` value.
    pub fn from_architecture(arch: &str) -> Result<Self> {
        match arch {
            "llama" | "mistral" => Ok(Family::Llama),
            "qwen2" => Ok(Family::Qwen2),
            other => Err(GgufError::UnsupportedArchitecture(other.to_string())),
        }
    }

    fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
        }
    }
}

/// Per-layer GGUF suffixes and their transformers counterparts (without the `.weight`/`.bias`).
const LAYER_NAMES: &[(&str, &str)] = &[
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
];

/// Model-level GGUF names and their transformers counterparts.
const GLOBAL_NAMES: &[(&str, &str)] = &[
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// The transformers name of a GGUF tensor, if it is one a Llama-family model has.
pub fn hf_name(gguf_name: &str) -> Option<String> {
    if let Some(&(_, hf)) = GLOBAL_NAMES.iter().find(|(g, _)| *g == gguf_name) {
        return Some(hf.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (base, kind) = rest.rsplit_once('.')?;
    if kind != "weight" && kind != "bias" {
        return None;
    }
    let &(_, hf) = LAYER_NAMES.iter().find(|(g, _)| *g == base)?;
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// A Llama-family GGUF seen as a transformers checkpoint. Owns the file; reads are lazy.
#[derive(Debug)]
pub struct HfView {
    file: GgufFile,
    family: Family,
    n_head: usize,
    n_head_kv: usize,
    config: Json,
    /// transformers name -> GGUF name.
    names: BTreeMap<String, String>,
}

impl HfView {
    /// Opens a GGUF file and checks that it is a supported Llama-family model.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::new(GgufFile::open(path)?)
    }

    pub fn new(file: GgufFile) -> Result<Self> {
        let family = Family::from_architecture(file.architecture()?)?;
        let config = hf_config(&file)?;
        let count = |key: &str| config[key].as_u64().unwrap_or(0) as usize;
        let (n_head, n_head_kv) = (count("num_attention_heads"), count("num_key_value_heads"));
        let names = file
            .tensor_names()
            .into_iter()
            .filter_map(|g| hf_name(g).map(|h| (h, g.to_string())))
            .collect();
        Ok(Self {
            file,
            family,
            n_head,
            n_head_kv,
            config,
            names,
        })
    }

    /// The underlying file (metadata, tokenizer, raw tensors).
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// The `config.json` equivalent (see [`hf_config`]).
    pub fn config(&self) -> &Json {
        &self.config
    }

    /// Every transformers tensor name this file provides, sorted. A tied model has no
    /// `lm_head.weight`, exactly like its safetensors checkpoint.
    pub fn names(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    /// The GGUF name behind a transformers name.
    pub fn gguf_name(&self, hf_name: &str) -> Option<&str> {
        self.names.get(hf_name).map(String::as_str)
    }

    /// GGUF tensors with no transformers counterpart (e.g. `rope_freqs.weight`).
    pub fn unmapped(&self) -> Vec<&str> {
        let mapped: std::collections::HashSet<&str> =
            self.names.values().map(String::as_str).collect();
        self.file
            .tensor_names()
            .into_iter()
            .filter(|n| !mapped.contains(n))
            .collect()
    }

    /// The tensor's shape in transformers' order, or `None` if absent.
    pub fn shape(&self, hf_name: &str) -> Option<Vec<usize>> {
        let info = self.file.tensor_info(self.gguf_name(hf_name)?)?;
        Some(info.shape())
    }

    /// Reads a tensor as f32 exactly as transformers holds it: dequantized and, for Llama
    /// Q/K projections, with llama.cpp's row permutation undone. `Ok(None)` if absent.
    pub fn read(&self, hf_name: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let Some(gguf) = self.gguf_name(hf_name) else {
            return Ok(None);
        };
        let Some((shape, data)) = self.file.read_f32(gguf)? else {
            return Ok(None);
        };
        let heads = match self.family {
            Family::Llama if hf_name.contains(".self_attn.q_proj.") => self.n_head,
            Family::Llama if hf_name.contains(".self_attn.k_proj.") => self.n_head_kv,
            _ => return Ok(Some((shape, data))),
        };
        let rows = shape.first().copied().unwrap_or(0);
        let data =
            unpermute_rows(&data, &shape, heads).ok_or_else(|| GgufError::InvalidTensor {
                tensor: gguf.to_string(),
                reason: format!("{rows} rows cannot be split into {heads} heads of even size"),
            })?;
        Ok(Some((shape, data)))
    }
}

/// Undoes convert_hf_to_gguf.py's `permute`, which reorders each head's rows from
/// transformers' rotate-half layout (pairs `i`, `i + d/2`) to ggml's interleaved one (pairs
/// `2i`, `2i + 1`): GGUF row `2j + k` of a head goes back to row `k * d/2 + j`.
/// `None` if the rows do not split into `heads` heads of even size.
pub fn unpermute_rows(data: &[f32], shape: &[usize], heads: usize) -> Option<Vec<f32>> {
    let rows = *shape.first()?;
    let cols: usize = shape[1..].iter().product();
    if heads == 0
        || !rows.is_multiple_of(heads)
        || !(rows / heads).is_multiple_of(2)
        || data.len() != rows * cols
    {
        return None;
    }
    let (head_dim, half) = (rows / heads, rows / heads / 2);
    let mut out = vec![0f32; data.len()];
    for hf_row in 0..rows {
        let (head, within) = (hf_row / head_dim, hf_row % head_dim);
        let (k, j) = (within / half, within % half);
        let src = head * head_dim + 2 * j + k;
        out[hf_row * cols..(hf_row + 1) * cols]
            .copy_from_slice(&data[src * cols..(src + 1) * cols]);
    }
    Some(out)
}

/// The transformers `config.json` equivalent of a Llama-family GGUF's metadata.
///
/// Fields: `model_type`, `architectures`, sizes, `head_dim`, `rms_norm_eps`, `rope_theta`
/// (10000 when absent), `max_position_embeddings`, `vocab_size`, `tie_word_embeddings` (true iff
/// there is no `output.weight`), `rope_scaling` when the file states one, and the special token
/// ids the tokenizer metadata gives.
pub fn hf_config(file: &GgufFile) -> Result<Json> {
    let arch = file.architecture()?;
    let family = Family::from_architecture(arch)?;
    if file.tensor_info("rope_freqs.weight").is_some() {
        return Err(GgufError::Unsupported(
            "per-frequency RoPE factors (rope_freqs.weight, Llama 3.1-style scaling) are not supported".into(),
        ));
    }
    let md = file.metadata();
    let key = |name: &str| format!("{arch}.{name}");
    let req = |name: &str| required(md, &key(name));
    let (hidden, n_head, n_head_kv, head_dim) = attention_shape(md, arch)?;
    let rms_norm_eps = positive_f32(md, &key("attention.layer_norm_rms_epsilon"))?
        .ok_or_else(|| missing(&key("attention.layer_norm_rms_epsilon")))?;
    let rope_theta = positive_f32(md, &key("rope.freq_base"))?.unwrap_or(10000.0);
    let mut config = json!({
        "architectures": [family.class()],
        "model_type": family.model_type(),
        "hidden_size": hidden,
        "intermediate_size": req("feed_forward_length")?,
        "num_hidden_layers": req("block_count")?,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_head_kv,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": decimal(rms_norm_eps),
        "rope_theta": decimal(rope_theta),
        "max_position_embeddings": req("context_length")?,
        "vocab_size": vocab_size(file, &key("vocab_size"))?,
        "tie_word_embeddings": file.tensor_info("output.weight").is_none(),
        "rope_scaling": rope_scaling(md, arch)?,
    });
    if family == Family::Llama {
        config["attention_bias"] = json!(file.tensor_info("blk.0.attn_q.bias").is_some());
        config["mlp_bias"] = json!(false);
    }
    insert_token_ids(md, &mut config)?;
    Ok(config)
}

/// (hidden size, heads, KV heads, head dim). The head dim is `key_length` when stated, else
/// the RoPE width (equal for Llama, as transformers assumes too), else hidden / heads.
fn attention_shape(md: &Metadata, arch: &str) -> Result<(usize, usize, usize, usize)> {
    let key = |name: &str| format!("{arch}.{name}");
    let hidden = required(md, &key("embedding_length"))?;
    let n_head = required(md, &key("attention.head_count"))?;
    let n_head_kv = md
        .get_usize(&key("attention.head_count_kv"))?
        .unwrap_or(n_head);
    let head_dim = match md.get_usize(&key("attention.key_length"))? {
        Some(d) => d,
        None => md
            .get_usize(&key("rope.dimension_count"))?
            .unwrap_or(hidden / n_head),
    };
    for (name, value) in [
        ("attention.head_count_kv", n_head_kv),
        ("attention.key_length", head_dim),
    ] {
        if value == 0 {
            return Err(not_positive(&key(name), "0".into()));
        }
    }
    Ok((hidden, n_head, n_head_kv, head_dim))
}

/// A size every model needs; a zero would divide by zero or build a model of nothing.
fn required(md: &Metadata, key: &str) -> Result<usize> {
    match md.get_usize(key)?.ok_or_else(|| missing(key))? {
        0 => Err(not_positive(key, "0".into())),
        n => Ok(n),
    }
}

/// An epsilon or RoPE base: NaN, infinite, zero or negative ones would compute garbage (and a
/// NaN would become `null` in the JSON config, i.e. silently the default).
fn positive_f32(md: &Metadata, key: &str) -> Result<Option<f32>> {
    match md.get_f32(key)? {
        Some(v) if !(v > 0.0 && v.is_finite()) => Err(not_positive(key, v.to_string())),
        v => Ok(v),
    }
}

fn not_positive(key: &str, found: String) -> GgufError {
    GgufError::WrongType {
        key: key.to_string(),
        expected: "a positive finite number",
        found,
    }
}

fn missing(key: &str) -> GgufError {
    GgufError::MissingKey {
        key: key.to_string(),
    }
}

/// An f32 as the f64 with the same shortest decimal form (1e-5, not 9.999999747378752e-6),
/// matching the values in the original `config.json`.
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// The embedding's row count, else the metadata's vocabulary size, else the token count.
fn vocab_size(file: &GgufFile, key: &str) -> Result<usize> {
    let embedding = file.tensor_info("token_embd.weight");
    if let Some(rows) = embedding.and_then(|t| t.shape().first().copied()) {
        return Ok(rows);
    }
    if let Some(n) = file.metadata().get_usize(key)? {
        return Ok(n);
    }
    let tokens = file.metadata().get_array("tokenizer.ggml.tokens")?;
    tokens.map(<[_]>::len).ok_or_else(|| missing(key))
}

/// transformers' `rope_scaling` for the linear and YaRN scalings llama.cpp records.
fn rope_scaling(md: &Metadata, arch: &str) -> Result<Json> {
    let kind = md.get_str(&format!("{arch}.rope.scaling.type"))?;
    let factor = md.get_f32(&format!("{arch}.rope.scaling.factor"))?;
    let original = md.get_usize(&format!("{arch}.rope.scaling.original_context_length"))?;
    Ok(match (kind, factor) {
        (None | Some("none"), _) => Json::Null,
        (Some(kind @ ("linear" | "yarn")), Some(factor)) => {
            let mut s = json!({ "rope_type": kind, "factor": decimal(factor) });
            if let Some(n) = original.filter(|_| kind == "yarn") {
                s["original_max_position_embeddings"] = json!(n);
            }
            s
        }
        (Some(other), _) => {
            return Err(GgufError::Unsupported(format!(
                "RoPE scaling {other:?} without a factor, or of an unknown kind, is not supported"
            )));
        }
    })
}

/// The special token ids, for those the tokenizer metadata gives.
fn insert_token_ids(md: &Metadata, config: &mut Json) -> Result<()> {
    for (field, key) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
        ("pad_token_id", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(id) = md.get_u32(key)? {
            config[field] = json!(id);
        }
    }
    Ok(())
}
