//! Tokenizing every fact of one bundled relation with the committed tiny byte-level
//! BPE tokenizer (runs offline).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ptune_data::{Fact, LamaDataset, QueryBuilder, Split, Template};
use tokenizers::Tokenizer;

#[allow(dead_code)]
#[path = "../tests/common/specs.rs"]
mod specs;

fn setup() -> (Tokenizer, Vec<Fact>) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tokenizer = Tokenizer::from_file(crate_dir.join("tests/fixtures/tokenizers/tiny-bpe.json"))
        .expect("the committed tiny tokenizer loads");
    let data = LamaDataset::open(crate_dir.join("../../datasets/facts")).expect("bundled set");
    let facts = Split::ALL
        .iter()
        .flat_map(|&s| data.facts("P103", s).expect("P103 has every split"))
        .collect();
    (tokenizer, facts)
}

fn queries(c: &mut Criterion) {
    let (tokenizer, facts) = setup();
    let spec = specs::gpt2(&tokenizer);
    let template = Template::parse("[P:3] [X] [P:3] native language [Y]").expect("valid");

    c.bench_function("build queries (P103, all splits)", |b| {
        b.iter(|| {
            let builder = QueryBuilder::new(&tokenizer, &spec, &template).expect("fits");
            black_box(builder.build(black_box(&facts)))
        })
    });
}

criterion_group!(benches, queries);
criterion_main!(benches);
