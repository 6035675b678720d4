//! What a query builder must know about a model's tokenizer beyond the `Tokenizer` object itself:
//! its objective, its special tokens and how it marks word starts.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the language model predicts the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// BERT-like: `[Y]` becomes the mask token and the model predicts it in place.
    Masked,
    /// GPT-like: the query ends right before the object and the last position predicts it.
    Causal,
}

/// How the tokenizer marks the start of a word, which decides how template pieces are encoded
/// when each piece is tokenized on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceStyle {
    /// WordPiece and other tokenizers that split on whitespace: spaces carry no meaning.
    Plain,
    /// GPT-2/RoBERTa byte-level BPE: a word after a space is a different token (`ĠParis`), so a
    /// piece written after a space in the template is encoded with a leading `" "`.
    ByteLevel,
    /// SentencePiece (`▁Paris`): the tokenizer marks the start of every encoded piece itself, so
    /// pieces are passed without leading spaces (a piece glued to the previous word still gets the
    /// word-start mark, a limitation of encoding pieces separately).
    Metaspace,
}

/// A model's tokenizer conventions; ptune-train reads them off the loaded tokenizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerSpec {
    pub objective: Objective,
    pub space: SpaceStyle,
    /// Ids put before every query: `[CLS]` (BERT), `<s>` (RoBERTa), a BOS for causal LMs that use one.
    pub prefix_ids: Vec<u32>,
    /// Ids put after every masked-LM query: `[SEP]`, `</s>`. Must be empty for a causal LM.
    pub suffix_ids: Vec<u32>,
    /// The mask token that stands in for `[Y]` in a masked LM.
    pub mask_id: Option<u32>,
    /// Fills padded positions (masked out by the attention mask, so any id works).
    pub pad_id: u32,
    /// The tokenizer's unknown token: an object that encodes to it is dropped.
    pub unk_id: Option<u32>,
    /// Written into prompt slots; the trainer overwrites their embeddings with prompt vectors.
    pub placeholder_id: u32,
}

impl TokenizerSpec {
    /// Checks the spec is usable for its objective.
    pub fn validate(&self) -> Result<()> {
        match self.objective {
            Objective::Masked if self.mask_id.is_none() => Err(Error::NoMaskToken),
            Objective::Causal if !self.suffix_ids.is_empty() => Err(Error::CausalSuffix),
            _ => Ok(()),
        }
    }
}
