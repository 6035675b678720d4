//! Adam's step on the CPU backends (flex, libtorch's CPU) as one backend-extension op over the
//! tensors' storage, in place.
// burn marks libtorch deprecated; it is ptune's fastest CPU backend and its CUDA path.
#![allow(deprecated)]

use super::StepScalars;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DType, Dispatch, Flex, backend_extension};
use burn::tensor::{Device, Tensor};
use ptune_kernels::dense;
use rayon::prelude::*;

#[cfg(feature = "tch")]
use burn::backend::libtorch::TchTensor;

/// Adam's step for one parameter tensor: the new parameter and both new moments.
#[backend_extension(Flex, LibTorch: cfg(feature = "tch"))]
pub trait AdamStep: Backend {
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        scalars: StepScalars,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether the one-pass step takes `param` and `grad`: f32 tensors of one shape on a CPU
/// backend, not tracked (the optimizer gets the inner tensors; anything else goes to burn's
/// `Adam`).
pub(super) fn takes<const D: usize>(param: &Tensor<D>, grad: &Tensor<D>) -> bool {
    let plain =
        |x: &Tensor<D>| x.dtype() == DType::F32 && on_cpu(&x.device()) && !x.is_require_grad();
    plain(param) && plain(grad) && param.dims() == grad.dims()
}

fn on_cpu(device: &Device) -> bool {
    #[cfg(feature = "tch")]
    if *device == Device::libtorch() {
        return true;
    }
    *device == Device::flex()
}

/// One step: `param`, `moment_1` and `moment_2` updated from `grad`, in place where not shared.
pub(super) fn step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    s: StepScalars,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (p, m, v) = <Dispatch as AdamStep>::adam_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        s,
    );
    let wrap = Tensor::from_dispatch;
    (wrap(p), wrap(m), wrap(v))
}

impl AdamStep for Flex {
    fn adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        s: StepScalars,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut p, g) = (dense(param), dense(grad));
        let (mut m, mut v) = (dense(moment_1), dense(moment_2));
        kernel(
            p.storage_mut(),
            g.storage(),
            m.storage_mut(),
            v.storage_mut(),
            s,
        );
        (p, m, v)
    }
}

/// libtorch's CPU tensors: the same kernel over their memory.
#[cfg(feature = "tch")]
impl AdamStep for burn::backend::LibTorch {
    fn adam_step(
        param: TchTensor,
        grad: TchTensor,
        moment_1: TchTensor,
        moment_2: TchTensor,
        s: StepScalars,
    ) -> (TchTensor, TchTensor, TchTensor) {
        let (p, m, v) = (writable(param), writable(moment_1), writable(moment_2));
        let g = grad.tensor.contiguous();
        let n = p.tensor.numel();
        // SAFETY: four f32 CPU tensors (`takes`) of `n` elements each, contiguous; `p`, `m` and
        // `v` own their storage (`writable`), so nothing else reads them while they are written,
        // and `g` is a fourth buffer (the gradient is never a parameter or a moment).
        unsafe {
            let out = |t: &TchTensor| std::slice::from_raw_parts_mut(t.tensor.data_ptr().cast(), n);
            let g = std::slice::from_raw_parts(g.data_ptr().cast::<f32>(), n);
            kernel(out(&p), g, out(&m), out(&v), s);
        }
        (p, m, v)
    }
}

/// `x` if it can be written in place (contiguous, its storage its own), else a copy that can.
#[cfg(feature = "tch")]
fn writable(x: TchTensor) -> TchTensor {
    match x.can_mut() && x.tensor.is_contiguous() {
        true => x,
        false => TchTensor::new(x.tensor.copy().contiguous()),
    }
}

/// Elements per parallel chunk: a few hundred KB of each stream.
const CHUNK: usize = 1 << 15;

/// Adam over slices, in chunks across the cores.
fn kernel(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: StepScalars) {
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| serial(p, g, m, v, s));
}

/// The step element by element, each operation in the order and precision of burn's `Adam`
/// (decay, moments, bias-corrected ratio, scaled by the learning rate), so the result is the
/// same to the bit.
fn serial(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: StepScalars) {
    let (keep_1, keep_2) = (super::BETA_1, super::BETA_2);
    let (take_1, take_2) = (1.0 - keep_1, 1.0 - keep_2);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        let g = *p * s.weight_decay + g;
        *m = *m * keep_1 + g * take_1;
        *v = *v * keep_2 + (g * g) * take_2;
        let update = (*m * s.factor) / (v.sqrt() + s.epsilon);
        *p -= update * s.lr;
    }
}
