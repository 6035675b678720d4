//! `ptune predict --pack P --input FILE`: many inputs through one loaded model, batched, one
//! JSON line out per input line, in order. An input that cannot be predicted gets a line with
//! its `error` and the others go on; the command then ends non-zero, saying how many failed.

use crate::pack_use::LoadedPack;
use crate::predict::{PredictArgs, rank_subjects};
use crate::task_predict::{PREDICT_BATCH, rank_answers, record};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ptune_data::task::TaskDef;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::Path;

pub fn run(args: &PredictArgs, loaded: &LoadedPack, input: &Path) -> Result<()> {
    let lines = read_lines(input)?;
    if lines.is_empty() {
        bail!("{} has no inputs (every line is empty)", shown(input));
    }
    let bar = progress(lines.len());
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for chunk in lines.chunks(PREDICT_BATCH) {
        let results = match &loaded.task {
            Some(def) => task_lines(loaded, def, chunk, args.top_k)?,
            None => subject_lines(loaded, chunk, args.top_k)?,
        };
        for ((line, _), result) in chunk.iter().zip(results) {
            let mut value = result.unwrap_or_else(|error| {
                failed += 1;
                json!({ "error": error })
            });
            value["line"] = (*line).into();
            writeln!(out, "{value}")?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if failed > 0 {
        bail!(
            "{failed} of {} inputs could not be predicted; their lines say why",
            lines.len()
        );
    }
    Ok(())
}

/// The non-empty lines of `input` (`-`: standard input) with their 1-based numbers.
fn read_lines(input: &Path) -> Result<Vec<(usize, String)>> {
    let mut text = String::new();
    if input == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("could not read standard input")?;
    } else {
        text = std::fs::read_to_string(input)
            .with_context(|| format!("could not read {}", input.display()))?;
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

fn shown(input: &Path) -> String {
    match input == Path::new("-") {
        true => "standard input".into(),
        false => input.display().to_string(),
    }
}

/// A bar on standard error while it is a terminal (indicatif draws nothing otherwise).
fn progress(n: usize) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    let style =
        ProgressStyle::with_template("predict [{bar:30}] {pos}/{len} {elapsed}, {eta} left")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// A relation's inputs: `{"subject", "top"}` per line.
fn subject_lines(
    loaded: &LoadedPack,
    lines: &[(usize, String)],
    top_k: usize,
) -> Result<Vec<Result<Value, String>>> {
    let subjects: Vec<Result<String, String>> = lines.iter().map(|(_, l)| subject(l)).collect();
    let ok: Vec<&str> = subjects.iter().filter_map(|s| s.as_deref().ok()).collect();
    let mut ranked = rank_subjects(loaded, &ok, top_k)?.into_iter();
    Ok(subjects
        .into_iter()
        .map(|s| {
            let s = s?;
            let (_, prediction) = ranked.next().expect("one result per subject")?;
            Ok(json!({"subject": s, "top": prediction.top}))
        })
        .collect())
}

/// A line as a subject: a JSON string, an object's `subject` (or LAMA's `sub_label`), or the
/// line itself.
pub(crate) fn subject(line: &str) -> Result<String, String> {
    let trimmed = line.trim();
    if !trimmed.starts_with(['{', '"']) {
        return Ok(trimmed.to_string());
    }
    let value: Value = serde_json::from_str(trimmed).map_err(|e| format!("not JSON: {e}"))?;
    let text = match &value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o
            .get("subject")
            .or_else(|| o.get("sub_label"))
            .and_then(Value::as_str),
        _ => None,
    };
    text.map(String::from)
        .ok_or_else(|| "expected a subject: text, a JSON string or {\"subject\": ...}".into())
}

/// A task's inputs: `{"answers"}` per line.
fn task_lines(
    loaded: &LoadedPack,
    def: &TaskDef,
    lines: &[(usize, String)],
    top_k: usize,
) -> Result<Vec<Result<Value, String>>> {
    let examples: Vec<Result<_, String>> = lines
        .iter()
        .map(|(n, l)| {
            let record = record(def, l).map_err(|e| e.to_string())?;
            def.example(&record, *n)
        })
        .collect();
    let ok: Vec<_> = examples
        .iter()
        .filter_map(|e| e.as_ref().ok().cloned())
        .collect();
    let mut ranked = rank_answers(loaded, def, &ok, top_k)?.into_iter();
    Ok(examples
        .into_iter()
        .map(|e| {
            e?;
            let answers = ranked.next().expect("one result per example")?;
            Ok(json!({ "answers": answers }))
        })
        .collect())
}
