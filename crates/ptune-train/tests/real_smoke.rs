//! CI-only smoke test on real weights: a few P-tuning steps on SmolLM2-135M with bundled facts
//! must lower the loss. Needs `cargo xtask fetch smollm2` (`$PTUNE_MODELS`).

use burn::tensor::Device;
use ptune_backbone::ModelBundle;
use ptune_data::{Batch, LamaDataset, QueryBuilder, Split, Template};
use ptune_encoder::{EncoderKind, PromptEncoderConfig};
use ptune_train::model::{BatchTensors, optimizer, train_step};
use ptune_train::spec::tokenizer_spec;
use std::path::PathBuf;

fn smollm2() -> PathBuf {
    let models = std::env::var_os("PTUNE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ptune/models")
        });
    models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
#[ignore = "needs the SmolLM2 GGUF: cargo xtask fetch smollm2"]
fn smollm2_ptuning_steps_lower_the_loss() {
    let device = Device::flex().autodiff();
    let bundle =
        ModelBundle::open(smollm2().to_str().unwrap()).expect("run `cargo xtask fetch smollm2`");
    let backbone = bundle.backbone(&device).unwrap();
    let spec = tokenizer_spec(&bundle, &backbone).unwrap();
    let template = Template::parse("[P:3] [X] [P:3] [Y]").unwrap();
    let data =
        LamaDataset::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/facts"))
            .unwrap();
    let facts = data.facts("P30", Split::Train).unwrap();
    let queries = QueryBuilder::new(&bundle.tokenizer, &spec, &template)
        .unwrap()
        .build(&facts)
        .queries;
    let batch = BatchTensors::new(
        &Batch::collate(&queries[..8], spec.pad_id).unwrap(),
        &device,
    );
    let config = PromptEncoderConfig::new(
        EncoderKind::Lstm,
        template.n_prompts(),
        backbone.hidden_size(),
    )
    .with_seed(1);
    let mut encoder = config.init(&device).unwrap();
    let mut optim = optimizer(5e-4, None);
    let mut losses = Vec::new();
    // Adam without warm-up at 1e-3, the fast preset's peak; 3e-3 overshoots in the first steps.
    for _ in 0..10 {
        let (next, loss) = train_step(&backbone, encoder, &mut optim, &batch, 1e-3, None).unwrap();
        encoder = next;
        losses.push(loss);
    }
    assert!(
        losses[9] < 0.6 * losses[0],
        "the loss should fall within 10 steps: {losses:?}"
    );
}
