//! Scoring a task's candidate answers: the log-probability of each candidate's tokens at the
//! outputs that predict them, combined per candidate (sum, or mean), then cross-entropy over each
//! example's candidates (PET's objective). The LM head runs only at those outputs.

use anyhow::Result;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ptune_backbone::Backbone;
use ptune_data::task::{ScoreNorm, ScoredExample, TaskBatch};
use ptune_encoder::PromptEncoder;

use crate::model::{BatchTensors, PrefixCache, grads_in_groups, input_embeds, loss, row_groups};

/// Added to the score of a padded candidate slot: no real candidate scores this low.
const ABSENT: f32 = -1e9;

/// A [`TaskBatch`] as tensors.
pub struct TaskTensors {
    pub rows: BatchTensors,
    /// `(row, position)` of every target; `None` when each row has exactly one target (the
    /// rows' own `targets`).
    targets: Option<Vec<(usize, usize)>>,
    /// Per candidate token: `target * vocab + token`, into the flattened log-probabilities.
    token_index: Tensor<1, Int>,
    /// `[n_examples * width, n_tokens]`: how much each token counts for each candidate slot.
    weights: Tensor<2>,
    /// `[n_examples, width]`: 0 for a candidate, [`ABSENT`] for padding.
    padding: Tensor<2>,
    /// Each example's right candidate (0 where the data has none).
    pub gold: Tensor<1, Int>,
    n_examples: usize,
    width: usize,
}

impl TaskTensors {
    pub fn new(batch: &TaskBatch, vocab: usize, norm: ScoreNorm, device: &Device) -> Self {
        let (e, w) = (batch.n_examples, batch.width);
        let n_tok = batch.token_ids.len();
        let index: Vec<i64> = (batch.token_target.iter().zip(&batch.token_ids))
            .map(|(&t, &id)| (t * vocab + id as usize) as i64)
            .collect();
        let mut weights = vec![0f32; e * w * n_tok];
        for (k, &slot) in batch.token_slot.iter().enumerate() {
            weights[slot * n_tok + k] = match norm {
                ScoreNorm::Sum => 1.0,
                ScoreNorm::Mean => 1.0 / batch.slot_tokens[slot] as f32,
            };
        }
        let padding = batch
            .slot_tokens
            .iter()
            .map(|&n| if n == 0 { ABSENT } else { 0.0 });
        let gold = batch.gold.iter().map(|g| g.unwrap_or(0) as i64);
        Self {
            rows: BatchTensors::new(&batch.rows, device),
            targets: (!batch.one_target_per_row()).then(|| batch.targets.clone()),
            token_index: Tensor::from_data(TensorData::new(index, [n_tok]), device),
            weights: Tensor::from_data(TensorData::new(weights, [e * w, n_tok]), device),
            padding: Tensor::from_data(
                TensorData::new(padding.collect::<Vec<_>>(), [e, w]),
                device,
            ),
            gold: Tensor::from_data(TensorData::new(gold.collect::<Vec<_>>(), [e]), device),
            n_examples: e,
            width: w,
        }
    }
}

/// `[n_examples, width]` candidate scores; padded slots score [`ABSENT`]. `prompts` is `None`
/// for the manual pattern.
pub fn candidate_scores(
    backbone: &Backbone,
    prompts: Option<Tensor<2>>,
    batch: &TaskTensors,
) -> Result<Tensor<2>> {
    scores_keeping_leads(backbone, prompts, batch, None)
}

/// [`candidate_scores`] with each row's lead (its words before the first prompt slot) taken
/// from `leads`, which keeps them from call to call (a training run's cache: see
/// `outlives_prompts` in [`PrefixCache::forward_rows`]). Rows with one target each, on a
/// causal model.
pub fn scores_keeping_leads(
    backbone: &Backbone,
    prompts: Option<Tensor<2>>,
    batch: &TaskTensors,
    leads: Option<&PrefixCache>,
) -> Result<Tensor<2>> {
    let embeds = input_embeds(backbone, prompts, &batch.rows);
    let mask = batch.rows.mask.clone();
    let shared = &batch.rows.shared_prefix;
    let fixed = batch.rows.fixed_prefix.as_ref();
    let hidden = match (&batch.targets, leads.zip(fixed)) {
        (None, Some((cache, fixed))) => {
            let inputs = (embeds, mask);
            cache.forward_rows(backbone, inputs, &batch.rows.targets, (fixed, shared), true)
        }
        (None, None) => backbone.forward_rows(embeds, mask, &batch.rows.targets, shared, None),
        (Some(targets), _) => backbone.forward_targets(embeds, mask, targets, shared),
    };
    let log_probs = log_softmax(backbone.lm_logits(hidden)?, 1);
    let [n, v] = log_probs.dims();
    let tokens = log_probs
        .reshape([n * v])
        .select(0, batch.token_index.clone());
    let n_tok = tokens.dims()[0];
    let scores = batch.weights.clone().matmul(tokens.reshape([n_tok, 1]));
    Ok(scores.reshape([batch.n_examples, batch.width]) + batch.padding.clone())
}

/// Mean cross-entropy over each example's candidates against its right one.
pub fn task_loss(scores: Tensor<2>, batch: &TaskTensors) -> Tensor<1> {
    loss(scores, batch.gold.clone())
}

/// The encoder's gradient of the task loss over a step's examples, and that loss, computed a
/// part at a time (`task_batches::within` with `Limits::TRAIN`) so that only one part's
/// activations are held: each part's mean loss weighted by its share of the examples, so the
/// parts' gradients sum to the whole batch's; a part's rows are computed in the groups the
/// device takes at once ([`row_groups`]). `leads`: a cache of the rows' leads kept for
/// the whole run (see [`scores_keeping_leads`]).
#[allow(clippy::too_many_arguments)] // the model, the parts, how they score, where to keep
pub fn task_grads(
    backbone: &Backbone,
    encoder: &PromptEncoder,
    anchor: Option<&Tensor<2>>,
    parts: &[Vec<&ScoredExample>],
    norm: ScoreNorm,
    pad_id: u32,
    leads: Option<&PrefixCache>,
    device: &Device,
) -> Result<(GradientsParams, f32)> {
    let total = parts.iter().map(Vec::len).sum::<usize>() as f64;
    let mut sum = GradientsAccumulator::new();
    let mut loss = 0.0;
    for part in parts {
        // Each part's rows in the groups the device computes at once (see `row_groups`).
        let size = part.len().div_ceil(row_groups(device, part.len()));
        let groups = (part.chunks(size.max(1)))
            .map(|group| {
                let batch = TaskBatch::collate(group, pad_id)?;
                let tensors = TaskTensors::new(&batch, backbone.vocab_size(), norm, device);
                Ok((tensors, group.len() as f64 / total))
            })
            .collect::<Result<Vec<_>>>()?;
        let (grads, part_loss) = grads_in_groups(encoder, anchor, &groups, |prompts, t| {
            let scores = scores_keeping_leads(backbone, Some(prompts), t, leads)?;
            Ok(task_loss(scores, t))
        })?;
        sum.accumulate(encoder, grads);
        loss += part_loss;
    }
    Ok((sum.grads(), loss))
}
