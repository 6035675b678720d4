//! TEMPORARY (not to be committed): checks the ptune-train P-tuning reference in Rust.
mod common;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::assert_all_close;
use ptune_backbone::{Backbone, ModelBundle};
use ptune_encoder::io::read_safetensors;
use ptune_encoder::{EncoderKind, HostTensor, PromptEncoder, PromptEncoderConfig};
use std::path::PathBuf;

fn root() -> PathBuf { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..") }

fn ints(path: &PathBuf, name: &str) -> (Vec<i64>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor(name).unwrap();
    (v.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(), v.shape().to_vec())
}

fn run(name: &str) {
    let dir = root().join("crates/ptune-train/tests/fixtures/ptuning_reference").join(name);
    let device = Device::flex().autodiff();
    let bundle = ModelBundle::open(root().join("crates/ptune-backbone/tests/fixtures").join(name).to_str().unwrap()).unwrap();
    let backbone = bundle.backbone(&device).unwrap();
    let batch = dir.join("batch.safetensors");
    let (ids, s) = ints(&batch, "input_ids");
    let (mask, _) = ints(&batch, "attention_mask");
    let (pp, ps) = ints(&batch, "prompt_positions");
    let (tp, _) = ints(&batch, "target_positions");
    let (labels, _) = ints(&batch, "labels");
    let (b, t, n) = (s[0], s[1], ps[1]);
    let h = backbone.hidden_size();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &device);
    let mask = Tensor::<2, Int>::from_data(TensorData::new(mask, [b, t]), &device);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &device);
    let targets: Vec<(usize, usize)> = tp.iter().enumerate().map(|(i, &p)| (i, p as usize)).collect();
    let fwd = |enc: &PromptEncoder| {
        let prompts = enc.forward();
        let mut e = backbone.embed_tokens(ids.clone());
        for bi in 0..b { for i in 0..n {
            let p = pp[bi * n + i] as usize;
            e = e.slice_assign([bi..bi + 1, p..p + 1, 0..h], prompts.clone().slice([i..i + 1, 0..h]).reshape([1, 1, h]));
        }}
        let hidden = backbone.forward_embeds(e, mask.clone());
        let logits = backbone.lm_logits(Backbone::gather_rows(hidden, &targets)).unwrap();
        let loss = CrossEntropyLossConfig::new().init(&device).forward(logits.clone(), labels.clone());
        (logits, loss)
    };
    let init = read_safetensors(&dir.join("encoder_init.safetensors")).unwrap().tensors;
    let config = PromptEncoderConfig::new(EncoderKind::Lstm, n, h);
    let mut enc = config.from_tensors(&init, &device).unwrap();
    let want = read_safetensors(&dir.join("forward.safetensors")).unwrap().tensors;
    let (logits, loss) = fwd(&enc);
    let d_logits = HostTensor::from_tensor(logits).max_abs_diff(&want["logits"]);
    let d_loss = HostTensor::from_tensor(loss.clone()).max_abs_diff(&want["loss"]);
    let grads = enc.grads(&loss.backward());
    let wg = read_safetensors(&dir.join("grads.safetensors")).unwrap().tensors;
    let gmax = wg.iter().map(|(k, w)| (grads[k].max_abs_diff(w), w.data.iter().fold(0f32, |a, v| a.max(v.abs())))).fold((0f32, 0f32), |a, x| (a.0.max(x.0), a.1.max(x.1)));
    println!("{name}: logits diff {d_logits:e}, loss diff {d_loss:e}, grad max diff {:e} (max |g| {:e})", gmax.0, gmax.1);
    assert_all_close(name, &grads, &wg, 1e-5, 1e-3);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).with_weight_decay(Some(WeightDecayConfig::new(5e-4))).init();
    for _ in 0..3 {
        let g = GradientsParams::from_grads(fwd(&enc).1.backward(), &enc);
        enc = optim.step(1e-3, enc, g);
    }
    let wa = read_safetensors(&dir.join("adam3.safetensors")).unwrap().tensors;
    let st = enc.state_dict();
    let amax = wa.iter().map(|(k, w)| st[k].max_abs_diff(w)).fold(0f32, f32::max);
    println!("{name}: adam3 max diff {amax:e}");
    for (k, w) in &wa {
        let d = st[k].max_abs_diff(w);
        if d > 5e-6 {
            let (i, _) = st[k].data.iter().zip(&w.data).enumerate().map(|(i,(a,b))| (i,(a-b).abs())).max_by(|a,b| a.1.total_cmp(&b.1)).unwrap();
            println!("  {k}[{i}]: diff {d:e}, grad0 torch {:e} ours {:e}", wg[k].data[i], grads[k].data[i]);
        }
    }
}

#[test] fn bert() { run("bert"); }
#[test] fn gpt2() { run("gpt2"); }
