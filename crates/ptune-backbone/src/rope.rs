//! Rotary position embedding in transformers' layout: dimension `i` pairs with `i + d/2`.

use crate::attention::Rows;
use crate::packed::{Positions, SharedPrefix};
use burn::tensor::{Device, Tensor, TensorData};
use std::ops::Range;

/// The rotation tables of a batch's positions, split where a [`Packed`](crate::packed::Packed)
/// batch's shared prefix ends.
pub struct Rope {
    /// Positions `0..p`, absent without a prefix.
    pre: Option<Table>,
    /// Positions `p..T`.
    rest: Table,
}

/// cos and sin, each `[1, 1, len, d]`, or `[B, 1, W, d]` per example.
struct Table {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    pub fn new(t: usize, prefix: usize, d: usize, theta: f64, device: &Device) -> Self {
        let table = |positions: Range<usize>| {
            let len = positions.len();
            Table::at(
                &positions.collect::<Vec<_>>(),
                [1, 1, len, d],
                theta,
                device,
            )
        };
        Self {
            pre: (prefix > 0).then(|| table(0..prefix)),
            rest: table(prefix..t),
        }
    }

    /// The tables of a batch of `b` examples of `t` positions packed with `prefix`: per
    /// example (`[B, 1, W, d]`, slot `j` at position `prefix_of(e) + j`) when its groups'
    /// prefixes differ in length.
    pub fn for_batch(
        prefix: &SharedPrefix,
        (b, t, d): (usize, usize, usize),
        theta: f64,
        device: &Device,
    ) -> Self {
        if !prefix.ragged() {
            return Self::new(t, prefix.len, d, theta, device);
        }
        let w = prefix.width(b, t);
        let positions: Vec<usize> = (0..b)
            .flat_map(|e| (0..w).map(move |j| prefix.prefix_of(e) + j))
            .collect();
        Self {
            pre: None,
            rest: Table::at(&positions, [b, 1, w, d], theta, device),
        }
    }
}

impl Table {
    /// cos and sin of `positions` (one per row of `shape`, `[.., .., rows, d]`).
    fn at(positions: &[usize], shape: [usize; 4], theta: f64, device: &Device) -> Self {
        let d = shape[3];
        let half = d / 2;
        let angle = |p: usize, j: usize| p as f64 / theta.powf((2 * (j % half)) as f64 / d as f64);
        let values = |f: fn(f64) -> f64| {
            let data: Vec<f32> = (0..positions.len() * d)
                .map(|i| f(angle(positions[i / d], i % d)) as f32)
                .collect();
            Tensor::from_data(TensorData::new(data, shape), device)
        };
        Table {
            cos: values(f64::cos),
            sin: values(f64::sin),
        }
    }
}

impl Positions for Rope {
    /// Only called on a batch with a prefix, which this table was built for.
    fn pre(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.pre {
            Some(table) => rotate(x, table.cos.clone(), table.sin.clone()),
            None => x,
        }
    }

    fn rest(&self, x: Tensor<4>) -> Tensor<4> {
        rotate(x, self.rest.cos.clone(), self.rest.sin.clone())
    }

    fn at(&self, x: Tensor<4>, rows: &Rows) -> Tensor<4> {
        let cos = rows.take_positions(self.rest.cos.clone());
        rotate(x, cos, rows.take_positions(self.rest.sin.clone()))
    }
}

/// `x * cos + rotate_half(x) * sin` on `[B, h, T, d]`.
fn rotate(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
    let halves = x.clone().chunk(2, 3);
    let rotated = Tensor::cat(vec![halves[1].clone().neg(), halves[0].clone()], 3);
    x * cos + rotated * sin
}
