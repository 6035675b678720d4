//! Causal batches as one matrix of rows. When the first `p` positions are the same in every
//! example (a template's leading prompts), the rows are example 0's prefix (`p` rows) then every
//! example's rest (`B * (T - p)` rows): the prefix is computed once and every example attends to
//! its keys and values. Without one (`p = 0`) the rows are simply `B * T`, at no extra cost. Each
//! projection runs as one matmul over all rows, so no weight is read twice.

use crate::attention::{Rows, attend, merge_heads, split_heads};
use burn::tensor::Tensor;

pub struct Packed {
    p: usize,
    b: usize,
    /// `[1, 1, p, p]`, absent without a prefix.
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
    /// packing and the rows `[p + B(T - p), H]`.
    pub fn new(embeds: Tensor<3>, bias: Tensor<4>, prefix: usize) -> (Self, Tensor<2>) {
        let [b, t, h] = embeds.dims();
        if prefix == 0 {
            let pk = Self {
                p: 0,
                b,
                bias_pre: None,
                bias_rest: bias,
            };
            return (pk, embeds.reshape([b * t, h]));
        }
        let pk = Self {
            p: prefix,
            b,
            bias_pre: Some(
                bias.clone()
                    .narrow(0, 0, 1)
                    .narrow(2, 0, prefix)
                    .narrow(3, 0, prefix),
            ),
            bias_rest: bias.narrow(2, prefix, t - prefix),
        };
        let pre = embeds.clone().narrow(0, 0, 1).narrow(1, 0, prefix);
        let rows = pk.join(Some(pre), embeds.narrow(1, prefix, t - prefix));
        (pk, rows)
    }

    /// `[N, W]` → prefix `[1, p, W]` (if any), rest `[B, T - p, W]`.
    fn split(&self, x: Tensor<2>) -> (Option<Tensor<3>>, Tensor<3>) {
        let [n, w] = x.dims();
        let rest = n - self.p;
        let shape = [self.b, rest / self.b, w];
        match self.p {
            0 => (None, x.reshape(shape)),
            p => (
                Some(x.clone().narrow(0, 0, p).reshape([1, p, w])),
                x.narrow(0, p, rest).reshape(shape),
            ),
        }
    }

    /// The inverse of [`Packed::split`].
    fn join(&self, pre: Option<Tensor<3>>, rest: Tensor<3>) -> Tensor<2> {
        let [b, t, w] = rest.dims();
        let rest = rest.reshape([b * t, w]);
        match pre {
            None => rest,
            Some(pre) => Tensor::cat(vec![pre.reshape([self.p, w]), rest], 0),
        }
    }

    /// `[N, h * d]` → heads: the prefix's `[1, h, p, d]` (if any), the rest's `[B, h, T - p, d]`.
    fn heads(&self, x: Tensor<2>, heads: usize) -> (Option<Tensor<4>>, Tensor<4>) {
        let (pre, rest) = self.split(x);
        (pre.map(|x| split_heads(x, heads)), split_heads(rest, heads))
    }

    /// Keys or values `[B, h, T - p, d]` with the prefix's `[1, h, p, d]` in front of each.
    fn prepend(&self, pre: Option<Tensor<4>>, rest: Tensor<4>) -> Tensor<4> {
        let [b, h, _, d] = rest.dims();
        match pre {
            None => rest,
            Some(pre) => Tensor::cat(vec![pre.expand([b, h, self.p, d]), rest], 2),
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
