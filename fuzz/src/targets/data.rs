//! Data files: templates (parsed, then turned into queries), LAMA facts and relations, vocab lists.

use super::{Format, Input, MAX_INPUT, Scratch, Target, root, seeds_under};
use ptune_backbone::tokenizer::{byte_level_bpe, wordpiece};
use ptune_data::{
    Fact, LamaDataset, Objective, PromptMode, QueryBuilder, Split, Template, TokenizerSpec,
    VocabList, read_facts, vocab_key_for_model,
};
use std::sync::OnceLock;
use tokenizers::Tokenizer;

/// The specs ptune-data's tests use for these two tokenizers.
#[allow(dead_code)]
#[path = "../../../crates/ptune-data/tests/common/specs.rs"]
mod specs;

/// Real templates are a line; longer ones only slow the query building down.
const TEMPLATE_MAX: usize = 4096;
const LAMA: &str = "crates/ptune-data/tests/fixtures/lama";
const JSONL_DICT: &[&[u8]] = &[
    b"\n",
    b"{}",
    b"\"predicate_id\"",
    b"\"obj_label\"",
    b"null",
    b"\"\"",
];

pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "template",
            entry: "ptune_data::Template::parse, validate, Display round trip, then QueryBuilder::new/build_one on a BERT and a GPT-2 tokenizer",
            parts: &[Format::Text],
            max_len: TEMPLATE_MAX,
            dict: &[
                b"[P]",
                b"[P:",
                b"[X]",
                b"[Y]",
                b"]",
                b",",
                b"(",
                b")",
                b" ",
                b"99999999999999999999",
                b"4294967296",
            ],
            seeds: template_seeds,
            run: |_, p| run_template(&String::from_utf8_lossy(&p[0])),
        },
        Target {
            name: "facts_jsonl",
            entry: "ptune_data::read_facts (a split's jsonl), with and without the relation check",
            parts: &[Format::Jsonl],
            max_len: MAX_INPUT,
            dict: JSONL_DICT,
            seeds: || {
                [
                    seeds_under(LAMA, "train.jsonl"),
                    seeds_under(LAMA, "dev.jsonl"),
                    seeds_under("datasets/facts/fact-retrieval", "test.jsonl"),
                ]
                .concat()
            },
            run: |s, p| {
                let path = s.write("train.jsonl", &p[0]);
                let any = read_facts(&path, None).is_ok();
                read_facts(&path, Some("P36")).is_ok() || any
            },
        },
        Target {
            name: "relations_jsonl",
            entry: "ptune_data::LamaDataset::open (relations.jsonl), relation lookups and split paths",
            parts: &[Format::Jsonl],
            max_len: MAX_INPUT,
            dict: JSONL_DICT,
            seeds: || {
                [
                    seeds_under(LAMA, "relations.jsonl"),
                    seeds_under("datasets/facts", "relations.jsonl"),
                ]
                .concat()
            },
            run: run_relations,
        },
        Target {
            name: "vocab_list",
            entry: "ptune_data::VocabList::from_file (29k-vocab.json / 34k-vocab.json) under each model key",
            parts: &[Format::Json],
            max_len: MAX_INPUT,
            dict: &[b"\"bert-base-cased\"", b"\"gpt2-xl\"", b"[]", b"null"],
            seeds: || seeds_under(LAMA, "-vocab.json"),
            run: |s, p| {
                let path = s.write("29k-vocab.json", &p[0]);
                let keys = [
                    "bert-base-cased",
                    "gpt2-xl",
                    "roberta-large",
                    "megatron_11b",
                ];
                let key_of = |m: &str| vocab_key_for_model(m).unwrap_or(m).to_string();
                keys.iter()
                    .filter(|k| {
                        VocabList::from_file(&path, &key_of(k))
                            .map(|l| l.words().count())
                            .is_ok()
                    })
                    .count()
                    > 0
            },
        },
    ]
}

fn template_seeds() -> Vec<Input> {
    let mut seeds: Vec<Input> = [
        "3,3,3",
        "(3, 3, 3)",
        "[P:3] [X] [P:3] [Y]",
        "[P] [X] [P][P] [Y] .",
        "[X] is located in [Y] .",
    ]
    .iter()
    .map(|t| vec![t.as_bytes().to_vec()])
    .collect();
    let relations =
        std::fs::read_to_string(root().join("datasets/facts/relations.jsonl")).unwrap_or_default();
    for line in relations.lines() {
        let t = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["template"].as_str().map(str::to_string));
        seeds.extend(t.map(|t| vec![t.into_bytes()]));
    }
    seeds
}

/// Parses, checks what the commands check, and builds queries as `train`, `eval` and `predict` do.
fn run_template(source: &str) -> bool {
    let Ok(template) = Template::parse(source) else {
        return false;
    };
    let canonical = template.to_string();
    assert_eq!(
        Template::parse(&canonical).ok(),
        Some(template.clone()),
        "{canonical} does not parse back"
    );
    let _ = (
        template.n_prompts(),
        template.text_after_object(),
        template.object_space_before(),
    );
    for (tokenizer, spec) in query_tokenizers() {
        for mode in [PromptMode::PTuning, PromptMode::Manual] {
            let _ = template.validate(spec.objective, mode);
        }
        if let Ok(builder) = QueryBuilder::new(tokenizer, spec, &template) {
            let _ = builder.build_one(&Fact::new("France", "Paris"));
            let _ = builder.query_for_subject("Kenya");
        }
    }
    true
}

/// A masked (BERT WordPiece) and a causal (GPT-2 byte-level BPE) tokenizer from the fixtures.
fn query_tokenizers() -> &'static [(Tokenizer, TokenizerSpec); 2] {
    static T: OnceLock<[(Tokenizer, TokenizerSpec); 2]> = OnceLock::new();
    T.get_or_init(|| {
        let dir = root().join("crates/ptune-backbone/tests/fixtures");
        let bert = wordpiece(&dir.join("bert/vocab.txt"), true).expect("bert fixture tokenizer");
        let gpt2 = byte_level_bpe(
            &dir.join("gpt2/vocab.json"),
            &dir.join("gpt2/merges.txt"),
            false,
        )
        .expect("gpt2 fixture tokenizer");
        let (bert_spec, gpt2_spec) = (specs::bert(&bert), specs::gpt2(&gpt2));
        debug_assert_eq!(gpt2_spec.objective, Objective::Causal);
        [(bert, bert_spec), (gpt2, gpt2_spec)]
    })
}

fn run_relations(s: &Scratch, p: &[Vec<u8>]) -> bool {
    s.write("relations.jsonl", &p[0]);
    let Ok(dataset) = LamaDataset::open(&s.dir) else {
        return false;
    };
    for r in dataset.relations() {
        let _ = dataset.relation(&r.id);
        let _ = (
            dataset.split_path(&r.id, Split::Train),
            dataset.has_split(&r.id, Split::Dev),
        );
        let _ = Template::parse(&r.template);
    }
    let _ = dataset.relations_with(Split::Test);
    true
}
