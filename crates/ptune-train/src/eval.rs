//! `ptune eval`: a prompt pack's P@1, P@10 and MRR on a split of a data set.

use crate::device::Compute;
use crate::pack_use::load;
use crate::rank::{rank_queries, stats};
use anyhow::{Result, bail};
use ptune_data::{LamaDataset, QueryBuilder, Split};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A prompt pack: its directory or its prompt.safetensors.
    #[arg(long)]
    pub pack: PathBuf,
    /// Facts in the LAMA layout (see `ptune train --help`).
    #[arg(long)]
    pub data: PathBuf,
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
    let dataset = LamaDataset::open(&args.data)?;
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
    let s = stats(&ranks).summary();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"relation": relation, "split": split.as_str(), "n": s.n, "dropped": set.report.dropped_total(), "facts": set.report, "p_at_1": s.p_at_1, "p_at_10": s.p_at_10, "mrr": s.mrr})
        );
    } else {
        println!(
            "{relation} {}: P@1 {:.4}  P@10 {:.4}  MRR {:.4}; {}",
            split.as_str(),
            s.p_at_1,
            s.p_at_10,
            s.mrr,
            set.report
        );
    }
    Ok(())
}
