//! One relation's run: baseline, P-tuning epochs with dev selection and early stopping, test.

use super::checkpoint::{self, RunState};
use super::hparams::Hparams;
use super::task::TaskTest;
use crate::candidates::task_grads;
use crate::model::{PrefixCache, fact_grads, grouped, optimizer, prompts, row_groups};
use crate::rank::{CandidateRanks, Items, stats};
use crate::task_batches::{self, Limits};
use anyhow::Result;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use ptune_backbone::{Backbone, Objective};
use ptune_data::task::ScoredExample;
use ptune_data::task::metrics::TaskScores;
use ptune_data::{AllowedVocab, BatchConfig, BatchPlan, DropReport, Summary, Template};
use ptune_encoder::{EncoderKind, PromptEncoder, PromptEncoderConfig};
use ptune_host::SplitMix64;
use serde::Serialize;
use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

/// The examples of one relation (or task), already tokenized and filtered.
pub struct RelationData {
    /// The P-tuning template of this relation's queries.
    pub template: Template,
    /// The token ids the prompts start from (`--init manual`); empty for a random start.
    pub anchor_ids: Vec<u32>,
    /// Per split, how many facts the files held, how many were kept and why the rest were not.
    pub facts: FactCounts,
    pub train: Items,
    pub dev: Items,
    pub test: Items,
    /// The same dev and test examples under the relation's manual template (no prompts).
    pub manual_dev: Items,
    pub manual_test: Items,
    pub allowed: AllowedVocab,
    pub pad_id: u32,
    /// A task's test examples, for its SuperGLUE scores (none for a relation).
    pub task_test: Option<TaskTest>,
}

/// A relation's fact counts per split, as the terminal, `train.log` and the summary report them.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct FactCounts {
    pub train: DropReport,
    pub dev: DropReport,
    pub test: DropReport,
}

impl FactCounts {
    pub fn splits(&self) -> [(&'static str, &DropReport); 3] {
        [
            ("train", &self.train),
            ("dev", &self.dev),
            ("test", &self.test),
        ]
    }

    /// Three lines (one per split) that fit 80 columns: "P36  train   23 of 84  61 multi-token object".
    pub fn lines(&self, relation: &str) -> Vec<String> {
        self.splits()
            .iter()
            .enumerate()
            .map(|(i, (split, r))| {
                let name = if i == 0 { relation } else { "" };
                format!(
                    "  {name:<6} {split:<5} {:>5} of {:<5} {}",
                    r.kept,
                    r.total,
                    r.reasons()
                )
            })
            .collect()
    }
}

/// One epoch's record, for the curves and `history.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev: Summary,
    pub lr: f64,
    pub seconds: f64,
}

/// What a relation's run produced.
pub struct RelationResult {
    pub manual_dev: Summary,
    pub manual_test: Summary,
    pub best_dev: Summary,
    /// Dev before training: the initial prompts' score.
    pub initial_dev: Summary,
    pub test: Summary,
    /// A task's SuperGLUE scores on test: (P-tuned, manual).
    pub task_scores: Option<(TaskScores, TaskScores)>,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub history: Vec<EpochRecord>,
    /// The prompt matrix at the best dev P@1, computed once from the encoder.
    pub best_prompts: Tensor<2>,
    pub seconds: f64,
}

pub struct Trainer<'a> {
    pub backbone: &'a Backbone,
    pub device: &'a Device,
    pub hparams: &'a Hparams,
    pub encoder: EncoderKind,
    pub log: &'a crate::output::RunLog,
    pub label: String,
    /// The training rows' leads (words before the first prompt), kept for the whole run.
    pub leads: PrefixCache,
    /// The dev rows' leads, scored after every epoch.
    pub dev_leads: PrefixCache,
}

/// A relation's run between two epochs: what its checkpoint holds, and the fixed anchor.
pub struct Lane {
    /// `None` only while an optimizer step holds it.
    encoder: Option<PromptEncoder>,
    pub optim: ModuleOptimizer,
    pub best_prompts: Tensor<2>,
    pub state: RunState,
    pub anchor: Option<Tensor<2>>,
    /// Seconds spent before this process (a resumed run's), and when this process began it.
    elapsed_before: f64,
    start: Instant,
}

impl Lane {
    pub fn encoder(&self) -> &PromptEncoder {
        self.encoder
            .as_ref()
            .expect("the encoder is back after each step")
    }

    /// The current prompt matrix, with gradients to the encoder.
    pub fn prompts(&self) -> Tensor<2> {
        prompts(self.encoder(), self.anchor.as_ref())
    }

