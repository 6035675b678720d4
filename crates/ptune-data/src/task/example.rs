//! A task's examples, read from jsonl (one JSON object per line) or CSV (a header row naming
//! the columns).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Answer, ChoiceSource, TaskDef};
use crate::text::{quote, short, strip_bom};
use crate::{Error, Result};

/// One line of a data file: a JSON object, or a CSV row keyed by its header.
type Record = Map<String, Value>;

/// One example: its field texts, its candidates when they come with it, and the right answer's
/// index (among the labels, or among its choices) when the data has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub fields: BTreeMap<String, String>,
    /// A choices task's candidates (empty for a label task, whose candidates are its labels).
    pub choices: Vec<String>,
    pub gold: Option<usize>,
    /// Every right answer's text, when the data gives several (ReCoRD scores a prediction
    /// against the best-matching one); empty otherwise.
    pub answers: Vec<String>,
    /// The example's group among the file's examples (a MultiRC question; see `each`).
    pub group: Option<usize>,
    /// 1-based line of the file, for messages.
    pub line: usize,
}

impl TaskDef {
    /// Reads a data file: `.csv` as CSV, anything else as jsonl. An empty file, a line missing a
    /// field, a label not in the verbalizers or an example without candidates is an error that
    /// names the file and line.
    pub fn read_examples(&self, path: &Path) -> Result<Vec<Example>> {
        let records = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => read_csv(path)?,
            _ => read_jsonl(path)?,
        };
        if records.is_empty() {
            return Err(Error::EmptyData {
                path: path.to_path_buf(),
            });
        }
        let bad = |line, msg| Error::BadRecord {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut examples = Vec::new();
        let mut groups = 0;
        for (line, record) in records {
            let items = self.items(record).map_err(|m| bad(line, m))?;
            let first_group = groups;
            for (group, item) in items {
                let mut example = self.example(&item, line).map_err(|m| bad(line, m))?;
                if let Some(g) = group {
                    example.group = Some(first_group + g);
                    groups = groups.max(first_group + g + 1);
                }
                examples.push(example);
            }
        }
        Ok(examples)
    }

    /// A record's examples: itself, or the items of its `each` lists, each joined with its
    /// parents' keys and numbered by its item of the first list.
    fn items(&self, record: Record) -> Result<Vec<(Option<usize>, Record)>, String> {
        let mut rows = vec![(None, record)];
        for (level, path) in self.each.iter().enumerate() {
            let mut next = Vec::new();
            for (group, row) in rows {
                let Some(Value::Array(items)) = lookup(&row, path) else {
                    return Err(format!("no list at {path:?} (named in \"each\")"));
                };
                for (i, item) in items.iter().enumerate() {
                    let Value::Object(item) = item else {
                        return Err(format!(
                            "the list at {path:?} holds a value that is not an object"
                        ));
                    };
                    let mut joined = row.clone();
                    joined.extend(item.clone());
                    next.push((if level == 0 { Some(i) } else { group }, joined));
                }
            }
            rows = next;
        }
        Ok(rows)
    }

    /// One record as an example (also what `predict` makes of its input lines).
    pub fn example(&self, record: &Map<String, Value>, line: usize) -> Result<Example, String> {
        let fields = self
            .fields
            .iter()
            .map(|f| Ok((f.clone(), self.shown(f, self.field_text(record, f)?)?)))
            .collect::<Result<_, String>>()?;
        let (choices, gold, answers) = match &self.answer {
            Answer::Label { field, .. } => {
                (Vec::new(), self.label_gold(record, field)?, Vec::new())
            }
            Answer::Choices { from, gold } => {
                let choices = choices(record, from)?;
                let (gold, answers) = choice_gold(record, gold, &choices)?;
                (choices, gold, answers)
            }
        };
        Ok(Example {
            fields,
            choices,
            gold,
            answers,
            group: None,
            line,
        })
    }

