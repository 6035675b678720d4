//! Regenerates the bundled fact set's split files from its hand-written sources:
//! `datasets/facts/source/<relation>.tsv` (`subject<TAB>object` per line) →
//! `datasets/facts/fact-retrieval/original/<relation>/{train,dev,test}.jsonl`, 60/20/20 with
//! seed 20210318 for every relation. Run: `cargo run -p ptune-data --example split_bundled`.
//! The test `bundled_splits_match_their_sources` checks the committed files are its output.

use std::path::Path;

use ptune_data::{Fact, LamaDataset, Split, split_60_20_20};

const SEED: u64 = 20210318;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/facts");
    let data = LamaDataset::open(&root)?;
    for relation in data.relations() {
        let facts = read_tsv(&root.join("source").join(format!("{}.tsv", relation.id)))?;
        let n = facts.len();
        let parts = split_60_20_20(facts, SEED);
        for (split, part) in Split::ALL.iter().zip(&parts) {
            let path = data.split_path(&relation.id, *split);
            std::fs::create_dir_all(path.parent().expect("split files live in a folder"))?;
            std::fs::write(&path, to_jsonl(part, &relation.id))?;
        }
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        println!("{}: {n} facts → train/dev/test {sizes:?}", relation.id);
    }
    Ok(())
}

fn read_tsv(path: &Path) -> Result<Vec<Fact>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut facts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((subject, object)) = line.split_once('\t') else {
            return Err(format!(
                "{}, line {}: expected subject<TAB>object",
                path.display(),
                i + 1
            )
            .into());
        };
        facts.push(Fact::new(subject, object));
    }
    Ok(facts)
}

fn to_jsonl(facts: &[Fact], relation: &str) -> String {
    facts
        .iter()
        .map(|f| {
            let record = serde_json::json!({
                "sub_label": f.subject,
                "obj_label": f.object,
                "predicate_id": relation,
            });
            format!("{record}\n")
        })
        .collect()
}
