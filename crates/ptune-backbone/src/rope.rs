//! Rotary position embedding in transformers' layout: dimension `i` pairs with `i + d/2`.

use crate::attention::Rows;
use crate::packed::Positions;
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

/// cos and sin, each `[1, 1, len, d]`.
struct Table {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    pub fn new(t: usize, prefix: usize, d: usize, theta: f64, device: &Device) -> Self {
        let half = d / 2;
        let angle = |p: usize, j: usize| p as f64 / theta.powf((2 * (j % half)) as f64 / d as f64);
        let table = |positions: Range<usize>| {
            let len = positions.len();
            let values = |f: fn(f64) -> f64| {
                let data: Vec<f32> = (0..len * d)
                    .map(|i| f(angle(positions.start + i / d, i % d)) as f32)
                    .collect();
                Tensor::from_data(TensorData::new(data, [1, 1, len, d]), device)
            };
            Table {
                cos: values(f64::cos),
                sin: values(f64::sin),
            }
        };
        Self {
            pre: (prefix > 0).then(|| table(0..prefix)),
            rest: table(prefix..t),
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
