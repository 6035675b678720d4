//! Encoder parity with PyTorch (fixtures from scripts/make_encoder_fixtures.py): THUDM's LSTM
//! `PromptEncoder`, PEFT's MLP and PEFT's LSTM. Forward, gradients of `sum(out * r)`, and the
//! parameters after 3 steps of `torch.optim.Adam(lr=1e-2, weight_decay=5e-4)`.

mod common;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use common::{assert_all_close, assert_close, meta, tensors};
use ptune_encoder::{EncoderKind, HostTensor, HostTensorExt, PromptEncoder, PromptEncoderConfig};

const CASES: [&str; 3] = ["thudm_lstm", "peft_mlp", "peft_lstm"];

fn config(case: &str) -> PromptEncoderConfig {
    let m = meta(case);
    let kind: EncoderKind = m["kind"].as_str().unwrap().parse().unwrap();
    let n = m["n_prompt"].as_u64().unwrap() as usize;
    let h = m["hidden"].as_u64().unwrap() as usize;
    let mlp = m["mlp_hidden"].as_u64().map(|v| v as usize);
    PromptEncoderConfig::new(kind, n, h).with_mlp_hidden(mlp)
}

fn encoder(case: &str, device: &Device) -> PromptEncoder {
    let weights = tensors(&format!("{case}/weights.safetensors"));
    config(case).from_tensors(&weights, device).unwrap()
}

/// `sum(out * r)` with the fixture's `r`.
fn loss(encoder: &PromptEncoder, r: &HostTensor, device: &Device) -> Tensor<1> {
    (encoder.forward() * r.to_tensor::<2>(device)).sum()
}

/// The Adam configuration that reproduces `torch.optim.Adam(lr, weight_decay=wd)`.
fn torch_adam(weight_decay: f32) -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(weight_decay)))
}

#[test]
fn forward_matches_pytorch() {
    let device = common::device::device();
    for case in CASES {
        let want = &tensors(&format!("{case}/forward.safetensors"))["output"];
        let got = HostTensor::from_tensor(encoder(case, &device).forward());
        assert_close(case, &got, want, 1e-5, 0.0);
    }
}

#[test]
fn gradients_match_pytorch() {
    let device = common::device::device().autodiff();
    for case in CASES {
        let fwd = tensors(&format!("{case}/forward.safetensors"));
        let enc = encoder(case, &device);
        let l = loss(&enc, &fwd["r"], &device);
        let got_loss = HostTensor::from_tensor(l.clone());
        assert_close(&format!("{case} loss"), &got_loss, &fwd["loss"], 1e-5, 1e-5);
        let grads = l.backward();
        let want = tensors(&format!("{case}/grads.safetensors"));
        assert_all_close(case, &enc.grads(&grads), &want, 1e-6, 1e-5);
    }
}

#[test]
fn adam_steps_match_torch_adam_with_l2_weight_decay() {
    let device = common::device::device().autodiff();
    for case in CASES {
        let m = meta(case);
        let (lr, wd) = (
            m["adam"]["lr"].as_f64().unwrap(),
            m["adam"]["weight_decay"].as_f64().unwrap(),
        );
        let r = tensors(&format!("{case}/forward.safetensors"))
            .remove("r")
            .unwrap();
        let mut enc = encoder(case, &device);
        let mut optim = torch_adam(wd as f32).init();
        for _ in 0..m["adam"]["steps"].as_u64().unwrap() {
            let grads = loss(&enc, &r, &device).backward();
            let grads = GradientsParams::from_grads(grads, &enc);
            enc = optim.step(lr, enc, grads);
        }
        let want = tensors(&format!("{case}/adam3.safetensors"));
        assert_all_close(case, &enc.state_dict(), &want, 1e-5, 0.0);
    }
}

#[test]
fn parameter_counts_match_pytorch() {
    let device = common::device::device();
    for case in CASES {
        let want = meta(case)["num_params"].as_u64().unwrap() as usize;
        assert_eq!(encoder(case, &device).num_params(), want, "{case}");
    }
}

