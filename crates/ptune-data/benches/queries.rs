//! Tokenizing and batching every fact of one bundled relation with the committed tiny byte-level
//! BPE tokenizer (runs offline).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ptune_data::{BatchConfig, BatchPlan, Fact, LamaDataset, QueryBuilder, Split, Template};
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

fn queries_and_batches(c: &mut Criterion) {
    let (tokenizer, facts) = setup();
    let spec = specs::gpt2(&tokenizer);
    let template = Template::parse("[P:3] [X] [P:3] native language [Y]").expect("valid");
    let config = BatchConfig {
        batch_size: 16,
        shuffle_seed: Some(0),
        bucket_by_length: true,
        drop_last: false,
    };

    c.bench_function("build queries (P103, all splits)", |b| {
        b.iter(|| {
            let builder = QueryBuilder::new(&tokenizer, &spec, &template).expect("fits");
            black_box(builder.build(black_box(&facts)))
        })
    });

    let builder = QueryBuilder::new(&tokenizer, &spec, &template).expect("fits");
    let set = builder.build(&facts);
    c.bench_function("plan and collate batches (P103)", |b| {
        b.iter(|| {
            let plan = BatchPlan::for_queries(&set.queries, &config, 0).expect("batch size > 0");
            black_box(
                plan.collate_all(&set.queries, spec.pad_id)
                    .expect("one template"),
            )
        })
    });
}

criterion_group!(benches, queries_and_batches);
criterion_main!(benches);
