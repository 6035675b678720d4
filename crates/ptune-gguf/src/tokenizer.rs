//! The tokenizer stored in `tokenizer.ggml.*` metadata, rebuilt as a `tokenizers::Tokenizer`.
//!
//! Only byte-level BPE (`tokenizer.ggml.model == "gpt2"`) is supported: GPT-2, SmolLM, Llama 3,
//! Qwen2 and most recent models use it. The pre-tokenizer regex is not stored in the file, only a
//! name for it (`tokenizer.ggml.pre`); we map the names to the splits llama.cpp applies.

use serde_json::json;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{GgufError, Result};
use crate::file::GgufFile;
use crate::value::Metadata;

/// llama.cpp's token type for control tokens such as `<|im_start|>`.
const TOKEN_CONTROL: i64 = 3;
/// llama.cpp's token type for user-defined added tokens, matched whole in text.
const TOKEN_USER_DEFINED: i64 = 4;

/// Llama 3's split (llama.cpp's `LLAMA3` pre-tokenizer): numbers in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split: like Llama 3's but one digit at a time.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` names handled, grouped by the split they stand for.
const GPT2_PRES: &[&str] = &["default", "gpt-2", "gpt2"];
const DIGITS_PRES: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva",
];
const LLAMA3_PRES: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "pixtral",
    "dbrx",
    "smaug-bpe",
];
const QWEN2_PRES: &[&str] = &["qwen2", "deepseek-r1-qwen", "megrez"];

/// What the `tokenizer.ggml.*` metadata declares about special tokens: ids and BOS/EOS flags.
/// Not the model's special tokens (ptune-backbone's `SpecialTokens` resolves those, preferring
/// these ids and finding the rest, the mask among them, by spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenizerMetadata {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    /// Whether encoding should start with BOS (`tokenizer.ggml.add_bos_token`, default false).
    pub add_bos: bool,
    /// Whether encoding should end with EOS (`tokenizer.ggml.add_eos_token`, default false).
    pub add_eos: bool,
}

impl TokenizerMetadata {
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let id = |name: &str| md.get_u32(&format!("tokenizer.ggml.{name}"));
        let flag = |name: &str| md.get_bool(&format!("tokenizer.ggml.{name}"));
        Ok(Self {
            bos: id("bos_token_id")?,
            eos: id("eos_token_id")?,
            unk: id("unknown_token_id")?,
            pad: id("padding_token_id")?,
            add_bos: flag("add_bos_token")?.unwrap_or(false),
            add_eos: flag("add_eos_token")?.unwrap_or(false),
        })
    }
}

/// The special-token metadata of a file (see [`TokenizerMetadata`]).
pub fn tokenizer_metadata(file: &GgufFile) -> Result<TokenizerMetadata> {
    TokenizerMetadata::from_metadata(file.metadata())
}

/// Builds the file's tokenizer: byte-level BPE with its vocabulary and merges, control tokens
/// as special added tokens, user-defined tokens as plain added tokens, the pre-tokenizer named by
/// `tokenizer.ggml.pre`, and BOS/EOS added only when the metadata asks for it.
pub fn tokenizer(file: &GgufFile) -> Result<Tokenizer> {
    let md = file.metadata();
    let model = md
        .get_str("tokenizer.ggml.model")?
        .ok_or_else(|| missing("tokenizer.ggml.model"))?;
    if model != "gpt2" {
        return Err(GgufError::UnsupportedTokenizer(model.to_string()));
    }
    let tokens = md
        .get_str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| missing("tokenizer.ggml.tokens"))?;
    let pre = md.get_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let add_prefix_space = md
        .get_bool("tokenizer.ggml.add_space_prefix")?
        .unwrap_or(false);
    let specials = TokenizerMetadata::from_metadata(md)?;

    let bpe = BPE::builder()
        .vocab_and_merges(vocab(&tokens), merges(md)?)
        .ignore_merges(LLAMA3_PRES.contains(&pre))
        .build()
        .map_err(tok_err)?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre_tokenizer(pre, add_prefix_space)?));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    add_tokens(&mut tok, md, &tokens)?;
    set_post_processor(&mut tok, &tokens, &specials)?;
    Ok(tok)
}

fn vocab(tokens: &[&str]) -> Vocab {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect()
}

/// Merges are stored as "left right"; like llama.cpp, split at the first space after the first
/// character, so a left part that is itself a space survives.
fn merges(md: &Metadata) -> Result<Vec<(String, String)>> {
    let merges = md
        .get_str_array("tokenizer.ggml.merges")?
        .ok_or_else(|| missing("tokenizer.ggml.merges"))?;
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.char_indices()
                .skip(1)
                .find(|&(_, c)| c == ' ')
                .map(|(at, _)| (m[..at].to_string(), m[at + 1..].to_string()))
                .ok_or_else(|| {
                    GgufError::Tokenizer(format!("merge {i} ({m:?}) has no separating space"))
                })
        })
        .collect()
}

