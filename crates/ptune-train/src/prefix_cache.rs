//! Keys and values of the positions a template fixes, kept while the prompts do not change. At
//! evaluation and serving a pack's prompt matrix is fixed, so the leading positions of its
//! template (prompts, and words before the subject) give a causal model the same keys and
//! values in every batch: they are kept from the first batch that computes them, and later
//! batches take no rows for them (see [`ptune_backbone::PrefixKv`]). A task row's lead is
//! words only (its passage before the first prompt slot): its keys and values never change, so
//! one cache serves a whole training run (`outlives_prompts` in [`PrefixCache::forward_rows`]).

use crate::model::{Input, Inputs, by_first_appearance};
use burn::tensor::{Int, Tensor, TensorData};
use ptune_backbone::{Backbone, Objective, PrefixKv, SharedPrefix};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Prefixes kept at most; past it the cache starts again (a server that loads and unloads many
/// packs must not grow without end; one prefix of SmolLM2's 3 prompts is about 140 kB).
const MAX_PREFIXES: usize = 1024;

/// Bytes kept at most, padding included: long prefixes (passages) fill this before the count.
/// SmolLM2's keys and values take 46 kB a position in f32: 2 GiB hold 32 passages of 1,400
/// tokens (FewGLUE's MultiRC and BoolQ training sets have 32 passages each).
const MAX_BYTES: usize = 2 << 30;

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
        let inputs_before = |(e, &lead): (usize, &usize)| -> Vec<Input> {
            (0..lead).map(|p| inputs.at(e, p)).collect()
        };
        let (group, keys) = by_first_appearance(leads.iter().enumerate().map(inputs_before));
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
        })
    }

    /// Whether every group's prefix is words only (no prompt slot): then its keys and values
    /// hold whatever the prompts become.
    pub fn words_only(&self) -> bool {
        self.keys.iter().flatten().all(|&(prompt, _, _)| !prompt)
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
    /// Starts again when `fixed`'s prefixes would pass [`MAX_PREFIXES`] or [`MAX_BYTES`].
    fn make_room(&mut self, fixed: &FixedPrefix) {
        let new = fixed.keys.iter().filter(|k| !self.entries.contains_key(*k));
        let count = self.entries.len() + new.count();
        let width = self.width.max(fixed.prefix.len);
        // One position's keys and values over all layers, as any kept prefix has them.
        let per_position = (self.entries.values().next()).map_or(0, PrefixKv::bytes_per_position);
        if count >= MAX_PREFIXES || count * width * per_position > MAX_BYTES {
            *self = Kept::default();
        }
    }

    /// `fixed`'s groups with a prefix not kept yet.
    fn missing(&self, fixed: &FixedPrefix) -> Vec<usize> {
        let keys = &fixed.keys;
        (0..keys.len())
            .filter(|&g| !keys[g].is_empty() && !self.entries.contains_key(&keys[g]))
            .collect()
    }

    /// `fixed`'s groups' prefixes stacked in group order (every group's prefix kept), with the
    /// layout they go with: `fixed.prefix` at the cache's width.
    fn stacked(&mut self, fixed: &FixedPrefix) -> (PrefixKv, SharedPrefix) {
        let none = Vec::new();
        if fixed.keys.contains(&none) && !self.entries.contains_key(&none) {
            let like = self.entries.values().next().expect("a group with a prefix");
            self.insert(none, PrefixKv::zeros(like, self.width));
        }
        let parts: Vec<&PrefixKv> = fixed.keys.iter().map(|k| &self.entries[k]).collect();
        let lens: Vec<usize> = fixed.keys.iter().map(Vec::len).collect();
        let width = self.width;
        let layout = SharedPrefix {
            len: width,
            group_lens: match lens.iter().all(|&l| l == width) {
                true => Vec::new(),
                false => lens,
            },
            ..fixed.prefix.clone()
        };
        (PrefixKv::stack(&parts), layout)
    }

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
    /// The batch's final hidden states at `targets` (see [`Backbone::forward_rows`]), its
    /// groups' fixed prefixes taken from the cache. Prefixes not kept yet are kept from this
    /// pass when the batch's prefixes have one length, else computed first, one pass per
    /// length. A masked LM, whose prefix depends on what follows it, runs with `fallback`.
    ///
    /// `outlives_prompts`: the cache is kept while the prompts change (a training run's, or
    /// one for a split scored after every epoch). Only prefixes of words then
    /// ([`FixedPrefix::words_only`], else `fallback`), always computed apart and untracked (a
    /// training pass tracks the rest only). A MultiRC step's 8 answers to 400-token passages
    /// trains on their ~40 positions after the passage, not 3,200.
    pub fn forward_rows(
        &self,
        backbone: &Backbone,
        (embeds, mask): (Tensor<3>, Tensor<2, Int>),
        targets: &[usize],
        (fixed, fallback): (&FixedPrefix, &SharedPrefix),
        outlives_prompts: bool,
    ) -> Tensor<2> {
        let words = !outlives_prompts || fixed.words_only();
        let fits = backbone.objective() == Objective::Causal && words;
        if !fits {
            return backbone.forward_rows(embeds, mask, targets, fallback, None);
        }
        let mut kept = self.lock();
        kept.make_room(fixed);
        let missing = kept.missing(fixed);
        if !outlives_prompts && !missing.is_empty() && !fixed.prefix.ragged() {
            let (out, computed) =
                backbone.forward_rows_keeping(embeds, mask, targets, &fixed.prefix);
            if let Some(computed) = computed {
                for g in missing {
                    kept.insert(fixed.keys[g].clone(), computed.group(g));
                }
            }
            return out;
        }
        // The missing prefixes computed apart, their inputs detached: nothing is tracked.
        for (groups, computed) in compute(backbone, &embeds, fixed, &missing) {
            for (i, g) in groups.into_iter().enumerate() {
                kept.insert(fixed.keys[g].clone(), computed.group(i));
            }
        }
        let (kv, layout) = kept.stacked(fixed);
        // Row groups computed at once (`row_groups`) share the cache: not the forward pass.
        drop(kept);
        backbone.forward_rows(embeds, mask, targets, &layout, Some(&kv))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every kept prefix (the prompts changed).
    pub fn clear(&self) {
        *self.lock() = Kept::default();
    }

    /// How many prefixes are kept (the all-padding one included).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys and values of groups `groups` of `fixed` (of a causal model), from their first
/// examples' embeddings: one pass per prefix length, each with the groups of that length.
fn compute(
    backbone: &Backbone,
    embeds: &Tensor<3>,
    fixed: &FixedPrefix,
    groups: &[usize],
) -> Vec<(Vec<usize>, PrefixKv)> {
    let device = embeds.device();
    let firsts = fixed.prefix.firsts();
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &g in groups {
        by_len.entry(fixed.keys[g].len()).or_default().push(g);
    }
    (by_len.into_iter())
        .map(|(len, groups)| {
            let rows: Vec<i64> = groups.iter().map(|&g| firsts[g] as i64).collect();
            let index = TensorData::new(rows, [groups.len()]);
            let index = Tensor::<1, Int>::from_data(index, &device);
            let prefixes = embeds.clone().select(0, index).narrow(1, 0, len);
            let kv = backbone.prefix_kv(prefixes.detach());
            (groups, kv.expect("a causal model"))
        })
        .collect()
}
