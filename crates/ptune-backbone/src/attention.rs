//! Multi-head attention arithmetic shared by every family: head split/merge, masks, softmax.

use crate::index::index_tensor;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData, activation::softmax};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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
///
/// With no gradient to carry (evaluation, serving, stored prefixes) it runs as the backend's
/// fused attention (libtorch's `scaled_dot_product_attention`, flex's tiled kernel): no
/// `[B, h, T, T]` score tensor and no separate softmax ops, which long task rows pay most for.
/// burn's autodiff decomposes that op anyway, so training keeps the plain composition.
pub fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Tensor<4>, scale: f64) -> Tensor<4> {
    let tracked = [&q, &k, &v, &bias].iter().any(|t| t.is_tracked());
    if tracked || !FUSED.load(Ordering::Relaxed) {
        attend_composed(q, k, v, bias, scale)
    } else {
        attend_fused(q, k, v, bias, scale)
    }
}

/// Whether untracked attention runs fused (see [`attend`]); process-wide, on by default.
static FUSED: AtomicBool = AtomicBool::new(true);

/// Turns the fused path off (`false`) or back on: what the bench's `--ablate fused-attention`
/// measures against.
pub fn fuse_attention(on: bool) {
    FUSED.store(on, Ordering::Relaxed);
}

/// `softmax(q kᵀ · scale + bias) v`, op by op: differentiable on every backend.
///
/// With grouped-query attention the query heads that share a key/value head (consecutive, as
/// transformers' `repeat_kv` pairs them) go in as one sequence `group` times as long, so `k` and
/// `v` are multiplied as they are: no copy of them per query head, which training would also
/// keep until its backward pass (`GROUPED` turns this off, for the bench's ablation).
pub fn attend_composed(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: Tensor<4>,
    scale: f64,
) -> Tensor<4> {
    let [b, heads, tq, d] = q.dims();
    let [_, kv, t, _] = k.dims();
    let Some(group) = kv_group(heads, kv) else {
        let (k, v) = repeat_kv(k, v, heads);
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias;
        return softmax(scores, 3).matmul(v);
    };
    let q = q.reshape([b, kv, group * tq, d]);
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
    let scores = scores.reshape([b, kv, group, tq, t]) + bias.unsqueeze_dim::<5>(2);
    let probs = softmax(scores.reshape([b, kv, group * tq, t]), 3);
    probs.matmul(v).reshape([b, heads, tq, d])
}

/// Whether attention multiplies shared key/value heads without copying them;
/// process-wide, on by default.
static GROUPED: AtomicBool = AtomicBool::new(true);

/// How many query heads go in with each shared key/value head: `None` when every query head
/// has its own, or grouping is turned off (then keys and values are copied per query head).
fn kv_group(heads: usize, kv_heads: usize) -> Option<usize> {
    let group = heads / kv_heads;
    (group > 1 && GROUPED.load(Ordering::Relaxed)).then_some(group)
}

/// Turns grouped products off (`false`: keys and values copied per query head, as transformers
/// does), in [`attend_composed`] and [`attend_fused`], or back on: what the bench's `--ablate
/// grouped-kv` measures against.
pub fn group_kv_heads(on: bool) {
    GROUPED.store(on, Ordering::Relaxed);
}

/// The same on the backend's own attention kernel, outside autodiff; `bias` holds only 0 and
/// [`MASKED`], so it goes in as a boolean mask (libtorch takes the fused path only without an
/// additive bias). Every query row keeps at least one key (its own position, or the example's
/// real tokens for a padding slot), so no row is all masked.
pub fn attend_fused(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: Tensor<4>,
    scale: f64,
) -> Tensor<4> {
    let [b, heads, tq, d] = q.dims();
    let (q, k, v, bias) = match kv_group(heads, k.dims()[1]) {
        // As in `attend_composed`: a group's query heads as one longer sequence, each of their
        // rows under its position's mask row.
        Some(group) => (
            q.reshape([b, heads / group, group * tq, d]),
            k,
            v,
            match bias.dims()[2] {
                1 => bias,
                _ => bias.repeat_dim(2, group),
            },
        ),
        None => {
            let (k, v) = repeat_kv(k, v, heads);
            (q, k, v, bias)
        }
    };
    let autodiff = q.is_autodiff();
    let (q, bias) = (q.inner(), bias.inner());
    // `true` where this backend's kernel reads `true` as "hide", else where it reads "attend".
    let mask = match mask_true_hides(&q.device()) {
        true => bias.lower_elem(MASKED / 2.0),
        false => bias.greater_equal_elem(MASKED / 2.0),
    };
    let out = attention(q, k.inner(), v.inner(), Some(mask), None, options(scale));
    let out = out.reshape([b, heads, tq, d]);
    if autodiff { out.autodiff() } else { out }
}

/// A set scale, no causal flag (the mask carries it): the options every call here makes, the
/// probe's included, so each backend takes the same path for both (wgpu composes any call with
/// a scale).
fn options(scale: f64) -> AttentionModuleOptions {
    AttentionModuleOptions {
        scale: Some(scale),
        softcap: None,
        is_causal: false,
    }
}

/// Whether `device`'s fused attention hides the keys its mask marks `true`, as burn documents.
/// burn-tch 0.22.1 hands the mask to PyTorch's `scaled_dot_product_attention` as it is, where
/// `true` means the opposite (attend); one two-key probe per device tells which it is, so a
/// fixed burn-tch needs no change here.
fn mask_true_hides(device: &Device) -> bool {
    static SEEN: Mutex<Vec<(Device, bool)>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, hides)) = seen.iter().find(|(d, _)| d == device) {
        return *hides;
    }
    let hides = probe_mask(device);
    seen.push((device.clone(), hides));
    hides
}

/// One query over keys whose values are 0 and 1, the second masked `true`: 0 comes back when
/// `true` hides.
fn probe_mask(device: &Device) -> bool {
    let q = Tensor::<4>::zeros([1, 1, 1, 1], device);
    let k = Tensor::<4>::zeros([1, 1, 2, 1], device);
    let v = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 1.0], [1, 1, 2, 1]), device);
    let mask =
        Tensor::<4, Bool>::from_data(TensorData::new(vec![false, true], [1, 1, 1, 2]), device);
    let out: f32 = attention(q, k, v, Some(mask), None, options(1.0)).into_scalar();
    out < 0.5
}

/// Key and value heads repeated to `heads`, one per query head.
fn repeat_kv(k: Tensor<4>, v: Tensor<4>, heads: usize) -> (Tensor<4>, Tensor<4>) {
    (repeat_heads(k, heads), repeat_heads(v, heads))
}

fn repeat_heads(x: Tensor<4>, heads: usize) -> Tensor<4> {
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
