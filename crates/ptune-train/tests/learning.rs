//! 200 P-tuning steps on a few facts with a tiny frozen model: the loss must fall and P@1 on those
//! facts must rise — and the backbone must come out bit-identical.

use burn::tensor::Device;
use ptune_backbone::ModelBundle;
use ptune_data::{AllowedVocab, Batch, Fact, QueryBuilder, Template};
use ptune_encoder::{EncoderKind, HostTensor, HostTensorExt, PromptEncoderConfig};
use ptune_train::model::{BatchTensors, optimizer, train_step};
use ptune_train::rank::{rank_queries, stats};
use ptune_train::spec::tokenizer_spec;

#[test]
fn two_hundred_steps_fit_a_few_facts() {
    let device = Device::flex().autodiff();
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ptune-backbone/tests/fixtures/gpt2"
    );
    let bundle = ModelBundle::open(dir).unwrap();
    let backbone = bundle.backbone(&device).unwrap();
    let embeddings_before =
        HostTensor::from_tensor(backbone.embed_tokens(burn::tensor::Tensor::from_data(
            burn::tensor::TensorData::new((0..32i64).collect::<Vec<_>>(), [1, 32]),
            &device,
        )));
    let spec = tokenizer_spec(&bundle, &backbone).unwrap();
    let template = Template::parse("[P:2] [X] [P:2] [Y]").unwrap();
    // Four subjects, each with its own object: prompts alone must make the model tell them apart.
    let facts: Vec<Fact> = [
        ("france", "city"),
        ("the dog", "sea"),
        ("small", "sun"),
        ("capital", "dog"),
    ]
    .iter()
    .map(|(s, o)| Fact::new(*s, *o))
    .collect();
    let queries = QueryBuilder::new(&bundle.tokenizer, &spec, &template)
        .unwrap()
        .build(&facts)
        .queries;
    assert_eq!(
        queries.len(),
        4,
        "every object is one token of the tiny tokenizer"
    );
    let inputs = BatchTensors::new(&Batch::collate(&queries, spec.pad_id).unwrap(), &device);
    let config =
        PromptEncoderConfig::new(EncoderKind::Lstm, 4, backbone.hidden_size()).with_seed(11);
    let mut encoder = config.init(&device).unwrap();
    let allowed = AllowedVocab::full(backbone.vocab_size());
    let p_at_1 = |encoder: &ptune_encoder::PromptEncoder| {
        let prompts = encoder.forward().detach();
        let ranks = rank_queries(
            &backbone,
            Some(&prompts),
            &queries,
            &allowed,
            spec.pad_id,
            &device,
        )
        .unwrap();
        stats(&ranks).summary().p_at_1
    };
    let before = p_at_1(&encoder);
    let mut optim = optimizer(0.0, None);
    let mut losses = Vec::new();
    for _ in 0..200 {
        let (next, loss) = train_step(&backbone, encoder, &mut optim, &inputs, 1e-2, None).unwrap();
        encoder = next;
        losses.push(loss);
    }
    let after = p_at_1(&encoder);
    eprintln!(
        "loss {} → {}, P@1 {before} → {after}",
        losses[0], losses[199]
    );
    assert!(
        losses[199] < 0.4 * losses[0],
        "loss {} → {}",
        losses[0],
        losses[199]
    );
    assert!(after >= 0.5 && after > before, "P@1 {before} → {after}");
    let embeddings_after =
        HostTensor::from_tensor(backbone.embed_tokens(burn::tensor::Tensor::from_data(
            burn::tensor::TensorData::new((0..32i64).collect::<Vec<_>>(), [1, 32]),
            &device,
        )));
    assert_eq!(
        embeddings_before, embeddings_after,
        "the frozen backbone changed"
    );
}
