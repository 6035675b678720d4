//! Task rows: how an example and its candidates become the rows and targets a model scores,
//! checked against LAMA queries where the two must agree.

mod common;

use common::{specs, tiny_bpe, tokens, wordpiece};
use ptune_data::task::{Example, RowBuilder, ScoredExample, TaskBatch};
use ptune_data::{Fact, QueryBuilder, Template};

fn example(subject: &str, gold: Option<usize>) -> Example {
    Example {
        fields: [("subject".to_string(), subject.to_string())].into(),
        choices: Vec::new(),
        gold,
        answers: Vec::new(),
        group: None,
        line: 1,
    }
}

fn task_template(s: &str) -> Template {
    Template::parse_task(s).unwrap()
}

#[test]
fn a_one_token_candidate_row_is_the_lama_query() {
    for (tok, spec) in [
        (wordpiece(), specs::bert(&wordpiece())),
        (tiny_bpe(), specs::gpt2(&tiny_bpe())),
    ] {
        let rows = RowBuilder::new(
            &tok,
            &spec,
            &task_template("[P:2] [subject] [P] is located in [Y] ."),
        )
        .unwrap();
        let lama = QueryBuilder::new(
            &tok,
            &spec,
            &Template::parse("[P:2] [X] [P] is located in [Y] .").unwrap(),
        )
        .unwrap();
        let query = lama.build_one(&Fact::new("France", "Paris")).unwrap();
        let paris = rows.answer_ids("Paris").unwrap();
        assert_eq!(paris, [query.object_id]);
        let scored = rows
            .build(&example("France", Some(0)), &[paris], 0)
            .unwrap();
        assert_eq!(scored.rows.len(), 1);
        assert_eq!(scored.rows[0].input_ids, query.input_ids);
        assert_eq!(scored.rows[0].prompt_positions, query.prompt_positions);
        let t = scored.candidates[0][0];
        assert_eq!(
            (t.row, t.position, t.token),
            (0, query.target_position, query.object_id)
        );
    }
}

#[test]
fn masked_lm_gets_one_mask_per_answer_token_and_equal_lengths_share_a_row() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let rows = RowBuilder::new(&tok, &spec, &task_template("[subject] is in [Y] .")).unwrap();
    let candidates: Vec<Vec<u32>> = ["Paris", "Montevideo", "Tokyo"]
        .iter()
        .map(|c| rows.answer_ids(c).unwrap())
        .collect();
    assert_eq!(tokens(&tok, &candidates[1]), ["Monte", "##video"]);
    let s = rows
        .build(&example("Uruguay", Some(1)), &candidates, 7)
        .unwrap();
    assert_eq!(s.rows.len(), 2, "one row with one mask, one with two");
    assert_eq!(
        tokens(&tok, &s.rows[1].input_ids),
        [
            "[CLS]", "Uruguay", "is", "in", "[MASK]", "[MASK]", ".", "[SEP]"
        ]
    );
    let two = &s.candidates[1];
    assert_eq!(
        two.iter().map(|t| (t.row, t.position)).collect::<Vec<_>>(),
        [(1, 4), (1, 5)]
    );
    assert_eq!(
        two.iter().map(|t| t.token).collect::<Vec<_>>(),
        candidates[1]
    );
    assert_eq!((s.candidates[0][0].row, s.candidates[2][0].row), (0, 0));
    assert_eq!((s.gold, s.index), (Some(1), 7));
}

#[test]
fn causal_lm_appends_all_but_the_last_answer_token_and_predicts_each_from_the_one_before() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let rows = RowBuilder::new(
        &tok,
        &spec,
        &task_template("[P] [subject] is located in [Y] ."),
    )
    .unwrap();
    let multi = rows.answer_ids("Monte Carlo Paris").unwrap();
    assert!(multi.len() >= 3, "{:?}", tokens(&tok, &multi));
    let paris = rows.answer_ids("Paris").unwrap();
    let s = rows
        .build(&example("France", None), &[paris.clone(), multi.clone()], 0)
        .unwrap();
    let context = &s.rows[0].input_ids;
    let k = multi.len();
    let long = &s.rows[1].input_ids;
    assert_eq!(&long[..context.len()], &context[..]);
    assert_eq!(&long[context.len()..], &multi[..k - 1]);
    let positions: Vec<usize> = s.candidates[1].iter().map(|t| t.position).collect();
    assert_eq!(
        positions,
        (context.len() - 1..context.len() - 1 + k).collect::<Vec<_>>()
    );
    assert_eq!(s.candidates[0][0].position, context.len() - 1);
}

