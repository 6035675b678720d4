//! The task file: fields, template, answer kind and data files, as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::template::is_field_name;
use crate::text::{quote, short_message};
use crate::{Error, Result, Split, Template, check_relation_id};

/// A task: what a user writes in a task file (JSON), checked on load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    /// Names the task's output folder and pack, like a LAMA relation id.
    pub name: String,
    /// The input fields every example has.
    pub fields: Vec<String>,
    /// Where fields, prompts, words and the answer `[Y]` go, e.g.
    /// `"[P:3] [premise] Question: [hypothesis]? [P:3] Answer: [Y]."`.
    pub template: String,
    pub answer: Answer,
    /// Data files, relative to the task file.
    #[serde(default)]
    pub data: DataFiles,
    /// How a multi-token answer's token log-probabilities make its score.
    #[serde(default)]
    pub score: ScoreNorm,
    /// Per field, raw values replaced by the words the template shows (COPA's `question`:
    /// `cause` → `because`, `effect` → `so`); a value the map lacks is an error.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Per field, where its text is when not under its own name at the record's top level: a
    /// dotted path (WSC's `"span1": "target.span1_text"`, MultiRC's `"paragraph": "passage.text"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paths: BTreeMap<String, String>,
    /// Nested lists whose items are the examples, outermost first (MultiRC's
    /// `["passage.questions", "answers"]`): an item's keys join its parents'. The examples of
    /// one item of the first list form a group (a MultiRC question, for its exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub each: Vec<String>,
    /// Per field, a marker its text is cut at: the field shows the text before it, and the
    /// field `<name>_after` the text after it (ReCoRD's query at `@placeholder`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub split_at: BTreeMap<String, String>,
    /// Per field, `[from, to]` text replacements (ReCoRD's `["@highlight\n", "- "]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replace: BTreeMap<String, Vec<(String, String)>>,
}

/// What the model chooses among.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Answer {
    /// A fixed label set; each label is answered by its verbalizer's words (RTE: entailment →
    /// "Yes"). Labels are kept in the file's order, which is their index.
    Label {
        /// The field holding each example's label (string, number or boolean).
        #[serde(default = "label_field")]
        field: String,
        /// `[label, verbalizer]` pairs, e.g. `[["entailment", "Yes"], ["not_entailment", "No"]]`.
        verbalizers: Vec<(String, String)>,
    },
    /// Candidates that come with each example (COPA's two alternatives, ReCoRD's entities).
    Choices {
        /// Where the candidates are.
        from: ChoiceSource,
        /// The field naming the right candidate: its index (0-based) or its text.
        #[serde(default = "label_field")]
        gold: String,
    },
}

fn label_field() -> String {
    "label".to_string()
}

/// Where an example's candidates come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChoiceSource {
    /// One field per candidate, e.g. `["choice1", "choice2"]`.
    Fields(Vec<String>),
    /// One field holding a list of candidate strings.
    List(String),
    /// Spans of a text: `spans` is a list of `{"start", "end"}` character offsets (end
    /// inclusive) into the text at `text`, ReCoRD's entities. Repeated texts count once.
    Spans { spans: String, text: String },
}

/// The task's data files by split (paths relative to the task file until loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFiles {
    pub train: Option<PathBuf>,
    pub dev: Option<PathBuf>,
    pub test: Option<PathBuf>,
}

/// How an answer of several tokens is scored from its tokens' log-probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreNorm {
    /// Their sum: the answer's log-probability (tokens at separate masks taken as independent).
    #[default]
    Sum,
    /// Their mean: does not favour short answers when candidates differ in length.
    Mean,
}

/// The tasks ptune knows by name: SuperGLUE's with the P-tuning authors' few-shot patterns
/// (one prompt vector where their pattern has its trainable token) and verbalizers, reading
/// FewGLUE_32dev's layout (`RTE/train.jsonl`, `RTE/dev32.jsonl`, `RTE/val.jsonl`).
pub const BUILTIN_TASKS: [(&str, &str); 8] = [
    ("boolq", include_str!("builtin/boolq.json")),
    ("cb", include_str!("builtin/cb.json")),
    ("copa", include_str!("builtin/copa.json")),
    ("multirc", include_str!("builtin/multirc.json")),
    ("record", include_str!("builtin/record.json")),
    ("rte", include_str!("builtin/rte.json")),
    ("wic", include_str!("builtin/wic.json")),
    ("wsc", include_str!("builtin/wsc.json")),
];

