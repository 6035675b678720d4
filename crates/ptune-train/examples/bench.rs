//! The macro benchmark, one case per process (so peak memory is its own): model load time,
//! P-tuning training and cached-prompt evaluation throughput, peak RSS. Prints one JSON line;
//! `cargo xtask bench` runs the cases and tabulates them. A benchmark, not a user command: it
//! ships with the sources, not in `ptune`.
//!
//! Example: `cargo run --example bench -- --model random:bert-base --template 3,3,3 --steps 5`

use anyhow::{Context, Result, bail};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use clap::Parser;
use ptune_backbone::synthetic::{RandomWeights, SHAPES, shape};
use ptune_backbone::{Backbone, ModelBundle, Objective};
use ptune_data::task::{Row, ScoreNorm, ScoredExample, Target, TaskBatch};
use ptune_data::{Batch, Part, PromptMode, Template};
use ptune_encoder::{EncoderKind, PromptEncoder, PromptEncoderConfig};
use ptune_train::candidates::{TaskTensors, candidate_scores, scores_keeping_leads, task_loss};
use ptune_train::device::{Backend, Compute};
use ptune_train::model::{
    BatchTensors, PrefixCache, fact_grads, fact_loss, grouped, grouped_logits, loss, optimizer,
    row_groups, step_on, to_host,
};
use ptune_train::serve::percentile;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

