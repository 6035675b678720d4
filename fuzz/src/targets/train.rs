//! `run.json`: what `ptune train --resume` and `--pack` read back from a run directory.

use super::{Format, Input, MAX_INPUT, Target};
use clap::Parser;
use ptune_data::Template;
use ptune_encoder::{BackboneIdentity, PromptEncoderConfig};
use ptune_train::train::TrainArgs;
use serde_json::Value;

pub fn targets() -> Vec<Target> {
    vec![Target {
        name: "run_json",
        entry: "run.json as `ptune train --resume` reads it: serde into ptune_train::train::TrainArgs from \"args\", then the hparam overrides and template it names, and \"model\" as `--pack` reads it",
        parts: &[Format::Json],
        max_len: MAX_INPUT,
        dict: &[
            b"\"args\"",
            b"\"preset\"",
            b"\"paper\"",
            b"\"backend\"",
            b"\"precision\"",
            b"null",
            b"-1",
        ],
        seeds: run_json_seeds,
        run: |_, p| run_json(&p[0]),
    }]
}

/// Parses `ptune train`'s own flags, so the seed follows `TrainArgs` as it changes.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

/// `run.json` of a fresh run, with the fields `ptune train`'s (private) `RunInfo` writes.
fn run_json_seeds() -> Vec<Input> {
    let flags: [&[&str]; 2] = [
        &["--model", "m", "--data", "d", "--out", "o"],
        &[
            "--model",
            "m",
            "--data",
            "d",
            "--out",
            "o",
            "--template",
            "3,3,3",
            "--encoder",
            "mlp",
            "--vocab",
            "shared",
            "--preset",
            "paper",
            "--lr",
            "0.01",
            "--precision",
            "bf16",
            "--relation",
            "P36",
        ],
    ];
    flags
        .iter()
        .map(|f| {
            let args = Cli::parse_from(std::iter::once("train").chain(f.iter().copied())).args;
            let hparams = args.preset.hparams();
            let template = Template::parse(args.template.as_deref().unwrap_or("[P:3] [X] [P:3] [Y]")).expect("seed template");
            let identity = BackboneIdentity::new("GPT2LMHeadModel", 64, "3f2a9c01b7e4");
            let info = serde_json::json!({
                "args": args, "model": "m", "data": "d", "template": template.to_string(),
                "encoder": args.encoder.as_str(), "vocab": args.vocab.as_str(), "hparams": hparams, "backbone": identity,
            });
            vec![serde_json::to_vec_pretty(&info).expect("run.json")]
        })
        .collect()
}

fn run_json(bytes: &[u8]) -> bool {
    let Ok(info) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let _ = info["model"].as_str();
    let Ok(args) = serde_json::from_value::<TrainArgs>(info["args"].clone()) else {
        return false;
    };
    let mut h = args.preset.hparams();
    h.lr = args.lr.unwrap_or(h.lr);
    h.batch_size = args.batch_size.unwrap_or(h.batch_size);
    let _ = h.batch_size == 0 || h.lr.is_nan() || h.lr <= 0.0;
    let template = Template::parse(args.template.as_deref().unwrap_or("3,3,3"));
    if let Ok(template) = template {
        let _ = PromptEncoderConfig::new(args.encoder, template.n_prompts(), 64).validate();
    }
    true
}