    /// A field's raw text: at its path, cut at its `split_at` marker (`<name>_after` is the
    /// part after the marker of `<name>`).
    fn field_text(&self, record: &Map<String, Value>, field: &str) -> Result<String, String> {
        let after = field
            .strip_suffix("_after")
            .filter(|stem| self.split_at.contains_key(*stem) && !self.split_at.contains_key(field));
        let source = after.unwrap_or(field);
        let path = self.paths.get(source).map_or(source, String::as_str);
        let raw = text(record, path)?;
        let Some(marker) = self.split_at.get(source) else {
            return Ok(raw);
        };
        let (before, rest) = raw
            .split_once(marker.as_str())
            .ok_or_else(|| format!("field {source:?} has no {marker:?} to split at"))?;
        Ok(if after.is_some() { rest } else { before }.to_string())
    }

    /// A field's value as the template shows it (see `replace` and `values`).
    fn shown(&self, field: &str, mut value: String) -> Result<String, String> {
        for (from, to) in self.replace.get(field).into_iter().flatten() {
            value = value.replace(from.as_str(), to);
        }
        let Some(map) = self.values.get(field) else {
            return Ok(value);
        };
        map.get(&value).cloned().ok_or_else(|| {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            format!(
                "field {field:?} is {}, which \"values\" does not map ({})",
                quote(&value),
                known.join(", ")
            )
        })
    }

    fn label_gold(
        &self,
        record: &Map<String, Value>,
        field: &str,
    ) -> Result<Option<usize>, String> {
        let Some(value) = lookup(record, field).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let label = scalar(value).ok_or_else(|| {
            format!("the label field {field:?} is not a string, number or boolean")
        })?;
        let labels = self.labels();
        match labels.iter().position(|l| *l == label) {
            Some(i) => Ok(Some(i)),
            None => Err(format!(
                "label {} is not in the verbalizers ({})",
                quote(&label),
                labels.join(", ")
            )),
        }
    }
}

/// The value under `key`, or at its dotted path (`target.span1_text`) when no key is so named.
fn lookup<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(key) {
        return Some(v);
    }
    let (head, rest) = key.split_once('.')?;
    match record.get(head)? {
        Value::Object(inner) => lookup(inner, rest),
        _ => None,
    }
}

/// A field's text: strings as they are, numbers and booleans as JSON writes them.
fn text(record: &Map<String, Value>, field: &str) -> Result<String, String> {
    match lookup(record, field) {
        None | Some(Value::Null) => Err(format!("no field {field:?}")),
        Some(v) => {
            scalar(v).ok_or_else(|| format!("field {field:?} is not a string, number or boolean"))
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn choices(record: &Map<String, Value>, from: &ChoiceSource) -> Result<Vec<String>, String> {
    let choices: Vec<String> = match from {
        ChoiceSource::Fields(fields) => fields
            .iter()
            .map(|f| text(record, f))
            .collect::<Result<_, _>>()?,
        ChoiceSource::Spans { spans, text: at } => spans_of(record, spans, &text(record, at)?)?,
        ChoiceSource::List(field) => match lookup(record, field) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    scalar(v)
                        .ok_or_else(|| format!("field {field:?} holds a value that is not text"))
                })
                .collect::<Result<_, _>>()?,
            Some(Value::String(s)) => parse_list(s, field)?,
            _ => return Err(format!("no list of candidates in field {field:?}")),
        },
    };
    if choices.iter().all(|c| c.trim().is_empty()) {
        return Err("the example has no candidates".into());
    }
    Ok(choices)
}

