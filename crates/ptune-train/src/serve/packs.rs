//! The packs a server holds on its one model: loaded, listed, unloaded at run time, their
//! prompt matrices stacked into one so any mix of them shares a forward pass.

use crate::device::Compute;
use crate::mixed::{Member, Shared};
use crate::model::PrefixCache;
use crate::pack_use::{PackParts, open_pack};
use crate::spec::tokenizer_spec;
use anyhow::Result;
use burn::tensor::{Device, Tensor};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::TokenizerSpec;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The frozen model and the packs loaded on it, in stacking order.
pub struct PackSet {
    pub model: String,
    bundle: ModelBundle,
    backbone: Backbone,
    spec: TokenizerSpec,
    device: Device,
    packs: Vec<Served>,
    /// The packs' prompt matrices, one after another (`None` with no packs).
    stacked: Option<Tensor<2>>,
    /// The prefixes the packs' templates fix, kept for `stacked` (cleared when it changes).
    cache: PrefixCache,
}

struct Served {
    name: String,
    dir: PathBuf,
    parts: PackParts,
}

/// What `GET /packs` says of a pack.
#[derive(Debug, Clone, Serialize)]
pub struct PackInfo {
    pub name: String,
    /// `relation` (inputs are subjects) or `task` (inputs are the task's fields).
    pub kind: &'static str,
    /// The relation or task it was trained for.
    pub trained_for: String,
    pub template: String,
    pub prompts: usize,
    /// For a task: its fields, which an input gives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    pub dir: String,
}

/// Why a pack could not be added: the HTTP status it answers, and the sentence.
pub struct Refused(pub u16, pub String);

impl PackSet {
    pub fn open(model: &str, compute: Compute) -> Result<Self> {
        let device = compute.device()?;
        let bundle = ModelBundle::open(model)?;
        let backbone = compute.backbone(&bundle, &device)?;
        let spec = tokenizer_spec(&bundle, &backbone)?;
        Ok(Self {
            model: model.to_string(),
            bundle,
            backbone,
            spec,
            device,
            packs: Vec::new(),
            stacked: None,
            cache: PrefixCache::default(),
        })
    }

    /// Loads the pack in `dir` as `name` (default: the relation or task it was trained for).
    pub fn add(&mut self, dir: &Path, name: Option<&str>) -> Result<PackInfo, Refused> {
        let parts = open_pack(dir, &self.bundle, &self.backbone, &self.device)
            .map_err(|e| Refused(422, format!("{e:#}")))?;
        let name = name.map_or_else(|| trained_for(&parts), str::to_string);
        if name.is_empty() || name.contains(['/', '?', '#']) {
            return Err(Refused(
                400,
                format!("{name:?} cannot name a pack (no '/', '?' or '#')"),
            ));
        }
        if self.find(&name).is_some() {
            return Err(Refused(
                409,
                format!(
                    "a pack named {name} is already loaded; unload it first or pick another name"
                ),
            ));
        }
        self.packs.push(Served {
            name,
            dir: dir.to_path_buf(),
            parts,
        });
        self.restack();
        Ok(self.info(self.packs.len() - 1))
    }

    /// Unloads the pack named `name`; false when there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(i) = self.find(name) else {
            return false;
        };
        self.packs.remove(i);
        self.restack();
        true
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.packs.iter().position(|p| p.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.packs.iter().map(|p| p.name.as_str()).collect()
    }

    pub fn infos(&self) -> Vec<PackInfo> {
        (0..self.packs.len()).map(|i| self.info(i)).collect()
    }

    fn info(&self, i: usize) -> PackInfo {
        let p = &self.packs[i];
        PackInfo {
            name: p.name.clone(),
            kind: if p.parts.task.is_some() {
                "task"
            } else {
                "relation"
            },
            trained_for: trained_for(&p.parts),
            template: p.parts.template.to_string(),
            prompts: p.parts.prompts.dims()[0],
            fields: p
                .parts
                .task
                .as_ref()
                .map(|d| d.fields.clone())
                .unwrap_or_default(),
            dir: p.dir.display().to_string(),
        }
    }

    /// Every pack as a member of a mixed batch, in the order of [`stacked`](Self::stacked).
    pub fn members(&self) -> Vec<Member<'_>> {
        let mut base = 0;
        let mut members = Vec::with_capacity(self.packs.len());
        for p in &self.packs {
            members.push(Member {
                template: &p.parts.template,
                task: p.parts.task.as_ref(),
                base,
            });
            base += p.parts.prompts.dims()[0];
        }
        members
    }

    pub fn stacked(&self) -> Option<&Tensor<2>> {
        self.stacked.as_ref()
    }

    /// The prefixes kept for [`stacked`](Self::stacked).
    pub fn cache(&self) -> &PrefixCache {
        &self.cache
    }

    pub fn is_task(&self, i: usize) -> bool {
        self.packs[i].parts.task.is_some()
    }

    pub fn task(&self, i: usize) -> Option<&ptune_data::task::TaskDef> {
        self.packs[i].parts.task.as_ref()
    }

    pub fn shared(&self) -> Shared<'_> {
        Shared {
            bundle: &self.bundle,
            backbone: &self.backbone,
            spec: &self.spec,
            device: &self.device,
        }
    }

    fn restack(&mut self) {
        let all: Vec<Tensor<2>> = self.packs.iter().map(|p| p.parts.prompts.clone()).collect();
        self.stacked = (!all.is_empty()).then(|| Tensor::cat(all, 0));
        self.cache.clear();
    }
}

fn trained_for(parts: &PackParts) -> String {
    match &parts.task {
        Some(def) => def.name.clone(),
        None => parts.pack.relation.clone(),
    }
}
