//! The load generator `cargo xtask bench --serve` runs. It writes prompt packs for the model
//! (seeded random prompts: the numbers are about speed, not answers) in two sets: `S*`, all
//! with one template, and `L*`, with templates of 2 to 8 prompt slots in turn; starts
//! `ptune serve` on 127.0.0.1 with them, and drives it with 1, 8 and 64 concurrent clients,
//! each sending its share of a bounded number of requests back to back; at each client count
//! three levels: all to one pack, spread over the `S` packs (the cost of mixing itself), and
//! over the `L` packs (mixing plus templates of different lengths). Prints one JSON line per
//! level, then a table and the ratios that matter: mixed packs against one pack at the same
//! load, and many clients against one at a time. With `--rounds`, the levels of one client count take turns in blocks, so
//! that the mixed-over-one-pack ratios hold on a machine whose speed drifts.

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use clap::Parser;
use ptune_backbone::ModelBundle;
use ptune_encoder::PromptPack;
use ptune_train::pack_use::identity;
use ptune_train::serve::percentile;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The model (a directory, .gguf file or random:SHAPE).
    #[arg(long)]
    model: String,
    /// The `ptune` binary to serve with [default: the one beside this example's directory].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Packs to write and serve; the mixed levels spread requests over all of them.
    #[arg(long, default_value_t = 8)]
    packs: usize,
    /// Concurrent clients per level, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Requests per level (a multiple of the clients is used, per round).
    #[arg(long, default_value_t = 256)]
    requests: usize,
    /// Split each level's requests into this many blocks and run the levels of one client
    /// count block by block in turn (the order rotating each round), so that a machine whose
    /// speed drifts slows every level alike; each mixed level then also reports its
    /// throughput over one pack's, round by round (median, min, max).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Inputs (subjects) per request.
    #[arg(long, default_value_t = 1)]
    inputs: usize,
    /// The server's model threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    #[arg(long, default_value_t = 5)]
    max_wait_ms: u64,
}

/// Templates of the written packs, in turn: 6, 4, 3, 8, 2 prompt slots.
const TEMPLATES: [&str; 5] = [
    "[P:3] [X] [P:3] [Y]",
    "[P:2] [X] [P:2] [Y]",
    "[X] [P:3] [Y]",
    "[P:4] [X] [P:4] [Y]",
    "[P:1] [X] is [P:1] [Y]",
];

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ptune-serve-load-{}", std::process::id()));
    let result = run(&args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(args: &Args, dir: &Path) -> Result<()> {
    ensure!(args.packs >= 1, "--packs must be at least 1");
    let packs = write_packs(&args.model, args.packs, dir)?;
    let subjects = subjects()?;
    let mut server = Server::start(args, &packs)?;
    let agent = agent();
    // Warm-up: every pack once.
    for p in 0..args.packs {
        for set in ["S", "L"] {
            request(&agent, &server.base, &format!("{set}{p}"), &subjects[..1])?;
        }
    }
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let levels = [("S", 1), ("S", args.packs), ("L", args.packs)];
        let levels = &levels[..if args.packs > 1 { 3 } else { 1 }];
        for row in paired_levels(args, &server.base, levels, clients, &subjects)? {
            println!("{row}");
            rows.push(row);
        }
    }
    server.stop()?;
    println!("\n{}", table(&rows, args.packs));
    Ok(())
}

/// `n` packs of each set for the model, seeded random prompts: `S{p}` with the first template,
/// `L{p}` with the templates in turn.
fn write_packs(model: &str, n: usize, dir: &Path) -> Result<Vec<PathBuf>> {
    let bundle = ModelBundle::open(model)?;
    let backbone = bundle.backbone(&Device::default())?;
    let id = identity(&bundle, &backbone);
    let h = backbone.hidden_size();
    let sets = (0..n).flat_map(|p| {
        [
            ("S", p, TEMPLATES[0]),
            ("L", p, TEMPLATES[p % TEMPLATES.len()]),
        ]
    });
    sets.map(|(set, p, template)| {
        let rows = ptune_data::Template::parse(template)?.n_prompts();
        let values = ptune_host::rng::uniform(p as u64, "prompts", vec![rows, h], 0.05);
        let name = format!("{set}{p}");
        let pack = PromptPack::from_host(values, template, id.clone(), &name)?;
        let path = dir.join(&name);
        pack.save(&path)?;
        Ok(path)
    })
    .collect()
}

