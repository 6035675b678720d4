//! Causal batches as one matrix of rows. When groups of examples have the same first `p`
//! positions (a template's leading prompts: in a mixed batch, one group per prompt pack), the
//! rows are each group's prefix (`G * p` rows, from the group's first example) then every
//! example's rest: a prefix is computed once per group and each example attends to its group's
//! keys and values. When the examples' lengths are given, the rest holds only their real
//! positions (padding takes no row: the projections and feed-forward skip it; attention
//! gathers the rows back into a padded `[B, T - p]` layout). Without either, the rows are
//! simply `B * T`, at no extra cost. Each projection runs as one matmul over all rows, so no
//! weight is read twice. When the prefixes' keys and values were computed earlier
//! ([`PrefixKv`]: a pack's leading prompts no longer change at evaluation), the prefixes take
//! no rows at all.

use crate::attention::{MASKED, Rows, attend, merge_heads, split_heads, through_layers};
use crate::index::index_tensor;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Leading positions that groups of examples share exactly (ids and prompt vectors, no
/// padding): a causal model computes them once per group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedPrefix {
    /// How many leading positions (with `group_lens`: the longest group's).
    pub len: usize,
    /// Each example's group, numbered from 0 in order of first appearance; empty: one group.
    pub group: Vec<usize>,
    /// Each example's length before its padding (padding comes last): only these positions
    /// take rows. Empty: every position does.
    pub lengths: Vec<usize>,
    /// Each group's own prefix length when they differ (0 allowed: a row whose template
    /// starts with its subject); empty: every group's is `len`. Only with stored keys and
    /// values ([`PrefixKv::padded`]): each example's rest starts after its own prefix.
    pub group_lens: Vec<usize>,
}

impl SharedPrefix {
    /// Nothing shared.
    pub fn none() -> Self {
        Self::default()
    }

    /// The first `len` positions are the same in every example.
    pub fn all(len: usize) -> Self {
        Self {
            len,
            ..Self::default()
        }
    }

    /// The same prefix at most `len` long: sharing a shorter prefix keeps the groups right.
    pub fn capped(&self, len: usize) -> Self {
        Self {
            len: self.len.min(len),
            group_lens: self.group_lens.iter().map(|&l| l.min(len)).collect(),
            ..self.clone()
        }
    }

    /// How many groups share a prefix (one when every example does).
    pub fn groups(&self) -> usize {
        self.firsts().len().max(1)
    }

    /// Example `e`'s group.
    pub fn group_of(&self, e: usize) -> usize {
        self.group.get(e).copied().unwrap_or(0)
    }

    /// Whether groups have prefixes of different lengths.
    pub fn ragged(&self) -> bool {
        !self.group_lens.is_empty()
    }

    /// Example `e`'s prefix length: its group's.
    pub fn prefix_of(&self, e: usize) -> usize {
        match self.ragged() {
            true => self.group_lens[self.group_of(e)],
            false => self.len,
        }
    }

    /// The rest's padded width for `b` examples of `t` positions: `t` less the prefix, or with
    /// prefixes of several lengths the longest rest (a short passage's answer and a long
    /// one's pad to the longer answer, not to the longer passage).
    pub fn width(&self, b: usize, t: usize) -> usize {
        match self.ragged() {
            true => (0..b)
                .map(|e| self.length_of(e, t) - self.prefix_of(e))
                .max()
                .unwrap_or(t - self.len),
            false => t - self.len,
        }
    }

    /// Example `e`'s length before its padding.
    fn length_of(&self, e: usize, t: usize) -> usize {
        self.lengths.get(e).copied().unwrap_or(t)
    }

    /// The row of position `pos` of example `e` in [`Packed`] rows of `b` examples of `t`
    /// positions: its group's prefix row, or its own row after the prefixes (prefixes that
    /// take rows: all of one length).
    pub fn packed_row(&self, e: usize, pos: usize, t: usize) -> usize {
        let p = self.len;
        match pos < p {
            true => self.group_of(e) * p + pos,
            false => self.groups() * p + self.rest_start(e, t) + pos - p,
        }
    }

    /// Where example `e`'s positions after the prefix start among the rest's rows.
    fn rest_start(&self, e: usize, t: usize) -> usize {
        match self.lengths.is_empty() && !self.ragged() {
            true => e * (t - self.len),
            false => (0..e)
                .map(|e| self.length_of(e, t) - self.prefix_of(e))
                .sum(),
        }
    }