fn main() {
    if let Err(e) = run(&BenchArgs::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[derive(Debug, Parser)]
struct BenchArgs {
    /// A model path or id, or `random:SHAPE` (bert-base, gpt2-small, smollm2-135m, and for a GPU
    /// llama-3.2-1b, llama-3.1-8b) for random weights of that shape.
    #[arg(long)]
    model: String,
    /// The template whose prompt slots the batch has (its literal words are not tokenized); the
    /// syntax of `ptune train --template`, at most 512 prompt vectors.
    #[arg(long, default_value = "3,3,3")]
    template: String,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Tokens per example.
    #[arg(long, default_value_t = 24)]
    seq_len: usize,
    /// Subjects of varied lengths (example `e` of `B` gives up `e / B` of half the subject's
    /// room), so that rows are padded as in real batches; without it every row is full.
    #[arg(long)]
    ragged: bool,
    /// Timed steps (after one warm-up step) for training and for evaluation.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    #[command(flatten)]
    compute: Compute,
    /// Turn optimizations off to measure what each gives: `shared-prefix` (leading positions a
    /// causal batch's examples, or groups of its rows, have in common computed once: an
    /// example's context for its candidates' rows), `unpadded` (a causal batch's padding takes
    /// no rows; see `--ragged`), `target-rows` (the last layer only at targets; the lama case),
    /// `prefix-cache` (evaluation keeps the keys and values of the positions the template fixes
    /// before the subject, computed in its first step; a causal model, the lama case),
    /// `fused-attention` (evaluation's attention as the backend's one fused op rather than
    /// matmul, softmax, matmul; training always composes it, for its gradient), `kept-leads`
    /// (training takes each row's words before its first prompt from keys and values kept
    /// untracked across steps; a causal model, the classification case: time it with a
    /// template that puts a passage first, `--template "[X] [P:3] [Y]" --seq-len 400`),
    /// `row-groups` (on flex and libtorch's CPU, a batch's rows computed in groups at once, one
    /// per core, so the cores neither idle through flex's one-thread elementwise ops nor wait
    /// at the end of each libtorch op; the lama case),
    /// `fused-activations` (on flex, GELU, SiLU and the SwiGLU product `silu(gate) * up` as one
    /// vectorized pass each way rather than flex's scalar `erf` per element and two or three
    /// ops), `grouped-kv` (grouped-query attention multiplies each shared key/value head with
    /// its query heads at once instead of copying it per query head; Llama-family models),
    /// `fused-adam` (on flex and libtorch's CPU, Adam's step as one pass over each parameter
    /// tensor, in place, rather than burn's fifteen ops), `one-buffer-matmul` (on flex, a 2-D
    /// f32 matmul writes its product into one allocation; flex allocates two and copies).
    #[arg(long, value_enum, value_delimiter = ',')]
    ablate: Vec<Ablation>,
    /// With `--ablate`: time each step with the optimizations on and off in turn, in this one
    /// process, and report both (`paired_ablated`). Separate runs on a shared machine move by
    /// more than most optimizations give; steps taken in turn share its moods.
    #[arg(long, requires = "ablate")]
    paired: bool,
    /// Also time a training step's parts (the lama case): its forward alone (prompts tracked
    /// through the encoder, the loss read, no backward), the prompt encoder's forward and
    /// backward alone, and Adam's step alone; reported as `phases_ms` beside the whole step and
    /// evaluation, so that what the backward pass costs is the difference. Timed after the usual
    /// steps, with this run's `--ablate` (with `--paired`, every optimization on).
    #[arg(long)]
    phases: bool,
    /// What a step computes: `lama` ranks the vocabulary at `[Y]`; `classification` scores two
    /// one-token labels per example with the task loss (RTE-shaped with `--seq-len 64`);
    /// `choice` scores `--choices` candidates of `--answer-tokens` tokens each (COPA, ReCoRD,
    /// multi-token LAMA objects): a causal model reads each candidate in a row of its own after
    /// the example's context, a masked LM at as many masks.
    #[arg(long, value_enum, default_value = "lama")]
    case: Case,
    /// Candidates per example (the `choice` case).
    #[arg(long, default_value_t = 4)]
    choices: usize,
    /// Tokens per candidate (the `choice` case).
    #[arg(long, default_value_t = 3)]
    answer_tokens: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Case {
    Lama,
    Classification,
    Choice,
}

/// The batch one timed step runs.
enum Work {
    /// A LAMA batch: logits over the vocabulary at each target (optionally at every row).
    Lama {
        every_row: bool,
        /// The rows in the groups computed at once ([`row_groups`]; one with `--ablate
        /// row-groups`, and with `--ablate target-rows`, whose step takes the whole batch).
        groups: Vec<(BatchTensors, f64)>,
        /// Evaluation's kept prefixes (absent with `--ablate prefix-cache`).
        cache: Option<PrefixCache>,
    },
    /// A task batch: each example's two label tokens scored, cross-entropy over them.
    Classify {
        tensors: Box<TaskTensors>,
        /// Training's kept leads (absent with `--ablate kept-leads`).
        leads: Option<PrefixCache>,
    },
}

impl Work {
    fn train(
        &self,
        backbone: &Backbone,
        encoder: PromptEncoder,
        optim: &mut ModuleOptimizer,
    ) -> Result<PromptEncoder> {
        Ok(match self {
            // `train_step` with the last layer at every row; reading the loss syncs, as there.
            Work::Lama {
                groups,
                every_row: true,
                ..
            } => {
                let inputs = &groups[0].0;
                let logits = every_row_logits(backbone, encoder.forward(), inputs)?;
                let value = loss(logits, inputs.labels.clone());
                let _: f32 = value.clone().into_scalar();
                let grads = GradientsParams::from_grads(value.backward(), &encoder);
                optim.step(1e-4, encoder, grads)
            }
            Work::Lama { groups, .. } => {
                let (grads, _) = fact_grads(backbone, &encoder, None, groups)?;
                optim.step(1e-4, encoder, grads)
            }
            Work::Classify { tensors: t, leads } => {
                step_on(encoder, optim, 1e-4, None, |p| {
                    let scores = scores_keeping_leads(backbone, Some(p), t, leads.as_ref())?;
                    Ok(task_loss(scores, t))
                })?
                .0
            }
        })
    }

    /// A training step's forward alone: the prompts from the encoder, tracked, each row
    /// group's loss read (which syncs), nothing taken back. The lama case only.
    fn forward(&self, backbone: &Backbone, encoder: &PromptEncoder) -> Result<()> {
        let Work::Lama {
            groups, every_row, ..
        } = self
        else {
            bail!("--phases applies to the lama case only");
        };
        let prompts = encoder.forward();
        if *every_row {
            let inputs = &groups[0].0;
            let logits = every_row_logits(backbone, prompts, inputs)?;
            let _: f32 = loss(logits, inputs.labels.clone()).into_scalar();
            return Ok(());
        }
        // As `grads_in_groups` does: each group from a leaf of its own, the groups at once.
        (groups.par_iter())
            .map(|(g, _)| {
                let leaf = prompts.clone().detach().require_grad();
                let _: f32 = fact_loss(backbone, leaf, g)?.into_scalar();
                Ok(())
            })
            .collect()
    }

    fn eval(&self, backbone: &Backbone, prompts: &Tensor<2>) -> Result<()> {
        let p = prompts.clone();
        to_host(match self {
            Work::Lama {
                groups,
                every_row: true,
                ..
            } => every_row_logits(backbone, p, &groups[0].0)?,
            Work::Lama { groups, cache, .. } => {
                grouped_logits(backbone, Some(&p), groups, cache.as_ref())?
            }
            Work::Classify { tensors: t, .. } => candidate_scores(backbone, Some(p), t)?,
        })?;
        Ok(())
    }
}

/// The LAMA batch as an RTE-shaped task: each row one example whose two labels (two fixed
/// one-token verbalizers) are scored at its target, the right one alternating.
fn classification(batch: &Batch, backbone: &Backbone, device: &Device) -> Result<TaskTensors> {
    let n = batch.n_prompts;
    let vocab = backbone.vocab_size();
    let labels = [(100 % vocab) as u32, (200 % vocab) as u32];
    let examples: Vec<ScoredExample> = (0..batch.batch_size)
        .map(|i| {
            let position = batch.target_positions[i];
            let target = |token| {
                vec![Target {
                    row: 0,
                    position,
                    token,
                }]
            };
            ScoredExample {
                rows: vec![Row {
                    input_ids: real_ids(batch, i).to_vec(),
                    prompt_positions: batch.prompt_positions[i * n..(i + 1) * n].to_vec(),
                }],
                candidates: labels.iter().map(|&l| target(l)).collect(),
                gold: Some(i % 2),
                index: i,
            }
        })
        .collect();
    let refs: Vec<&ScoredExample> = examples.iter().collect();
    let batch = TaskBatch::collate(&refs, 0)?;
    Ok(TaskTensors::new(&batch, vocab, ScoreNorm::Sum, device))
}

/// Example `i`'s ids without its padding (`--ragged`).
fn real_ids(batch: &Batch, i: usize) -> &[u32] {
    let row = batch.row(i);
    let mask = &batch.attention_mask[i * batch.seq_len..(i + 1) * batch.seq_len];
    &row[..mask.iter().sum::<u32>() as usize]
}

/// The LAMA batch as a multiple-choice task: each example's `--choices` candidates of
/// `--answer-tokens` tokens, the right one rotating. A causal model gets a row per candidate
/// (the context up to `[Y]`, then the candidate's tokens but the last); a masked LM one row whose
/// last `--answer-tokens` positions up to `[Y]` stand for the masks all candidates share.
fn choice(
    batch: &Batch,
    args: &BenchArgs,
    backbone: &Backbone,
    device: &Device,
) -> Result<TaskTensors> {
    let (n, k) = (batch.n_prompts, args.answer_tokens);
    if args.choices == 0 || k == 0 {
        bail!("--choices and --answer-tokens must be at least 1");
    }
    let vocab = backbone.vocab_size();
    let causal = backbone.objective() == Objective::Causal;
    let token = |c: usize, j: usize| ((1000 + 97 * c + 13 * j) % vocab) as u32;
    let examples: Vec<ScoredExample> = (0..batch.batch_size)
        .map(|i| {
            let (ids, prompts) = (
                real_ids(batch, i),
                &batch.prompt_positions[i * n..(i + 1) * n],
            );
            let at = batch.target_positions[i];
            let context = &ids[..=at];
            let rows: Vec<Row> = match causal {
                true => (0..args.choices)
                    .map(|c| Row {
                        input_ids: (context.iter().copied())
                            .chain((0..k - 1).map(|j| token(c, j)))
                            .collect(),
                        prompt_positions: prompts.to_vec(),
                    })
                    .collect(),
                false => vec![Row {
                    input_ids: ids.to_vec(),
                    prompt_positions: prompts.to_vec(),
                }],
            };
            let candidates = (0..args.choices)
                .map(|c| {
                    let (row, first) = match causal {
                        true => (c, at),
                        false => (0, (at + 1).saturating_sub(k)),
                    };
                    (0..k)
                        .map(|j| Target {
                            row,
                            position: first + j,
                            token: token(c, j),
                        })
                        .collect()
                })
                .collect();
            ScoredExample {
                rows,
                candidates,
                gold: Some(i % args.choices),
                index: i,
            }
        })
        .collect();
    let refs: Vec<&ScoredExample> = examples.iter().collect();
    let batch = TaskBatch::collate(&refs, 0)?;
    Ok(TaskTensors::new(&batch, vocab, ScoreNorm::Sum, device))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Ablation {
    SharedPrefix,
    Unpadded,
    TargetRows,
    PrefixCache,
    FusedAttention,
    KeptLeads,
    RowGroups,
    FusedActivations,
    GroupedKv,
    FusedAdam,
    OneBufferMatmul,
}

#[derive(Debug, Serialize)]
struct Measurement {
    model: String,
    case: Case,
    backend: String,
    precision: &'static str,
    /// bf16 weights multiplied in f32: libtorch on a CPU without AVX-512 (docs/backends.md).
    bf16_matmuls_in_f32: bool,
    /// The cargo profile this bench was built in: `release` (what `cargo xtask` runs) or `dev`.
    build: &'static str,
    threads: usize,
    batch_size: usize,
    seq_len: usize,
    n_prompts: usize,
    /// Optimizations turned off for this run (with `--paired`: for `paired_ablated` only).
    ablated: Vec<Ablation>,
    load_seconds: f64,
    train_examples_per_s: f64,
    eval_examples_per_s: f64,
    /// Resident memory when the run starts (runtime loaded, no model yet).
    base_rss_mb: f64,
    /// Peak resident memory once the model is loaded, before any step.
    load_peak_rss_mb: f64,
    peak_rss_mb: f64,
    /// With `--paired`: the rates with `ablated` turned off, timed in turn with the others.
    paired_ablated: Option<Rates>,
    /// With `--phases`: a step's parts, in milliseconds.
    phases_ms: Option<Phases>,
}

/// A training step and its parts, milliseconds: means over `--steps` (`step` and `eval` as the
/// rates time them: with `--paired`, medians). See `--phases`.
#[derive(Debug, Serialize)]
struct Phases {
    /// The whole training step, as `train_examples_per_s` times it.
    step: f64,
    /// Its forward alone: encoder, backbone, loss.
    forward: f64,
    /// The prompt encoder's forward and backward (of its output's sum) alone.
    encoder: f64,
    /// Adam's step on the encoder alone (its gradients taken, untimed, before each).
    adam: f64,
    /// An evaluation step, as `eval_examples_per_s` times it.
    eval: f64,
}

/// Times [`Phases`]' parts after the usual steps; `step` and `eval` are those steps' seconds.
fn phases(
    args: &BenchArgs,
    work: &Work,
    backbone: &Backbone,
    encoder: PromptEncoder,
    (step, eval): (f64, f64),
) -> Result<Phases> {
    let ms = |seconds: Vec<f64>| seconds[0] * 1e3;
    let forward = timed_rounds(1, args.steps, |_| work.forward(backbone, &encoder))?;
    let encoder_only =
        |e: &PromptEncoder| GradientsParams::from_grads(e.forward().sum().backward(), e);
    let alone = timed_rounds(1, args.steps, |_| {
        encoder_only(&encoder);
        Ok(())
    })?;
    let (mut optim, mut encoder, mut adam) = (optimizer(5e-4, None), encoder, vec![]);
    for round in 0..=args.steps {
        let grads = encoder_only(&encoder);
        let start = Instant::now();
        encoder = optim.step(1e-4, encoder, grads);
        if round > 0 {
            adam.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(Phases {
        step: step * 1e3,
        forward: ms(forward),
        encoder: ms(alone),
        adam: adam.iter().sum::<f64>() / adam.len() as f64 * 1e3,
        eval: eval * 1e3,
    })
}

/// Examples per second (from the median step time: see [`timed_rounds`]).
#[derive(Debug, Serialize)]
struct Rates {
    train_examples_per_s: f64,
    eval_examples_per_s: f64,
}

fn run(args: &BenchArgs) -> Result<()> {
    if args.steps == 0 || args.batch_size == 0 {
        bail!("--steps and --batch-size must be at least 1");
    }
    if args.phases && args.case != Case::Lama {
        bail!("--phases applies to the lama case only");
    }
    let template = Template::parse(&args.template)?;
    let base_rss_mb = proc_status_mb("VmRSS");
    let device = args.compute.device()?.autodiff();
    let start = Instant::now();
    let precision = args.compute.precision;
    let backbone = match args.model.strip_prefix("random:") {
        Some(name) => {
            let config = shape(name).with_context(|| {
                format!("unknown shape `{name}`: use one of {}", SHAPES.join(", "))
            })?;
            Backbone::load_as(&config, &RandomWeights::new(&config, 1), &device, precision)?
        }
        None => args
            .compute
            .backbone(&ModelBundle::open(&args.model)?, &device)?,
    };
    let load_seconds = start.elapsed().as_secs_f64();
    let load_peak_rss_mb = proc_status_mb("VmHWM");
    template.validate(backbone.objective(), PromptMode::PTuning)?;
    let batch = synthetic_batch(&template, args, &backbone)?;
    // With --paired the first work keeps every optimization and the second has the ablations.
    let ablated = match args.paired {
        true => &[][..],
        false => &args.ablate[..],
    };
    let ablations = [ablated, &args.ablate[..]];
    let mut works = vec![work(args, ablations[0], &batch, &backbone, &device)?];
    if args.paired {
        works.push(work(args, ablations[1], &batch, &backbone, &device)?);
    }
    let config = PromptEncoderConfig::new(
        EncoderKind::Lstm,
        template.n_prompts(),
        backbone.hidden_size(),
    );
    let mut encoder = Some(config.init(&device)?);
    let mut optim = optimizer(5e-4, None);
    let fuse = |w: usize| {
        let on = |a| !ablations[w].contains(&a);
        ptune_backbone::fuse_activations(on(Ablation::FusedActivations));
        ptune_backbone::attention::group_kv_heads(on(Ablation::GroupedKv));
        ptune_train::adam::fuse_adam(on(Ablation::FusedAdam));
        ptune_kernels::one_buffer_matmuls(on(Ablation::OneBufferMatmul));
    };
    let train = timed_rounds(works.len(), args.steps, |w| {
        fuse(w);
        let stepped = works[w].train(&backbone, encoder.take().expect("put back"), &mut optim)?;
        encoder = Some(stepped);
        Ok(())
    })?;
    let encoder = encoder.expect("put back");
    let prompts: Tensor<2> = encoder.forward().detach();
    let eval_switches = |w: usize| {
        let fused = !ablations[w].contains(&Ablation::FusedAttention);
        ptune_backbone::attention::fuse_attention(fused);
        fuse(w);
    };
    let eval = timed_rounds(works.len(), args.steps, |w| {
        eval_switches(w);
        works[w].eval(&backbone, &prompts)
    })?;
    // The eval rounds left the last work's switches on; the parts are timed as work 0.
    eval_switches(0);
    let phases_ms = match args.phases {
        true => Some(phases(
            args,
            &works[0],
            &backbone,
            encoder,
            (train[0], eval[0]),
        )?),
        false => None,
    };
    let rate = |seconds: f64| args.batch_size as f64 / seconds;
    let m = Measurement {
        model: args.model.clone(),
        case: args.case,
        backend: args.compute.backend.name(),
        precision: precision.name(),
        bf16_matmuls_in_f32: ptune_backbone::precision::bf16_matmuls_widened(),
        build: if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
        threads: threads(&args.compute),
        batch_size: args.batch_size,
        seq_len: args.seq_len,
        n_prompts: template.n_prompts(),
        ablated: args.ablate.clone(),
        load_seconds,
        train_examples_per_s: rate(train[0]),
        eval_examples_per_s: rate(eval[0]),
        base_rss_mb,
        load_peak_rss_mb,
        peak_rss_mb: proc_status_mb("VmHWM"),
        paired_ablated: args.paired.then(|| Rates {
            train_examples_per_s: rate(train[1]),
            eval_examples_per_s: rate(eval[1]),
        }),
        phases_ms,
    };
    println!("{}", serde_json::to_string(&m)?);
    Ok(())
}

/// Seconds per step of each of `n` works: one warm-up round, then `steps` timed rounds, each
/// taking one step of every work in turn. The mean, as the peers report it; with several works
/// (`--paired`) the median (nearest rank: the lower middle of an even count), which a burst of
/// load on a shared machine moves least.
fn timed_rounds(
    n: usize,
    steps: usize,
    mut step: impl FnMut(usize) -> Result<()>,
) -> Result<Vec<f64>> {
    let mut times = vec![Vec::with_capacity(steps); n];
    for round in 0..=steps {
        for (w, seconds) in times.iter_mut().enumerate() {
            let start = Instant::now();
            step(w)?;
            if round > 0 {
                seconds.push(start.elapsed().as_secs_f64());
            }
        }
    }
    let typical = |mut t: Vec<f64>| match n {
        1 => Ok(t.iter().sum::<f64>() / t.len() as f64),
        _ => {
            t.sort_by(f64::total_cmp);
            percentile(&t, 0.5).context("--steps must be at least 1")
        }
    };
    times.into_iter().map(typical).collect()
}

/// What a step computes for `args.case`, with the optimizations `ablate` names turned off.
fn work(
    args: &BenchArgs,
    ablate: &[Ablation],
    batch: &Batch,
    backbone: &Backbone,
    device: &Device,
) -> Result<Work> {
    if args.case != Case::Classification && ablate.contains(&Ablation::KeptLeads) {
        bail!("--ablate kept-leads applies to the classification case only")
    }
    Ok(match args.case {
        Case::Lama => {
            let every_row = ablate.contains(&Ablation::TargetRows);
            let kept = !ablate.contains(&Ablation::PrefixCache);
            let n = match every_row || ablate.contains(&Ablation::RowGroups) {
                true => 1,
                false => row_groups(device, batch.batch_size),
            };
            let mut groups = grouped(batch, n, device);
            for (g, _) in &mut groups {
                ablate_layout(&mut g.shared_prefix, ablate);
            }
            Work::Lama {
                every_row,
                groups,
                cache: kept.then(PrefixCache::default),
            }
        }
        _ if ablate.contains(&Ablation::TargetRows) => {
            bail!("--ablate target-rows applies to the lama case only")
        }
        _ if ablate.contains(&Ablation::PrefixCache) => {
            bail!("--ablate prefix-cache applies to the lama case only")
        }
        _ if ablate.contains(&Ablation::RowGroups) => {
            bail!("--ablate row-groups applies to the lama case only")
        }
        case => {
            let mut tensors = match case {
                Case::Choice => choice(batch, args, backbone, device)?,
                _ => classification(batch, backbone, device)?,
            };
            ablate_layout(&mut tensors.rows.shared_prefix, ablate);
            let kept = case == Case::Classification && !ablate.contains(&Ablation::KeptLeads);
            Work::Classify {
                tensors: Box::new(tensors),
                leads: kept.then(PrefixCache::default),
            }
        }
    })
}

/// `target_logits` with the `target-rows` optimization off: the last layer at every position.
fn every_row_logits(
    backbone: &Backbone,
    prompts: Tensor<2>,
    inputs: &BatchTensors,
) -> Result<Tensor<2>> {
    let embeds = inputs.splice(backbone.embed_tokens(inputs.ids.clone()), prompts);
    let rows: Vec<(usize, usize)> = inputs.targets.iter().copied().enumerate().collect();
    let hidden = backbone.forward_embeds(embeds, inputs.mask.clone());
    Ok(backbone.lm_logits(Backbone::gather_rows(hidden, &rows))?)
}

/// Turns off the row-layout optimizations `ablate` names.
fn ablate_layout(layout: &mut ptune_backbone::SharedPrefix, ablate: &[Ablation]) {
    if ablate.contains(&Ablation::SharedPrefix) {
        (layout.len, layout.group) = (0, Vec::new());
    }
    if ablate.contains(&Ablation::Unpadded) {
        layout.lengths.clear();
    }
}

/// A batch laid out as the template lays out a query (`[CLS]`/`[SEP]` around a masked LM's, one
/// token per anchor text, the object as `[MASK]` or, for a causal LM, the end of the query), with
/// the subject stretched so every example has `--seq-len` tokens. Prompt slots hold id 0.
fn synthetic_batch(template: &Template, args: &BenchArgs, backbone: &Backbone) -> Result<Batch> {
    let (b, t) = (args.batch_size, args.seq_len);
    let masked = backbone.objective() == Objective::Masked;
    let fixed: usize = template
        .parts()
        .take_while(|p| masked || **p != Part::Object)
        .map(|p| match p {
            Part::Prompt(n) => *n,
            // Bench templates are LAMA's (`Template::parse`), which have no fields.
            Part::Subject | Part::Field(_) => 0,
            Part::Object | Part::Text(_) => 1,
        })
        .sum::<usize>()
        + if masked { 2 } else { 0 };
    if fixed >= t {
        bail!("--seq-len {t} leaves no room for the subject: the template takes {fixed} tokens");
    }
    backbone.check_length(t)?;
    let vocab = backbone.vocab_size();
    let (mut ids, mut prompts, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    let mut leads = Vec::with_capacity(b);
    let mut mask = Vec::with_capacity(b * t);
    for e in 0..b {
        let room = t - fixed;
        let subject = room - if args.ragged { e * (room / 2) / b } else { 0 };
        let token = |i: usize| ((e * t + i) * 7919 % (vocab - 1) + 1) as u32;
        let mut row = Vec::with_capacity(t);
        if masked {
            row.push(token(0));
        }
        for part in template.parts() {
            match part {
                Part::Prompt(n) => {
                    prompts.extend(row.len()..row.len() + n);
                    row.extend(std::iter::repeat_n(0, *n));
                }
                Part::Subject | Part::Field(_) => {
                    let at = row.len();
                    leads.push(at);
                    row.extend((at..at + subject).map(token));
                }
                Part::Text(_) => row.push(token(row.len())),
                Part::Object if masked => {
                    targets.push(row.len());
                    row.push(token(row.len()));
                }
                Part::Object => {
                    targets.push(row.len() - 1);
                    break;
                }
            }
        }
        if masked {
            row.push(token(row.len()));
        }
        debug_assert_eq!(row.len(), t - (room - subject));
        mask.extend((0..t).map(|i| u32::from(i < row.len())));
        row.resize(t, 0);
        ids.extend(row);
    }
    Ok(Batch {
        input_ids: ids,
        attention_mask: mask,
        batch_size: b,
        seq_len: t,
        n_prompts: template.n_prompts(),
        prompt_positions: prompts,
        target_positions: targets,
        object_ids: (0..b).map(|i| ((i * 31 + 5) % vocab) as u32).collect(),
        fact_indices: (0..b).collect(),
        prompt_spans: Vec::new(),
        leads,
    })
}

/// Worker threads: `--threads`, else the variable the backend's thread pool reads
/// (`RAYON_NUM_THREADS`, or `OMP_NUM_THREADS` for libtorch) when set, else the cores available.
fn threads(compute: &Compute) -> usize {
    if let Some(n) = compute.threads {
        return n as usize;
    }
    let var = match compute.backend {
        Backend::Tch | Backend::TchCuda => "OMP_NUM_THREADS",
        _ => "RAYON_NUM_THREADS",
    };
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A memory line of /proc/self/status (`VmRSS`, `VmHWM`) in MiB; 0 where /proc is unavailable.
fn proc_status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classification and choice cases train and score on a masked and a causal model,
    /// with and without shared prefixes; `--ablate target-rows` (a LAMA-case switch) is refused.
    #[test]
    fn the_task_cases_run_on_masked_and_causal_models() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ptune-backbone/tests/fixtures/"
        );
        for (model, template) in [("bert", "3,3,3"), ("gpt2", "[P:3] [X] [P:3] [Y]")] {
            let path = format!("{dir}{model}");
            let args = |extra: &[&str]| {
                let base = [
                    "bench",
                    "--model",
                    &path,
                    "--template",
                    template,
                    "--steps",
                    "1",
                ];
                BenchArgs::parse_from(base.iter().chain(["--seq-len", "16"].iter()).chain(extra))
            };
            for case in ["classification", "choice"] {
                run(&args(&["--case", case])).unwrap();
                run(&args(&["--case", case, "--ablate", "shared-prefix"])).unwrap();
                run(&args(&[
                    "--case", case, "--ragged", "--ablate", "unpadded", "--paired",
                ]))
                .unwrap();
                let err = run(&args(&["--case", case, "--ablate", "target-rows"])).unwrap_err();
                assert!(err.to_string().contains("lama case only"), "{err}");
            }
            let err = run(&args(&["--case", "choice", "--ablate", "kept-leads"])).unwrap_err();
            assert!(
                err.to_string().contains("classification case only"),
                "{err}"
            );
        }
    }

    /// A passage before the prompts, kept apart in training and not: both run, ragged too.
    #[test]
    fn the_classification_case_keeps_passages_apart() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ptune-backbone/tests/fixtures/llama_gqa_tied"
        );
        let base = ["bench", "--model", path, "--template", "[X] [P:3] [Y]"];
        let more = [
            "--steps",
            "2",
            "--seq-len",
            "24",
            "--case",
            "classification",
            "--ragged",
            "--ablate",
            "kept-leads",
            "--paired",
        ];
        run(&BenchArgs::parse_from(base.iter().chain(&more))).unwrap();
    }

    #[test]
    fn refuses_templates_a_model_cannot_use() {
        let gpt2 = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ptune-backbone/tests/fixtures/gpt2"
        );
        let bench = |template: &str, needle: &str| {
            let args = [
                "bench",
                "--model",
                gpt2,
                "--template",
                template,
                "--steps",
                "1",
            ];
            let err = format!("{:#}", run(&BenchArgs::parse_from(args)).unwrap_err());
            assert_eq!(
                err.trim().lines().count(),
                1,
                "one sentence expected: {err}"
            );
            assert!(err.contains(needle), "expected {needle:?} in: {err}");
        };
        bench("[Y] [X] [P:3]", "puts the subject [X] after [Y]");
        bench("[X] [Y]", "has no prompt slots");
        bench(
            "[P:18446744073709551615] [X] [Y]",
            "a template may have at most 512",
        );
    }
}
