//! Prompt-encoder files: prompt packs, PEFT p-tuning adapters, encoder safetensors.

use super::{Format, Input, MAX_INPUT, Scratch, Target, seeds_under};
use ptune_data::Template;
use ptune_encoder::io::read_safetensors;
use ptune_encoder::peft::read_adapter;
use ptune_encoder::{BackboneIdentity, HostTensor, PromptPack};
use sha2::{Digest, Sha256};

const FIXTURES: &str = "crates/ptune-encoder/tests/fixtures";
const DICT: &[&[u8]] = &[
    b"\"prompt_embeddings\"",
    b"\"F32\"",
    b"\"shape\"",
    b"\"n_prompt\"",
    b"\"token_dim\"",
    b"0",
    b"-1",
];

pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "prompt_pack",
            entry: "ptune_encoder::PromptPack::load (prompt.json + prompt.safetensors, tensor_sha256 fixed up so mutations get past the hash), then what `ptune predict/eval --pack` checks: Template::parse, n_prompts, check_compatible",
            parts: &[Format::Json, Format::Binary],
            max_len: MAX_INPUT,
            dict: DICT,
            seeds: pack_seeds,
            run: run_pack,
        },
        Target {
            name: "peft_adapter",
            entry: "ptune_encoder::peft::read_adapter (adapter_config.json + adapter_model.safetensors, hidden = the config's token_dim)",
            parts: &[Format::Json, Format::Binary],
            max_len: MAX_INPUT,
            dict: DICT,
            seeds: || {
                ["peft_adapter", "rust_adapter_bert", "rust_adapter_gpt2"]
                    .iter()
                    .map(|d| {
                        let dir = super::root().join(FIXTURES).join(d);
                        ["adapter_config.json", "adapter_model.safetensors"]
                            .iter()
                            .map(|f| std::fs::read(dir.join(f)).expect("adapter fixture"))
                            .collect()
                    })
                    .collect()
            },
            run: run_peft,
        },
        Target {
            name: "encoder_safetensors",
            entry: "ptune_encoder::io::read_safetensors (every tensor to f32: encoder weights, checkpoints)",
            parts: &[Format::Binary],
            max_len: MAX_INPUT,
            dict: DICT,
            seeds: || seeds_under(FIXTURES, "weights.safetensors"),
            run: |s, p| read_safetensors(&s.write("weights.safetensors", &p[0])).is_ok(),
        },
    ]
}

/// Packs written by `PromptPack::save`, as `ptune train` leaves them (no pack fixture exists).
fn pack_seeds() -> Vec<Input> {
    let scratch = Scratch::new("prompt_pack_seeds").expect("seed scratch dir");
    [
        (6, 8, "[P:3] [X] [P:3] [Y]"),
        (9, 4, "3,3,3"),
        (1, 2, "[P] [X] [Y]"),
    ]
    .iter()
    .map(|&(n, hidden, template)| {
        let data = (0..n * hidden).map(|i| i as f32 * 0.25 - 1.0).collect();
        let identity = BackboneIdentity::new("GPT2LMHeadModel", hidden, "3f2a9c01b7e4");
        let pack = PromptPack::from_host(
            HostTensor::new(vec![n, hidden], data),
            template,
            identity,
            "P36",
        )
        .expect("a valid pack")
        .with_metric("dev_p1", 0.5);
        pack.save(&scratch.dir).expect("saving a seed pack");
        ["prompt.json", "prompt.safetensors"]
            .iter()
            .map(|f| std::fs::read(scratch.dir.join(f)).expect("seed pack file"))
            .collect()
    })
    .collect()
}

fn run_pack(s: &Scratch, p: &[Vec<u8>]) -> bool {
    s.write("prompt.json", &with_sha256(&p[0], &p[1]));
    s.write("prompt.safetensors", &p[1]);
    let Ok(pack) = PromptPack::load(&s.dir) else {
        return false;
    };
    if let Ok(template) = Template::parse(&pack.template) {
        let _ = template.n_prompts() == pack.n_prompt();
    }
    let b = &pack.backbone;
    pack.check_compatible(&b.architecture, b.hidden_size, &b.tokenizer_hash)
        .is_ok()
}

/// The manifest with `tensor_sha256` set to the tensor file's hash, when it is a JSON object
/// with that key: otherwise nearly every mutation would stop at the hash check.
fn with_sha256(json: &[u8], tensors: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice(json) else {
        return json.to_vec();
    };
    if !m.contains_key("tensor_sha256") {
        return json.to_vec();
    }
    let hex: String = Sha256::digest(tensors)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    m.insert("tensor_sha256".into(), hex.into());
    serde_json::to_vec(&m).unwrap_or_else(|_| json.to_vec())
}

fn run_peft(s: &Scratch, p: &[Vec<u8>]) -> bool {
    s.write("adapter_config.json", &p[0]);
    s.write("adapter_model.safetensors", &p[1]);
    let hidden = serde_json::from_slice::<serde_json::Value>(&p[0])
        .ok()
        .and_then(|v| v["token_dim"].as_u64())
        .map_or(16, |d| d as usize);
    read_adapter(&s.dir, hidden).is_ok()
}
