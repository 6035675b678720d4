//! A LAMA relation as a task, so that facts whose object is several tokens can be kept: the
//! subject is the one field (`sub_label`, the files' own key), the relation's objects over every
//! split are the labels, each answered by its own words, and a fact is scored against all of
//! them (`ptune train --multi-token`). One-token objects rank as they do among the relation's
//! candidates (`--vocab candidates`).

use std::collections::BTreeSet;

use super::{Answer, DataFiles, ScoreNorm, TaskDef};
use crate::{Error, LamaDataset, Relation, Result, Split};

/// The field the subject is read from: the key LAMA's files give it.
pub const SUBJECT_FIELD: &str = "sub_label";
const OBJECT_FIELD: &str = "obj_label";

impl TaskDef {
    /// The task of `relation` in `dataset`: its manual template with the subject as the field,
    /// its objects (every split, first seen first) as the labels.
    pub fn for_relation(dataset: &LamaDataset, relation: &Relation) -> Result<Self> {
        let mut seen = BTreeSet::new();
        let mut objects = Vec::new();
        for split in [Split::Train, Split::Dev, Split::Test] {
            for fact in dataset.facts(&relation.id, split)? {
                if seen.insert(fact.object.clone()) {
                    objects.push(fact.object);
                }
            }
        }
        let path = |split| Some(dataset.split_path(&relation.id, split));
        let def = TaskDef {
            name: relation.id.clone(),
            fields: vec![SUBJECT_FIELD.to_string()],
            template: relation
                .template
                .replace("[X]", &format!("[{SUBJECT_FIELD}]")),
            answer: Answer::Label {
                field: OBJECT_FIELD.to_string(),
                verbalizers: objects.into_iter().map(|o| (o.clone(), o)).collect(),
            },
            data: DataFiles {
                train: path(Split::Train),
                dev: path(Split::Dev),
                test: path(Split::Test),
            },
            score: ScoreNorm::Sum,
            values: Default::default(),
            paths: Default::default(),
            each: Vec::new(),
            split_at: Default::default(),
            replace: Default::default(),
        };
        def.check().map_err(|msg| Error::BadTaskFile {
            path: dataset.root().join("relations.jsonl"),
            msg: format!("relation {}: {msg}", relation.id),
        })?;
        Ok(def)
    }
}
