//! Causal batches whose first `p` positions are the same in every example (a template's leading
//! prompts), as one matrix of rows: example 0's prefix (`p` rows) then every example's rest
//! (`B * (T - p)` rows). The prefix is computed once and every example attends to its keys and
//! values; each projection still runs as one matmul over all rows, so no weight is read twice.

use crate::attention::{Rows, attend, merge_heads, split_heads};
use burn::tensor::Tensor;

pub struct Packed {
    p: usize,
    b: usize,
    /// `[1, 1, p, p]` and `[B, 1, T - p, T]`.
    bias_pre: Tensor<4>,
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
    /// packing and the rows `[p + B(T - p), H]`.
    pub fn new(embeds: Tensor<3>, bias: Tensor<4>, prefix: usize) -> (Self, Tensor<2>) {
        let [b, t, _] = embeds.dims();
        let pk = Self {
            p: prefix,
            b,
            bias_pre: bias
                .clone()
                .narrow(0, 0, 1)
                .narrow(2, 0, prefix)
                .narrow(3, 0, prefix),
            bias_rest: bias.narrow(2, prefix, t - prefix),
        };
        let pre = embeds.clone().narrow(0, 0, 1).narrow(1, 0, prefix);
        let rows = pk.join(pre, embeds.narrow(1, prefix, t - prefix));
        (pk, rows)
    }

    /// `[N, W]` → prefix `[1, p, W]`, rest `[B, T - p, W]`.
    fn split(&self, x: Tensor<2>) -> (Tensor<3>, Tensor<3>) {
        let [n, w] = x.dims();
        let rest = n - self.p;
        (
            x.clone().narrow(0, 0, self.p).reshape([1, self.p, w]),
            x.narrow(0, self.p, rest)
                .reshape([self.b, rest / self.b, w]),
        )
    }

    /// The inverse of [`Packed::split`].
    fn join(&self, pre: Tensor<3>, rest: Tensor<3>) -> Tensor<2> {
        let [b, t, w] = rest.dims();
        Tensor::cat(vec![pre.reshape([self.p, w]), rest.reshape([b * t, w])], 0)
    }

    /// Keys or values `[B, h, T - p, d]` with the prefix's `[1, h, p, d]` in front of each.
    fn prepend(&self, pre: Tensor<4>, rest: Tensor<4>) -> Tensor<4> {
        let [b, h, _, d] = rest.dims();
        Tensor::cat(vec![pre.expand([b, h, self.p, d]), rest], 2)
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
        let (k_pre, k_rest) = self.split(k);
        let (v_pre, v_rest) = self.split(v);
        let k_pre = pos.pre(split_heads(k_pre, kv_heads));
        let k_rest = pos.rest(split_heads(k_rest, kv_heads));
        let (v_pre, v_rest) = (split_heads(v_pre, kv_heads), split_heads(v_rest, kv_heads));
        let k_all = self.prepend(k_pre.clone(), k_rest);
        let v_all = self.prepend(v_pre.clone(), v_rest);
        match rows {
            None => {
                let (q_pre, q_rest) = self.split(q);
                let q_pre = pos.pre(split_heads(q_pre, heads));
                let q_rest = pos.rest(split_heads(q_rest, heads));
                let pre = attend(q_pre, k_pre, v_pre, self.bias_pre.clone(), scale);
                let rest = attend(q_rest, k_all, v_all, self.bias_rest.clone(), scale);
                self.join(merge_heads(pre), merge_heads(rest))
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
