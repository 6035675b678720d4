//! Keys and values of the positions a template fixes, kept while the prompts do not change. At
//! evaluation and serving a pack's prompt matrix is fixed, so the leading positions of its
//! template (prompts, and words before the subject) give a causal model the same keys and
//! values in every batch: they are computed once per pack and later batches take no rows for
//! them (see [`ptune_backbone::PrefixKv`]).

use crate::model::{Input, Inputs};
use burn::tensor::{Int, Tensor, TensorData};
use ptune_backbone::{Backbone, Objective, PrefixKv, SharedPrefix};
use std::collections::HashMap;
use std::sync::Mutex;

/// Prefixes kept at most; past it the cache starts again (a server that loads and unloads many
/// packs must not grow without end; one prefix of SmolLM2's 3 prompts is about 140 kB).
const MAX_PREFIXES: usize = 1024;

/// The leading positions every example's template fixes, grouped by what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedPrefix {
    /// The positions (the shortest example's lead), the groups and the examples' lengths.
    pub prefix: SharedPrefix,
    /// Each group's inputs at those positions: the key its keys and values are kept under.
    keys: Vec<Vec<Input>>,
    /// Each group's first example.
    firsts: Vec<usize>,
}

impl FixedPrefix {
    /// `None` when some example's template fixes no leading position (or its lead is
    /// unknown), or the lead reaches a target.
    pub(crate) fn of(inputs: &Inputs, lengths: Vec<usize>) -> Option<Self> {
        let batch = inputs.batch;
        let len = batch.leads.iter().copied().min().unwrap_or(0);
        let first_target = batch.target_positions.iter().copied().min().unwrap_or(0);
        if len == 0 || len > first_target {
            return None;
        }
        let (mut keys, mut firsts, mut group) = (Vec::new(), Vec::new(), Vec::new());
        for e in 0..batch.batch_size {
            let key: Vec<Input> = (0..len).map(|p| inputs.at(e, p)).collect();
            let g = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                firsts.push(e);
                keys.len() - 1
            });
            group.push(g);
        }
        Some(Self {
            prefix: SharedPrefix {
                len,
                group,
                lengths,
            },
            keys,
            firsts,
        })
    }
}

/// Each fixed prefix's keys and values at every layer, for one prompt matrix: make a new cache
/// (or [`clear`](Self::clear) it) when the prompts change.
#[derive(Default)]
pub struct PrefixCache {
    kept: Mutex<HashMap<Vec<Input>, PrefixKv>>,
}

impl PrefixCache {
    /// The keys and values of `fixed`'s groups, stacked in group order; those not kept yet are
    /// computed from `embeds` (the batch's input embeddings, prompts spliced in) in one pass.
    /// `None` for a masked LM, whose prefix depends on what follows it.
    pub fn stored(
        &self,
        backbone: &Backbone,
        embeds: &Tensor<3>,
        fixed: &FixedPrefix,
    ) -> Option<PrefixKv> {
        if backbone.objective() != Objective::Causal {
            return None;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let groups = fixed.keys.len();
        let mut missing: Vec<usize> = (0..groups)
            .filter(|&g| !kept.contains_key(&fixed.keys[g]))
            .collect();
        if kept.len() + missing.len() > MAX_PREFIXES {
            kept.clear();
            missing = (0..groups).collect();
        }
        if !missing.is_empty() {
            let computed = compute(backbone, embeds, fixed, &missing)?;
            for (i, &g) in missing.iter().enumerate() {
                kept.insert(fixed.keys[g].clone(), computed.group(i));
            }
        }
        let parts: Vec<&PrefixKv> = fixed.keys.iter().map(|k| &kept[k]).collect();
        Some(PrefixKv::stack(&parts))
    }

    /// Drops every kept prefix (the prompts changed).
    pub fn clear(&self) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// How many prefixes are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys and values of groups `groups` of `fixed`, from their first examples' embeddings.
fn compute(
    backbone: &Backbone,
    embeds: &Tensor<3>,
    fixed: &FixedPrefix,
    groups: &[usize],
) -> Option<PrefixKv> {
    let device = embeds.device();
    let firsts: Vec<i64> = groups.iter().map(|&g| fixed.firsts[g] as i64).collect();
    let index = Tensor::<1, Int>::from_data(TensorData::new(firsts, [groups.len()]), &device);
    let prefixes = embeds
        .clone()
        .select(0, index)
        .narrow(1, 0, fixed.prefix.len);
    backbone.prefix_kv(prefixes.detach())
}
