//! `ptune train`: P-tune one relation or many, and report against the manual prompt.

mod checkpoint;
mod hparams;
mod mix;
mod relation;
mod report;
mod rundir;
pub mod task;

pub use hparams::{Hparams, Init, Preset};
pub use relation::{EpochRecord, FactCounts, RelationData, RelationResult, Trainer};
pub use rundir::RunDir;

use crate::device::Compute;
use crate::model::PrefixCache;
use crate::output::{RunLog, write_json};
use crate::rank::Items;
use crate::spec::tokenizer_spec;
use anyhow::{Context, Result, bail};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::task::TaskDef;
use ptune_data::{
    Fact, LamaDataset, PromptMode, Query, QueryBuilder, Relation, Split, Template, TokenizerSpec,
    VocabStrategy,
};
use ptune_encoder::EncoderKind;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct TrainArgs {
    /// A model directory, a .gguf file, or a hub id (see `ptune predict --help`).
    #[arg(long, required_unless_present = "resume")]
    pub model: Option<String>,
    /// Facts in the P-tuning LAMA layout: DIR/relations.jsonl and
    /// DIR/fact-retrieval/original/<relation>/{train,dev,test}.jsonl.
    #[arg(long, required_unless_present_any = ["resume", "tasks"])]
    pub data: Option<PathBuf>,
    /// A task instead of LAMA facts (repeatable): a task file (JSON: named fields, a template
    /// with [field] slots, prompts and [Y], label verbalizers or per-example choices, the
    /// train/dev/test files; see docs/tasks.md) or a built-in task: boolq, cb, copa, multirc, record, rte, wic, wsc
    /// (SuperGLUE with the P-tuning authors' few-shot patterns; needs --task-data). Scores are
    /// accuracy: P@1 over each example's candidates.
    #[arg(long = "task", value_name = "FILE|NAME", conflicts_with_all = ["data", "relations", "all_relations", "template"])]
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The folder the tasks' data files are read from, instead of each task file's own folder
    /// (for the built-in tasks: FewGLUE's folder, holding RTE/train.jsonl, RTE/dev32.jsonl, ...).
    #[arg(long, value_name = "DIR", requires = "tasks")]
    #[serde(default)]
    pub task_data: Option<PathBuf>,
    /// Relation id to train (repeatable), e.g. --relation P36 --relation P30.
    #[arg(long = "relation", conflicts_with = "all_relations")]
    pub relations: Vec<String>,
    /// Train every relation that has train, dev and test splits.
    #[arg(long)]
    pub all_relations: bool,
    /// Train the relations together: each step runs the next batch of every relation still
    /// training in one forward pass of the shared model. Each relation keeps its own batches,
    /// optimizer state, dev selection and early stop (its numbers are those of training it
    /// alone), and the run takes fewer, fuller forward passes.
    #[arg(long, conflicts_with_all = ["tasks", "multi_token"])]
    #[serde(default)]
    pub mix: bool,
    /// Keep facts whose object is several tokens: every fact is then ranked among the
    /// relation's objects (all splits), each scored by the sum of its tokens' log-probabilities
    /// (a masked LM's at as many masks), and the prompts are trained with cross-entropy over
    /// them (see --train-candidates). One-token objects rank as with `--vocab candidates`.
    /// Prompts start from each relation's manual words.
    #[arg(long, conflicts_with_all = ["tasks", "template", "vocab"])]
    #[serde(default)]
    pub multi_token: bool,
    /// Score each training example against at most N candidates per step: its right answer
    /// and N - 1 others drawn afresh each step (a sampled softmax; a relation has hundreds of
    /// objects) [default: 32 with --multi-token, else every candidate].
    #[arg(long, value_name = "N")]
    #[serde(default)]
    pub train_candidates: Option<usize>,
    /// Template: `[P:n]` prompts (at most 512 in all), `[X]` subject, `[Y]` object, other text
    /// literal; `3,3,3` is the paper's (3, sub, 3, obj, 3). Default: `3,3,3` for a masked LM,
    /// `[P:3] [X] [P:3] [Y]` for a causal LM (the object must come last).
    #[arg(long)]
    pub template: Option<String>,
    /// Prompt encoder.
    #[arg(long, value_enum, default_value = "lstm")]
    pub encoder: EncoderKind,
    /// Where the prompts start: `manual` replaces each relation's manual-template words (a
    /// task's pattern words) by prompt slots that start at those words' embeddings, so epoch 0
    /// scores as the manual prompt (the template is then the relation's own: not with
    /// --template); `random` is the paper's start, and trains a task's own `[P]` slots
    /// [default: fast manual, paper random; random when --template is given].
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// Ranking vocabulary.
    #[arg(long, value_enum, default_value = "original")]
    pub vocab: VocabStrategy,
    /// Hyperparameter defaults; every one can be overridden below.
    #[arg(long, value_enum, default_value = "fast")]
    pub preset: Preset,
    /// Adam's learning rate [default: fast 1e-3, paper 1e-5].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Adam's L2 weight decay [default: 5e-4].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate factor applied after each epoch, in (0, 1] [default: fast 0.9, paper 0.98].
    #[arg(long)]
    pub lr_decay: Option<f64>,
    /// Steps of linear warm-up from 0 to --lr [default: fast 10, paper 0].
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Training facts per step [default: 8].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Most epochs per relation [default: fast 6, paper 100].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Early stop after this many epochs without a better dev P@1 [default: fast 3, paper 20].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Run at least this many optimizer steps per relation: small relations get more epochs
    /// (an explicit --epochs turns the preset's value off) [default: fast 80, paper 0].
    #[arg(long)]
    pub min_steps: Option<usize>,
    /// Cap each parameter tensor's gradient norm at this value [default: none].
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Seeds encoder initialisation and shuffling: the same seed gives the same run
    /// [default: 34].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use at most this many training facts per relation, counted after filtering (quick
    /// experiments, smoke tests).
    #[arg(long)]
    pub max_train: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub compute: Compute,
    /// Run directory (summary, log, one folder per relation with its prompt pack).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Replace an existing run directory: only one ptune made (it has a .ptune-run marker) that
    /// no other ptune process is using and that holds none of the run's inputs.
    #[arg(long)]
    pub overwrite: bool,
    /// Continue an interrupted run in DIR with the settings it was started with: finished
    /// relations are kept, the current one restarts from its last epoch checkpoint, and the
    /// final metrics equal an uninterrupted run's.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "data", "out", "overwrite"])]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
}

