//! `cargo xtask bench`: the macro benchmark. Each case runs ptune-train's `bench` example in its
//! own process (per backend) and, with `--peer`, `scripts/peer_bench.py` for the PyTorch reference
//! and PEFT on the same model file, batch, template, steps and threads. One JSON line per run,
//! then a table and ptune's ratios to each peer.

use crate::fetch;
use crate::torch::Torch;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// One case: what model, which template, what a step computes (the bench example's `--case`)
/// and tokens per example.
struct Case {
    name: &'static str,
    smollm2: bool,
    template: &'static str,
    case: &'static str,
    seq_len: &'static str,
}

/// LAMA (against the peers), then RTE-shaped classification (2 one-token labels, 64 tokens)
/// and multiple choice (4 candidates of 3 tokens each, a row per candidate on SmolLM2; COPA,
/// multi-token LAMA objects); ptune only: the peers' script has neither.
const CASES: &[Case] = &[
    Case {
        name: "bert-base (random weights)",
        smollm2: false,
        template: "3,3,3",
        case: "lama",
        seq_len: "24",
    },
    Case {
        name: "SmolLM2-135M",
        smollm2: true,
        template: "[P:3] [X] [P:3] [Y]",
        case: "lama",
        seq_len: "24",
    },
    Case {
        name: "bert-base classification",
        smollm2: false,
        template: "3,3,3",
        case: "classification",
        seq_len: "64",
    },
    Case {
        name: "SmolLM2-135M classification",
        smollm2: true,
        template: "[P:3] [X] [P:3] [Y]",
        case: "classification",
        seq_len: "64",
    },
    Case {
        name: "SmolLM2-135M choice",
        smollm2: true,
        template: "[P:3] [X] [P:3] [Y]",
        case: "choice",
        seq_len: "24",
    },
];

const PEERS: &[&str] = &["reference", "peft"];

/// `cargo xtask bench`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Timed steps per run, after one warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// One timed step per run (CI; nothing is asserted on time).
    #[arg(long, conflicts_with = "steps")]
    short: bool,
    /// ptune backends, comma-separated; tch links $LIBTORCH, else the torch of --peer's Python
    /// (or python3), as `cargo xtask build --backend tch` does (docs/backends.md).
    #[arg(long = "backend", value_delimiter = ',', default_value = "flex")]
    backends: Vec<Backend>,
    /// The frozen model's weights, comma-separated; each ptune and peer run repeats per
    /// precision; ratios pair equal precisions, and ptune bf16 with the f32 peers too.
    #[arg(long = "precision", value_delimiter = ',', default_value = "f32")]
    precisions: Vec<Precision>,
    /// Threads for every run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// Also run scripts/peer_bench.py (THUDM's PTuneForLAMA re-implemented, and PEFT
    /// p-tuning) with PYTHON, which needs torch, transformers and peft.
    #[arg(long, value_name = "PYTHON", num_args = 0..=1, require_equals = true,
          default_missing_value = "python3")]
    peer: Option<String>,
    /// Instead of the training cases: the serving load test. `ptune serve` on SmolLM2-135M
    /// with 8 packs (seeded random prompts), 1, 8 and 64 concurrent clients on 127.0.0.1,
    /// requests to one pack and mixed over all 8: throughput and p50/p99 latency.
    /// With --peer, the same workload through PEFT (scripts/peer_serve.py: one adapter per
    /// forward pass, adapters switched between batches) and ptune's ratio to it.
    #[arg(long, conflicts_with = "backends")]
    serve: bool,
    /// Run everything this many times. Training cases: each case and precision runs ptune's
    /// backends and the peers in turn, round after round, and each ratio is taken within a
    /// round and reported as its median and range over the rounds (one machine's speed drifts
    /// between runs by more than most differences). --serve: the load test this many times (a
    /// fresh server each time), each level's mean and spread, and each mixed level's
    /// throughput over one pack's.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeats: u32,
    /// With --serve: split each level into this many blocks, the levels of one client count
    /// taking turns block by block, and report each mixed level's throughput over one pack's
    /// round by round (median and range): a ratio that holds on a machine whose speed drifts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), requires = "serve")]
    rounds: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Flex,
    Tch,
    TchCuda,
    Wgpu,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Precision {
    F32,
    Bf16,
}

