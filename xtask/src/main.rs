//! `cargo xtask`: the project's runner. It drives cargo, pip and npm; it holds no model code.

mod bench;
mod fetch;
mod lama;
mod train;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
{bench}
  train [ARGS]       the main job: with no ARGS, fetch SmolLM2-135M if needed, P-tune it on
                     the bundled fact set (datasets/facts, all relations) into
                     runs/smollm2-facts and print the summary table; ARGS are passed to
                     `ptune train` (see `cargo run -p ptune-train -- train --help`)
  fetch <model>...   download the real offline test models into $PTUNE_MODELS
                     (default ~/.cache/ptune/models) and verify their SHA-256:
                     smollm2 (SmolLM2-135M-Instruct, GGUF Q4_1, causal LM)
                     antiberty (AntiBERTy, BERT masked LM with its MLM head)
                     minilm (all-MiniLM-L6-v2, BERT encoder)
                     gpt2-bpe (GPT-2's encoder.json + vocab.bpe)
                     all (every one of them)
  fetch lama [FLAGS] download the P-tuning LAMA data pack (Zenodo record 5578210) into
                     $PTUNE_DATA/lama (default ~/.cache/ptune/data/lama), checksum-verified:
                     --url URL    download from a mirror instead of zenodo.org
                     --from FILE  unpack a P-tune_LAMA.tar.gz you downloaded yourself
                     --md5 HEX | --sha256 HEX  the checksum the archive must have";

fn usage() -> String {
    USAGE.replace("{bench}", bench::USAGE)
}

/// `cargo run -q -p ptune-train --bin ptune -- ARGS`: how xtask runs the project's binary.
pub fn ptune(args: &[&str]) -> std::process::Command {
    cargo_run(["--bin", "ptune"], None, args)
}

/// `cargo run` of a ptune-train target (`--bin ptune`, `--example bench`) with extra cargo
/// features (a backend: `tch`, `wgpu`).
pub fn cargo_run(
    target: [&str; 2],
    features: Option<&str>,
    args: &[&str],
) -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    // `cargo run` gave xtask its own package's variables; build scripts that track them (ring's
    // tracks CARGO_MANIFEST_DIR) would rebuild, and everything above them, on every call.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(key.as_ref());
        }
    }
    command
        .args(["run", "-q", "-p", "ptune-train"])
        .args(target);
    if let Some(features) = features {
        command.args(["--features", features]);
    }
    command.arg("--").args(args);
    command
}

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("fetch") => fetch::run(&args[1..]),
        Some("train") => train::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{}", usage());
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{}", usage()),
    }
}
