//! Ranking the objects of a query set with a fixed prompt matrix (or none: the manual baseline):
//! what training's dev and test scores and `ptune eval` share.

use crate::candidates::{TaskTensors, scores_keeping_leads};
use crate::model::{PrefixCache, grouped, grouped_logits, row_groups, to_host};
use crate::task_batches::{self, Limits, common_len, first_row, longest_row};
use anyhow::Result;
use burn::tensor::{Device, Tensor};
use ptune_backbone::{Backbone, Objective};
use ptune_data::task::{ScoreNorm, ScoredExample, TaskBatch};
use ptune_data::{AllowedVocab, Batch, Query, RankStats, metrics};

/// Evaluation batches are bigger than training ones: no activations are kept for backward.
pub const EVAL_BATCH: usize = 16;

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
    /// `leads`: a task's passages kept from call to call (see [`rank_candidates`]).
    pub fn rank(
        &self,
        backbone: &Backbone,
        prompts: Option<&Tensor<2>>,
        allowed: &AllowedVocab,
        pad_id: u32,
        (leads, device): (Option<&PrefixCache>, &Device),
    ) -> Result<CandidateRanks> {
        match self {
            Items::Facts(q) => Ok(CandidateRanks {
                ranks: rank_queries(backbone, prompts, q, allowed, pad_id, device)?,
                best: Vec::new(),
            }),
            Items::Task(e, norm) => {
                rank_candidates(backbone, prompts, e, *norm, pad_id, (leads, device))
            }
        }
    }
}

/// Per example, in example order: the right candidate's 1-based rank among its candidates, and
/// the index of the best-scoring candidate (the prediction; none for a relation's queries).
pub struct CandidateRanks {
    pub ranks: Vec<usize>,
    pub best: Vec<usize>,
}

/// Scores every example's candidates: see [`CandidateRanks`]. `leads`: the rows' words before
/// their first prompt, kept from call to call (a split scored after every epoch, whose
/// passages stay the same: see `outlives_prompts` in [`PrefixCache::forward_rows`]); used
/// with `prompts` only, since the manual pattern's rows are words throughout.
pub fn rank_candidates(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    examples: &[ScoredExample],
    norm: ScoreNorm,
    pad_id: u32,
    (leads, device): (Option<&PrefixCache>, &Device),
) -> Result<CandidateRanks> {
    let leads = leads.filter(|_| prompts.is_some());
    let order = by_length(examples);
    let (mut ranks, mut best) = (vec![0; examples.len()], vec![0; examples.len()]);
    let mut done = 0;
    let causal = backbone.objective() == Objective::Causal;
    for chosen in task_batches::within(order.iter().map(|&i| &examples[i]), causal, &Limits::EVAL) {
        let batch = TaskBatch::collate(&chosen, pad_id)?;
        let tensors = TaskTensors::new(&batch, backbone.vocab_size(), norm, device);
        let scores = scores_keeping_leads(backbone, prompts.cloned(), &tensors, leads)?;
        let scores = to_host(scores)?;
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

/// The target logits `[rows, vocab]` of `rows` in one batch, computed in the row groups the
/// device takes at once ([`row_groups`]): each row a query and the first row its pack's prompts
/// take in the stacked `prompts` (packs of any templates mix).
/// `cache`: prefixes kept for these `prompts` (see [`target_logits`](crate::model::target_logits)).
pub fn rows_logits(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    rows: &[(&Query, usize)],
    pad_id: u32,
    device: &Device,
    cache: Option<&PrefixCache>,
) -> Result<Tensor<2>> {
    let batch = Batch::collate_mixed(rows.iter().copied(), pad_id)?;
    let groups = grouped(&batch, row_groups(device, rows.len()), device);
    grouped_logits(backbone, prompts, &groups, cache)
}

/// The index of the highest score (the first of equal ones).
fn argmax(scores: &[f32]) -> usize {
    let better = |best: usize, (i, s): (usize, &f32)| if *s > scores[best] { i } else { best };
    scores.iter().enumerate().fold(0, better)
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
    use crate::task_batches::tests::example;

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
}
