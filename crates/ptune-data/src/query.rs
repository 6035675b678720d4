//! From a fact, a template and a tokenizer to one query: token ids with prompt slots, the position
//! that must predict the object, and the object's token id.
//!
//! Each literal piece and the subject are tokenized separately and the ids concatenated (as the
//! P-tuning reference does), so prompt slots never merge with neighbouring text. A piece written
//! after a space in the template is encoded with a leading space for byte-level BPE (see
//! [`SpaceStyle`]); the object likewise, so after `"... is [Y]"` the object of a GPT-2 query is
//! `ĠParis`, the token the model emits after "is".

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::encode::{PieceEncoder, Slot, words_as_prompts};
use crate::{AllowedVocab, Error, Fact, Objective, Result, Template, TokenizerSpec, VocabList};

/// One tokenized fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    pub input_ids: Vec<u32>,
    /// Positions of the prompt slots in order: slot `k` takes prompt vector `k`.
    pub prompt_positions: Vec<usize>,
    /// The position whose output predicts the object: the mask (masked LM) or the last id (causal).
    pub target_position: usize,
    pub object_id: u32,
    /// Index of the fact in the slice given to [`QueryBuilder::build`].
    pub fact_index: usize,
    /// Leading positions its template fixes (prompts and words before the subject): the same
    /// in every query of the template, so a causal model can keep their keys and values
    /// while the prompts do not change. 0: none (or not known), the whole query is computed.
    #[serde(skip)]
    pub lead: usize,
}

/// Why a fact produced no query. A fact is counted once, under the first reason found: the
/// object is checked first (tokenizer, single token, unknown, vocabulary list), then the subject,
/// then the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// The tokenizer failed on the subject or object text.
    TokenizerError,
    /// The object is more than one token (or none), so one position cannot predict it.
    MultiTokenObject,
    /// The object is the tokenizer's unknown token.
    UnknownObject,
    /// The object is one token but not in the vocabulary list of the strategy (`shared`, `lama`).
    ObjectNotInVocab,
    /// The subject encodes to no tokens at all.
    EmptySubject,
    /// The query is longer than the maximum length.
    TooLong,
    /// Usable, but past the number of facts the caller asked for ([`QuerySet::cap`]).
    OverCap,
    /// A task's candidate answer encodes to no tokens.
    EmptyAnswer,
    /// A causal LM would see nothing before the answer.
    EmptyContext,
}

impl DropReason {
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::TokenizerError => "tokenizer error",
            DropReason::MultiTokenObject => "multi-token object",
            DropReason::UnknownObject => "unknown-token object",
            DropReason::ObjectNotInVocab => "object not in the vocabulary list",
            DropReason::EmptySubject => "empty subject",
            DropReason::TooLong => "longer than the maximum length",
            DropReason::OverCap => "beyond --max-train",
            DropReason::EmptyAnswer => "empty candidate answer",
            DropReason::EmptyContext => "nothing before the answer",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// How many facts became queries and how many were dropped, per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropReport {
    pub total: usize,
    pub kept: usize,
    pub dropped: BTreeMap<DropReason, usize>,
}

impl DropReport {
    pub fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }

    pub fn count(&self, reason: DropReason) -> usize {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    /// "61 multi-token object, 2 longer than the maximum length", or "none dropped".
    pub fn reasons(&self) -> String {
        let parts: Vec<String> = self
            .dropped
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        match parts.is_empty() {
            true => "none dropped".into(),
            false => parts.join(", "),
        }
    }

    /// Adds another report's counts (e.g. to sum over relations).
    pub fn merge(&mut self, other: &DropReport) {
        self.total += other.total;
        self.kept += other.kept;
        for (&reason, &n) in &other.dropped {
            *self.dropped.entry(reason).or_default() += n;
        }
    }
}

impl fmt::Display for DropReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kept {} of {} facts", self.kept, self.total)?;
        match self.dropped.is_empty() {
            true => Ok(()),
            false => write!(f, " (dropped: {})", self.reasons()),
        }
    }
}

/// The queries built from a list of facts, with the account of those dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuerySet {
    pub queries: Vec<Query>,
    pub report: DropReport,
}

impl QuerySet {
    /// Keeps the first `max` queries and counts the rest as [`DropReason::OverCap`]: a cap on
    /// the facts used, applied after filtering so it yields `max` queries when there are enough.
    pub fn cap(&mut self, max: usize) {
        let over = self.queries.len().saturating_sub(max);
        if over > 0 {
            self.queries.truncate(max);
            *self.report.dropped.entry(DropReason::OverCap).or_default() += over;
            self.report.kept = self.queries.len();
        }
    }

    /// The distinct object ids: the relation's candidate set for evaluation.
    pub fn candidates(&self) -> AllowedVocab {
        AllowedVocab::from_ids(self.queries.iter().map(|q| q.object_id))
    }
}

/// Builds queries for one template and tokenizer; literal text is tokenized once, up front.
#[derive(Debug, Clone)]
pub struct QueryBuilder<'a> {
    enc: PieceEncoder<'a>,
    slots: Vec<Slot>,
    object_space: bool,
    allowed: Option<AllowedVocab>,
    max_len: Option<usize>,
}

