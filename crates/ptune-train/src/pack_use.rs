//! Using an exported prompt pack: `ptune eval` scores it on a split, `ptune predict --pack` fills
//! the relation's object for new subjects. The encoder is gone; the pack's matrix is all it takes.

use crate::device::Compute;
use crate::eval::{rank_queries, stats};
use crate::spec::tokenizer_spec;
use crate::train::identity;
use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::{
    LamaDataset, QueryBuilder, Split, Template, TokenizerSpec, VocabStrategy, short_message,
    strip_bom,
};
use ptune_encoder::PromptPack;
use std::path::{Path, PathBuf};

/// A pack with the model it was trained for, ready to run.
pub struct LoadedPack {
    pub pack: PromptPack,
    pub bundle: ModelBundle,
    pub backbone: Backbone,
    pub spec: TokenizerSpec,
    pub template: Template,
    pub prompts: Tensor<2>,
    pub device: Device,
}

/// `--pack` may name the pack directory or its `prompt.safetensors` / `prompt.json`.
pub fn pack_dir(path: &Path) -> PathBuf {
    match path.extension() {
        Some(_) if path.is_file() => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        _ => path.to_path_buf(),
    }
}

/// The model a pack's run used (`run.json` beside the relation folders), unless given.
fn model_for(dir: &Path, model: Option<&str>) -> Result<String> {
    if let Some(m) = model {
        return Ok(m.to_string());
    }
    let run = dir
        .parent()
        .map(|p| p.join("run.json"))
        .filter(|p| p.is_file())
        .with_context(|| {
            format!(
                "{} has no run.json beside it to say which model it was trained for; pass --model",
                dir.display()
            )
        })?;
    let text =
        std::fs::read_to_string(&run).with_context(|| format!("reading {}", run.display()))?;
    let json: serde_json::Value = serde_json::from_str(strip_bom(&text)).map_err(|e| {
        let msg = short_message(&e.to_string()).into_owned();
        anyhow::anyhow!("{} is not valid JSON: {msg}; pass --model", run.display())
    })?;
    json["model"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{} names no model; pass --model", run.display()))
}

pub fn load(pack: &Path, model: Option<&str>, compute: Compute) -> Result<LoadedPack> {
    let dir = pack_dir(pack);
    let pack = PromptPack::load(&dir)?;
    let device = compute.device()?;
    let bundle = ModelBundle::open(&model_for(&dir, model)?)?;
    let backbone = compute.backbone(&bundle, &device)?;
    let id = identity(&bundle, &backbone);
    pack.check_compatible(&id.architecture, id.hidden_size, &id.tokenizer_hash)?;
    let spec = tokenizer_spec(&bundle, &backbone)?;
    let template = Template::parse(&pack.template)?;
    let prompts = pack.prompt_tensor(&device);
    Ok(LoadedPack {
        pack,
        bundle,
        backbone,
        spec,
        template,
        prompts,
        device,
    })
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A prompt pack: its directory or its prompt.safetensors.
    #[arg(long)]
    pub pack: PathBuf,
    /// Facts in the LAMA layout (see `ptune train --help`).
    #[arg(long)]
    pub data: PathBuf,
    /// Which split to score.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// The model; default: the one recorded in the pack's run.json.
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub compute: Compute,
    /// Print JSON instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let split: Split = args.split.parse()?;
    let loaded = load(&args.pack, args.model.as_deref(), args.compute)?;
    let dataset = LamaDataset::open(&args.data)?;
    let relation = loaded.pack.relation.clone();
    let facts = dataset.facts(&relation, split)?;
    let vocab: VocabStrategy = loaded
        .pack
        .metrics
        .get("vocab")
        .and_then(|v| v.as_str())
        .unwrap_or("original")
        .parse()?;
    let model = model_for(&pack_dir(&args.pack), args.model.as_deref())?;
    let list = crate::vocab::word_list(&dataset, vocab, &model)?;
    let builder = QueryBuilder::new(&loaded.bundle.tokenizer, &loaded.spec, &loaded.template)?
        .max_len(loaded.backbone.max_positions())
        .with_vocab(list.as_ref());
    let set = builder.build(&facts);
    if set.queries.is_empty() {
        bail!(
            "{relation} has no usable {} facts ({} dropped)",
            split.as_str(),
            set.report.dropped_total()
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
            serde_json::json!({"relation": relation, "split": split.as_str(), "n": s.n, "dropped": set.report.dropped_total(), "p_at_1": s.p_at_1, "p_at_10": s.p_at_10, "mrr": s.mrr})
        );
    } else {
        println!(
            "{relation} {}: P@1 {:.4}  P@10 {:.4}  MRR {:.4}  ({} facts, {} dropped)",
            split.as_str(),
            s.p_at_1,
            s.p_at_10,
            s.mrr,
            s.n,
            set.report.dropped_total()
        );
    }
    Ok(())
}
