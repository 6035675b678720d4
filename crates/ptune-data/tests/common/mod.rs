//! Shared test helpers: fixture paths and tokenizers (tiny committed ones, and real ones for the
//! CI-only tests).
#![allow(dead_code)]

pub mod specs;

use std::path::PathBuf;

use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(path: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(path)
}

/// The small LAMA-layout fixture: P36 (all splits), P19 (no test split), P31 (listed, no files).
pub fn lama_fixture() -> PathBuf {
    fixture("lama")
}

/// The fact set the project ships.
pub fn bundled_dir() -> PathBuf {
    crate_dir().join("../../datasets/facts")
}

/// The LAMA T-REx copy used by CI-only tests: `PTUNE_LAMA_DIR`, or `../shared/data/lama` beside
/// the workspace.
pub fn lama_dir() -> PathBuf {
    match std::env::var_os("PTUNE_LAMA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate_dir().join("../../../shared/data/lama"),
    }
}

/// Downloaded models: `PTUNE_MODELS`, or `~/.cache/ptune/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("PTUNE_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/ptune/models"),
    }
}

/// A tiny cased BERT-style WordPiece tokenizer from the committed `wordpiece-vocab.txt`.
pub fn wordpiece() -> Tokenizer {
    let vocab = fixture("tokenizers/wordpiece-vocab.txt");
    let model = WordPiece::from_file(vocab.to_str().unwrap())
        .unk_token("[UNK]".to_string())
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, false)))
        .unwrap();
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    let id = |t: &str| tokenizer.token_to_id(t).unwrap();
    let processor =
        BertProcessing::new(("[SEP]".into(), id("[SEP]")), ("[CLS]".into(), id("[CLS]")));
    tokenizer.with_post_processor(Some(processor));
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let specials: Vec<AddedToken> = specials
        .iter()
        .map(|t| AddedToken::from(*t, true))
        .collect();
    tokenizer.add_special_tokens(specials).unwrap();
    tokenizer
}

/// The committed tiny GPT-2-style byte-level BPE (see `examples/train_tiny_bpe.rs`).
pub fn tiny_bpe() -> Tokenizer {
    Tokenizer::from_file(fixture("tokenizers/tiny-bpe.json")).unwrap()
}

/// GPT-2's tokenizer from `encoder.json` + `vocab.bpe` under `$PTUNE_MODELS/gpt2-bpe`.
pub fn gpt2() -> Tokenizer {
    let dir = models_dir().join("gpt2-bpe");
    let vocab = dir.join("encoder.json");
    let merges = dir.join("vocab.bpe");
    let model = BPE::from_file(vocab.to_str().unwrap(), merges.to_str().unwrap())
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(model);
    let byte_level = ByteLevel::new(false, true, true);
    tokenizer.with_pre_tokenizer(Some(byte_level));
    tokenizer.with_decoder(Some(byte_level));
    tokenizer.with_post_processor(Some(byte_level));
    tokenizer
        .add_special_tokens([AddedToken::from("<|endoftext|>", true)])
        .unwrap();
    tokenizer
}

/// MiniLM's uncased WordPiece `tokenizer.json` under `$PTUNE_MODELS/minilm`.
pub fn minilm() -> Tokenizer {
    Tokenizer::from_file(models_dir().join("minilm/tokenizer.json")).unwrap()
}

/// Token strings of some ids, for readable assertions.
pub fn tokens(tokenizer: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&id| {
            tokenizer
                .id_to_token(id)
                .unwrap_or_else(|| format!("<{id}>"))
        })
        .collect()
}
