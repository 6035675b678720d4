//! The P-tuning forward pass: frozen word embeddings, prompt vectors spliced into their slots,
//! the frozen backbone, and the LM head at each example's target position only.

use anyhow::{Context, Result, bail};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use ptune_backbone::{Backbone, SharedPrefix};
use ptune_data::Batch;
use ptune_encoder::PromptEncoder;
use rayon::prelude::*;

pub use crate::adam::optimizer;
pub use crate::prefix_cache::{FixedPrefix, PrefixCache};

/// A batch as tensors on one device, with the index maps the splice and gather need.
pub struct BatchTensors {
    pub ids: Tensor<2, Int>,
    pub mask: Tensor<2, Int>,
    /// `[B*T]`: which prompt row each position takes (0 where it is not a slot).
    slot_rows: Tensor<1, Int>,
    /// `[B, T, 1]`: 1.0 at prompt slots, 0.0 elsewhere.
    slot_mask: Tensor<3>,
    /// Each example's target position.
    pub targets: Vec<usize>,
    /// Leading positions that groups of examples have in common (see [`shared_prefix`]).
    pub shared_prefix: SharedPrefix,
    /// The leading positions each example's template fixes, when some do: what a
    /// [`PrefixCache`] keeps keys and values of while the prompts do not change.
    pub fixed_prefix: Option<FixedPrefix>,
    pub labels: Tensor<1, Int>,
}

impl BatchTensors {
    pub fn new(batch: &Batch, device: &Device) -> Self {
        let (b, t) = (batch.batch_size, batch.seq_len);
        let ints = |v: Vec<i64>, shape: [usize; 2]| {
            Tensor::<2, Int>::from_data(TensorData::new(v, shape), device)
        };
        let mut slot_rows = vec![0i64; b * t];
        let mut slot_mask = vec![0f32; b * t];
        for (flat, row) in batch.prompt_slots() {
            slot_rows[flat] = row as i64;
            slot_mask[flat] = 1.0;
        }
        let inputs = Inputs {
            batch,
            slot_rows: &slot_rows,
            slot_mask: &slot_mask,
        };
        let lengths = inputs.lengths();
        let shared_prefix = shared_prefix(&inputs, lengths.clone());
        Self {
            fixed_prefix: FixedPrefix::of(&inputs, lengths),
            shared_prefix,
            ids: ints(batch.input_ids.iter().map(|&i| i as i64).collect(), [b, t]),
            mask: ints(
                batch.attention_mask.iter().map(|&m| m as i64).collect(),
                [b, t],
            ),
            slot_rows: Tensor::from_data(TensorData::new(slot_rows, [b * t]), device),
            slot_mask: Tensor::from_data(TensorData::new(slot_mask, [b, t, 1]), device),
            targets: batch.target_positions.clone(),
            labels: Tensor::from_data(
                TensorData::new(
                    batch
                        .object_ids
                        .iter()
                        .map(|&i| i as i64)
                        .collect::<Vec<_>>(),
                    [b],
                ),
                device,
            ),
        }
    }

    /// Puts prompt row `k` at every example's `k`-th slot (in a mixed batch, the row its pack's
    /// stacked prompts give that slot), in one gather and one blend, so gradients reach the
    /// prompts through the gather.
    pub fn splice(&self, embeds: Tensor<3>, prompts: Tensor<2>) -> Tensor<3> {
        let [b, t, h] = embeds.dims();
        let spread = prompts.select(0, self.slot_rows.clone()).reshape([b, t, h]);
        let keep = self.slot_mask.clone().neg() + 1.0;
        embeds * keep + spread * self.slot_mask.clone()
    }
}

/// What a batch holds at each position, for finding the positions examples share.
pub(crate) struct Inputs<'a> {
    pub batch: &'a Batch,
    slot_rows: &'a [i64],
    slot_mask: &'a [f32],
}

/// One position's input: a prompt slot's row (whatever id holds its place), or a token.
pub(crate) type Input = (bool, i64, u32);

