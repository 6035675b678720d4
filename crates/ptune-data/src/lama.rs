//! Reader for fact sets in the P-tuning LAMA layout (the T-REx pack and the bundled set):
//!
//! ```text
//! <root>/relations.jsonl                                  one relation per line
//! <root>/fact-retrieval/original/<relation>/<split>.jsonl one fact per line
//! <root>/29k-vocab.json, <root>/34k-vocab.json            optional vocabulary lists
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::text::{short, short_message, strip_bom};
use crate::{
    Error, Fact, Relation, Result, Split, Template, VocabList, VocabStrategy, check_relation_id,
};

const RELATIONS_FILE: &str = "relations.jsonl";
const FACTS_DIR: &str = "fact-retrieval/original";

/// One line of a split file. Extra fields (`evidences`, `uuid`, ...) are accepted and ignored.
#[derive(Deserialize)]
struct Record {
    sub_label: String,
    obj_label: String,
    #[serde(default)]
    sub_uri: Option<String>,
    #[serde(default)]
    obj_uri: Option<String>,
    #[serde(default)]
    predicate_id: Option<String>,
}

/// A fact set on disk: the relation list is read up front, facts on demand per relation and split.
#[derive(Debug, Clone)]
pub struct LamaDataset {
    root: PathBuf,
    relations: Vec<Relation>,
}

impl LamaDataset {
    /// Opens `root` and reads its `relations.jsonl`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let path = root.join(RELATIONS_FILE);
        if !path.is_file() {
            return Err(Error::MissingRelationsFile { path });
        }
        let records: Vec<(usize, Relation)> = read_jsonl(&path)?;
        for (line, relation) in &records {
            check_relation(relation).map_err(|e| bad(&path, *line, e.to_string()))?;
        }
        check_unique_ids(&records, &path)?;
        let relations = records.into_iter().map(|(_, r)| r).collect();
        Ok(Self { root, relations })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All relations listed in `relations.jsonl`, in file order (some may have no fact files).
    pub fn relations(&self) -> &[Relation] {
        &self.relations
    }

    /// The relation with this id, or [`Error::UnknownRelation`].
    pub fn relation(&self, id: &str) -> Result<&Relation> {
        self.relations
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::UnknownRelation {
                relation: id.to_string(),
                path: self.root.join(RELATIONS_FILE),
            })
    }

    /// Where the facts of `relation` for `split` live (whether or not the file exists).
    pub fn split_path(&self, relation: &str, split: Split) -> PathBuf {
        self.root
            .join(FACTS_DIR)
            .join(relation)
            .join(format!("{split}.jsonl"))
    }

    pub fn has_split(&self, relation: &str, split: Split) -> bool {
        self.split_path(relation, split).is_file()
    }

    /// The listed relations that have a file for `split`, in `relations.jsonl` order.
    pub fn relations_with(&self, split: Split) -> Vec<&Relation> {
        let with = |r: &&Relation| self.has_split(&r.id, split);
        self.relations.iter().filter(with).collect()
    }

    /// Reads the facts of one relation and split, in file order.
    pub fn facts(&self, relation: &str, split: Split) -> Result<Vec<Fact>> {
        self.relation(relation)?;
        let path = self.split_path(relation, split);
        if !path.is_file() {
            return Err(Error::MissingSplit {
                relation: relation.to_string(),
                split: split.to_string(),
                path,
            });
        }
        read_facts(&path, Some(relation))
    }

    /// The vocabulary list a strategy uses (`29k-vocab.json` or `34k-vocab.json` under `key`), or
    /// `None` for [`VocabStrategy::Original`], which allows the model's whole vocabulary.
    pub fn vocab_list(&self, strategy: VocabStrategy, key: &str) -> Result<Option<VocabList>> {
        match strategy.file_name() {
            None => Ok(None),
            Some(name) => VocabList::from_file(self.root.join(name), key).map(Some),
        }
    }
}

/// Reads one split file. With `relation`, a record whose `predicate_id` names another relation is
/// an error, since it would silently mix relations.
pub fn read_facts(path: &Path, relation: Option<&str>) -> Result<Vec<Fact>> {
    let records: Vec<(usize, Record)> = read_jsonl(path)?;
    records
        .into_iter()
        .map(|(line, r)| to_fact(r, relation).map_err(|msg| bad(path, line, msg)))
        .collect()
}

fn to_fact(r: Record, relation: Option<&str>) -> Result<Fact, String> {
    if let (Some(found), Some(expected)) = (&r.predicate_id, relation)
        && found != expected
    {
        return Err(format!(
            "predicate_id is {} but the file belongs to relation {expected}",
            short(found)
        ));
    }
    if r.sub_label.trim().is_empty() || r.obj_label.trim().is_empty() {
        return Err("sub_label and obj_label must not be empty".to_string());
    }
    Ok(Fact {
        subject: r.sub_label,
        object: r.obj_label,
        sub_uri: r.sub_uri.filter(|u| !u.is_empty()),
        obj_uri: r.obj_uri.filter(|u| !u.is_empty()),
    })
}

/// Parses every non-blank line as `T`, keeping 1-based line numbers for later messages.
fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>> {
    let file = File::open(path).map_err(|err| Error::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| bad(path, i + 1, e.to_string()))?;
        let line = if i == 0 { strip_bom(&line) } else { &line };
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line)
            .map_err(|e| bad(path, i + 1, short_message(&e.to_string()).into_owned()))?;
        out.push((i + 1, value));
    }
    Ok(out)
}

/// A relation's id must be a plain name, and its manual template, when it parses, must have no
/// prompt slots (one that does not parse is refused when the relation is used, so that the other
/// relations of the set stay usable).
fn check_relation(relation: &Relation) -> Result<()> {
    check_relation_id(&relation.id)?;
    match Template::parse(&relation.template) {
        Ok(_) => relation.manual_template().map(drop),
        Err(_) => Ok(()),
    }
}

fn check_unique_ids(records: &[(usize, Relation)], path: &Path) -> Result<()> {
    let mut seen = HashSet::new();
    for (line, r) in records {
        if !seen.insert(r.id.as_str()) {
            let msg = format!("relation {} is listed twice", r.id);
            return Err(bad(path, *line, msg));
        }
    }
    Ok(())
}

fn bad(path: &Path, line: usize, msg: String) -> Error {
    Error::BadRecord {
        path: path.to_path_buf(),
        line,
        msg,
    }
}
