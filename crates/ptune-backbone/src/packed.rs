//! Causal batches as one matrix of rows. When groups of examples have the same first `p`
//! positions (a template's leading prompts: in a mixed batch, one group per prompt pack), the
//! rows are each group's prefix (`G * p` rows, from the group's first example) then every
//! example's rest (`B * (T - p)` rows): a prefix is computed once per group and each example
//! attends to its group's keys and values. Without one (`p = 0`) the rows are simply `B * T`, at
//! no extra cost. Each projection runs as one matmul over all rows, so no weight is read twice.

use crate::attention::{Rows, attend, merge_heads, split_heads};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Leading positions that groups of examples share exactly (ids and prompt vectors, no
/// padding): a causal model computes them once per group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedPrefix {
    /// How many leading positions.
    pub len: usize,
    /// Each example's group, numbered from 0 in order of first appearance; empty: one group.
    pub group: Vec<usize>,
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
            group: Vec::new(),
        }
    }

    /// The same prefix at most `len` long: sharing a shorter prefix keeps the groups right.
    pub fn capped(&self, len: usize) -> Self {
        Self {
            len: self.len.min(len),
            group: self.group.clone(),
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

    /// The row of position `pos` of example `e` in [`Packed`] rows of `b` examples of `t`
    /// positions: its group's prefix row, or its own row after the prefixes.
    pub fn packed_row(&self, e: usize, pos: usize, t: usize) -> usize {
        let p = self.len;
        match pos < p {
            true => self.group_of(e) * p + pos,
            false => self.groups() * p + e * (t - p) + pos - p,
        }
    }

    /// The first example of each group.
    fn firsts(&self) -> Vec<usize> {
        let mut firsts = Vec::new();
        for (e, &g) in self.group.iter().enumerate() {
            if g == firsts.len() {
                firsts.push(e);
            }
        }
        firsts
    }
}

pub struct Packed {
    p: usize,
    b: usize,
    /// How many groups share a prefix.
    g: usize,
    /// `[B]`: each example's group, when there are several.
    group: Option<Tensor<1, Int>>,
    /// `[G, 1, p, p]`, absent without a prefix.
    bias_pre: Option<Tensor<4>>,
    /// `[B, 1, T - p, T]`.
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
    /// packing and the rows `[G p + B(T - p), H]`.
    pub fn new(embeds: Tensor<3>, bias: Tensor<4>, prefix: &SharedPrefix) -> (Self, Tensor<2>) {
        let [b, t, h] = embeds.dims();
        if prefix.len == 0 {
            let pk = Self {
                p: 0,
                b,
                g: 1,
                group: None,
                bias_pre: None,
                bias_rest: bias,
            };
            return (pk, embeds.reshape([b * t, h]));
        }
        let p = prefix.len;
        let device = embeds.device();
        let firsts = prefix.firsts();
        let (g, group) = match firsts.len() {
            0 | 1 => (1, None),
            g => (g, Some(ints(&prefix.group, &device))),
        };
        let pre = embeds.clone().narrow(1, 0, p);
        let pre = match &group {
            None => pre.narrow(0, 0, 1),
            Some(_) => pre.select(0, ints(&firsts, &device)),
        };
        let pk = Self {
            p,
            b,
            g,
            bias_pre: Some(
                bias.clone()
                    .narrow(0, 0, 1)
                    .narrow(2, 0, p)
                    .narrow(3, 0, p)
                    .expand([g, 1, p, p]),
            ),
            group,
            bias_rest: bias.narrow(2, p, t - p),
        };
        let rows = pk.join(Some(pre), embeds.narrow(1, p, t - p));
        (pk, rows)
    }

    /// `[N, W]` → the groups' prefixes `[G, p, W]` (if any), rest `[B, T - p, W]`.
    fn split(&self, x: Tensor<2>) -> (Option<Tensor<3>>, Tensor<3>) {
        let [n, w] = x.dims();
        let pre = self.g * self.p;
        let rest = n - pre;
        let shape = [self.b, rest / self.b, w];
        match self.p {
            0 => (None, x.reshape(shape)),
            p => (
                Some(x.clone().narrow(0, 0, pre).reshape([self.g, p, w])),
                x.narrow(0, pre, rest).reshape(shape),
            ),
        }
    }

    /// The inverse of [`Packed::split`].
    fn join(&self, pre: Option<Tensor<3>>, rest: Tensor<3>) -> Tensor<2> {
        let [b, t, w] = rest.dims();
        let rest = rest.reshape([b * t, w]);
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

    /// Packed rows `[N, W]` at `rows` (which index the rest): `[B, W]`.
    pub fn take(&self, x: Tensor<2>, rows: &Rows) -> Tensor<2> {
        let rest = rows.take(self.split(x).1);
        let [b, _, w] = rest.dims();
        rest.reshape([b, w])
    }

    /// Causal attention on packed keys and values `[N, h_kv * d]`: every query row `[N, h * d]`,
    /// or with `rows` the queries at those rows only (`[B, h * d]`, from [`Packed::take`]).
    /// Returns the context rows in the queries' layout.
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
    ) -> Tensor<2> {
        let (k_pre, k_rest) = self.heads(k, kv_heads);
        let (v_pre, v_rest) = self.heads(v, kv_heads);
        let k_pre = k_pre.map(|k| pos.pre(k));
        let k_all = self.prepend(k_pre.clone(), pos.rest(k_rest));
        let v_all = self.prepend(v_pre.clone(), v_rest);
        match rows {
            None => {
                let (q_pre, q_rest) = self.heads(q, heads);
                let rest = attend(
                    pos.rest(q_rest),
                    k_all,
                    v_all,
                    self.bias_rest.clone(),
                    scale,
                );
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
        }
    }
}

fn ints(values: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}
