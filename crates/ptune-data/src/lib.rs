//! Data side of P-tuning: facts, templates, tokenized queries, padded batches and ranking metrics.
//!
//! Everything here is plain Rust and integer arrays; `ptune-train` turns [`Batch`]es into tensors.
//! The pipeline is: [`LamaDataset`] → [`Fact`]s of one relation → with a [`Template`] and a
//! tokenizer described by a [`TokenizerSpec`], a [`QueryBuilder`] makes [`Query`]s (dropping and
//! counting facts whose object is not one allowed token) → [`BatchPlan`] and [`Batch`] pad them →
//! the trainer scores the vocabulary → [`metrics`] turns scores into P@1, P@10 and MRR.

mod batch;
mod encode;
mod error;
mod fact;
mod lama;
pub mod metrics;
mod query;
mod spec;
mod split;
pub mod task;
mod template;
mod text;
mod vocab;

pub use batch::{Batch, BatchConfig, BatchPlan};
pub use error::{Error, Result};
pub use fact::{Fact, MAX_RELATION_ID_CHARS, Relation, Split, check_relation_id};
pub use lama::{LamaDataset, read_facts};
pub use metrics::{MetricsTable, RankStats, Summary};
pub use query::{DropReason, DropReport, Query, QueryBuilder, QuerySet};
pub use spec::{Objective, SpaceStyle, TokenizerSpec};
pub use split::split_60_20_20;
pub use template::{MAX_PROMPTS, Part, Piece, PromptMode, Template};
pub use text::{QUOTE_CHARS, quote, short, short_message, strip_bom};
pub use vocab::{AllowedVocab, VocabList, VocabStrategy, vocab_key_for_model};