/// The distinct texts of a list of `{"start", "end"}` character spans (end inclusive).
fn spans_of(record: &Map<String, Value>, path: &str, text: &str) -> Result<Vec<String>, String> {
    let Some(Value::Array(spans)) = lookup(record, path) else {
        return Err(format!("no list of spans at {path:?}"));
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for span in spans {
        let offset = |key| span.get(key).and_then(Value::as_u64).map(|v| v as usize);
        let (Some(start), Some(end)) = (offset("start"), offset("end")) else {
            return Err(format!(
                "a span at {path:?} lacks a numeric \"start\" or \"end\""
            ));
        };
        if start > end || end >= chars.len() {
            return Err(format!(
                "span {start}..={end} at {path:?} is outside the text's {} characters",
                chars.len()
            ));
        }
        let candidate: String = chars[start..=end].iter().collect();
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    Ok(out)
}

/// A CSV cell holding a JSON list of candidates.
fn parse_list(cell: &str, field: &str) -> Result<Vec<String>, String> {
    let items: Vec<Value> = serde_json::from_str(cell).map_err(|_| {
        format!(
            "field {field:?} should be a JSON list of candidates, not {}",
            quote(short(cell).as_ref())
        )
    })?;
    items
        .iter()
        .map(|v| scalar(v).ok_or_else(|| format!("field {field:?} holds a value that is not text")))
        .collect()
}

/// The right choice: an index, or the text of one of the choices; or several right texts
/// (a list of strings or of `{"text"}` objects: ReCoRD's answers), the first that is a
/// candidate being the one trained towards.
fn choice_gold(
    record: &Map<String, Value>,
    field: &str,
    choices: &[String],
) -> Result<(Option<usize>, Vec<String>), String> {
    if let Some(Value::Array(items)) = lookup(record, field) {
        let answers: Vec<String> = items
            .iter()
            .filter_map(|v| scalar(v.get("text").unwrap_or(v)))
            .collect();
        return match answers
            .iter()
            .find_map(|a| choices.iter().position(|c| c == a))
        {
            Some(i) => Ok((Some(i), answers)),
            None => Err(format!(
                "none of the answers in {field:?} is among the candidates"
            )),
        };
    }
    let index = match lookup(record, field) {
        None | Some(Value::Null) => return Ok((None, Vec::new())),
        Some(Value::Number(n)) => n.as_u64().map(|i| i as usize),
        Some(Value::String(s)) => s
            .trim()
            .parse::<usize>()
            .ok()
            .or_else(|| choices.iter().position(|c| c == s)),
        Some(_) => None,
    };
    match index {
        Some(i) if i < choices.len() => Ok((Some(i), Vec::new())),
        _ => Err(format!(
            "{field:?} must be the index (0 to {}) or the text of one of the {} candidates",
            choices.len().saturating_sub(1),
            choices.len()
        )),
    }
}

fn read_jsonl(path: &Path) -> Result<Vec<(usize, Map<String, Value>)>> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in strip_bom(&text).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Map<String, Value> =
            serde_json::from_str(line).map_err(|e| Error::BadRecord {
                path: path.to_path_buf(),
                line: i + 1,
                msg: format!("not a JSON object: {e}"),
            })?;
        out.push((i + 1, value));
    }
    Ok(out)
}

