//! The specs ptune-train derives from these tokenizers' special tokens, written out for tests
//! (ptune-data itself has no presets: production reads the spec off the loaded tokenizer).

use ptune_data::{Objective, SpaceStyle, TokenizerSpec};
use tokenizers::Tokenizer;

fn id(t: &Tokenizer, token: &str) -> u32 {
    t.token_to_id(token)
        .unwrap_or_else(|| panic!("the tokenizer has no {token:?}"))
}

/// A masked LM, `cls … mask … sep`, padded with `pad`; `unk` fills prompt slots.
fn masked(
    t: &Tokenizer,
    space: SpaceStyle,
    [cls, sep, mask, pad, unk]: [&str; 5],
) -> TokenizerSpec {
    TokenizerSpec {
        objective: Objective::Masked,
        space,
        prefix_ids: vec![id(t, cls)],
        suffix_ids: vec![id(t, sep)],
        mask_id: Some(id(t, mask)),
        pad_id: id(t, pad),
        unk_id: Some(id(t, unk)),
        placeholder_id: id(t, unk),
    }
}

/// BERT-style WordPiece: `[CLS] … [MASK] … [SEP]`, pad `[PAD]`, placeholder `[UNK]`.
pub fn bert(t: &Tokenizer) -> TokenizerSpec {
    masked(
        t,
        SpaceStyle::Plain,
        ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"],
    )
}

/// RoBERTa-style byte level: `<s> … <mask> … </s>`, pad `<pad>`, placeholder `<unk>`.
pub fn roberta(t: &Tokenizer) -> TokenizerSpec {
    masked(
        t,
        SpaceStyle::ByteLevel,
        ["<s>", "</s>", "<mask>", "<pad>", "<unk>"],
    )
}

/// A causal LM: `special` pads and fills prompt slots; `bos`, when given, starts every query.
pub fn causal(t: &Tokenizer, space: SpaceStyle, special: &str, bos: Option<&str>) -> TokenizerSpec {
    TokenizerSpec {
        objective: Objective::Causal,
        space,
        prefix_ids: bos.map(|b| id(t, b)).into_iter().collect(),
        suffix_ids: Vec::new(),
        mask_id: None,
        pad_id: id(t, special),
        unk_id: None,
        placeholder_id: id(t, special),
    }
}

/// GPT-2: byte-level, no BOS, `<|endoftext|>` for padding and prompt slots.
pub fn gpt2(t: &Tokenizer) -> TokenizerSpec {
    causal(t, SpaceStyle::ByteLevel, "<|endoftext|>", None)
}
