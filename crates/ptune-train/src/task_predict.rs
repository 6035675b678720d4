//! `ptune predict --pack` with a task's pack: the example's candidate answers ranked by their
//! scores (the same numbers training and `ptune eval` use).

use crate::candidates::{TaskTensors, candidate_scores};
use crate::model::to_host;
use crate::pack_use::LoadedPack;
use crate::predict::PredictArgs;
use anyhow::{Result, anyhow, bail};
use ptune_data::task::{Answer, RowBuilder, ScoreNorm, TaskBatch, TaskDef};
use serde::Serialize;
use serde_json::{Map, Value};

/// One candidate answer with its score and its share of the candidates' probability.
#[derive(Debug, Serialize)]
struct Scored {
    answer: String,
    words: String,
    score: f32,
    prob: f32,
}

/// Scores every candidate of the example `text` gives (a JSON object of the task's fields, or
/// plain text when the task has one field) and prints the best `--top-k`.
pub fn run(args: &PredictArgs, loaded: &LoadedPack, def: &TaskDef) -> Result<()> {
    let example = def
        .example(&record(def, &args.text)?, 1)
        .map_err(|m| anyhow!("{m}"))?;
    let rows = RowBuilder::new(&loaded.bundle.tokenizer, &loaded.spec, &loaded.template)?
        .max_len(loaded.backbone.max_positions());
    let (names, words): (Vec<String>, Vec<String>) = match &def.answer {
        Answer::Label { verbalizers, .. } => verbalizers.iter().cloned().unzip(),
        Answer::Choices { .. } => (example.choices.clone(), example.choices.clone()),
    };
    let labels = rows.label_ids(&def.answer)?;
    let scored = rows
        .build_example(&example, labels.as_deref(), 0)
        .map_err(|r| anyhow!("the example cannot be scored: {}", r.describe()))?;
    let batch = TaskBatch::collate(&[&scored], loaded.spec.pad_id)?;
    let vocab = loaded.backbone.vocab_size();
    let tensors = TaskTensors::new(&batch, vocab, def.score, &loaded.device);
    let scores = candidate_scores(&loaded.backbone, Some(loaded.prompts.clone()), &tensors)?;
    let scores = to_host(scores)?;
    let total: f32 = scores.iter().map(|s| s.exp()).sum();
    let mut ranked: Vec<Scored> = (names.into_iter().zip(words).zip(&scores))
        .map(|((answer, words), &score)| Scored {
            answer,
            words,
            score,
            prob: score.exp() / total,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked.truncate(args.top_k);
    if args.json {
        let report = serde_json::json!({"task": def.name, "answers": ranked});
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let how = match def.score {
            ScoreNorm::Sum => "sum",
            ScoreNorm::Mean => "mean",
        };
        println!(
            "{} (score: {how} of the answer's token log-probs)",
            def.name
        );
        for s in &ranked {
            println!(
                "  {:<20} {:>9.4}  {:>6.1}%  {}",
                s.answer,
                s.score,
                100.0 * s.prob,
                s.words
            );
        }
    }
    Ok(())
}

/// The example's fields: a JSON object, or the text itself for a one-field task.
fn record(def: &TaskDef, text: &str) -> Result<Map<String, Value>> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| anyhow!("TEXT is not a JSON object of the task's fields: {e}"));
    }
    match def.fields.as_slice() {
        [field] => Ok(Map::from_iter([(
            field.clone(),
            Value::String(text.into()),
        )])),
        fields => bail!(
            "task {} has the fields {}: pass TEXT as a JSON object, e.g. '{{\"{}\": \"...\"}}'",
            def.name,
            fields.join(", "),
            fields[0]
        ),
    }
}
