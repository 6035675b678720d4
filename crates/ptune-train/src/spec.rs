//! How a loaded model tokenizes queries: `ptune-data`'s `TokenizerSpec`, read off the tokenizer
//! itself (special tokens it adds, how it marks word starts) rather than guessed from the family.

use anyhow::{Context, Result, bail};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::{Objective, SpaceStyle, TokenizerSpec};

pub fn tokenizer_spec(bundle: &ModelBundle, backbone: &Backbone) -> Result<TokenizerSpec> {
    let tokenizer = &bundle.tokenizer;
    let special = &bundle.special;
    let objective = backbone.objective();
    let (prefix_ids, suffix_ids) = added_specials(bundle)?;
    let pad_id = special.pad.or(special.eos).or(special.unk).unwrap_or(0);
    let spec = TokenizerSpec {
        objective,
        space: space_style(bundle),
        prefix_ids,
        suffix_ids: match objective {
            Objective::Masked => suffix_ids,
            Objective::Causal => vec![],
        },
        mask_id: match objective {
            Objective::Masked => Some(
                special
                    .mask
                    .context("this masked LM's tokenizer has no mask token")?,
            ),
            Objective::Causal => None,
        },
        pad_id,
        unk_id: special.unk.filter(|&u| tokenizer.id_to_token(u).is_some()),
        placeholder_id: special.unk.unwrap_or(pad_id),
    };
    spec.validate()?;
    Ok(spec)
}

/// The ids the tokenizer's post-processor puts around a text (`[CLS]`/`[SEP]`, BOS, …).
fn added_specials(bundle: &ModelBundle) -> Result<(Vec<u32>, Vec<u32>)> {
    let encode = |special: bool| -> Result<Vec<u32>> {
        let encoding = bundle
            .tokenizer
            .encode("paris", special)
            .map_err(|e| anyhow::anyhow!("the tokenizer failed on a plain word: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    };
    let (with, plain) = (encode(true)?, encode(false)?);
    let Some(start) =
        (0..=with.len().saturating_sub(plain.len())).find(|&i| with[i..].starts_with(&plain))
    else {
        bail!("the tokenizer's special-token template changes the text's own tokens");
    };
    Ok((with[..start].to_vec(), with[start + plain.len()..].to_vec()))
}

/// Byte-level BPE marks word starts with `Ġ`, SentencePiece with `▁`; WordPiece ignores spaces.
fn space_style(bundle: &ModelBundle) -> SpaceStyle {
    let vocab = bundle.tokenizer.get_vocab(false);
    if vocab.contains_key("Ġthe") || vocab.contains_key("Ġ") {
        SpaceStyle::ByteLevel
    } else if vocab.keys().any(|k| k.starts_with('▁')) {
        SpaceStyle::Metaspace
    } else {
        SpaceStyle::Plain
    }
}
