//! Multi-head attention arithmetic shared by every family: head split/merge, masks, softmax.

use burn::tensor::{Device, Int, Tensor, TensorData, activation::softmax};

/// Added to the scores of masked keys; large enough that `exp` underflows to exactly zero.
const MASKED: f32 = -1.0e9;

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
