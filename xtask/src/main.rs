//! `cargo xtask`: the project's runner. It drives cargo, pip and npm; it holds no model code.

mod bench;
mod fetch;
mod lama;
mod train;

use clap::{Parser, Subcommand};

/// The project's runner: fetch the offline test models and data, run the main job, benchmark.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Macro benchmark of P-tuning speed and memory, optionally against the PyTorch peers.
    ///
    /// Load time, train and eval examples/s and peak memory of bert-base (random weights) and
    /// SmolLM2-135M, one JSON line per run, a table, and ptune's ratio to each PyTorch peer.
    Bench(bench::Args),
    /// The main job: P-tune SmolLM2-135M on the bundled fact set.
    ///
    /// With no ARGS: fetch SmolLM2-135M if needed, P-tune it on the bundled fact set
    /// (datasets/facts, all relations) into runs/smollm2-facts and print the summary table.
    Train(train::Args),
    /// Download the real test models or the LAMA data pack, checksum-verified.
    ///
    /// Models go into $PTUNE_MODELS (default ~/.cache/ptune/models), the LAMA pack into
    /// $PTUNE_DATA/lama (default ~/.cache/ptune/data/lama).
    Fetch(fetch::Args),
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
    let result = match Cli::parse().command {
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => train::run(args),
        Command::Fetch(args) => fetch::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
