//! Padded batches of queries as flat integer arrays, and the (seeded) order they come in.

use serde::{Deserialize, Serialize};

use crate::{Error, Query, Result, SplitMix64, shuffle};

/// Queries padded on the right to the longest one, row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding; same shape as `input_ids`.
    pub attention_mask: Vec<u32>,
    pub batch_size: usize,
    pub seq_len: usize,
    /// Prompt slots per example (equal for all: one template); 0 for manual templates.
    pub n_prompts: usize,
    /// `[batch_size, n_prompts]`: example `b`'s slot `k` (taking prompt vector `k`) is at
    /// position `prompt_positions[b * n_prompts + k]` of row `b`.
    pub prompt_positions: Vec<usize>,
    /// Per example, the position whose output predicts the object.
    pub target_positions: Vec<usize>,
    pub object_ids: Vec<u32>,
    /// Per example, the index of its fact in the list the queries were built from.
    pub fact_indices: Vec<usize>,
}

impl Batch {
    /// Pads `queries` with `pad_id` into one batch.
    pub fn collate<'q>(queries: impl IntoIterator<Item = &'q Query>, pad_id: u32) -> Result<Self> {
        let queries: Vec<&Query> = queries.into_iter().collect();
        let first = queries.first().ok_or(Error::EmptyBatch)?;
        let n_prompts = first.prompt_positions.len();
        if let Some(q) = queries.iter().find(|q| q.prompt_positions.len() != n_prompts) {
            return Err(Error::MixedPromptCounts {
                first: n_prompts,
                other: q.prompt_positions.len(),
            });
        }
        let seq_len = queries.iter().map(|q| q.input_ids.len()).max().unwrap_or(0);
        let mut batch = Self::empty(queries.len(), seq_len, n_prompts);
        for q in queries {
            batch.push_row(q, pad_id);
        }
        Ok(batch)
    }

    fn empty(batch_size: usize, seq_len: usize, n_prompts: usize) -> Self {
        Self {
            input_ids: Vec::with_capacity(batch_size * seq_len),
            attention_mask: Vec::with_capacity(batch_size * seq_len),
            batch_size,
            seq_len,
            n_prompts,
            prompt_positions: Vec::with_capacity(batch_size * n_prompts),
            target_positions: Vec::with_capacity(batch_size),
            object_ids: Vec::with_capacity(batch_size),
            fact_indices: Vec::with_capacity(batch_size),
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
    }

    /// Row `b` of `input_ids`.
    pub fn row(&self, b: usize) -> &[u32] {
        &self.input_ids[b * self.seq_len..(b + 1) * self.seq_len]
    }

    /// Prompt slots as indices into the flattened `[batch_size * seq_len]` ids, in
    /// `[batch_size, n_prompts]` order: where to scatter the prompt rows.
    pub fn prompt_flat_indices(&self) -> Vec<usize> {
        self.prompt_positions
            .iter()
            .enumerate()
            .map(|(i, &pos)| (i / self.n_prompts) * self.seq_len + pos)
            .collect()
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
    /// Group queries of similar length to reduce padding; batch order is still shuffled.
    pub bucket_by_length: bool,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            batch_size: 8,
            shuffle_seed: None,
            bucket_by_length: false,
            drop_last: false,
        }
    }
}

/// The query indices of each batch for one epoch; the same config, lengths and epoch always give
/// the same plan, on any platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    batches: Vec<Vec<usize>>,
}

impl BatchPlan {
    /// Plans batches for queries of these lengths.
    pub fn new(lengths: &[usize], config: &BatchConfig, epoch: u64) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::ZeroBatchSize);
        }
        let seeds = config.shuffle_seed.map(|s| epoch_seeds(s, epoch));
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        if let Some((order_seed, _)) = seeds {
            shuffle(&mut order, order_seed);
        }
        if config.bucket_by_length {
            // Stable: equal lengths keep their shuffled order.
            order.sort_by_key(|&i| lengths[i]);
        }
        let mut batches: Vec<Vec<usize>> = order
            .chunks(config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if config.drop_last && batches.last().is_some_and(|b| b.len() < config.batch_size) {
            batches.pop();
        }
        if let (true, Some((_, batch_seed))) = (config.bucket_by_length, seeds) {
            shuffle(&mut batches, batch_seed);
        }
        Ok(Self { batches })
    }

    /// Plans batches for these queries.
    pub fn for_queries(queries: &[Query], config: &BatchConfig, epoch: u64) -> Result<Self> {
        let lengths: Vec<usize> = queries.iter().map(|q| q.input_ids.len()).collect();
        Self::new(&lengths, config, epoch)
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

    /// Collates every batch of the plan.
    pub fn collate_all(&self, queries: &[Query], pad_id: u32) -> Result<Vec<Batch>> {
        (0..self.len())
            .map(|i| self.batch(i, queries, pad_id))
            .collect()
    }
}

/// Two independent seeds for one epoch (query order, batch order), derived from the run's seed.
fn epoch_seeds(seed: u64, epoch: u64) -> (u64, u64) {
    let mut rng = SplitMix64::new(seed);
    let base = rng.next_u64();
    let mut epoch_rng = SplitMix64::new(base ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03));
    (epoch_rng.next_u64(), epoch_rng.next_u64())
}
