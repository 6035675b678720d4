//! Ranking the objects of a query set with a fixed prompt matrix (or none: the manual baseline):
//! what training's dev and test scores and `ptune eval` share.

use crate::model::{BatchTensors, target_logits, to_host};
use anyhow::Result;
use burn::tensor::{Device, Tensor};
use ptune_backbone::Backbone;
use ptune_data::{AllowedVocab, BatchConfig, BatchPlan, Query, RankStats, metrics};

/// Evaluation batches are bigger than training ones: no activations are kept for backward.
const EVAL_BATCH: usize = 16;

/// 1-based ranks of each query's object among the allowed vocabulary, in query order.
pub fn rank_queries(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    queries: &[Query],
    allowed: &AllowedVocab,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<usize>> {
    let config = BatchConfig {
        batch_size: EVAL_BATCH,
        ..BatchConfig::default()
    };
    let plan = BatchPlan::for_queries(queries, &config, 0)?;
    let restrict = (allowed.len() < backbone.vocab_size()).then_some(allowed);
    let mut ranks = vec![0; queries.len()];
    for i in 0..plan.len() {
        let batch = plan.batch(i, queries, pad_id)?;
        let tensors = BatchTensors::new(&batch, device);
        let logits = target_logits(backbone, prompts.cloned(), &tensors)?;
        let width = logits.dims()[1];
        let scores = to_host(logits)?;
        let batch_ranks = metrics::ranks(&scores, width, &batch.object_ids, restrict)?;
        for (&query, rank) in plan.batches()[i].iter().zip(batch_ranks) {
            ranks[query] = rank;
        }
    }
    Ok(ranks)
}

/// P@1, P@10 and MRR of a rank list.
pub fn stats(ranks: &[usize]) -> RankStats {
    let mut stats = RankStats::default();
    for &r in ranks {
        stats.add(r);
    }
    stats
}
