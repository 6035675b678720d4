//! Model files: weights (safetensors, shard index, pickle, GGUF), `config.json`, tokenizers.

use super::{Format, Input, MAX_INPUT, Scratch, Target, read, seeds_under};
use ptune_backbone::source::{GgufSource, PickleSource, SafetensorsSource, ShardedSafetensors};
use ptune_backbone::tokenizer::load_dir;
use ptune_backbone::{ModelConfig, SpecialTokens, TensorSource};
use std::sync::OnceLock;
use tokenizers::Tokenizer;

const FIXTURES: &str = "crates/ptune-backbone/tests/fixtures";
const SAFETENSORS_DICT: &[&[u8]] = &[
    b"\"dtype\"",
    b"\"shape\"",
    b"\"data_offsets\"",
    b"\"F32\"",
    b"\"BF16\"",
    b"\"F64\"",
    b"\"I8\"",
    b"\"__metadata__\"",
    b"[0,0]",
    b"18446744073709551615",
];
const JSON_DICT: &[&[u8]] = &[b"0", b"-1", b"null", b"\"\"", b"[]", b"{}", b"1e999"];

pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "safetensors",
            entry: "ptune_backbone::source::SafetensorsSource::open, then read() of every tensor",
            parts: &[Format::Binary],
            max_len: MAX_INPUT,
            dict: SAFETENSORS_DICT,
            seeds: || seeds_under(FIXTURES, ".safetensors"),
            run: |s, p| {
                SafetensorsSource::open(&s.write("model.safetensors", &p[0])).is_ok_and(read_all)
            },
        },
        Target {
            name: "safetensors_index",
            entry: "ptune_backbone::source::ShardedSafetensors::open (model.safetensors.index.json beside the llama_untied shards), then read() of every tensor",
            parts: &[Format::Json],
            max_len: MAX_INPUT,
            dict: JSON_DICT,
            seeds: || {
                vec![vec![read(&format!(
                    "{FIXTURES}/llama_untied/model.safetensors.index.json"
                ))]]
            },
            run: run_index,
        },
        Target {
            name: "pickle",
            entry: "ptune_backbone::source::PickleSource::open (pytorch_model.bin), then read() of every tensor",
            parts: &[Format::Binary],
            max_len: MAX_INPUT,
            dict: &[
                b"PK\x03\x04",
                b"PK\x01\x02",
                b"PK\x05\x06",
                b"\x80\x02",
                b"_rebuild_tensor_v2",
                b"storage",
                b"q\x00",
                b".",
            ],
            seeds: || seeds_under(FIXTURES, ".bin"),
            run: |s, p| {
                PickleSource::open(&s.write("pytorch_model.bin", &p[0])).is_ok_and(read_all)
            },
        },
        Target {
            name: "gguf",
            entry: "ptune_backbone::source::GgufSource::open (ptune_gguf::HfView), hf_config() into ModelConfig::from_value, tokenizer(), read() of every tensor: what ModelBundle::open does with a .gguf",
            parts: &[Format::Binary],
            max_len: MAX_INPUT,
            dict: &[
                b"GGUF",
                b"general.architecture",
                b"llama",
                b"tokenizer.ggml.tokens",
                b"general.alignment",
                b"\xff\xff\xff\xff",
            ],
            seeds: gguf_seeds,
            run: run_gguf,
        },
        Target {
            name: "config",
            entry: "ptune_backbone::ModelConfig::from_file (config.json) and the Llama accessors",
            parts: &[Format::Json],
            max_len: MAX_INPUT,
            dict: &[
                b"\"num_attention_heads\"",
                b"\"model_type\"",
                b"\"llama\"",
                b"\"bert\"",
                b"0",
                b"-1",
            ],
            seeds: || seeds_under(FIXTURES, "config.json"),
            run: run_config,
        },
        Target {
            name: "tokenizer_json",
            entry: "ptune_backbone::tokenizer::load_dir (tokenizer.json), SpecialTokens::find, encode/decode",
            parts: &[Format::Json],
            max_len: MAX_INPUT,
            dict: JSON_DICT,
            seeds: || {
                [
                    seeds_under(FIXTURES, "tokenizer.json"),
                    vec![vec![read(
                        "crates/ptune-data/tests/fixtures/tokenizers/tiny-bpe.json",
                    )]],
                ]
                .concat()
            },
            run: |s, p| tokenizer_in(s, &[("tokenizer.json", &p[0])], bert()),
        },
        Target {
            name: "vocab_txt",
            entry: "ptune_backbone::tokenizer::load_dir (WordPiece vocab.txt), SpecialTokens::find, encode/decode",
            parts: &[Format::Text],
            max_len: MAX_INPUT,
            dict: &[
                b"[UNK]", b"[CLS]", b"[SEP]", b"[MASK]", b"##", b"\n", b"\r\n", b"\0",
            ],
            seeds: || {
                [
                    seeds_under(FIXTURES, "vocab.txt"),
                    vec![vec![read(
                        "crates/ptune-data/tests/fixtures/tokenizers/wordpiece-vocab.txt",
                    )]],
                ]
                .concat()
            },
            run: |s, p| tokenizer_in(s, &[("vocab.txt", &p[0])], bert()),
        },
        Target {
            name: "bpe",
            entry: "ptune_backbone::tokenizer::load_dir (byte-level BPE vocab.json + merges.txt, RoBERTa config), SpecialTokens::find, encode/decode",
            parts: &[Format::Json, Format::Text],
            max_len: MAX_INPUT,
            dict: &[
                b"\xc4\xa0",
                b"#version: 0.2\n",
                b" ",
                b"\n",
                b"<mask>",
                b"<s>",
            ],
            seeds: || {
                ["gpt2", "roberta"]
                    .iter()
                    .map(|m| {
                        vec![
                            read(&format!("{FIXTURES}/{m}/vocab.json")),
                            read(&format!("{FIXTURES}/{m}/merges.txt")),
                        ]
                    })
                    .collect()
            },
            run: |s, p| {
                tokenizer_in(
                    s,
                    &[("vocab.json", &p[0]), ("merges.txt", &p[1])],
                    roberta(),
                )
            },
        },
    ]
}

