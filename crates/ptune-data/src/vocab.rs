//! Vocabulary strategies of the P-tuning reference and the allowed-token sets they produce.
//!
//! `original` allows the model's whole vocabulary; `shared` and `lama` allow only the tokens of a
//! list (`29k-vocab.json`, `34k-vocab.json`), keyed by model family. A fact survives a list only if
//! its object is a token of the list, and evaluation ranks only the allowed tokens.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::strip_bom;
use crate::{Error, Result};

/// Which tokens objects and predictions may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum VocabStrategy {
    /// The model's whole vocabulary.
    Original,
    /// The list shared by all models of the LAMA study (`29k-vocab.json`).
    Shared,
    /// LAMA's own list (`34k-vocab.json`).
    Lama,
    /// Only the relation's own objects (every split): a closed-set ranking.
    Candidates,
}

impl VocabStrategy {
    /// The list file the strategy reads, relative to the data root (`None` for `original`).
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            VocabStrategy::Original | VocabStrategy::Candidates => None,
            VocabStrategy::Shared => Some("29k-vocab.json"),
            VocabStrategy::Lama => Some("34k-vocab.json"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VocabStrategy::Original => "original",
            VocabStrategy::Shared => "shared",
            VocabStrategy::Lama => "lama",
            VocabStrategy::Candidates => "candidates",
        }
    }
}

impl fmt::Display for VocabStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VocabStrategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "original" => Ok(VocabStrategy::Original),
            "shared" => Ok(VocabStrategy::Shared),
            "lama" => Ok(VocabStrategy::Lama),
            "candidates" => Ok(VocabStrategy::Candidates),
            _ => Err(Error::UnknownVocabStrategy(s.to_string())),
        }
    }
}

/// The list key the P-tuning reference uses for a model name: GPT models share `gpt2-xl`,
/// RoBERTa/Megatron models `roberta-large`, and the BERT keys are used as they are. `None` means
/// the caller must pick a key (e.g. `bert-base-cased` for another WordPiece model).
pub fn vocab_key_for_model(model_name: &str) -> Option<&'static str> {
    let name = model_name.to_ascii_lowercase();
    if name.contains("gpt") {
        Some("gpt2-xl")
    } else if name.contains("roberta") || name.contains("megatron") {
        Some("roberta-large")
    } else if name.contains("bert-large-cased") {
        Some("bert-large-cased")
    } else if name.contains("bert-base-cased") {
        Some("bert-base-cased")
    } else {
        None
    }
}

/// One model family's token list from `29k-vocab.json` or `34k-vocab.json`. Byte-level entries
/// carry the `Ġ` space mark (`ĠParis`); WordPiece entries are bare words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabList {
    key: String,
    tokens: Vec<String>,
}

impl VocabList {
    pub fn new(key: impl Into<String>, tokens: Vec<String>) -> Self {
        Self {
            key: key.into(),
            tokens,
        }
    }

    /// Reads the list stored under `key` in a vocabulary file.
    pub fn from_file(path: impl AsRef<Path>, key: &str) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|err| Error::Io {
            path: path.to_path_buf(),
            err,
        })?;
        let mut lists: HashMap<String, Vec<String>> = serde_json::from_str(strip_bom(&text))
            .map_err(|e| Error::BadVocabFile {
                path: path.to_path_buf(),
                msg: e.to_string(),
            })?;
        let tokens = lists.remove(key).ok_or_else(|| Error::UnknownVocabKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            available: sorted_keys(&lists),
        })?;
        Ok(Self::new(key, tokens))
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The entries as plain words (the `Ġ` space mark removed), for re-encoding with any tokenizer.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| t.strip_prefix('Ġ').unwrap_or(t))
    }
}

fn sorted_keys(lists: &HashMap<String, Vec<String>>) -> String {
    let mut keys: Vec<&str> = lists.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys.is_empty() {
        "no lists".to_string()
    } else {
        keys.join(", ")
    }
}

/// A set of token ids that objects and predictions may be: sorted ids plus a membership mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedVocab {
    ids: Vec<u32>,
    mask: Vec<bool>,
}

impl AllowedVocab {
    /// Every id below `size`: the `original` strategy.
    pub fn full(size: usize) -> Self {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        Self::from_ids(0..size)
    }

    /// Exactly these ids (duplicates ignored), e.g. a relation's candidate objects.
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Self {
        let mut ids: Vec<u32> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let len = ids.last().map_or(0, |&m| m as usize + 1);
        let mut mask = vec![false; len];
        for &id in &ids {
            mask[id as usize] = true;
        }
        Self { ids, mask }
    }

    pub fn contains(&self, id: u32) -> bool {
        self.mask.get(id as usize).copied().unwrap_or(false)
    }

    /// The allowed ids, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Membership by id, `width` long (ids beyond the set are `false`): a mask over score rows.
    pub fn mask(&self, width: usize) -> Vec<bool> {
        let mut mask = self.mask.clone();
        mask.resize(width, false);
        mask
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
