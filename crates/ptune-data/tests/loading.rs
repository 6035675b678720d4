//! Reading fact sets: the LAMA fixture, bad input, and the bundled set.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::{bundled_dir, lama_fixture};
use ptune_data::{
    Error, Fact, LamaDataset, Objective, PromptMode, Split, Template, VocabStrategy, split_60_20_20,
};

/// A scratch copy of the fixture, to damage in one test.
fn scratch_copy(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&lama_fixture(), &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn fixture_relations_are_listed_in_file_order() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let ids: Vec<&str> = data.relations().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["P36", "P19", "P31"]);
    let p36 = data.relation("P36").unwrap();
    assert_eq!(p36.template, "The capital of [X] is [Y] .");
    assert_eq!(p36.label, "capital");
    assert_eq!(p36.kind.as_deref(), Some("1-1"));
}

#[test]
fn facts_keep_labels_uris_and_unicode_and_ignore_evidences() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let train = data.facts("P36", Split::Train).unwrap();
    assert_eq!(train.len(), 6);
    assert_eq!(train[0].subject, "France");
    assert_eq!(train[0].object, "Paris");
    assert_eq!(train[0].sub_uri.as_deref(), Some("Q142"));
    assert_eq!(train[0].obj_uri.as_deref(), Some("Q90"));
    let born = data.facts("P19", Split::Train).unwrap();
    assert_eq!(born[0].object, "São Paulo");
    assert_eq!(born[0].sub_uri, None, "an empty uri reads as none");
    assert_eq!(data.facts("P36", Split::Dev).unwrap().len(), 2);
    assert_eq!(data.facts("P36", Split::Test).unwrap().len(), 2);
}

#[test]
fn relations_with_a_split_skip_missing_files() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let ids = |split| -> Vec<String> {
        data.relations_with(split)
            .iter()
            .map(|r| r.id.clone())
            .collect()
    };
    assert_eq!(ids(Split::Train), ["P36", "P19"]);
    assert_eq!(ids(Split::Test), ["P36"]);
    assert!(!data.has_split("P19", Split::Test));
}

#[test]
fn a_missing_split_is_one_clear_error() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let e = data.facts("P19", Split::Test).unwrap_err();
    assert!(matches!(e, Error::MissingSplit { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with("relation P19 has no test split ("), "{msg}");
    assert!(msg.ends_with("P19/test.jsonl does not exist)"), "{msg}");
    let e = data.facts("P31", Split::Train).unwrap_err();
    assert!(matches!(e, Error::MissingSplit { .. }), "{e}");
}

#[test]
fn an_unlisted_relation_is_one_clear_error() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let e = data.facts("P999", Split::Train).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("relation P999 is not listed in "), "{msg}");
    assert!(msg.ends_with("relations.jsonl"), "{msg}");
}

#[test]
fn malformed_json_names_the_file_and_line() {
    let dir = scratch_copy("malformed");
    let path = dir.join("fact-retrieval/original/P36/dev.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}{{\"sub_label\": \"Chile\", \n")).unwrap();
    let data = LamaDataset::open(&dir).unwrap();
    let msg = data.facts("P36", Split::Dev).unwrap_err().to_string();
    assert!(msg.contains("P36/dev.jsonl, line 3: "), "{msg}");
}

#[test]
fn a_record_missing_a_field_names_the_field_and_line() {
    let dir = scratch_copy("missing-field");
    let path = dir.join("fact-retrieval/original/P36/test.jsonl");
    std::fs::write(&path, "\n{\"sub_label\": \"Chile\"}\n").unwrap();
    let data = LamaDataset::open(&dir).unwrap();
    let msg = data.facts("P36", Split::Test).unwrap_err().to_string();
    assert!(
        msg.contains("test.jsonl, line 2: missing field `obj_label`"),
        "{msg}"
    );
}

#[test]
fn a_record_of_another_relation_is_refused() {
    let dir = scratch_copy("wrong-predicate");
    let path = dir.join("fact-retrieval/original/P36/test.jsonl");
    let line = r#"{"sub_label": "Lyon", "obj_label": "France", "predicate_id": "P17"}"#;
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let data = LamaDataset::open(&dir).unwrap();
    let msg = data.facts("P36", Split::Test).unwrap_err().to_string();
    assert!(
        msg.contains("line 1: predicate_id is P17 but the file belongs to relation P36"),
        "{msg}"
    );
}

