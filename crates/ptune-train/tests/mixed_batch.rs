//! Mixed-prompt batches: inputs of several packs (different templates and prompt counts) in
//! one forward pass get the same answers, to 1e-4, as each pack's inputs alone. Relations on a
//! masked, a causal and a GQA model; tasks (one- and multi-token answers, sum and mean scores)
//! from the task-scoring fixtures.

#[path = "../../ptune-backbone/tests/common/device.rs"]
mod device;

use burn::tensor::{Device, Tensor, TensorData};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::task::{Example, TaskDef};
use ptune_data::{QueryBuilder, Template, TokenizerSpec};
use ptune_train::mixed::{Member, Shared, rank_answers, rank_subjects};
use ptune_train::model::PrefixCache;
use ptune_train::rank::rows_logits;
use ptune_train::spec::tokenizer_spec;
use serde_json::Value;

fn model_dir(name: &str) -> String {
    format!(
        "{}/../ptune-backbone/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A tiny fixture model with its tokenizer's special ids.
fn open(name: &str, device: &Device) -> (ModelBundle, Backbone, TokenizerSpec) {
    let bundle = ModelBundle::open(&model_dir(name)).unwrap();
    let backbone = bundle.backbone(device).unwrap();
    let spec = tokenizer_spec(&bundle, &backbone).unwrap();
    (bundle, backbone, spec)
}

/// A fixed, pack-specific prompt matrix `[rows, hidden]`.
fn prompts(rows: usize, hidden: usize, seed: f32, device: &Device) -> Tensor<2> {
    let values = (0..rows * hidden).map(|i| ((i as f32 * 0.37 + seed).sin()) * 0.5);
    Tensor::from_data(
        TensorData::new(values.collect::<Vec<_>>(), [rows, hidden]),
        device,
    )
}

fn close(a: f32, b: f32, what: &str) {
    assert!((a - b).abs() < 1e-4, "{what}: mixed {a}, alone {b}");
}

#[test]
fn mixed_relation_batches_answer_as_each_pack_alone() {
    let device = device::device();
    for name in ["bert", "gpt2", "llama_gqa_tied"] {
        let (bundle, backbone, spec) = open(name, &device);
        let shared = Shared {
            bundle: &bundle,
            backbone: &backbone,
            spec: &spec,
            device: &device,
        };
        let h = backbone.hidden_size();
        let a = Template::parse("[P:3] [X] [P:3] [Y]").unwrap();
        let b = Template::parse("[X] is [P:2] of [Y] .").unwrap();
        let (pa, pb) = (prompts(6, h, 0.1, &device), prompts(2, h, 2.0, &device));
        let stacked = Tensor::cat(vec![pa.clone(), pb.clone()], 0);
        let members = [
            Member {
                template: &a,
                task: None,
                base: 0,
            },
            Member {
                template: &b,
                task: None,
                base: 6,
            },
        ];
        let inputs = [
            (0, "town 1"),
            (1, "town 2"),
            (0, "a longer town 3"),
            (1, "town 44"),
        ];
        let cache = PrefixCache::default();
        let mixed =
            rank_subjects(shared, &members, (&stacked, Some(&cache)), &inputs, 5, 8).unwrap();
        for (m, alone_prompts) in [(0, &pa), (1, &pb)] {
            let own: Vec<(usize, &str)> = inputs
                .iter()
                .filter(|i| i.0 == m)
                .map(|&(_, s)| (0, s))
                .collect();
            let member = [Member {
                base: 0,
                ..members[m]
            }];
            let fixed = (alone_prompts, None);
            let alone = rank_subjects(shared, &member, fixed, &own, 5, 8).unwrap();
            let mixed_own = inputs.iter().zip(&mixed).filter(|(i, _)| i.0 == m);
            for ((_, got), want) in mixed_own.zip(&alone) {
                let (got, want) = (&got.as_ref().unwrap().1, &want.as_ref().unwrap().1);
                assert_eq!(got.position, want.position);
                for (g, w) in got.top.iter().zip(&want.top) {
                    assert_eq!(g.id, w.id, "{name}: pack {m}");
                    close(g.logprob, w.logprob, name);
                }
            }
        }
        // The mixed answers differ by pack: the batch did not give every row one pack.
        let (x, y) = (&mixed[0].as_ref().unwrap().1, &mixed[2].as_ref().unwrap().1);
        assert!(x.top[0].logprob != y.top[0].logprob || x.top[0].id != y.top[0].id);
    }
}

/// The prefixes three packs' templates fix (3 and 2 leading prompts, and none: a template that
/// starts with its subject), kept across calls as a server keeps them: the call that computes
/// them (apart, or in the batch's own pass) and the call that takes them from the cache give
/// the logits of a pass that keeps nothing.
#[test]
fn kept_prefixes_give_the_logits_of_computed_ones() {
    let device = device::device();
    for name in ["gpt2", "llama_gqa_tied"] {
        let (bundle, backbone, spec) = open(name, &device);
        let h = backbone.hidden_size();
        let templates = [
            "[P:3] [X] [P:3] [Y]",
            "[P:2] [X] is [P:1] [Y]",
            "[X] [P:2] [Y]",
        ]
        .map(|t| Template::parse(t).unwrap());
        let stacked = Tensor::cat(
            vec![
                prompts(6, h, 0.1, &device),
                prompts(3, h, 2.0, &device),
                prompts(2, h, 3.0, &device),
            ],
            0,
        );
        let builders = templates
            .each_ref()
            .map(|t| QueryBuilder::new(&bundle.tokenizer, &spec, t).unwrap());
        let inputs = [
            (0, "town 1"),
            (1, "town 2"),
            (2, "a town 5"),
            (0, "a longer town 3"),
            (1, "town 44"),
        ];
        // All three packs (prefixes of several lengths: computed apart), then the first pack
        // alone (one length: kept from the batch's own pass).
        for inputs in [&inputs[..], &[inputs[0], inputs[3]]] {
            let queries: Vec<_> = (inputs.iter())
                .map(|&(m, s)| builders[m].query_for_subject(s).unwrap())
                .collect();
            let rows: Vec<_> = (queries.iter().zip(inputs))
                .map(|(q, (m, _))| (q, [0, 6, 9][*m]))
                .collect();
            let logits = |cache: Option<&PrefixCache>| {
                let (pad, stacked) = (spec.pad_id, Some(&stacked));
                let out = rows_logits(&backbone, stacked, &rows, pad, &device, cache);
                (out.unwrap().into_data().convert::<f32>())
                    .try_into_vec::<f32>()
                    .unwrap()
            };
            let plain = logits(None);
            // A pack's prefix per pack with a lead (the subject-first template has one where
            // the tokenizer starts with BOS), and one all padding for rows with none.
            let mut led: Vec<usize> = (queries.iter().zip(inputs))
                .filter(|(q, _)| q.lead > 0)
                .map(|(_, (m, _))| *m)
                .collect();
            led.sort_unstable();
            led.dedup();
            assert!(
                !led.is_empty(),
                "{name}: a pack with prompts before the subject"
            );
            let kept = led.len() + usize::from(queries.iter().any(|q| q.lead == 0));
            let cache = PrefixCache::default();
            for pass in ["computed", "kept"] {
                let got = logits(Some(&cache));
                assert_eq!(cache.len(), kept, "{name}: {pass}: prefixes kept");
                let err = (got.iter().zip(&plain))
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    err < 1e-4,
                    "{name}: {pass} prefixes change the logits by {err}"
                );
            }
        }
    }
}

#[test]
fn mixed_task_batches_score_as_each_pack_alone() {
    let device = device::device();
    for name in ["bert", "gpt2"] {
        let (bundle, backbone, spec) = open(name, &device);
        let shared = Shared {
            bundle: &bundle,
            backbone: &backbone,
            spec: &spec,
            device: &device,
        };
        let path = format!(
            "{}/tests/fixtures/task_scores/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let h = backbone.hidden_size();
        // Every fixture task, each with its own prompt matrix (a manual one gets none).
        let mut defs: Vec<TaskDef> = Vec::new();
        let mut examples: Vec<Vec<Example>> = Vec::new();
        for case in fixture["tasks"].as_array().unwrap() {
            let mut def = case["task"].clone();
            def.as_object_mut().unwrap().remove("examples");
            let def: TaskDef = serde_json::from_value(def).unwrap();
            let records = case["examples"].as_array().unwrap().iter().enumerate();
            examples.push(
                records
                    .map(|(i, r)| def.example(r.as_object().unwrap(), i + 1).unwrap())
                    .collect(),
            );
            defs.push(def);
        }
        let templates: Vec<Template> = defs.iter().map(|d| d.parsed_template().unwrap()).collect();
        let mut bases = Vec::new();
        let mut matrices = Vec::new();
        for (i, t) in templates.iter().enumerate() {
            bases.push(
                matrices
                    .iter()
                    .map(|m: &Tensor<2>| m.dims()[0])
                    .sum::<usize>(),
            );
            matrices.push(prompts(t.n_prompts().max(1), h, i as f32, &device));
        }
        let members: Vec<Member> = (0..defs.len())
            .map(|i| Member {
                template: &templates[i],
                task: Some(&defs[i]),
                base: bases[i],
            })
            .collect();
        let stacked = Tensor::cat(matrices.clone(), 0);
        let inputs: Vec<(usize, &Example)> = (0..2)
            .flat_map(|e| (0..defs.len()).map(move |m| (m, e)))
            .map(|(m, e)| (m, &examples[m][e]))
            .collect();
        let mixed = rank_answers(shared, &members, &stacked, &inputs, 10, 16).unwrap();
        for m in 0..defs.len() {
            let own: Vec<(usize, &Example)> = examples[m].iter().map(|e| (0, e)).collect();
            let member = [Member {
                base: 0,
                ..members[m]
            }];
            let alone = rank_answers(shared, &member, &matrices[m], &own, 10, 16).unwrap();
            let mixed_own = inputs.iter().zip(&mixed).filter(|(i, _)| i.0 == m);
            for ((_, got), want) in mixed_own.zip(&alone) {
                for (g, w) in got.as_ref().unwrap().iter().zip(want.as_ref().unwrap()) {
                    assert_eq!(g.answer, w.answer, "{name} {}", defs[m].name);
                    close(g.score, w.score, &defs[m].name);
                }
            }
        }
    }
}
