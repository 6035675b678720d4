//! Ranking the objects of a query set with a fixed prompt matrix (or none: the manual baseline):
//! what training's dev and test scores and `ptune eval` share.

use crate::candidates::{TaskTensors, candidate_scores};
use crate::model::{BatchTensors, PrefixCache, target_logits, to_host};
use anyhow::Result;
use burn::tensor::{Device, Tensor};
use ptune_backbone::{Backbone, Objective};
use ptune_data::task::{ScoreNorm, ScoredExample, TaskBatch};
use ptune_data::{AllowedVocab, Batch, Query, RankStats, metrics};

/// Evaluation batches are bigger than training ones: no activations are kept for backward.
pub const EVAL_BATCH: usize = 16;
/// At most this many examples per evaluation batch of a task. More than [`EVAL_BATCH`]: a
/// causal model computes a passage its examples share once per batch (MultiRC's answers to one
/// paragraph), so the more of them a batch holds, the less is computed again.
const EVAL_EXAMPLES: usize = 64;
/// At most this many rows per evaluation batch of a task (a causal model reads each candidate
/// of several tokens in a row of its own).
const EVAL_ROWS: usize = 256;
/// At most this many outputs scored per evaluation batch of a task: each is a row of logits
/// over the vocabulary (1,024 of SmolLM2's are 200 MB).
const EVAL_OUTPUTS: usize = 1024;
/// At most this many positions computed per evaluation batch of a task: a shared prefix once,
/// then rows × their longest rest. Attention's scores grow with the square of a row's length,
/// so long passages that share nothing (BoolQ's run to 1,100 tokens) go a few to a batch.
const EVAL_TOKENS: usize = 8192;

/// A split's tokenized examples: a relation's queries (ranked over the vocabulary), or a task's
/// scored examples (ranked over their candidates: rank 1 is a right answer).
pub enum Items {
    Facts(Vec<Query>),
    Task(Vec<ScoredExample>, ScoreNorm),
}

