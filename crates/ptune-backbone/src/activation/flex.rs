//! GELU (erf), SiLU and SwiGLU's `silu(gate) * up` as burn backend-extension ops on flex, each
//! with a backward pass of its own: one vectorized pass each way ([`kernels`]) where flex runs a
//! scalar `libm` call per element on one core (GELU) or two or three tracked ops (SiLU is
//! `x * sigmoid(x)`), and keeps only the inputs for the backward pass (not SwiGLU's
//! `silu(gate)`). Other backends keep burn's ops.

use super::kernels;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, DType, Dispatch, Flex, backend_extension};
use burn::tensor::{Device, Tensor};
use ptune_kernels::dense;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether flex runs GELU and SiLU through [`kernels`]; process-wide, on by default.
static FUSED: AtomicBool = AtomicBool::new(true);

/// Turns the kernels off (`false`: flex's own ops) or back on: what the bench's `--ablate
/// fused-activations` measures against.
pub fn fuse_activations(on: bool) {
    FUSED.store(on, Ordering::Relaxed);
}

/// GELU (erf), SiLU and SwiGLU, forward and backward.
#[backend_extension(Flex, Autodiff)]
pub trait FusedActivation: Backend {
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn gelu_erf_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The gradients of the gate and of the up projection.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// GELU (erf) of `x`: flex's through the kernels, other backends' their own.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return burn::tensor::activation::gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedActivation>::gelu_erf(x.into_dispatch()))
}

/// SiLU of `x`: flex's through the kernels, other backends' their own.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedActivation>::silu(x.into_dispatch()))
}

/// `silu(gate) * up` of two tensors of one shape: flex's through the kernels, other backends'
/// their own ops.
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if !on_flex(&gate) || up.dtype() != DType::F32 || gate.dims() != up.dims() {
        return burn::tensor::activation::silu(gate) * up;
    }
    let (gate, up) = (gate.into_dispatch(), up.into_dispatch());
    Tensor::from_dispatch(<Dispatch as FusedActivation>::swiglu(gate, up))
}

/// Whether `x` takes the kernels: f32 on flex (ptune's activations are f32 in every precision),
/// unless turned off. Only such tensors reach [`FusedActivation`]'s flex implementation.
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    FUSED.load(Ordering::Relaxed) && x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

impl FusedActivation for Flex {
    fn gelu_erf(x: FlexTensor) -> FlexTensor {
        forward(dense(x), kernels::gelu)
    }

    fn gelu_erf_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        backward(dense(x), dense(grad), kernels::gelu_backward)
    }

    fn silu(x: FlexTensor) -> FlexTensor {
        forward(dense(x), kernels::silu)
    }

    fn silu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        backward(dense(x), dense(grad), kernels::silu_backward)
    }

    fn swiglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        let (gate, mut up) = (dense(gate), dense(up));
        kernels::swiglu(gate.storage::<f32>(), up.storage_mut::<f32>());
        up
    }

    fn swiglu_backward(
        gate: FlexTensor,
        up: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (gate, mut up, mut grad) = (dense(gate), dense(up), dense(grad));
        let ups = up.storage_mut::<f32>();
        kernels::swiglu_backward(gate.storage::<f32>(), ups, grad.storage_mut::<f32>());
        (grad, up)
    }
}

/// `kernel` over `x`'s elements, in place when `x` is not shared.
fn forward(mut x: FlexTensor, kernel: fn(&mut [f32])) -> FlexTensor {
    kernel(x.storage_mut::<f32>());
    x
}

/// `kernel(x, grad)` into `grad`'s elements.
fn backward(x: FlexTensor, mut grad: FlexTensor, kernel: fn(&[f32], &mut [f32])) -> FlexTensor {
    kernel(x.storage::<f32>(), grad.storage_mut::<f32>());
    grad
}

impl<B: FusedActivation, C: CheckpointStrategy> FusedActivation for Autodiff<B, C> {
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<B, C>(x, Which::Gelu)
    }

    fn gelu_erf_backward(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("the backward pass runs on the inner backend")
    }

    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<B, C>(x, Which::Silu)
    }

    fn silu_backward(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("the backward pass runs on the inner backend")
    }

    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let inner = |x: &FloatTensor<Self>| <Self as AutodiffBackend>::inner(x.clone());
        let (gate_inner, up_inner) = (inner(&gate), inner(&up));
        match (SwiGlu.prepare::<C>([gate.node(), up.node()]))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&gate), prep.checkpoint(&up));
                prep.finish(state, B::swiglu(gate_inner, up_inner))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::swiglu(gate_inner, up_inner)),
        }
    }

    fn swiglu_backward(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the backward pass runs on the inner backend")
    }
}

/// Which activation a graph node computes.
#[derive(Debug, Clone, Copy)]
enum Which {
    Gelu,
    Silu,
}