impl Inputs<'_> {
    pub fn at(&self, e: usize, p: usize) -> Input {
        let i = e * self.batch.seq_len + p;
        match self.slot_mask[i] > 0.0 {
            true => (true, self.slot_rows[i], 0),
            false => (false, 0, self.batch.input_ids[i]),
        }
    }

    /// Each example's length before its padding; empty when no example is padded.
    fn lengths(&self) -> Vec<usize> {
        let (b, t) = (self.batch.batch_size, self.batch.seq_len);
        let mask = &self.batch.attention_mask;
        let lengths: Vec<usize> = (0..b)
            .map(|e| mask[e * t..(e + 1) * t].iter().sum::<u32>() as usize)
            .collect();
        match lengths.iter().all(|&l| l == t) {
            true => Vec::new(),
            false => lengths,
        }
    }
}

/// Each key's number among the distinct keys, numbered in order of first appearance, and the
/// distinct keys in that order: how examples are put in groups.
pub(crate) fn by_first_appearance<K: PartialEq>(
    keys: impl IntoIterator<Item = K>,
) -> (Vec<usize>, Vec<K>) {
    let mut distinct: Vec<K> = Vec::new();
    let numbers = (keys.into_iter())
        .map(|key| match distinct.iter().position(|k| *k == key) {
            Some(n) => n,
            None => {
                distinct.push(key);
                distinct.len() - 1
            }
        })
        .collect();
    (numbers, distinct)
}

/// The leading positions a causal model can compute once per group of examples: those where
/// the examples of a group hold the same input (the same prompt row, or the same token outside
/// prompt slots) and no padding. Templates that start with prompts, like `[P:3] [X] [P:3] [Y]`,
/// share them within a pack; a mixed batch has a group per pack. Of the possible lengths, the
/// one that saves the most positions, `(B - groups) * len`, is taken. Each example's length
/// goes with it, so that its padding takes no rows either.
fn shared_prefix(inputs: &Inputs, lengths: Vec<usize>) -> SharedPrefix {
    let batch = inputs.batch;
    let (b, t) = (batch.batch_size, batch.seq_len);
    let real = (0..t)
        .take_while(|&p| (0..b).all(|e| batch.attention_mask[e * t + p] == 1))
        .count();
    let mut best = (0, SharedPrefix::none());
    // Examples equal on positions 0..len share a group; the groups split as len grows.
    let mut group = vec![0usize; b];
    for len in 1..=real {
        let keys;
        (group, keys) = by_first_appearance((0..b).map(|e| (group[e], inputs.at(e, len - 1))));
        if keys.len() == b {
            break; // every example alone: longer prefixes share nothing either
        }
        let saved = (b - keys.len()) * len;
        if saved > best.0 {
            best = (
                saved,
                SharedPrefix {
                    len,
                    group: group.clone(),
                    ..SharedPrefix::none()
                },
            );
        }
    }
    SharedPrefix { lengths, ..best.1 }
}

/// Logits `[B, vocab]` at each example's target; `prompts` is `None` for a manual template.
/// With a `cache` (prompts that do not change between its calls), a causal model reuses the
/// keys and values of the positions each template fixes.
pub fn target_logits(
    backbone: &Backbone,
    prompts: Option<Tensor<2>>,
    batch: &BatchTensors,
    cache: Option<&PrefixCache>,
) -> Result<Tensor<2>> {
    let embeds = input_embeds(backbone, prompts, batch);
    let (mask, targets, shared) = (batch.mask.clone(), &batch.targets, &batch.shared_prefix);
    let hidden = match cache.zip(batch.fixed_prefix.as_ref()) {
        Some((cache, fixed)) => {
            cache.forward_rows(backbone, (embeds, mask), targets, (fixed, shared), false)
        }
        None => backbone.forward_rows(embeds, mask, targets, shared, None),
    };
    Ok(backbone.lm_logits(hidden)?)
}

/// The batch's word embeddings with the prompt rows in their slots (`None`: manual template).
pub fn input_embeds(
    backbone: &Backbone,
    prompts: Option<Tensor<2>>,
    batch: &BatchTensors,
) -> Tensor<3> {
    let embeds = backbone.embed_tokens(batch.ids.clone());
    match prompts {
        Some(p) => batch.splice(embeds, p),
        None => embeds,
    }
}

/// A tensor's values on the host as f32. A GPU that fails (out of memory, a buffer larger than
/// the adapter allows) reports it here, as an error instead of a panic.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_data()
        .map_err(|e| device_failed("reading a result", e))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// One sentence for a device failure: burn's report is a chain of causes, whose last line is
