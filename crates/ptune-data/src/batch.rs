//! Padded batches of queries as flat integer arrays, and the (seeded) order they come in.

use serde::{Deserialize, Serialize};
use std::ops::Range;

use crate::{Error, Query, Result};
use ptune_host::{SplitMix64, shuffle};

/// Queries padded on the right to the longest one, row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding; same shape as `input_ids`.
    pub attention_mask: Vec<u32>,
    pub batch_size: usize,
    pub seq_len: usize,
    /// Prompt slots per example (equal for all: one template); 0 for manual templates and for
    /// mixed batches.
    pub n_prompts: usize,
    /// `[batch_size, n_prompts]`: example `b`'s slot `k` (taking prompt vector `k`) is at
    /// position `prompt_positions[b * n_prompts + k]` of row `b`. In a mixed batch, each
    /// example's slots in turn, as many as its [`prompt_spans`](Self::prompt_spans) entry says.
    pub prompt_positions: Vec<usize>,
    /// Mixed batches only (rows of several prompt packs, see [`Batch::collate_mixed`]): per
    /// example, the first row of the stacked prompt matrices its slots take, and how many slots
    /// it has. Empty for a one-template batch.
    pub prompt_spans: Vec<(usize, usize)>,
    /// Per example, the position whose output predicts the object.
    pub target_positions: Vec<usize>,
    pub object_ids: Vec<u32>,
    /// Per example, the index of its fact in the list the queries were built from.
    pub fact_indices: Vec<usize>,
    /// Per example, the leading positions its template fixes ([`Query::lead`]); empty when
    /// unknown.
    pub leads: Vec<usize>,
}

