//! The tiny Llama GGUF (written like llama.cpp's converter) seen through the Hugging Face view
//! equals what transformers loads from it: config, every weight bit for bit, and token ids.

mod common;

use common::{GgufBuilder, first_difference, llama_fixture, read_safetensors};
use ptune_gguf::hf::Family;
use ptune_gguf::{GgufFile, HfView, tokenizer, tokenizer_metadata};

fn view() -> HfView {
    HfView::open(llama_fixture("model.gguf")).unwrap()
}

#[test]
fn config_matches_the_model() {
    let view = view();
    let c = view.config();
    assert_eq!(view.family(), Family::Llama);
    assert_eq!(c["model_type"], "llama");
    assert_eq!(c["architectures"][0], "LlamaForCausalLM");
    assert_eq!(c["hidden_size"], 32);
    assert_eq!(c["intermediate_size"], 64);
    assert_eq!(c["num_hidden_layers"], 2);
    assert_eq!(c["num_attention_heads"], 4);
    assert_eq!(c["num_key_value_heads"], 2);
    assert_eq!(c["head_dim"], 8);
    assert_eq!(c["rms_norm_eps"], 1e-5);
    assert_eq!(c["rope_theta"], 100000.0);
    assert_eq!(c["max_position_embeddings"], 64);
    assert_eq!(c["vocab_size"], 380);
    assert_eq!(c["tie_word_embeddings"], true);
    assert_eq!(c["attention_bias"], false);
    assert_eq!(c["bos_token_id"], 1);
    assert_eq!(c["eos_token_id"], 2);
    assert_eq!(c["pad_token_id"], 2);
}

#[test]
fn every_weight_equals_transformers() {
    let view = view();
    let expected = read_safetensors(&llama_fixture("hf_weights.safetensors"));
    let names: Vec<&str> = expected.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        view.names(),
        names,
        "same tensor names (tied: no lm_head.weight)"
    );
    assert!(view.unmapped().is_empty());
    for (name, shape, values) in &expected {
        assert_eq!(view.shape(name).as_ref(), Some(shape), "{name}: shape");
        let (got_shape, got) = view.read(name).unwrap().unwrap();
        assert_eq!(&got_shape, shape);
        assert!(
            first_difference(&got, values).is_none(),
            "{name}: first difference {:?}",
            first_difference(&got, values)
        );
    }
    assert!(view.read("lm_head.weight").unwrap().is_none());
}

fn token_reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(llama_fixture("tokens.json")).unwrap()).unwrap()
}

/// Checks `tok` against the expected ids of every reference text.
fn assert_ids(tok: &tokenizers::Tokenizer, reference: &serde_json::Value, pre: &str) {
    let texts = reference["texts"].as_array().unwrap();
    for (text, ids) in texts.iter().zip(reference["ids"][pre].as_array().unwrap()) {
        let text = text.as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
        let got = tok.encode(text, true).unwrap();
        assert_eq!(got.get_ids(), expected, "pre {pre}: {text:?}");
    }
}

#[test]
fn tokenizer_matches_the_reference_and_adds_bos() {
    let view = view();
    let specials = tokenizer_metadata(view.gguf()).unwrap();
    assert_eq!(
        (specials.bos, specials.eos, specials.pad),
        (Some(1), Some(2), Some(2))
    );
    assert!(specials.add_bos);
    let tok = tokenizer(view.gguf()).unwrap();
    let reference = token_reference();
    assert_ids(&tok, &reference, "smollm");
    for text in reference["texts"].as_array().unwrap() {
        let text = text.as_str().unwrap();
        let ids = tok.encode(text, true).unwrap();
        assert_eq!(ids.get_ids()[0], 1, "BOS first");
        assert_eq!(
            tok.decode(&ids.get_ids()[1..], false).unwrap(),
            text,
            "decoding round-trips"
        );
    }
    let plain = tok.encode("Hello", false).unwrap();
    assert_ne!(plain.get_ids()[0], 1, "no BOS without special tokens");
}

/// The fixture's vocabulary under other pre-tokenizers, against transformers' GGUF tokenizer.
#[test]
fn pre_tokenizers_match_transformers() {
    let source = view();
    let reference = token_reference();
    for pre in ["default", "llama-bpe", "qwen2"] {
        let mut b = GgufBuilder::default().kv_str("tokenizer.ggml.pre", pre);
        for (key, value) in source.gguf().metadata().iter() {
            let skip = ["tokenizer.ggml.pre", "tokenizer.ggml.add_bos_token"];
            if key.starts_with("tokenizer.") && !skip.contains(&key) {
                b = b.kv_value(key, value);
            }
        }
        let file = GgufFile::from_bytes(b.build()).unwrap();
        assert_ids(&tokenizer(&file).unwrap(), &reference, pre);
    }
}