impl TaskDef {
    /// Reads and checks a task file; data paths become relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        Self::read(path, None)
    }

    /// A task file's path, or a built-in task's name; data paths are relative to `data_dir`
    /// when given, else to the task file's folder (a built-in task needs `data_dir`).
    pub fn find(file_or_name: &str, data_dir: Option<&Path>) -> Result<Self> {
        let path = Path::new(file_or_name);
        if path.is_file() {
            return Self::read(path, data_dir);
        }
        match BUILTIN_TASKS.iter().find(|(n, _)| *n == file_or_name) {
            Some((name, json)) => match data_dir {
                Some(dir) => Self::from_json(json, Path::new(name), dir),
                None => Err(Error::TaskNeedsData {
                    name: name.to_string(),
                }),
            },
            None => Err(Error::UnknownTask {
                task: file_or_name.to_string(),
                builtins: BUILTIN_TASKS.map(|(n, _)| n).join(", "),
            }),
        }
    }

    fn read(path: &Path, data_dir: Option<&Path>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::Io {
            path: path.to_path_buf(),
            err,
        })?;
        let base = data_dir.unwrap_or(path.parent().unwrap_or(Path::new("")));
        Self::from_json(&text, path, base)
    }

    /// Parses and checks a task definition; `origin` names it in messages, `base` is the folder
    /// its data paths are relative to.
    fn from_json(text: &str, origin: &Path, base: &Path) -> Result<Self> {
        let bad = |msg: String| Error::BadTaskFile {
            path: origin.to_path_buf(),
            msg,
        };
        let mut def: TaskDef = serde_json::from_str(text)
            .map_err(|e| bad(short_message(&e.to_string()).into_owned()))?;
        def.data.resolve(base);
        def.check().map_err(bad)?;
        Ok(def)
    }

    /// The template, parsed (checked on load, so this only fails for a def built in code).
    pub fn parsed_template(&self) -> Result<Template> {
        Template::parse_task(&self.template)
    }

    /// The labels in order (empty for a choices task).
    pub fn labels(&self) -> Vec<&str> {
        match &self.answer {
            Answer::Label { verbalizers, .. } => {
                verbalizers.iter().map(|(l, _)| l.as_str()).collect()
            }
            Answer::Choices { .. } => Vec::new(),
        }
    }

    /// A split's data file, or why there is none.
    pub fn data_file(&self, split: Split) -> Result<&Path> {
        let file = match split {
            Split::Train => &self.data.train,
            Split::Dev => &self.data.dev,
            Split::Test => &self.data.test,
        };
        file.as_deref().ok_or_else(|| Error::TaskNoData {
            task: self.name.clone(),
            split: split.to_string(),
        })
    }

    /// Everything that can be checked without a tokenizer, as one sentence.
    pub fn check(&self) -> Result<(), String> {
        check_relation_id(&self.name).map_err(|e| format!("task name: {e}"))?;
        self.check_fields()?;
        let template = self.parsed_template().map_err(|e| e.to_string())?;
        if let Some(unknown) = template.fields().find(|f| !self.has_field(f)) {
            return Err(format!(
                "the template names the field [{unknown}], which is not in \"fields\" ({})",
                self.fields.join(", ")
            ));
        }
        let keyed = [
            ("values", self.values.keys().collect::<Vec<_>>()),
            ("paths", self.paths.keys().collect()),
            ("split_at", self.split_at.keys().collect()),
            ("replace", self.replace.keys().collect()),
        ];
        for (key, names) in keyed {
            if let Some(unknown) = names.into_iter().find(|f| !self.has_field(f)) {
                return Err(format!(
                    "\"{key}\" names the field {}, which is not in \"fields\"",
                    quote(unknown)
                ));
            }
        }
        self.check_answer()
    }

    fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f == name)
    }

    fn check_fields(&self) -> Result<(), String> {
        if self.fields.is_empty() {
            return Err("\"fields\" is empty; name the input fields the template uses".into());
        }
        let mut seen = BTreeSet::new();
        for f in &self.fields {
            if !is_field_name(f) {
                return Err(format!(
                    "field name {} must be lowercase letters, digits and _, starting with a letter",
                    quote(f)
                ));
            }
            if !seen.insert(f) {
                return Err(format!("field {} is listed twice", quote(f)));
            }
        }
        Ok(())
    }

    fn check_answer(&self) -> Result<(), String> {
        match &self.answer {
            Answer::Label { verbalizers, .. } => check_verbalizers(verbalizers),
            Answer::Choices {
                from: ChoiceSource::Fields(fields),
                ..
            } if fields.len() < 2 => Err("a choices task needs at least two choice fields".into()),
            Answer::Choices { .. } => Ok(()),
        }
    }
}