impl Batch {
    /// Pads `queries` with `pad_id` into one batch.
    pub fn collate<'q>(queries: impl IntoIterator<Item = &'q Query>, pad_id: u32) -> Result<Self> {
        let queries: Vec<&Query> = queries.into_iter().collect();
        let first = queries.first().ok_or(Error::EmptyBatch)?;
        let n_prompts = first.prompt_positions.len();
        if let Some(q) = queries
            .iter()
            .find(|q| q.prompt_positions.len() != n_prompts)
        {
            return Err(Error::MixedPromptCounts {
                first: n_prompts,
                other: q.prompt_positions.len(),
            });
        }
        Ok(Self::pad(&queries, pad_id, n_prompts))
    }

    /// Pads queries made with different templates and prompt packs into one batch: `rows` pairs
    /// each query with the first row its pack's prompts take in the matrices stacked in one
    /// (its slot `k` takes row `base + k`). One forward pass then serves every pack.
    pub fn collate_mixed<'q>(
        rows: impl IntoIterator<Item = (&'q Query, usize)>,
        pad_id: u32,
    ) -> Result<Self> {
        let (queries, bases): (Vec<&Query>, Vec<usize>) = rows.into_iter().unzip();
        if queries.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let mut batch = Self::pad(&queries, pad_id, 0);
        let counts = queries.iter().map(|q| q.prompt_positions.len());
        batch.prompt_spans = bases.into_iter().zip(counts).collect();
        Ok(batch)
    }

    fn pad(queries: &[&Query], pad_id: u32, n_prompts: usize) -> Self {
        let seq_len = queries.iter().map(|q| q.input_ids.len()).max().unwrap_or(0);
        let mut batch = Self::empty(queries.len(), seq_len, n_prompts);
        for q in queries {
            batch.push_row(q, pad_id);
        }
        batch
    }

    fn empty(batch_size: usize, seq_len: usize, n_prompts: usize) -> Self {
        Self {
            input_ids: Vec::with_capacity(batch_size * seq_len),
            attention_mask: Vec::with_capacity(batch_size * seq_len),
            batch_size,
            seq_len,
            n_prompts,
            prompt_positions: Vec::with_capacity(batch_size * n_prompts),
            prompt_spans: Vec::new(),
            target_positions: Vec::with_capacity(batch_size),
            object_ids: Vec::with_capacity(batch_size),
            fact_indices: Vec::with_capacity(batch_size),
            leads: Vec::with_capacity(batch_size),
        }
    }

    fn push_row(&mut self, q: &Query, pad_id: u32) {
        let pad = self.seq_len - q.input_ids.len();
        self.input_ids.extend(&q.input_ids);
        self.input_ids.extend(std::iter::repeat_n(pad_id, pad));
        self.attention_mask
            .extend(std::iter::repeat_n(1, q.input_ids.len()));
        self.attention_mask.extend(std::iter::repeat_n(0, pad));
        self.prompt_positions.extend(&q.prompt_positions);
        self.target_positions.push(q.target_position);
        self.object_ids.push(q.object_id);
        self.fact_indices.push(q.fact_index);
        self.leads.push(q.lead);
    }

    /// The rows in `groups` consecutive runs of near-equal size (at most one per row), each a
    /// batch of its own with this one's width: what computes them apart, on cores of their own.
    pub fn split(&self, groups: usize) -> Vec<Batch> {
        let rows = self.batch_size;
        let groups = groups.clamp(1, rows.max(1));
        let bounds: Vec<usize> = (0..=groups).map(|g| g * rows / groups).collect();
        bounds.windows(2).map(|w| self.rows(w[0]..w[1])).collect()
    }

    /// Rows `r` as a batch of their own.
    fn rows(&self, r: Range<usize>) -> Batch {
        let t = self.seq_len;
        let slots_before = |row: usize| (0..row).map(|b| self.slot_count(b)).sum::<usize>();
        let slots = slots_before(r.start)..slots_before(r.end);
        let own = |v: &[usize]| v.get(r.clone()).map(<[usize]>::to_vec).unwrap_or_default();
        Batch {
            input_ids: self.input_ids[r.start * t..r.end * t].to_vec(),
            attention_mask: self.attention_mask[r.start * t..r.end * t].to_vec(),
            batch_size: r.len(),
            seq_len: t,
            n_prompts: self.n_prompts,
            prompt_positions: self.prompt_positions[slots].to_vec(),
            prompt_spans: (self.prompt_spans.get(r.clone()).map(<[_]>::to_vec)).unwrap_or_default(),
            target_positions: own(&self.target_positions),
            object_ids: self.object_ids[r.clone()].to_vec(),
            fact_indices: own(&self.fact_indices),
            leads: own(&self.leads),
        }
    }

    /// Row `b` of `input_ids`.
    pub fn row(&self, b: usize) -> &[u32] {
        &self.input_ids[b * self.seq_len..(b + 1) * self.seq_len]
    }

    /// How many prompt slots example `b` has: its span's count in a mixed batch, else every
    /// example's `n_prompts`.
    fn slot_count(&self, b: usize) -> usize {
        self.prompt_spans.get(b).map_or(self.n_prompts, |s| s.1)
    }

    /// Every prompt slot as (index into the flattened `[batch_size * seq_len]` ids, row of the
    /// prompt matrix it takes), example by example: where to scatter which prompt row.
    pub fn prompt_slots(&self) -> Vec<(usize, usize)> {
        let mut positions = self.prompt_positions.iter();
        let mut slots = Vec::with_capacity(self.prompt_positions.len());
        for b in 0..self.batch_size {
            let base = self.prompt_spans.get(b).map_or(0, |s| s.0);
            for (k, &pos) in positions.by_ref().take(self.slot_count(b)).enumerate() {
                slots.push((b * self.seq_len + pos, base + k));
            }
        }
        slots
    }

    /// Target positions as indices into the flattened `[batch_size * seq_len]` ids: where to gather
    /// the hidden states the LM head is applied to.
    pub fn target_flat_indices(&self) -> Vec<usize> {
        let rows = self.target_positions.iter().enumerate();
        rows.map(|(b, &pos)| b * self.seq_len + pos).collect()
    }
}

/// How queries are grouped into batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    pub batch_size: usize,
    /// Shuffle with this seed (a different order each epoch), or keep the query order.
    pub shuffle_seed: Option<u64>,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            batch_size: 8,
            shuffle_seed: None,
            drop_last: false,
        }
    }
}

/// The query indices of each batch for one epoch; the same config, count and epoch always give
/// the same plan, on any platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    batches: Vec<Vec<usize>>,
}