#[test]
fn state_dict_round_trips_pytorch_names() {
    let device = common::device::device();
    for case in CASES {
        let weights = tensors(&format!("{case}/weights.safetensors"));
        assert_all_close(
            case,
            &encoder(case, &device).state_dict(),
            &weights,
            0.0,
            0.0,
        );
    }
}

#[test]
fn seeded_init_has_pytorch_names_and_shapes() {
    for case in CASES {
        let want = tensors(&format!("{case}/weights.safetensors"));
        let got = config(case).with_seed(5).init_tensors().unwrap();
        let shapes = |t: &ptune_encoder::NamedTensors| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.shape.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shapes(&got), shapes(&want), "{case}");
    }
}

/// Parameters after 3 steps of `config` on `case`, and their largest distance to torch's.
fn adam_distance(case: &str, config: AdamConfig) -> f32 {
    let device = common::device::device().autodiff();
    let r = tensors(&format!("{case}/forward.safetensors"))
        .remove("r")
        .unwrap();
    let mut enc = encoder(case, &device);
    let mut optim = config.init();
    for _ in 0..3 {
        let grads = GradientsParams::from_grads(loss(&enc, &r, &device).backward(), &enc);
        enc = optim.step(1e-2, enc, grads);
    }
    let got = enc.state_dict();
    let want = tensors(&format!("{case}/adam3.safetensors"));
    want.iter()
        .map(|(k, w)| got[k].max_abs_diff(w))
        .fold(0.0, f32::max)
}

/// burn's Adam defaults differ from torch's: epsilon 1e-5 (torch 1e-8), and weight decay must
/// be given as `WeightDecayConfig` (L2 added to the gradient, as torch's `Adam` does). Both
/// matter here by orders of magnitude more than the tolerance.
#[test]
fn burn_adam_defaults_do_not_reproduce_torch() {
    for case in CASES {
        let default_eps = AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(5e-4)));
        assert!(adam_distance(case, default_eps) > 1e-3, "{case}: epsilon");
        let no_decay = AdamConfig::new().with_epsilon(1e-8);
        assert!(adam_distance(case, no_decay) > 1e-3, "{case}: weight decay");
        assert!(
            adam_distance(case, torch_adam(5e-4)) < 1e-5,
            "{case}: torch config"
        );
    }
}

/// `zero_output` zeroes exactly the output layer: every kind starts at an all-zero prompt
/// matrix, keeps the rest of its seeded weights, and still gets gradients (so it learns).
#[test]
fn zero_output_starts_at_zero_and_still_learns() {
    let device = common::device::device().autodiff();
    for kind in [
        EncoderKind::Lstm,
        EncoderKind::PeftLstm,
        EncoderKind::Mlp,
        EncoderKind::Embedding,
    ] {
        let base = PromptEncoderConfig::new(kind, 3, 8).with_seed(5);
        let zeroed = base.clone().with_zero_output(true);
        let (a, b) = (base.init_tensors().unwrap(), zeroed.init_tensors().unwrap());
        let changed: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
        let want = match kind {
            EncoderKind::Embedding => 1,
            _ => 2,
        };
        assert_eq!(changed.len(), want, "{kind:?}: {changed:?}");
        let encoder = zeroed.init(&device).unwrap();
        let out = HostTensor::from_tensor(encoder.forward());
        assert!(out.data.iter().all(|&v| v == 0.0), "{kind:?}");
        let r = HostTensor::new(vec![3, 8], (0..24).map(|i| i as f32 - 11.5).collect());
        let grads = loss(&encoder, &r, &device).backward();
        let nonzero = encoder
            .grads(&grads)
            .values()
            .any(|g| g.data.iter().any(|&v| v != 0.0));
        assert!(nonzero, "{kind:?} has no gradient");
    }
}
