//! `cargo xtask build --backend tch`: ptune with libtorch from the PyTorch a Python already has,
//! optionally followed by the numerics tests on libtorch's CPU.

use crate::torch::Torch;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// `cargo xtask build`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// The backend to build in. Only `tch` needs this command: flex is in every build, and wgpu
    /// is `cargo build --release -p ptune-train --features wgpu`.
    #[arg(long, value_enum)]
    backend: BuildBackend,
    /// The Python whose torch to link against (any version with the C++ headers, as PyPI's
    /// wheels have; burn-tch 0.22 is written for 2.9.0, others build with its check bypassed).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Then run the tests that compare against transformers and PyTorch (backbone logits, the
    /// prompt encoder, the P-tuning step, candidate scores) on libtorch's CPU, and the unit
    /// tests of the same packages in the tch build (libtorch's threads under row groups).
    #[arg(long)]
    parity: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BuildBackend {
    Tch,
}

/// The packages with numerics tests (and the allocator's, which tch builds link), and those
/// tests' names (each in one or more of them).
const PARITY_PACKAGES: [&str; 3] = ["ptune-backbone", "ptune-encoder", "ptune-train"];
const PARITY_TESTS: [&str; 7] = [
    "parity",
    "attention",
    "gradients",
    "reference_step",
    "task_scores",
    "mixed_batch",
    "allocator",
];

pub fn run(o: &Args) -> Result<()> {
    let BuildBackend::Tch = o.backend;
    let torch = Torch::find(&o.python)?;
    println!(
        "building ptune with --features tch against torch {} in {}",
        torch.describe(),
        torch.lib.display()
    );
    if !torch.is_bound_version() {
        println!(
            "  torch-sys's version check is bypassed: burn-tch 0.22 binds {}; docs/backends.md \
             lists the versions tried",
            crate::torch::BOUND_VERSION
        );
    }
    let mut build = cargo(&torch, "build")?;
    build.args(["-p", "ptune-train", "--features", "tch", "--bin", "ptune"]);
    build.args(["--example", "bench"]);
    status(build, "the tch build")?;
    let profile = if crate::dev_build() {
        "debug"
    } else {
        "release"
    };
    let bin = target_dir().join(profile).join("ptune");
    println!("built {}", bin.display());
    println!(
        "  its rpath holds {}: it runs here as is; on another machine, put that machine's \
         torch/lib on LD_LIBRARY_PATH",
        torch.lib.display()
    );
    println!(
        "  try: {} predict --backend tch --model MODEL \"The capital of France is\"",
        bin.display()
    );
    if o.parity {
        // One cargo call: one feature resolution, so burn is built once for all three.
        let mut test = cargo(&torch, "test")?;
        for package in PARITY_PACKAGES {
            test.args(["-p", package]);
        }
        test.args(["--features", "ptune-train/tch", "--lib"]);
        for name in PARITY_TESTS {
            test.args(["--test", name]);
        }
        test.env("PTUNE_TEST_BACKEND", "tch");
        status(test, "the numerics tests on tch")?;
        println!("numerics tests passed on libtorch {} (CPU)", torch.version);
    }
    Ok(())
}

/// `cargo SUBCOMMAND` in the profile xtask builds in, set up for `torch`.
fn cargo(torch: &Torch, subcommand: &str) -> Result<Command> {
    let mut command = crate::cargo();
    command.arg(subcommand);
    if !crate::dev_build() {
        command.arg("--release");
    }
    torch.configure(&mut command);
    Ok(command)
}

fn status(mut command: Command, what: &str) -> Result<()> {
    if !command.status()?.success() {
        bail!("{what} failed (its output is above)");
    }
    Ok(())
}

/// Where cargo puts its builds: `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::bench::root().join("target"),
    }
}
