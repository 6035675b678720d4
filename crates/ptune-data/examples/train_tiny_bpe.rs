//! Trains the tiny byte-level BPE tokenizer committed at `tests/fixtures/tokenizers/tiny-bpe.json`
//! (GPT-2 style: byte-level pre-tokenizer and decoder, `Ġ` space marks) on sentences made from the
//! bundled fact set and the LAMA test fixture, so tests and the bench run offline.
//! Run: `cargo run -p ptune-data --example train_tiny_bpe`.

use std::path::Path;

use ptune_data::{LamaDataset, Split};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Token budget: enough for the bundled set's one-word objects to be single tokens, small enough
/// to keep the file under 100 KB.
const VOCAB_SIZE: usize = 2600;
/// Ids 0..=5, in this order; `<|endoftext|>` for GPT-2 style specs, the rest for RoBERTa style.
const SPECIAL: [&str; 6] = ["<|endoftext|>", "<s>", "</s>", "<pad>", "<unk>", "<mask>"];
/// Objects repeated this often so that BPE learns them as whole words first.
const OBJECT_WEIGHT: usize = 4;
/// Fixture words kept out of the training text so that tests see unknown, multi-token words.
const HELD_OUT: [&str; 2] = ["Montevideo", "Brasília"];

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut corpus = sentences(&crate_dir.join("../../datasets/facts"))?;
    corpus.extend(sentences(&crate_dir.join("tests/fixtures/lama"))?);
    corpus.retain(|s| !HELD_OUT.iter().any(|w| s.contains(w)));

    let mut tokenizer = Tokenizer::new(BPE::default());
    let byte_level = ByteLevel::new(false, true, true);
    tokenizer.with_pre_tokenizer(Some(byte_level));
    tokenizer.with_decoder(Some(byte_level));
    tokenizer.with_post_processor(Some(byte_level));
    let specials: Vec<AddedToken> = SPECIAL.iter().map(|t| AddedToken::from(*t, true)).collect();
    let trainer = BpeTrainer::builder()
        .vocab_size(VOCAB_SIZE)
        .min_frequency(1)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    tokenizer.train(&mut TrainerWrapper::BpeTrainer(trainer), corpus.iter())?;
    let out = crate_dir.join("tests/fixtures/tokenizers/tiny-bpe.json");
    tokenizer.save(&out, false)?;
    println!(
        "{} ({} tokens)",
        out.display(),
        tokenizer.get_vocab_size(true)
    );
    Ok(())
}

/// Every fact of every relation and split as its manual-template sentence, plus its object alone.
fn sentences(root: &Path) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let data = LamaDataset::open(root)?;
    let mut out = Vec::new();
    for relation in data.relations() {
        for split in Split::ALL {
            if !data.has_split(&relation.id, split) {
                continue;
            }
            for fact in data.facts(&relation.id, split)? {
                let sentence = relation.template.replace("[X]", &fact.subject);
                out.push(sentence.replace("[Y]", &fact.object));
                out.extend(std::iter::repeat_n(
                    format!(" {}", fact.object),
                    OBJECT_WEIGHT,
                ));
            }
        }
    }
    Ok(out)
}
