//! Checks against the LAMA T-REx copy beside the workspace (`../shared/data/lama`, or
//! `PTUNE_LAMA_DIR`), and real tokenizers (`PTUNE_MODELS`). Ignored by default; CI runs them with
//! `cargo test -p ptune-data -- --ignored`.

mod common;

use std::collections::BTreeMap;

use common::{gpt2, lama_dir, minilm, specs};
use ptune_data::{
    DropReport, LamaDataset, QueryBuilder, Split, Template, TokenizerSpec, VocabList, VocabStrategy,
};
use tokenizers::Tokenizer;

/// Facts and relations per split, summed over the relations that have the split.
fn split_counts(data: &LamaDataset) -> BTreeMap<Split, (usize, usize)> {
    Split::ALL
        .iter()
        .map(|&split| {
            let relations = data.relations_with(split);
            let facts: usize = relations
                .iter()
                .map(|r| data.facts(&r.id, split).unwrap().len())
                .sum();
            (split, (facts, relations.len()))
        })
        .collect()
}

#[test]
#[ignore = "needs ../shared/data/lama (CI only)"]
fn lama_split_counts_are_stable() {
    let data = LamaDataset::open(lama_dir()).unwrap();
    assert_eq!(data.relations().len(), 46);
    let counts = split_counts(&data);
    println!("{counts:?}");
    // SOURCE.md says 39 relations for train, but P190 and P530 have no train file: 40 - 2 = 38.
    assert_eq!(counts[&Split::Train], (26_772, 38));
    assert_eq!(counts[&Split::Dev], (7_055, 40));
    assert_eq!(counts[&Split::Test], (22_881, 28));
}

#[test]
#[ignore = "needs ../shared/data/lama (CI only)"]
fn every_lama_template_parses_for_both_objectives() {
    let data = LamaDataset::open(lama_dir()).unwrap();
    for r in data.relations() {
        let t = Template::parse(&r.template).unwrap();
        assert_eq!(t.n_prompts(), 0, "{}", r.id);
        let causal = t.validate(
            ptune_data::Objective::Causal,
            ptune_data::PromptMode::Manual,
        );
        // P1923 is "[Y] participated in the [X] .": a causal LM would never see the subject.
        assert_eq!(causal.is_err(), r.id == "P1923", "{}", r.id);
    }
}

/// Facts kept per split for each vocabulary strategy.
fn survivors(
    tokenizer: &Tokenizer,
    spec: &TokenizerSpec,
    key: &str,
) -> BTreeMap<VocabStrategy, [usize; 3]> {
    let data = LamaDataset::open(lama_dir()).unwrap();
    let template = Template::parse("[P:3] [X] [P:3] [Y]").unwrap();
    let strategies = [
        VocabStrategy::Original,
        VocabStrategy::Shared,
        VocabStrategy::Lama,
    ];
    let mut out = BTreeMap::new();
    for strategy in strategies {
        let list: Option<VocabList> = data.vocab_list(strategy, key).unwrap();
        let builder = QueryBuilder::new(tokenizer, spec, &template)
            .unwrap()
            .with_vocab(list.as_ref());
        let kept = Split::ALL.map(|split| {
            let mut report = DropReport::default();
            for r in data.relations_with(split) {
                report.merge(&builder.build(&data.facts(&r.id, split).unwrap()).report);
            }
            println!("{key} {strategy} {split}: {report}");
            report.kept
        });
        out.insert(strategy, kept);
    }
    out
}

#[test]
#[ignore = "needs ../shared/data/lama and $PTUNE_MODELS/gpt2-bpe (CI only)"]
fn gpt2_survivors_per_vocab_strategy() {
    let tokenizer = gpt2();
    assert_eq!(tokenizer.encode(" Paris", false).unwrap().get_ids(), [6342]);
    let spec = specs::gpt2(&tokenizer);
    assert_eq!(spec.placeholder_id, 50256);
    let kept = survivors(&tokenizer, &spec, "gpt2-xl");
    // Of 26,772 / 7,055 / 22,881 facts; the rest have multi-token objects.
    assert_eq!(kept[&VocabStrategy::Original], [22_595, 5_962, 19_962]);
    assert_eq!(kept[&VocabStrategy::Shared], [22_593, 5_962, 19_962]);
    assert_eq!(kept[&VocabStrategy::Lama], [22_593, 5_962, 19_962]);
}

#[test]
#[ignore = "needs ../shared/data/lama and $PTUNE_MODELS/minilm (CI only)"]
fn minilm_survivors_per_vocab_strategy() {
    let tokenizer = minilm();
    let spec = specs::bert(&tokenizer);
    assert_eq!(spec.mask_id, Some(103));
    // The cased BERT lists carry over to the uncased tokenizer by re-encoding each entry.
    let kept = survivors(&tokenizer, &spec, "bert-base-cased");
    assert_eq!(kept[&VocabStrategy::Original], [26_768, 7_052, 22_881]);
    assert_eq!(kept[&VocabStrategy::Shared], [22_884, 6_048, 20_303]);
    assert_eq!(kept[&VocabStrategy::Lama], [26_742, 7_045, 22_881]);
}
