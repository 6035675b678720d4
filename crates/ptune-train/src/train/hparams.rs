//! Training hyperparameters: the paper's procedure as a preset, a fast default for small models,
//! and per-flag overrides.

use serde::{Deserialize, Serialize};

/// A named set of defaults for every hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The reference procedure: Adam lr 1e-5, weight decay 5e-4, ExponentialLR 0.98 per epoch,
    /// batch 8, up to 100 epochs, early stop after 20 without dev improvement.
    Paper,
    /// For small models on a CPU: prompts start from the manual words, lr 1e-3 with 10 warmup
    /// steps, decay 0.9 per epoch, up to 6 epochs (more for a small relation, to reach 80
    /// steps), early stop after 3; learns in minutes.
    Fast,
}

/// Where the prompt vectors start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// From the encoder's seeded random weights, as the paper does.
    #[default]
    Random,
    /// From the relation's manual prompt (a task's pattern without its `[P]` slots): its words
    /// become prompt slots (one per token, where
    /// the words stand), starting at their word embeddings, and the encoder learns a correction
    /// (its output layer starts at zero). Epoch 0 scores exactly as the manual prompt.
    Manual,
}

/// The values a run uses, recorded in its `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hparams {
    pub lr: f64,
    pub weight_decay: f64,
    /// Multiplies the learning rate after every epoch (ExponentialLR's gamma).
    pub lr_decay: f64,
    /// Steps of linear warmup from 0 to `lr` at the start.
    pub warmup_steps: usize,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop after this many epochs without a strictly better dev P@1 (a tie still selects the
    /// later epoch's prompts, as the reference does, but does not extend the run).
    pub patience: usize,
    pub seed: u64,
    /// At least this many optimizer steps per relation: a small relation gets more epochs (an
    /// epoch of 23 facts is 3 steps), and early stopping waits until they are done.
    #[serde(default)]
    pub min_steps: usize,
    /// Caps each parameter tensor's gradient norm (none when absent).
    #[serde(default)]
    pub clip_norm: Option<f64>,
    /// Where the prompts start (runs recorded before this setting started from random).
    #[serde(default)]
    pub init: Init,
    /// At most this many candidates per training example and step (the right one and a fresh
    /// sample of the others); none: every candidate.
    #[serde(default)]
    pub train_candidates: Option<usize>,
}

impl Preset {
    pub fn hparams(self) -> Hparams {
        match self {
            Preset::Paper => Hparams {
                lr: 1e-5,
                weight_decay: 5e-4,
                lr_decay: 0.98,
                warmup_steps: 0,
                batch_size: 8,
                max_epochs: 100,
                patience: 20,
                seed: 34,
                min_steps: 0,
                clip_norm: None,
                init: Init::Random,
                train_candidates: None,
            },
            Preset::Fast => Hparams {
                lr: 1e-3,
                weight_decay: 5e-4,
                lr_decay: 0.9,
                warmup_steps: 10,
                batch_size: 8,
                max_epochs: 6,
                patience: 3,
                seed: 34,
                min_steps: 80,
                clip_norm: None,
                init: Init::Manual,
                train_candidates: None,
            },
        }
    }
}

impl Hparams {
    /// The learning rate of global step `step` (0-based) in epoch `epoch` (0-based).
    pub fn lr_at(&self, epoch: usize, step: usize) -> f64 {
        let warm = if step < self.warmup_steps {
            (step + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        self.lr * warm * self.lr_decay.powi(epoch as i32)
    }

    /// The most epochs a relation with `batches` steps per epoch runs: `max_epochs`, or more
    /// where that is needed to reach `min_steps`.
    pub fn epochs_for(&self, batches: usize) -> usize {
        self.max_epochs
            .max(self.min_steps.div_ceil(batches.max(1)))
            .min(MAX_EPOCHS)
    }

    /// Refuses values that would train nothing, forever, or on a wrong rate, naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let checks = [
            (
                positive(self.lr),
                "--lr must be a positive finite number",
                self.lr.to_string(),
            ),
            (
                self.weight_decay.is_finite() && self.weight_decay >= 0.0,
                "--weight-decay must be a finite number >= 0",
                self.weight_decay.to_string(),
            ),
            (
                positive(self.lr_decay) && self.lr_decay <= 1.0,
                "--lr-decay must be in (0, 1]: it multiplies the learning rate after every epoch",
                self.lr_decay.to_string(),
            ),
            (
                self.batch_size > 0,
                "--batch-size must be at least 1",
                self.batch_size.to_string(),
            ),
            (
                (1..=MAX_EPOCHS).contains(&self.max_epochs),
                "--epochs must be between 1 and 100000",
                self.max_epochs.to_string(),
            ),
            (
                self.clip_norm.is_none_or(positive),
                "--clip-norm must be a positive finite number",
                self.clip_norm.unwrap_or_default().to_string(),
            ),
            (
                self.patience > 0,
                "--patience must be at least 1: with 0 the run would stop before training",
                self.patience.to_string(),
            ),
            (
                self.train_candidates.is_none_or(|n| n >= 2),
                "--train-candidates must be at least 2: the right answer and one other",
                self.train_candidates.unwrap_or_default().to_string(),
            ),
        ];
        match checks.iter().find(|(ok, ..)| !ok) {
            Some((_, message, got)) => anyhow::bail!("{message} (got {got})"),
            None => Ok(()),
        }
    }
}

/// More epochs than any run needs; it also keeps `lr_decay.powi(epoch)` in range.
const MAX_EPOCHS: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_exponential_decay() {
        let h = Preset::Fast.hparams();
        assert!((h.lr_at(0, 0) - h.lr / 10.0).abs() < 1e-12);
        assert!((h.lr_at(0, 9) - h.lr).abs() < 1e-12);
        assert!((h.lr_at(2, 50) - h.lr * 0.81).abs() < 1e-12);
    }
}