    /// Index tensors between the rest's rows and its padded layout `[B * W]` (`W`: see
    /// [`width`](Self::width); slot `j` of example `e` is its position `prefix_of(e) + j`):
    /// each real position's padded index and its index among the `[B * T]` inputs, and each
    /// padded index's row (a padding slot takes its example's last row: a key the mask
    /// hides, a query whose output is dropped). `None` when no padding is dropped and the
    /// prefixes have one length. `T` is the longest length, so some example has rows.
    fn unpadding(&self, b: usize, t: usize, device: &Device) -> Option<Unpad> {
        if !self.ragged() && self.lengths.iter().all(|&l| l == t) {
            return None;
        }
        let w = self.width(b, t);
        if !self.lengths.is_empty() {
            assert_eq!(self.lengths.len(), b, "a length per example");
        }
        assert!(
            (0..b).all(|e| (self.prefix_of(e)..=t).contains(&self.length_of(e, t))),
            "lengths between the shared prefix and the sequence"
        );
        let (mut to_rows, mut from_inputs) = (Vec::new(), Vec::new());
        let mut to_padded = Vec::with_capacity(b * w);
        for e in 0..b {
            let p = self.prefix_of(e);
            let (start, real) = (self.rest_start(e, t), self.length_of(e, t) - p);
            to_rows.extend((0..real).map(|j| e * w + j));
            from_inputs.extend((0..real).map(|j| e * t + p + j));
            // An example all prefix has no row of its own; any row serves its slots.
            let slot = |j: usize| {
                if real == 0 {
                    0
                } else {
                    start + j.min(real - 1)
                }
            };
            to_padded.extend((0..w).map(slot));
        }
        Some(Unpad {
            to_rows: index_tensor(to_rows, device),
            from_inputs: index_tensor(from_inputs, device),
            to_padded: index_tensor(to_padded, device),
        })
    }

    /// The rest's attention bias `[B, 1, W, p + W]` when prefixes differ in length: slot `j`
    /// of example `e` sees its own prefix's keys (the first `prefix_of(e)` of the `p`
    /// stored) and its real rest keys up to `j`.
    fn ragged_bias(&self, b: usize, t: usize, device: &Device) -> Tensor<4> {
        let (p, w) = (self.len, self.width(b, t));
        let mut data = Vec::with_capacity(b * w * (p + w));
        for e in 0..b {
            let (own, real) = (self.prefix_of(e), self.length_of(e, t) - self.prefix_of(e));
            for j in 0..w {
                let seen = |k: usize| match k < p {
                    true => k < own,
                    false => k - p <= j && k - p < real,
                };
                data.extend((0..p + w).map(|k| if seen(k) { 0.0 } else { MASKED }));
            }
        }
        Tensor::from_data(TensorData::new(data, [b, 1, w, p + w]), device)
    }

    /// The first example of each group (none when `group` is empty: one group).
    pub fn firsts(&self) -> Vec<usize> {
        let mut firsts = Vec::new();
        for (e, &g) in self.group.iter().enumerate() {
            if g == firsts.len() {
                firsts.push(e);
            }
        }
        firsts
    }
}

/// One layer's keys and values, `[G, h_kv, p, d]` each (keys with their positions applied).
pub type Kv = (Tensor<4>, Tensor<4>);

/// Each layer's keys and values of the groups' shared prefixes, computed once (by
/// [`Backbone::prefix_kv`](crate::Backbone::prefix_kv), or kept from a batch's own pass by
/// [`Backbone::forward_rows_keeping`](crate::Backbone::forward_rows_keeping)) for prefixes
/// whose inputs do not change, such as a pack's leading prompts at evaluation, and reused by
/// later batches: a prefix is causal, so what follows it cannot change its keys and values.
#[derive(Debug, Clone)]
pub struct PrefixKv {
    layers: Vec<Kv>,
}

impl PrefixKv {
    pub(crate) fn new(layers: Vec<Kv>) -> Self {
        Self { layers }
    }

    /// Runs the rows of a batch that is all prefix through `layers`, keeping each layer's keys
    /// and values (`step`: one layer on the rows, returning them with its keys and values).
    pub(crate) fn collect<L>(
        layers: &[L],
        mut x: Tensor<2>,
        step: impl Fn(&L, Tensor<2>) -> (Tensor<2>, LayerKv),
    ) -> Self {
        let mut kept = Vec::with_capacity(layers.len());
        for layer in layers {
            let (next, kv) = step(layer, x);
            kept.push(kv.rest);
            x = next;
        }
        Self::new(kept)
    }

