//! Facts, relations and splits: the plain records a data set is made of.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One `(subject, object)` pair of a relation, e.g. `("France", "Paris")` for P36.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub subject: String,
    pub object: String,
    /// Wikidata id of the subject (`Q142`), when the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_uri: Option<String>,
    /// Wikidata id of the object, when the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obj_uri: Option<String>,
}

impl Fact {
    /// A fact without Wikidata ids.
    pub fn new(subject: impl Into<String>, object: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            object: object.into(),
            sub_uri: None,
            obj_uri: None,
        }
    }
}

/// A relation as listed in `relations.jsonl`: its id, name and manual (LAMA) template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    /// Wikidata property id, e.g. `P36`.
    #[serde(rename = "relation")]
    pub id: String,
    /// Manual template, e.g. `The capital of [X] is [Y] .`
    pub template: String,
    /// Human-readable name, e.g. `capital`.
    #[serde(default)]
    pub label: String,
    /// Cardinality class from LAMA (`1-1`, `N-1`, `N-M`), when given.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Which part of a relation's facts: the P-tuning layout has one file per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    /// The split's name, which is also its file stem (`train.jsonl`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "dev" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            _ => Err(Error::UnknownSplit(s.to_string())),
        }
    }
}
