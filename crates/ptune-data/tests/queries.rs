//! Queries (masked WordPiece and causal byte-level BPE), drop accounting, vocabulary strategies,
//! and batches of real queries.

mod common;

use common::{bundled_dir, lama_fixture, specs, tiny_bpe, tokens, wordpiece};
use ptune_data::{
    BatchConfig, BatchPlan, DropReason, Fact, LamaDataset, Objective, QueryBuilder, Split,
    Template, VocabStrategy,
};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

fn template(s: &str) -> Template {
    Template::parse(s).unwrap()
}

fn fixture_facts(relation: &str) -> Vec<Fact> {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    data.facts(relation, Split::Train).unwrap()
}

fn france() -> Fact {
    Fact::new("France", "Paris")
}

#[test]
fn masked_query_puts_mask_at_y_and_placeholders_in_prompt_slots() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let t = template("[P:2] [X] 's capital is [Y] [P]");
    let q = QueryBuilder::new(&tok, &spec, &t)
        .unwrap()
        .build_one(&france())
        .unwrap();
    let expected = [
        "[CLS]", "[UNK]", "[UNK]", "France", "'", "s", "capital", "is", "[MASK]", "[UNK]", "[SEP]",
    ];
    assert_eq!(tokens(&tok, &q.input_ids), expected);
    assert_eq!(q.prompt_positions, [1, 2, 9]);
    assert_eq!(q.target_position, 8);
    assert_eq!(q.lead, 3, "[CLS] and two prompts come before the subject");
    assert_eq!(Some(q.object_id), tok.token_to_id("Paris"));
}

#[test]
fn masked_manual_template_has_no_prompt_slots() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let t = template("The capital of [X] is [Y] .");
    let q = QueryBuilder::new(&tok, &spec, &t)
        .unwrap()
        .build_one(&france())
        .unwrap();
    let expected = [
        "[CLS]", "The", "capital", "of", "France", "is", "[MASK]", ".", "[SEP]",
    ];
    assert_eq!(tokens(&tok, &q.input_ids), expected);
    assert!(q.prompt_positions.is_empty());
    assert_eq!(q.target_position, 6);
    assert_eq!(q.lead, 4, "[CLS] The capital of");
}

#[test]
fn causal_query_ends_before_the_object_with_leading_spaces() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let q = QueryBuilder::new(&tok, &spec, &template("3,3,0"))
        .unwrap()
        .build_one(&france())
        .unwrap();
    let eot = "<|endoftext|>";
    assert_eq!(
        tokens(&tok, &q.input_ids),
        [eot, eot, eot, "ĠFrance", eot, eot, eot]
    );
    assert_eq!(q.prompt_positions, [0, 1, 2, 4, 5, 6]);
    assert_eq!(q.target_position, 6);
    assert_eq!(q.lead, 3);
    assert_eq!(tokens(&tok, &[q.object_id]), ["ĠParis"]);
}

#[test]
fn causal_manual_query_reads_as_the_sentence_up_to_the_object() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let t = template("The capital of [X] is [Y] .");
    let q = QueryBuilder::new(&tok, &spec, &t)
        .unwrap()
        .build_one(&france())
        .unwrap();
    assert_eq!(
        tok.decode(&q.input_ids, false).unwrap(),
        "The capital of France is"
    );
    assert_eq!(
        tokens(&tok, &q.input_ids)[0],
        "The",
        "no space at the start"
    );
    assert_eq!(q.target_position, q.input_ids.len() - 1);
    assert_eq!(tokens(&tok, &[q.object_id]), ["ĠParis"]);
}

#[test]
fn no_space_before_y_means_the_object_token_has_no_space_mark() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let glued = QueryBuilder::new(&tok, &spec, &template("[P] [X]:[Y]")).unwrap();
    let spaced = QueryBuilder::new(&tok, &spec, &template("[P] [X]: [Y]")).unwrap();
    assert_eq!(glued.object_token("euro").ok(), tok.token_to_id("euro"));
    assert_eq!(spaced.object_token("euro").ok(), tok.token_to_id("Ġeuro"));
    assert_ne!(tok.token_to_id("euro"), tok.token_to_id("Ġeuro"));
}

