//! Candidate scores match transformers (fixtures from scripts/make_task_fixtures.py) on masked
//! and causal tiny models, for one- and multi-token answers, with and without prompt vectors;
//! and a task loss's gradient reaches the prompt encoder and nothing of the backbone, the same
//! with each row's passage kept apart.

#[path = "../../ptune-backbone/tests/common/device.rs"]
mod device;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::TokenizerSpec;
use ptune_data::task::{RowBuilder, ScoredExample, TaskBatch, TaskDef};
use ptune_encoder::{EncoderKind, PromptEncoder, PromptEncoderConfig};
use ptune_train::candidates::{
    TaskTensors, candidate_scores, scores_keeping_leads, task_grads, task_loss,
};
use ptune_train::model::{PrefixCache, row_groups, to_host};
use ptune_train::rank::rank_candidates;
use ptune_train::spec::tokenizer_spec;
use serde_json::Value;

fn model_dir(name: &str) -> String {
    format!(
        "{}/../ptune-backbone/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/task_scores/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's examples scored as ptune builds them.
fn scored(
    bundle: &ModelBundle,
    spec: &TokenizerSpec,
    case: &Value,
) -> (TaskDef, Vec<ScoredExample>) {
    let mut def = case["task"].clone();
    def.as_object_mut().unwrap().remove("examples");
    let def: TaskDef = serde_json::from_value(def).unwrap();
    def.check().unwrap();
    let template = def.parsed_template().unwrap();
    let rows = RowBuilder::new(&bundle.tokenizer, spec, &template).unwrap();
    let labels = rows.label_ids(&def.answer).unwrap();
    let examples = case["examples"].as_array().unwrap().iter().enumerate();
    let scored = examples
        .map(|(i, record)| {
            let example = def.example(record.as_object().unwrap(), i + 1).unwrap();
            rows.build_example(&example, labels.as_deref(), i).unwrap()
        })
        .collect();
    (def, scored)
}

fn prompts(case: &Value, device: &Device) -> Option<Tensor<2>> {
    let rows = case["prompts"].as_array().unwrap();
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    (!rows.is_empty()).then(|| {
        let shape = [rows.len(), flat.len() / rows.len()];
        Tensor::from_data(TensorData::new(flat, shape), device)
    })
}

#[test]
fn candidate_scores_match_transformers() {
    let device = device::device();
    for name in ["bert", "roberta", "gpt2", "llama_gqa_tied"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        let mut shared_contexts = 0;
        for case in fixture(name)["tasks"].as_array().unwrap() {
            let (def, examples) = scored(&bundle, &spec, case);
            let refs: Vec<&ScoredExample> = examples.iter().collect();
            let batch = TaskBatch::collate(&refs, spec.pad_id).unwrap();
            let tensors = TaskTensors::new(&batch, backbone.vocab_size(), def.score, &device);
            let shared = &tensors.rows.shared_prefix;
            if !batch.one_target_per_row() && shared.len > 0 && shared.groups() > 1 {
                shared_contexts += 1;
            }
            let scores = candidate_scores(&backbone, prompts(case, &device), &tensors).unwrap();
            let got = to_host(scores).unwrap();
            let expected = case["scores"].as_array().unwrap();
            for (e, row) in expected.iter().enumerate() {
                for (c, want) in row.as_array().unwrap().iter().enumerate() {
                    let (want, got) = (want.as_f64().unwrap(), got[e * batch.width + c] as f64);
                    assert!(
                        (want - got).abs() < 1e-4,
                        "{name} {}: example {e} candidate {c}: transformers {want}, ptune {got}",
                        def.name
                    );
                }
            }
        }
        if matches!(name, "gpt2" | "llama_gqa_tied") {
            // Candidates of several tokens (a row each) computed their example's context once.
            assert!(
                shared_contexts > 0,
                "{name}: no case shared a context per example"
            );
        }
    }
}

/// Evaluation runs examples in length order (less padding) and must still give each example
/// its own prediction: the best candidate by transformers' scores.
#[test]
fn evaluation_in_length_order_gives_each_example_its_own_prediction() {
    let device = device::device();
    let mut reordered = 0;
    for name in ["bert", "llama_gqa_tied"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        for case in fixture(name)["tasks"].as_array().unwrap() {
            let (def, examples) = scored(&bundle, &spec, case);
            let lengths: Vec<usize> = examples.iter().map(|e| e.rows[0].input_ids.len()).collect();
            reordered += usize::from(lengths.windows(2).any(|w| w[0] > w[1]));
            let prompts = prompts(case, &device);
            let got = rank_candidates(
                &backbone,
                prompts.as_ref(),
                &examples,
                def.score,
                spec.pad_id,
                (None, &device),
            )
            .unwrap();
            let want: Vec<usize> = (case["scores"].as_array().unwrap().iter())
                .map(|row| {
                    let row: Vec<f64> = row
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect();
                    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
                })
                .collect();
            assert_eq!(got.best, want, "{name} {}", def.name);
        }
    }
    assert!(
        reordered > 0,
        "some case's examples were not in length order"
    );
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

fn probe(module: &impl Module, grads: &Gradients) -> (usize, usize) {
    let mut p = GradProbe {
        grads,
        params: 0,
        with_grad: 0,
    };
    module.visit(&mut p);
    (p.params, p.with_grad)
}

#[test]
fn a_task_loss_trains_the_prompt_encoder_only() {
    let device = device::device().autodiff();
    for name in ["bert", "gpt2"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone: Backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        let case = &fixture(name)["tasks"][0];
        let (def, examples) = scored(&bundle, &spec, case);
        let refs: Vec<&ScoredExample> = examples.iter().collect();
        let batch = TaskBatch::collate(&refs, spec.pad_id).unwrap();
        assert!(
            !batch.one_target_per_row(),
            "the multi-token path is the one under test"
        );
        let tensors = TaskTensors::new(&batch, backbone.vocab_size(), def.score, &device);
        let n = def.parsed_template().unwrap().n_prompts();
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, n, backbone.hidden_size())
            .init(&device)
            .unwrap();
        let scores = candidate_scores(&backbone, Some(encoder.forward()), &tensors).unwrap();
        let grads = task_loss(scores, &tensors).backward();
        let (params, with_grad) = probe(&encoder, &grads);
        assert_eq!(
            with_grad, params,
            "{name}: every encoder parameter gets a gradient"
        );
        let (params, with_grad) = probe(&backbone, &grads);
        assert!(params > 0);
        assert_eq!(
            with_grad, 0,
            "{name}: no backbone parameter gets a gradient"
        );
    }
}

/// Every encoder parameter's gradient, flattened, in visiting order.
struct GradValues<'a> {
    grads: &'a GradientsParams,
    values: Vec<Vec<f32>>,
}

impl ModuleVisitor for GradValues<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = self.grads.get::<D>(param.id).expect("a gradient");
        self.values
            .push(to_host(grad.flatten::<1>(0, D - 1)).unwrap());
    }
}