#[test]
fn verbalizers_that_tokenize_the_same_or_to_nothing_are_refused() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let rows = RowBuilder::new(&tok, &spec, &task_template("[subject] is in [Y] .")).unwrap();
    let pairs = |a: &str, b: &str| {
        vec![
            ("yes".to_string(), a.to_string()),
            ("no".to_string(), b.to_string()),
        ]
    };
    let err = rows
        .verbalizer_ids(&pairs("Paris", " Paris "))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"yes\" and \"no\"") && err.contains("tokenize the same"),
        "{err}"
    );
    let ok = rows.verbalizer_ids(&pairs("Paris", "Tokyo")).unwrap();
    assert_eq!(ok.len(), 2);
}

#[test]
fn a_task_template_cannot_use_x_and_causal_rows_need_a_context() {
    let err = Template::parse_task("[X] is [Y]").unwrap_err().to_string();
    assert!(err.contains("names its fields"), "{err}");
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let rows = RowBuilder::new(&tok, &spec, &task_template("[subject] [Y]")).unwrap();
    let paris = rows.answer_ids("Paris").unwrap();
    let reason = rows.build(&example("", None), &[paris], 0).unwrap_err();
    assert_eq!(reason, ptune_data::DropReason::EmptyContext);
}

fn scored(
    tok: &tokenizers::Tokenizer,
    spec: &ptune_data::TokenizerSpec,
    subject: &str,
    answers: &[&str],
    i: usize,
) -> ScoredExample {
    let rows = RowBuilder::new(tok, spec, &task_template("[P] [subject] is in [Y] .")).unwrap();
    let ids: Vec<Vec<u32>> = answers
        .iter()
        .map(|a| rows.answer_ids(a).unwrap())
        .collect();
    rows.build(&example(subject, Some(0)), &ids, i).unwrap()
}

#[test]
fn a_task_batch_maps_every_candidate_token_to_its_output() {
    let tok = wordpiece();
    let spec = specs::bert(&tok);
    let a = scored(&tok, &spec, "France", &["Paris", "Tokyo"], 0);
    let b = scored(&tok, &spec, "Uruguay", &["Montevideo", "Paris", "Rome"], 1);
    let batch = TaskBatch::collate(&[&a, &b], spec.pad_id).unwrap();
    assert_eq!((batch.n_examples, batch.width), (2, 3));
    assert_eq!(batch.slot_tokens, [1, 1, 0, 2, 1, 1]);
    assert_eq!(
        batch.rows.batch_size, 3,
        "a: one row; b: a two-mask and a one-mask row"
    );
    assert!(!batch.one_target_per_row());
    for (k, &target) in batch.token_target.iter().enumerate() {
        let (row, pos) = batch.targets[target];
        assert_eq!(batch.rows.row(row)[pos], spec.mask_id.unwrap(), "token {k}");
    }
    let only_a = TaskBatch::collate(&[&a, &a], spec.pad_id).unwrap();
    assert!(only_a.one_target_per_row());
    assert_eq!(
        only_a.targets,
        [(0, 5), (1, 5)],
        "[CLS] [P] France is in [MASK]"
    );
    assert_eq!(only_a.rows.target_positions, [5, 5]);
}

/// `--init manual` on a task: the manual pattern's words become prompt slots whose ids are the
/// words' tokens, so the new rows are the manual rows with prompt positions where the words
/// were; and the trained template, written into the pack's task.json, reads back as itself
/// (prompts glued to fields, as `'*[pronoun]*'` makes them).
#[test]
fn manual_words_as_prompts_rebuild_the_manual_rows_and_read_back() {
    let pattern = task_template("[subject] The word '*[subject]*' is near [Y] .");
    for (tok, spec) in [
        (wordpiece(), specs::bert(&wordpiece())),
        (tiny_bpe(), specs::gpt2(&tiny_bpe())),
    ] {
        let manual = RowBuilder::new(&tok, &spec, &pattern).unwrap();
        let (trained, ids) = manual.words_as_prompts(&pattern).unwrap();
        assert_eq!(trained.n_prompts(), ids.len());
        let reread = task_template(&trained.to_string());
        assert_eq!(reread.to_string(), trained.to_string());
        assert_eq!(reread.pieces(), trained.pieces());
        let rows = RowBuilder::new(&tok, &spec, &reread).unwrap();
        let answer = vec![manual.answer_ids("paris").unwrap()];
        let ex = example("town", Some(0));
        let plain = manual.build(&ex, &answer, 0).unwrap();
        let prompted = rows.build(&ex, &answer, 0).unwrap();
        let row = &prompted.rows[0];
        let mut filled = row.input_ids.clone();
        for (&p, &id) in row.prompt_positions.iter().zip(&ids) {
            filled[p] = id;
        }
        assert_eq!(filled, plain.rows[0].input_ids);
        assert_eq!(prompted.candidates, plain.candidates);
    }
}

