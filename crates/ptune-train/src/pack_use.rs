//! Loading an exported prompt pack with the model it was trained for, for `ptune eval` and
//! `ptune predict --pack`. The encoder is gone; the pack's matrix is all it takes.

use crate::device::Compute;
use crate::spec::tokenizer_spec;
use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::task::TaskDef;
use ptune_data::{Template, TokenizerSpec, short_message, strip_bom};
use ptune_encoder::{BackboneIdentity, PromptPack};
use std::path::{Path, PathBuf};

/// A pack with the model it was trained for, ready to run.
pub struct LoadedPack {
    pub pack: PromptPack,
    /// The model as given or as the run's run.json recorded it.
    pub model: String,
    pub bundle: ModelBundle,
    pub backbone: Backbone,
    pub spec: TokenizerSpec,
    pub template: Template,
    /// The task a task's pack answers (its `task.json`); `None` for a relation's pack.
    pub task: Option<TaskDef>,
    pub prompts: Tensor<2>,
    pub device: Device,
}

impl LoadedPack {
    /// The model, as a mixed batch shares it.
    pub fn shared(&self) -> crate::mixed::Shared<'_> {
        crate::mixed::Shared {
            bundle: &self.bundle,
            backbone: &self.backbone,
            spec: &self.spec,
            device: &self.device,
        }
    }

    /// The pack as the only member of its batches.
    pub fn member(&self) -> crate::mixed::Member<'_> {
        crate::mixed::Member {
            template: &self.template,
            task: self.task.as_ref(),
            base: 0,
        }
    }
}

/// What a pack trained on this model records, and must match to be used with it.
pub fn identity(bundle: &ModelBundle, backbone: &Backbone) -> BackboneIdentity {
    BackboneIdentity::new(
        bundle.architecture(),
        backbone.hidden_size(),
        bundle.vocab_sha256(),
    )
}

/// `--pack` may name the pack directory or its `prompt.safetensors` / `prompt.json`.
pub fn pack_dir(path: &Path) -> PathBuf {
    match path.extension() {
        Some(_) if path.is_file() => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        _ => path.to_path_buf(),
    }
}

/// A run directory is not a pack: say which of its folders are.
fn refuse_run_dir(dir: &Path) -> Result<()> {
    if !dir.join("run.json").is_file() || dir.join("prompt.json").is_file() {
        return Ok(());
    }
    let mut packs: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("prompt.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    packs.sort();
    anyhow::bail!(
        "{} is a ptune train run directory, not a prompt pack: pass one relation's folder \
         inside it ({})",
        dir.display(),
        match packs.is_empty() {
            true => "it has none finished yet".to_string(),
            false => packs.join(", "),
        }
    )
}

/// The model a pack's run used (`run.json` beside the relation folders), unless given.
pub fn model_for(dir: &Path, model: Option<&str>) -> Result<String> {
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
    // Read (and refused if damaged) before the model's seconds of loading.
    let read = read_pack(&dir)?;
    let device = compute.device()?;
    let recorded = model.is_none();
    let model = model_for(&dir, model)?;
    let opened = ModelBundle::open(&model);
    let bundle = match recorded {
        true => opened.with_context(|| {
            format!("the model {model} recorded in the run's run.json did not load; pass --model")
        })?,
        false => opened?,
    };
    let backbone = compute.backbone(&bundle, &device)?;
    let spec = tokenizer_spec(&bundle, &backbone)?;
    let parts = read.fit(&bundle, &backbone, &device)?;
    Ok(LoadedPack {
        pack: parts.pack,
        model,
        bundle,
        backbone,
        spec,
        template: parts.template,
        task: parts.task,
        prompts: parts.prompts,
        device,
    })
}

/// A pack's own parts, on the device of the model it was checked against.
pub struct PackParts {
    pub pack: PromptPack,
    pub template: Template,
    pub task: Option<TaskDef>,
    pub prompts: Tensor<2>,
}

/// Loads the pack in `dir` (or named by one of its files) for a model already loaded, refusing
/// a pack trained for another model.
pub fn open_pack(
    dir: &Path,
    bundle: &ModelBundle,
    backbone: &Backbone,
    device: &Device,
) -> Result<PackParts> {
    read_pack(&pack_dir(dir))?.fit(bundle, backbone, device)
}

/// A pack as read from its directory, before it meets a model.
struct ReadPack {
    pack: PromptPack,
    template: Template,
    task: Option<TaskDef>,
}

impl ReadPack {
    /// Refuses a model other than the one the pack was trained for; puts the prompts on `device`.
    fn fit(self, bundle: &ModelBundle, backbone: &Backbone, device: &Device) -> Result<PackParts> {
        let id = identity(bundle, backbone);
        let pack = self.pack;
        pack.check_compatible(&id.architecture, id.hidden_size, &id.tokenizer_hash)?;
        let prompts = pack.prompt_tensor(device);
        Ok(PackParts {
            pack,
            template: self.template,
            task: self.task,
            prompts,
        })
    }
}

/// The pack in directory `dir`, with its task (`task.json`, if any) and parsed template.
fn read_pack(dir: &Path) -> Result<ReadPack> {
    refuse_run_dir(dir)?;
    let pack = PromptPack::load(dir)?;
    let task_file = dir.join("task.json");
    let task = task_file
        .is_file()
        .then(|| TaskDef::load(&task_file))
        .transpose()?;
    let template = match &task {
        Some(def) => def.parsed_template()?,
        None => Template::parse(&pack.template)?,
    };
    Ok(ReadPack {
        pack,
        template,
        task,
    })
}
