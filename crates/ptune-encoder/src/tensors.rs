//! Host-side f32 tensors keyed by PyTorch parameter names: the common currency between burn
//! modules, safetensors files and reference fixtures.

use crate::error::{EncoderError, Result};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeSet;

pub use ptune_host::{HostTensor, NamedTensors};

/// Copies between burn and a [`HostTensor`] (ptune-host knows nothing of burn).
pub trait HostTensorExt {
    /// Copies a burn tensor to the host.
    fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self;
    /// Uploads to `device` as a rank-`D` tensor; the caller has checked the rank.
    fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D>;
}

impl HostTensorExt for HostTensor {
    fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let data = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        Self { shape, data }
    }

    fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        Tensor::from_data(
            TensorData::new(self.data.clone(), self.shape.clone()),
            device,
        )
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

/// Reads the gradients an optimizer is handed, by parameter id.
pub(crate) struct ParamGrads<'g>(pub(crate) &'g burn::optim::GradientsParams);

impl ParamReader for ParamGrads<'_> {
    fn read<const D: usize>(&self, param: &Param<Tensor<D>>) -> Option<HostTensor> {
        self.0.get::<D>(param.id).map(HostTensor::from_tensor)
    }
}
