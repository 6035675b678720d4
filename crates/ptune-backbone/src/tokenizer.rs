//! Tokenizers from the files checkpoints ship: `tokenizer.json`, a WordPiece `vocab.txt`, or a
//! byte-level BPE `vocab.json` + `merges.txt` (GPT-2 / RoBERTa).

use crate::config::{BertFlavor, ModelConfig};
use crate::error::{BackboneError, Result};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// Ids of the special tokens P-tuning and `predict` need, found by their usual spellings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub mask: Option<u32>,
    pub pad: Option<u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
}

impl SpecialTokens {
    pub fn find(tokenizer: &Tokenizer) -> Self {
        let first = |names: &[&str]| names.iter().find_map(|n| tokenizer.token_to_id(n));
        Self {
            mask: first(&["[MASK]", "<mask>"]),
            pad: first(&["[PAD]", "<pad>", "<|endoftext|>"]),
            bos: first(&["[CLS]", "<s>", "<|endoftext|>", "<|im_start|>"]),
            eos: first(&["[SEP]", "</s>", "<|endoftext|>", "<|im_end|>"]),
            unk: first(&["[UNK]", "<unk>"]),
        }
    }

    /// Each special token by the name error messages use.
    pub fn named(&self) -> [(&'static str, Option<u32>); 5] {
        [
            ("mask", self.mask),
            ("padding", self.pad),
            ("beginning-of-sequence", self.bos),
            ("end-of-sequence", self.eos),
            ("unknown", self.unk),
        ]
    }
}

/// Loads the tokenizer of a Hugging Face style directory, preferring `tokenizer.json`.
pub fn load_dir(dir: &Path, config: &ModelConfig) -> Result<Tokenizer> {
    let json = dir.join("tokenizer.json");
    let vocab_txt = dir.join("vocab.txt");
    let (vocab_json, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if json.is_file() {
        let mut tokenizer =
            without_panic(|| Tokenizer::from_file(&json)).map_err(|e| tok_error(&json, e))?;
        // Some tokenizer.json files pad/truncate to a fixed length; batching is ptune's job.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| tok_error(&json, e))?;
        // A post-processor template naming a special token it does not define loads, then
        // panics on the first encode with special tokens (`ptune predict`): probe it here.
        without_panic(|| tokenizer.encode("a", true)).map_err(|e| tok_error(&json, e))?;
        Ok(tokenizer)
    } else if vocab_txt.is_file() {
        wordpiece(&vocab_txt, lowercase(dir))
    } else if vocab_json.is_file() && merges.is_file() {
        let roberta = matches!(config, ModelConfig::Bert(c) if c.flavor == BertFlavor::Roberta);
        byte_level_bpe(&vocab_json, &merges, roberta)
    } else {
        Err(BackboneError::Tokenizer(format!(
            "{}: no tokenizer found (expected tokenizer.json, vocab.txt, or vocab.json + merges.txt)",
            dir.display()
        )))
    }
}

/// `do_lower_case` from `tokenizer_config.json`; BertTokenizer's default is to lowercase.
fn lowercase(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
        .unwrap_or(true)
}

/// BERT's WordPiece pipeline: normalizer, whitespace/punctuation split, `[CLS] … [SEP]`.
pub fn wordpiece(vocab: &Path, lowercase: bool) -> Result<Tokenizer> {
    let model = WordPiece::from_file(&vocab.to_string_lossy())
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| tok_error(vocab, e))?;
    let mut tokenizer = Tokenizer::new(model);
    let id = |t: &str| {
        tokenizer.token_to_id(t).ok_or_else(|| {
            BackboneError::Tokenizer(format!("{}: vocabulary lacks `{t}`", vocab.display()))
        })
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(|e| tok_error(vocab, e))?
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )))
        .with_decoder(Some(WordPieceDecoder::default()));
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .filter(|t| tokenizer.token_to_id(t).is_some())
        .map(|t| AddedToken::from(*t, true))
        .collect::<Vec<_>>();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| tok_error(vocab, e))?;
    Ok(tokenizer)
}

/// GPT-2 / RoBERTa byte-level BPE; RoBERTa wraps inputs in `<s> … </s>` and its `<mask>`
/// swallows the space before it, as in transformers.
pub fn byte_level_bpe(vocab: &Path, merges: &Path, roberta: bool) -> Result<Tokenizer> {
    let model = without_panic(|| {
        BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy()).build()
    })
    .map_err(|e| tok_error(vocab, e))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_decoder(Some(ByteLevelDecoder::default()));
    let mut specials = vec![];
    for t in ["<s>", "</s>", "<pad>", "<unk>", "<|endoftext|>"] {
        if tokenizer.token_to_id(t).is_some() {
            specials.push(AddedToken::from(t, true));
        }
    }
    if tokenizer.token_to_id("<mask>").is_some() {
        specials.push(AddedToken::from("<mask>", true).lstrip(true));
    }
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| tok_error(vocab, e))?;
    if roberta {
        let id = |t: &str| tokenizer.token_to_id(t).unwrap_or(0);
        let (cls, sep) = (id("<s>"), id("</s>"));
        tokenizer.with_post_processor(Some(RobertaProcessing::new(
            ("</s>".into(), sep),
            ("<s>".into(), cls),
        )));
    }
    Ok(tokenizer)
}

/// Runs a `tokenizers` constructor that panics on some malformed files instead of failing
/// (0.23: a syntax error inside `"decoder"` of a tokenizer.json, `expect("Helper")`; a merge
/// longer than any vocabulary token in a BPE merges file, a slice out of range), so a damaged
/// file is an error, not a crash. The hook is silenced meanwhile, as `ptune` loads tokenizers on
/// its main thread before any other work.
fn without_panic<T>(
    build: impl FnOnce() -> tokenizers::Result<T>,
) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build));
    std::panic::set_hook(hook);
    match result {
        Ok(built) => built.map_err(|e| e.to_string()),
        Err(_) => Err("malformed (the tokenizers crate panicked reading it)".into()),
    }
}

fn tok_error(path: &Path, e: impl std::fmt::Display) -> BackboneError {
    BackboneError::Tokenizer(format!("{}: {e}", path.display()))
}
