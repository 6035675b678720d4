//! Keys and values of the positions a template fixes, kept while the prompts do not change. At
//! evaluation and serving a pack's prompt matrix is fixed, so the leading positions of its
//! template (prompts, and words before the subject) give a causal model the same keys and
//! values in every batch: they are computed once per pack and later batches take no rows for
//! them (see [`ptune_backbone::PrefixKv`]).

use crate::model::{Input, Inputs};
use burn::tensor::{Int, Tensor, TensorData};
use ptune_backbone::{Backbone, Objective, PrefixKv, SharedPrefix};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Prefixes kept at most; past it the cache starts again (a server that loads and unloads many
/// packs must not grow without end; one prefix of SmolLM2's 3 prompts is about 140 kB).
const MAX_PREFIXES: usize = 1024;

/// The leading positions each example's template fixes, grouped by what they hold. Packs
/// whose templates fix different lengths (or none: a template that starts with its subject)
/// mix: each group keeps its own length and each example's rest starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedPrefix {
    /// The positions (the longest group's), the groups, each group's length where they differ
    /// and the examples' lengths.
    pub prefix: SharedPrefix,
    /// Each group's inputs at its positions: the key its keys and values are kept under
    /// (empty for a group with none).
    keys: Vec<Vec<Input>>,
    /// Each group's first example.
    firsts: Vec<usize>,
}

impl FixedPrefix {
    /// `None` when no example's template fixes a leading position, some example's lead is
    /// unknown, or a lead passes its target.
    pub(crate) fn of(inputs: &Inputs, lengths: Vec<usize>) -> Option<Self> {
        let batch = inputs.batch;
        let leads = &batch.leads;
        let known = leads.len() == batch.batch_size && !leads.is_empty();
        let before = leads
            .iter()
            .zip(&batch.target_positions)
            .all(|(l, t)| l <= t);
        let len = leads.iter().copied().max().unwrap_or(0);
        if !known || !before || len == 0 {
            return None;
        }
        let (mut keys, mut firsts, mut group) = (Vec::new(), Vec::new(), Vec::new());
        for (e, &lead) in leads.iter().enumerate() {
            let key: Vec<Input> = (0..lead).map(|p| inputs.at(e, p)).collect();
            let g = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                firsts.push(e);
                keys.len() - 1
            });
            group.push(g);
        }
        let lens: Vec<usize> = keys.iter().map(Vec::len).collect();
        let ragged = lens.iter().any(|&l| l != len);
        Some(Self {
            prefix: SharedPrefix {
                len,
                group,
                lengths,
                group_lens: if ragged { lens } else { Vec::new() },
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
    kept: Mutex<Kept>,
}

/// The kept prefixes, all padded with zeros to one width (the longest lead kept), so that a
/// batch of any packs stacks them with one `cat` per layer; the empty key holds a prefix
/// that is all padding, for rows whose template fixes nothing.
#[derive(Default)]
struct Kept {
    entries: HashMap<Vec<Input>, PrefixKv>,
    width: usize,
}

impl Kept {
    fn insert(&mut self, key: Vec<Input>, kv: PrefixKv) {
        if kv.len() > self.width {
            self.width = kv.len();
            for entry in self.entries.values_mut() {
                *entry = entry.padded(self.width);
            }
        }
        self.entries.insert(key, kv.padded(self.width));
    }
}

impl PrefixCache {
    /// The keys and values of `fixed`'s groups, stacked in group order, with the layout they
    /// go with (`fixed.prefix` at the cache's width); those not kept yet are computed from
    /// `embeds` (the batch's input embeddings, prompts spliced in), one pass per length.
    /// `None` for a masked LM, whose prefix depends on what follows it.
    pub fn stored(
        &self,
        backbone: &Backbone,
        embeds: &Tensor<3>,
        fixed: &FixedPrefix,
    ) -> Option<(PrefixKv, SharedPrefix)> {
        if backbone.objective() != Objective::Causal {
            return None;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let keys = &fixed.keys;
        let led = |g: &usize| !keys[*g].is_empty();
        let mut missing: Vec<usize> = (0..keys.len())
            .filter(|g| led(g) && !kept.entries.contains_key(&keys[*g]))
            .collect();
        if kept.entries.len() + missing.len() >= MAX_PREFIXES {
            *kept = Kept::default();
            missing = (0..keys.len()).filter(led).collect();
        }
        for (groups, computed) in compute(backbone, embeds, fixed, &missing)? {
            for (i, g) in groups.into_iter().enumerate() {
                kept.insert(keys[g].clone(), computed.group(i));
            }
        }
        let none = Vec::new();
        if keys.contains(&none) && !kept.entries.contains_key(&none) {
            let like = kept.entries.values().next()?;
            let zeros = PrefixKv::zeros(like, kept.width);
            kept.insert(none, zeros);
        }
        let parts: Vec<&PrefixKv> = keys.iter().map(|k| &kept.entries[k]).collect();
        let lens: Vec<usize> = keys.iter().map(Vec::len).collect();
        let width = kept.width;
        let layout = SharedPrefix {
            len: width,
            group_lens: match lens.iter().all(|&l| l == width) {
                true => Vec::new(),
                false => lens,
            },
            ..fixed.prefix.clone()
        };
        Some((PrefixKv::stack(&parts), layout))
    }

    /// Drops every kept prefix (the prompts changed).
    pub fn clear(&self) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Kept::default();
    }

    /// How many prefixes are kept (the all-padding one included).
    pub fn len(&self) -> usize {
        (self.kept.lock().unwrap_or_else(|e| e.into_inner()))
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys and values of groups `groups` of `fixed`, from their first examples' embeddings:
/// one pass per prefix length, each with the groups of that length.
fn compute(
    backbone: &Backbone,
    embeds: &Tensor<3>,
    fixed: &FixedPrefix,
    groups: &[usize],
) -> Option<Vec<(Vec<usize>, PrefixKv)>> {
    let device = embeds.device();
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &g in groups {
        by_len.entry(fixed.keys[g].len()).or_default().push(g);
    }
    (by_len.into_iter())
        .map(|(len, groups)| {
            let firsts: Vec<i64> = groups.iter().map(|&g| fixed.firsts[g] as i64).collect();
            let index = TensorData::new(firsts, [groups.len()]);
            let index = Tensor::<1, Int>::from_data(index, &device);
            let prefixes = embeds.clone().select(0, index).narrow(1, 0, len);
            Some((groups, backbone.prefix_kv(prefixes.detach())?))
        })
        .collect()
}
