//! Mixed-prompt batches: inputs for several prompt packs answered in one forward pass of the
//! frozen model they share. A pack only replaces input-embedding rows, so the packs' matrices
//! are stacked into one and each row's slots gather from its own pack's rows (its `base`).
//! One pack is the special case `base = 0`: `ptune predict --pack` runs through here too.

use crate::candidates::{TaskTensors, candidate_scores};
use crate::model::{PrefixCache, to_host};
use crate::predict::{Prediction, top_candidates};
use crate::rank::rows_logits;
use crate::task_batches::{self, Limits};
use crate::task_predict::{Scored, ranked};
use anyhow::Result;
use burn::tensor::{Device, Tensor, activation::log_softmax};
use ptune_backbone::{Backbone, ModelBundle, Objective};
use ptune_data::task::{Example, RowBuilder, ScoreNorm, ScoredExample, TaskBatch, TaskDef};
use ptune_data::{Query, QueryBuilder, Template, TokenizerSpec};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// The frozen model every pack in a batch shares.
#[derive(Clone, Copy)]
pub struct Shared<'a> {
    pub bundle: &'a ModelBundle,
    pub backbone: &'a Backbone,
    pub spec: &'a TokenizerSpec,
    pub device: &'a Device,
}

/// One pack's part in a mixed batch: its template, its task (`None`: a relation's pack), and
/// the first row of its prompts in the stacked matrix.
#[derive(Clone, Copy)]
pub struct Member<'a> {
    pub template: &'a Template,
    pub task: Option<&'a TaskDef>,
    pub base: usize,
}

/// The top objects of each `(member, subject)` input, or why it has no query. Inputs of any
/// relation packs share batches of `batch_size` rows. `cache` keeps the prefixes the packs'
/// templates fix, for this `prompts` matrix (a server keeps one across requests); `None`
/// computes them in every batch.
pub fn rank_subjects(
    model: Shared,
    members: &[Member],
    (prompts, cache): (&Tensor<2>, Option<&PrefixCache>),
    inputs: &[(usize, &str)],
    top_k: usize,
    batch_size: usize,
) -> Result<Vec<Result<(Query, Prediction), String>>> {
    let mut builders = BTreeMap::new();
    let mut queries = Vec::with_capacity(inputs.len());
    for &(m, subject) in inputs {
        let builder = match builders.entry(m) {
            Entry::Occupied(built) => built.into_mut(),
            Entry::Vacant(slot) => slot.insert(
                QueryBuilder::new(&model.bundle.tokenizer, model.spec, members[m].template)?
                    .max_len(model.backbone.max_positions()),
            ),
        };
        let query = builder.query_for_subject(subject);
        queries.push(query.map_err(|r| r.describe().to_string()));
    }
    let ready: Vec<(&Query, usize)> = (queries.iter().zip(inputs))
        .filter_map(|(q, &(m, _))| Some((q.as_ref().ok()?, members[m].base)))
        .collect();
    let mut tops = Vec::with_capacity(ready.len());
    let (pad_id, device) = (model.spec.pad_id, model.device);
    for chunk in ready.chunks(batch_size.max(1)) {
        let logits = rows_logits(model.backbone, Some(prompts), chunk, pad_id, device, cache)?;
        let vocab = logits.dims()[1];
        let logprobs = to_host(log_softmax(logits, 1))?;
        for ((query, _), row) in chunk.iter().zip(logprobs.chunks(vocab)) {
            tops.push(Prediction {
                position: query.target_position,
                top: top_candidates(model.bundle, row, top_k),
            });
        }
    }
    let mut tops = tops.into_iter();
    Ok(queries
        .into_iter()
        .map(|q| Ok((q?, tops.next().expect("a prediction per query"))))
        .collect())
}

/// Each `(member, example)` input's candidates, best first, `top_k` kept; or why the example
/// cannot be scored. Inputs of any task packs share batches, one batch per score
/// normalisation, of at most `batch_size` inputs and within the evaluation's limits
/// (`task_batches::Limits::EVAL`: long passages go fewer to a batch).
pub fn rank_answers(
    model: Shared,
    members: &[Member],
    prompts: &Tensor<2>,
    inputs: &[(usize, &Example)],
    top_k: usize,
    batch_size: usize,
) -> Result<Vec<Result<Vec<Scored>, String>>> {
    let built = build_examples(model, members, inputs)?;
    let mut scores: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
    let base_of: Vec<usize> = inputs.iter().map(|&(m, _)| members[m].base).collect();
    let causal = model.backbone.objective() == Objective::Causal;
    // At most `batch_size` inputs a batch, fewer when they are long (a passage each).
    let limits = Limits {
        examples: batch_size.max(1),
        ..Limits::EVAL
    };
    for norm in [ScoreNorm::Sum, ScoreNorm::Mean] {
        let ready = (built.iter().zip(inputs))
            .filter(|(_, (m, _))| def_of(members, *m).score == norm)
            .filter_map(|(b, _)| b.as_ref().ok());
        for examples in task_batches::within(ready, causal, &limits) {
            let bases: Vec<usize> = examples.iter().map(|e| base_of[e.index]).collect();
            let batch = TaskBatch::collate_mixed(&examples, &bases, model.spec.pad_id)?;
            let vocab = model.backbone.vocab_size();
            let tensors = TaskTensors::new(&batch, vocab, norm, model.device);
            let all = candidate_scores(model.backbone, Some(prompts.clone()), &tensors)?;
            let all = to_host(all)?;
            for (example, row) in examples.iter().zip(all.chunks(batch.width)) {
                scores[example.index] = Some(row[..example.candidates.len()].to_vec());
            }
        }
    }
    Ok((built.into_iter().zip(inputs).zip(scores))
        .map(|((b, &(m, example)), row)| {
            b?;
            let row = row.expect("a score row per scored example");
            Ok(ranked(def_of(members, m), example, &row, top_k))
        })
        .collect())
}

/// Each input's rows and candidate targets under its pack's template (`index`: its input
/// position), or why it has none.
fn build_examples(
    model: Shared,
    members: &[Member],
    inputs: &[(usize, &Example)],
) -> Result<Vec<Result<ScoredExample, String>>> {
    let mut builders = BTreeMap::new();
    let mut built = Vec::with_capacity(inputs.len());
    for (i, &(m, example)) in inputs.iter().enumerate() {
        let (rows, labels) = match builders.entry(m) {
            Entry::Occupied(built) => built.into_mut(),
            Entry::Vacant(slot) => {
                let rows =
                    RowBuilder::new(&model.bundle.tokenizer, model.spec, members[m].template)?
                        .max_len(model.backbone.max_positions());
                let labels = rows.label_ids(&def_of(members, m).answer)?;
                slot.insert((rows, labels))
            }
        };
        let scored = rows.build_example(example, labels.as_deref(), i);
        built.push(scored.map_err(|r| r.describe().to_string()));
    }
    Ok(built)
}

fn def_of<'a>(members: &[Member<'a>], m: usize) -> &'a TaskDef {
    members[m]
        .task
        .expect("task inputs name members with a task")
}
