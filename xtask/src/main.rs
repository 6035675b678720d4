//! `cargo xtask`: the project's runner. It drives cargo, pip and npm; it holds no model code.

mod bench;
mod build;
mod fetch;
mod lama;
mod seeds;
mod torch;
mod train;

use clap::{Parser, Subcommand};

/// The project's runner: fetch the offline test models and data, run the main job, benchmark.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    /// Run ptune's dev build (quick to compile, about 1.5x slower; what CI uses) instead of the
    /// optimized release build. Give it before the command: `cargo xtask --dev bench`.
    #[arg(long)]
    dev: bool,
    /// Run this ptune binary for `train` and `seeds` instead of building one: for example the
    /// libtorch build `cargo xtask build --backend tch` prints (and give ptune `--backend tch`:
    /// `seeds --extra=--backend=tch`).
    #[arg(long, value_name = "BIN", global = true)]
    ptune: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Whether `cargo_run` builds ptune in the dev profile (`--dev`) rather than release.
static DEV_BUILD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
/// The binary `--ptune` named, if any.
static PTUNE_BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

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
    /// The main job once per seed, then the mean and spread of every result over the seeds.
    ///
    /// Runs `cargo xtask train`'s job with `--seed N` for each seed into OUT/seed-N and writes
    /// OUT/seeds.md and OUT/seeds.json: per relation and for the macro average, dev and test P@1
    /// mean, the spread (max - min) and each seed's value, and how many runs ended below the
    /// manual prompt on dev.
    Seeds(seeds::Args),
    /// Download the real test models or the LAMA data pack, checksum-verified.
    ///
    /// Models go into $PTUNE_MODELS (default ~/.cache/ptune/models), the LAMA pack into
    /// $PTUNE_DATA/lama (default ~/.cache/ptune/data/lama).
    Fetch(fetch::Args),
    /// Build ptune with an extra backend: `--backend tch` links the PyTorch a Python has.
    ///
    /// Finds the Python's torch, builds `ptune` and the bench example with `--features tch`
    /// against it (bypassing torch-sys's version check when it is not 2.9.0), with torch's
    /// lib/ in the binaries' rpath. `--parity` then runs the numerics tests on libtorch's CPU.
    Build(build::Args),
}

/// `cargo run -q --release -p ptune-train --bin ptune -- ARGS`: how xtask runs the project's
/// binary (or the one `--ptune` named).
pub fn ptune(args: &[&str]) -> std::process::Command {
    match PTUNE_BIN.get() {
        Some(bin) => {
            let mut command = std::process::Command::new(bin);
            command.args(args);
            command
        }
        None => cargo_run(["--bin", "ptune"], None, args),
    }
}

/// `cargo run` of a ptune-train target (`--bin ptune`, `--example bench`) with extra cargo
/// features (a backend: `tch`, `wgpu`), optimized unless `--dev` was given: users get the speed
/// the code has, and the benchmarks measure what they get.
pub fn cargo_run(
    target: [&str; 2],
    features: Option<&str>,
    args: &[&str],
) -> std::process::Command {
    let mut command = cargo();
    command.args(["run", "-q", "-p", "ptune-train"]);
    if !dev_build() {
        command.arg("--release");
    }
    command.args(target);
    if let Some(features) = features {
        command.args(["--features", features]);
    }
    command.arg("--").args(args);
    command
}

/// Whether ptune is built in the dev profile (`cargo xtask --dev ...`) rather than release.
pub fn dev_build() -> bool {
    DEV_BUILD.get().copied().unwrap_or(false)
}

/// The `cargo` that runs xtask, without the variables `cargo run` gave xtask's own package:
/// build scripts that track them (ring's tracks CARGO_MANIFEST_DIR) would rebuild, and
/// everything above them, on every call.
pub fn cargo() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
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
}

fn main() {
    let cli = Cli::parse();
    let _ = DEV_BUILD.set(cli.dev);
    if let Some(bin) = cli.ptune {
        if !bin.is_file() {
            eprintln!("error: --ptune {}: no such file", bin.display());
            std::process::exit(1);
        }
        let _ = PTUNE_BIN.set(bin);
    }
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => train::run(args),
        Command::Seeds(args) => seeds::run(&args),
        Command::Fetch(args) => fetch::run(&args),
        Command::Build(args) => build::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