impl Args {
    fn steps(&self) -> String {
        if self.short { 1 } else { self.steps }.to_string()
    }
}

/// The name a [`clap::ValueEnum`] value has on the command line (what the bench example takes too).
fn name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

pub fn run(o: &Args) -> Result<()> {
    let peer = o.peer.as_deref().and_then(usable_peer);
    let smollm2 = fetch::fetch_named("smollm2")?.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let smollm2 = smollm2.to_string_lossy().into_owned();
    if o.serve {
        return serve_load(o, &smollm2);
    }
    let torch_python = o.peer.as_deref().unwrap_or("python3");
    let mut rows = Vec::new();
    for case in CASES {
        let model = if case.smollm2 {
            smollm2.as_str()
        } else {
            "random:bert-base"
        };
        for (&precision, round) in o
            .precisions
            .iter()
            .flat_map(|p| (0..o.repeats).map(move |r| (p, r)))
        {
            let measured = |command, rows: &mut Vec<_>| -> Result<()> {
                let mut m = measure(command, model, case, precision, o)?;
                m["round"] = round.into();
                rows.push((case.name, m));
                Ok(())
            };
            for &backend in &o.backends {
                // Each backend in its own build, as its users run it: a tch build links
                // jemalloc, which flex runs slower on (docs/performance.md, "The allocator").
                let mut command = ptune_bench(backend, torch_python)?;
                command.args(["--backend", &name(backend), "--case", case.case]);
                measured(command, &mut rows)?;
            }
            if case.case != "lama" {
                continue;
            }
            if let Some(python) = &peer {
                for impl_ in PEERS {
                    let mut command = Command::new(python);
                    command.arg(root().join("scripts/peer_bench.py"));
                    command.args(["--impl", impl_, "--threads", &o.threads.to_string()]);
                    measured(command, &mut rows)?;
                }
            }
        }
    }
    println!("\n{}", table(&rows));
    if peer.is_some() {
        println!("{}", ratios(&rows));
        println!("{}", against_the_faster_peer(&rows));
    }
    Ok(())
}

/// Builds `ptune` and runs the `serve_load` example against it (the same profile for both);
/// with `--peer`, then the same workload through PEFT, and ptune's ratio per level.
fn serve_load(o: &Args, model: &str) -> Result<()> {
    let mut build = crate::cargo();
    build.args(["build", "-q", "-p", "ptune-train", "--bin", "ptune"]);
    if !crate::dev_build() {
        build.arg("--release");
    }
    if !build.status().context("could not run cargo")?.success() {
        bail!("building ptune failed");
    }
    let requests = if o.short { "16" } else { "256" };
    let (threads, rounds) = (o.threads.to_string(), o.rounds.to_string());
    let args = [
        "--model",
        model,
        "--requests",
        requests,
        "--threads",
        &threads,
    ];
    // Only ptune's load test takes --rounds: the PEFT peer runs each level whole.
    let our_args = [&args[..], &["--rounds", &rounds]].concat();
    let mut runs = Vec::new();
    for _ in 0..o.repeats {
        let command = crate::cargo_run(["--example", "serve_load"], None, &our_args);
        runs.push(json_lines(command, &threads, "the serving load test")?);
    }
    let ours = level_means(&runs);
    if o.repeats > 1 {
        println!("{}", repeats_table(&ours));
    }
    let Some(python) = o.peer.as_deref().and_then(usable_peer) else {
        return Ok(());
    };
    let mut command = Command::new(python);
    command.arg(root().join("scripts/peer_serve.py")).args(args);
    let peft = json_lines(command, &threads, "the PEFT serving peer")?;
    println!(
        "\n| packs | templates | clients | ptune inputs/s | PEFT inputs/s | ptune × | ptune p99 ms | PEFT p99 ms |\n|---|---|---|---|---|---|---|---|"
    );
    for r in &ours {
        let same = |p: &&Value| p["packs"] == r["packs"] && p["clients"] == r["clients"];
        if let Some(p) = peft.iter().find(same) {
            println!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} |",
                r["packs"],
                r["templates"],
                r["clients"],
                f(r, "inputs_per_s"),
                f(p, "inputs_per_s"),
                f(r, "inputs_per_s") / f(p, "inputs_per_s"),
                f(r, "p99_ms"),
                f(p, "p99_ms")
            );
        }
    }
    Ok(())
}

