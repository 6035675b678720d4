//! `cargo run -p ptune-fuzz -- [TARGET...|--all] --execs N --seed S`, or `--replay FILE --target T`.

use clap::Parser;
use ptune_fuzz::crash::{self, GuardedAlloc};
use ptune_fuzz::engine::{self, Config};
use ptune_fuzz::targets::{self, Target};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOC: GuardedAlloc = GuardedAlloc;

#[derive(Parser)]
#[command(about = "Fuzzes ptune's parsers; exits non-zero when any input panics")]
struct Cli {
    /// Targets to run (see --list).
    targets: Vec<String>,
    /// Run every target.
    #[arg(long)]
    all: bool,
    /// List the targets and the entry points they call.
    #[arg(long)]
    list: bool,
    /// Executions per target (the seeds come first).
    #[arg(long, default_value_t = 10_000)]
    execs: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where findings are saved, one folder per target.
    #[arg(long, default_value = "fuzz/crashes")]
    crash_dir: PathBuf,
    /// A single allocation above this many MiB saves the input and aborts.
    #[arg(long, default_value_t = 1024)]
    alloc_limit_mib: usize,
    /// One input running longer than this many seconds saves it and exits.
    #[arg(long, default_value_t = 60)]
    hang_secs: u64,
    /// Replay one saved input (with --target) instead of fuzzing.
    #[arg(long, requires = "target")]
    replay: Option<PathBuf>,
    #[arg(long)]
    target: Option<String>,
    /// Stop each target after this many seconds, whatever --execs says (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    crash::set_alloc_limit(cli.alloc_limit_mib << 20);
    if cli.list {
        for t in targets::all() {
            println!("{:20} {}", t.name, t.entry);
        }
        return ExitCode::SUCCESS;
    }
    crash::install_quiet_hook();
    match &cli.replay {
        Some(file) => replay(cli.target.as_deref().unwrap_or_default(), file),
        None => fuzz(&cli),
    }
}

fn replay(name: &str, file: &std::path::Path) -> ExitCode {
    let Some(target) = targets::find(name) else {
        eprintln!("unknown target `{name}` (see --list)");
        return ExitCode::from(2);
    };
    match engine::replay(&target, file) {
        Ok(accepted) => {
            println!(
                "no panic (input {})",
                if accepted { "accepted" } else { "rejected" }
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("panic: {message}");
            ExitCode::FAILURE
        }
    }
}

fn fuzz(cli: &Cli) -> ExitCode {
    let chosen: Vec<Target> = if cli.all {
        targets::all()
    } else {
        let found: Option<Vec<Target>> = cli.targets.iter().map(|n| targets::find(n)).collect();
        match found {
            Some(t) if !t.is_empty() => t,
            _ => {
                eprintln!("name targets (see --list) or pass --all");
                return ExitCode::from(2);
            }
        }
    };
    crash::start_watchdog(Duration::from_secs(cli.hang_secs));
    let cfg = Config {
        execs: cli.execs,
        seed: cli.seed,
        crash_dir: cli.crash_dir.clone(),
        progress_secs: 60,
        max_secs: cli.max_secs,
    };
    let mut panicked = false;
    println!("| target | execs | execs/s | seed | result |\n|---|---|---|---|---|");
    for target in &chosen {
        let report = match engine::fuzz(target, &cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: {e}", target.name);
                return ExitCode::FAILURE;
            }
        };
        panicked |= !report.findings.is_empty();
        println!("{}", row(&report, cli.seed));
        for (site, f) in &report.findings {
            let input = f
                .input
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            eprintln!(
                "  PANIC x{} at {site}: {} (input {input})",
                f.count, f.message
            );
        }
    }
    if panicked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn row(r: &engine::Report, seed: u64) -> String {
    let result = match r.findings.len() {
        0 => "no panic".to_string(),
        n => format!("{n} panic site(s)"),
    };
    format!(
        "| {} | {} | {:.0} | {seed} | {result} |",
        r.target,
        r.execs,
        r.execs_per_sec()
    )
}