#[test]
fn causal_spec_with_a_bos_starts_every_query_with_it() {
    let tok = tiny_bpe();
    let spec = specs::causal(
        &tok,
        ptune_data::SpaceStyle::ByteLevel,
        "<|endoftext|>",
        Some("<s>"),
    );
    let q = QueryBuilder::new(&tok, &spec, &template("[P] [X] is [Y]"))
        .unwrap()
        .build_one(&france())
        .unwrap();
    assert_eq!(
        tokens(&tok, &q.input_ids),
        ["<s>", "<|endoftext|>", "ĠFrance", "Ġis"]
    );
    assert_eq!(q.prompt_positions, [1]);
    assert_eq!(q.target_position, 3);
}

#[test]
fn byte_level_masked_lm_uses_spaced_object_and_its_own_specials() {
    let tok = tiny_bpe();
    let spec = specs::roberta(&tok);
    let q = QueryBuilder::new(&tok, &spec, &template("3,3,3"))
        .unwrap()
        .build_one(&france())
        .unwrap();
    let toks = tokens(&tok, &q.input_ids);
    assert_eq!(toks.first().map(String::as_str), Some("<s>"));
    assert_eq!(toks.last().map(String::as_str), Some("</s>"));
    assert_eq!(toks[q.target_position], "<mask>");
    assert_eq!(q.prompt_positions.len(), 9);
    assert!(q.prompt_positions.iter().all(|&p| toks[p] == "<unk>"));
    assert_eq!(tokens(&tok, &[q.object_id]), ["ĠParis"]);
}

#[test]
fn specs_and_templates_that_do_not_fit_are_refused() {
    let bpe = tiny_bpe();
    let spec = specs::gpt2(&bpe);
    let e = QueryBuilder::new(&bpe, &spec, &template("3,3,3")).unwrap_err();
    assert!(e.to_string().contains("after [Y]"), "{e}");
    let mut no_mask = specs::roberta(&bpe);
    no_mask.mask_id = None;
    let e = QueryBuilder::new(&bpe, &no_mask, &template("3,3,3")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a masked LM spec needs a mask token id, and this one has none"
    );
    assert_eq!(spec.objective, Objective::Causal);
}

#[test]
fn wordpiece_drops_multi_token_and_unknown_objects_and_counts_them() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let builder = QueryBuilder::new(&tok, &spec, &template("3,3,3")).unwrap();
    let set = builder.build(&fixture_facts("P36"));
    assert_eq!((set.report.total, set.report.kept), (6, 4));
    assert_eq!(
        set.report.count(DropReason::MultiTokenObject),
        1,
        "Montevideo"
    );
    assert_eq!(set.report.count(DropReason::UnknownObject), 1, "Brasília");
    let kept: Vec<usize> = set.queries.iter().map(|q| q.fact_index).collect();
    assert_eq!(kept, [0, 1, 2, 3]);
    assert_eq!(
        set.report.to_string(),
        "kept 4 of 6 facts (dropped: 1 multi-token object, 1 unknown-token object)"
    );
    let born = builder.build(&fixture_facts("P19"));
    assert_eq!(
        born.report.count(DropReason::MultiTokenObject),
        1,
        "São Paulo"
    );
}

#[test]
fn vocabulary_strategies_filter_objects_like_the_reference() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let facts = fixture_facts("P36");
    for (tok, spec, key) in [
        (wordpiece(), specs::bert(&wordpiece()), "bert-base-cased"),
        (tiny_bpe(), specs::gpt2(&tiny_bpe()), "gpt2-xl"),
    ] {
        let t = template("3,3,0");
        let kept = |strategy| {
            let list = data.vocab_list(strategy, key).unwrap();
            let builder = QueryBuilder::new(&tok, &spec, &t)
                .unwrap()
                .with_vocab(list.as_ref());
            builder.build(&facts).report
        };
        let original = kept(VocabStrategy::Original);
        let shared = kept(VocabStrategy::Shared);
        let lama = kept(VocabStrategy::Lama);
        assert_eq!(original.kept, 4, "{key}: Paris, Berlin, Tokyo, Rome");
        assert_eq!(shared.kept, 3, "{key}: Rome is not in the 29k fixture list");
        assert_eq!(shared.count(DropReason::ObjectNotInVocab), 1, "{key}");
        assert_eq!(lama.kept, 4, "{key}: Rome is in the 34k fixture list");
    }
}