#[test]
fn a_folder_without_relations_jsonl_is_refused() {
    let e = LamaDataset::open(lama_fixture().join("fact-retrieval")).unwrap_err();
    assert!(matches!(e, Error::MissingRelationsFile { .. }));
    assert!(e.to_string().contains("relations.jsonl not found"), "{e}");
}

#[test]
fn a_relation_template_without_subject_is_refused() {
    let dir = scratch_copy("bad-template");
    let line = r#"{"relation": "P36", "template": "The capital is [Y] ."}"#;
    std::fs::write(dir.join("relations.jsonl"), format!("{line}\n")).unwrap();
    let data = LamaDataset::open(&dir).unwrap();
    let e = Template::parse(&data.relation("P36").unwrap().template).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"template "The capital is [Y] ." has no [X] (the subject slot)"#
    );
}

#[test]
fn a_relation_listed_twice_is_refused() {
    let dir = scratch_copy("duplicate-relation");
    let line = r#"{"relation": "P36", "template": "[X] [Y]"}"#;
    std::fs::write(dir.join("relations.jsonl"), format!("{line}\n{line}\n")).unwrap();
    let msg = LamaDataset::open(&dir).unwrap_err().to_string();
    assert!(
        msg.contains("line 2: relation P36 is listed twice"),
        "{msg}"
    );
}

#[test]
fn vocabulary_lists_are_read_by_strategy_and_key() {
    let data = LamaDataset::open(lama_fixture()).unwrap();
    assert!(
        data.vocab_list(VocabStrategy::Original, "gpt2-xl")
            .unwrap()
            .is_none()
    );
    let shared = data
        .vocab_list(VocabStrategy::Shared, "gpt2-xl")
        .unwrap()
        .unwrap();
    assert_eq!(shared.len(), 10);
    assert_eq!(shared.tokens()[0], "ĠParis");
    assert_eq!(shared.words().next(), Some("Paris"));
    let lama = data
        .vocab_list(VocabStrategy::Lama, "bert-base-cased")
        .unwrap()
        .unwrap();
    assert!(lama.tokens().iter().any(|t| t == "Rome"));
    let e = data.vocab_list(VocabStrategy::Shared, "t5").unwrap_err();
    assert!(
        e.to_string()
            .ends_with(r#"has no vocabulary list for "t5"; it has bert-base-cased, gpt2-xl"#),
        "{e}"
    );
}

#[test]
fn names_parse_with_clear_errors() {
    assert_eq!("dev".parse::<Split>().unwrap(), Split::Dev);
    let e = "valid".parse::<Split>().unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unknown split "valid"; use train, dev or test"#
    );
    assert_eq!(
        "lama".parse::<VocabStrategy>().unwrap(),
        VocabStrategy::Lama
    );
    assert!("29k".parse::<VocabStrategy>().is_err());
    assert_eq!(
        ptune_data::vocab_key_for_model("gpt2-medium"),
        Some("gpt2-xl")
    );
    assert_eq!(
        ptune_data::vocab_key_for_model("roberta-base"),
        Some("roberta-large")
    );
    assert_eq!(ptune_data::vocab_key_for_model("minilm"), None);
}

const BUNDLED: [&str; 6] = ["P36", "P30", "P37", "P38", "P17", "P103"];

fn bundled_facts(data: &LamaDataset, relation: &str) -> [Vec<Fact>; 3] {
    Split::ALL.map(|s| data.facts(relation, s).unwrap())
}

#[test]
fn bundled_set_has_six_relations_of_at_least_100_facts() {
    let data = LamaDataset::open(bundled_dir()).unwrap();
    let ids: Vec<&str> = data.relations().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, BUNDLED);
    for relation in data.relations() {
        let [train, dev, test] = bundled_facts(&data, &relation.id);
        let n = train.len() + dev.len() + test.len();
        assert!(n >= 100, "{} has only {n} facts", relation.id);
        // 60/20/20, rounded.
        assert!(train.len().abs_diff(n * 6 / 10) <= 1, "{}", relation.id);
        assert!(dev.len().abs_diff(n * 2 / 10) <= 1, "{}", relation.id);
        let t = Template::parse(&relation.template).unwrap();
        t.validate(Objective::Masked, PromptMode::Manual).unwrap();
        t.validate(Objective::Causal, PromptMode::Manual).unwrap();
    }
}

