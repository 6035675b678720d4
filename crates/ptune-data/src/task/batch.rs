//! Several scored examples as one padded batch of rows, with the map from each candidate's
//! tokens to the outputs that score them.

use std::collections::BTreeMap;

use super::ScoredExample;
use crate::{Batch, Error, Query, Result};

/// The rows of several examples, padded into one [`Batch`] (whose `target_positions` hold each
/// row's first target), and how candidate scores are read off the outputs at `targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskBatch {
    pub rows: Batch,
    /// `(row, position)` of every output that predicts some candidate token, row by row.
    pub targets: Vec<(usize, usize)>,
    /// Per candidate token: the index in `targets` of the output predicting it, its id and the
    /// candidate slot it counts for (`example * width + candidate`).
    pub token_target: Vec<usize>,
    pub token_ids: Vec<u32>,
    pub token_slot: Vec<usize>,
    pub n_examples: usize,
    /// The most candidates any example has; slots past an example's own count are padding.
    pub width: usize,
    /// Tokens per candidate slot, `[n_examples * width]`; 0 marks padding.
    pub slot_tokens: Vec<usize>,
    pub gold: Vec<Option<usize>>,
    pub example_indices: Vec<usize>,
}

impl TaskBatch {
    /// Pads the examples' rows with `pad_id` into one batch.
    pub fn collate(examples: &[&ScoredExample], pad_id: u32) -> Result<Self> {
        Self::build(examples, None, pad_id)
    }

    /// Pads examples of several tasks' packs into one batch: `bases[e]` is the first row of
    /// example `e`'s pack in the prompt matrices stacked in one (see [`Batch::collate_mixed`]).
    pub fn collate_mixed(
        examples: &[&ScoredExample],
        bases: &[usize],
        pad_id: u32,
    ) -> Result<Self> {
        Self::build(examples, Some(bases), pad_id)
    }

    fn build(examples: &[&ScoredExample], bases: Option<&[usize]>, pad_id: u32) -> Result<Self> {
        if examples.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let width = examples
            .iter()
            .map(|e| e.candidates.len())
            .max()
            .unwrap_or(0);
        let mut queries = Vec::new();
        let mut row_bases = Vec::new();
        let mut targets = Vec::new();
        let mut index = BTreeMap::new();
        let mut batch = Self {
            rows: Batch::default(),
            targets: Vec::new(),
            token_target: Vec::new(),
            token_ids: Vec::new(),
            token_slot: Vec::new(),
            n_examples: examples.len(),
            width,
            slot_tokens: vec![0; examples.len() * width],
            gold: examples.iter().map(|e| e.gold).collect(),
            example_indices: examples.iter().map(|e| e.index).collect(),
        };
        for (e, example) in examples.iter().enumerate() {
            let offset = queries.len();
            for (r, row) in example.rows.iter().enumerate() {
                let positions = example.target_positions(r);
                for &p in &positions {
                    index.insert((offset + r, p), targets.len());
                    targets.push((offset + r, p));
                }
                queries.push(Query {
                    input_ids: row.input_ids.clone(),
                    prompt_positions: row.prompt_positions.clone(),
                    target_position: positions.first().copied().unwrap_or(0),
                    object_id: 0,
                    fact_index: example.index,
                    // Words only: kept across prompt changes (`ScoredExample::lead`).
                    lead: example.lead(r),
                });
                row_bases.push(bases.map_or(0, |b| b[e]));
            }
            for (c, candidate) in example.candidates.iter().enumerate() {
                let slot = e * width + c;
                batch.slot_tokens[slot] = candidate.len();
                for t in candidate {
                    batch
                        .token_target
                        .push(index[&(offset + t.row, t.position)]);
                    batch.token_ids.push(t.token);
                    batch.token_slot.push(slot);
                }
            }
        }
        batch.rows = match bases {
            None => Batch::collate(&queries, pad_id)?,
            Some(_) => Batch::collate_mixed(queries.iter().zip(row_bases), pad_id)?,
        };
        batch.targets = targets;
        Ok(batch)
    }

    /// Whether every row has exactly one target, in row order: then the model needs the final
    /// hidden state at one position per row only.
    pub fn one_target_per_row(&self) -> bool {
        self.targets.len() == self.rows.batch_size
            && self.targets.iter().enumerate().all(|(i, &(r, _))| r == i)
    }
}