    /// Runs `x` through `layers` as [`through_layers`] does (`step`: layer `i` on the rows),
    /// keeping each layer's computed prefixes when `keep` is set and the batch has them.
    pub(crate) fn through<L>(
        layers: &[L],
        x: Tensor<2>,
        rows: Option<&Rows>,
        keep: bool,
        step: impl Fn(usize, &L, Tensor<2>, Option<&Rows>) -> (Tensor<2>, LayerKv),
    ) -> (Tensor<2>, Option<Self>) {
        let (x, kept) = through_layers(
            layers,
            (x, Vec::new()),
            rows,
            |i, l, (x, mut kept), rows| {
                let (x, kv) = step(i, l, x, rows);
                kept.extend(kv.pre.filter(|_| keep));
                (x, kept)
            },
        );
        let full = keep && !kept.is_empty() && kept.len() == layers.len();
        (x, full.then(|| Self::new(kept)))
    }

    /// Prefix positions (0 for a model without layers).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes one position of one group takes over all layers (keys and values): what a cache
    /// of prefixes budgets by.
    pub fn bytes_per_position(&self) -> usize {
        let bytes = |x: &Tensor<4>| x.shape().num_elements() * x.dtype().size();
        let all: usize = self.layers.iter().map(|(k, v)| bytes(k) + bytes(v)).sum();
        all / (self.groups() * self.len()).max(1)
    }

    /// How many groups' prefixes.
    pub fn groups(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dims()[0])
    }

    /// Group `g`'s prefix alone.
    pub fn group(&self, g: usize) -> Self {
        let one = |x: &Tensor<4>| x.clone().narrow(0, g, 1);
        Self::new(self.layers.iter().map(|(k, v)| (one(k), one(v))).collect())
    }

    /// The prefixes of `parts` as groups in that order.
    pub fn stack(parts: &[&PrefixKv]) -> Self {
        if let [one] = parts {
            return (*one).clone();
        }
        let n = parts.first().map_or(0, |p| p.layers.len());
        let layer = |i: usize| {
            let cat = |f: fn(&Kv) -> &Tensor<4>| {
                Tensor::cat(parts.iter().map(|p| f(&p.layers[i]).clone()).collect(), 0)
            };
            (cat(|kv| &kv.0), cat(|kv| &kv.1))
        };
        Self::new((0..n).map(layer).collect())
    }

    /// The same prefixes padded with zeros to `len` positions, for a [`SharedPrefix`] whose
    /// `group_lens` say where each really ends (its attention bias hides the rest).
    pub fn padded(&self, len: usize) -> Self {
        let pad = |x: &Tensor<4>| {
            let [g, h, p, d] = x.dims();
            match p < len {
                true => Tensor::cat(vec![x.clone(), zeros_like(x, [g, h, len - p, d])], 2),
                false => x.clone(),
            }
        };
        Self::new(self.layers.iter().map(|(k, v)| (pad(k), pad(v))).collect())
    }

    /// One group's prefix of `len` positions that are all padding (a row with no prefix), in
    /// the shape of `like`'s.
    pub fn zeros(like: &PrefixKv, len: usize) -> Self {
        let zeros = |x: &Tensor<4>| {
            let [_, h, _, d] = x.dims();
            zeros_like(x, [1, h, len, d])
        };
        Self::new(
            like.layers
                .iter()
                .map(|(k, v)| (zeros(k), zeros(v)))
                .collect(),
        )
    }

    /// Layer `i`'s keys and values.
    pub fn layer(&self, i: usize) -> &Kv {
        &self.layers[i]
    }
}

/// A layer's keys and values as its attention used them.
pub struct LayerKv {
    /// The rest's, `[B, h_kv, W, d]`: what a [`PrefixKv`] keeps of a batch that is all prefix.
    pub rest: Kv,
    /// The groups' prefixes' `[G, h_kv, p, d]`, when the batch computed them.
    pub pre: Option<Kv>,
}

/// Zeros of `shape` with `x`'s dtype and device.
fn zeros_like(x: &Tensor<4>, shape: [usize; 4]) -> Tensor<4> {
    let one = x.clone().narrow(0, 0, 1).narrow(2, 0, 1);
    one.zeros_like().expand(shape)
}

/// Gathers between an unpadded rest (`N` rows) and its padded layout (`B * W` rows).
struct Unpad {
    /// `[N]`: each real row's index in the padded layout.
    to_rows: Tensor<1, Int>,
    /// `[N]`: each real row's index among the batch's `B * T` input positions.
    from_inputs: Tensor<1, Int>,
    /// `[B * W]`: each padded slot's row.
    to_padded: Tensor<1, Int>,
}

