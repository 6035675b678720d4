//! `ptune train --mix`: the relations' prompt encoders trained in shared batches. Each step
//! takes the next batch of every relation still training and runs them as one mixed-prompt
//! forward pass (the frozen model is shared; see [`crate::mixed`]). Each relation keeps its own
//! batches, learning-rate schedule, Adam state, dev selection, early stop and checkpoint, so its
//! run is the one it has alone, computed in fewer, fuller forward passes; a relation that stops
//! leaves the mix.

use super::relation::{Lane, RelationData, RelationResult, Trainer};
use crate::model::{BatchTensors, check_finite, loss, target_logits, to_host};
use crate::rank::{EVAL_BATCH, Items, rank_rows, stats};
use anyhow::{Result, bail};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use indicatif::ProgressBar;
use ptune_backbone::Backbone;
use ptune_data::{Batch, BatchPlan, RankStats};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

/// A relation to train in the mix: its place in the run's order, its trainer, data and folder.
pub struct Entry<'a> {
    pub index: usize,
    pub trainer: Trainer<'a>,
    pub data: &'a RelationData,
    pub dir: PathBuf,
}

/// A relation of the mix that is still training.
struct Running<'a> {
    entry: Entry<'a>,
    lane: Lane,
    bar: ProgressBar,
}

/// Trains `entries` together; `done(index, result)` gets each relation's result as it stops.
pub fn train(
    entries: Vec<Entry>,
    mut done: impl FnMut(usize, RelationResult) -> Result<()>,
) -> Result<()> {
    let mut active = Vec::new();
    for entry in entries {
        let Items::Facts(_) = entry.data.train else {
            bail!("--mix trains LAMA relations together; train tasks without it");
        };
        let lane = entry.trainer.begin(entry.data, &entry.dir)?;
        let bar = entry
            .trainer
            .progress_bar(lane.state.epochs_done, entry.data);
        active.push(Running { entry, lane, bar });
    }
    loop {
        let (finished, running): (Vec<_>, Vec<_>) = active
            .into_iter()
            .partition(|r| r.entry.trainer.should_stop(&r.lane.state, r.entry.data));
        for r in finished {
            r.bar.finish_and_clear();
            done(r.entry.index, r.entry.trainer.finish(r.lane, r.entry.data)?)?;
        }
        active = running;
        if active.is_empty() {
            return Ok(());
        }
        epoch(&mut active)?;
    }
}

/// One epoch of every running relation: their batches in shared steps, then their dev scores
/// in shared evaluation batches, then each one's bookkeeping and checkpoint.
fn epoch(active: &mut [Running]) -> Result<()> {
    let start = Instant::now();
    let plans = active
        .iter()
        .map(|r| r.entry.trainer.plan(r.entry.data, r.lane.state.epochs_done))
        .collect::<Result<Vec<_>>>()?;
    let losses = train_steps(active, &plans)?;
    let seconds = start.elapsed().as_secs_f64();
    let prompts: Vec<Tensor<2>> = active.iter().map(|r| r.lane.prompts().detach()).collect();
    let devs = dev_scores(active, &prompts)?;
    for ((r, prompts), (dev, loss)) in active.iter_mut().zip(prompts).zip(devs.iter().zip(losses)) {
        let dev = dev.summary();
        (r.entry.trainer).end_epoch(&mut r.lane, prompts, dev, loss, seconds, &r.entry.dir)?;
        r.bar.inc(1);
        r.bar
            .set_message(format!("loss {loss:.3}  dev P@1 {:.3}", dev.p_at_1));
    }
    Ok(())
}

/// Step `k` of the epoch takes batch `k` of every relation that has one; returns each
/// relation's mean loss over its batches.
fn train_steps(active: &mut [Running], plans: &[BatchPlan]) -> Result<Vec<f64>> {
    let examples = active.iter().map(|r| r.entry.data.train.len() as u64).sum();
    let bar = active[0].entry.trainer.examples_bar(examples);
    bar.set_prefix("mix");
    let mut totals = vec![0.0; active.len()];
    let steps = plans.iter().map(BatchPlan::len).max().unwrap_or(0);
    let model = Model::of(active);
    for k in 0..steps {
        let mut parts: Vec<Part> = Vec::with_capacity(active.len());
        let mut which = Vec::with_capacity(active.len());
        for (i, (r, plan)) in active.iter_mut().zip(plans).enumerate() {
            if let Some(indices) = plan.batches().get(k) {
                let state = &r.lane.state;
                let lr = r.entry.trainer.hparams.lr_at(state.epochs_done, state.step);
                let Items::Facts(queries) = &r.entry.data.train else {
                    unreachable!("only relations enter the mix")
                };
                let rows = indices.iter().map(|&q| &queries[q]).collect();
                parts.push(Part {
                    lane: &mut r.lane,
                    rows,
                    lr,
                });
                which.push(i);
            }
        }
        let size: usize = parts.iter().map(|p| p.rows.len()).sum();
        let losses = mixed_step(model, parts)
            .map_err(|e| anyhow::anyhow!("mixed step {} of the epoch: {e}", k + 1))?;
        for (i, loss) in which.into_iter().zip(&losses) {
            totals[i] += *loss as f64;
            active[i].lane.state.step += 1;
        }
        bar.inc(size as u64);
        bar.set_message(format!("{} relations in this step", losses.len()));
    }
    bar.finish_and_clear();
    Ok((totals.iter().zip(plans))
        .map(|(t, plan)| t / plan.len().max(1) as f64)
        .collect())
}

