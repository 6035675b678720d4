//! `ptune eval`: a prompt pack's P@1, P@10 and MRR on a split of a data set.

use crate::device::Compute;
use crate::pack_use::{LoadedPack, load};
use crate::rank::{rank_candidates, rank_queries, stats};
use crate::train::task::{TaskTest, read_split, scored};
use anyhow::{Result, bail};
use ptune_data::task::metrics::TaskScores;
use ptune_data::task::{RowBuilder, ScoredExample, TaskDef};
use ptune_data::{DropReport, LamaDataset, QueryBuilder, Split};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A prompt pack: its directory or its prompt.safetensors.
    #[arg(long)]
    pub pack: PathBuf,
    /// Facts in the LAMA layout (see `ptune train --help`); for a task's pack, a data file
    /// to score instead of the split's file its task.json names.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which split to score.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// The model; default: the one recorded in the pack's run.json.
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub compute: Compute,
    /// Print JSON instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let split = args.split;
    let loaded = load(&args.pack, args.model.as_deref(), args.compute)?;
    if let Some(def) = &loaded.task {
        return eval_task(args, &loaded, def);
    }
    let Some(data) = &args.data else {
        bail!("--data is required for a relation's pack: the LAMA-layout folder to score");
    };
    let dataset = LamaDataset::open(data)?;
    let relation = loaded.pack.relation.clone();
    let facts = dataset.facts(&relation, split)?;
    let vocab = loaded.pack.vocab;
    let list = crate::vocab::word_list(&dataset, vocab, &loaded.model)?;
    let builder = QueryBuilder::new(&loaded.bundle.tokenizer, &loaded.spec, &loaded.template)?
        .max_len(loaded.backbone.max_positions())
        .with_vocab(list.as_ref());
    let set = builder.build(&facts);
    if set.queries.is_empty() {
        bail!(
            "{relation} has no usable {} facts: {}",
            split.as_str(),
            set.report
        );
    }
    let ranks = rank_queries(
        &loaded.backbone,
        Some(&loaded.prompts),
        &set.queries,
        &crate::vocab::allowed(vocab, &builder, &dataset, &relation)?,
        loaded.spec.pad_id,
        &loaded.device,
    )?;
    report(args, &relation, &stats(&ranks).summary(), &set.report, None);
    Ok(())
}

/// A task's pack on a split of its data (or on `--data FILE`): accuracy as P@1 over candidates.
fn eval_task(args: &EvalArgs, loaded: &LoadedPack, def: &TaskDef) -> Result<()> {
    let mut def = def.clone();
    if let Some(file) = &args.data {
        let slot = match args.split {
            Split::Train => &mut def.data.train,
            Split::Dev => &mut def.data.dev,
            Split::Test => &mut def.data.test,
        };
        *slot = Some(file.clone());
    }
    let rows = RowBuilder::new(&loaded.bundle.tokenizer, &loaded.spec, &loaded.template)?
        .max_len(loaded.backbone.max_positions());
    let labels = rows.label_ids(&def.answer)?;
    let all = read_split(&def, args.split)?;
    let (examples, dropped) = scored(&rows, &all, labels.as_deref(), None);
    if examples.is_empty() {
        bail!(
            "task {} has no usable {} examples: {dropped}",
            def.name,
            args.split.as_str()
        );
    }
    let ranked = rank_candidates(
        &loaded.backbone,
        Some(&loaded.prompts),
        &examples,
        def.score,
        loaded.spec.pad_id,
        (None, &loaded.device),
    )?;
    let test = TaskTest {
        examples: all,
        labels: def.labels().len(),
    };
    let task = Task {
        scores: test.scores(&examples, &ranked.best),
        by_length: by_answer_length(&examples, &ranked.ranks),
    };
    report(
        args,
        &def.name,
        &stats(&ranked.ranks).summary(),
        &dropped,
        Some(&task),
    );
    Ok(())
}

/// P@1 by the right answer's length, one token or more (what `--multi-token` adds over
/// one-token objects); empty unless both kinds are there.
fn by_answer_length(
    examples: &[ScoredExample],
    ranks: &[usize],
) -> Vec<(&'static str, ptune_data::Summary)> {
    let tokens = |e: &ScoredExample| e.gold.map_or(0, |g| e.candidates[g].len());
    let groups: Vec<_> = [("1", 1..2), ("2+", 2..usize::MAX)]
        .into_iter()
        .map(|(name, range)| {
            let own: Vec<usize> = (examples.iter().zip(ranks))
                .filter(|(e, _)| range.contains(&tokens(e)))
                .map(|(_, &r)| r)
                .collect();
            (name, stats(&own).summary())
        })
        .filter(|(_, s)| s.n > 0)
        .collect();
    if groups.len() < 2 {
        return Vec::new();
    }
    groups
}

/// What a task's pack adds to the scores: SuperGLUE's, and P@1 by the answer's length.
struct Task {
    scores: TaskScores,
    /// Empty unless the answers differ in length.
    by_length: Vec<(&'static str, ptune_data::Summary)>,
}

/// One line (or a JSON object) of scores and counts; a task's SuperGLUE scores too, and where
/// its right answers differ in length, P@1 for one-token answers and for longer ones.
fn report(
    args: &EvalArgs,
    relation: &str,
    s: &ptune_data::Summary,
    facts: &DropReport,
    task: Option<&Task>,
) {
    let split = args.split;
    let by_length = task.map_or(&[][..], |t| &t.by_length);
    if args.json {
        let mut json = serde_json::json!({"relation": relation, "split": split.as_str(), "n": s.n, "dropped": facts.dropped_total(), "facts": facts, "p_at_1": s.p_at_1, "p_at_10": s.p_at_10, "mrr": s.mrr});
        let object = json.as_object_mut().expect("an object");
        if let Some(serde_json::Value::Object(scores)) = task
            .map(|t| serde_json::to_value(&t.scores))
            .transpose()
            .ok()
            .flatten()
        {
            object.extend(scores);
        }
        if !by_length.is_empty() {
            let groups = by_length.iter().map(|(tokens, s)| {
                serde_json::json!({"answer_tokens": tokens, "n": s.n, "p_at_1": s.p_at_1, "mrr": s.mrr})
            });
            object.insert("by_answer_length".into(), groups.collect());
        }
        println!("{json}");
    } else {
        let f1 = task.map_or(String::new(), |t| format!("  ({})", t.scores.line()));
        println!(
            "{relation} {}: P@1 {:.4}  P@10 {:.4}  MRR {:.4}{f1}; {}",
            split.as_str(),
            s.p_at_1,
            s.p_at_10,
            s.mrr,
            facts
        );
        for (tokens, s) in by_length {
            println!(
                "  right answers of {tokens} token(s): {} examples, P@1 {:.4}  MRR {:.4}",
                s.n, s.p_at_1, s.mrr
            );
        }
    }
}
