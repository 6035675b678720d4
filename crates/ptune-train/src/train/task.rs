//! `ptune train --task FILE`: a task's examples tokenized into the data a relation's run takes,
//! so tasks and LAMA relations share the trainer, the run directory and the report.

use super::{FactCounts, Init, RelationData};
use crate::rank::Items;
use anyhow::{Context, Result, bail};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::task::metrics::TaskScores;
use ptune_data::task::{Answer, Example, RowBuilder, ScoredExample, TaskDef};
use ptune_data::{
    AllowedVocab, DropReason, DropReport, PromptMode, Relation, Split, TokenizerSpec,
};

/// The task as the run's one "relation" (its name, and its pattern without prompts as the
/// manual template), and its tokenized splits. `Init::Manual` trains the manual pattern with its
/// words as prompt slots starting at their embeddings (epoch 0 scores as the manual pattern);
/// `Init::Random` trains the task's template, prompts and all, from a random start.
pub fn task_data(
    def: &TaskDef,
    init: Init,
    bundle: &ModelBundle,
    backbone: &Backbone,
    spec: &TokenizerSpec,
    max_train: Option<usize>,
) -> Result<(Relation, RelationData)> {
    let defined = def.parsed_template()?;
    if init == Init::Random {
        defined.validate(spec.objective, PromptMode::PTuning)?;
    }
    let manual_template = defined.without_prompts();
    let max_len = backbone.max_positions();
    let manual = RowBuilder::new(&bundle.tokenizer, spec, &manual_template)?.max_len(max_len);
    let (template, anchor_ids) = match init {
        Init::Random => (defined, Vec::new()),
        Init::Manual => manual.words_as_prompts(&manual_template).with_context(|| {
            format!(
                "--init manual on task {}: pass --init random to train its own prompts",
                def.name
            )
        })?,
    };
    template.validate(spec.objective, PromptMode::PTuning)?;
    let rows = RowBuilder::new(&bundle.tokenizer, spec, &template)?.max_len(max_len);
    let labels = rows.label_ids(&def.answer)?;
    let labels = labels.as_deref();
    // Each file is read once; the P-tuning rows and the baseline's come from the same examples.
    let (train_ex, dev_ex, test_ex) = (
        read_split(def, Split::Train)?,
        read_split(def, Split::Dev)?,
        read_split(def, Split::Test)?,
    );
    let (mut train, mut train_report) = scored(&rows, &train_ex, labels, None);
    let (dev, dev_report) = scored(&rows, &dev_ex, labels, None);
    let (test, test_report) = scored(&rows, &test_ex, labels, None);
    if let Some(cap) = max_train.filter(|&c| c < train.len()) {
        let over = train.len() - cap;
        train.truncate(cap);
        train_report.kept = cap;
        *train_report.dropped.entry(DropReason::OverCap).or_default() += over;
    }
    for (name, set, report) in [
        ("train", &train, &train_report),
        ("dev", &dev, &dev_report),
        ("test", &test, &test_report),
    ] {
        if set.is_empty() {
            bail!("task {} has no usable {name} examples: {report}", def.name);
        }
    }
    // The baseline scores exactly the examples P-tuning is scored on.
    let indices = |set: &[ScoredExample]| set.iter().map(|e| e.index).collect::<Vec<_>>();
    let (manual_dev, _) = scored(&manual, &dev_ex, labels, Some(&indices(&dev)));
    let (manual_test, _) = scored(&manual, &test_ex, labels, Some(&indices(&test)));
    let relation = Relation {
        id: def.name.clone(),
        template: manual_template.to_string(),
        label: answer_label(def),
        kind: None,
        description: None,
    };
    let items = |set| Items::Task(set, def.score);
    let data = RelationData {
        template,
        anchor_ids,
        facts: FactCounts {
            train: train_report,
            dev: dev_report,
            test: test_report,
        },
        train: items(train),
        dev: items(dev),
        test: items(test),
        manual_dev: items(manual_dev),
        manual_test: items(manual_test),
        allowed: AllowedVocab::full(backbone.vocab_size()),
        pad_id: spec.pad_id,
        task_test: Some(TaskTest {
            examples: test_ex,
            labels: def.labels().len(),
        }),
    };
    Ok((relation, data))
}

/// A task's test examples as read, for SuperGLUE's scores of the predictions on them.
pub struct TaskTest {
    pub examples: Vec<Example>,
    /// The label count (0 for a choices task).
    pub labels: usize,
}

impl TaskTest {
    /// The scores of `best[i]`, the prediction for `scored[i]`.
    pub fn scores(&self, scored: &[ScoredExample], best: &[usize]) -> TaskScores {
        let chosen: Vec<&Example> = scored.iter().map(|s| &self.examples[s.index]).collect();
        TaskScores::new(&chosen, best, self.labels)
    }
}

/// One split's examples; every one must name its right answer.
pub fn read_split(def: &TaskDef, split: Split) -> Result<Vec<Example>> {
    let path = def.data_file(split)?;
    let examples = def.read_examples(path)?;
    if let Some(e) = examples.iter().find(|e| e.gold.is_none()) {
        bail!(
            "{}, line {}: no right answer; every {split} example needs one to train and score",
            path.display(),
            e.line
        );
    }
    Ok(examples)
}

/// Scored examples (all, or those at `only`) and the count of the dropped ones by reason.
pub fn scored(
    builder: &RowBuilder,
    examples: &[Example],
    labels: Option<&[Vec<u32>]>,
    only: Option<&[usize]>,
) -> (Vec<ScoredExample>, DropReport) {
    let mut report = DropReport {
        total: examples.len(),
        ..DropReport::default()
    };
    let mut out = Vec::new();
    let chosen: Vec<usize> = match only {
        Some(only) => only.to_vec(),
        None => (0..examples.len()).collect(),
    };
    for i in chosen {
        match builder.build_example(&examples[i], labels, i) {
            Ok(s) => out.push(s),
            Err(reason) => *report.dropped.entry(reason).or_default() += 1,
        }
    }
    report.kept = out.len();
    (out, report)
}

/// A short description for the summary's label column: "2 labels", "choices".
fn answer_label(def: &TaskDef) -> String {
    match &def.answer {
        Answer::Label { verbalizers, .. } => format!("{} labels", verbalizers.len()),
        Answer::Choices { .. } => "choices".to_string(),
    }
}