/// What every relation of the run shares: the frozen model, its device, the padding token.
#[derive(Clone, Copy)]
struct Model<'a> {
    backbone: &'a Backbone,
    device: &'a Device,
    pad_id: u32,
}

impl<'a> Model<'a> {
    fn of(active: &[Running<'a>]) -> Self {
        let Running { entry, .. } = &active[0];
        Self {
            backbone: entry.trainer.backbone,
            device: entry.trainer.device,
            pad_id: entry.data.pad_id,
        }
    }
}

/// One relation's share of a mixed step.
struct Part<'a, 'q> {
    lane: &'a mut Lane,
    rows: Vec<&'q ptune_data::Query>,
    lr: f64,
}

/// One optimisation step of several relations in one forward pass. Each relation's loss is
/// the mean over its own rows, as alone; the encoders are disjoint, so the gradient of the
/// losses' sum gives each encoder exactly its own loss's gradient. Returns the losses.
fn mixed_step(model: Model, mut parts: Vec<Part>) -> Result<Vec<f32>> {
    let mut stacked = Vec::with_capacity(parts.len());
    let mut rows = Vec::new();
    let mut spans: Vec<Range<usize>> = Vec::with_capacity(parts.len());
    let mut base = 0;
    for part in &parts {
        let prompts = part.lane.prompts();
        let start = rows.len();
        rows.extend(part.rows.iter().map(|&q| (q, base)));
        spans.push(start..rows.len());
        base += prompts.dims()[0];
        stacked.push(prompts);
    }
    let batch = BatchTensors::new(&Batch::collate_mixed(rows, model.pad_id)?, model.device);
    let logits = target_logits(model.backbone, Some(Tensor::cat(stacked, 0)), &batch, None)?;
    let losses: Vec<Tensor<1>> = spans
        .into_iter()
        .map(|r| {
            loss(
                logits.clone().slice(r.clone()),
                batch.labels.clone().slice(r),
            )
        })
        .collect();
    let values = to_host(Tensor::cat(losses.clone(), 0))?;
    values.iter().try_for_each(|&v| check_finite(v))?;
    let total = (losses.into_iter().reduce(|a, b| a + b)).expect("a mixed step has a relation");
    let mut grads = total.backward();
    for part in parts.iter_mut() {
        let own = GradientsParams::from_module(&mut grads, part.lane.encoder());
        part.lane.update(part.lr, own);
    }
    Ok(values)
}

/// Every running relation's dev ranks under `prompts`, its rows in shared evaluation batches
/// (each ranked over its own relation's vocabulary, as alone).
fn dev_scores(active: &[Running], prompts: &[Tensor<2>]) -> Result<Vec<RankStats>> {
    let mut rows = Vec::new();
    let mut owner = Vec::new();
    let mut base = 0;
    for (i, (r, p)) in active.iter().zip(prompts).enumerate() {
        let Items::Facts(queries) = &r.entry.data.dev else {
            unreachable!("only relations enter the mix")
        };
        rows.extend(queries.iter().map(|q| (q, base)));
        owner.extend(std::iter::repeat_n(i, queries.len()));
        base += p.dims()[0];
    }
    let model = Model::of(active);
    let stacked = Tensor::cat(prompts.to_vec(), 0);
    let allowed_of = |row: usize| &active[owner[row]].entry.data.allowed;
    let (backbone, device, chunk) = (model.backbone, model.device, EVAL_BATCH * active.len());
    let ranks = rank_rows(
        backbone,
        Some(&stacked),
        &rows,
        allowed_of,
        model.pad_id,
        device,
        chunk,
    )?;
    let mut stats_of = vec![Vec::new(); active.len()];
    for (rank, &i) in ranks.into_iter().zip(&owner) {
        stats_of[i].push(rank);
    }
    Ok(stats_of.iter().map(|ranks| stats(ranks)).collect())
}