/// One record per level of the load test (packs, templates, clients), with the mean throughput
/// and latencies over the runs, and every run's throughput under `runs_inputs_per_s` (and its
/// round-by-round mixing ratio, with `--rounds`, under `runs_paired_over_one_pack`).
fn level_means(runs: &[Vec<Value>]) -> Vec<Value> {
    let key = |r: &Value| {
        (
            r["packs"].clone(),
            r["templates"].clone(),
            r["clients"].clone(),
        )
    };
    let mut out: Vec<Value> = Vec::new();
    for r in runs.iter().flatten() {
        if out.iter().any(|o| key(o) == key(r)) {
            continue;
        }
        let same: Vec<&Value> = runs.iter().flatten().filter(|x| key(x) == key(r)).collect();
        let mean = |k: &str| same.iter().map(|x| f(x, k)).sum::<f64>() / same.len() as f64;
        let mut level = r.clone();
        for k in ["inputs_per_s", "p50_ms", "p99_ms", "mean_batch_requests"] {
            level[k] = mean(k).into();
        }
        level["runs_inputs_per_s"] = same.iter().map(|x| f(x, "inputs_per_s")).collect();
        // A run's round-by-round ratio is that run's own: keep each, not the first as the level's.
        let paired = same.iter().map(|x| x["paired_over_one_pack"].clone());
        let paired: Vec<Value> = paired.filter(Value::is_object).collect();
        if let Some(record) = level.as_object_mut() {
            record.remove("paired_over_one_pack");
        }
        if !paired.is_empty() {
            level["runs_paired_over_one_pack"] = paired.into();
        }
        out.push(level);
    }
    out
}

/// Per level: mean and range of throughput over the runs, mean p99, and for mixed levels the
/// ratio to one pack at the same clients (run by run: mean, lowest).
fn repeats_table(levels: &[Value]) -> String {
    let runs = |r: &Value| -> Vec<f64> {
        let all = r["runs_inputs_per_s"].as_array().into_iter().flatten();
        all.filter_map(Value::as_f64).collect()
    };
    let mut table = String::from(
        "\n| packs | templates | clients | runs | inputs/s mean | min–max | p99 ms mean | × 1 pack mean | × 1 pack lowest |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in levels {
        let own = runs(r);
        let single = levels
            .iter()
            .find(|x| x["packs"] == 1 && x["clients"] == r["clients"]);
        let ratios: Vec<f64> = match single {
            Some(one) if r["packs"] != 1 => own.iter().zip(runs(one)).map(|(a, b)| a / b).collect(),
            _ => Vec::new(),
        };
        let (lo, hi) = own
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
        let ratio = match ratios.is_empty() {
            true => "| | |".to_string(),
            false => format!(
                "| {:.2} | {:.2} |",
                ratios.iter().sum::<f64>() / ratios.len() as f64,
                ratios.iter().copied().fold(f64::MAX, f64::min)
            ),
        };
        table += &format!(
            "| {} | {} | {} | {} | {:.1} | {lo:.1}–{hi:.1} | {:.0} {ratio}\n",
            r["packs"],
            r["templates"],
            r["clients"],
            own.len(),
            f(r, "inputs_per_s"),
            f(r, "p99_ms"),
        );
    }
    table
}