impl TrainArgs {
    fn hparams(&self) -> Hparams {
        let mut h = self.preset.hparams();
        let set = |slot: &mut f64, v: Option<f64>| *slot = v.unwrap_or(*slot);
        set(&mut h.lr, self.lr);
        set(&mut h.weight_decay, self.weight_decay);
        set(&mut h.lr_decay, self.lr_decay);
        h.warmup_steps = self.warmup_steps.unwrap_or(h.warmup_steps);
        h.batch_size = self.batch_size.unwrap_or(h.batch_size);
        h.max_epochs = self.epochs.unwrap_or(h.max_epochs);
        h.patience = self.patience.unwrap_or(h.patience);
        h.seed = self.seed.unwrap_or(h.seed);
        // An explicit --epochs is a cap the user chose: the preset's minimum does not lift it.
        let preset_min = if self.epochs.is_some() {
            0
        } else {
            h.min_steps
        };
        h.min_steps = self.min_steps.unwrap_or(preset_min);
        h.clip_norm = self.clip_norm.or(h.clip_norm);
        h.train_candidates = match self.multi_token {
            true => self.train_candidates.or(Some(32)),
            false => self.train_candidates,
        };
        h.init = match (self.init, &self.template) {
            (Some(init), _) => init,
            (None, Some(_)) => Init::Random,
            (None, None) => h.init,
        };
        h
    }
}