impl BatchPlan {
    /// Plans batches for `n` queries.
    pub fn new(n: usize, config: &BatchConfig, epoch: u64) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::ZeroBatchSize);
        }
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(seed) = config.shuffle_seed {
            shuffle(&mut order, epoch_seed(seed, epoch));
        }
        let mut batches: Vec<Vec<usize>> = order
            .chunks(config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if config.drop_last && batches.last().is_some_and(|b| b.len() < config.batch_size) {
            batches.pop();
        }
        Ok(Self { batches })
    }

    /// Plans batches for these queries.
    pub fn for_queries(queries: &[Query], config: &BatchConfig, epoch: u64) -> Result<Self> {
        Self::new(queries.len(), config, epoch)
    }

    /// Query indices per batch.
    pub fn batches(&self) -> &[Vec<usize>] {
        &self.batches
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Collates batch `i` of the plan from `queries`.
    pub fn batch(&self, i: usize, queries: &[Query], pad_id: u32) -> Result<Batch> {
        let indices = self.batches.get(i).ok_or(Error::IndexOutOfRange {
            what: "batch",
            index: i,
            len: self.batches.len(),
        })?;
        let picked = indices.iter().map(|&j| {
            queries.get(j).ok_or(Error::IndexOutOfRange {
                what: "query",
                index: j,
                len: queries.len(),
            })
        });
        Batch::collate(picked.collect::<Result<Vec<_>>>()?, pad_id)
    }
}