impl Items {
    pub fn len(&self) -> usize {
        match self {
            Items::Facts(q) => q.len(),
            Items::Task(e, _) => e.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// 1-based ranks of each item's right answer, in item order, and a task's predictions.
    pub fn rank(
        &self,
        backbone: &Backbone,
        prompts: Option<&Tensor<2>>,
        allowed: &AllowedVocab,
        pad_id: u32,
        device: &Device,
    ) -> Result<CandidateRanks> {
        match self {
            Items::Facts(q) => Ok(CandidateRanks {
                ranks: rank_queries(backbone, prompts, q, allowed, pad_id, device)?,
                best: Vec::new(),
            }),
            Items::Task(e, norm) => rank_candidates(backbone, prompts, e, *norm, pad_id, device),
        }
    }
}

/// Per example, in example order: the right candidate's 1-based rank among its candidates, and
/// the index of the best-scoring candidate (the prediction; none for a relation's queries).
pub struct CandidateRanks {
    pub ranks: Vec<usize>,
    pub best: Vec<usize>,
}

/// Scores every example's candidates: see [`CandidateRanks`].
pub fn rank_candidates(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    examples: &[ScoredExample],
    norm: ScoreNorm,
    pad_id: u32,
    device: &Device,
) -> Result<CandidateRanks> {
    let order = by_length(examples);
    let (mut ranks, mut best) = (vec![0; examples.len()], vec![0; examples.len()]);
    let mut done = 0;
    let causal = backbone.objective() == Objective::Causal;
    for chosen in row_batches(order.iter().map(|&i| &examples[i]), causal) {
        let batch = TaskBatch::collate(&chosen, pad_id)?;
        let tensors = TaskTensors::new(&batch, backbone.vocab_size(), norm, device);
        let scores = to_host(candidate_scores(backbone, prompts.cloned(), &tensors)?)?;
        let gold: Vec<u32> = batch.gold.iter().map(|g| g.unwrap_or(0) as u32).collect();
        let batch_ranks = metrics::ranks(&scores, batch.width, &gold, None)?;
        let batch_best = scores.chunks(batch.width).map(argmax);
        for ((&i, rank), top) in order[done..].iter().zip(batch_ranks).zip(batch_best) {
            (ranks[i], best[i]) = (rank, top);
        }
        done += chosen.len();
    }
    Ok(CandidateRanks { ranks, best })
}

/// The order examples are evaluated in: runs of consecutive examples that share most of their
/// first row (MultiRC's answers to one paragraph, BoolQ's questions on one passage) stay
/// together, so a causal model computes the shared part once per batch; the runs are sorted by
/// their longest row, so a batch pads little (attention is padded to its longest row: on
/// BoolQ's passages of 50 to 500 tokens, in file order, most of a batch was padding).
fn by_length(examples: &[ScoredExample]) -> Vec<usize> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for (i, example) in examples.iter().enumerate() {
        let joins = runs.last().is_some_and(|run| {
            let (a, b) = (first_row(&examples[run[run.len() - 1]]), first_row(example));
            2 * common_len(a, b) >= a.len().min(b.len()).max(1)
        });
        match runs.last_mut() {
            Some(run) if joins => run.push(i),
            _ => runs.push(vec![i]),
        }
    }
    let longest = |run: &Vec<usize>| run.iter().map(|&i| longest_row(&examples[i])).max();
    runs.sort_by_cached_key(longest);
    runs.concat()
}

/// 1-based ranks of each query's object among the allowed vocabulary, in query order.
pub fn rank_queries(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    queries: &[Query],
    allowed: &AllowedVocab,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<usize>> {
    let rows: Vec<(&Query, usize)> = queries.iter().map(|q| (q, 0)).collect();
    let allowed_of = |_| allowed;
    rank_rows(
        backbone, prompts, &rows, allowed_of, pad_id, device, EVAL_BATCH,
    )
}

/// 1-based rank of each row's object among the vocabulary `allowed_of(row index)` allows, in
/// row order. A row is a query and the first row its pack takes in the stacked `prompts`
/// (see [`rows_logits`]), so rows of several packs share batches of `chunk`.
pub fn rank_rows<'a>(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    rows: &[(&Query, usize)],
    allowed_of: impl Fn(usize) -> &'a AllowedVocab,
    pad_id: u32,
    device: &Device,
    chunk: usize,
) -> Result<Vec<usize>> {
    let vocab = backbone.vocab_size();
    let mut ranks = Vec::with_capacity(rows.len());
    // The prompts are fixed for this call.
    let cache = PrefixCache::default();
    for chosen in rows.chunks(chunk.max(1)) {
        let logits = rows_logits(backbone, prompts, chosen, pad_id, device, Some(&cache))?;
        let width = logits.dims()[1];
        let scores = to_host(logits)?;
        for (row, (query, _)) in scores.chunks(width).zip(chosen) {
            let allowed = allowed_of(ranks.len());
            let restrict = (allowed.len() < vocab).then_some(allowed);
            ranks.extend(metrics::ranks(row, width, &[query.object_id], restrict)?);
        }
    }
    Ok(ranks)
}

/// The target logits `[rows, vocab]` of `rows` in one forward pass: each row a query and the
/// first row its pack's prompts take in the stacked `prompts` (packs of any templates mix).
/// `cache`: prefixes kept for these `prompts` (see [`target_logits`]).
pub fn rows_logits(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    rows: &[(&Query, usize)],
    pad_id: u32,
    device: &Device,
    cache: Option<&PrefixCache>,
) -> Result<Tensor<2>> {
    let batch = Batch::collate_mixed(rows.iter().copied(), pad_id)?;
    let tensors = BatchTensors::new(&batch, device);
    target_logits(backbone, prompts.cloned(), &tensors, cache)
}

/// The index of the highest score (the first of equal ones).
fn argmax(scores: &[f32]) -> usize {
    let better = |best: usize, (i, s): (usize, &f32)| if *s > scores[best] { i } else { best };
    scores.iter().enumerate().fold(0, better)
}

/// Examples in order, in batches within the evaluation limits ([`BatchLoad::fits`]: an
/// example with hundreds of candidates, a relation's objects, or one very long passage may
/// fill a batch alone). `causal`: the model computes a prefix its rows share once.
fn row_batches<'a>(
    examples: impl IntoIterator<Item = &'a ScoredExample>,
    causal: bool,
) -> Vec<Vec<&'a ScoredExample>> {
    let mut batches: Vec<Vec<&ScoredExample>> = Vec::new();
    let mut load = BatchLoad::default();
    for example in examples {
        let grown = load.with(example, causal);
        load = match batches.last_mut() {
            Some(batch) if grown.fits() => {
                batch.push(example);
                grown
            }
            _ => {
                batches.push(vec![example]);
                BatchLoad::default().with(example, causal)
            }
        };
    }
    batches
}

/// What an evaluation batch of a task holds so far: enough to tell whether one more example
/// fits its limits.
#[derive(Debug, Default, Clone, Copy)]
struct BatchLoad<'a> {
    examples: usize,
    rows: usize,
    /// Outputs the LM head scores (one `[vocab]` row of logits each).
    outputs: usize,
    longest: usize,
    /// The batch's first row, and how many of its leading tokens every row repeats before its
    /// last token: a causal model computes those once per batch (`model::shared_prefix`).
    first: &'a [u32],
    shared: usize,
}

impl<'a> BatchLoad<'a> {
    fn with(self, example: &'a ScoredExample, causal: bool) -> Self {
        let empty = self.examples == 0;
        let first = if empty {
            first_row(example)
        } else {
            self.first
        };
        let repeats = |ids: &[u32]| match causal {
            true => common_len(first, ids).min(ids.len().saturating_sub(1)),
            false => 0,
        };
        let shared = (example.rows.iter().map(|r| repeats(&r.input_ids)))
            .fold(if empty { usize::MAX } else { self.shared }, usize::min);
        let longest = self.longest.max(longest_row(example));
        Self {
            examples: self.examples + 1,
            rows: self.rows + example.rows.len(),
            outputs: self.outputs + outputs(example),
            longest,
            first,
            shared: shared.min(longest),
        }
    }