    /// Moves the encoder one optimizer update along `grads`. Nothing here can fail, so the
    /// encoder is always back afterwards.
    pub fn update(&mut self, lr: f64, grads: GradientsParams) {
        let encoder = self
            .encoder
            .take()
            .expect("the encoder is back after each step");
        self.encoder = Some(self.optim.step(lr, encoder, grads));
    }
}

impl Trainer<'_> {
    /// Runs (or, from the checkpoint in `dir`, continues) the relation's training.
    pub fn run(&self, data: &RelationData, dir: &Path) -> Result<RelationResult> {
        let mut lane = self.begin(data, dir)?;
        let bar = self.progress_bar(lane.state.epochs_done, data);
        while !self.should_stop(&lane.state, data) {
            let epoch_start = Instant::now();
            let train_loss = self.train_epoch(&mut lane, data)?;
            let seconds = epoch_start.elapsed().as_secs_f64();
            let prompts = lane.prompts().detach();
            let dev = self.dev_score(&prompts, data)?;
            self.end_epoch(&mut lane, prompts, dev, train_loss, seconds, dir)?;
            bar.inc(1);
            bar.set_message(format!("loss {train_loss:.3}  dev P@1 {:.3}", dev.p_at_1));
        }
        bar.finish_and_clear();
        self.finish(lane, data)
    }

    /// The relation's run as its checkpoint in `dir` left it, or a fresh one.
    pub fn begin(&self, data: &RelationData, dir: &Path) -> Result<Lane> {
        let start = Instant::now();
        let initial = self.encoder_config(data).init(self.device)?;
        let anchor = self.anchor(data);
        let optim = optimizer(self.hparams.weight_decay, self.hparams.clip_norm);
        let (encoder, optim, best_prompts, state) =
            match checkpoint::load(dir, self.device, initial.clone(), optim.clone())? {
                Some(c) => {
                    self.log.line(&format!(
                        "{}: resuming after epoch {}",
                        self.label, c.state.epochs_done
                    ));
                    (c.encoder, c.optim, c.best_prompts, c.state)
                }
                None => {
                    let (encoder, optim, prompts, state) =
                        self.fresh(data, initial, optim, anchor.as_ref())?;
                    // The manual pattern's scores can take long (a pass over MultiRC's val is
                    // minutes): kept, so a run stopped in its first epoch resumes after them.
                    checkpoint::save(dir, &encoder, &optim, &prompts, &state)?;
                    (encoder, optim, prompts, state)
                }
            };
        Ok(Lane {
            encoder: Some(encoder),
            optim,
            best_prompts,
            elapsed_before: state.seconds,
            state,
            anchor,
            start,
        })
    }

    /// Books an epoch that ended with `prompts` scoring `dev` after `seconds` of training: the
    /// best prompts so far, the history, patience, and the checkpoint.
    pub fn end_epoch(
        &self,
        lane: &mut Lane,
        prompts: Tensor<2>,
        dev: Summary,
        train_loss: f64,
        seconds: f64,
        dir: &Path,
    ) -> Result<()> {
        let state = &mut lane.state;
        let epoch = state.epochs_done;
        let lr = self.hparams.lr_at(epoch, state.step.saturating_sub(1));
        self.log.quiet(&format!(
            "{} epoch {} loss {train_loss:.4} lr {lr:.2e}",
            self.label,
            epoch + 1
        ));
        self.log.quiet(&format!(
            "{} dev P@1 after {} epochs: {:.4}",
            self.label,
            epoch + 1,
            dev.p_at_1
        ));
        // Ties go to the later epoch, as in the reference; only a gain renews patience, so a
        // flat dev score cannot keep a run going forever.
        if dev.p_at_1 > state.best_dev.p_at_1 {
            state.last_gain = epoch + 1;
        }
        if dev.p_at_1 >= state.best_dev.p_at_1 {
            (state.best_dev, state.best_epoch, lane.best_prompts) = (dev, epoch + 1, prompts);
        }
        state.history.push(EpochRecord {
            epoch: epoch + 1,
            train_loss,
            dev,
            lr,
            seconds,
        });
        state.epochs_done = epoch + 1;
        state.seconds = lane.elapsed_before + lane.start.elapsed().as_secs_f64();
        let encoder = lane.encoder.as_ref().expect("no step in flight");
        checkpoint::save(dir, encoder, &lane.optim, &lane.best_prompts, state)
    }

    /// The test scores of the best prompts, and the run's record. Prompts that started at the
    /// manual prompt (`--init manual`) and never beat it on dev are that prompt, input for
    /// input: its test scores, computed at the start, stand (a pass over a large test split
    /// saved).
    pub fn finish(&self, lane: Lane, data: &RelationData) -> Result<RelationResult> {
        let state = lane.state;
        let (test, test_scores) = match state.best_epoch == 0 && !data.anchor_ids.is_empty() {
            true => (state.manual_test, state.manual_test_scores.clone()),
            false => self.test_scores(Some(&lane.best_prompts), &data.test, data)?,
        };
        Ok(RelationResult {
            manual_dev: state.manual_dev,
            manual_test: state.manual_test,
            task_scores: test_scores.zip(state.manual_test_scores),
            best_dev: state.best_dev,
            initial_dev: state.initial_dev,
            test,
            best_epoch: state.best_epoch,
            epochs_run: state.history.len(),
            history: state.history,
            best_prompts: lane.best_prompts,
            seconds: lane.elapsed_before + lane.start.elapsed().as_secs_f64(),
        })
    }

    /// The relation's encoder: as many prompts as its template has, and with a zero output
    /// when the prompts start from the manual words.
    pub fn encoder_config(&self, data: &RelationData) -> PromptEncoderConfig {
        let n = data.template.n_prompts();
        PromptEncoderConfig::new(self.encoder, n, self.backbone.hidden_size())
            .with_seed(self.hparams.seed)
            .with_zero_output(!data.anchor_ids.is_empty())
    }

    /// The word embeddings of the manual words the prompts start from, `[n_prompt, H]`.
    fn anchor(&self, data: &RelationData) -> Option<Tensor<2>> {
        let ids = &data.anchor_ids;
        if ids.is_empty() {
            return None;
        }
        let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        let n = ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), self.device);
        let rows = self.backbone.embed_tokens(ids).detach();
        Some(rows.reshape([n, self.backbone.hidden_size()]))
    }

    /// The starting point of a new run: the manual-prompt baseline and the initial prompts' dev
    /// score, each computed once.
    fn fresh(
        &self,
        data: &RelationData,
        encoder: PromptEncoder,
        optim: ModuleOptimizer,
        anchor: Option<&Tensor<2>>,
    ) -> Result<(PromptEncoder, ModuleOptimizer, Tensor<2>, RunState)> {
        let manual_dev = self.evaluate(None, &data.manual_dev, data)?.summary();
        let (manual_test, manual_scores) = self.test_scores(None, &data.manual_test, data)?;
        let prompts = prompts(&encoder, anchor).detach();
        let best_dev = self.dev_score(&prompts, data)?;
        self.log.quiet(&format!(
            "{} dev P@1 after 0 epochs: {:.4}",
            self.label, best_dev.p_at_1
        ));
        let mut state = RunState::new(manual_dev, manual_test, best_dev);
        state.manual_test_scores = manual_scores;
        Ok((encoder, optim, prompts, state))
    }

    /// Whether the run is over: every epoch done, or `patience` epochs without a gain once
    /// `min_steps` are done.
    pub fn should_stop(&self, state: &RunState, data: &RelationData) -> bool {
        let h = self.hparams;
        let batches = data.train.len().div_ceil(h.batch_size);
        state.epochs_done == h.epochs_for(batches)
            || (state.step >= h.min_steps && state.epochs_done - state.last_gain >= h.patience)
    }

    fn dev_score(&self, prompts: &Tensor<2>, data: &RelationData) -> Result<Summary> {
        let ranked = self.ranked(Some(prompts), &data.dev, data, Some(&self.dev_leads))?;
        Ok(stats(&ranked.ranks).summary())
    }

    /// A bar over the relation's epochs, at most as many as it may run.
    pub fn progress_bar(&self, done: usize, data: &RelationData) -> ProgressBar {
        let batches = data.train.len().div_ceil(self.hparams.batch_size);
        let epochs = self.hparams.epochs_for(batches);
        let bar = self.log.progress().add(ProgressBar::new(epochs as u64));
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] epoch {pos}/{len} {elapsed}, at most {eta} more {msg}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(self.label.clone());
        bar.set_position(done as u64);
        bar
    }

    fn evaluate(
        &self,
        prompts: Option<&Tensor<2>>,
        items: &Items,
        data: &RelationData,
    ) -> Result<ptune_data::RankStats> {
        Ok(stats(&self.ranked(prompts, items, data, None)?.ranks))
    }

    /// A test split's P@1, P@10 and MRR, and a task's SuperGLUE scores.
    fn test_scores(
        &self,
        prompts: Option<&Tensor<2>>,
        items: &Items,
        data: &RelationData,
    ) -> Result<(Summary, Option<TaskScores>)> {
        let start = Instant::now();
        let ranked = self.ranked(prompts, items, data, None)?;
        let scores = match (items, &data.task_test) {
            (Items::Task(scored, _), Some(test)) => Some(test.scores(scored, &ranked.best)),
            _ => None,
        };
        let summary = stats(&ranked.ranks).summary();
        // A large test split takes a while: the log says how long, for the next run's plans.
        let which = if prompts.is_some() {
            "best prompts"
        } else {
            "manual pattern"
        };
        self.log.quiet(&format!(
            "{} test P@1 of the {which}: {:.4} ({} examples, {:.0}s)",
            self.label,
            summary.p_at_1,
            summary.n,
            start.elapsed().as_secs_f64()
        ));
        Ok((summary, scores))
    }

    /// `leads`: the split's passages kept from one scoring to the next (the dev split's).
    fn ranked(
        &self,
        prompts: Option<&Tensor<2>>,
        items: &Items,
        data: &RelationData,
        leads: Option<&PrefixCache>,
    ) -> Result<CandidateRanks> {
        items.rank(
            self.backbone,
            prompts,
            &data.allowed,
            data.pad_id,
            (leads, self.device),
        )
    }

    /// One optimisation step on the training examples `indices`.
    fn step(
        &self,
        lane: &mut Lane,
        data: &RelationData,
        indices: &[usize],
        lr: f64,
    ) -> Result<f32> {
        let anchor = lane.anchor.as_ref();
        let (grads, loss) = match &data.train {
            Items::Facts(queries) => {
                let chosen = indices.iter().map(|&i| &queries[i]);
                let batch = ptune_data::Batch::collate(chosen, data.pad_id)?;
                let groups = grouped(&batch, row_groups(self.device, indices.len()), self.device);
                fact_grads(self.backbone, lane.encoder(), anchor, &groups)?
            }
            Items::Task(examples, norm) => {
                let sampled = self.sample(examples, indices, lane.state.step);
                let chosen = sampled.iter().map(AsRef::as_ref);
                let causal = self.backbone.objective() == Objective::Causal;
                let parts = task_batches::within(chosen, causal, &Limits::TRAIN);
                let encoder = lane.encoder();
                task_grads(
                    self.backbone,
                    encoder,
                    anchor,
                    &parts,
                    *norm,
                    data.pad_id,
                    Some(&self.leads),
                    self.device,
                )?
            }
        };
        lane.update(lr, grads);
        Ok(loss)
    }

    /// The step's examples, each with at most `--train-candidates` candidates: the right one
    /// and others drawn by the seed, the step and the example (so a resumed run draws the same).
    fn sample<'e>(
        &self,
        examples: &'e [ScoredExample],
        indices: &[usize],
        step: usize,
    ) -> Vec<Cow<'e, ScoredExample>> {
        let draw = |i: usize| {
            let name = format!("candidates/{step}/{i}");
            SplitMix64::for_name(self.hparams.seed, &name).next_u64()
        };
        (indices.iter())
            .map(|&i| match self.hparams.train_candidates {
                Some(n) if examples[i].candidates.len() > n => {
                    Cow::Owned(examples[i].sampled(n, draw(i)))
                }
                _ => Cow::Borrowed(&examples[i]),
            })
            .collect()
    }

    /// The epoch's shuffled training batches (indices into the train split).
    pub fn plan(&self, data: &RelationData, epoch: usize) -> Result<BatchPlan> {
        let config = BatchConfig {
            batch_size: self.hparams.batch_size,
            shuffle_seed: Some(self.hparams.seed),
            drop_last: false,
        };
        Ok(BatchPlan::new(data.train.len(), &config, epoch as u64)?)
    }

    /// One pass over the shuffled training queries; returns the mean loss.
    fn train_epoch(&self, lane: &mut Lane, data: &RelationData) -> Result<f64> {
        let epoch = lane.state.epochs_done;
        let plan = self.plan(data, epoch)?;
        let bar = self.examples_bar(data.train.len() as u64);
        let mut total = 0.0;
        for indices in plan.batches() {
            let lr = self.hparams.lr_at(epoch, lane.state.step);
            let loss = self
                .step(lane, data, indices, lr)
                .map_err(|e| anyhow::anyhow!("{} epoch {}: {e}", self.label, epoch + 1))?;
            total += loss as f64;
            lane.state.step += 1;
            bar.inc(indices.len() as u64);
            bar.set_message(format!("loss {loss:.3}"));
        }
        bar.finish_and_clear();
        Ok(total / plan.len().max(1) as f64)
    }

    /// A bar over one epoch's training examples, with their rate.
    pub fn examples_bar(&self, examples: u64) -> ProgressBar {
        let bar = self.log.progress().add(ProgressBar::new(examples));
        let style = ProgressStyle::with_template(
            "{prefix:>8}   {pos}/{len} examples, {rate}, {eta} left in this epoch {msg}",
        )
        .expect("valid template")
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} examples/s", state.per_sec());
            },
        );
        bar.set_style(style);
        bar.set_prefix(self.label.clone());
        bar
    }
}