/// The settings with the model and data paths made absolute where they exist, so `run.json`
/// serves `--resume`, `eval` and `predict --pack` from any working directory. A model that is
/// not a path (a hub id, `random:…`) is kept as written.
fn absolute_inputs(args: &TrainArgs) -> Result<TrainArgs> {
    let mut args = args.clone();
    if let Some(model) = args.model.as_mut().filter(|m| Path::new(m).exists()) {
        *model = std::path::absolute(&*model)?.to_string_lossy().into_owned();
    }
    for path in [args.data.as_mut(), args.task_data.as_mut()]
        .into_iter()
        .flatten()
    {
        *path = std::path::absolute(&*path)?;
    }
    for task in args
        .tasks
        .iter_mut()
        .filter(|t| Path::new(t.as_str()).is_file())
    {
        *task = std::path::absolute(&*task)?.to_string_lossy().into_owned();
    }
    Ok(args)
}

/// The settings of a run being resumed, as its `run.json` recorded them, and the record itself.
fn resumed_args(dir: &Path) -> Result<(TrainArgs, serde_json::Value)> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a ptune run directory (no readable run.json)",
            dir.display()
        )
    })?;
    let info: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a ptune run record", path.display()))?;
    let mut args: TrainArgs = serde_json::from_value(info["args"].clone())
        .with_context(|| format!("{} does not record the run's settings", path.display()))?;
    args.out = Some(dir.to_path_buf());
    args.resume = Some(dir.to_path_buf());
    Ok((args, info))
}

/// Refuses to continue a run with a model other than the one it was trained with.
fn check_same_model(
    info: &serde_json::Value,
    identity: &ptune_encoder::BackboneIdentity,
    dir: &Path,
) -> Result<()> {
    let now = serde_json::to_value(identity)?;
    if info["backbone"] != now {
        bail!(
            "the model no longer matches the one {} was trained with (run.json records {}, the model is {now}): restore that model or start a new run",
            dir.display(),
            info["backbone"],
        );
    }
    Ok(())
}