/// The bundled facts' subjects.
fn subjects() -> Result<Vec<String>> {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/facts/fact-retrieval/original");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))? {
        let text = std::fs::read_to_string(entry?.path().join("test.jsonl"))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fact: Value = serde_json::from_str(line)?;
            out.extend(fact["sub_label"].as_str().map(String::from));
        }
    }
    ensure!(!out.is_empty(), "no subjects under {}", root.display());
    Ok(out)
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(args: &Args, packs: &[PathBuf]) -> Result<Self> {
        let server = match &args.server {
            Some(s) => s.clone(),
            None => std::env::current_exe()?
                .parent()
                .and_then(Path::parent)
                .context("no directory above this example")?
                .join("ptune"),
        };
        let mut command = Command::new(&server);
        command.args([
            "serve",
            "--model",
            &args.model,
            "--port",
            "0",
            "--queue",
            "4096",
        ]);
        command.args(["--threads", &args.threads.to_string()]);
        command.args(["--max-batch", &args.max_batch.to_string()]);
        command.args(["--max-wait-ms", &args.max_wait_ms.to_string()]);
        for p in packs {
            command.arg("--pack").arg(p);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {}", server.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("the server did not start: {line:?}"))?
            .to_string();
        Ok(Self { child, base })
    }

    /// SIGTERM; the server must exit 0.
    fn stop(&mut self) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        ensure!(status.success(), "the server exited with {status}");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

/// One predict request; its latency in milliseconds.
fn request(agent: &ureq::Agent, base: &str, pack: &str, subjects: &[String]) -> Result<f64> {
    let body = json!({"pack": pack, "inputs": subjects, "top_k": 1}).to_string();
    let start = Instant::now();
    let mut response = agent
        .post(&format!("{base}/predict"))
        .header("content-type", "application/json")
        .send(&body)?;
    let text = response.body_mut().read_to_string()?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if response.status() != 200 {
        bail!("{}: {text}", response.status());
    }
    Ok(ms)
}

/// The levels (`(set, packs)`, the first of them one pack) at `clients` clients, run in
/// `--rounds` blocks each, in turn; one JSON record per level.
fn paired_levels(
    args: &Args,
    base: &str,
    levels: &[(&str, usize)],
    clients: usize,
    subjects: &[String],
) -> Result<Vec<Value>> {
    let rounds = args.rounds as usize;
    let per_client = args.requests.div_ceil(clients * rounds);
    let mut blocks: Vec<Vec<Block>> = levels.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for i in (0..levels.len()).map(|i| (i + round) % levels.len()) {
            let block = block(args, base, levels[i], clients, per_client, subjects)?;
            blocks[i].push(block);
        }
    }
    let one: Vec<f64> = blocks[0].iter().map(|b| b.rate(args.inputs)).collect();
    let records = levels.iter().zip(&blocks).map(|(&(set, mixed), blocks)| {
        let mut record = summary(args, (set, mixed), clients, blocks);
        if mixed > 1 && rounds > 1 {
            let mut ratios: Vec<f64> = (blocks.iter().zip(&one))
                .map(|(b, one)| b.rate(args.inputs) / one)
                .collect();
            ratios.sort_by(f64::total_cmp);
            record["paired_over_one_pack"] = json!({
                "median": percentile(&ratios, 0.5),
                "min": ratios.first(),
                "max": ratios.last(),
            });
        }
        record
    });
    Ok(records.collect())
}

/// One block of a level: each client's requests, their latencies, the wall time and the
/// batches the server ran meanwhile.
struct Block {
    latencies: Vec<f64>,
    wall_s: f64,
    batches: f64,
}

impl Block {
    fn rate(&self, inputs: usize) -> f64 {
        (self.latencies.len() * inputs) as f64 / self.wall_s
    }
}

