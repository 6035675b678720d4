//! The P-tuning step against a PyTorch re-implementation of THUDM's PTuneForLAMA on tiny
//! backbones (`scripts/make_ptuning_reference.py`): target logits, loss, every encoder gradient,
//! and the encoder after 3 Adam steps.

#[path = "../../ptune-backbone/tests/common/device.rs"]
mod device;

use ptune_backbone::ModelBundle;
use ptune_data::Batch;
use ptune_encoder::io::read_safetensors;
use ptune_encoder::{EncoderKind, HostTensor, HostTensorExt, NamedTensors, PromptEncoderConfig};
use ptune_train::model::{
    BatchTensors, fact_grads, grouped, grouped_logits, loss, optimizer, target_logits, train_step,
};
use safetensors::SafeTensors;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ptuning_reference")
        .join(name)
}

fn ints(st: &SafeTensors, name: &str) -> Vec<i64> {
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn batch(name: &str) -> Batch {
    let bytes = std::fs::read(dir(name).join("batch.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let shape = st.tensor("input_ids").unwrap().shape().to_vec();
    let positions = st.tensor("prompt_positions").unwrap().shape().to_vec();
    let u32s = |n: &str| {
        ints(&st, n)
            .into_iter()
            .map(|v| v as u32)
            .collect::<Vec<_>>()
    };
    let usizes = |n: &str| {
        ints(&st, n)
            .into_iter()
            .map(|v| v as usize)
            .collect::<Vec<_>>()
    };
    Batch {
        input_ids: u32s("input_ids"),
        attention_mask: u32s("attention_mask"),
        batch_size: shape[0],
        seq_len: shape[1],
        n_prompts: positions[1],
        prompt_positions: usizes("prompt_positions"),
        target_positions: usizes("target_positions"),
        object_ids: u32s("labels"),
        fact_indices: (0..shape[0]).collect(),
        leads: Vec::new(),
        prompt_spans: Vec::new(),
    }
}

fn tensors(name: &str, file: &str) -> NamedTensors {
    read_safetensors(&dir(name).join(file)).unwrap().tensors
}

fn assert_close(what: &str, ours: &HostTensor, theirs: &HostTensor, rel: f32) {
    let scale = theirs
        .data
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-3);
    let diff = ours.max_abs_diff(theirs);
    assert!(
        diff <= rel * scale,
        "{what}: differs by {diff} (scale {scale})"
    );
}

fn check(name: &str) {
    let device = device::device().autodiff();
    let backbone_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ptune-backbone/tests/fixtures")
        .join(name);
    let backbone = ModelBundle::open(backbone_dir.to_str().unwrap())
        .unwrap()
        .backbone(&device)
        .unwrap();
    let batch = batch(name);
    let hidden = backbone.hidden_size();
    let config = PromptEncoderConfig::new(EncoderKind::Lstm, batch.n_prompts, hidden);
    let mut encoder = config
        .load_torch(&dir(name).join("encoder_init.safetensors"), &device)
        .unwrap();
    let inputs = BatchTensors::new(&batch, &device);
    let forward = tensors(name, "forward.safetensors");

    let logits = target_logits(&backbone, Some(encoder.forward()), &inputs, None).unwrap();
    assert_close(
        "target logits",
        &HostTensor::from_tensor(logits.clone()),
        &forward["logits"],
        1e-5,
    );
    let value = loss(logits, inputs.labels.clone());
    let ours = HostTensor::from_tensor(value.clone());
    assert_close("loss", &ours, &forward["loss"], 1e-5);

    let all_grads = value.backward();
    let grads = encoder.grads(&all_grads);
    let frozen = burn::optim::GradientsParams::from_grads(all_grads, &backbone);
    assert!(
        frozen.is_empty(),
        "the frozen backbone received {} gradients",
        frozen.len()
    );
    let expected = tensors(name, "grads.safetensors");
    assert_eq!(
        grads.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (param, g) in &grads {
        assert_close(&format!("d loss / d {param}"), g, &expected[param], 1e-5);
    }

    // The batch in row groups computed at once (flex's `row_groups`), unevenly: the same
    // logits, loss and gradients as the reference's whole batch.
    for n in 2..=3 {
        let groups = grouped(&batch, n, &device);
        let prompts = encoder.forward();
        let logits = grouped_logits(&backbone, Some(&prompts), &groups, None).unwrap();
        let what = |s: &str| format!("{n} row groups: {s}");
        let logits = HostTensor::from_tensor(logits);
        assert_close(&what("target logits"), &logits, &forward["logits"], 1e-5);
        let (grads, value) = fact_grads(&backbone, &encoder, None, &groups).unwrap();
        let value = HostTensor::new(forward["loss"].shape.clone(), vec![value]);
        assert_close(&what("loss"), &value, &forward["loss"], 1e-5);
        let grads = encoder.param_grads(&grads);
        assert_eq!(grads.len(), expected.len(), "{}", what("gradients"));
        for (param, g) in &grads {
            assert_close(
                &what(&format!("d loss / d {param}")),
                g,
                &expected[param],
                1e-5,
            );
        }
    }

    let mut optim = optimizer(5e-4, None);
    for _ in 0..3 {
        encoder = train_step(&backbone, encoder, &mut optim, &inputs, 1e-3, None)
            .unwrap()
            .0;
    }
    let after = encoder.state_dict();
    for (param, expected) in tensors(name, "adam3.safetensors") {
        let diff = after[&param].max_abs_diff(&expected);
        assert!(diff <= 1e-5, "{param} after 3 Adam steps differs by {diff}");
    }
}

#[test]
fn bert_ptuning_step_matches_reference() {
    check("bert");
}

#[test]
fn gpt2_ptuning_step_matches_reference() {
    check("gpt2");
}
