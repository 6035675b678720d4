//! Per-epoch checkpoints of one relation's run: encoder weights, Adam state (keyed by the
//! encoder's parameter ids, which are restored with it), the best prompts and the bookkeeping.
//! Written into a fresh directory that replaces the previous one by rename, so a crash or Ctrl-C
//! leaves either the old checkpoint or the new one, never a mix.

use super::relation::EpochRecord;
use anyhow::{Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor};
use ptune_data::Summary;
use ptune_encoder::io::{read_safetensors, write_safetensors};
use ptune_encoder::{HostTensor, HostTensorExt, NamedTensors, PromptEncoder};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Where a relation's run stands after a completed epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub epochs_done: usize,
    pub step: usize,
    pub manual_test: Summary,
    pub best_dev: Summary,
    pub best_epoch: usize,
    /// The last epoch whose dev P@1 beat every earlier one: patience counts from here. Absent in
    /// checkpoints written before ties stopped extending runs; `best_epoch` stands in.
    #[serde(default)]
    pub last_gain: Option<usize>,
    pub history: Vec<EpochRecord>,
    pub seconds: f64,
    /// The encoder's parameter ids in visiting order: the optimizer state refers to them.
    param_ids: Vec<u64>,
}

impl RunState {
    pub fn new(manual_test: Summary) -> Self {
        Self {
            epochs_done: 0,
            step: 0,
            manual_test,
            best_dev: Summary::default(),
            best_epoch: 0,
            last_gain: None,
            history: Vec::new(),
            seconds: 0.0,
            param_ids: Vec::new(),
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

const BEST: &str = "best_prompts";

pub fn dir(relation_dir: &Path) -> PathBuf {
    relation_dir.join("checkpoint")
}

/// Writes the checkpoint of `state` (its `param_ids` are filled in here): into a fresh directory
/// first, swapped in whole, so a failed write (a full disk) leaves the previous one untouched and
/// nothing half-written behind.
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
    encoder.save(&tmp.join("encoder.safetensors"))?;
    optim
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("saving the optimizer state: {e}"))?;
    let best = NamedTensors::from([(
        BEST.to_string(),
        HostTensor::from_tensor(best_prompts.clone()),
    )]);
    write_safetensors(&tmp.join("best_prompts.safetensors"), &best, None)?;
    let state = RunState {
        param_ids: param_ids(encoder),
        ..state.clone()
    };
    crate::output::write_json(&tmp.join("state.json"), &state)
}

/// Loads the relation's checkpoint, if a complete one exists.
pub fn load(
    relation_dir: &Path,
    device: &Device,
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
    let encoder = PromptEncoder::load(&path.join("encoder.safetensors"), device)?;
    let encoder = encoder.map(&mut RestoreIds(state.param_ids.iter()));
    let optim = fresh_optim
        .load(path.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: unreadable optimizer state: {e:?}", path.display()))?;
    let mut best = read_safetensors(&path.join("best_prompts.safetensors"))?.tensors;
    let best = best
        .remove(BEST)
        .with_context(|| format!("{} lacks the best prompts", path.display()))?;
    Ok(Some(Restored {
        encoder,
        optim,
        best_prompts: best.to_tensor(device),
        state,
    }))
}

fn param_ids(module: &PromptEncoder) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// Gives each parameter the id it had when the checkpoint was written.
struct RestoreIds<'a, I: Iterator<Item = &'a u64>>(I);

impl<'a, I: Iterator<Item = &'a u64>> ModuleMapper for RestoreIds<'a, I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(&id) = self.0.next() else {
            return param;
        };
        let (_, value, mapper) = param.consume();
        Param::from_mapped_value(ParamId::from(id), value, mapper)
    }
}