pub fn run(cli: &TrainArgs) -> Result<()> {
    // A resumed run is locked before anything else: two `--resume` of one run never overlap.
    let (held, resumed) = match &cli.resume {
        Some(dir) => (Some(RunDir::open(dir)?), Some(resumed_args(dir)?)),
        None => (None, None),
    };
    let mut args = absolute_inputs(resumed.as_ref().map_or(cli, |(a, _)| a))?;
    // Threads are this machine's choice, not the run's: a resume takes them from its own flags.
    args.compute.threads = cli.compute.threads;
    let args = &args;
    let (model, out) = match (&args.model, &args.out) {
        (Some(m), Some(o)) if args.data.is_some() || !args.tasks.is_empty() => {
            (m.as_str(), o.as_path())
        }
        _ => bail!("--model, --data (or --task) and --out are required (or --resume DIR)"),
    };
    let hparams = args.hparams();
    hparams.validate()?;
    let (kind, vocab) = (args.encoder, args.vocab);
    let tasks = args
        .tasks
        .iter()
        .map(|t| ptune_data::task::TaskDef::find(t, args.task_data.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique_tasks(&tasks)?;
    let input = args.data.as_deref().or(args.task_data.as_deref());
    let inputs = [Path::new(model), input.unwrap_or(Path::new(model))];
    if held.is_none() {
        RunDir::check_new(out, args.overwrite, &inputs)?;
    }
    if args.multi_token && hparams.init == Init::Random {
        bail!(
            "--multi-token starts each relation's prompts from its manual words: drop --init random (or --preset paper's random start: add --init manual)"
        );
    }
    if args.init == Some(Init::Manual) && args.template.is_some() {
        bail!(
            "--init manual builds each relation's template from its manual one; drop --template or pass --init random"
        );
    }
    let dataset = args.data.as_deref().map(LamaDataset::open).transpose()?;
    let relations = match (&dataset, &args.data) {
        (Some(dataset), Some(data)) => pick_relations(dataset, args, data)?,
        _ => Vec::new(),
    };
    let device = args.compute.device()?.autodiff();
    let bundle = ModelBundle::open(model)?;
    let backbone = args.compute.backbone(&bundle, &device)?;
    let spec = tokenizer_spec(&bundle, &backbone)?;
    let template = match (hparams.init, tasks.is_empty()) {
        (_, false) | (Init::Manual, true) => None,
        (Init::Random, true) => {
            let source = args.template.as_deref().unwrap_or(default_template(&spec));
            let template = Template::parse(source)?;
            template.validate(spec.objective, PromptMode::PTuning)?;
            Some(template)
        }
    };
    let identity = crate::pack_use::identity(&bundle, &backbone);
    if let Some((_, info)) = &resumed {
        check_same_model(info, &identity, out)?;
    }
    let finished = |id: &str| match held {
        Some(_) => report::finished_row(&out.join(id)),
        None => Ok(None),
    };
    // Every relation is tokenized before the run directory is made: a relation that cannot be
    // trained stops the command before anything is written.
    let mut work = Vec::new();
    // With --multi-token, each relation as the task that ranks its objects (its pack's record).
    let mut relation_tasks = Vec::new();
    for def in &tasks {
        let (relation, data) =
            task::task_data(def, hparams.init, &bundle, &backbone, &spec, args.max_train)?;
        let item = match finished(&relation.id)? {
            Some(row) => Work::Finished(row),
            None => Work::Train(data),
        };
        work.push((relation, item));
    }
    if let Some(dataset) = &dataset {
        let sources = Sources {
            dataset,
            bundle: &bundle,
            backbone: &backbone,
            spec: &spec,
            template: template.as_ref(),
            vocab,
            max_train: args.max_train,
            model,
        };
        let mut multi_token = |relation: &Relation| -> Result<RelationData> {
            let (def, data) = sources.relation_task(relation)?;
            relation_tasks.push(def);
            Ok(data)
        };
        for relation in relations {
            let item = match finished(&relation.id)? {
                Some(row) => Work::Finished(row),
                None => match match args.multi_token {
                    true => multi_token(&relation),
                    false => sources.relation_data(&relation),
                } {
                    Ok(data) => Work::Train(data),
                    // `--all-relations` trains what it can; a relation named on purpose must train.
                    Err(e) if args.all_relations => {
                        println!("skipping {}: {e:#}", relation.id);
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            work.push((relation, item));
        }
    }
    if work.is_empty() {
        bail!(
            "no relation in {} can be trained (see the lines above)",
            input.unwrap_or(out).display()
        );
    }
    let run_dir = match held {
        Some(dir) => dir,
        None => RunDir::create(out, args.overwrite, &inputs)?,
    };
    let out = run_dir.path();
    on_interrupt(out);
    let task_templates = tasks.iter().map(|t| format!("{} {}", t.name, t.template));
    let template_text = match &template {
        Some(t) => t.to_string(),
        None if !tasks.is_empty() => task_templates.collect::<Vec<_>>().join("; "),
        None => "each relation's manual words as prompts".into(),
    };
    println!(
        "P-tuning {} ({} parameters in {}, hidden {}, {}) with a {} encoder; template {template_text}",
        model,
        burn::module::Module::num_params(&backbone),
        backbone.precision().name(),
        backbone.hidden_size(),
        backbone.head(),
        kind.as_str()
    );
    if resumed.is_none() {
        let info = report::RunInfo::new(args, model, &hparams, &template_text, &identity);
        write_json(&out.join("run.json"), &info)?;
    }
    let log = RunLog::create(&out.join("train.log"), indicatif::MultiProgress::new())?;
    log.quiet(&format!(
        "ptune train {:?}",
        std::env::args().skip(2).collect::<Vec<_>>()
    ));
    let trainer = |id: &str| Trainer {
        backbone: &backbone,
        device: &device,
        hparams: &hparams,
        encoder: kind,
        log: &log,
        label: id.to_string(),
        leads: PrefixCache::default(),
        dev_leads: PrefixCache::default(),
    };
    log.line("facts kept of those in the files, per split (and why the rest were dropped):");
    for (relation, item) in &work {
        let facts = match item {
            Work::Train(data) => &data.facts,
            Work::Finished(row) => &row.facts,
        };
        facts.lines(&relation.id).iter().for_each(|l| log.line(l));
    }
    for (relation, item) in &work {
        if let Work::Train(data) = item {
            let trainer = trainer(&relation.id);
            let params =
                burn::module::Module::num_params(&trainer.encoder_config(data).init(&device)?);
            log.line(&format!(
                "  {:<6} template {} ({params} trainable parameters)",
                relation.id, data.template
            ));
        }
    }
    let n = work.len();
    let mut rows: Vec<Option<report::Row>> = vec![None; n];
    let record = |relation: &Relation, data: &RelationData, result: RelationResult| {
        let dir = out.join(&relation.id);
        let row = report::write_relation(out, vocab, relation, &identity, data, &result)?;
        if let Some(def) = (tasks.iter().chain(&relation_tasks)).find(|t| t.name == relation.id) {
            // The pack's own record of what it answers: fields, the template its prompts were
            // trained in, verbalizers, data.
            let trained = ptune_data::task::TaskDef {
                template: data.template.to_string(),
                ..def.clone()
            };
            write_json(&dir.join("task.json"), &trained)?;
        }
        log.line(&row.line());
        row.warn_if_worse(&log);
        anyhow::Ok(row)
    };
    let mut mixed = Vec::new();
    for (k, (relation, item)) in work.iter().enumerate() {
        let data = match item {
            Work::Train(data) => data,
            Work::Finished(row) => {
                log.line(&format!("{} (finished before)", row.line()));
                row.warn_if_worse(&log);
                rows[k] = Some(row.clone());
                continue;
            }
        };
        let dir = out.join(&relation.id);
        if args.mix {
            let trainer = trainer(&relation.id);
            mixed.push(mix::Entry {
                index: k,
                trainer,
                data,
                dir,
            });
            continue;
        }
        let mut trainer = trainer(&relation.id);
        trainer.label = format!("{} ({}/{n})", relation.id, k + 1);
        let result = trainer.run(data, &dir)?;
        rows[k] = Some(record(relation, data, result)?);
    }
    if !mixed.is_empty() {
        mix::train(mixed, |k, result| {
            let (relation, Work::Train(data)) = &work[k] else {
                unreachable!("only relations to train enter the mix")
            };
            rows[k] = Some(record(relation, data, result)?);
            Ok(())
        })?;
    }
    let rows: Vec<report::Row> = rows.into_iter().flatten().collect();
    report::write_summary(out, &rows)
}

/// Two tasks of one name would share an output folder.
fn check_unique_tasks(tasks: &[ptune_data::task::TaskDef]) -> Result<()> {
    for (i, t) in tasks.iter().enumerate() {
        if tasks[..i].iter().any(|u| u.name == t.name) {
            bail!(
                "two tasks are named {}: each task is trained (and averaged) once",
                t.name
            );
        }
    }
    Ok(())
}

/// What a relation of the run needs: nothing (finished before a resume), or training.
enum Work {
    Finished(report::Row),
    Train(RelationData),
}

/// Ctrl-C ends the run at once: every file is written atomically and the last epoch's checkpoint
/// is complete, so all that is left to say is how to continue.
fn on_interrupt(out: &Path) {
    let out = out.display().to_string();
    let _ = ctrlc::set_handler(move || {
        eprintln!(
            "\ninterrupted: the last completed epoch is checkpointed; continue with `ptune train --resume {out}`"
        );
        std::process::exit(130);
    });
}

fn default_template(spec: &TokenizerSpec) -> &'static str {
    match spec.objective {
        ptune_data::Objective::Masked => "3,3,3",
        ptune_data::Objective::Causal => "[P:3] [X] [P:3] [Y]",
    }
}

fn pick_relations(dataset: &LamaDataset, args: &TrainArgs, data: &Path) -> Result<Vec<Relation>> {
    let complete = |r: &Relation| {
        [Split::Train, Split::Dev, Split::Test]
            .iter()
            .all(|&s| dataset.has_split(&r.id, s))
    };
    if args.all_relations {
        let (all, incomplete): (Vec<Relation>, Vec<Relation>) =
            dataset.relations().iter().cloned().partition(complete);
        for r in incomplete {
            println!("skipping {}: it lacks a train, dev or test file", r.id);
        }
        if all.is_empty() {
            bail!(
                "{} has no relation with train, dev and test splits",
                data.display()
            );
        }
        return Ok(all);
    }
    if let Some(id) = args
        .relations
        .iter()
        .enumerate()
        .find_map(|(i, id)| args.relations[..i].contains(id).then_some(id))
    {
        bail!("--relation {id} is given twice: each relation is trained (and averaged) once");
    }
    if args.relations.is_empty() {
        bail!(
            "name the relations to train with --relation ID (repeatable) or pass --all-relations"
        );
    }
    args.relations
        .iter()
        .map(|id| Ok(dataset.relation(id)?.clone()))
        .collect()
}

/// What every relation's queries are built from.
struct Sources<'a> {
    dataset: &'a LamaDataset,
    bundle: &'a ModelBundle,
    backbone: &'a Backbone,
    spec: &'a TokenizerSpec,
    /// The P-tuning template, or none when each relation's comes from its manual words.
    template: Option<&'a Template>,
    vocab: VocabStrategy,
    max_train: Option<usize>,
    model: &'a str,
}

impl Sources<'_> {
    /// One relation as the task that ranks its objects, all lengths (`--multi-token`), scored
    /// as a relation: P@1, P@10 and MRR among them. The prompts start from its manual words.
    fn relation_task(&self, relation: &Relation) -> Result<(TaskDef, RelationData)> {
        let def = TaskDef::for_relation(self.dataset, relation)?;
        let (bundle, backbone, spec) = (self.bundle, self.backbone, self.spec);
        let (_, mut data) =
            task::task_data(&def, Init::Manual, bundle, backbone, spec, self.max_train)?;
        data.task_test = None;
        Ok((def, data))
    }

    /// Tokenizes one relation's splits (P-tuning template, and the manual one for the baseline).
    fn relation_data(&self, relation: &Relation) -> Result<RelationData> {
        let Self {
            dataset,
            bundle,
            backbone,
            spec,
            template,
            vocab,
            max_train,
            model,
        } = *self;
        let list = crate::vocab::word_list(dataset, vocab, model)?;
        let max_len = backbone.max_positions();
        let manual_template = relation.manual_template()?;
        let manual = QueryBuilder::new(&bundle.tokenizer, spec, &manual_template)?
            .max_len(max_len)
            .with_vocab(list.as_ref());
        let (template, anchor_ids) = match template {
            Some(t) => (t.clone(), Vec::new()),
            None => manual
                .words_as_prompts(&manual_template)
                .with_context(|| format!("--init manual on {}", relation.id))?,
        };
        let builder = QueryBuilder::new(&bundle.tokenizer, spec, &template)?
            .max_len(max_len)
            .with_vocab(list.as_ref());
        let facts = |split| dataset.facts(&relation.id, split);
        let (train_facts, dev_facts, test_facts) = (
            facts(Split::Train)?,
            facts(Split::Dev)?,
            facts(Split::Test)?,
        );
        let mut train = builder.build(&train_facts);
        if let Some(cap) = max_train {
            train.cap(cap);
        }
        let dev = builder.build(&dev_facts);
        let test = builder.build(&test_facts);
        for (name, set) in [("train", &train), ("dev", &dev), ("test", &test)] {
            if set.queries.is_empty() {
                bail!("{} has no usable {name} facts: {}", relation.id, set.report);
            }
        }
        // The baseline sees exactly the facts P-tuning is scored on.
        let baseline = |queries: &[Query], facts: &[Fact]| {
            let kept: Vec<_> = queries
                .iter()
                .map(|q| facts[q.fact_index].clone())
                .collect();
            Items::Facts(manual.build(&kept).queries)
        };
        Ok(RelationData {
            template,
            anchor_ids,
            facts: FactCounts {
                train: train.report,
                dev: dev.report.clone(),
                test: test.report.clone(),
            },
            manual_dev: baseline(&dev.queries, &dev_facts),
            manual_test: baseline(&test.queries, &test_facts),
            train: Items::Facts(train.queries),
            dev: Items::Facts(dev.queries),
            test: Items::Facts(test.queries),
            allowed: crate::vocab::allowed(vocab, &builder, dataset, &relation.id)?,
            pad_id: spec.pad_id,
            task_test: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    fn parsed(extra: &[&str]) -> Hparams {
        use clap::FromArgMatches;
        let base = ["train", "--model", "m", "--data", "d", "--out", "o"];
        let matches = TrainArgs::augment_args(Command::new("train"))
            .try_get_matches_from(base.iter().chain(extra))
            .unwrap();
        TrainArgs::from_arg_matches(&matches).unwrap().hparams()
    }

    /// The fast preset's minimum steps apply unless the user capped the epochs; an explicit
    /// --min-steps always applies; --template turns the manual start off.
    #[test]
    fn explicit_epochs_are_not_lifted_by_the_presets_minimum() {
        assert_eq!(parsed(&[]).min_steps, 80);
        assert_eq!(parsed(&["--epochs", "1"]).min_steps, 0);
        assert_eq!(parsed(&["--epochs", "1", "--min-steps", "9"]).min_steps, 9);
        assert_eq!(parsed(&["--preset", "paper"]).min_steps, 0);
        assert_eq!(parsed(&[]).init, Init::Manual);
        assert_eq!(parsed(&["--template", "3,3,0"]).init, Init::Random);
        assert_eq!(parsed(&["--preset", "paper"]).init, Init::Random);
    }

    /// `--help` states each hyperparameter's default, and the values it states are the presets'.
    #[test]
    fn help_states_the_presets_defaults() {
        let command = TrainArgs::augment_args(Command::new("train"));
        let help = |flag: &str| {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(flag));
            arg.and_then(|a| a.get_help()).unwrap().to_string()
        };
        let (fast, paper) = (Preset::Fast.hparams(), Preset::Paper.hparams());
        type Value = fn(&Hparams) -> String;
        let cases: [(&str, Value); 9] = [
            ("lr", |h| format!("{:e}", h.lr)),
            ("weight-decay", |h| format!("{:e}", h.weight_decay)),
            ("lr-decay", |h| h.lr_decay.to_string()),
            ("warmup-steps", |h| h.warmup_steps.to_string()),
            ("batch-size", |h| h.batch_size.to_string()),
            ("epochs", |h| h.max_epochs.to_string()),
            ("patience", |h| h.patience.to_string()),
            ("seed", |h| h.seed.to_string()),
            ("min-steps", |h| h.min_steps.to_string()),
        ];
        for (flag, value) in cases {
            let (f, p) = (value(&fast), value(&paper));
            let want = match f == p {
                true => format!("[default: {f}]"),
                false => format!("[default: fast {f}, paper {p}]"),
            };
            let text = help(flag).replace('\n', " ");
            assert!(text.contains(&want), "--{flag}: {text:?} lacks {want:?}");
        }
    }
}
