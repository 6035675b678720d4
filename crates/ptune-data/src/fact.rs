//! Facts, relations and splits: the plain records a data set is made of.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, PromptMode, Result, Template};

/// The longest relation id accepted (T-REx ids look like `P1412`).
pub const MAX_RELATION_ID_CHARS: usize = 100;

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

impl Relation {
    /// The relation's own (LAMA) template, parsed and checked to have no prompt slots: it is the
    /// manual-prompt baseline, which prompt slots would silently turn into something else.
    /// Errors name the relation.
    pub fn manual_template(&self) -> Result<Template> {
        let named = |e: Error| Error::RelationTemplate {
            relation: self.id.clone(),
            source: Box::new(e),
        };
        let template = Template::parse(&self.template).map_err(named)?;
        template.check_mode(PromptMode::Manual).map_err(named)?;
        Ok(template)
    }
}

/// Checks that a relation id is a plain name. Ids name folders, under the data set
/// (`fact-retrieval/original/<id>/`) and under a run's output (`<out>/<id>/`), so an id such as
/// `../../x` or `/abs` would read or write outside them.
pub fn check_relation_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id == "." || id == ".." {
        "it is . or .."
    } else if id.contains(['/', '\\', ':']) {
        "it contains /, \\ or :"
    } else if id.contains(char::is_control) {
        "it contains a control character"
    } else if id.chars().count() > MAX_RELATION_ID_CHARS {
        "it is longer than 100 characters"
    } else {
        return Ok(());
    };
    Err(Error::BadRelationId {
        id: id.to_string(),
        reason,
    })
}

/// Which part of a relation's facts: the P-tuning layout has one file per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
