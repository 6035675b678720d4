//! `ptune predict`: what a frozen backbone puts at each `[MASK]`, or as the next token.

use crate::device::Compute;
use crate::model::{PrefixCache, to_host};
use anyhow::{Context, Result, bail};
use burn::tensor::{Int, Tensor, TensorData, activation::log_softmax};
use ptune_backbone::{Backbone, ModelBundle, Objective};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A model directory (config.json + weights + tokenizer), a .gguf file, or a hub id.
    /// With --pack it defaults to the model recorded in the pack's run.json.
    #[arg(long, required_unless_present = "pack")]
    pub model: Option<String>,
    /// A prompt pack from `ptune train`: TEXT is then a subject, and the relation's object is
    /// predicted with the pack's template and prompts (e.g. --pack runs/x/P36 "Peru").
    #[arg(long)]
    pub pack: Option<std::path::PathBuf>,
    /// How many candidates to show per position.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Print JSON (token strings, ids, log-probs) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub compute: Compute,
    /// With --pack: many inputs, one per line of FILE (`-` reads standard input), the model
    /// loaded once and the inputs batched; one JSON line out per input, in order. A line is
    /// what TEXT would be: a subject (plain, a JSON string, or {"subject": ...}) or a task's
    /// fields as a JSON object.
    #[arg(long, value_name = "FILE", requires = "pack", conflicts_with = "text")]
    pub input: Option<std::path::PathBuf>,
    /// The text. A masked LM fills each mask token ("Paris is the capital of [MASK].");
    /// a causal LM continues it ("The capital of France is"). With a relation's --pack: a
    /// subject; with a task's: its fields as a JSON object ('{"premise": "...", ...}'), or the
    /// text of its one field.
    #[arg(required_unless_present = "input")]
    pub text: Option<String>,
}

/// One candidate token at one position.
#[derive(Debug, Serialize)]
pub struct Candidate {
    pub token: String,
    pub id: u32,
    pub logprob: f32,
    pub prob: f32,
}

/// The candidates for one predicted position.
#[derive(Debug, Serialize)]
pub struct Prediction {
    pub position: usize,
    pub top: Vec<Candidate>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    model: &'a str,
    objective: Objective,
    input_ids: &'a [u32],
    predictions: &'a [Prediction],
}

pub fn run(args: &PredictArgs) -> Result<()> {
    if args.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    if let Some(pack) = &args.pack {
        return predict_with_pack(args, pack);
    }
    let model_arg = args
        .model
        .as_deref()
        .expect("clap requires --model without --pack");
    let device = args.compute.device()?;
    let bundle = ModelBundle::open(model_arg)?;
    let model = args.compute.backbone(&bundle, &device)?;
    let encoding = bundle
        .tokenizer
        .encode(args.text.as_deref().unwrap_or_default(), true)
        .map_err(|e| anyhow::anyhow!("could not tokenize the text: {e}"))?;
    let ids = encoding.get_ids().to_vec();
    let positions = target_positions(&bundle, &model, &ids)?;
    let predictions = predict(&bundle, &model, &ids, &positions, args.top_k)?;
    show(args, model_arg, model.objective(), &ids, &predictions)
}