/// the one a user can act on (e.g. `can't allocate buffer of size: 154389504`).
fn device_failed(when: &str, error: impl std::fmt::Display) -> anyhow::Error {
    let report = error.to_string();
    let root = report
        .rsplit_once("Caused by:")
        .and_then(|(_, rest)| rest.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or_else(|| report.lines().next().unwrap_or_default());
    anyhow::anyhow!("the device failed {when}: {root}")
}

/// Mean cross-entropy of the target logits against the objects.
pub fn loss(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, labels)
}

/// The prompt matrix: the encoder's output, added to the fixed `anchor` vectors (the manual
/// template's word embeddings) when the prompts start from words.
pub fn prompts(encoder: &PromptEncoder, anchor: Option<&Tensor<2>>) -> Tensor<2> {
    match anchor {
        Some(anchor) => anchor.clone() + encoder.forward(),
        None => encoder.forward(),
    }
}

/// One optimisation step: the prompt matrix is computed once and shared by the whole batch;
/// only the encoder is updated. Returns the updated encoder and the batch loss.
pub fn train_step(
    backbone: &Backbone,
    encoder: PromptEncoder,
    optim: &mut ModuleOptimizer,
    batch: &BatchTensors,
    lr: f64,
    anchor: Option<&Tensor<2>>,
) -> Result<(PromptEncoder, f32)> {
    step_on(encoder, optim, lr, anchor, |prompts| {
        fact_loss(backbone, prompts, batch)
    })
}

/// A LAMA batch's loss under `prompts`: cross-entropy of the object over the vocabulary.
pub fn fact_loss(
    backbone: &Backbone,
    prompts: Tensor<2>,
    batch: &BatchTensors,
) -> Result<Tensor<1>> {
    let logits = target_logits(backbone, Some(prompts), batch, None)?;
    Ok(loss(logits, batch.labels.clone()))
}

/// One optimisation step on any loss of the prompt matrix (a LAMA batch's, a task batch's).
pub fn step_on(
    encoder: PromptEncoder,
    optim: &mut ModuleOptimizer,
    lr: f64,
    anchor: Option<&Tensor<2>>,
    loss_of: impl FnOnce(Tensor<2>) -> Result<Tensor<1>>,
) -> Result<(PromptEncoder, f32)> {
    let (grads, scalar) = grads_on(&encoder, anchor, loss_of)?;
    Ok((optim.step(lr, encoder, grads), scalar))
}

/// The loss of the prompt matrix and the encoder's gradients of it. Nothing is updated, so an
/// error (a device failure, a loss that overflowed) leaves the encoder as it was.
pub fn grads_on(
    encoder: &PromptEncoder,
    anchor: Option<&Tensor<2>>,
    loss_of: impl FnOnce(Tensor<2>) -> Result<Tensor<1>>,
) -> Result<(GradientsParams, f32)> {
    let value = loss_of(prompts(encoder, anchor))?;
    let scalar = loss_scalar(value.clone())?;
    check_finite(scalar)?;
    Ok((
        GradientsParams::from_grads(value.backward(), encoder),
        scalar,
    ))
}

/// Rows below which a group is not worth a core of its own: its matmuls get too thin.
const MIN_GROUP_ROWS: usize = 4;

/// How many row groups to compute a batch of `rows` in at once, each on a core of its own.
/// flex spreads its matmuls over every core but runs each elementwise op (GELU, softmax,
/// norms, their gradients) on one, leaving the others idle a third of a step: groups keep them
/// busy. libtorch on the CPU spreads every op, but waits for its workers at each one's end;
/// groups there run one libtorch thread each (`device::Compute::device`). GPUs keep a batch
/// whole.
pub fn row_groups(device: &Device, rows: usize) -> usize {
    if !cpu_in_groups(device) {
        return 1;
    }
    rayon::current_num_threads()
        .min(rows / MIN_GROUP_ROWS)
        .max(1)
}

/// Whether `device` computes a batch in row groups: the CPU backends.
fn cpu_in_groups(device: &Device) -> bool {
    let device = device.clone().inner();
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    if device == Device::libtorch() {
        return true;
    }
    device == Device::flex()
}