fn check_verbalizers(verbalizers: &[(String, String)]) -> Result<(), String> {
    if verbalizers.len() < 2 {
        return Err("a label task needs at least two labels in \"verbalizers\"".into());
    }
    let mut seen = BTreeSet::new();
    for (label, words) in verbalizers {
        if !seen.insert(label) {
            return Err(format!("label {} has two verbalizers", quote(label)));
        }
        if words.trim().is_empty() {
            return Err(format!("label {} has an empty verbalizer", quote(label)));
        }
    }
    Ok(())
}

impl DataFiles {
    fn resolve(&mut self, dir: &Path) {
        for file in [&mut self.train, &mut self.dev, &mut self.test]
            .into_iter()
            .flatten()
        {
            *file = dir.join(&*file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(json: serde_json::Value) -> Result<TaskDef, String> {
        let def: TaskDef = serde_json::from_value(json).map_err(|e| e.to_string())?;
        def.check().map(|_| def)
    }

    fn rte() -> serde_json::Value {
        serde_json::json!({
            "name": "rte",
            "fields": ["premise", "hypothesis"],
            "template": "[premise] Question: [hypothesis]? [P:2] Answer: [Y].",
            "answer": {"kind": "label", "verbalizers": [["entailment", "Yes"], ["not_entailment", "No"]]}
        })
    }

    #[test]
    fn a_label_task_keeps_its_labels_in_file_order() {
        let def = def(rte()).unwrap();
        assert_eq!(def.labels(), ["entailment", "not_entailment"]);
        assert_eq!(def.score, ScoreNorm::Sum);
    }

    #[test]
    fn a_template_naming_an_unknown_field_is_refused() {
        let mut json = rte();
        json["template"] = "[premise] [question] [P] [Y]".into();
        let err = def(json).unwrap_err();
        assert!(
            err.contains("[question]") && err.contains("premise, hypothesis"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_or_empty_verbalizers_are_refused() {
        let mut json = rte();
        json["answer"]["verbalizers"] = serde_json::json!([["a", "Yes"], ["a", "No"]]);
        assert!(def(json.clone()).unwrap_err().contains("two verbalizers"));
        json["answer"]["verbalizers"] = serde_json::json!([["a", "Yes"], ["b", " "]]);
        assert!(def(json).unwrap_err().contains("empty verbalizer"));
    }

    #[test]
    fn choices_come_from_fields_or_a_list() {
        let mut json = rte();
        json["answer"] = serde_json::json!({"kind": "choices", "from": ["c1", "c2"]});
        let d = def(json.clone()).unwrap();
        assert!(
            matches!(&d.answer, Answer::Choices { from: ChoiceSource::Fields(f), gold } if f.len() == 2 && gold == "label")
        );
        json["answer"] =
            serde_json::json!({"kind": "choices", "from": "options", "gold": "answer"});
        assert!(matches!(
            def(json).unwrap().answer,
            Answer::Choices {
                from: ChoiceSource::List(_),
                ..
            }
        ));
    }

    #[test]
    fn every_builtin_task_parses_and_reads_fewglue_names() {
        let dir = Path::new("/data/fewglue");
        for (name, _) in BUILTIN_TASKS {
            let def = TaskDef::find(name, Some(dir)).unwrap();
            assert_eq!(def.name, name);
            let test = def.data_file(Split::Test).unwrap();
            assert!(
                test.starts_with(dir) && test.ends_with("val.jsonl"),
                "{test:?}"
            );
        }
        let err = TaskDef::find("rte", None).unwrap_err().to_string();
        assert!(err.contains("--task-data"), "{err}");
        let err = TaskDef::find("no-such-task", None).unwrap_err().to_string();
        assert!(
            err.contains("boolq, cb, copa, multirc, record, rte, wic, wsc"),
            "{err}"
        );
    }

    #[test]
    fn bad_field_names_are_refused() {
        let mut json = rte();
        json["fields"] = serde_json::json!(["Premise", "hypothesis"]);
        assert!(def(json.clone()).unwrap_err().contains("lowercase"));
        json["fields"] = serde_json::json!(["premise", "premise"]);
        assert!(def(json).unwrap_err().contains("twice"));
    }
}
