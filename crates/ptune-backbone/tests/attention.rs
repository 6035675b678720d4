//! Evaluation's fused attention computes what training's composed attention computes, with the
//! masks the models make (padding, causal, grouped-query heads, a single query row).

mod common;

use burn::tensor::{Distribution, Int, Tensor, TensorData};
use common::device::device;
use common::{max_abs_diff, to_vec};
use ptune_backbone::attention::{attend, attend_composed, attend_fused, group_kv_heads, mask_bias};

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
    // Every position queried, or one row per example (a `[B, 1, 1, T]` mask when not causal).
    for (rows, causal) in [(7, false), (7, true), (1, false)] {
        // 4 query heads over 2 key/value heads, as Llama's grouped-query attention has them.
        let (q, k, v) = (
            random([2, 4, rows, 8]),
            random([2, 2, 7, 8]),
            random([2, 2, 7, 8]),
        );
        let bias = mask_bias(padding(), causal);
        let composed = attend_composed(q.clone(), k.clone(), v.clone(), bias.clone(), 0.35);
        // Shared key/value heads multiplied in groups, and copied per query head.
        for grouped in [true, false] {
            group_kv_heads(grouped);
            let fused = attend_fused(q.clone(), k.clone(), v.clone(), bias.clone(), 0.35);
            group_kv_heads(true);
            assert_close(fused, composed.clone());
        }
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

/// Output and gradients of `q`, `k`, `v` (of a weighted sum, so what flows back is not all
/// ones), with shared key/value heads multiplied in groups or copied per query head.
fn output_and_grads(
    [q, k, v, weights]: &[Tensor<4>; 4],
    bias: &Tensor<4>,
    grouped: bool,
) -> Vec<Vec<f32>> {
    group_kv_heads(grouped);
    let [q, k, v] = [q, k, v].map(|x| x.clone().autodiff().require_grad());
    let out = attend_composed(q.clone(), k.clone(), v.clone(), bias.clone(), 0.35);
    let grads = (out.clone() * weights.clone().autodiff()).sum().backward();
    group_kv_heads(true);
    let grad = |x: &Tensor<4>| to_vec(x.grad(&grads).expect("tracked"));
    vec![to_vec(out), grad(&q), grad(&k), grad(&v)]
}

#[test]
fn grouped_key_value_heads_give_what_copied_ones_give_gradients_too() {
    // 6 query heads over 2 key/value heads; every position queried, or one row per example.
    for (rows, causal) in [(7, false), (7, true), (1, false)] {
        let inputs = [
            random([2, 6, rows, 8]),
            random([2, 2, 7, 8]),
            random([2, 2, 7, 8]),
            random([2, 6, rows, 8]),
        ];
        let bias = mask_bias(padding(), causal);
        let grouped = output_and_grads(&inputs, &bias, true);
        let copied = output_and_grads(&inputs, &bias, false);
        for (what, (a, b)) in ["output", "dq", "dk", "dv"]
            .iter()
            .zip(grouped.iter().zip(&copied))
        {
            let worst = max_abs_diff(a, b);
            assert!(
                worst < 1e-5,
                "{what} differs by {worst} ({rows} rows, causal {causal})"
            );
        }
    }
}
