//! 2-D f32 matmuls on flex written straight into their output buffer.
//!
//! burn-flex 0.22 allocates a matmul's output as zeroed bytes and then, to align them, copies
//! them into a second allocation before the product is written (`FlexTensor::empty`): two fresh
//! buffers and a copy per matmul, 44% of the LSTM encoder's forward + backward and about 2% of
//! a bert-base training step (docs/performance.md, "One allocation per matmul on flex"). Here the
//! same `gemm` call, with the same arguments and threads, writes into one `Vec<f32>`, so the
//! products are the same to the bit. The backward pass takes both gradients through the same
//! op on transposed views (no copies), as burn's own matmul node does. Other backends, other
//! dtypes and batched matmuls keep burn's op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, DType, Dispatch, Flex, backend_extension};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether flex's 2-D matmuls go through [`OneBufferMatmul`]; process-wide, on by default.
static ON: AtomicBool = AtomicBool::new(true);

/// Turns the one-buffer matmul off (`false`: flex's own) or back on: what the bench's `--ablate
/// one-buffer-matmul` measures against.
pub fn one_buffer_matmuls(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// A 2-D matmul whose output is allocated once.
#[backend_extension(Flex, Autodiff)]
pub trait OneBufferMatmul: Backend {
    /// `[m, k] @ [k, n]` for operands of any strides.
    fn matmul_2d(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `lhs @ rhs`: f32 on flex through [`OneBufferMatmul`], otherwise burn's matmul.
pub fn matmul(lhs: Tensor<2>, rhs: Tensor<2>) -> Tensor<2> {
    if !takes_one_buffer(&lhs, &rhs) {
        return lhs.matmul(rhs);
    }
    let (lhs, rhs) = (lhs.into_dispatch(), rhs.into_dispatch());
    Tensor::from_dispatch(<Dispatch as OneBufferMatmul>::matmul_2d(lhs, rhs))
}

/// `x @ weight + bias` for rows `x` `[n, in]` and a weight `[in, out]` of `x`'s dtype: on flex
/// the product in one buffer and the bias added as burn's `linear` adds it (the same values);
/// elsewhere burn's `linear`, which a backend may fuse.
pub fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    if !takes_one_buffer(&x, &weight) {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let product = matmul(x, weight);
    match bias {
        Some(bias) => product + bias.unsqueeze(),
        None => product,
    }
}

/// Whether both operands are f32 on flex (only such tensors reach the flex implementation),
/// unless turned off.
fn takes_one_buffer(lhs: &Tensor<2>, rhs: &Tensor<2>) -> bool {
    ON.load(Ordering::Relaxed)
        && lhs.dtype() == DType::F32
        && rhs.dtype() == DType::F32
        && lhs.device().inner() == Device::flex()
}

/// burn-flex's threshold (multiply-adds) above which a product is spread over rayon's threads.
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;

impl OneBufferMatmul for Flex {
    fn matmul_2d(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
        let [m, k] = dims(&lhs);
        let [k_rhs, n] = dims(&rhs);
        assert_eq!(k, k_rhs, "matmul: inner dimensions must match");
        let ((lhs_rs, lhs_cs), (rhs_rs, rhs_cs)) = (strides(&lhs), strides(&rhs));
        let mut out = vec![0f32; m * n];
        let parallelism = match m.saturating_mul(n).saturating_mul(k) >= PARALLEL_THRESHOLD {
            true => gemm::Parallelism::Rayon(0),
            false => gemm::Parallelism::None,
        };
        let (lhs_ptr, rhs_ptr) = (first(&lhs), first(&rhs));
        // SAFETY: each operand's layout (shape, strides, offset) addresses elements of its own
        // storage, as flex's kernels read it; `out` holds `m * n` elements, row-major.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs_ptr,
                lhs_cs,
                lhs_rs,
                rhs_ptr,
                rhs_cs,
                rhs_rs,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        FlexTensor::from_data(TensorData::new(out, [m, n]))
    }
}

/// A 2-D tensor's shape.
fn dims(x: &FlexTensor) -> [usize; 2] {
    let shape = x.layout().shape();
    assert_eq!(shape.num_dims(), 2, "matmul_2d takes 2-D tensors");
    [shape[0], shape[1]]
}

/// A 2-D tensor's (row, column) strides in elements.
fn strides(x: &FlexTensor) -> (isize, isize) {
    let s = x.layout().strides();
    (s[0], s[1])
}

/// A pointer to a tensor's first element (its view's offset into the storage).
fn first(x: &FlexTensor) -> *const f32 {
    x.storage::<f32>()[x.layout().start_offset()..].as_ptr()
}

impl<B: OneBufferMatmul, C: CheckpointStrategy> OneBufferMatmul for Autodiff<B, C> {
    fn matmul_2d(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        let inner = |x: &FloatTensor<Self>| <Self as AutodiffBackend>::inner(x.clone());
        let (lhs_inner, rhs_inner) = (inner(&lhs), inner(&rhs));
        let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
        match (Matmul2d.prepare::<C>([lhs.node(), rhs.node()]))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                // Each operand is kept only for the other's gradient, as burn's matmul does.
                let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
                let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
                prep.finish((lhs_state, rhs_state), B::matmul_2d(lhs_inner, rhs_inner))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::matmul_2d(lhs_inner, rhs_inner)),
        }
    }
}

/// The autodiff node of [`OneBufferMatmul::matmul_2d`]: `grad @ rhsᵀ` and `lhsᵀ @ grad`.
#[derive(Debug)]
struct Matmul2d;

impl<B: OneBufferMatmul> Backward<B, 2> for Matmul2d {
    type State = (Option<NodeId>, Option<NodeId>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let (lhs, rhs) = ops.state;
        let lhs = lhs.map(|id| ckpt.retrieve_node_output::<FloatTensor<B>>(id));
        let rhs = rhs.map(|id| ckpt.retrieve_node_output::<FloatTensor<B>>(id));
        let transposed = |x: Option<FloatTensor<B>>| B::float_transpose(x.expect("kept"));
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| B::matmul_2d(grad, transposed(rhs)),
            |grad| B::matmul_2d(transposed(lhs), grad),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, s};

    /// Values and both gradients of `lhs @ rhs` weighted by `weights`, one-buffer or flex's.
    fn run(on: bool, lhs: &Tensor<2>, rhs: &Tensor<2>, weights: &Tensor<2>) -> [Vec<f32>; 3] {
        one_buffer_matmuls(on);
        let (l, r) = (lhs.clone().require_grad(), rhs.clone().require_grad());
        let out = matmul(l.clone(), r.clone());
        one_buffer_matmuls(true);
        let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().expect("f32");
        let values = host(out.clone());
        let grads = (out * weights.clone()).sum().backward();
        let grad = |t: &Tensor<2>| host(t.grad(&grads).expect("a gradient"));
        [values, grad(&l), grad(&r)]
    }

    /// The same values and gradients as flex's matmul, to the bit, for contiguous operands,
    /// transposed views (the tied heads' `embeddingsᵀ`) and a slice of rows, above and below
    /// the size at which the product is spread over threads.
    #[test]
    fn products_and_gradients_are_flexs_to_the_bit() {
        let device = Device::flex().autodiff();
        let random = |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Default, &device);
        for (m, k, n) in [(3, 5, 7), (96, 768, 300), (200, 200, 200)] {
            let cases = [
                (random([m, k]), random([k, n])),
                (random([m, k]), random([n, k]).transpose()),
                (random([k, m]).transpose(), random([k, n])),
                (random([m + 4, k]).slice(s![2..m + 2]), random([k, n])),
            ];
            for (lhs, rhs) in cases {
                let weights = random([m, n]);
                let ours = run(true, &lhs, &rhs, &weights);
                let flex = run(false, &lhs, &rhs, &weights);
                assert_eq!(ours, flex, "{m}x{k}x{n}");
            }
        }
    }

    /// A frozen right operand (a model's weight) gets no gradient and the left one still does;
    /// other dtypes keep burn's op.
    #[test]
    fn a_frozen_weight_takes_no_gradient() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([4, 6], Distribution::Default, &device).require_grad();
        let w = Tensor::<2>::random([6, 3], Distribution::Default, &device);
        let grads = matmul(x.clone(), w.clone()).sum().backward();
        assert!(w.grad(&grads).is_none());
        let expected = Tensor::<2>::ones([4, 3], &device).matmul(w.transpose());
        let got = x.grad(&grads).expect("a gradient");
        got.into_data().assert_eq(&expected.into_data(), true);
    }
}
