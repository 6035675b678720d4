//! Shared by the integration tests: fixture paths and reference tensors written by
//! `scripts/make_fixtures.py`.
#![allow(dead_code)]

pub mod device;

use burn::tensor::{Device, Int, Tensor, TensorData};
use ptune_backbone::{Backbone, PrefixKv, SharedPrefix};
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Directory of the real models fetched by `cargo xtask fetch` (CI-only tests).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("PTUNE_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/ptune/models"),
    }
}

/// A reference tensor from a safetensors file, as f32 or i64 values with its shape.
pub struct Ref {
    pub shape: Vec<usize>,
    pub f32s: Vec<f32>,
    pub i64s: Vec<i64>,
}

pub fn read_ref(path: &std::path::Path, name: &str) -> Ref {
    try_read_ref(path, name).unwrap_or_else(|| panic!("{name} in {}", path.display()))
}

pub fn try_read_ref(path: &std::path::Path, name: &str) -> Option<Ref> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).expect("reference safetensors");
    let view = st.tensor(name).ok()?;
    let data = view.data();
    let (f32s, i64s) = match view.dtype() {
        Dtype::F32 => (
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            vec![],
        ),
        Dtype::I64 => (
            vec![],
            data.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        ),
        other => panic!("unexpected dtype {other:?}"),
    };
    Some(Ref {
        shape: view.shape().to_vec(),
        f32s,
        i64s,
    })
}

/// Runs `model` on a reference batch (`input_ids`, `attention_mask`) and returns the largest
/// error of the hidden states and, when the reference has them, of the logits, on real tokens.
pub fn reference_errors(
    model: &Backbone,
    reference: &std::path::Path,
    device: &Device,
) -> (f32, Option<f32>) {
    let ids = read_ref(reference, "input_ids");
    let mask = read_ref(reference, "attention_mask");
    let hidden_ref = read_ref(reference, "hidden");
    let (b, t) = (ids.shape[0], ids.shape[1]);
    let embeds = model.embed_tokens(int_tensor(&ids, device));
    let hidden = model.forward_embeds(embeds, int_tensor(&mask, device));
    let h = hidden.dims()[2];
    let hidden_err = max_err_valid(&to_vec(hidden.clone()), &hidden_ref.f32s, &mask.i64s, h);
    let hidden_err = hidden_err.max(rows_error(model, &ids, &mask, &hidden_ref, device));
    let logits_err = try_read_ref(reference, "logits").map(|logits_ref| {
        let rows: Vec<(usize, usize)> = (0..b).flat_map(|e| (0..t).map(move |p| (e, p))).collect();
        let logits = model
            .lm_logits(Backbone::gather_rows(hidden, &rows))
            .expect("has a head");
        let v = logits.dims()[1];
        max_err_valid(&to_vec(logits), &logits_ref.f32s, &mask.i64s, v)
    });
    (hidden_err, logits_err)
}

