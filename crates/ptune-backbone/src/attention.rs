//! Multi-head attention arithmetic shared by every family: head split/merge, masks, softmax.

use crate::index::index_tensor;
use burn::tensor::{Device, Int, Tensor, TensorData, activation::softmax};

/// Added to the scores of masked keys; large enough that `exp` underflows to exactly zero.
pub(crate) const MASKED: f32 = -1.0e9;

/// `[B, T, h*d]` → `[B, h, T, d]`.
pub fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, width] = x.dims();
    x.reshape([b, t, heads, width / heads]).swap_dims(1, 2)
}

/// `[B, h, T, d]` → `[B, T, h*d]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * d])
}

/// Additive attention bias `[B, 1, T, T]` (or `[B, 1, 1, T]` when not causal) that hides padded
/// keys and, for causal models, future positions.
pub fn mask_bias(attention_mask: Tensor<2, Int>, causal: bool) -> Tensor<4> {
    let [b, t] = attention_mask.dims();
    let device = attention_mask.device();
    let pad = (attention_mask.float().neg() + 1.0)
        .mul_scalar(MASKED)
        .reshape([b, 1, 1, t]);
    if causal {
        pad + causal_bias(t, &device)
    } else {
        pad
    }
}

fn causal_bias(t: usize, device: &Device) -> Tensor<4> {
    let data: Vec<f32> = (0..t * t)
        .map(|i| if i % t > i / t { MASKED } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(data, [1, 1, t, t]), device)
}

/// Softmax attention of `q` `[B, h, T, d]` over `k`, `v` `[B, h_kv, T, d]`; key/value heads are
/// shared by `h / h_kv` query heads (grouped-query attention).
pub fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Tensor<4>, scale: f64) -> Tensor<4> {
    let heads = q.dims()[1];
    let (k, v) = (repeat_kv(k, heads), repeat_kv(v, heads));
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias;
    softmax(scores, 3).matmul(v)
}

fn repeat_kv(x: Tensor<4>, heads: usize) -> Tensor<4> {
    let [b, kv, t, d] = x.dims();
    if kv == heads {
        return x;
    }
    x.unsqueeze_dim::<5>(2)
        .repeat_dim(2, heads / kv)
        .reshape([b, heads, t, d])
}

/// One query row per example: the position its prediction is read at. The last layer only needs
/// these rows (its keys and values still come from every position), so it skips the query,
/// output and feed-forward work of all other positions.
#[derive(Clone, Debug)]
pub struct Rows {
    /// `b * T + positions[b]`.
    flat: Tensor<1, Int>,
    positions: Tensor<1, Int>,
}

impl Rows {
    /// `positions[b]` is example `b`'s row in sequences of `seq_len`.
    pub fn new(positions: &[usize], seq_len: usize, device: &Device) -> Self {
        let flat = positions.iter().enumerate().map(|(b, &p)| b * seq_len + p);
        Self {
            flat: index_tensor(flat, device),
            positions: index_tensor(positions.iter().copied(), device),
        }
    }

    /// Each example's row in the flattened `[B * T]` sequences.
    pub fn flat(&self) -> Tensor<1, Int> {
        self.flat.clone()
    }

    /// `[B, T, W]` → `[B, 1, W]`.
    pub fn take(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, w] = x.dims();
        x.reshape([b * t, w])
            .select(0, self.flat.clone())
            .reshape([b, 1, w])
    }

    /// The attention bias of these queries: `[B, 1, T_q, T]` → `[B, 1, 1, T]`.
    pub fn take_bias(&self, bias: Tensor<4>) -> Tensor<4> {
        let [b, _, tq, t] = bias.dims();
        if tq == 1 {
            return bias;
        }
        bias.reshape([b * tq, t])
            .select(0, self.flat.clone())
            .reshape([b, 1, 1, t])
    }

    /// Rows of a per-position table `[1, 1, T, d]` (RoPE's cos/sin), or of a per-example one
    /// `[B, 1, T, d]`, → `[B, 1, 1, d]`.
    pub fn take_positions(&self, table: Tensor<4>) -> Tensor<4> {
        let [n, _, t, d] = table.dims();
        let b = self.positions.dims()[0];
        let index = match n {
            1 => self.positions.clone(),
            _ => self.flat.clone(),
        };
        table
            .reshape([n * t, d])
            .select(0, index)
            .reshape([b, 1, 1, d])
    }
}

/// Runs `x` through `layers` in order; only the last one narrows to `rows` (each layer gets its
/// index and the rows it computes: `None` for all of them).
pub fn through_layers<L, X>(
    layers: &[L],
    x: X,
    rows: Option<&Rows>,
    layer: impl Fn(usize, &L, X, Option<&Rows>) -> X,
) -> X {
    let n = layers.len();
    layers
        .iter()
        .enumerate()
        .fold(x, |x, (i, l)| layer(i, l, x, rows.filter(|_| i + 1 == n)))
}

/// The query side of a layer, every position or only `rows`: `(x_q, bias_q)`.
pub fn query_side(x: &Tensor<3>, bias: Tensor<4>, rows: Option<&Rows>) -> (Tensor<3>, Tensor<4>) {
    match rows {
        Some(r) => (r.take(x.clone()), r.take_bias(bias)),
        None => (x.clone(), bias),
    }
}
