//! One relation's run: baseline, P-tuning epochs with dev selection and early stopping, test.

use super::hparams::Hparams;
use crate::eval::{rank_queries, stats};
use crate::model::{BatchTensors, optimizer, train_step};
use anyhow::Result;
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use ptune_backbone::Backbone;
use ptune_data::{AllowedVocab, BatchConfig, BatchPlan, Query, Summary};
use ptune_encoder::{PromptEncoder, PromptEncoderConfig};
use serde::Serialize;
use std::time::Instant;

/// The queries of one relation, already tokenized and filtered.
pub struct RelationData {
    pub train: Vec<Query>,
    pub dev: Vec<Query>,
    pub test: Vec<Query>,
    /// The same test facts under the relation's manual template (no prompts).
    pub manual_test: Vec<Query>,
    pub allowed: AllowedVocab,
    pub pad_id: u32,
}

/// One epoch's record, for the curves and `history.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev: Summary,
    pub lr: f64,
    pub seconds: f64,
}

/// What a relation's run produced.
pub struct RelationResult {
    pub manual_test: Summary,
    pub best_dev: Summary,
    pub test: Summary,
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
    pub encoder: PromptEncoderConfig,
    pub log: &'a crate::output::RunLog,
    pub label: String,
}

impl Trainer<'_> {
    pub fn run(&self, data: &RelationData) -> Result<RelationResult> {
        let start = Instant::now();
        let manual_test = self.evaluate(None, &data.manual_test, data)?;
        let mut encoder = self.encoder.init(self.device)?;
        let mut optim = optimizer(self.hparams.weight_decay);
        let mut history = Vec::new();
        let mut best: Option<(Summary, usize, Tensor<2>)> = None;
        let mut step = 0;
        let bar = self
            .log
            .progress()
            .add(ProgressBar::new(self.hparams.max_epochs as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] epoch {pos}/{len} {msg}")?
                .progress_chars("=> "),
        );
        bar.set_prefix(self.label.clone());
        for epoch in 0..=self.hparams.max_epochs {
            let prompts = encoder.forward().detach();
            let dev = self.evaluate(Some(&prompts), &data.dev, data)?.summary();
            let improved = best.as_ref().is_none_or(|(b, _, _)| dev.p_at_1 >= b.p_at_1);
            if improved {
                best = Some((dev, epoch, prompts));
            }
            if let Some(last) = history.last_mut() {
                let record: &mut EpochRecord = last;
                record.dev = dev;
            }
            self.log.quiet(&format!(
                "{} dev P@1 after {epoch} epochs: {:.4}",
                self.label, dev.p_at_1
            ));
            let since_best = epoch - best.as_ref().map_or(0, |b| b.1);
            if epoch == self.hparams.max_epochs || since_best >= self.hparams.patience {
                break;
            }
            let epoch_start = Instant::now();
            let (trained, train_loss) =
                self.train_epoch(encoder, &mut optim, data, epoch, &mut step)?;
            encoder = trained;
            history.push(EpochRecord {
                epoch: epoch + 1,
                train_loss,
                dev,
                lr: self.hparams.lr_at(epoch, step.saturating_sub(1)),
                seconds: epoch_start.elapsed().as_secs_f64(),
            });
            self.log.quiet(&format!(
                "{} epoch {} loss {train_loss:.4} lr {:.2e} {:.1}s",
                self.label,
                epoch + 1,
                self.hparams.lr_at(epoch, step.saturating_sub(1)),
                epoch_start.elapsed().as_secs_f64()
            ));
            bar.inc(1);
            bar.set_message(format!("loss {train_loss:.3}  dev P@1 {:.3}", dev.p_at_1));
        }
        bar.finish_and_clear();
        let (best_dev, best_epoch, best_prompts) = best.expect("at least one evaluation");
        let test = self
            .evaluate(Some(&best_prompts), &data.test, data)?
            .summary();
        Ok(RelationResult {
            manual_test: manual_test.summary(),
            best_dev,
            test,
            best_epoch,
            epochs_run: history.len(),
            history,
            best_prompts,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    fn evaluate(
        &self,
        prompts: Option<&Tensor<2>>,
        queries: &[Query],
        data: &RelationData,
    ) -> Result<ptune_data::RankStats> {
        let ranks = rank_queries(
            self.backbone,
            prompts,
            queries,
            &data.allowed,
            data.pad_id,
            self.device,
        )?;
        Ok(stats(&ranks))
    }

    /// One pass over the shuffled training queries; returns the encoder and the mean loss.
    fn train_epoch(
        &self,
        mut encoder: PromptEncoder,
        optim: &mut burn::optim::ModuleOptimizer,
        data: &RelationData,
        epoch: usize,
        step: &mut usize,
    ) -> Result<(PromptEncoder, f64)> {
        let config = BatchConfig {
            batch_size: self.hparams.batch_size,
            shuffle_seed: Some(self.hparams.seed),
            bucket_by_length: false,
            drop_last: false,
        };
        let plan = BatchPlan::for_queries(&data.train, &config, epoch as u64)?;
        let mut total = 0.0;
        for i in 0..plan.len() {
            let batch = BatchTensors::new(&plan.batch(i, &data.train, data.pad_id)?, self.device);
            let lr = self.hparams.lr_at(epoch, *step);
            let (updated, loss) = train_step(self.backbone, encoder, optim, &batch, lr)
                .map_err(|e| anyhow::anyhow!("{} epoch {}: {e}", self.label, epoch + 1))?;
            encoder = updated;
            total += loss as f64;
            *step += 1;
        }
        Ok((encoder, total / plan.len().max(1) as f64))
    }
}
