//! Evaluation's fused attention computes what training's composed attention computes, with the
//! masks the models make (padding, causal, grouped-query heads, a single query row).

mod common;

use burn::tensor::{Distribution, Int, Tensor, TensorData};
use common::device::device;
use common::{max_abs_diff, to_vec};
use ptune_backbone::attention::{attend, attend_composed, attend_fused, mask_bias};

fn random(dims: [usize; 4]) -> Tensor<4> {
    Tensor::random(dims, Distribution::Normal(0.0, 1.0), &device())
}

/// Two examples of 7 positions, the second padded after 4.
fn padding() -> Tensor<2, Int> {
    let mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
    Tensor::from_data(TensorData::new(mask.to_vec(), [2, 7]), &device())
}

fn assert_close(fused: Tensor<4>, composed: Tensor<4>) {
    let worst = max_abs_diff(&to_vec(fused), &to_vec(composed));
    assert!(
        worst < 1e-5,
        "fused and composed attention differ by {worst}"
    );
}

#[test]
fn fused_attention_matches_the_composed_one() {
    for causal in [false, true] {
        // 4 query heads over 2 key/value heads, as Llama's grouped-query attention has them.
        let (q, k, v) = (
            random([2, 4, 7, 8]),
            random([2, 2, 7, 8]),
            random([2, 2, 7, 8]),
        );
        let bias = mask_bias(padding(), causal);
        let fused = attend_fused(q.clone(), k.clone(), v.clone(), bias.clone(), 0.35);
        let composed = attend_composed(q, k, v, bias, 0.35);
        assert_close(fused, composed);
    }
}

#[test]
fn a_single_query_row_attends_like_the_others() {
    let (q, k, v) = (
        random([2, 4, 1, 8]),
        random([2, 4, 7, 8]),
        random([2, 4, 7, 8]),
    );
    let bias = mask_bias(padding(), false);
    assert_close(
        attend(q.clone(), k.clone(), v.clone(), bias.clone(), 0.35),
        attend_composed(q, k, v, bias, 0.35),
    );
}

#[test]
fn tracked_inputs_keep_their_gradient() {
    let q = random([1, 2, 5, 4]).autodiff().require_grad();
    let (k, v) = (
        random([1, 2, 5, 4]).autodiff(),
        random([1, 2, 5, 4]).autodiff(),
    );
    let bias = mask_bias(Tensor::<2, Int>::ones([1, 5], &device()), true);
    let out = attend(q.clone(), k, v, bias, 0.5);
    let grads = out.sum().backward();
    assert!(q.grad(&grads).is_some(), "no gradient reached the queries");
}