/// CSV rows as records of strings, keyed by the header; line numbers count the header as 1.
fn read_csv(path: &Path) -> Result<Vec<(usize, Map<String, Value>)>> {
    let text = read(path)?;
    let mut reader = csv::Reader::from_reader(strip_bom(&text).as_bytes());
    let bad = |line: usize, e: csv::Error| Error::BadRecord {
        path: path.to_path_buf(),
        line,
        msg: e.to_string(),
    };
    let header = reader.headers().map_err(|e| bad(1, e))?.clone();
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| bad(e.position().map_or(0, |p| p.line() as usize), e))?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        let record = header
            .iter()
            .zip(row.iter())
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        out.push((line, record));
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| Error::Io {
        path: path.to_path_buf(),
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rte() -> TaskDef {
        serde_json::from_value(serde_json::json!({
            "name": "rte",
            "fields": ["premise", "hypothesis"],
            "template": "[premise] Question: [hypothesis]? [P:2] Answer: [Y].",
            "answer": {"kind": "label", "verbalizers": [["entailment", "Yes"], ["not_entailment", "No"]]}
        }))
        .unwrap()
    }

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn jsonl_and_csv_give_the_same_examples() {
        let (_a, jsonl) = write(
            "d.jsonl",
            "{\"premise\": \"A dog runs.\", \"hypothesis\": \"An animal moves.\", \"label\": \"entailment\", \"idx\": 3}\n\n{\"premise\": \"x\", \"hypothesis\": 7, \"label\": \"not_entailment\"}\n",
        );
        let (_b, csv) = write(
            "d.csv",
            "premise,hypothesis,label\nA dog runs.,An animal moves.,entailment\nx,7,not_entailment\n",
        );
        let task = rte();
        let a = task.read_examples(&jsonl).unwrap();
        let b = task.read_examples(&csv).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].fields["premise"], "A dog runs.");
        assert_eq!(a[1].fields["hypothesis"], "7");
        assert_eq!(
            a.iter().map(|e| e.gold).collect::<Vec<_>>(),
            [Some(0), Some(1)]
        );
        let strip = |v: Vec<Example>| {
            v.into_iter()
                .map(|e| (e.fields, e.gold))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(a), strip(b));
    }

    #[test]
    fn bad_lines_name_the_file_line_and_problem() {
        let task = rte();
        let (_a, p) = write(
            "d.jsonl",
            "{\"premise\": \"a\", \"label\": \"entailment\"}\n",
        );
        let err = task.read_examples(&p).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("no field \"hypothesis\""),
            "{err}"
        );
        let (_b, p) = write(
            "d.jsonl",
            "\n{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"maybe\"}\n",
        );
        let err = task.read_examples(&p).unwrap_err().to_string();
        assert!(
            err.contains("line 2")
                && err.contains("\"maybe\" is not in the verbalizers (entailment, not_entailment)"),
            "{err}"
        );
        let (_c, p) = write("d.jsonl", "\n \n");
        let err = task.read_examples(&p).unwrap_err().to_string();
        assert!(err.contains("no examples"), "{err}");
    }

    #[test]
    fn values_are_shown_as_the_task_maps_them() {
        let mut task = rte();
        task.values = serde_json::from_value(
            serde_json::json!({"hypothesis": {"cause": "because", "effect": "so"}}),
        )
        .unwrap();
        let (_a, p) = write(
            "d.jsonl",
            "{\"premise\": \"p\", \"hypothesis\": \"cause\", \"label\": \"entailment\"}\n",
        );
        assert_eq!(
            task.read_examples(&p).unwrap()[0].fields["hypothesis"],
            "because"
        );
        let (_b, p) = write(
            "d.jsonl",
            "{\"premise\": \"p\", \"hypothesis\": \"why\", \"label\": \"entailment\"}\n",
        );
        let err = task.read_examples(&p).unwrap_err().to_string();
        assert!(
            err.contains("\"why\", which \"values\" does not map (cause, effect)"),
            "{err}"
        );
    }

    #[test]
    fn choices_come_with_each_example_and_gold_is_an_index_or_a_text() {
        let mut task = rte();
        task.answer = serde_json::from_value(
            serde_json::json!({"kind": "choices", "from": ["choice1", "choice2"]}),
        )
        .unwrap();
        let (_a, p) = write(
            "d.jsonl",
            "{\"premise\": \"p\", \"hypothesis\": \"h\", \"choice1\": \"rain\", \"choice2\": \"sun\", \"label\": 1}\n{\"premise\": \"p\", \"hypothesis\": \"h\", \"choice1\": \"rain\", \"choice2\": \"sun\", \"label\": \"rain\"}\n",
        );
        let ex = task.read_examples(&p).unwrap();
        assert_eq!(ex[0].choices, ["rain", "sun"]);
        assert_eq!((ex[0].gold, ex[1].gold), (Some(1), Some(0)));
        let (_b, p) = write(
            "d.jsonl",
            "{\"premise\": \"p\", \"hypothesis\": \"h\", \"choice1\": \"\", \"choice2\": \" \"}\n",
        );
        let err = task.read_examples(&p).unwrap_err().to_string();
        assert!(err.contains("no candidates"), "{err}");
        let (_c, p) = write(
            "d.jsonl",
            "{\"premise\": \"p\", \"hypothesis\": \"h\", \"choice1\": \"a\", \"choice2\": \"b\", \"label\": 2}\n",
        );
        let err = task.read_examples(&p).unwrap_err().to_string();
        assert!(err.contains("index (0 to 1)"), "{err}");
    }
}
