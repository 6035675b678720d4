//! One error type for the crate: each variant reads as one sentence saying what was wrong.

use std::path::PathBuf;

use crate::text::{quote, short, short_message};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading data, parsing templates, building batches or
/// scoring. Facts that merely cannot be used (e.g. a multi-token object) are not errors: they are
/// dropped and counted in a [`crate::DropReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("could not read {}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },

    #[error(
        "{} not found: point to a folder in the P-tuning LAMA layout (relations.jsonl, fact-retrieval/original/<relation>/<split>.jsonl)",
        path.display()
    )]
    MissingRelationsFile { path: PathBuf },

    #[error(
        "relation {} has no {split} split ({} does not exist)",
        short(.relation),
        path.display()
    )]
    MissingSplit {
        relation: String,
        split: String,
        path: PathBuf,
    },

    #[error("{}, line {line}: {msg}", path.display())]
    BadRecord {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    #[error(
        "relation id {} is not a plain name, which it must be as it names a folder: {reason}",
        quote(.id)
    )]
    BadRelationId { id: String, reason: &'static str },

    #[error("relation {}: {source}", short(.relation))]
    RelationTemplate {
        relation: String,
        source: Box<Error>,
    },

    #[error("relation {} is not listed in {}", short(.relation), path.display())]
    UnknownRelation { relation: String, path: PathBuf },

    #[error(
        "{} has no vocabulary list for {}; it has {}",
        path.display(),
        quote(.key),
        short_message(.available)
    )]
    UnknownVocabKey {
        path: PathBuf,
        key: String,
        available: String,
    },

    #[error(
        "{} is not a vocabulary file (a JSON object of token lists): {}",
        path.display(),
        short_message(.msg)
    )]
    BadVocabFile { path: PathBuf, msg: String },

    #[error("unknown split {}; use train, dev or test", quote(.0))]
    UnknownSplit(String),

    #[error(
        "unknown vocabulary strategy {}; use original, shared, lama or candidates",
        quote(.0)
    )]
    UnknownVocabStrategy(String),

    #[error("template {} has no [X] (the subject slot)", quote(.template))]
    TemplateNoSubject { template: String },

    #[error("template {} has no [Y] (the object slot)", quote(.template))]
    TemplateNoObject { template: String },

    #[error("template {} has more than one {slot}", quote(.template))]
    TemplateRepeatedSlot {
        template: String,
        slot: &'static str,
    },

    #[error("template {}: {} is not a prompt slot; write [P] or [P:n] with n >= 1", quote(.template), short(.token))]
    TemplateBadPrompt { template: String, token: String },

    #[error("template {}: unknown slot {}; slots are [P], [P:n], [X] and [Y] (in a task's template, [Y] and fields such as [premise])", quote(.template), short(.token))]
    TemplateUnknownSlot { template: String, token: String },

    #[error(
        "template {} asks for {} prompt vectors; a template may have at most {max}, in one slot and in all together",
        quote(.template),
        short(.asked)
    )]
    TemplateTooManyPrompts {
        template: String,
        asked: String,
        max: usize,
    },

    #[error(
        "task template {} has [X]; a task's template names its fields instead, e.g. [subject] or [premise]",
        quote(.template)
    )]
    TaskTemplateSubject { template: String },

    #[error(
        "task template {} places no field, so every example would read the same; add one such as [text]",
        quote(.template)
    )]
    TaskTemplateNoField { template: String },

    #[error("template {} has a '[' that is never closed", quote(.template))]
    TemplateUnclosed { template: String },

    #[error(
        "template {} has no prompt slots, but P-tuning needs at least one ([P] or [P:n])",
        quote(.template)
    )]
    TemplateNoPrompts { template: String },

    #[error("template {} has prompt slots, but a manual template must not", quote(.template))]
    TemplateHasPrompts { template: String },

    #[error(
        "template {} puts {what} after [Y], which a causal LM never sees before predicting the object; move it before [Y]",
        quote(.template)
    )]
    TemplateAfterObject { template: String, what: String },

    #[error("a masked LM spec needs a mask token id, and this one has none")]
    NoMaskToken,

    #[error("a causal LM query ends right before the object, so the spec must have no suffix ids")]
    CausalSuffix,

    #[error(
        "the tokenizer could not encode the template text {}: {}",
        quote(.text),
        short_message(.msg)
    )]
    TemplateText { text: String, msg: String },

    #[error("task file {}: {}", path.display(), short_message(.msg))]
    BadTaskFile { path: PathBuf, msg: String },

    #[error("task {} names no {split} data file; add \"{split}\" under \"data\" in its task file", short(.task))]
    TaskNoData { task: String, split: String },

    #[error(
        "built-in task {name} reads its data files from a folder: pass --task-data DIR (FewGLUE's layout, e.g. DIR/RTE/train.jsonl)"
    )]
    TaskNeedsData { name: String },

    #[error("{} is neither a task file nor a built-in task ({builtins})", quote(.task))]
    UnknownTask { task: String, builtins: String },

    #[error("{} has no examples", path.display())]
    EmptyData { path: PathBuf },

    #[error("label {}: its verbalizer {} cannot be an answer ({reason})", quote(.label), quote(.words))]
    BadVerbalizer {
        label: String,
        words: String,
        reason: &'static str,
    },

    #[error(
        "labels {} and {} have verbalizers that tokenize the same ({ids}), so no model could tell them apart; give one of them other words",
        quote(.first),
        quote(.second)
    )]
    VerbalizersCollide {
        first: String,
        second: String,
        ids: String,
    },

    #[error("cannot build a batch from zero queries")]
    EmptyBatch,

    #[error("batch size must be at least 1")]
    ZeroBatchSize,

    #[error(
        "queries in one batch have {first} and {other} prompt slots; build them from one template"
    )]
    MixedPromptCounts { first: usize, other: usize },

    #[error("{what} index {index} is out of range (there are {len})")]
    IndexOutOfRange {
        what: &'static str,
        index: usize,
        len: usize,
    },

    #[error("object id {id} is outside the score row of length {len}")]
    ObjectOutOfRange { id: u32, len: usize },

    #[error("object id {id} is not in the allowed vocabulary, so it cannot be ranked")]
    ObjectNotAllowed { id: u32 },

    #[error("scores have {len} values, which is not {rows} rows of {width}")]
    ScoreShape {
        len: usize,
        rows: usize,
        width: usize,
    },
}
