//! PEFT's p-tuning adapter format: an adapter PEFT wrote reads back with PEFT's values, and the
//! adapters Rust writes are byte-identical to the committed ones that
//! scripts/make_encoder_fixtures.py loads into PEFT (`PTUNE_WRITE_FIXTURES=1` rewrites them).

mod common;

use common::{fixture, scratch, tensors};
use ptune_encoder::peft::{
    ADAPTER_CONFIG, ADAPTER_WEIGHTS, PeftAdapterConfig, PeftTaskType, read_adapter, write_adapter,
};
use ptune_encoder::{BackboneIdentity, EncoderError, HostTensor, PromptPack};
use std::fs;
use std::path::Path;

const H: usize = 32;

/// `((i*H + j) % 97) / 32 - 1.5`: exact in f32, recomputed by the Python check.
fn formula(n: usize) -> HostTensor {
    let data = (0..n * H).map(|k| (k % 97) as f32 / 32.0 - 1.5).collect();
    HostTensor::new(vec![n, H], data)
}

#[test]
fn adapter_written_by_peft_reads_back_with_peft_values() {
    let adapter = read_adapter(&fixture("peft_adapter"), H).unwrap();
    let want = &tensors("peft_adapter/reference.safetensors")["prompts"];
    assert_eq!(&adapter.prompts, want);
    assert_eq!(adapter.config.task_type.as_deref(), Some("CAUSAL_LM"));
    assert_eq!(adapter.config.num_virtual_tokens, 5);
    assert!(
        adapter.config.extra.contains_key("peft_version"),
        "unknown fields are kept"
    );
}

/// The adapters the Python script loads into PEFT: gpt2 (causal) and bert (masked).
fn write_rust_adapters(root: &Path) {
    let mut config = PeftAdapterConfig::new(PeftTaskType::CausalLm, 4, H);
    config.num_attention_heads = Some(4);
    config.num_layers = Some(2);
    config.base_model_name_or_path = Some("gpt2-tiny-fixture".into());
    write_adapter(&root.join("rust_adapter_gpt2"), &formula(4), &config).unwrap();

    let identity = BackboneIdentity::new("BertForMaskedLM", H, "fixture-vocab");
    let pack = PromptPack::from_host(formula(3), "[P] [X] [P] [Y] [P]", identity, "P17").unwrap();
    let dir = root.join("rust_adapter_bert");
    pack.write_peft(
        &dir,
        PeftTaskType::FeatureExtraction,
        Some("bert-tiny-fixture"),
    )
    .unwrap();
}

#[test]
fn rust_adapters_match_the_fixtures_peft_loads() {
    if std::env::var_os("PTUNE_WRITE_FIXTURES").is_some() {
        write_rust_adapters(&fixture(""));
        return;
    }
    let dir = scratch("peft-rust");
    write_rust_adapters(&dir);
    for name in ["rust_adapter_gpt2", "rust_adapter_bert"] {
        for file in [ADAPTER_CONFIG, ADAPTER_WEIGHTS] {
            let got = fs::read(dir.join(name).join(file)).unwrap();
            let want = fs::read(fixture(name).join(file)).unwrap();
            assert!(
                got == want,
                "{name}/{file} differs from the committed fixture"
            );
        }
        let back = read_adapter(&dir.join(name), H).unwrap();
        assert_eq!(back.prompts, formula(back.config.num_virtual_tokens));
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn other_adapters_are_refused_in_one_sentence() {
    let dir = scratch("peft-refuse");
    let config = PeftAdapterConfig::new(PeftTaskType::CausalLm, 2, H);
    write_adapter(&dir, &formula(2), &config).unwrap();

    let err = read_adapter(&dir, 768).unwrap_err();
    assert!(
        matches!(
            err,
            EncoderError::TokenDim {
                found: 32,
                expected: 768,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("token_dim is 32, but the backbone's hidden size is 768")
    );

    let text = fs::read_to_string(dir.join(ADAPTER_CONFIG)).unwrap();
    fs::write(dir.join(ADAPTER_CONFIG), text.replace("P_TUNING", "LORA")).unwrap();
    let err = read_adapter(&dir, H).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("peft_type is `LORA`, but only P_TUNING adapters can be read")
    );

    let mut wrong_rows = config.clone();
    wrong_rows.num_virtual_tokens = 3;
    assert!(write_adapter(&dir, &formula(2), &wrong_rows).is_err());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn zero_or_huge_sizes_in_an_adapter_config_are_refused() {
    let dir = scratch("peft-zeros");
    let config = PeftAdapterConfig::new(PeftTaskType::CausalLm, 2, H);
    write_adapter(&dir, &formula(2), &config).unwrap();
    let text = fs::read_to_string(dir.join(ADAPTER_CONFIG)).unwrap();
    let edit = |field: &str, value: serde_json::Value| {
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json[field] = value;
        fs::write(dir.join(ADAPTER_CONFIG), json.to_string()).unwrap();
        read_adapter(&dir, H).unwrap_err().to_string()
    };
    let err = edit("num_transformer_submodules", 0.into());
    assert!(
        err.ends_with(
            "adapter_config.json: num_transformer_submodules is 0, but it must be at least 1"
        ),
        "{err}"
    );
    let err = edit("num_virtual_tokens", 0.into());
    assert!(
        err.ends_with("num_virtual_tokens is 0, but it must be at least 1"),
        "{err}"
    );
    let err = edit("num_virtual_tokens", u64::MAX.into());
    assert!(err.contains("[18446744073709551615, 32]"), "{err}");
    let err = edit("num_transformer_submodules", u64::MAX.into());
    assert!(err.ends_with("is too large"), "{err}");

    let mut zero = config.clone();
    zero.num_transformer_submodules = 0;
    assert!(write_adapter(&dir, &formula(2), &zero).is_err());
    fs::remove_dir_all(dir).unwrap();
}