pub struct Packed {
    p: usize,
    /// The prefixes' keys and values come from a [`PrefixKv`]: they take no rows.
    stored: bool,
    b: usize,
    /// `W`, the rest's padded width: `T - p`, or the longest rest after ragged prefixes.
    w: usize,
    /// Present when padding takes no rows.
    unpad: Option<Unpad>,
    /// How many groups share a prefix.
    g: usize,
    /// `[B]`: each example's group, when there are several.
    group: Option<Tensor<1, Int>>,
    /// `[G, 1, p, p]`, absent without a prefix.
    bias_pre: Option<Tensor<4>>,
    /// `[B, 1, W, p + W]`.
    bias_rest: Tensor<4>,
}

/// How a model marks positions on queries and keys inside attention: rotary models rotate them,
/// models with learned positions (added to the embeddings) leave them as they are.
pub trait Positions {
    fn pre(&self, x: Tensor<4>) -> Tensor<4> {
        x
    }
    fn rest(&self, x: Tensor<4>) -> Tensor<4> {
        x
    }
    /// Queries `[B, h, 1, d]` at each example's row.
    fn at(&self, x: Tensor<4>, _rows: &Rows) -> Tensor<4> {
        x
    }
}

/// Positions already added to the embeddings (GPT-2).
pub struct Absolute;

impl Positions for Absolute {}

impl Packed {
    /// Packs `[B, T, H]` embeddings with their causal attention bias `[B, 1, T, T]`; returns the
    /// packing and the rows `[G p + R, H]` (`R`: the rest's rows, `B(T - p)`, or the real
    /// positions only when the lengths are given). With `stored`, the prefixes' keys and
    /// values come from a [`PrefixKv`] given to [`Packed::attend`], and the rows are `R` only.
    pub fn new(
        embeds: Tensor<3>,
        bias: Tensor<4>,
        prefix: &SharedPrefix,
        stored: bool,
    ) -> (Self, Tensor<2>) {
        let [b, t, h] = embeds.dims();
        let p = prefix.len;
        assert!(
            stored || !prefix.ragged(),
            "prefixes of several lengths are stored ones"
        );
        let device = embeds.device();
        let unpad = prefix.unpadding(b, t, &device);
        let firsts = prefix.firsts();
        let (g, group) = match firsts.len() {
            0 | 1 => (1, None),
            g => (g, Some(index_tensor(prefix.group.iter().copied(), &device))),
        };
        let pre = (p > 0 && !stored).then(|| {
            let pre = embeds.clone().narrow(1, 0, p);
            match &group {
                None => pre.narrow(0, 0, 1),
                Some(_) => pre.select(0, index_tensor(firsts.iter().copied(), &device)),
            }
        });
        let bias_pre = (p > 0 && !stored).then(|| {
            (bias.clone().narrow(0, 0, 1))
                .narrow(2, 0, p)
                .narrow(3, 0, p)
                .expand([g, 1, p, p])
        });
        let bias_rest = match prefix.ragged() {
            true => prefix.ragged_bias(b, t, &device),
            false => bias.narrow(2, p, t - p),
        };
        let rest = match &unpad {
            Some(u) => embeds.reshape([b * t, h]).select(0, u.from_inputs.clone()),
            None => embeds.narrow(1, p, t - p).reshape([b * (t - p), h]),
        };
        let pk = Self {
            p,
            stored,
            b,
            w: prefix.width(b, t),
            unpad,
            g,
            bias_pre,
            group,
            bias_rest,
        };
        let rows = pk.with_pre(pre, rest);
        (pk, rows)
    }

    /// How many rows the prefixes take.
    fn pre_rows(&self) -> usize {
        match self.stored {
            true => 0,
            false => self.g * self.p,
        }
    }

    /// `[N, C]` → the groups' prefixes `[G, p, C]` (if they take rows), the rest padded
    /// `[B, W, C]`.
    fn split(&self, x: Tensor<2>) -> (Option<Tensor<3>>, Tensor<3>) {
        let [n, w] = x.dims();
        let pre = self.pre_rows();
        let rest = x.clone().narrow(0, pre, n - pre);
        let rest = match &self.unpad {
            None => rest,
            Some(u) => rest.select(0, u.to_padded.clone()),
        };
        let pre = (pre > 0).then(|| x.narrow(0, 0, pre).reshape([self.g, self.p, w]));
        (pre, rest.reshape([self.b, self.w, w]))
    }

    /// The inverse of [`Packed::split`].
    fn join(&self, pre: Option<Tensor<3>>, rest: Tensor<3>) -> Tensor<2> {
        let [b, t, w] = rest.dims();
        let rest = rest.reshape([b * t, w]);
        let rest = match &self.unpad {
            None => rest,
            Some(u) => rest.select(0, u.to_rows.clone()),
        };
        self.with_pre(pre, rest)
    }

