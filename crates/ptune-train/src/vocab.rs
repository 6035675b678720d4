//! Which tokens objects may be and predictions are ranked over, one place for `train` and `eval`.

use anyhow::{Context, Result};
use ptune_data::{
    AllowedVocab, LamaDataset, QueryBuilder, Split, VocabList, VocabStrategy, vocab_key_for_model,
};

/// The word list a strategy filters objects by (`None`: no list).
pub fn word_list(
    dataset: &LamaDataset,
    strategy: VocabStrategy,
    model: &str,
) -> Result<Option<VocabList>> {
    if strategy.file_name().is_none() {
        return Ok(None);
    }
    let key = vocab_key_for_model(model).with_context(|| {
        format!(
            "no {strategy} vocabulary list is known for {model}; use --vocab original or candidates"
        )
    })?;
    Ok(dataset.vocab_list(strategy, key)?)
}

/// The ranking vocabulary: the builder's (list or whole vocabulary), or for `candidates` the
/// distinct objects of every split of the relation.
pub fn allowed(
    strategy: VocabStrategy,
    builder: &QueryBuilder,
    dataset: &LamaDataset,
    relation: &str,
) -> Result<AllowedVocab> {
    if strategy != VocabStrategy::Candidates {
        return Ok(builder.allowed_vocab());
    }
    let mut ids = Vec::new();
    for split in [Split::Train, Split::Dev, Split::Test] {
        if dataset.has_split(relation, split) {
            ids.extend(
                builder
                    .build(&dataset.facts(relation, split)?)
                    .queries
                    .iter()
                    .map(|q| q.object_id),
            );
        }
    }
    Ok(AllowedVocab::from_ids(ids))
}