/// Runs `command` with `threads` compute threads, passing its output through; its JSON lines.
fn json_lines(mut command: Command, threads: &str, what: &str) -> Result<Vec<Value>> {
    command.envs(["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"].map(|k| (k, threads)));
    let out = command
        .output()
        .with_context(|| format!("could not start {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The workspace root (xtask sits one level below it). `cargo run` names xtask's directory at
/// run time; the path compiled in is the fallback, since a target directory shared by two
/// checkouts (CI's) may hold an xtask built in the other one.
pub fn root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR");
    let dir = dir.map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    dir.join("..")
}

/// `python` when it imports torch, transformers and peft; otherwise says so and returns `None`.
fn usable_peer(python: &str) -> Option<String> {
    let ok = Command::new(python)
        .args(["-c", "import torch, transformers, peft"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!(
            "no peer: `{python}` cannot import torch, transformers and peft \
             (pip install torch transformers peft); ptune's numbers only"
        );
    }
    ok.then(|| python.to_string())
}

/// The `bench` example built with `backend`'s cargo feature (none for flex); a tch build links
/// `$LIBTORCH`, else the torch of `python` (`cargo xtask build`'s way).
fn ptune_bench(backend: Backend, python: &str) -> Result<Command> {
    let feature = match backend {
        Backend::Flex => None,
        Backend::Tch | Backend::TchCuda => Some("tch"),
        Backend::Wgpu => Some("wgpu"),
    };
    let mut command = crate::cargo_run(["--example", "bench"], feature, &[]);
    if feature == Some("tch") {
        if let Ok(dir) = std::env::var("LIBTORCH") {
            let path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
            command.env("LD_LIBRARY_PATH", format!("{dir}/lib:{path}"));
        } else {
            Torch::find(python)?.configure(&mut command);
        }
    }
    Ok(command)
}

/// Runs one bench process with the case's arguments and fixed threads; its last line, parsed.
fn measure(
    mut command: Command,
    model: &str,
    case: &Case,
    precision: Precision,
    o: &Args,
) -> Result<Value> {
    let threads = o.threads.to_string();
    command
        .args([
            "--model",
            model,
            "--template",
            case.template,
            "--seq-len",
            case.seq_len,
            "--precision",
            &name(precision),
            "--steps",
            &o.steps(),
        ])
        .envs(["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"].map(|k| (k, &threads)));
    let out = command
        .output()
        .context("could not start a bench process")?;
    if !out.status.success() {
        bail!(
            "bench failed for {model}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
    let line = stdout.lines().last().context("the bench printed nothing")?;
    println!("{line}");
    Ok(serde_json::from_str(line)?)
}

fn f(m: &Value, k: &str) -> f64 {
    m[k].as_f64().unwrap_or(f64::NAN)
}

fn precision(m: &Value) -> &str {
    m["precision"].as_str().unwrap_or("f32")
}

/// Peak resident memory above the process's own baseline (runtime loaded, no model yet).
fn rss_over_base(m: &Value) -> f64 {
    f(m, "peak_rss_mb") - f(m, "base_rss_mb")
}

fn table(rows: &[(&str, Value)]) -> String {
    let mut s = String::from(
        "| case | backend | precision | threads | batch × tokens | load s | train ex/s | eval ex/s | peak RSS MiB | above baseline MiB |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let rounds = rows.iter().any(|(_, m)| m["round"].as_u64() > Some(0));
    for (name, m) in rows {
        let name = match rounds {
            true => format!("{name}, round {}", m["round"].as_u64().unwrap_or(0) + 1),
            false => name.to_string(),
        };
        s += &format!(
            "| {name} | {} | {} | {} | {} × {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |\n",
            m["backend"].as_str().unwrap_or("?"),
            precision(m),
            m["threads"],
            m["batch_size"],
            m["seq_len"],
            f(m, "load_seconds"),
            f(m, "train_examples_per_s"),
            f(m, "eval_examples_per_s"),
            f(m, "peak_rss_mb"),
            rss_over_base(m),
        );
    }
    s
}

/// ptune's ratio to each peer of the same case, taken within each round (throughput ×, memory
/// above baseline ÷); with several rounds, each ratio's median and range over them.
fn ratios(rows: &[(&str, Value)]) -> String {
    let mut s = String::from(
        "| case | ptune backend | vs | train × | eval × | RSS above baseline, share |\n|---|---|---|---|---|---|\n",
    );
    // Each ptune row against the peers in its own precision; bf16 also against f32, the peers'
    // default.
    let compared =
        |ours: &Value, peer: &Value| precision(ours) == precision(peer) || precision(peer) == "f32";
    let mut pairs: Rounds<(&str, String, String)> = Vec::new();
    for (name, ours) in rows.iter().filter(|(_, m)| !is_peer(m)) {
        for peer in peers_in_round(rows, name, ours).filter(|m| compared(ours, m)) {
            let ratio = [
                f(ours, "train_examples_per_s") / f(peer, "train_examples_per_s"),
                f(ours, "eval_examples_per_s") / f(peer, "eval_examples_per_s"),
                rss_over_base(ours) / rss_over_base(peer),
            ];
            add_round(&mut pairs, (*name, label(ours), label(peer)), ratio);
        }
    }
    for ((name, ours, peer), rounds) in &pairs {
        let [train, eval, memory] = cells(rounds);
        s += &format!("| {name} | {ours} | {peer} | {train} | {eval} | {memory} |\n");
    }
    s
}

/// Like for like, as issue 14's targets put it: each ptune run against the faster peer of its
/// own precision in its round (the leaner one for memory), as median and range over rounds.
fn against_the_faster_peer(rows: &[(&str, Value)]) -> String {
    let mut s = String::from(
        "| case | ptune | train × the faster peer | eval × the faster peer | memory × the leaner peer |\n|---|---|---|---|---|\n",
    );
    let mut cases: Rounds<(&str, String)> = Vec::new();
    for (name, ours) in rows.iter().filter(|(_, m)| !is_peer(m)) {
        let peers: Vec<&Value> = peers_in_round(rows, name, ours)
            .filter(|m| precision(m) == precision(ours))
            .collect();
        if peers.is_empty() {
            continue;
        }
        let best = |k: &str| peers.iter().map(|m| f(m, k)).fold(f64::NAN, f64::max);
        let leanest = peers
            .iter()
            .map(|m| rss_over_base(m))
            .fold(f64::NAN, f64::min);
        let ratio = [
            f(ours, "train_examples_per_s") / best("train_examples_per_s"),
            f(ours, "eval_examples_per_s") / best("eval_examples_per_s"),
            rss_over_base(ours) / leanest,
        ];
        add_round(&mut cases, (*name, label(ours)), ratio);
    }
    for ((name, ours), rounds) in &cases {
        let [train, eval, memory] = cells(rounds);
        s += &format!("| {name} | {ours} | {train} | {eval} | {memory} |\n");
    }
    s
}

/// The peers' runs of case `name` in `ours`' round.
fn peers_in_round<'a>(
    rows: &'a [(&str, Value)],
    name: &'a str,
    ours: &'a Value,
) -> impl Iterator<Item = &'a Value> {
    rows.iter()
        .filter(move |(n, m)| *n == name && is_peer(m) && m["round"] == ours["round"])
        .map(|(_, m)| m)
}

fn is_peer(m: &Value) -> bool {
    m["backend"]
        .as_str()
        .is_some_and(|b| b.starts_with("pytorch-"))
}

/// `flex f32`, `pytorch-reference bf16`: a run's backend and precision.
fn label(m: &Value) -> String {
    format!("{} {}", m["backend"].as_str().unwrap_or("?"), precision(m))
}

/// Each compared pair (in first-seen order) with its rounds' train, eval and memory ratios.
type Rounds<K> = Vec<(K, Vec<[f64; 3]>)>;

/// Adds one round's ratios to `key`'s.
fn add_round<K: PartialEq>(groups: &mut Rounds<K>, key: K, ratio: [f64; 3]) {
    match groups.iter_mut().find(|(k, _)| *k == key) {
        Some((_, rounds)) => rounds.push(ratio),
        None => groups.push((key, vec![ratio])),
    }
}

/// The train, eval and memory cells of a pair's rounds.
fn cells(rounds: &[[f64; 3]]) -> [String; 3] {
    [0, 1, 2].map(|i| median_and_range(rounds.iter().map(|r| r[i]).collect()))
}

/// `1.23` for one value; `1.23 (1.10–1.31)` for several: the median (the mean of the middle
/// two of an even count) and the range.
fn median_and_range(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = (values[(n - 1) / 2] + values[n / 2]) / 2.0;
    match n {
        1 => format!("{median:.2}"),
        _ => format!("{median:.2} ({:.2}–{:.2})", values[0], values[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A run's record: backend, precision, round, rates and memory above a 100 MiB baseline.
    fn run(backend: &str, precision: &str, round: u32, train: f64, eval: f64, rss: f64) -> Value {
        json!({"backend": backend, "precision": precision, "round": round,
               "train_examples_per_s": train, "eval_examples_per_s": eval,
               "base_rss_mb": 100.0, "peak_rss_mb": 100.0 + rss})
    }

    /// Ratios pair runs of one round only, and several rounds give the median and the range.
    #[test]
    fn repeated_rounds_give_each_ratio_within_its_round_as_median_and_range() {
        let rows = vec![
            ("c", run("flex", "f32", 0, 12.0, 30.0, 50.0)),
            ("c", run("pytorch-reference", "f32", 0, 10.0, 20.0, 100.0)),
            ("c", run("flex", "f32", 1, 10.0, 30.0, 50.0)),
            ("c", run("pytorch-reference", "f32", 1, 5.0, 30.0, 100.0)),
            ("c", run("flex", "f32", 2, 9.0, 30.0, 50.0)),
            ("c", run("pytorch-reference", "f32", 2, 10.0, 10.0, 100.0)),
        ];
        let table = ratios(&rows);
        let row = "| c | flex f32 | pytorch-reference f32 | 1.20 (0.90–2.00) | 1.50 (1.00–3.00) | 0.50 (0.50–0.50) |";
        assert!(table.contains(row), "{table}");
        assert_eq!(table.lines().count(), 3, "{table}");
        // Against the faster peer of each round: the reference in rounds 0 and 2, PEFT in 1.
        let mut rows = rows;
        rows.push(("c", run("pytorch-peft", "f32", 1, 8.0, 40.0, 80.0)));
        rows.push(("c", run("pytorch-peft", "bf16", 1, 80.0, 80.0, 10.0)));
        let faster = against_the_faster_peer(&rows);
        let row = "| c | flex f32 | 1.20 (0.90–1.25) | 1.50 (0.75–3.00) | 0.50 (0.50–0.62) |";
        assert!(faster.contains(row), "{faster}");
        // One round: plain ratios.
        let one = ratios(&rows[..2]);
        assert!(
            one.contains("| c | flex f32 | pytorch-reference f32 | 1.20 | 1.50 | 0.50 |"),
            "{one}"
        );
    }

    /// Two runs of two levels: each level's mean, its runs, and the mixed level's ratio to one
    /// pack run by run (mean and lowest).
    #[test]
    fn repeated_load_tests_report_means_spreads_and_mixing_ratios() {
        let level = |packs: u32, rate: f64| {
            json!({"packs": packs, "templates": 1, "clients": 8, "inputs_per_s": rate,
                   "p50_ms": 10.0, "p99_ms": rate, "mean_batch_requests": 4.0})
        };
        let paired = |level: Value, median: f64| {
            let mut level = level;
            level["paired_over_one_pack"] = json!({"median": median, "min": 0.5, "max": 1.5});
            level
        };
        let runs = vec![
            vec![level(1, 10.0), paired(level(8, 9.0), 0.9)],
            vec![level(1, 20.0), paired(level(8, 22.0), 1.1)],
        ];
        let levels = level_means(&runs);
        assert_eq!(levels.len(), 2);
        assert_eq!(f(&levels[0], "inputs_per_s"), 15.0);
        assert_eq!(levels[1]["runs_inputs_per_s"], json!([9.0, 22.0]));
        let medians = levels[1]["runs_paired_over_one_pack"].as_array().unwrap();
        assert_eq!(
            medians.iter().map(|p| f(p, "median")).collect::<Vec<_>>(),
            [0.9, 1.1]
        );
        assert!(levels[1]["paired_over_one_pack"].is_null());
        assert!(levels[0]["runs_paired_over_one_pack"].is_null());
        let table = repeats_table(&levels);
        assert!(
            table.contains("| 8 | 1 | 8 | 2 | 15.5 | 9.0–22.0 | 16 | 1.00 | 0.90 |"),
            "{table}"
        );
    }
}
