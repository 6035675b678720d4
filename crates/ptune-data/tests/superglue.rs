//! SuperGLUE's nested records as examples: dotted paths (WSC), lists of examples inside a
//! record (MultiRC's questions and answers, ReCoRD's queries), candidates cut from a text by
//! character spans (ReCoRD's entities), a field split at a marker, text replacements; bad shapes
//! named with their line; and every built-in task reading FewGLUE's own files (CI-only).

use ptune_data::Split;
use ptune_data::task::{Example, TaskDef};
use std::path::{Path, PathBuf};

fn builtin(name: &str, dir: &Path) -> TaskDef {
    TaskDef::find(name, Some(dir)).unwrap()
}

/// `lines` written to `dir/<Task>/train.jsonl`, read with the built-in task `name`.
fn read(name: &str, folder: &str, lines: &[&str]) -> Result<Vec<Example>, String> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join(folder)).unwrap();
    let path = tmp.path().join(folder).join("train.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    builtin(name, tmp.path())
        .read_examples(&path)
        .map_err(|e| e.to_string())
}

#[test]
fn wsc_reads_its_spans_through_dotted_paths() {
    let line = r#"{"text": "Billy cried because Toby wouldn't share his toy.", "target": {"span2_index": 6, "span1_index": 3, "span1_text": "Toby", "span2_text": "his"}, "idx": 9, "label": true}"#;
    let ex = read("wsc", "WSC", &[line]).unwrap();
    assert_eq!(ex[0].fields["pronoun"], "his");
    assert_eq!(ex[0].fields["target"], "Toby");
    assert_eq!(ex[0].gold, Some(1), "true is the second label");
}

/// Two records: the first has two questions (3 and 2 answers), the second one question with
/// one answer: six examples in three groups, each with its passage, question and answer.
#[test]
fn multirc_makes_one_example_per_answer_grouped_by_question() {
    let first = r#"{"idx": 0, "passage": {"text": "Sam ate a pear.", "questions": [{"question": "What did Sam eat?", "idx": 0, "answers": [{"text": "A pear", "idx": 0, "label": 1}, {"text": "A plum", "idx": 1, "label": 0}, {"text": "Fruit", "idx": 2, "label": 1}]}, {"question": "Who ate?", "idx": 1, "answers": [{"text": "Sam", "idx": 3, "label": 1}, {"text": "Ann", "idx": 4, "label": 0}]}]}}"#;
    let second = r#"{"idx": 1, "passage": {"text": "It rained.", "questions": [{"question": "What happened?", "idx": 2, "answers": [{"text": "Rain", "idx": 5, "label": 1}]}]}}"#;
    let ex = read("multirc", "MultiRC", &[first, second]).unwrap();
    let groups: Vec<Option<usize>> = ex.iter().map(|e| e.group).collect();
    assert_eq!(groups, [0, 0, 0, 1, 1, 2].map(Some));
    let golds: Vec<Option<usize>> = ex.iter().map(|e| e.gold).collect();
    assert_eq!(golds, [1, 0, 1, 1, 0, 1].map(Some));
    assert_eq!(ex[4].fields["paragraph"], "Sam ate a pear.");
    assert_eq!(ex[4].fields["question"], "Who ate?");
    assert_eq!(ex[4].fields["answer"], "Ann");
    assert_eq!(ex[5].fields["paragraph"], "It rained.");
    assert_eq!((ex[3].line, ex[5].line), (1, 2));
}

