//! Host-side f32 tensors keyed by PyTorch parameter names: the common currency between burn
//! modules, safetensors files and reference fixtures.

use crate::error::{EncoderError, Result};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::{BTreeMap, BTreeSet};

/// A row-major f32 tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Tensors by name, sorted, as a PyTorch `state_dict` would hold them.
pub type NamedTensors = BTreeMap<String, HostTensor>;

impl HostTensor {
    /// A tensor of `shape`; `data.len()` must be the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }

    /// Copies a burn tensor to the host.
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let data = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        Self { shape, data }
    }

    /// Uploads to `device` as a rank-`D` tensor; the caller has checked the rank.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        Tensor::from_data(
            TensorData::new(self.data.clone(), self.shape.clone()),
            device,
        )
    }

    /// The transpose of a matrix (PyTorch's `nn.Linear` `[out, in]` ↔ burn's `[in, out]`).
    pub fn transposed(&self) -> Self {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Self::new(vec![cols, rows], data)
    }

    /// Rows `start..start + n` of a matrix.
    pub fn rows(&self, start: usize, n: usize) -> Self {
        let cols: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = n;
        Self::new(shape, self.data[start * cols..(start + n) * cols].to_vec())
    }

    /// Stacks tensors along the first axis (all of the same trailing shape).
    pub fn concat_rows(parts: &[HostTensor]) -> Self {
        let mut shape = parts[0].shape.clone();
        shape[0] = parts.iter().map(|p| p.shape[0]).sum();
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        Self::new(shape, data)
    }

    /// The largest absolute element-wise difference to `other` (infinite if shapes differ).
    pub fn max_abs_diff(&self, other: &HostTensor) -> f32 {
        if self.shape != other.shape {
            return f32::INFINITY;
        }
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }
}

/// Hands out named tensors with checked shapes and remembers which were taken, so that a load
/// can refuse weights meant for another kind of encoder.
pub(crate) struct TensorTaker<'a> {
    tensors: &'a NamedTensors,
    taken: BTreeSet<&'a str>,
    pub(crate) device: &'a Device,
}

impl<'a> TensorTaker<'a> {
    pub(crate) fn new(tensors: &'a NamedTensors, device: &'a Device) -> Self {
        Self {
            tensors,
            taken: BTreeSet::new(),
            device,
        }
    }

    /// The host tensor `name`, which must have exactly `shape`.
    pub(crate) fn host(&mut self, name: &str, shape: &[usize]) -> Result<&'a HostTensor> {
        let (key, tensor) = self
            .tensors
            .get_key_value(name)
            .ok_or_else(|| EncoderError::MissingTensor(name.to_string()))?;
        if tensor.shape != shape {
            return Err(EncoderError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: tensor.shape.clone(),
            });
        }
        self.taken.insert(key.as_str());
        Ok(tensor)
    }

    /// A trainable parameter from `name` with exactly `shape`.
    pub(crate) fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>> {
        let host = self.host(name, &shape)?;
        Ok(Param::from_tensor(host.to_tensor(self.device)))
    }

    /// Fails if any tensor was never taken: the weights belong to another encoder shape.
    pub(crate) fn finish(self, kind: &str) -> Result<()> {
        let unused: Vec<&str> = self
            .tensors
            .keys()
            .map(String::as_str)
            .filter(|k| !self.taken.contains(k))
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        Err(EncoderError::Unused {
            kind: kind.to_string(),
            names: unused.join(", "),
        })
    }
}

/// Reads one parameter in PyTorch layout: its value, or its gradient.
pub(crate) trait ParamReader {
    fn read<const D: usize>(&self, param: &Param<Tensor<D>>) -> Option<HostTensor>;
}

/// Reads parameter values.
pub(crate) struct Values;

impl ParamReader for Values {
    fn read<const D: usize>(&self, param: &Param<Tensor<D>>) -> Option<HostTensor> {
        Some(HostTensor::from_tensor(param.val()))
    }
}

/// Reads the gradients of parameters; those without one are left out.
pub(crate) struct Grads<'g>(pub(crate) &'g burn::tensor::Gradients);

impl ParamReader for Grads<'_> {
    fn read<const D: usize>(&self, param: &Param<Tensor<D>>) -> Option<HostTensor> {
        param.val().grad(self.0).map(HostTensor::from_tensor)
    }
}