/// [`grads_on`] over a batch in row groups, each weighted by its share of the rows, computed at
/// once (see [`row_groups`]). Each group has an autodiff graph of its own, from its own copy
/// of the prompt matrix; the groups' gradients of it are summed and taken back through the
/// encoder once. With one group it is `grads_on` itself.
pub fn grads_in_groups<G: Sync>(
    encoder: &PromptEncoder,
    anchor: Option<&Tensor<2>>,
    groups: &[(G, f64)],
    loss_of: impl Fn(Tensor<2>, &G) -> Result<Tensor<1>> + Sync,
) -> Result<(GradientsParams, f32)> {
    if let [(group, share)] = groups {
        return grads_on(encoder, anchor, |p| {
            Ok(loss_of(p, group)?.mul_scalar(*share))
        });
    }
    let tracked = prompts(encoder, anchor);
    let fixed = tracked.clone().detach();
    let parts = (groups.par_iter())
        .map(|(group, share)| {
            // `detach` gives each group a leaf of its own, so their graphs stay apart.
            let leaf = fixed.clone().detach().require_grad();
            let value = loss_of(leaf.clone(), group)?.mul_scalar(*share);
            let scalar = loss_scalar(value.clone())?;
            let grads = value.backward();
            let grad = leaf
                .grad(&grads)
                .context("no gradient reached the prompts")?;
            Ok((grad, scalar))
        })
        .collect::<Result<Vec<_>>>()?;
    let scalar: f32 = parts.iter().map(|p| p.1).sum();
    check_finite(scalar)?;
    let sum = (parts.into_iter().map(|p| p.0).reduce(|a, b| a + b)).context("no row groups")?;
    let through_encoder = (tracked * sum.autodiff()).sum();
    let grads = GradientsParams::from_grads(through_encoder.backward(), encoder);
    Ok((grads, scalar))
}

/// A batch as `n` row groups (see [`row_groups`]), each with its share of the rows.
pub fn grouped(batch: &Batch, n: usize, device: &Device) -> Vec<(BatchTensors, f64)> {
    let rows = batch.batch_size as f64;
    (batch.split(n).iter())
        .map(|g| (BatchTensors::new(g, device), g.batch_size as f64 / rows))
        .collect()
}

/// The gradients of a LAMA batch's loss from its row groups.
pub fn fact_grads(
    backbone: &Backbone,
    encoder: &PromptEncoder,
    anchor: Option<&Tensor<2>>,
    groups: &[(BatchTensors, f64)],
) -> Result<(GradientsParams, f32)> {
    grads_in_groups(encoder, anchor, groups, |p, g| fact_loss(backbone, p, g))
}

/// [`target_logits`] of a batch's row groups, computed at once, stacked in row order.
pub fn grouped_logits(
    backbone: &Backbone,
    prompts: Option<&Tensor<2>>,
    groups: &[(BatchTensors, f64)],
    cache: Option<&PrefixCache>,
) -> Result<Tensor<2>> {
    let logits = (groups.par_iter())
        .map(|(g, _)| target_logits(backbone, prompts.cloned(), g, cache))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(logits, 0))
}

/// A loss's value on the host (which waits for the device).
fn loss_scalar(value: Tensor<1>) -> Result<f32> {
    (value.try_into_scalar()).map_err(|e| device_failed("during the training step", e))
}

