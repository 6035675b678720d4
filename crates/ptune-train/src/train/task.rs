//! `ptune train --task FILE`: a task's examples tokenized into the data a relation's run takes,
//! so tasks and LAMA relations share the trainer, the run directory and the report.

use super::{FactCounts, RelationData};
use crate::rank::Items;
use anyhow::{Result, bail};
use ptune_backbone::{Backbone, ModelBundle};
use ptune_data::task::{Answer, Example, RowBuilder, ScoredExample, TaskDef};
use ptune_data::{
    AllowedVocab, DropReason, DropReport, PromptMode, Relation, Split, TokenizerSpec,
};

/// The task as the run's one "relation" (its name, and its pattern without prompts as the
/// manual template), and its tokenized splits.
pub fn task_data(
    def: &TaskDef,
    bundle: &ModelBundle,
    backbone: &Backbone,
    spec: &TokenizerSpec,
    max_train: Option<usize>,
) -> Result<(Relation, RelationData)> {
    let template = def.parsed_template()?;
    template.validate(spec.objective, PromptMode::PTuning)?;
    let manual_template = template.without_prompts();
    let max_len = backbone.max_positions();
    let rows = RowBuilder::new(&bundle.tokenizer, spec, &template)?.max_len(max_len);
    let manual = RowBuilder::new(&bundle.tokenizer, spec, &manual_template)?.max_len(max_len);
    let labels = label_ids(def, &rows)?;
    let build = |split, builder: &RowBuilder, kept: Option<&[usize]>| {
        split_examples(def, split, builder, labels.as_deref(), kept)
    };
    let (mut train, train_report) = build(Split::Train, &rows, None)?;
    let (dev, dev_report) = build(Split::Dev, &rows, None)?;
    let (test, test_report) = build(Split::Test, &rows, None)?;
    let mut train_report = train_report;
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
    let (manual_dev, _) = build(Split::Dev, &manual, Some(&indices(&dev)))?;
    let (manual_test, _) = build(Split::Test, &manual, Some(&indices(&test)))?;
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
        anchor_ids: Vec::new(),
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
    };
    Ok((relation, data))
}

/// A label task's verbalizers as token ids, in label order (`None` for a choices task).
pub fn label_ids(def: &TaskDef, rows: &RowBuilder) -> Result<Option<Vec<Vec<u32>>>> {
    Ok(match &def.answer {
        Answer::Label { verbalizers, .. } => Some(rows.verbalizer_ids(verbalizers)?),
        Answer::Choices { .. } => None,
    })
}

/// One split's scored examples (all, or those at `only`) and the drop counts; every example
/// must name its right answer.
pub fn split_examples(
    def: &TaskDef,
    split: Split,
    builder: &RowBuilder,
    labels: Option<&[Vec<u32>]>,
    only: Option<&[usize]>,
) -> Result<(Vec<ScoredExample>, DropReport)> {
    let path = def.data_file(split)?;
    let examples = def.read_examples(path)?;
    if let Some(e) = examples.iter().find(|e| e.gold.is_none()) {
        bail!(
            "{}, line {}: no right answer; every {split} example needs one to train and score",
            path.display(),
            e.line
        );
    }
    Ok(scored(builder, &examples, labels, only))
}

/// Scored examples (all, or those at `only`) and the count of the dropped ones by reason.
fn scored(
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
        let example = &examples[i];
        let built = match labels {
            Some(labels) => builder.build(example, labels, i),
            None => example
                .choices
                .iter()
                .map(|c| builder.answer_ids(c))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|candidates| builder.build(example, &candidates, i)),
        };
        match built {
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
