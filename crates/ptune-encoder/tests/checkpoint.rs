//! Seeded init, checkpoints (safetensors with PyTorch names) and the errors of bad weights.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use common::{assert_all_close, fixture, scratch, tensors};
use ptune_encoder::io::write_safetensors;
use ptune_encoder::{EncoderError, EncoderKind, HostTensor, HostTensorExt, PromptEncoderConfig};

const KINDS: [EncoderKind; 4] = [
    EncoderKind::Lstm,
    EncoderKind::PeftLstm,
    EncoderKind::Mlp,
    EncoderKind::Embedding,
];

fn thudm() -> PromptEncoderConfig {
    PromptEncoderConfig::new(EncoderKind::Lstm, 9, 32)
}

#[test]
fn init_is_reproducible_per_seed() {
    let device = Device::flex();
    for kind in KINDS {
        let config = PromptEncoderConfig::new(kind, 4, 16).with_seed(42);
        let a = config.init(&device).unwrap().state_dict();
        let b = config.init(&device).unwrap().state_dict();
        let c = config
            .clone()
            .with_seed(43)
            .init(&device)
            .unwrap()
            .state_dict();
        assert_eq!(a, b, "{kind:?}: same seed");
        assert_ne!(a, c, "{kind:?}: other seed");
    }
}

#[test]
fn every_kind_gives_n_prompt_by_hidden() {
    let device = Device::flex();
    for kind in KINDS {
        let encoder = PromptEncoderConfig::new(kind, 5, 12)
            .with_mlp_hidden(Some(7))
            .init(&device)
            .unwrap();
        assert_eq!(encoder.forward().dims(), [5, 12], "{kind:?}");
        assert_eq!(
            (encoder.kind(), encoder.n_prompt(), encoder.hidden()),
            (kind, 5, 12)
        );
    }
}

#[test]
fn num_params_follow_the_pytorch_formulas() {
    let device = Device::flex();
    let (n, h, m) = (9usize, 32usize, 16usize);
    let lstm = |d_in: usize, hid: usize| 2 * (4 * hid * (d_in + hid) + 8 * hid);
    let expect = [
        (
            EncoderKind::Lstm,
            n * h + lstm(h, h / 2) + lstm(h, h / 2) + 2 * (h * h + h),
        ),
        (
            EncoderKind::PeftLstm,
            n * h + lstm(h, m) + lstm(2 * m, m) + (2 * m * 2 * m + 2 * m) + (2 * m * h + h),
        ),
        (
            EncoderKind::Mlp,
            n * h + (h * m + m) + (m * m + m) + (m * h + h),
        ),
        (EncoderKind::Embedding, n * h),
    ];
    for (kind, want) in expect {
        let config = PromptEncoderConfig::new(kind, n, h).with_mlp_hidden(Some(m));
        assert_eq!(config.init(&device).unwrap().num_params(), want, "{kind:?}");
    }
}

#[test]
fn pytorch_state_dict_file_loads() {
    let device = Device::flex();
    let path = fixture("thudm_lstm/weights.safetensors");
    let encoder = thudm().load_torch(&path, &device).unwrap();
    assert_all_close(
        "thudm",
        &encoder.state_dict(),
        &tensors("thudm_lstm/weights.safetensors"),
        0.0,
        0.0,
    );
}

#[test]
fn dropout_is_active_only_on_an_autodiff_device() {
    let weights = tensors("thudm_lstm/weights.safetensors");
    let config = thudm().with_dropout(0.5);
    let plain = config.from_tensors(&weights, &Device::flex()).unwrap();
    let reference = thudm().from_tensors(&weights, &Device::flex()).unwrap();
    let (a, b) = (
        HostTensor::from_tensor(plain.forward()),
        HostTensor::from_tensor(reference.forward()),
    );
    assert_eq!(a, b, "no dropout at inference");
    let train = config
        .from_tensors(&weights, &Device::flex().autodiff())
        .unwrap();
    let c = HostTensor::from_tensor(train.forward());
    assert!(c.max_abs_diff(&b) > 1e-3, "dropout when training");
}

#[test]
fn wrong_weights_are_refused_with_one_sentence() {
    let device = Device::flex();
    let weights = tensors("thudm_lstm/weights.safetensors");

    let mut missing = weights.clone();
    missing.remove("lstm_head.weight_hh_l1_reverse");
    let err = thudm().from_tensors(&missing, &device).unwrap_err();
    assert!(
        matches!(err, EncoderError::MissingTensor(ref n) if n == "lstm_head.weight_hh_l1_reverse")
    );

    let err = PromptEncoderConfig::new(EncoderKind::Lstm, 9, 16)
        .from_tensors(&weights, &device)
        .unwrap_err();
    assert!(matches!(err, EncoderError::Shape { .. }), "{err}");

    let mut extra = weights.clone();
    extra.insert(
        "mlp_head.4.weight".into(),
        HostTensor::new(vec![1], vec![0.0]),
    );
    let err = thudm()
        .from_tensors(&extra, &device)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "the weights hold tensors a lstm encoder does not have: mlp_head.4.weight"
    );

    let err = PromptEncoderConfig::new(EncoderKind::Mlp, 9, 32)
        .from_tensors(&weights, &device)
        .unwrap_err();
    assert!(
        matches!(
            err,
            EncoderError::MissingTensor(_) | EncoderError::Shape { .. }
        ),
        "{err}"
    );
}

#[test]
fn bad_configs_are_refused_not_panicked() {
    let device = Device::flex();
    let cases = [
        thudm().with_dropout(1.0),
        thudm().with_dropout(f64::NAN),
        PromptEncoderConfig::new(EncoderKind::Lstm, 9, 33),
        PromptEncoderConfig::new(EncoderKind::Mlp, 0, 32),
        PromptEncoderConfig::new(EncoderKind::Mlp, 9, 32).with_mlp_hidden(Some(0)),
    ];
    for config in cases {
        let err = config.init(&device).unwrap_err();
        assert!(matches!(err, EncoderError::Config(_)), "{err}");
    }
    assert!("lstm2".parse::<EncoderKind>().is_err());
}

#[test]
fn unreadable_files_are_refused() {
    let device = Device::flex();
    let dir = scratch("unreadable");
    let err = thudm()
        .load_torch(&dir.join("absent.safetensors"), &device)
        .unwrap_err();
    assert!(matches!(err, EncoderError::Io { .. }), "{err}");

    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    let err = thudm().load_torch(&junk, &device).unwrap_err();
    assert!(matches!(err, EncoderError::Safetensors { .. }), "{err}");

    let ints = dir.join("ints.safetensors");
    let bytes = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1], &bytes).unwrap();
    std::fs::write(&ints, safetensors::serialize([("x", view)], None).unwrap()).unwrap();
    let err = thudm().load_torch(&ints, &device).unwrap_err();
    assert!(matches!(err, EncoderError::Dtype { .. }), "{err}");

    // A failed write leaves nothing behind.
    let target = dir.join("no-such-dir/enc.safetensors");
    assert!(write_safetensors(&target, &Default::default(), None).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}
