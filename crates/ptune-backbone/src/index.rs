//! Host positions → the `Int` index tensors `select` takes.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// A 1-D index tensor of `values`, for gathering rows by host-computed positions.
pub(crate) fn index_tensor(
    values: impl IntoIterator<Item = usize>,
    device: &Device,
) -> Tensor<1, Int> {
    let values: Vec<i64> = values.into_iter().map(|v| v as i64).collect();
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}
