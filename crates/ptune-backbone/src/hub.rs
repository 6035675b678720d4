//! Downloads a model by hub id into the standard Hugging Face cache (users online only).

use crate::error::{BackboneError, Result};
use std::path::PathBuf;

/// Files fetched by id, in order of preference; the first weights/tokenizer found wins.
const WEIGHTS: &[&str] = &[
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
];
const TOKENIZERS: &[&[&str]] = &[
    &["tokenizer.json"],
    &["vocab.txt"],
    &["vocab.json", "merges.txt"],
];

/// Whether `s` reads as `owner/name` or a bare legacy id rather than a path.
pub fn looks_like_id(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['.', '/', '~'])
        && !s.ends_with(".gguf")
        && s.matches('/').count() <= 1
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// Fetches config, weights and tokenizer of `id`; returns the snapshot directory.
pub fn download(id: &str) -> Result<PathBuf> {
    let hub_err = |message: String| BackboneError::Hub {
        id: id.to_string(),
        message,
    };
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| hub_err(e.to_string()))?;
    let repo = api.model(id.to_string());
    let config = repo
        .get("config.json")
        .map_err(|e| hub_err(e.to_string()))?;
    let weights = WEIGHTS
        .iter()
        .find_map(|f| repo.get(f).ok().map(|p| (*f, p)));
    match weights {
        Some(("model.safetensors.index.json", index)) => {
            fetch_shards(&repo, &index).map_err(hub_err)?
        }
        Some(_) => {}
        None => {
            return Err(hub_err(
                "the repository has no safetensors or pytorch_model.bin weights".into(),
            ));
        }
    }
    let _ = repo.get("tokenizer_config.json");
    let found = TOKENIZERS
        .iter()
        .any(|files| files.iter().all(|f| repo.get(f).is_ok()));
    if !found {
        return Err(hub_err("the repository has no tokenizer files".into()));
    }
    Ok(config.parent().expect("a file in a snapshot").to_path_buf())
}

fn fetch_shards(
    repo: &hf_hub::api::sync::ApiRepo,
    index: &std::path::Path,
) -> std::result::Result<(), String> {
    let text = std::fs::read_to_string(index).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut files: Vec<&str> = value["weight_map"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    files.sort();
    files.dedup();
    for f in files {
        repo.get(f).map_err(|e| e.to_string())?;
    }
    Ok(())
}