fn show(
    args: &PredictArgs,
    model: &str,
    objective: Objective,
    ids: &[u32],
    predictions: &[Prediction],
) -> Result<()> {
    let report = Report {
        model,
        objective,
        input_ids: ids,
        predictions,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// The pack's template around the subject, its prompts in their slots, the top objects.
fn predict_with_pack(args: &PredictArgs, pack: &std::path::Path) -> Result<()> {
    let loaded = crate::pack_use::load(pack, args.model.as_deref(), args.compute)?;
    if let Some(input) = &args.input {
        return crate::predict_file::run(args, &loaded, input);
    }
    if let Some(def) = &loaded.task {
        return crate::task_predict::run(args, &loaded, def);
    }
    let text = args.text.as_deref().unwrap_or_default();
    let (query, prediction) = rank_subjects(&loaded, &[text], args.top_k)?
        .pop()
        .expect("one prediction per subject")
        .map_err(|reason| {
            anyhow::anyhow!(
                "cannot build a query for {}: {reason}",
                ptune_data::quote(text)
            )
        })?;
    let model = format!(
        "{} + pack {}",
        loaded.bundle.path.display(),
        loaded.pack.relation
    );
    show(
        args,
        &model,
        loaded.backbone.objective(),
        &query.input_ids,
        &[prediction],
    )
}

/// Each subject's query under a relation's pack and its top objects, or why it has no query.
/// Queries run [`PREDICT_BATCH`](crate::task_predict::PREDICT_BATCH) at a time.
pub fn rank_subjects(
    loaded: &crate::pack_use::LoadedPack,
    subjects: &[&str],
    top_k: usize,
) -> Result<Vec<Result<(ptune_data::Query, Prediction), String>>> {
    let inputs: Vec<(usize, &str)> = subjects.iter().map(|&s| (0, s)).collect();
    let batch = crate::task_predict::PREDICT_BATCH;
    let members = [loaded.member()];
    let cache = PrefixCache::default();
    let prompts = (&loaded.prompts, Some(&cache));
    crate::mixed::rank_subjects(loaded.shared(), &members, prompts, &inputs, top_k, batch)
}

/// The mask positions of a masked LM, or the last position of a causal LM.
fn target_positions(bundle: &ModelBundle, model: &Backbone, ids: &[u32]) -> Result<Vec<usize>> {
    if ids.is_empty() {
        bail!("the text is empty after tokenization");
    }
    model.check_length(ids.len())?;
    if !model.has_lm_head() {
        bail!(
            "{} has no language-model head (an encoder only), so it cannot predict tokens",
            bundle.path.display()
        );
    }
    match model.objective() {
        Objective::Causal => Ok(vec![ids.len() - 1]),
        Objective::Masked => {
            let mask = bundle
                .special
                .mask
                .context("this masked LM's tokenizer has no mask token")?;
            let spelled = bundle.tokenizer.id_to_token(mask).unwrap_or_default();
            let found: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == mask).collect();
            if found.is_empty() {
                bail!(
                    "the text has no {spelled}: a masked LM fills masks, e.g. \"Paris is the capital of {spelled}.\""
                );
            }
            Ok(found)
        }
    }
}

/// Runs the model once and ranks the vocabulary at each position.
pub fn predict(
    bundle: &ModelBundle,
    model: &Backbone,
    ids: &[u32],
    positions: &[usize],
    top_k: usize,
) -> Result<Vec<Prediction>> {
    let device = model.device();
    let n = ids.len();
    let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(data, [1, n]), &device);
    let mask = Tensor::<2, Int>::ones([1, n], &device);
    let hidden = model.forward_embeds(model.embed_tokens(input), mask);
    let rows: Vec<(usize, usize)> = positions.iter().map(|&p| (0, p)).collect();
    let logprobs = log_softmax(model.lm_logits(Backbone::gather_rows(hidden, &rows))?, 1);
    let vocab = logprobs.dims()[1];
    let values = to_host(logprobs)?;
    Ok(positions
        .iter()
        .zip(values.chunks(vocab))
        .map(|(&position, row)| Prediction {
            position,
            top: top_candidates(bundle, row, top_k),
        })
        .collect())
}

pub(crate) fn top_candidates(bundle: &ModelBundle, logprobs: &[f32], k: usize) -> Vec<Candidate> {
    let mut order: Vec<usize> = (0..logprobs.len()).collect();
    order.sort_by(|&a, &b| logprobs[b].total_cmp(&logprobs[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|id| Candidate {
            token: bundle
                .tokenizer
                .decode(&[id as u32], false)
                .unwrap_or_default(),
            id: id as u32,
            logprob: logprobs[id],
            prob: logprobs[id].exp(),
        })
        .collect()
}

fn print_table(report: &Report) {
    for (i, p) in report.predictions.iter().enumerate() {
        let what = match report.objective {
            Objective::Masked => format!("mask {} (token {})", i + 1, p.position),
            Objective::Causal => "next token".to_string(),
        };
        println!("{what}:");
        println!(
            "  {:>4}  {:<20} {:>8} {:>9} {:>8}",
            "rank", "token", "id", "log-prob", "prob"
        );
        for (rank, c) in p.top.iter().enumerate() {
            let shown = format!("{:?}", c.token);
            println!(
                "  {:>4}  {:<20} {:>8} {:>9.4} {:>8.4}",
                rank + 1,
                shown,
                c.id,
                c.logprob,
                c.prob
            );
        }
    }
}
