//! The backbone is frozen, yet gradients reach the input embeddings — what P-tuning relies on.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Int, Tensor, TensorData};
use common::{fixture, int_tensor, read_ref, to_vec};
use ptune_backbone::{Backbone, ModelBundle, Precision};

/// A scalar of the logits at the last valid position of each example, like a P-tuning loss.
fn loss(
    model: &Backbone,
    embeds: Tensor<3>,
    mask: Tensor<2, Int>,
    rows: &[(usize, usize)],
) -> Tensor<1> {
    let hidden = model.forward_embeds(embeds, mask);
    let logits = model
        .lm_logits(Backbone::gather_rows(hidden, rows))
        .unwrap();
    let [n, v] = logits.dims();
    let weights: Vec<f32> = (0..n * v)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5)
        .collect();
    let w = Tensor::<2>::from_data(TensorData::new(weights, [n, v]), &logits.device());
    burn::tensor::activation::log_softmax(logits, 1)
        .mul(w)
        .sum()
}

struct GradProbe<'a> {
    grads: &'a Gradients,
    params: usize,
    with_grad: usize,
}

impl ModuleVisitor for GradProbe<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.params += 1;
        if param.val().grad(self.grads).is_some() {
            self.with_grad += 1;
        }
    }
}

/// A fixture's reference batch on the autodiff device, with its last-token rows.
struct Case {
    model: Backbone,
    base: Tensor<3>,
    mask: Tensor<2, Int>,
    rows: Vec<(usize, usize)>,
}

impl Case {
    fn new(name: &str, precision: Precision) -> Self {
        let dir = fixture(name);
        let bundle = ModelBundle::open(dir.to_str().unwrap()).unwrap();
        let device = common::device::device().autodiff();
        let model = bundle.backbone_as(&device, precision).unwrap();
        let reference = dir.join("reference.safetensors");
        let ids = read_ref(&reference, "input_ids");
        let mask_ref = read_ref(&reference, "attention_mask");
        let t = ids.shape[1];
        let rows = (0..ids.shape[0])
            .map(|e| {
                let len = mask_ref.i64s[e * t..(e + 1) * t].iter().sum::<i64>() as usize;
                (e, len - 1)
            })
            .collect();
        let base = model.embed_tokens(int_tensor(&ids, &device)).detach();
        Self {
            model,
            base,
            mask: int_tensor(&mask_ref, &device),
            rows,
        }
    }

    /// d loss / d input embeddings, after checking no frozen parameter received a gradient.
    fn input_gradient(&self, name: &str) -> Vec<f32> {
        let embeds = self.base.clone().require_grad();
        let value = loss(&self.model, embeds.clone(), self.mask.clone(), &self.rows);
        let grads = value.backward();
        let grad = to_vec(
            embeds
                .grad(&grads)
                .expect("input embeddings get a gradient"),
        );
        assert!(
            grad.iter().any(|g| g.abs() > 1e-6),
            "{name}: gradient is all zero"
        );
        let mut probe = GradProbe {
            grads: &grads,
            params: 0,
            with_grad: 0,
        };
        self.model.visit(&mut probe);
        assert!(
            probe.params > 10,
            "{name}: visited {} parameters",
            probe.params
        );
        assert_eq!(
            probe.with_grad, 0,
            "{name}: frozen parameters received gradients"
        );
        grad
    }
}

fn check(name: &str) {
    let case = Case::new(name, Precision::F32);
    let grad = case.input_gradient(name);
    let Case {
        model,
        base,
        mask,
        rows,
    } = &case;
    let device = base.device();

    // Central differences on a few coordinates, including a padded row's first token.
    let flat = to_vec(base.clone());
    let dims = base.dims();
    let eps = 1e-2f32;
    for &i in &[0usize, 5, dims[2] + 3, dims[1] * dims[2] + 1] {
        let at = |delta: f32| {
            let mut v = flat.clone();
            v[i] += delta;
            let e = Tensor::<3>::from_data(TensorData::new(v, dims), &device);
            to_vec(loss(model, e, mask.clone(), rows))[0]
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        let err = (numeric - grad[i]).abs();
        assert!(
            err <= 2e-3 + 0.02 * grad[i].abs(),
            "{name}: d loss / d embeds[{i}] is {} by autodiff but {numeric} by finite differences",
            grad[i]
        );
    }
}

#[test]
fn bert_gradients_reach_inputs_only() {
    check("bert");
}

#[test]
fn gpt2_gradients_reach_inputs_only() {
    check("gpt2");
}

#[test]
fn llama_gradients_reach_inputs_only() {
    check("llama_gqa_tied");
}

/// With bf16 weights the gradient reaching the prompts points where f32's does (cosine ≥ 0.99)
/// and the frozen weights still get none.
#[test]
fn bf16_gradients_follow_f32() {
    for name in ["bert", "gpt2", "llama_gqa_tied"] {
        let f32_grad = Case::new(name, Precision::F32).input_gradient(name);
        let bf16_grad = Case::new(name, Precision::Bf16).input_gradient(name);
        let dot: f32 = f32_grad.iter().zip(&bf16_grad).map(|(a, b)| a * b).sum();
        let norm = |g: &[f32]| g.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(&f32_grad) * norm(&bf16_grad));
        eprintln!("{name}: cosine {cosine}");
        assert!(
            cosine >= 0.99,
            "{name}: bf16 gradient has cosine {cosine} to f32's"
        );
        assert!(
            cosine < 1.0 - 1e-7,
            "{name}: bf16 gradient equals f32's: nothing was lowered"
        );
    }
}
