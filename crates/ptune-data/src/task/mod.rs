//! Tasks beyond single-token facts: named input fields, a template that places them, and an
//! answer chosen among candidates (a label's verbalizer, or choices that come with each example).
//!
//! A task is data (a JSON [`TaskDef`]); its examples are read from jsonl or CSV into
//! [`Example`]s; a [`RowBuilder`] turns an example and its candidates' tokens into the rows the
//! model scores ([`ScoredExample`]); [`TaskBatch`] pads the rows of several examples into one
//! batch. LAMA facts stay the special case "one field, one-token open object" (see `QueryBuilder`).

mod batch;
mod def;
mod example;
mod lama;
pub mod metrics;
mod rows;

pub use batch::TaskBatch;
pub use def::{Answer, BUILTIN_TASKS, ChoiceSource, DataFiles, ScoreNorm, TaskDef};
pub use example::Example;
pub use lama::SUBJECT_FIELD;
pub use rows::{Row, RowBuilder, ScoredExample, Target};
