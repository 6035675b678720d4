//! `ptune predict --pack` with a task's pack: the example's candidate answers ranked by their
//! scores (the same numbers training and `ptune eval` use).

use crate::pack_use::LoadedPack;
use crate::predict::PredictArgs;
use anyhow::{Result, anyhow, bail};
use ptune_data::task::{Answer, Example, ScoreNorm, TaskDef};
use serde::Serialize;
use serde_json::{Map, Value};

/// One candidate answer with its score and its share of the candidates' probability.
#[derive(Debug, Serialize)]
pub struct Scored {
    /// The label, or the candidate's text.
    pub answer: String,
    /// What the model is asked to say for it (the verbalizer; a choice's own text).
    pub words: String,
    /// The candidate's score: sum or mean of its tokens' log-probabilities.
    pub score: f32,
    /// Its share of the candidates' probability.
    pub prob: f32,
}

/// Scores every candidate of the example `text` gives (a JSON object of the task's fields, or
/// plain text when the task has one field) and prints the best `--top-k`.
pub fn run(args: &PredictArgs, loaded: &LoadedPack, def: &TaskDef) -> Result<()> {
    let example = def
        .example(&record(def, args.text.as_deref().unwrap_or_default())?, 1)
        .map_err(|m| anyhow!("{m}"))?;
    let ranked = rank_answers(loaded, def, &[example], args.top_k)?
        .pop()
        .expect("one answer list per example")
        .map_err(|reason| anyhow!("the example cannot be scored: {reason}"))?;
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

/// Each example's candidates, best first, `top_k` kept; or why the example cannot be scored.
/// Examples are scored at most [`PREDICT_BATCH`] at a time (fewer when long).
pub fn rank_answers(
    loaded: &LoadedPack,
    def: &TaskDef,
    examples: &[Example],
    top_k: usize,
) -> Result<Vec<Result<Vec<Scored>, String>>> {
    let inputs: Vec<(usize, &Example)> = examples.iter().map(|e| (0, e)).collect();
    let mut member = loaded.member();
    member.task = Some(def);
    let (model, prompts) = (loaded.shared(), &loaded.prompts);
    crate::mixed::rank_answers(model, &[member], prompts, &inputs, top_k, PREDICT_BATCH)
}

/// How many examples `predict` scores in one forward pass.
pub const PREDICT_BATCH: usize = 16;

/// The candidates with their scores and shares of probability, best first, `top_k` kept.
pub(crate) fn ranked(
    def: &TaskDef,
    example: &Example,
    scores: &[f32],
    top_k: usize,
) -> Vec<Scored> {
    let (names, words): (Vec<String>, Vec<String>) = match &def.answer {
        Answer::Label { verbalizers, .. } => verbalizers.iter().cloned().unzip(),
        Answer::Choices { .. } => (example.choices.clone(), example.choices.clone()),
    };
    let total: f32 = scores.iter().map(|s| s.exp()).sum();
    let mut ranked: Vec<Scored> = (names.into_iter().zip(words).zip(scores))
        .map(|((answer, words), &score)| Scored {
            answer,
            words,
            score,
            prob: score.exp() / total,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked.truncate(top_k);
    ranked
}

/// The example's fields: a JSON object, or the text itself for a one-field task.
pub fn record(def: &TaskDef, text: &str) -> Result<Map<String, Value>> {
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
