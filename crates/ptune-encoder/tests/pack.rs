//! Prompt packs: round trip, identity checks, and refusing broken or half-written packs.

mod common;

use burn::tensor::Device;
use common::scratch;
use ptune_data::VocabStrategy;
use ptune_encoder::NamedTensors;
use ptune_encoder::io::write_safetensors;
use ptune_encoder::{
    BackboneIdentity, EncoderError, EncoderKind, HostTensor, PromptEncoderConfig, PromptPack,
};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

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
        "[P] [X] [Y]",
        identity(),
        "P17",
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
    let one_row = HostTensor::new(vec![1, 4], vec![0.0; 4]);
    let mut pack = PromptPack::from_host(one_row, "[P] [X] [Y]", id, "P17").unwrap();
    pack.prompts.data[0] = f32::NAN;
    let dir = scratch("pack-nan");
    assert!(pack.save(&dir.join("out")).is_err());
    assert!(!dir.join("out").exists());
    fs::remove_dir_all(dir).unwrap();
}

/// Rewrites a saved pack's `prompt.json` through `edit`.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("prompt.json");
    let mut json: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// The ranking vocabulary round-trips as a field; a pack written before it was one keeps it in
/// its metrics, where it is still read.
#[test]
fn vocab_is_a_field_and_older_packs_keep_theirs_in_the_metrics() {
    let dir = scratch("pack-vocab");
    let pack = pack().with_vocab(VocabStrategy::Shared);
    pack.save(&dir).unwrap();
    assert_eq!(PromptPack::load(&dir).unwrap().vocab, VocabStrategy::Shared);
    edit_manifest(&dir, |json| {
        json.as_object_mut().unwrap().remove("vocab");
        json["metrics"]["vocab"] = "candidates".into();
    });
    assert_eq!(
        PromptPack::load(&dir).unwrap().vocab,
        VocabStrategy::Candidates
    );
    edit_manifest(&dir, |json| {
        json["metrics"].as_object_mut().unwrap().remove("vocab");
    });
    assert_eq!(
        PromptPack::load(&dir).unwrap().vocab,
        VocabStrategy::Original
    );
    fs::remove_dir_all(dir).unwrap();
}

/// Makes a saved pack a version 1 pack, as written before packs had `pack_sha256`.
fn as_version_1(json: &mut Value) {
    json["version"] = 1.into();
    json.as_object_mut().unwrap().remove("pack_sha256");
}

/// Replaces a saved pack's tensor file (a version 1 manifest then names its hash).
fn replace_tensor(dir: &Path, tensor: HostTensor) {
    let path = dir.join("prompt.safetensors");
    write_safetensors(
        &path,
        &NamedTensors::from([("prompt_embeddings".into(), tensor)]),
        None,
    )
    .unwrap();
    let hash: String = Sha256::digest(fs::read(&path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    edit_manifest(dir, |json| {
        as_version_1(json);
        json["tensor_sha256"] = hash.into();
    });
}

fn load_err(dir: &Path) -> String {
    PromptPack::load(dir).unwrap_err().to_string()
}

#[test]
fn a_template_must_have_one_prompt_slot_per_row() {
    let prompts = || pack().prompts;
    for (template, slots) in [("[P:3] [X] [Y]", 3), ("[P:12] [X] [Y]", 12)] {
        let err = PromptPack::from_host(prompts(), template, identity(), "P17").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "template \"{template}\" has {slots} prompt slots, but the prompt matrix has 9 \
                 rows; each slot takes one row"
            )
        );
    }
    let err = PromptPack::from_host(prompts(), "[P:3] [Y]", identity(), "P17").unwrap_err();
    assert!(err.to_string().contains("has no [X]"), "{err}");
}