    /// The groups' prefix rows (if they take rows) before the rest's rows `[R, W]`.
    fn with_pre(&self, pre: Option<Tensor<3>>, rest: Tensor<2>) -> Tensor<2> {
        let w = rest.dims()[1];
        match pre {
            None => rest,
            Some(pre) => Tensor::cat(vec![pre.reshape([self.g * self.p, w]), rest], 0),
        }
    }

    /// `[N, h * d]` → heads: the prefixes' `[G, h, p, d]` (if any), the rest's `[B, h, T - p, d]`.
    fn heads(&self, x: Tensor<2>, heads: usize) -> (Option<Tensor<4>>, Tensor<4>) {
        let (pre, rest) = self.split(x);
        (pre.map(|x| split_heads(x, heads)), split_heads(rest, heads))
    }

    /// Keys or values `[B, h, T - p, d]` with their group's prefix `[h, p, d]` in front of each.
    fn prepend(&self, pre: Option<Tensor<4>>, rest: Tensor<4>) -> Tensor<4> {
        let [b, h, _, d] = rest.dims();
        let spread = |pre: Tensor<4>| match &self.group {
            None => pre.expand([b, h, self.p, d]),
            Some(group) => pre.select(0, group.clone()),
        };
        match pre {
            None => rest,
            Some(pre) => Tensor::cat(vec![spread(pre), rest], 2),
        }
    }

    /// Packed rows `[N, W]` at `rows` (which index the rest): `[B, W]`, in one gather of `B`
    /// rows (when padding takes no rows, through `to_padded`).
    pub fn take(&self, x: Tensor<2>, rows: &Rows) -> Tensor<2> {
        let [n, _] = x.dims();
        let pre = self.pre_rows();
        let index = match &self.unpad {
            None => rows.flat(),
            Some(u) => u.to_padded.clone().select(0, rows.flat()),
        };
        x.narrow(0, pre, n - pre).select(0, index)
    }

    /// Causal attention on packed keys and values `[N, h_kv * d]`: every query row `[N, h * d]`,
    /// or with `rows` the queries at those rows only (`[B, h * d]`, from [`Packed::take`]).
    /// `stored`: this layer's prefix keys and values, when the packing was made with them.
    /// Returns the context rows in the queries' layout, and the keys and values it used.
    #[allow(clippy::too_many_arguments)] // the projections, the head counts and where to read
    pub fn attend(
        &self,
        q: Tensor<2>,
        k: Tensor<2>,
        v: Tensor<2>,
        (heads, kv_heads): (usize, usize),
        scale: f64,
        pos: &dyn Positions,
        rows: Option<&Rows>,
        stored: Option<&Kv>,
    ) -> (Tensor<2>, LayerKv) {
        assert_eq!(
            stored.is_some(),
            self.stored,
            "stored keys exactly when packed for them"
        );
        let (k_pre, k_rest) = self.heads(k, kv_heads);
        let (v_pre, v_rest) = self.heads(v, kv_heads);
        let (k_pre, v_pre) = match stored {
            Some((k, v)) => (Some(k.clone()), Some(v.clone())),
            None => (k_pre.map(|k| pos.pre(k)), v_pre),
        };
        let k_rest = pos.rest(k_rest);
        let kv = LayerKv {
            rest: (k_rest.clone(), v_rest.clone()),
            pre: (k_pre.clone().zip(v_pre.clone())).filter(|_| stored.is_none()),
        };
        let k_all = self.prepend(k_pre.clone(), k_rest);
        let v_all = self.prepend(v_pre.clone(), v_rest);
        let context = match rows {
            None => {
                let (q_pre, q_rest) = self.heads(q, heads);
                let rest = attend(
                    pos.rest(q_rest),
                    k_all,
                    v_all,
                    self.bias_rest.clone(),
                    scale,
                );
                // Stored prefixes have no query rows.
                let pre = q_pre
                    .zip(k_pre.zip(v_pre))
                    .zip(self.bias_pre.clone())
                    .map(|((q, (k, v)), bias)| merge_heads(attend(pos.pre(q), k, v, bias, scale)));
                self.join(pre, merge_heads(rest))
            }
            Some(r) => {
                let [b, w] = q.dims();
                let q = pos.at(split_heads(q.reshape([b, 1, w]), heads), r);
                let bias = r.take_bias(self.bias_rest.clone());
                merge_heads(attend(q, k_all, v_all, bias, scale)).reshape([b, w])
            }
        };
        (context, kv)
    }
}