#[test]
fn a_step_in_parts_has_the_whole_batchs_loss_and_gradient() {
    let device = device::device().autodiff();
    for name in ["bert", "llama_gqa_tied"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone: Backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        let case = &fixture(name)["tasks"][0];
        let (def, examples) = scored(&bundle, &spec, case);
        // Three examples (the fixture's two and the first again), to split unevenly.
        let refs: Vec<&ScoredExample> = examples.iter().chain(&examples[..1]).collect();
        let n = def.parsed_template().unwrap().n_prompts();
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, n, backbone.hidden_size())
            .init(&device)
            .unwrap();
        let model = (&backbone, &encoder, &spec);
        let whole = step_grads(model, &def, std::slice::from_ref(&refs), None);
        // Parts of unequal sizes: each part's mean is weighted by its share.
        let parts = step_grads(model, &def, &[refs[..1].to_vec(), refs[1..].to_vec()], None);
        assert_same_step(name, &whole, &parts);
    }
}

#[test]
fn a_step_in_row_groups_has_the_whole_batchs_loss_and_gradient() {
    let device = device::device().autodiff();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if device.clone().inner() == Device::flex() && cores > 1 {
        assert!(row_groups(&device, 8) > 1, "flex computes 8 rows in groups");
    }
    for name in ["bert", "llama_gqa_tied"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone: Backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        let (def, examples) = scored(&bundle, &spec, &fixture(name)["tasks"][0]);
        let refs: Vec<&ScoredExample> = examples.iter().cycle().take(8).collect();
        let n = def.parsed_template().unwrap().n_prompts();
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, n, backbone.hidden_size())
            .init(&device)
            .unwrap();
        let model = (&backbone, &encoder, &spec);
        // One example a part is one group each, in turn; one part of 8 is computed in groups.
        let singles: Vec<Vec<&ScoredExample>> = refs.iter().map(|e| vec![*e]).collect();
        let in_turn = step_grads(model, &def, &singles, None);
        let grouped = step_grads(model, &def, std::slice::from_ref(&refs), None);
        assert_same_step(name, &in_turn, &grouped);
    }
}

/// The encoder's gradient (every parameter, flattened) and the loss of a step on `parts`.
fn step_grads(
    (backbone, encoder, spec): (&Backbone, &PromptEncoder, &TokenizerSpec),
    def: &TaskDef,
    parts: &[Vec<&ScoredExample>],
    leads: Option<&PrefixCache>,
) -> (Vec<Vec<f32>>, f32) {
    let device = backbone.device();
    let (grads, loss) = task_grads(
        backbone,
        encoder,
        None,
        parts,
        def.score,
        spec.pad_id,
        leads,
        &device,
    )
    .unwrap();
    let mut values = GradValues {
        grads: &grads,
        values: Vec::new(),
    };
    encoder.visit(&mut values);
    (values.values, loss)
}