/// Reads every tensor the source lists, as the loader would; true when all reads succeed.
fn read_all(src: impl TensorSource) -> bool {
    let names = src.names();
    let failed = names
        .iter()
        .filter(|n| {
            let _ = src.shape(n);
            src.read(n).is_err()
        })
        .count();
    let _ = src.describe();
    failed == 0
}

fn run_index(s: &Scratch, p: &[Vec<u8>]) -> bool {
    let shards = super::root().join(FIXTURES).join("llama_untied");
    if !s.dir.join("model-00001-of-00006.safetensors").exists() {
        for i in 1..=6 {
            let name = format!("model-{i:05}-of-00006.safetensors");
            std::fs::copy(shards.join(&name), s.dir.join(&name)).expect("copying a shard");
        }
    }
    let index = s.write("model.safetensors.index.json", &p[0]);
    ShardedSafetensors::open(&index).is_ok_and(read_all)
}

fn gguf_seeds() -> Vec<Input> {
    [
        seeds_under(FIXTURES, ".gguf"),
        seeds_under("crates/ptune-gguf/tests/fixtures", ".gguf"),
    ]
    .concat()
}

fn run_gguf(s: &Scratch, p: &[Vec<u8>]) -> bool {
    let Ok(src) = GgufSource::open(&s.write("model.gguf", &p[0])) else {
        return false;
    };
    let config = ModelConfig::from_value(src.hf_config()).is_ok();
    let tokenizer = src.tokenizer().map(|(t, _)| use_tokenizer(&t)).is_ok();
    read_all(src) && config && tokenizer
}

fn run_config(s: &Scratch, p: &[Vec<u8>]) -> bool {
    match ModelConfig::from_file(&s.write("config.json", &p[0])) {
        Ok(ModelConfig::Llama(c)) => {
            let _ = (c.head_dim(), c.kv_heads(), c.rope_theta(), c.qkv_bias());
            true
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Loads the tokenizer of a directory holding exactly `files`, and uses it.
fn tokenizer_in(s: &Scratch, files: &[(&str, &[u8])], config: &ModelConfig) -> bool {
    for (name, bytes) in files {
        s.write(name, bytes);
    }
    load_dir(&s.dir, config).map(|t| use_tokenizer(&t)).is_ok()
}

/// What ptune does with a tokenizer right after loading it.
fn use_tokenizer(t: &Tokenizer) {
    let _ = SpecialTokens::find(t);
    if let Ok(enc) = t.encode("The capital of France is [MASK] <mask> .", true) {
        let _ = t.decode(enc.get_ids(), false);
    }
}

fn bert() -> &'static ModelConfig {
    static C: OnceLock<ModelConfig> = OnceLock::new();
    C.get_or_init(|| fixture_config("bert"))
}

fn roberta() -> &'static ModelConfig {
    static C: OnceLock<ModelConfig> = OnceLock::new();
    C.get_or_init(|| fixture_config("roberta"))
}

fn fixture_config(model: &str) -> ModelConfig {
    let path = super::root().join(FIXTURES).join(model).join("config.json");
    ModelConfig::from_file(&path).expect("fixture config")
}
