//! Malformed and unsupported input gives the right error, with a useful message, never a panic.

mod common;

use common::{GgufBuilder, f32_bytes, fixture, llama_fixture};
use ptune_gguf::{GgufError, GgufFile, HfView, Value, hf_config, tokenizer};

fn open(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(bytes)
}

fn tiny() -> GgufBuilder {
    GgufBuilder::default()
        .kv_str("general.architecture", "llama")
        .tensor("a", &[4], 0, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]))
}

#[test]
fn bad_magic() {
    let mut bytes = tiny().build();
    bytes[..4].copy_from_slice(b"GGML");
    let err = open(bytes).unwrap_err();
    assert!(
        matches!(err, GgufError::BadMagic { found } if &found == b"GGML"),
        "{err}"
    );
    assert!(err.to_string().contains("not a GGUF file"), "{err}");
}

#[test]
fn missing_file_is_an_io_error() {
    let err = GgufFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/model.gguf"));
}

#[test]
fn empty_file() {
    let path = std::env::temp_dir().join(format!("ptune-gguf-empty-{}.gguf", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let err = GgufFile::open(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");
}

#[test]
fn every_truncation_fails_cleanly() {
    for path in [fixture("quants.gguf"), llama_fixture("model.gguf")] {
        let bytes = std::fs::read(&path).unwrap();
        // Every cut inside the header, then a sample of cuts through the tensor data.
        let cuts = (0..8192.min(bytes.len())).chain((8192..bytes.len()).step_by(97));
        for len in cuts {
            let result = open(bytes[..len].to_vec());
            // gguf-py pads the file after the last tensor; cutting only padding is harmless.
            if bytes.len() - len < 32 && result.is_ok() {
                continue;
            }
            let err = result.unwrap_err();
            assert!(
                matches!(
                    err,
                    GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. }
                ),
                "{} cut at {len}: {err}",
                path.display()
            );
        }
        open(bytes).unwrap();
    }
}

#[test]
fn truncated_header_message() {
    let bytes = std::fs::read(fixture("quants.gguf")).unwrap();
    let err = open(bytes[..100].to_vec()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("truncated") && msg.contains("100 bytes"),
        "{msg}"
    );
}

#[test]
fn tensor_data_past_the_end() {
    let bytes = tiny().build();
    let err = open(bytes[..bytes.len() - 1].to_vec()).unwrap_err();
    assert!(
        matches!(&err, GgufError::TensorOutOfBounds { tensor, .. } if tensor == "a"),
        "{err}"
    );
    let huge = GgufBuilder::default()
        .tensor_at("far", &[8], 0, 1 << 40, &[])
        .build();
    assert!(matches!(
        open(huge).unwrap_err(),
        GgufError::TensorOutOfBounds { .. }
    ));
}

#[test]
fn versions() {
    let mut b = tiny();
    b.version = 1;
    assert!(matches!(
        open(b.build()).unwrap_err(),
        GgufError::UnsupportedVersion(1)
    ));
    let mut b = tiny();
    b.version = 4;
    let err = open(b.build()).unwrap_err();
    assert!(err.to_string().contains("versions 2 and 3"), "{err}");
    let mut b = tiny();
    b.version = 2;
    assert_eq!(open(b.build()).unwrap().version(), 2);
    let mut b = tiny();
    b.version = 3u32.swap_bytes();
    assert!(matches!(open(b.build()).unwrap_err(), GgufError::BigEndian));
}

#[test]
fn unsupported_and_unknown_tensor_types() {
    let q5k_block = vec![0u8; 176];
    let iq2_block = vec![0u8; 66];
    let file = open(
        tiny()
            .tensor("q8k", &[256], 15, &[0u8; 292])
            .tensor("iq2", &[256], 16, &iq2_block)
            .tensor("made_up", &[4], 99, &[0u8; 16])
            .tensor("q5k", &[256], 13, &q5k_block)
            .build(),
    )
    .unwrap();
    assert_eq!(file.read_f32("q5k").unwrap().unwrap().1, vec![0.0; 256]);
    for (name, type_name) in [
        ("q8k", "Q8_K"),
        ("iq2", "IQ2_XXS"),
        ("made_up", "unknown type id 99"),
    ] {
        let err = file.read_f32(name).unwrap_err();
        assert!(
            matches!(&err, GgufError::UnsupportedType { tensor, type_name: t } if tensor == name && t == type_name),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(type_name) && msg.contains("supported: F32, F16, BF16"),
            "{msg}"
        );
    }
    assert!(file.tensor_data("made_up").is_err());
    assert_eq!(file.tensor_data("iq2").unwrap().unwrap().len(), 66);
}

#[test]
fn invalid_tensor_infos() {
    let misaligned = GgufBuilder::default().tensor_at("m", &[4], 0, 4, &f32_bytes(&[0.0; 4]));
    let err = open(misaligned.build()).unwrap_err();
    assert!(
        err.to_string().contains("not a multiple of the alignment"),
        "{err}"
    );

    let partial_block = GgufBuilder::default().tensor("p", &[16], 8, &[0u8; 34]);
    let err = open(partial_block.build()).unwrap_err();
    assert!(matches!(err, GgufError::InvalidTensor { .. }), "{err}");

    let too_many_dims = GgufBuilder::default().tensor("d", &[1, 1, 1, 1, 1], 0, &[0u8; 4]);
    assert!(matches!(
        open(too_many_dims.build()).unwrap_err(),
        GgufError::InvalidTensor { .. }
    ));

    let overflow = GgufBuilder::default().tensor_at("o", &[u64::MAX, 2], 0, 0, &[]);
    assert!(matches!(
        open(overflow.build()).unwrap_err(),
        GgufError::InvalidTensor { .. }
    ));

    let twice = tiny().tensor("a", &[4], 0, &f32_bytes(&[0.0; 4]));
    assert!(
        open(twice.build())
            .unwrap_err()
            .to_string()
            .contains("appears twice")
    );
}

#[test]
fn custom_alignment_is_honoured() {
    let mut b = GgufBuilder::default().kv_u32("general.alignment", 64);
    b.alignment = 64;
    let file = open(b.tensor("x", &[2], 0, &f32_bytes(&[5.0, 6.0])).build()).unwrap();
    assert_eq!(file.alignment(), 64);
    assert_eq!(
        file.read_f32("x").unwrap().unwrap(),
        (vec![2], vec![5.0, 6.0])
    );

    let bad = GgufBuilder::default().kv_u32("general.alignment", 24);
    assert!(matches!(
        open(bad.build()).unwrap_err(),
        GgufError::InvalidHeader(_)
    ));
}

#[test]
fn bad_metadata() {
    let unknown_type = GgufBuilder::default().kv_raw("k", 42, &[0; 8]);
    let err = open(unknown_type.build()).unwrap_err();
    assert!(
        matches!(err, GgufError::UnknownValueType { type_id: 42, .. }),
        "{err}"
    );

    let bad_utf8 = GgufBuilder::default().kv_raw("k", 8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]);
    assert!(matches!(
        open(bad_utf8.build()).unwrap_err(),
        GgufError::InvalidUtf8 { .. }
    ));

    let mut nested = 8u32.to_le_bytes().to_vec();
    nested.extend(0u64.to_le_bytes());
    for _ in 0..20 {
        let mut outer = 9u32.to_le_bytes().to_vec();
        outer.extend(1u64.to_le_bytes());
        outer.extend(nested);
        nested = outer;
    }
    let deep = GgufBuilder::default().kv_raw("deep", 9, &nested);
    assert!(matches!(
        open(deep.build()).unwrap_err(),
        GgufError::InvalidHeader(_)
    ));

    let huge_count = GgufBuilder::default().kv_raw(
        "k",
        9,
        &[&4u32.to_le_bytes()[..], &u64::MAX.to_le_bytes()].concat(),
    );
    assert!(matches!(
        open(huge_count.build()).unwrap_err(),
        GgufError::Truncated { .. }
    ));
}

#[test]
fn wrong_metadata_types() {
    let file = open(
        tiny()
            .kv_str("s", "text")
            .kv_u32("n", 7)
            .kv_raw("neg", 5, &(-3i32).to_le_bytes())
            .kv_raw("big", 10, &u64::MAX.to_le_bytes())
            .kv_raw("narrow", 0, &[9])
            .kv_f32("f", 0.5)
            .kv_str_array("arr", &["x", "y"])
            .build(),
    )
    .unwrap();
    let md = file.metadata();
    assert_eq!(md.get_u32("n").unwrap(), Some(7));
    assert_eq!(
        md.get_u64("narrow").unwrap(),
        Some(9),
        "any integer width is accepted"
    );
    assert_eq!(md.get_i64("neg").unwrap(), Some(-3));
    assert_eq!(md.get_f32("f").unwrap(), Some(0.5));
    assert_eq!(
        md.get_f32("n").unwrap(),
        Some(7.0),
        "an integer is a valid number"
    );
    assert_eq!(md.get_str_array("arr").unwrap(), Some(vec!["x", "y"]));
    assert_eq!(md.get_u32("absent").unwrap(), None);
    let err = md.get_u32("s").unwrap_err();
    assert!(
        matches!(&err, GgufError::WrongType { key, .. } if key == "s"),
        "{err}"
    );
    assert!(err.to_string().contains("the string \"text\""), "{err}");
    assert!(md.get_u32("neg").is_err(), "negative is not a u32");
    assert!(md.get_u32("big").is_err(), "u64::MAX is not a u32");
    assert!(md.get_str("n").is_err());
    assert!(md.get_bool("f").is_err());
    assert!(md.get_str_array("s").is_err());
    let err = md.get_i64_array("arr").unwrap_err();
    assert!(err.to_string().contains("arr[0]"), "{err}");
}

#[test]
fn unsupported_architecture_and_tokenizer() {
    let file = open(
        GgufBuilder::default()
            .kv_str("general.architecture", "gemma2")
            .kv_str("tokenizer.ggml.model", "llama")
            .build(),
    )
    .unwrap();
    let err = hf_config(&file).unwrap_err();
    assert!(
        matches!(&err, GgufError::UnsupportedArchitecture(a) if a == "gemma2"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("llama, mistral (read as llama) and qwen2"),
        "{err}"
    );
    assert!(HfView::new(file).is_err());

    let file = open(
        GgufBuilder::default()
            .kv_str("tokenizer.ggml.model", "llama")
            .build(),
    )
    .unwrap();
    let err = tokenizer(&file).unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedTokenizer(_)), "{err}");

    let file = open(
        GgufBuilder::default()
            .kv_str("tokenizer.ggml.model", "gpt2")
            .kv_str("tokenizer.ggml.pre", "mystery")
            .kv_str_array("tokenizer.ggml.tokens", &["a", "b", "ab"])
            .kv_str_array("tokenizer.ggml.merges", &["a b"])
            .build(),
    )
    .unwrap();
    let err = tokenizer(&file).unwrap_err();
    assert!(
        matches!(err, GgufError::UnsupportedPreTokenizer { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("smollm"), "{err}");
}

#[test]
fn missing_hyperparameter() {
    let file = open(
        GgufBuilder::default()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.embedding_length", 8)
            .build(),
    )
    .unwrap();
    let err = hf_config(&file).unwrap_err();
    assert!(matches!(err, GgufError::MissingKey { .. }), "{err}");
    assert!(
        err.to_string().contains("llama.attention.head_count"),
        "{err}"
    );
}

/// A minimal llama header whose `key` holds `value` instead of a valid one.
fn llama_with(key: &str, value: Value) -> GgufFile {
    let valid = [
        ("llama.embedding_length", Value::U32(8)),
        ("llama.feed_forward_length", Value::U32(16)),
        ("llama.block_count", Value::U32(1)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("llama.attention.key_length", Value::U32(4)),
        ("llama.context_length", Value::U32(32)),
        ("llama.vocab_size", Value::U32(10)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
    ];
    assert!(valid.iter().any(|(k, _)| *k == key), "{key} is a known key");
    let b = valid.into_iter().fold(
        GgufBuilder::default().kv_str("general.architecture", "llama"),
        |b, (k, v)| b.kv_value(k, if k == key { &value } else { &v }),
    );
    open(b.build()).unwrap()
}

#[test]
fn zero_sizes_are_refused() {
    hf_config(&llama_with("llama.block_count", Value::U32(1))).unwrap();
    for key in [
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.block_count",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.attention.key_length",
        "llama.context_length",
    ] {
        let err = hf_config(&llama_with(key, Value::U32(0))).unwrap_err();
        assert!(
            matches!(&err, GgufError::WrongType { key: k, .. } if k == key),
            "{key}: {err}"
        );
        assert_eq!(
            err.to_string(),
            format!("metadata key {key:?} holds 0, but a positive finite number was expected")
        );
    }
}

#[test]
fn bad_epsilon_and_rope_base_are_refused_not_defaulted() {
    for key in [
        "llama.attention.layer_norm_rms_epsilon",
        "llama.rope.freq_base",
    ] {
        for (value, spelled) in [
            (f32::NAN, "NaN"),
            (f32::INFINITY, "inf"),
            (0.0, "0"),
            (-1.0, "-1"),
        ] {
            let err = hf_config(&llama_with(key, Value::F32(value))).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "metadata key {key:?} holds {spelled}, but a positive finite number was expected"
                )
            );
        }
    }
}