/// `clients` clients send `per_client` requests each; client `c`'s `k`-th request goes to pack
/// `(c + k) % mixed` of `set`, so the requests waiting at any moment are spread over the packs.
fn block(
    args: &Args,
    base: &str,
    (set, mixed): (&str, usize),
    clients: usize,
    per_client: usize,
    subjects: &[String],
) -> Result<Block> {
    let before = metrics(base)?;
    let start = Instant::now();
    let latencies: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let agent = agent();
                    (0..per_client)
                        .map(|k| {
                            let n = c * per_client + k;
                            let first = (n * args.inputs) % subjects.len();
                            let inputs: Vec<String> = (0..args.inputs)
                                .map(|i| subjects[(first + i) % subjects.len()].clone())
                                .collect();
                            request(&agent, base, &format!("{set}{}", (c + k) % mixed), &inputs)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let wall_s = start.elapsed().as_secs_f64();
    let latencies = latencies.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let after = metrics(base)?;
    let batches =
        after["batches"].as_f64().unwrap_or(0.0) - before["batches"].as_f64().unwrap_or(0.0);
    Ok(Block {
        latencies,
        wall_s,
        batches,
    })
}

/// A level's record over its blocks: throughput over their summed wall time, latency
/// percentiles over all their requests.
fn summary(args: &Args, (set, mixed): (&str, usize), clients: usize, blocks: &[Block]) -> Value {
    let mut all: Vec<f64> = blocks.iter().flat_map(|b| b.latencies.clone()).collect();
    all.sort_by(f64::total_cmp);
    let wall: f64 = blocks.iter().map(|b| b.wall_s).sum();
    let batches: f64 = blocks.iter().map(|b| b.batches).sum();
    let requests = all.len();
    json!({
        "bench": "serve",
        "model": args.model,
        "packs": mixed,
        "templates": if set == "S" { 1 } else { mixed.min(TEMPLATES.len()) },
        "clients": clients,
        "requests": requests,
        "rounds": blocks.len(),
        "inputs_per_request": args.inputs,
        "threads": args.threads,
        "wall_s": wall,
        "inputs_per_s": (requests * args.inputs) as f64 / wall,
        "p50_ms": percentile(&all, 0.50),
        "p99_ms": percentile(&all, 0.99),
        "mean_batch_requests": requests as f64 / batches.max(1.0),
    })
}

fn metrics(base: &str) -> Result<Value> {
    let mut response = agent().get(&format!("{base}/metrics")).call()?;
    Ok(serde_json::from_str(
        &response.body_mut().read_to_string()?,
    )?)
}

fn table(rows: &[Value], packs: usize) -> String {
    let mut out = String::from(
        "| packs | templates | clients | requests | inputs/s | p50 ms | p99 ms | requests per batch |\n|---|---|---|---|---|---|---|---|\n",
    );
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            r["packs"],
            r["templates"],
            r["clients"],
            r["requests"],
            f(r, "inputs_per_s"),
            f(r, "p50_ms"),
            f(r, "p99_ms"),
            f(r, "mean_batch_requests"),
        );
    }
    let rate = |r: &Value| f(r, "inputs_per_s");
    let find = |p: usize, t: u64, c: &Value| {
        rows.iter()
            .find(|r| r["packs"] == p && r["templates"] == t && &r["clients"] == c)
    };
    for mixed in rows.iter().filter(|r| r["packs"] == packs && packs > 1) {
        if let Some(one) = find(1, 1, &mixed["clients"]) {
            out += &format!(
                "\n{packs} packs mixed ({} templates) / 1 pack at {} clients: {:.2}x",
                mixed["templates"],
                mixed["clients"],
                rate(mixed) / rate(one)
            );
        }
        let paired = &mixed["paired_over_one_pack"];
        if paired.is_object() {
            out += &format!(
                " (round by round: median {:.2}x, {:.2}-{:.2}x)",
                f(paired, "median"),
                f(paired, "min"),
                f(paired, "max")
            );
        }
    }
    let most = rows
        .iter()
        .filter_map(|r| r["clients"].as_u64())
        .max()
        .unwrap_or(1);
    if let (Some(one), Some(many)) = (find(1, 1, &1.into()), find(1, 1, &most.into())) {
        out += &format!(
            "\n{most} clients / 1 client (1 pack): {:.2}x",
            rate(many) / rate(one)
        );
    }
    out
}