#[test]
fn a_relation_that_is_not_a_plain_name_is_refused() {
    let err = PromptPack::from_host(pack().prompts, "3,3,3", identity(), "../../x").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"relation id "../../x" is not a plain name"#),
        "{err}"
    );
    let dir = scratch("pack-relation-path");
    pack().save(&dir).unwrap();
    edit_manifest(&dir, |json| {
        as_version_1(json);
        json["relation"] = "/abs/path".into();
    });
    let err = load_err(&dir);
    assert!(
        err.contains("prompt.json: relation id \"/abs/path\""),
        "{err}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_edited_template_is_refused_on_load() {
    let dir = scratch("pack-template-edited");
    pack().save(&dir).unwrap();
    // Version 2: the pack hash covers the template, so any edit is caught.
    edit_manifest(&dir, |json| json["template"] = "[P:9] [X] [Y]".into());
    let err = load_err(&dir);
    assert!(
        err.ends_with(
            "prompt.json: does not match its pack_sha256: its template, relation or backbone was \
             changed after export; export the pack again"
        ),
        "{err}"
    );
    // Version 1 packs (no pack hash) still load, and still must fit their matrix both ways.
    pack().save(&dir).unwrap();
    edit_manifest(&dir, as_version_1);
    assert_eq!(PromptPack::load(&dir).unwrap(), pack());
    for template in ["[P:3] [X] [Y]", "[P:12] [X] [Y]", "[P:10000000000] [X] [Y]"] {
        edit_manifest(&dir, |json| json["template"] = template.into());
        let err = load_err(&dir);
        assert!(
            err.contains(&format!("prompt.json: template \"{template}\"")),
            "{err}"
        );
    }
    // A version 2 pack without its hash is not a version 1 pack.
    pack().save(&dir).unwrap();
    edit_manifest(&dir, |json| {
        json.as_object_mut().unwrap().remove("pack_sha256");
    });
    assert!(load_err(&dir).ends_with("prompt.json: has no pack_sha256"));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damaged_tensors_are_refused_naming_the_file() {
    let dir = scratch("pack-damaged-tensor");
    pack().save(&dir).unwrap();
    let mut nan = pack().prompts;
    nan.data[7] = f32::NAN;
    replace_tensor(&dir, nan);
    let err = load_err(&dir);
    assert!(
        err.ends_with(
            "prompt.safetensors: holds 1 non-finite values (NaN or infinity); the file is damaged"
        ),
        "{err}"
    );
    replace_tensor(&dir, HostTensor::new(vec![9, 576, 1], vec![0.0; 9 * 576]));
    let err = load_err(&dir);
    assert!(
        err.contains("holds [9, 576, 1], but prompt.json says [9, 576]"),
        "{err}"
    );

    let bytes = 7i64.to_le_bytes();
    let view = TensorView::new(Dtype::I64, vec![1], &bytes).unwrap();
    let path = dir.join("prompt.safetensors");
    fs::write(
        &path,
        safetensors::serialize([("prompt_embeddings", view)], None).unwrap(),
    )
    .unwrap();
    let hash: String = Sha256::digest(fs::read(&path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    edit_manifest(&dir, |json| json["tensor_sha256"] = hash.into());
    let err = load_err(&dir);
    assert!(
        err.contains("prompt.safetensors: tensor `prompt_embeddings` has dtype I64"),
        "{err}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn odd_manifests_are_refused_and_a_byte_order_mark_is_accepted() {
    let dir = scratch("pack-odd-manifest");
    pack().save(&dir).unwrap();
    let path = dir.join("prompt.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("\u{feff}{text}")).unwrap();
    assert_eq!(PromptPack::load(&dir).unwrap(), pack());

    pack().save(&dir).unwrap();
    edit_manifest(&dir, |json| json["n_prompt"] = u64::MAX.into());
    assert!(load_err(&dir).contains("prompt.json says [18446744073709551615, 576]"));
    edit_manifest(&dir, |json| json["n_prompt"] = 1e30.into());
    assert!(load_err(&dir).contains("prompt.json: invalid JSON"));
    pack().save(&dir).unwrap();
    edit_manifest(&dir, |json| json["version"] = 7.into());
    assert!(load_err(&dir).contains("it reads v1 and v2"));
    fs::remove_dir_all(dir).unwrap();
}