#[test]
fn allowed_vocab_is_the_list_as_token_ids_or_the_whole_vocabulary() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let t = template("3,3,3");
    let full = QueryBuilder::new(&tok, &spec, &t).unwrap().allowed_vocab();
    assert_eq!(full.len(), tok.get_vocab_size(true));
    let list = data
        .vocab_list(VocabStrategy::Shared, "bert-base-cased")
        .unwrap();
    let builder = QueryBuilder::new(&tok, &spec, &t)
        .unwrap()
        .with_vocab(list.as_ref());
    let allowed = builder.allowed_vocab();
    assert_eq!(allowed.len(), 10);
    assert!(allowed.contains(tok.token_to_id("Paris").unwrap()));
    assert!(!allowed.contains(tok.token_to_id("Rome").unwrap()));
    let set = builder.build(&fixture_facts("P36"));
    let candidates = set.candidates();
    assert_eq!(candidates.len(), 3);
    assert!(candidates.ids().iter().all(|&id| allowed.contains(id)));
}

#[test]
fn too_long_and_empty_subject_facts_are_dropped_and_counted() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let t = template("The capital of [X] is [Y] .");
    let builder = QueryBuilder::new(&tok, &spec, &t).unwrap().max_len(8);
    let facts = [france(), Fact::new("  ", "Paris")];
    let set = builder.build(&facts);
    assert_eq!(set.report.kept, 0);
    assert_eq!(set.report.count(DropReason::TooLong), 1, "9 ids > 8");
    assert_eq!(set.report.count(DropReason::EmptySubject), 1);
    let roomy = QueryBuilder::new(&tok, &spec, &t).unwrap().max_len(9);
    assert_eq!(roomy.build(&[france()]).report.kept, 1);
}

#[test]
fn tokenizer_padding_and_truncation_do_not_leak_into_pieces() {
    let plain = wordpiece();
    let mut padded: Tokenizer = wordpiece();
    padded.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(16),
        ..PaddingParams::default()
    }));
    let spec = specs::bert(&plain);
    let t = template("[P] [X] is [Y] .");
    let a = QueryBuilder::new(&plain, &spec, &t)
        .unwrap()
        .build(&fixture_facts("P36"));
    let b = QueryBuilder::new(&padded, &spec, &t)
        .unwrap()
        .build(&fixture_facts("P36"));
    assert_eq!(a, b);
}

#[test]
fn batches_of_real_queries_pad_and_point_at_the_right_slots() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let data = LamaDataset::open(bundled_dir()).unwrap();
    let facts = data.facts("P36", Split::Train).unwrap();
    let set = QueryBuilder::new(&tok, &spec, &template("[P:2] [X] [P:2] capital [Y]"))
        .unwrap()
        .build(&facts);
    let config = BatchConfig {
        batch_size: 16,
        shuffle_seed: Some(1),
        drop_last: false,
    };
    let plan = BatchPlan::for_queries(&set.queries, &config, 0).unwrap();
    let batches: Vec<_> = (0..plan.len())
        .map(|i| plan.batch(i, &set.queries, spec.pad_id).unwrap())
        .collect();
    assert_eq!(
        batches.iter().map(|b| b.batch_size).sum::<usize>(),
        set.queries.len()
    );
    for b in &batches {
        for (row, &target) in b.target_positions.iter().enumerate() {
            let mask = &b.attention_mask[row * b.seq_len..(row + 1) * b.seq_len];
            let len = mask.iter().filter(|&&m| m == 1).count();
            assert_eq!(target, len - 1, "causal target is the last real token");
            assert!(
                mask[..len].iter().all(|&m| m == 1),
                "padding is on the right"
            );
        }
        for (i, _) in b.prompt_slots() {
            assert_eq!(b.input_ids[i], spec.placeholder_id);
        }
        let q = &set.queries[plan.batches()[0][0]];
        assert_eq!(q.prompt_positions.len(), 4);
    }
}