/// Largest error of `forward_rows` (the last layer at one row per example) against the
/// reference hidden states, at each example's first and last real token.
fn rows_error(model: &Backbone, ids: &Ref, mask: &Ref, hidden_ref: &Ref, device: &Device) -> f32 {
    let (b, t, h) = (ids.shape[0], ids.shape[1], hidden_ref.shape[2]);
    let last: Vec<usize> = mask
        .i64s
        .chunks(t)
        .map(|m| m.iter().sum::<i64>() as usize - 1)
        .collect();
    [vec![0; b], last]
        .iter()
        .map(|positions| {
            let embeds = model.embed_tokens(int_tensor(ids, device));
            let out = to_vec(model.forward_rows(
                embeds,
                int_tensor(mask, device),
                positions,
                &SharedPrefix::none(),
                None,
            ));
            (0..b * h)
                .map(|i| {
                    let (e, j) = (i / h, i % h);
                    (out[i] - hidden_ref.f32s[(e * t + positions[e]) * h + j]).abs()
                })
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

/// Where [`shared_prefix_error`]'s prefix keys and values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Computed in the pass, as rows.
    No,
    /// [`Backbone::prefix_kv`] run beforehand on each prefix alone.
    Apart,
    /// Kept by a first pass over the batch ([`Backbone::forward_rows_keeping`]), whose output
    /// is checked too.
    Kept,
}

/// Largest difference between `forward_rows` with leading positions shared and without, at
/// each example's last real token. The reference batch is doubled (the copies' real tokens
/// after the longest prefix reversed, so no two examples are the same); example `e` is in
/// group `g = e % lens.len()`, gets the first `lens[g]` tokens of example `g` and shares them
/// with its group. With `unpadded`, the examples' padding takes no rows either; `stored` says
/// where the groups' prefix keys and values come from (required when `lens` differ: each
/// example's rest then starts after its own).
pub fn shared_prefix_error(
    model: &Backbone,
    reference: &std::path::Path,
    lens: &[usize],
    (unpadded, stored): (bool, Stored),
) -> f32 {
    let device = model.device();
    let (mut ids, mut mask) = (
        read_ref(reference, "input_ids"),
        read_ref(reference, "attention_mask"),
    );
    let (b, t) = (ids.shape[0], ids.shape[1]);
    let (groups, prefix) = (lens.len(), lens.iter().copied().max().unwrap_or(0));
    for e in 0..b {
        let len = mask.i64s[e * t..(e + 1) * t].iter().sum::<i64>() as usize;
        let mut row = ids.i64s[e * t..(e + 1) * t].to_vec();
        row[prefix..len].reverse();
        ids.i64s.extend(row);
        mask.i64s.extend_from_within(e * t..(e + 1) * t);
    }
    let b = 2 * b;
    (ids.shape[0], mask.shape[0]) = (b, b);
    for e in groups..b {
        for p in 0..lens[e % groups] {
            ids.i64s[e * t + p] = ids.i64s[(e % groups) * t + p];
        }
    }
    let last: Vec<usize> = mask
        .i64s
        .chunks(t)
        .map(|m| m.iter().sum::<i64>() as usize - 1)
        .collect();
    assert!(
        last.iter().all(|&p| p >= prefix),
        "the prefix is real tokens"
    );
    let lengths: Vec<usize> = last.iter().map(|&l| l + 1).collect();
    assert!(lengths.iter().any(|&l| l < t), "the batch has padding");
    let ragged = lens.iter().any(|&l| l != prefix);
    let grouped = SharedPrefix {
        len: prefix,
        group: (0..b).map(|e| e % groups).collect(),
        lengths: if unpadded { lengths } else { Vec::new() },
        group_lens: if ragged { lens.to_vec() } else { Vec::new() },
    };
    let embeds = || model.embed_tokens(int_tensor(&ids, &device));
    let mask = || int_tensor(&mask, &device);
    let whole = to_vec(model.forward_rows(embeds(), mask(), &last, &SharedPrefix::none(), None));
    let error = |out: Tensor<2>| max_abs_diff(&to_vec(out), &whole);
    let (kv, first_pass) = match stored {
        Stored::No => (None, 0.0),
        // Group g's first example is example g.
        Stored::Apart => {
            let parts: Vec<Option<PrefixKv>> = (lens.iter().enumerate())
                .map(|(g, &len)| {
                    let own = || embeds().narrow(0, g, 1).narrow(1, 0, len);
                    (len > 0).then(|| model.prefix_kv(own()).expect("a causal model"))
                })
                .collect();
            let like = parts
                .iter()
                .flatten()
                .next()
                .expect("a group with a prefix");
            let parts: Vec<PrefixKv> = (parts.iter())
                .map(|p| match p {
                    Some(p) => p.padded(prefix),
                    None => PrefixKv::zeros(like, prefix),
                })
                .collect();
            (
                Some(PrefixKv::stack(&parts.iter().collect::<Vec<_>>())),
                0.0,
            )
        }
        Stored::Kept => {
            let (out, kept) = model.forward_rows_keeping(embeds(), mask(), &last, &grouped);
            (
                Some(kept.expect("a causal model keeps its prefixes")),
                error(out),
            )
        }
    };
    error(model.forward_rows(embeds(), mask(), &last, &grouped, kv.as_ref())).max(first_pass)
}

pub fn int_tensor(r: &Ref, device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(
        TensorData::new(r.i64s.clone(), [r.shape[0], r.shape[1]]),
        device,
    )
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// Largest |a - b| over two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared outputs differ in size");
    (a.iter().zip(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest |a - b| over the rows of `[B, T, W]` data whose attention mask is 1.
pub fn max_err_valid(a: &[f32], b: &[f32], mask: &[i64], width: usize) -> f32 {
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m == 1)
        .flat_map(|(row, _)| (row * width..(row + 1) * width).map(|i| (a[i] - b[i]).abs()))
        .fold(0.0, f32::max)
}