#[test]
fn bundled_subjects_are_unique_per_relation_so_splits_are_disjoint() {
    let data = LamaDataset::open(bundled_dir()).unwrap();
    for id in BUNDLED {
        let mut seen = HashSet::new();
        for fact in bundled_facts(&data, id).concat() {
            assert!(
                seen.insert(fact.subject.clone()),
                "{id}: {} twice",
                fact.subject
            );
        }
    }
}

#[test]
fn bundled_objects_never_differ_only_in_case() {
    let data = LamaDataset::open(bundled_dir()).unwrap();
    for id in BUNDLED {
        let mut spellings: HashMap<String, String> = HashMap::new();
        for fact in bundled_facts(&data, id).concat() {
            let key = fact.object.to_lowercase();
            let first = spellings.entry(key).or_insert_with(|| fact.object.clone());
            assert_eq!(*first, fact.object, "{id}: objects differ only in case");
            assert_eq!(fact.object.trim(), fact.object, "{id}: stray spaces");
            assert_eq!(fact.subject.trim(), fact.subject, "{id}: stray spaces");
        }
    }
}

/// The committed split files are exactly what `examples/split_bundled.rs` makes of the sources.
#[test]
fn bundled_splits_match_their_sources() {
    let data = LamaDataset::open(bundled_dir()).unwrap();
    for id in BUNDLED {
        let source = bundled_dir().join(format!("source/{id}.tsv"));
        let text = std::fs::read_to_string(source).unwrap();
        let facts: Vec<Fact> = text
            .lines()
            .map(|l| {
                let (s, o) = l.split_once('\t').unwrap();
                Fact::new(s, o)
            })
            .collect();
        assert_eq!(
            split_60_20_20(facts, 20210318),
            bundled_facts(&data, id),
            "{id}"
        );
    }
}

/// Writes `relations.jsonl` of a scratch copy to hold `line` alone, and opens it.
fn open_with_relation(name: &str, line: &str) -> Result<LamaDataset, Error> {
    let dir = scratch_copy(name);
    std::fs::write(dir.join("relations.jsonl"), format!("{line}\n")).unwrap();
    LamaDataset::open(&dir)
}

#[test]
fn relation_ids_that_are_not_plain_names_are_refused_on_open() {
    let long = "P".repeat(101);
    for (id, reason) in [
        (
            "/abs/path",
            r#"relation id "/abs/path" is not a plain name"#,
        ),
        ("../../x", "it contains /, \\ or :"),
        ("..", "it is . or .."),
        ("", "it is empty"),
        ("P\u{0}36", "it contains a control character"),
        (long.as_str(), "it is longer than 100 characters"),
    ] {
        let line = serde_json::json!({"relation": id, "template": "[X] is [Y] ."}).to_string();
        let msg = open_with_relation("bad-relation-id", &line)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("relations.jsonl, line 1: "), "{msg}");
        assert!(msg.contains(reason), "{reason:?} in {msg}");
    }
    assert_eq!(
        ptune_data::check_relation_id("../x")
            .unwrap_err()
            .to_string(),
        r#"relation id "../x" is not a plain name, which it must be as it names a folder: it contains /, \ or :"#
    );
}

#[test]
fn a_manual_template_with_prompt_slots_is_refused_naming_the_relation() {
    let line = r#"{"relation": "P36", "template": "[P:3] The capital of [X] is [Y] ."}"#;
    let msg = open_with_relation("manual-with-prompts", line)
        .unwrap_err()
        .to_string();
    assert!(
        msg.ends_with(
            r#"relations.jsonl, line 1: relation P36: template "[P:3] The capital of [X] is [Y] ." has prompt slots, but a manual template must not"#
        ),
        "{msg}"
    );
    let data = LamaDataset::open(lama_fixture()).unwrap();
    let t = data.relation("P36").unwrap().manual_template().unwrap();
    assert_eq!(t.to_string(), "The capital of [X] is [Y] .");
}

#[test]
fn a_manual_template_that_does_not_parse_is_refused_naming_the_relation() {
    let line = r#"{"relation": "P36", "template": "The capital is [Y] ."}"#;
    let data = open_with_relation("manual-unparsable", line).unwrap();
    let e = data.relation("P36").unwrap().manual_template().unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"relation P36: template "The capital is [Y] ." has no [X] (the subject slot)"#
    );
}

