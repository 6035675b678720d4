//! Tokenizing template pieces one at a time, the way queries and task rows are assembled.

use std::borrow::Cow;

use tokenizers::Tokenizer;

use crate::template::{Part, Piece};
use crate::{DropReason, Error, Objective, Result, SpaceStyle, Template, TokenizerSpec};

/// A template piece with its literal text already tokenized.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Prompt(usize),
    /// The subject `[X]` (`field` `None`) or a task's field `[name]`.
    Input {
        field: Option<String>,
        space_before: bool,
    },
    /// `[Y]`: the object, or the task's answer.
    Answer,
    Ids(Vec<u32>),
}

/// A tokenizer with its spec, encoding one piece at a time without special tokens.
#[derive(Debug, Clone)]
pub(crate) struct PieceEncoder<'a> {
    tokenizer: Cow<'a, Tokenizer>,
    pub spec: &'a TokenizerSpec,
}

impl<'a> PieceEncoder<'a> {
    /// Checks the spec; tokenizer padding and truncation, if configured, are switched off on a
    /// private copy.
    pub fn new(tokenizer: &'a Tokenizer, spec: &'a TokenizerSpec) -> Result<Self> {
        spec.validate()?;
        Ok(Self {
            tokenizer: plain_tokenizer(tokenizer),
            spec,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The pieces as slots, their words tokenized once.
    pub fn slots(&self, pieces: &[Piece]) -> Result<Vec<Slot>> {
        let slot = |piece: &Piece| {
            let space_before = piece.space_before;
            Ok(match &piece.part {
                Part::Prompt(n) => Slot::Prompt(*n),
                Part::Subject => Slot::Input {
                    field: None,
                    space_before,
                },
                Part::Field(name) => Slot::Input {
                    field: Some(name.clone()),
                    space_before,
                },
                Part::Object => Slot::Answer,
                Part::Text(text) => Slot::Ids(self.text(text, space_before)?),
            })
        };
        pieces.iter().map(slot).collect()
    }

    /// A template's literal words, or the error that names them.
    pub fn text(&self, text: &str, space_before: bool) -> Result<Vec<u32>> {
        self.encode_raw(text, space_before)
            .map_err(|e| Error::TemplateText {
                text: text.to_string(),
                msg: e.to_string(),
            })
    }

    /// Data text (a subject, an object, a field): a tokenizer failure drops the example.
    pub fn encode(&self, text: &str, space_before: bool) -> Result<Vec<u32>, DropReason> {
        self.encode_raw(text, space_before)
            .map_err(|_| DropReason::TokenizerError)
    }

    /// Tokenizes one piece without special tokens, adding the leading space byte-level BPE needs.
    fn encode_raw(&self, text: &str, space_before: bool) -> tokenizers::Result<Vec<u32>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let input: Cow<str> = match self.spec.space {
            SpaceStyle::ByteLevel if space_before => Cow::Owned(format!(" {text}")),
            _ => Cow::Borrowed(text),
        };
        let encoding = self.tokenizer.encode_fast(input.as_ref(), false)?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// `template` with each literal piece the objective's model sees turned into as many prompt
/// slots as `slots` (its pieces, tokenized) gives it tokens, and those tokens' ids in slot order:
/// with the ids' word embeddings as prompt vectors, the new template reads as the old one.
/// Queries tokenize the pieces before `[Y]` only, hence the answer slot chained on.
pub(crate) fn words_as_prompts(
    template: &Template,
    objective: Objective,
    slots: &[Slot],
) -> Result<(Template, Vec<u32>)> {
    let kept = template.seen_by(objective);
    let mut ids = Vec::new();
    let mut pieces = Vec::new();
    for (piece, slot) in kept.iter().zip(slots.iter().chain([&Slot::Answer])) {
        let part = match slot {
            Slot::Ids(text) if text.is_empty() => continue,
            Slot::Ids(text) => {
                ids.extend(text);
                Part::Prompt(text.len())
            }
            _ => piece.part.clone(),
        };
        pieces.push(Piece {
            part,
            space_before: piece.space_before,
        });
    }
    if ids.is_empty() {
        return Err(Error::TemplateNoPrompts {
            template: template.to_string(),
        });
    }
    Ok((Template::from_pieces(pieces), ids))
}

/// The tokenizer as given, or a copy without padding and truncation (which would corrupt pieces).
fn plain_tokenizer(tokenizer: &Tokenizer) -> Cow<'_, Tokenizer> {
    if tokenizer.get_padding().is_none() && tokenizer.get_truncation().is_none() {
        return Cow::Borrowed(tokenizer);
    }
    let mut copy = tokenizer.clone();
    copy.with_padding(None);
    // Removing truncation cannot fail: only invalid truncation parameters are rejected.
    let _ = copy.with_truncation(None);
    Cow::Owned(copy)
}