/// Entities are character spans (end inclusive) of the raw passage; a repeated entity is one
/// candidate; the query is cut at @placeholder; @highlight lines become dashes; every answer
/// text is kept for ReCoRD's F1 and EM, the first that is a candidate being the gold one.
#[test]
fn record_cuts_candidates_from_the_passage_and_splits_the_query() {
    let text = "Paris wins.\n@highlight\nParis beat Lyon";
    let line = serde_json::json!({
        "passage": {"text": text, "entities": [
            {"start": 0, "end": 4}, {"start": 23, "end": 27}, {"start": 34, "end": 37}]},
        "qas": [{"query": "@placeholder lost to Paris .", "answers": [{"start": 34, "end": 37, "text": "Lyon"}], "idx": 0}],
        "idx": 0
    })
    .to_string();
    let ex = read("record", "ReCoRD", &[&line]).unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].choices, ["Paris", "Lyon"]);
    assert_eq!(ex[0].gold, Some(1));
    assert_eq!(ex[0].answers, ["Lyon"]);
    assert_eq!(ex[0].fields["query"], "");
    assert_eq!(ex[0].fields["query_after"], " lost to Paris .");
    assert_eq!(ex[0].fields["passage"], "Paris wins.\n- Paris beat Lyon");
}

#[test]
fn bad_nested_records_name_their_line_and_problem() {
    let no_list = r#"{"idx": 0, "passage": {"text": "t"}}"#;
    let err = read("multirc", "MultiRC", &[no_list]).unwrap_err();
    assert!(
        err.contains("line 1") && err.contains("no list at \"passage.questions\""),
        "{err}"
    );
    let outside = serde_json::json!({
        "passage": {"text": "Paris", "entities": [{"start": 0, "end": 9}]},
        "qas": [{"query": "@placeholder .", "answers": [{"text": "Paris"}]}]
    })
    .to_string();
    let err = read("record", "ReCoRD", &["", &outside]).unwrap_err();
    assert!(
        err.contains("line 2") && err.contains("outside the text's 5 characters"),
        "{err}"
    );
    let no_marker = serde_json::json!({
        "passage": {"text": "Paris", "entities": [{"start": 0, "end": 4}]},
        "qas": [{"query": "who won ?", "answers": [{"text": "Paris"}]}]
    })
    .to_string();
    let err = read("record", "ReCoRD", &[&no_marker]).unwrap_err();
    assert!(err.contains("no \"@placeholder\" to split at"), "{err}");
    let not_a_candidate = serde_json::json!({
        "passage": {"text": "Paris", "entities": [{"start": 0, "end": 4}]},
        "qas": [{"query": "@placeholder won", "answers": [{"text": "Lyon"}]}]
    })
    .to_string();
    let err = read("record", "ReCoRD", &[&not_a_candidate]).unwrap_err();
    assert!(err.contains("none of the answers"), "{err}");
}

/// FewGLUE_32dev (`../shared/data/fewglue`, or PTUNE_FEWGLUE_DIR): every built-in task reads
/// every split it has, with the counts its files hold.
#[test]
#[ignore = "needs ../shared/data/fewglue (CI)"]
fn every_builtin_task_reads_fewglue() {
    let dir = std::env::var_os("PTUNE_FEWGLUE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fewglue")
        });
    assert!(
        dir.join("RTE/train.jsonl").is_file(),
        "no FewGLUE at {}",
        dir.display()
    );
    let count = |task: &str, split| {
        let def = builtin(task, &dir);
        def.read_examples(def.data_file(split).unwrap()).unwrap()
    };
    for task in [
        "boolq", "cb", "copa", "rte", "wic", "wsc", "multirc", "record",
    ] {
        assert!(count(task, Split::Train).len() >= 32, "{task}");
    }
    // MultiRC: one example per answer, grouped by question (154 answers of 32 questions).
    let multirc = count("multirc", Split::Train);
    assert_eq!(multirc.len(), 154);
    assert_eq!(multirc.iter().filter_map(|e| e.group).max(), Some(31));
    assert_eq!(count("multirc", Split::Test).len(), 4848);
    // ReCoRD: one example per query, its gold among the passage's entities.
    let record = count("record", Split::Dev);
    assert_eq!(record.len(), 32);
    assert!(
        record
            .iter()
            .all(|e| e.gold.is_some() && e.choices.len() >= 2)
    );
    assert_eq!(count("wsc", Split::Test).len(), 104);
}