/// Two steps' losses and gradients agree, and the gradient is not all zeros.
fn assert_same_step(
    name: &str,
    (a, a_loss): &(Vec<Vec<f32>>, f32),
    (b, b_loss): &(Vec<Vec<f32>>, f32),
) {
    assert!(
        (a_loss - b_loss).abs() < 1e-5,
        "{name}: {a_loss} vs {b_loss}"
    );
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs(), "{name}: {x} vs {y}");
    }
    assert!(
        a.iter().flatten().any(|g| g.abs() > 1e-6),
        "{name}: a gradient at all"
    );
}

/// Passages before the prompts: two answers to one passage, one to another of the same length
/// and one to a short one (leads that repeat, differ, and differ in length).
fn passage_examples(bundle: &ModelBundle, spec: &TokenizerSpec) -> (TaskDef, Vec<ScoredExample>) {
    let case = serde_json::json!({
        "task": {
            "name": "passages",
            "fields": ["passage", "question"],
            "template": "[passage] [P:2] . Question: [question] ? [Y] .",
            "answer": {"kind": "label", "verbalizers": [["a", "the"], ["b", "is"]]}
        },
        "examples": [
            {"passage": "the capital of france is paris and the dog sat on the mat",
             "question": "is it large", "label": "a"},
            {"passage": "the capital of france is paris and the dog sat on the mat",
             "question": "where is the small one", "label": "b"},
            {"passage": "the dog sat on the mat and the capital of france is paris",
             "question": "is it large", "label": "a"},
            {"passage": "we sat at night", "question": "is the day new", "label": "b"}
        ]
    });
    scored(bundle, spec, &case)
}

#[test]
fn kept_passages_give_the_same_loss_and_gradient() {
    let device = device::device().autodiff();
    for name in ["gpt2", "llama_gqa_tied"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone: Backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        let (def, examples) = passage_examples(&bundle, &spec);
        let leads: Vec<usize> = examples.iter().map(|e| e.lead(0)).collect();
        assert!(
            leads[0] == leads[1] && leads[1] == leads[2] && leads[2] > leads[3] && leads[3] > 0,
            "{name}: passages of two lengths, one repeated: {leads:?}"
        );
        let refs: Vec<&ScoredExample> = examples.iter().collect();
        let batch = TaskBatch::collate(&refs, spec.pad_id).unwrap();
        assert!(
            batch.one_target_per_row(),
            "{name}: one-token verbalizers, the rows whose passages are kept"
        );
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, 2, backbone.hidden_size())
            .init(&device)
            .unwrap();
        let model = (&backbone, &encoder, &spec);
        let parts = std::slice::from_ref(&refs);
        let whole = step_grads(model, &def, parts, None);
        let cache = PrefixCache::default();
        let computed = step_grads(model, &def, parts, Some(&cache));
        assert_eq!(cache.len(), 3, "{name}: one lead kept per passage");
        let reused = step_grads(model, &def, parts, Some(&cache));
        assert_eq!(cache.len(), 3, "{name}: the second step reuses them");
        assert_same_step(name, &whole, &computed);
        assert_same_step(name, &whole, &reused);
    }
}

/// A split scored after every epoch keeps its passages too: the same scores and ranks, the
/// manual pattern (no prompts) scored whole.
#[test]
fn kept_passages_give_the_same_scores() {
    let device = device::device();
    for name in ["gpt2", "llama_gqa_tied"] {
        let bundle = ModelBundle::open(&model_dir(name)).unwrap();
        let backbone: Backbone = bundle.backbone(&device).unwrap();
        let spec = tokenizer_spec(&bundle, &backbone).unwrap();
        let (def, examples) = passage_examples(&bundle, &spec);
        let refs: Vec<&ScoredExample> = examples.iter().collect();
        let batch = TaskBatch::collate(&refs, spec.pad_id).unwrap();
        let tensors = TaskTensors::new(&batch, backbone.vocab_size(), def.score, &device);
        let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, 2, backbone.hidden_size())
            .init(&device)
            .unwrap();
        let prompts = encoder.forward();
        let cache = PrefixCache::default();
        let score = |leads| {
            let p = Some(prompts.clone());
            to_host(scores_keeping_leads(&backbone, p, &tensors, leads).unwrap()).unwrap()
        };
        let whole = score(None);
        for kept in [score(Some(&cache)), score(Some(&cache))] {
            for (w, k) in whole.iter().zip(&kept) {
                assert!((w - k).abs() < 1e-5, "{name}: {w} vs {k}");
            }
        }
        assert_eq!(cache.len(), 3, "{name}: one lead kept per passage");
        let rank = |prompts: Option<&Tensor<2>>, leads| {
            let (norm, pad) = (def.score, spec.pad_id);
            rank_candidates(&backbone, prompts, &examples, norm, pad, (leads, &device)).unwrap()
        };
        let manual = PrefixCache::default();
        assert_eq!(rank(None, None).ranks, rank(None, Some(&manual)).ranks);
        assert!(
            manual.is_empty(),
            "{name}: the manual pattern's rows are scored whole"
        );
        let kept = rank(Some(&prompts), Some(&cache));
        assert_eq!(rank(Some(&prompts), None).ranks, kept.ranks, "{name}");
    }
}
