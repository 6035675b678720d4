//! Predicting with a prompt pack from Rust, as `ptune predict --pack P --input FILE` does: load
//! the pack and the model its run recorded once, then rank the answers of a batch of inputs.
//!
//!   cargo run --release -p ptune-train --example predict_batch -- PACK INPUT...
//!
//! An INPUT is a subject for a relation's pack, or a task's fields as a JSON object (plain text
//! for a one-field task). Each prints its best three answers with their log-probabilities.

use anyhow::{Result, anyhow};
use ptune_backbone::Precision;
use ptune_train::device::{Backend, Compute};
use ptune_train::pack_use;
use ptune_train::predict::rank_subjects;
use ptune_train::task_predict::{rank_answers, record};
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let pack = PathBuf::from(args.next().ok_or_else(|| anyhow!("usage: PACK INPUT..."))?);
    let inputs: Vec<String> = args.collect();
    let compute = Compute {
        backend: Backend::Flex,
        precision: Precision::F32,
        threads: None,
    };
    // The model comes from the pack's run.json; pass Some(path) to use another copy of it.
    let loaded = pack_use::load(&pack, None, compute)?;
    match &loaded.task {
        Some(def) => {
            let examples = inputs
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    def.example(&record(def, text)?, i + 1)
                        .map_err(|m| anyhow!(m))
                })
                .collect::<Result<Vec<_>>>()?;
            for (input, answers) in inputs.iter().zip(rank_answers(&loaded, def, &examples, 3)?) {
                let answers = answers.map_err(|why| anyhow!("{input}: {why}"))?;
                let shown: Vec<String> = answers
                    .iter()
                    .map(|a| format!("{} {:.3}", a.answer, a.score))
                    .collect();
                println!("{input} -> {}", shown.join(", "));
            }
        }
        None => {
            let subjects: Vec<&str> = inputs.iter().map(String::as_str).collect();
            for (input, ranked) in inputs.iter().zip(rank_subjects(&loaded, &subjects, 3)?) {
                let (_, prediction) = ranked.map_err(|why| anyhow!("{input}: {why}"))?;
                let shown: Vec<String> = prediction
                    .top
                    .iter()
                    .map(|c| format!("{:?} {:.3}", c.token, c.logprob))
                    .collect();
                println!("{input} -> {}", shown.join(", "));
            }
        }
    }
    Ok(())
}