/// A row longer than the model's positions loses tokens from the end of its longest field
/// until it fits (PET's truncation); the other field, the template's words and the answer stay
/// whole. Only when one token per field still does not fit is the example dropped.
#[test]
fn long_fields_are_cut_to_fit_the_model() {
    let (tok, spec) = (tiny_bpe(), specs::gpt2(&tiny_bpe()));
    let template = task_template("[premise] Question: [hypothesis] ? [P] [Y]");
    let mut ex = example("", Some(0));
    ex.fields = [
        ("premise".to_string(), "the dog sat on the mat ".repeat(8)),
        ("hypothesis".to_string(), "a dog sat".to_string()),
    ]
    .into();
    let full = RowBuilder::new(&tok, &spec, &template).unwrap();
    let answer = vec![full.answer_ids("dog").unwrap()];
    let whole = full.build(&ex, &answer, 0).unwrap().rows[0]
        .input_ids
        .clone();
    let max = whole.len() - 10;
    let cut = RowBuilder::new(&tok, &spec, &template)
        .unwrap()
        .max_len(max);
    let row = cut.build(&ex, &answer, 0).unwrap().rows[0]
        .input_ids
        .clone();
    assert_eq!(row.len(), max);
    // What follows the premise (words, hypothesis, prompt) is the row of an empty premise.
    let mut bare = ex.clone();
    bare.fields.insert("premise".into(), String::new());
    let tail = full.build(&bare, &answer, 0).unwrap().rows[0]
        .input_ids
        .clone();
    assert!(row.ends_with(&tail) && whole.ends_with(&tail));
    let kept = row.len() - tail.len();
    assert_eq!(row[..kept], whole[..kept], "the premise keeps its start");
    let tiny = RowBuilder::new(&tok, &spec, &template).unwrap().max_len(6);
    assert_eq!(
        tiny.build(&ex, &answer, 0).unwrap_err(),
        ptune_data::DropReason::TooLong
    );
}

/// Keeping some candidates keeps the rows they read (and no other), their targets, and the right
/// answer's place; a sample for training always holds the right answer.
#[test]
fn candidates_kept_or_sampled_keep_their_rows_and_the_right_answer() {
    let tok = tiny_bpe();
    let spec = specs::gpt2(&tok);
    let rows = RowBuilder::new(&tok, &spec, &task_template("[P] [subject] is in [Y] .")).unwrap();
    let answers = ["Paris", "Monte Carlo", "Tokyo", "Monte Carlo Paris", "Rome"];
    let ids: Vec<Vec<u32>> = answers
        .iter()
        .map(|a| rows.answer_ids(a).unwrap())
        .collect();
    let s = rows.build(&example("France", Some(3)), &ids, 4).unwrap();
    assert_eq!(s.rows.len(), 3, "the one-token answers share a row");
    let kept = s.with_candidates(&[1, 3]);
    assert_eq!(kept.rows, vec![s.rows[1].clone(), s.rows[2].clone()]);
    assert_eq!((kept.gold, kept.index), (Some(1), 4));
    for (k, &c) in [1, 3].iter().enumerate() {
        let (got, want) = (&kept.candidates[k], &s.candidates[c]);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.position, g.token), (w.position, w.token));
            assert_eq!(kept.rows[g.row], s.rows[w.row]);
        }
    }
    assert_eq!(s.with_candidates(&[0, 2]).gold, None);
    for seed in 0..20 {
        let sample = s.sampled(2, seed);
        assert_eq!(sample.candidates.len(), 2);
        let gold = sample.gold.expect("the right answer is always kept");
        let tokens = |c: &[ptune_data::task::Target]| c.iter().map(|t| t.token).collect::<Vec<_>>();
        assert_eq!(tokens(&sample.candidates[gold]), tokens(&s.candidates[3]));
    }
    assert_eq!(
        s.sampled(5, 1),
        s,
        "no more candidates than asked: all kept"
    );
    let draws: std::collections::BTreeSet<Vec<u32>> = (0..20)
        .map(|seed| {
            s.sampled(2, seed)
                .candidates
                .concat()
                .iter()
                .map(|t| t.token)
                .collect()
        })
        .collect();
    assert!(draws.len() > 1, "the other candidate varies with the seed");
}