#[test]
fn bundled_objects_survive_the_tiny_tokenizer() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let data = LamaDataset::open(bundled_dir()).unwrap();
    let mut survivors = Vec::new();
    for relation in data.relations() {
        let t = template(&relation.template);
        let builder = QueryBuilder::new(&tok, &spec, &t).unwrap();
        let mut report = ptune_data::DropReport::default();
        for split in Split::ALL {
            report.merge(
                &builder
                    .build(&data.facts(&relation.id, split).unwrap())
                    .report,
            );
        }
        survivors.push((relation.id.clone(), report.kept, report.total));
    }
    // P36 loses Brasília and Montevideo (held out of the tokenizer's training text) and
    // N'Djamena and Port-au-Prince (punctuation splits them); every other object is one token.
    let expected = [
        ("P36", 136, 140),
        ("P30", 148, 148),
        ("P37", 116, 116),
        ("P38", 175, 175),
        ("P17", 195, 195),
        ("P103", 196, 196),
    ];
    let expected: Vec<(String, usize, usize)> = expected
        .iter()
        .map(|&(r, k, n)| (r.to_string(), k, n))
        .collect();
    assert_eq!(survivors, expected);
}

/// A cap applies to usable facts: dropped ones do not use it up, and the rest is counted.
#[test]
fn a_cap_counts_usable_facts_after_filtering() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let t = template("The capital of [X] is [Y] .");
    let builder = QueryBuilder::new(&tok, &spec, &t).unwrap();
    let facts = [Fact::new("  ", "Paris"), france(), france(), france()];
    let mut set = builder.build(&facts);
    set.cap(2);
    assert_eq!(set.queries.len(), 2);
    assert_eq!(
        set.queries[0].fact_index, 1,
        "the empty subject is skipped, not capped"
    );
    assert_eq!(set.report.kept, 2);
    assert_eq!(set.report.count(DropReason::EmptySubject), 1);
    assert_eq!(set.report.count(DropReason::OverCap), 1);
    assert_eq!(
        set.report.kept + set.report.dropped_total(),
        set.report.total
    );
    set.cap(5);
    assert_eq!(
        set.report.count(DropReason::OverCap),
        1,
        "a loose cap drops nothing"
    );
}

/// The manual template's words become prompt slots, one per token, and a query of the new
/// template with those tokens in its slots is the manual query: for a causal LM (text after
/// `[Y]` dropped) and a masked LM (kept).
#[test]
fn words_as_prompts_rebuild_the_manual_query() {
    let cases = [
        (tiny_bpe(), true, "[P:3] [X] [P] [Y]"),
        (wordpiece(), false, "[P:3] [X] [P] [Y] [P]"),
    ];
    for (tok, causal, want) in cases {
        let spec = match causal {
            true => specs::gpt2(&tok),
            false => specs::bert(&tok),
        };
        let manual_template = template("The capital of [X] is [Y] .");
        let manual = QueryBuilder::new(&tok, &spec, &manual_template).unwrap();
        let (derived, ids) = manual.words_as_prompts(&manual_template).unwrap();
        assert_eq!(derived.to_string(), want);
        assert_eq!(ids.len(), derived.n_prompts());
        let q = QueryBuilder::new(&tok, &spec, &derived)
            .unwrap()
            .build_one(&france())
            .unwrap();
        let mut filled = q.input_ids.clone();
        for (&pos, &id) in q.prompt_positions.iter().zip(&ids) {
            filled[pos] = id;
        }
        let m = manual.build_one(&france()).unwrap();
        assert_eq!(filled, m.input_ids, "{want}");
        assert_eq!(
            (q.target_position, q.object_id),
            (m.target_position, m.object_id)
        );
    }
    let bare = template("[X] [Y]");
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let builder = QueryBuilder::new(&tok, &spec, &bare).unwrap();
    assert!(
        builder.words_as_prompts(&bare).is_err(),
        "no words, no prompts"
    );
}
