//! Per-epoch checkpoints of one relation's run: the encoder and the best prompts as one burn
//! record (which keeps the parameter ids Adam's state is keyed by), Adam's state, and the
//! bookkeeping. Written into a fresh directory that replaces the previous one by rename, so a
//! crash or Ctrl-C leaves either the old checkpoint or the new one, never a mix.

use super::relation::EpochRecord;
use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor};
use ptune_data::Summary;
use ptune_encoder::PromptEncoder;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Where a relation's run stands after a completed epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub epochs_done: usize,
    pub step: usize,
    pub manual_dev: Summary,
    pub manual_test: Summary,
    pub best_dev: Summary,
    /// The dev score of the prompts before training (epoch 0), for the curves.
    #[serde(default)]
    pub initial_dev: Summary,
    pub best_epoch: usize,
    /// The last epoch whose dev P@1 beat every earlier one: patience counts from here.
    pub last_gain: usize,
    pub history: Vec<EpochRecord>,
    pub seconds: f64,
    /// A task's SuperGLUE scores of the manual pattern on test.
    #[serde(default)]
    pub manual_test_scores: Option<ptune_data::task::metrics::TaskScores>,
}

impl RunState {
    /// A run before its first epoch, with the scores of the manual and the initial prompts.
    pub fn new(manual_dev: Summary, manual_test: Summary, initial_dev: Summary) -> Self {
        Self {
            epochs_done: 0,
            step: 0,
            manual_dev,
            manual_test,
            best_dev: initial_dev,
            initial_dev,
            best_epoch: 0,
            last_gain: 0,
            history: Vec::new(),
            seconds: 0.0,
            manual_test_scores: None,
        }
    }
}

/// A restored checkpoint.
pub struct Restored {
    pub encoder: PromptEncoder,
    pub optim: ModuleOptimizer,
    pub best_prompts: Tensor<2>,
    pub state: RunState,
}

/// The weights file: one burn record, which keeps the parameter ids Adam's state refers to.
#[derive(Module, Debug)]
struct Weights {
    encoder: PromptEncoder,
    best_prompts: Param<Tensor<2>>,
}

const WEIGHTS: &str = "weights.bpk";

pub fn dir(relation_dir: &Path) -> PathBuf {
    relation_dir.join("checkpoint")
}

/// Writes the checkpoint of `state`: into a fresh directory first, swapped in whole, so a failed
/// write (a full disk) leaves the previous one untouched and nothing half-written behind.
pub fn save(
    relation_dir: &Path,
    encoder: &PromptEncoder,
    optim: &ModuleOptimizer,
    best_prompts: &Tensor<2>,
    state: &RunState,
) -> Result<()> {
    let target = dir(relation_dir);
    // Named for this process: a temporary directory is never shared, even by mistake.
    let tmp = relation_dir.join(format!("checkpoint.tmp-{}", std::process::id()));
    let old = relation_dir.join("checkpoint.old");
    let _ = fs::remove_dir_all(&tmp);
    if let Err(e) = write_files(&tmp, encoder, optim, best_prompts, state) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = fs::remove_dir_all(&old);
    if target.exists() {
        fs::rename(&target, &old)?;
    }
    fs::rename(&tmp, &target).with_context(|| format!("replacing {}", target.display()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

fn write_files(
    tmp: &Path,
    encoder: &PromptEncoder,
    optim: &ModuleOptimizer,
    best_prompts: &Tensor<2>,
    state: &RunState,
) -> Result<()> {
    fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let weights = Weights {
        encoder: encoder.clone(),
        best_prompts: Param::from_tensor(best_prompts.clone()),
    };
    weights
        .save_file(tmp.join(WEIGHTS))
        .map_err(|e| anyhow::anyhow!("saving the encoder: {e}"))?;
    optim
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("saving the optimizer state: {e}"))?;
    crate::output::write_json(&tmp.join("state.json"), state)
}

/// Loads the relation's checkpoint, if a complete one exists.
pub fn load(
    relation_dir: &Path,
    device: &Device,
    fresh_encoder: PromptEncoder,
    fresh_optim: ModuleOptimizer,
) -> Result<Option<Restored>> {
    let mut path = dir(relation_dir);
    if !path.join("state.json").is_file() {
        // A crash between the two renames of `save` leaves the previous checkpoint here.
        path = relation_dir.join("checkpoint.old");
        if !path.join("state.json").is_file() {
            return Ok(None);
        }
    }
    let state: RunState = serde_json::from_str(&fs::read_to_string(path.join("state.json"))?)
        .with_context(|| format!("{} is not a ptune checkpoint", path.display()))?;
    let shape = [fresh_encoder.n_prompt(), fresh_encoder.hidden()];
    let best = Tensor::zeros(shape, device);
    let fresh = Weights {
        encoder: fresh_encoder,
        best_prompts: Param::from_tensor(best),
    };
    let weights = fresh.try_load_file(path.join(WEIGHTS)).map_err(|e| {
        anyhow::anyhow!(
            "{}: unreadable checkpoint ({e}); one written by an older ptune cannot be resumed: start a new run",
            path.display()
        )
    })?;
    let optim = fresh_optim
        .load(path.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: unreadable optimizer state: {e:?}", path.display()))?;
    Ok(Some(Restored {
        encoder: weights.encoder,
        optim,
        best_prompts: weights.best_prompts.val().detach(),
        state,
    }))
}