    /// The positions a forward pass computes: the shared prefix once, then every row's rest
    /// padded to the longest (what attention's scores and the layers' activations grow with).
    fn positions(&self) -> usize {
        self.shared + self.rows * (self.longest - self.shared)
    }

    /// At most [`EVAL_EXAMPLES`] examples, [`EVAL_ROWS`] rows, [`EVAL_OUTPUTS`] outputs and
    /// [`EVAL_TOKENS`] positions.
    fn fits(&self) -> bool {
        self.examples <= EVAL_EXAMPLES
            && self.rows <= EVAL_ROWS
            && self.outputs <= EVAL_OUTPUTS
            && self.positions() <= EVAL_TOKENS
    }
}

/// An example's first row's tokens (its context, for a task whose candidates have rows of
/// their own).
fn first_row(example: &ScoredExample) -> &[u32] {
    example.rows.first().map_or(&[], |r| &r.input_ids)
}

/// How many leading tokens two rows have in common.
fn common_len(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// How many outputs score an example's candidates: its distinct (row, position) targets.
fn outputs(example: &ScoredExample) -> usize {
    let mut at: Vec<(usize, usize)> = (example.candidates.iter().flatten())
        .map(|t| (t.row, t.position))
        .collect();
    at.sort_unstable();
    at.dedup();
    at.len()
}

/// The token count of an example's longest row (what its batch pads to).
fn longest_row(example: &ScoredExample) -> usize {
    let lens = example.rows.iter().map(|r| r.input_ids.len());
    lens.max().unwrap_or(0)
}

/// P@1, P@10 and MRR of a rank list.
pub fn stats(ranks: &[usize]) -> RankStats {
    let mut stats = RankStats::default();
    for &r in ranks {
        stats.add(r);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptune_data::task::Row;

    fn example(index: usize, input_ids: Vec<u32>) -> ScoredExample {
        let rows = vec![Row {
            input_ids,
            prompt_positions: Vec::new(),
        }];
        ScoredExample {
            rows,
            candidates: Vec::new(),
            gold: None,
            index,
        }
    }

    #[test]
    fn evaluation_keeps_shared_passages_together_and_sorts_by_length() {
        let examples = vec![
            example(0, vec![1, 2, 3, 4, 5, 6, 7, 8]), // passage A, question 1
            example(1, vec![1, 2, 3, 4, 5, 9, 9, 9, 9]), // passage A, question 2
            example(2, vec![7, 7]),                   // short, alone
            example(3, vec![5, 6, 7]),                // shares nothing with 2
            example(4, vec![8; 12]),                  // long, alone
        ];
        // Runs [0, 1] (longest 9), [2] (2), [3] (3), [4] (12), sorted by their longest row.
        assert_eq!(by_length(&examples), vec![2, 3, 0, 1, 4]);
    }

    /// A row of `len` tokens that starts with `passage` (a prefix shared with others) and
    /// ends with `tail` tokens of its own.
    fn row(passage: u32, shared: usize, own: u32, len: usize) -> Vec<u32> {
        let mut ids = vec![passage; shared];
        ids.resize(len, own);
        ids
    }

    fn sizes(examples: &[ScoredExample], causal: bool) -> Vec<usize> {
        row_batches(examples, causal).iter().map(Vec::len).collect()
    }

    #[test]
    fn long_passages_go_fewer_to_a_batch() {
        // Each row its own from the first token: nothing shared.
        let own = |n: usize, len: usize| -> Vec<ScoredExample> {
            (0..n)
                .map(|i| example(i, row(0, 0, i as u32, len)))
                .collect()
        };
        // 64 × 100 = 6400 positions fit in 8192: the example cap binds.
        assert_eq!(sizes(&own(80, 100), true), vec![64, 16]);
        // 7 × 1100 = 7700 positions fit in 8192, 8 do not.
        assert_eq!(sizes(&own(20, 1100), true), vec![7, 7, 6]);
        let alone = [example(0, vec![1; 9000]), example(1, vec![2; 10])];
        assert_eq!(sizes(&alone, true), vec![1, 1]);
    }

    #[test]
    fn a_shared_passage_counts_once_for_a_causal_model() {
        // 40 answers to one 400-token passage, 30 tokens each after it.
        let answers: Vec<ScoredExample> = (0..40)
            .map(|i| example(i, row(7, 400, 100 + i as u32, 430)))
            .collect();
        // Causal: 400 + 40 × 30 = 1600 positions, one batch; a masked LM computes every row
        // whole: 40 × 430 positions, at most 19 to a batch.
        assert_eq!(sizes(&answers, true), vec![40]);
        assert_eq!(sizes(&answers, false), vec![19, 19, 2]);
        // A second passage shares nothing with the first: joining the batch would count
        // every row whole (41 × 430 positions), so it starts a batch of its own.
        let mut two = answers.clone();
        two.extend((0..40).map(|i| example(40 + i, row(8, 400, 200 + i as u32, 430))));
        assert_eq!(sizes(&two, true), vec![40, 40]);
    }
}