impl Which {
    fn forward<B: FusedActivation>(self, x: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Self::Gelu => B::gelu_erf(x),
            Self::Silu => B::silu(x),
        }
    }

    fn backward<B: FusedActivation>(
        self,
        x: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        match self {
            Self::Gelu => B::gelu_erf_backward(x, grad),
            Self::Silu => B::silu_backward(x, grad),
        }
    }
}

/// The autodiff node of an activation: keeps its input, and takes the gradient through the
/// inner backend's backward op.
#[derive(Debug)]
struct Activation(Which);

impl<B: FusedActivation> Backward<B, 1> for Activation {
    type State = NodeId;

    fn backward(self, ops: Ops<NodeId, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let x = checkpointer.retrieve_node_output(ops.state);
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            self.0.backward::<B>(x, grad)
        });
    }
}

/// The autodiff node of SwiGLU: keeps the gate and the up projection, and gives both their
/// gradients from one backward op.
#[derive(Debug)]
struct SwiGlu;

impl<B: FusedActivation> Backward<B, 2> for SwiGlu {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let (gate, up) = ops.state;
        let (gate, up) = (
            ckpt.retrieve_node_output(gate),
            ckpt.retrieve_node_output(up),
        );
        let grad = grads.consume::<B>(&ops.node);
        let (d_gate, d_up) = B::swiglu_backward(gate, up, grad);
        let [gate_node, up_node] = ops.parents;
        for (node, grad) in [(gate_node, d_gate), (up_node, d_up)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

fn tracked<B: FusedActivation, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    which: Which,
) -> FloatTensor<Autodiff<B, C>> {
    let inner = <Autodiff<B, C> as AutodiffBackend>::inner(x.clone());
    match (Activation(which).prepare::<C>([x.node()]))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, which.forward::<B>(inner))
        }
        OpsKind::UnTracked(prep) => prep.finish(which.forward::<B>(inner)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    /// Output and input gradient of `activation` on `x` (tracked), with the kernels on or off.
    /// The gradient is of a sum weighted by `weights`, so what flows in is not all ones.
    fn value_and_grad(
        activation: fn(Tensor<2>) -> Tensor<2>,
        x: &Tensor<2>,
        weights: &Tensor<2>,
        fused: bool,
    ) -> (TensorData, TensorData) {
        fuse_activations(fused);
        let x = x.clone().require_grad();
        let y = activation(x.clone());
        let grads = (y.clone() * weights.clone()).sum().backward();
        let grad = x.grad(&grads).expect("x is tracked");
        fuse_activations(true);
        (y.into_data(), grad.into_data())
    }

    #[test]
    fn swiglu_agrees_with_flexs_ops_for_both_inputs_on_views_too() {
        let device = Device::flex().autodiff();
        let random = |std| Tensor::<2>::random([24, 40], Distribution::Normal(0.0, std), &device);
        let (gate, up, weights) = (random(3.0), random(1.0), random(1.0));
        let views = |x: &Tensor<2>| {
            [
                x.clone(),
                x.clone().transpose(),
                x.clone().slice([2..20, 5..23]),
            ]
        };
        let [w_views, g_views, u_views] = [&weights, &gate, &up].map(views);
        for ((gate, up), weights) in g_views.into_iter().zip(u_views).zip(w_views) {
            let run = |fused| {
                fuse_activations(fused);
                let (gate, up) = (gate.clone().require_grad(), up.clone().require_grad());
                let y = swiglu(gate.clone(), up.clone());
                let grads = (y.clone() * weights.clone()).sum().backward();
                fuse_activations(true);
                let grad = |x: &Tensor<2>| x.grad(&grads).expect("tracked").into_data();
                [y.into_data(), grad(&gate), grad(&up)]
            };
            for (got, want) in run(true).iter().zip(&run(false)) {
                got.assert_approx_eq::<f32>(want, Tolerance::absolute(5e-6));
            }
        }
    }

    #[test]
    fn the_kernels_agree_with_flexs_ops_forward_and_backward_on_views_too() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([24, 40], Distribution::Normal(0.0, 3.0), &device);
        // A transposed view and a slice: storage not in the tensor's order.
        for x in [x.clone(), x.clone().transpose(), x.slice([2..20, 5..33])] {
            let weights = Tensor::<2>::random(x.dims(), Distribution::Default, &device);
            for activation in [gelu::<2>, silu::<2>] {
                let (y, dy) = value_and_grad(activation, &x, &weights, true);
                let (want_y, want_dy) = value_and_grad(activation, &x, &weights, false);
                y.assert_approx_eq::<f32>(&want_y, Tolerance::absolute(2e-6));
                dy.assert_approx_eq::<f32>(&want_dy, Tolerance::absolute(2e-6));
            }
        }
    }
}