fn pre_tokenizer(pre: &str, add_prefix_space: bool) -> Result<PreTokenizerWrapper> {
    let byte_level = |use_regex| ByteLevel::new(add_prefix_space, true, use_regex).into();
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(
            SplitPattern::Regex(regex.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(tok_err)?;
        Ok(Sequence::new(vec![split.into(), byte_level(false)]).into())
    };
    if GPT2_PRES.contains(&pre) {
        Ok(byte_level(true))
    } else if DIGITS_PRES.contains(&pre) {
        Ok(Sequence::new(vec![Digits::new(true).into(), byte_level(true)]).into())
    } else if LLAMA3_PRES.contains(&pre) {
        split(LLAMA3_SPLIT)
    } else if QWEN2_PRES.contains(&pre) {
        split(QWEN2_SPLIT)
    } else {
        let all = [GPT2_PRES, DIGITS_PRES, LLAMA3_PRES, QWEN2_PRES].concat();
        Err(GgufError::UnsupportedPreTokenizer {
            name: pre.to_string(),
            supported: all.join(", "),
        })
    }
}

/// Control tokens become special added tokens and user-defined ones plain added tokens, so that
/// both are matched whole in text (as llama.cpp does) and keep their ids.
fn add_tokens(tok: &mut Tokenizer, md: &Metadata, tokens: &[&str]) -> Result<()> {
    let Some(types) = md.get_i64_array("tokenizer.ggml.token_type")? else {
        return Ok(());
    };
    let of_type = |wanted: i64, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|&(_, &t)| t == wanted)
            .map(|(&content, _)| AddedToken::from(content, special).normalized(false))
            .collect()
    };
    tok.add_special_tokens(of_type(TOKEN_CONTROL, true))
        .map_err(tok_err)?;
    tok.add_tokens(of_type(TOKEN_USER_DEFINED, false))
        .map_err(tok_err)?;
    Ok(())
}

/// BOS/EOS around each sequence when the metadata asks for them; otherwise GPT-2's byte-level
/// post-processor, which only fixes offsets.
fn set_post_processor(
    tok: &mut Tokenizer,
    tokens: &[&str],
    specials: &TokenizerMetadata,
) -> Result<()> {
    let token = |flag: bool, id: Option<u32>| {
        id.filter(|_| flag)
            .and_then(|id| tokens.get(id as usize).map(|t| (t.to_string(), id)))
    };
    let bos = token(specials.add_bos, specials.bos);
    let eos = token(specials.add_eos, specials.eos);
    if bos.is_none() && eos.is_none() {
        tok.with_post_processor(Some(ByteLevel::default().trim_offsets(false)));
        return Ok(());
    }
    let piece = |t: &Option<(String, u32)>, type_id: u32| {
        t.as_ref()
            .map(|(name, _)| json!({ "SpecialToken": { "id": name, "type_id": type_id } }))
    };
    let seq =
        |id: &str, type_id: u32| Some(json!({ "Sequence": { "id": id, "type_id": type_id } }));
    let single: Vec<_> = [piece(&bos, 0), seq("A", 0), piece(&eos, 0)]
        .into_iter()
        .flatten()
        .collect();
    let pair: Vec<_> = [
        piece(&bos, 0),
        seq("A", 0),
        piece(&eos, 0),
        piece(&bos, 1),
        seq("B", 1),
        piece(&eos, 1),
    ]
    .into_iter()
    .flatten()
    .collect();
    let special_tokens: serde_json::Map<_, _> = [bos, eos]
        .into_iter()
        .flatten()
        .map(|(name, id)| {
            (
                name.clone(),
                json!({ "id": name, "ids": [id], "tokens": [name] }),
            )
        })
        .collect();
    // Built through serde because the string template syntax breaks on token names with ':'.
    let processor: TemplateProcessing = serde_json::from_value(json!({
        "type": "TemplateProcessing",
        "single": single,
        "pair": pair,
        "special_tokens": special_tokens,
    }))
    .map_err(tok_err)?;
    tok.with_post_processor(Some(processor));
    Ok(())
}

fn missing(key: &str) -> GgufError {
    GgufError::MissingKey {
        key: key.to_string(),
    }
}

fn tok_err(e: impl std::fmt::Display) -> GgufError {
    GgufError::Tokenizer(e.to_string())
}