impl<'a> QueryBuilder<'a> {
    /// Checks the spec and that the template suits its objective, and tokenizes the template text.
    /// Tokenizer padding and truncation, if configured, are switched off on a private copy.
    pub fn new(
        tokenizer: &'a Tokenizer,
        spec: &'a TokenizerSpec,
        template: &Template,
    ) -> Result<Self> {
        let enc = PieceEncoder::new(tokenizer, spec)?;
        template.check_objective(spec.objective)?;
        // `Template::parse` never makes fields; a task's template goes to a `RowBuilder`.
        if let Some(field) = template.fields().next() {
            return Err(Error::TemplateUnknownSlot {
                template: template.to_string(),
                token: format!("[{field}]"),
            });
        }
        let pieces = match spec.objective {
            Objective::Masked => template.pieces(),
            Objective::Causal => template.before_object(),
        };
        Ok(Self {
            slots: enc.slots(pieces)?,
            enc,
            object_space: template.object_space_before(),
            allowed: None,
            max_len: None,
        })
    }

    /// Drops queries longer than `max_len` ids (e.g. the model's position limit).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    /// Restricts objects to the tokens of a vocabulary list (`None`: the whole vocabulary).
    ///
    /// Each list entry is encoded the way an object would be (with the template's space before
    /// `[Y]`), and allows the token it yields when that is a single token. For the list's own model
    /// family this is exactly the reference's string match (`ĠParis` allows `ĠParis`); for other
    /// tokenizers it carries the list over, e.g. `Paris` allows `paris` in an uncased vocabulary.
    pub fn with_vocab(mut self, list: Option<&VocabList>) -> Self {
        self.allowed = list.map(|list| {
            let single = list.words().filter_map(|w| self.object_token(w).ok());
            AllowedVocab::from_ids(single.collect::<Vec<_>>())
        });
        self
    }

    /// The ids predictions are ranked over: the list's tokens, or every id of the tokenizer.
    pub fn allowed_vocab(&self) -> AllowedVocab {
        match &self.allowed {
            Some(allowed) => allowed.clone(),
            None => AllowedVocab::full(self.enc.vocab_size()),
        }
    }

    /// `template` (this builder's manual template) with each literal piece a query keeps turned
    /// into as many prompt slots as it has tokens, and those tokens' ids in slot order. With the
    /// ids' word embeddings as its prompt vectors, the new template's query is this builder's
    /// query: P-tuning that starts from the manual prompt, as prompt tuning starts from words.
    pub fn words_as_prompts(&self, template: &Template) -> Result<(Template, Vec<u32>)> {
        words_as_prompts(template, self.enc.spec.objective, &self.slots)
    }

    /// Builds one query per usable fact and counts the rest by reason.
    pub fn build(&self, facts: &[Fact]) -> QuerySet {
        let mut set = QuerySet::default();
        for (i, fact) in facts.iter().enumerate() {
            match self.build_one(fact) {
                Ok(mut q) => {
                    q.fact_index = i;
                    set.queries.push(q);
                }
                Err(reason) => *set.report.dropped.entry(reason).or_default() += 1,
            }
        }
        set.report.total = facts.len();
        set.report.kept = set.queries.len();
        set
    }

    /// Builds the query of one fact (`fact_index` 0), or says why it cannot be built.
    pub fn build_one(&self, fact: &Fact) -> Result<Query, DropReason> {
        let object_id = self.object_token(&fact.object)?;
        if self
            .allowed
            .as_ref()
            .is_some_and(|a| !a.contains(object_id))
        {
            return Err(DropReason::ObjectNotInVocab);
        }
        let query = self.assemble(&fact.subject, object_id)?;
        match self.max_len {
            Some(max) if query.input_ids.len() > max => Err(DropReason::TooLong),
            _ => Ok(query),
        }
    }

    /// The query for a new subject whose object is unknown (`object_id` 0): what `predict` ranks.
    pub fn query_for_subject(&self, subject: &str) -> Result<Query, DropReason> {
        let query = self.assemble(subject, 0)?;
        match self.max_len {
            Some(max) if query.input_ids.len() > max => Err(DropReason::TooLong),
            _ => Ok(query),
        }
    }

    /// The single token an object becomes in a query, or why it is not one usable token.
    pub fn object_token(&self, object: &str) -> Result<u32, DropReason> {
        let ids = self.enc.encode(object, self.object_space)?;
        match ids.as_slice() {
            [id] if Some(*id) == self.enc.spec.unk_id => Err(DropReason::UnknownObject),
            [id] => Ok(*id),
            _ => Err(DropReason::MultiTokenObject),
        }
    }

    fn assemble(&self, subject: &str, object_id: u32) -> Result<Query, DropReason> {
        let mut ids = self.enc.spec.prefix_ids.clone();
        let mut prompt_positions = Vec::new();
        let (mut target, mut lead) = (None, None);
        for slot in &self.slots {
            match slot {
                Slot::Prompt(n) => {
                    prompt_positions.extend(ids.len()..ids.len() + n);
                    ids.extend(std::iter::repeat_n(self.enc.spec.placeholder_id, *n));
                }
                Slot::Input { space_before, .. } => {
                    lead.get_or_insert(ids.len());
                    let sub = self.enc.encode(subject, *space_before)?;
                    if sub.is_empty() {
                        return Err(DropReason::EmptySubject);
                    }
                    ids.extend(sub);
                }
                Slot::Answer => {
                    target = Some(ids.len());
                    ids.extend(self.enc.spec.mask_id);
                }
                Slot::Ids(text) => ids.extend(text),
            }
        }
        ids.extend(&self.enc.spec.suffix_ids);
        Ok(Query {
            // Causal: no object slot was pushed, so the last id predicts the object.
            target_position: target.unwrap_or(ids.len() - 1),
            input_ids: ids,
            prompt_positions,
            object_id,
            fact_index: 0,
            lead: lead.unwrap_or(0),
        })
    }
}