/// The query-order seed of one epoch, derived from the run's seed.
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let base = SplitMix64::new(seed).next_u64();
    SplitMix64::new(base ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(ids: &[u32], prompts: &[usize], target: usize, object: u32) -> Query {
        Query {
            input_ids: ids.to_vec(),
            prompt_positions: prompts.to_vec(),
            target_position: target,
            object_id: object,
            fact_index: object as usize,
            lead: 0,
        }
    }

    #[test]
    fn split_gives_each_group_its_own_rows_slots_and_targets() {
        let a = query(&[5, 0, 7, 9], &[1], 3, 11);
        let b = query(&[5, 0, 8], &[1], 2, 12);
        let c = query(&[6, 0, 8, 4], &[1], 3, 13);
        let whole = Batch::collate([&a, &b, &c], 99).unwrap();
        let one = |qs: &[&Query]| Batch::collate(qs.iter().copied(), 99).unwrap();
        assert_eq!(whole.split(2), [one(&[&a]), one(&[&b, &c])]);
        assert_eq!(whole.split(1), std::slice::from_ref(&whole));
        assert_eq!(whole.split(5).len(), 3, "at most one group per row");
        // Mixed: slots per example differ, each keeps its pack's first row.
        let d = query(&[0, 0, 7, 9], &[0, 1], 3, 14);
        let rows = [(&a, 0), (&d, 1), (&c, 3)];
        let mixed = Batch::collate_mixed(rows, 99).unwrap();
        let parts = mixed.split(2);
        assert_eq!(
            parts[0],
            Batch::collate_mixed(rows[..1].to_vec(), 99).unwrap()
        );
        assert_eq!(
            parts[1],
            Batch::collate_mixed(rows[1..].to_vec(), 99).unwrap()
        );
    }

    #[test]
    fn collate_pads_right_and_masks_padding() {
        let a = query(&[5, 0, 7, 9], &[1], 3, 11);
        let b = query(&[5, 0, 8], &[1], 2, 12);
        let batch = Batch::collate([&a, &b], 99).unwrap();
        assert_eq!(
            (batch.batch_size, batch.seq_len, batch.n_prompts),
            (2, 4, 1)
        );
        assert_eq!(batch.input_ids, [5, 0, 7, 9, 5, 0, 8, 99]);
        assert_eq!(batch.attention_mask, [1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(batch.row(1), [5, 0, 8, 99]);
        assert_eq!(batch.target_positions, [3, 2]);
        assert_eq!(batch.object_ids, [11, 12]);
        assert_eq!(batch.fact_indices, [11, 12]);
        assert_eq!(batch.prompt_slots(), [(1, 0), (5, 0)]);
        assert_eq!(batch.target_flat_indices(), [3, 6]);
    }

    #[test]
    fn prompt_positions_are_per_example_in_slot_order() {
        let a = query(&[1, 0, 0, 4, 0], &[1, 2, 4], 4, 3);
        let b = query(&[0, 0, 3, 0], &[0, 1, 3], 2, 3);
        let batch = Batch::collate([&a, &b], 0).unwrap();
        assert_eq!(batch.prompt_positions, [1, 2, 4, 0, 1, 3]);
        let slots = batch.prompt_slots();
        assert_eq!(slots, [(1, 0), (2, 1), (4, 2), (5, 0), (6, 1), (8, 2)]);
    }

    #[test]
    fn mixed_batches_take_each_rows_prompts_from_its_own_pack() {
        // Pack A (rows 0..2 of the stacked prompts) has two slots, pack B (rows 2..5) three.
        let a = query(&[0, 7, 0], &[0, 2], 1, 3);
        let b = query(&[0, 0, 5, 0], &[0, 1, 3], 2, 4);
        let batch = Batch::collate_mixed([(&a, 0), (&b, 2), (&a, 0)], 9).unwrap();
        assert_eq!((batch.seq_len, batch.n_prompts), (4, 0));
        assert_eq!(batch.prompt_spans, [(0, 2), (2, 3), (0, 2)]);
        let slots = batch.prompt_slots();
        assert_eq!(
            slots,
            [(0, 0), (2, 1), (4, 2), (5, 3), (7, 4), (8, 0), (10, 1)]
        );
        let none: [(&Query, usize); 0] = [];
        assert!(matches!(
            Batch::collate_mixed(none, 0),
            Err(Error::EmptyBatch)
        ));
    }

    #[test]
    fn manual_template_batches_have_no_prompt_slots() {
        let a = query(&[1, 2, 3], &[], 2, 4);
        let batch = Batch::collate([&a], 0).unwrap();
        assert_eq!(batch.n_prompts, 0);
        assert!(batch.prompt_slots().is_empty());
    }

    #[test]
    fn collate_refuses_empty_and_mixed_batches() {
        let none: [&Query; 0] = [];
        assert!(matches!(Batch::collate(none, 0), Err(Error::EmptyBatch)));
        let a = query(&[1, 0], &[1], 1, 2);
        let b = query(&[1, 2], &[], 1, 2);
        let e = Batch::collate([&a, &b], 0).unwrap_err();
        assert!(e.to_string().contains("1 and 0 prompt slots"), "{e}");
    }

    fn config(batch_size: usize, seed: Option<u64>) -> BatchConfig {
        BatchConfig {
            batch_size,
            shuffle_seed: seed,
            drop_last: false,
        }
    }

    #[test]
    fn unshuffled_plans_keep_query_order() {
        let plan = BatchPlan::new(5, &config(2, None), 0).unwrap();
        assert_eq!(plan.batches(), [vec![0, 1], vec![2, 3], vec![4]]);
        let mut drop = config(2, None);
        drop.drop_last = true;
        assert_eq!(BatchPlan::new(5, &drop, 0).unwrap().len(), 2);
        let e = BatchPlan::new(5, &config(0, None), 0).unwrap_err();
        assert!(matches!(e, Error::ZeroBatchSize));
    }

    #[test]
    fn shuffled_plans_are_reproducible_and_vary_by_epoch() {
        let cfg = config(4, Some(7));
        let e0 = BatchPlan::new(10, &cfg, 0).unwrap();
        assert_eq!(e0, BatchPlan::new(10, &cfg, 0).unwrap());
        assert_ne!(e0, BatchPlan::new(10, &cfg, 1).unwrap());
        // Pinned: the plan must not change across platforms or releases.
        assert_eq!(
            e0.batches(),
            [vec![4, 1, 9, 2], vec![5, 8, 0, 7], vec![3, 6]]
        );
        let mut all: Vec<usize> = e0.batches().concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn plan_collates_its_batches() {
        let qs = [query(&[1, 2], &[], 1, 5), query(&[1], &[], 0, 6)];
        let plan = BatchPlan::for_queries(&qs, &config(2, None), 0).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan.batch(0, &qs, 0).unwrap().input_ids, [1, 2, 1, 0]);
        assert!(plan.batch(1, &qs, 0).is_err());
    }
}