#[test]
fn a_byte_order_mark_at_the_start_of_a_file_is_accepted() {
    let dir = scratch_copy("bom");
    for file in [
        "relations.jsonl",
        "fact-retrieval/original/P36/train.jsonl",
        "29k-vocab.json",
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
    }
    let data = LamaDataset::open(&dir).unwrap();
    assert_eq!(data.relations()[0].id, "P36");
    assert_eq!(
        data.facts("P36", Split::Train).unwrap()[0].subject,
        "France"
    );
    let shared = data.vocab_list(VocabStrategy::Shared, "gpt2-xl").unwrap();
    assert_eq!(shared.unwrap().len(), 10);
}

#[test]
fn errors_quote_long_user_text_shortened() {
    let dir = scratch_copy("long-text");
    let huge = "x".repeat(120_000);
    let vocab = serde_json::json!({ "gpt2-xl": huge });
    std::fs::write(dir.join("29k-vocab.json"), vocab.to_string()).unwrap();
    let data = LamaDataset::open(&dir).unwrap();
    let msg = data
        .vocab_list(VocabStrategy::Shared, "gpt2-xl")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("invalid type: string \"xxxx"), "{msg}");
    assert!(
        msg.ends_with("expected a sequence at line 1 column 120013"),
        "{msg}"
    );
    assert!(msg.len() < 500, "{} bytes", msg.len());

    let path = dir.join("fact-retrieval/original/P36/test.jsonl");

    let line = serde_json::json!({"sub_label": "a", "obj_label": "b", "predicate_id": huge});
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let msg = data.facts("P36", Split::Test).unwrap_err().to_string();
    assert!(msg.contains("predicate_id is xxxx"), "{msg}");
    assert!(
        msg.contains("x… but the file belongs to relation P36"),
        "{msg}"
    );
    assert!(msg.len() < 500, "{} bytes", msg.len());

    let e = Template::parse(&format!("[P] {huge} [Y]"))
        .unwrap_err()
        .to_string();
    assert!(
        e.len() < 200 && e.ends_with("…\" has no [X] (the subject slot)"),
        "{e}"
    );
    let e = data.facts(&huge, Split::Test).unwrap_err().to_string();
    assert!(e.len() < 500, "{} bytes", e.len());
}

/// A relation as a task (`ptune train --multi-token`): its manual template with the subject as
/// the field, every split's objects once each as labels answered by their own words, and its
/// split files as the data.
#[test]
fn a_relation_becomes_the_task_that_ranks_its_objects() {
    use ptune_data::task::{Answer, SUBJECT_FIELD, TaskDef};
    let dataset = LamaDataset::open(bundled_dir()).unwrap();
    let relation = dataset.relation("P30").unwrap();
    let def = TaskDef::for_relation(&dataset, relation).unwrap();
    assert_eq!(def.name, "P30");
    assert_eq!(def.fields, [SUBJECT_FIELD]);
    assert_eq!(
        def.template,
        relation.template.replace("[X]", "[sub_label]")
    );
    let mut objects = Vec::new();
    for split in [Split::Train, Split::Dev, Split::Test] {
        for fact in dataset.facts("P30", split).unwrap() {
            if !objects.contains(&fact.object) {
                objects.push(fact.object);
            }
        }
    }
    let Answer::Label { field, verbalizers } = &def.answer else {
        panic!("a label task: {:?}", def.answer)
    };
    assert_eq!(field, "obj_label");
    assert_eq!(verbalizers.len(), objects.len());
    for ((label, words), object) in verbalizers.iter().zip(&objects) {
        assert_eq!((label, words), (object, object));
    }
    assert_eq!(
        def.data_file(Split::Dev).unwrap(),
        dataset.split_path("P30", Split::Dev)
    );
    let examples = def
        .read_examples(def.data_file(Split::Test).unwrap())
        .unwrap();
    let facts = dataset.facts("P30", Split::Test).unwrap();
    assert_eq!(examples.len(), facts.len());
    let labels = def.labels();
    for (e, f) in examples.iter().zip(&facts) {
        assert_eq!(e.fields[SUBJECT_FIELD], f.subject);
        assert_eq!(labels[e.gold.unwrap()], f.object);
    }
}