/// A loss that overflowed stops the run with what to do about it.
pub fn check_finite(loss: f32) -> Result<()> {
    if !loss.is_finite() {
        bail!("the training loss became {loss}; try a smaller --lr");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptune_data::Query;

    /// A causal query: prompt slots at `prompts`, the object predicted from the last id.
    fn query(ids: &[u32], prompts: &[usize]) -> Query {
        Query {
            input_ids: ids.to_vec(),
            prompt_positions: prompts.to_vec(),
            target_position: ids.len() - 1,
            object_id: 0,
            fact_index: 0,
            lead: 0,
        }
    }

    fn prefix_of(rows: &[(&Query, usize)]) -> SharedPrefix {
        let batch = Batch::collate_mixed(rows.iter().copied(), 0).unwrap();
        BatchTensors::new(&batch, &Device::flex()).shared_prefix
    }

    #[test]
    fn one_pack_shares_its_leading_prompts() {
        // The ids holding the slots' places do not matter.
        let (a, b) = (query(&[9, 9, 5, 6], &[0, 1]), query(&[3, 4, 7], &[0, 1]));
        assert_eq!(
            prefix_of(&[(&a, 0), (&b, 0)]),
            SharedPrefix {
                len: 2,
                group: vec![0, 0],
                lengths: vec![4, 3],
                group_lens: Vec::new(),
            }
        );
    }

    /// Two packs (prompt rows from 0 and from 2) with two rows each, and a row of a template
    /// that starts with its subject: a group per pack, the subject row alone.
    #[test]
    fn a_mixed_batch_shares_a_prefix_per_pack() {
        let a = query(&[9, 9, 5, 6], &[0, 1]);
        let b = query(&[9, 9, 7, 8], &[0, 1]);
        let alone = query(&[4, 9, 9, 3], &[1, 2]);
        let rows = [(&a, 0), (&a, 2), (&alone, 4), (&b, 0), (&b, 2)];
        let want = SharedPrefix {
            len: 2,
            group: vec![0, 1, 2, 0, 1],
            lengths: Vec::new(), // no padding to drop
            group_lens: Vec::new(),
        };
        assert_eq!(prefix_of(&rows), want);
    }

    /// The same token in the same place is shared too; prompt rows differ from token ids.
    #[test]
    fn the_longest_saving_prefix_wins_padding_ends_it_and_takes_no_rows() {
        let a = query(&[1, 2, 3, 4, 5], &[]);
        let b = query(&[1, 2, 3, 9], &[]);
        let c = query(&[1, 7, 7, 7, 7], &[]);
        // Length 1: one group saves 2; length 3: groups {a, b}, {c} save 3; padding at 4.
        let want = SharedPrefix {
            len: 3,
            group: vec![0, 0, 1],
            lengths: vec![5, 4, 5],
            group_lens: Vec::new(),
        };
        assert_eq!(prefix_of(&[(&a, 0), (&b, 0), (&c, 0)]), want);
        let prompt = query(&[1, 2, 3, 4], &[0]);
        let unshared = SharedPrefix {
            lengths: vec![5, 4],
            ..SharedPrefix::none()
        };
        assert_eq!(prefix_of(&[(&a, 0), (&prompt, 0)]), unshared);
    }

    /// With each query's lead: the positions before its subject.
    fn led(ids: &[u32], prompts: &[usize], lead: usize) -> Query {
        Query {
            lead,
            ..query(ids, prompts)
        }
    }

    fn fixed_of(rows: &[(&Query, usize)]) -> Option<SharedPrefix> {
        let batch = Batch::collate_mixed(rows.iter().copied(), 0).unwrap();
        let fixed = BatchTensors::new(&batch, &Device::flex()).fixed_prefix;
        fixed.map(|f| f.prefix)
    }

    /// Each query's lead, grouped by the inputs there (here the packs' prompt rows), with the
    /// lengths and each group's length where they differ; a query with no lead is a group
    /// with none. No fixed prefix when no query has a lead, or a lead passes its target.
    #[test]
    fn the_fixed_prefix_is_each_packs_lead() {
        let a = led(&[9, 9, 9, 5, 6], &[0, 1, 2], 3);
        let b = led(&[9, 9, 7, 8], &[0, 1], 2);
        let want = SharedPrefix {
            len: 3,
            group: vec![0, 1, 0],
            lengths: vec![5, 4, 5],
            group_lens: vec![3, 2],
        };
        assert_eq!(fixed_of(&[(&a, 0), (&b, 3), (&a, 0)]), Some(want));
        // Equal subjects are not part of it, unlike the shared prefix.
        assert_eq!(prefix_of(&[(&a, 0), (&a, 0)]).len, 5);
        let same = fixed_of(&[(&a, 0), (&a, 0)]).unwrap();
        assert_eq!((same.len, same.group_lens), (3, Vec::new()));
        let subject_first = query(&[7, 9, 9, 8], &[1, 2]);
        let mixed = fixed_of(&[(&a, 0), (&subject_first, 3)]).unwrap();
        assert_eq!((mixed.len, mixed.group_lens), (3, vec![3, 0]));
        assert_eq!(fixed_of(&[(&subject_first, 3)]), None);
        let past_target = led(&[9, 9, 9], &[0, 1, 2], 3);
        assert_eq!(fixed_of(&[(&past_target, 0)]), None);
    }
}
