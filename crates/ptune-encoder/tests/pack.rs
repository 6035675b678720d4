//! Prompt packs: round trip, identity checks, and refusing broken or half-written packs.

mod common;

use burn::tensor::Device;
use common::scratch;
use ptune_encoder::{
    BackboneIdentity, EncoderError, EncoderKind, HostTensor, PromptEncoderConfig, PromptPack,
};
use std::fs;

fn identity() -> BackboneIdentity {
    BackboneIdentity::new("SmolLM2-135M", 576, "3f2a9c01b7e4d5c6a1b2")
}

fn pack() -> PromptPack {
    let device = Device::flex();
    let encoder = PromptEncoderConfig::new(EncoderKind::Lstm, 9, 576)
        .init(&device)
        .unwrap();
    PromptPack::new(
        encoder.forward(),
        "[P][P][P] [X] [P][P][P] [Y] [P][P][P]",
        identity(),
        "P17",
    )
    .unwrap()
    .with_metric("p_at_1", 0.5)
    .with_metric("encoder", "lstm")
}

#[test]
fn pack_round_trips() {
    let dir = scratch("pack-round-trip");
    let pack = pack();
    pack.save(&dir).unwrap();
    let loaded = PromptPack::load_for(&dir, &identity()).unwrap();
    assert_eq!(loaded, pack);
    assert_eq!(loaded.prompt_tensor(&Device::flex()).dims(), [9, 576]);
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        ["prompt.json", "prompt.safetensors"],
        "no temporary files left"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn another_backbone_is_refused_in_one_sentence() {
    let err = pack()
        .check_compatible("bert-base-cased", 768, "9d8c7b6a5f4e3d2c1b0a")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "this pack was trained for SmolLM2-135M (hidden 576, tokenizer 3f2a9c01b7e4…), \
         not for bert-base-cased (hidden 768, tokenizer 9d8c7b6a5f4e…)"
    );
    let same_model_other_vocab = pack().check_compatible("SmolLM2-135M", 576, "0000");
    assert!(matches!(
        same_model_other_vocab,
        Err(EncoderError::Incompatible { .. })
    ));
}

#[test]
fn half_written_or_tampered_packs_are_refused() {
    let dir = scratch("pack-tampered");
    pack().save(&dir).unwrap();
    // New prompts renamed into place, but the crash came before prompt.json: hashes differ.
    let other = PromptPack::from_host(
        HostTensor::new(vec![1, 576], vec![0.5; 576]),
        "t",
        identity(),
        "r",
    )
    .unwrap();
    let other_dir = scratch("pack-other");
    other.save(&other_dir).unwrap();
    fs::copy(
        other_dir.join("prompt.safetensors"),
        dir.join("prompt.safetensors"),
    )
    .unwrap();
    let err = PromptPack::load(&dir).unwrap_err().to_string();
    assert!(err.contains("not written completely"), "{err}");

    fs::remove_file(dir.join("prompt.json")).unwrap();
    assert!(matches!(
        PromptPack::load(&dir),
        Err(EncoderError::Io { .. })
    ));
    fs::write(dir.join("prompt.json"), "{").unwrap();
    assert!(matches!(
        PromptPack::load(&dir),
        Err(EncoderError::Json { .. })
    ));
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(other_dir).unwrap();
}

#[test]
fn bad_prompts_are_never_written() {
    let nan = HostTensor::new(
        vec![2, 4],
        vec![0.0, f32::NAN, 1.0, 2.0, 3.0, f32::INFINITY, 0.0, 0.0],
    );
    let id = BackboneIdentity::new("gpt2", 4, "h");
    let err = PromptPack::from_host(nan, "t", id.clone(), "r").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the prompt matrix holds 2 non-finite values (training diverged); nothing was exported"
    );
    let wide = HostTensor::new(vec![1, 5], vec![0.0; 5]);
    assert!(matches!(
        PromptPack::from_host(wide, "t", id.clone(), "r"),
        Err(EncoderError::PromptShape { .. })
    ));

    // A pack edited to hold NaN after construction is refused at save time, nothing written.
    let mut pack =
        PromptPack::from_host(HostTensor::new(vec![1, 4], vec![0.0; 4]), "t", id, "r").unwrap();
    pack.prompts.data[0] = f32::NAN;
    let dir = scratch("pack-nan");
    assert!(pack.save(&dir.join("out")).is_err());
    assert!(!dir.join("out").exists());
    fs::remove_dir_all(dir).unwrap();
}
