//! `ptune serve`: one frozen model, any number of prompt packs, HTTP + JSON. Requests for any
//! packs that arrive within a few milliseconds run as one mixed batch (see [`crate::mixed`]).

mod answer;
mod http;
mod metrics;
mod packs;
mod worker;

pub use metrics::percentile;
pub use packs::{PackInfo, PackSet};

use crate::device::Compute;
use crate::pack_use::{model_for, pack_dir};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The model every pack runs on. Default: the model recorded in the first --pack's run.json.
    #[arg(long)]
    pub model: Option<String>,
    /// Prompt packs to load at start (the flag repeats): a pack directory from `ptune train`,
    /// served under the relation or task it was trained for, or NAME=DIR for another name.
    /// A pack that fails to load is reported and skipped; packs can be loaded later too.
    #[arg(long = "pack", value_name = "[NAME=]DIR")]
    pub packs: Vec<String>,
    /// Address to listen on (loopback by default; 0.0.0.0 listens on every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (the line printed at start says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Most inputs in one forward pass: requests are gathered until this many inputs wait...
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_batch: u32,
    /// ...or until this many milliseconds have passed since the first of them.
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Requests that may wait for the model; when full, a request is answered 503 at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue: u32,
    /// Most inputs one request may carry (more: 413).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_inputs: u32,
    #[command(flatten)]
    pub compute: Compute,
}

/// `NAME=DIR` or `DIR`.
fn named(spec: &str) -> (Option<String>, PathBuf) {
    match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !name.contains(['/', '\\']) => {
            (Some(name.to_string()), PathBuf::from(dir))
        }
        _ => (None, PathBuf::from(spec)),
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let packs: Vec<(Option<String>, PathBuf)> = args.packs.iter().map(|p| named(p)).collect();
    let model = match (&args.model, packs.first()) {
        (Some(m), _) => m.clone(),
        (None, Some((_, dir))) => model_for(&pack_dir(dir), None)?,
        (None, None) => bail!("pass --model, or a --pack whose run.json names its model"),
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let listing = Arc::new(RwLock::new(Vec::new()));
    let (queue, rx) = std::sync::mpsc::sync_channel(args.queue as usize);
    let batching = worker::Batching {
        max_batch: args.max_batch as usize,
        max_wait: Duration::from_millis(args.max_wait_ms),
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (compute, name, m, l) = (
        args.compute,
        model.clone(),
        metrics.clone(),
        listing.clone(),
    );
    let model_thread = std::thread::Builder::new()
        .name("ptune-model".into())
        .spawn(move || {
            let set = match PackSet::open(&name, compute) {
                Ok(set) => set,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            let set = load_all(set, &packs);
            // Listed before the server answers its first request.
            *l.write().unwrap_or_else(|e| e.into_inner()) = set.infos();
            let _ = ready_tx.send(Ok(set.infos()));
            worker::run(set, rx, batching, m, l);
        })
        .context("could not start the model thread")?;
    let loaded = match ready_rx.recv() {
        Ok(Ok(infos)) => infos,
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("the model thread stopped while loading the model"),
    };
    let state = http::AppState {
        queue,
        metrics: metrics.clone(),
        listing,
        limits: http::Limits {
            max_inputs: args.max_inputs as usize,
            max_top_k: 1000,
        },
        model: model.as_str().into(),
    };
    listen(args, state, &model, &loaded)?;
    model_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the model thread panicked"))?;
    let report = metrics.report();
    eprintln!(
        "ptune serve: stopped after {} requests ({} inputs in {} batches)",
        report["requests"], report["inputs"], report["batches"]
    );
    Ok(())
}

/// Loads the packs given at start; one that fails is reported and skipped.
fn load_all(mut set: PackSet, packs: &[(Option<String>, PathBuf)]) -> PackSet {
    for (name, dir) in packs {
        if let Err(packs::Refused(_, why)) = set.add(dir, name.as_deref()) {
            eprintln!("warning: pack {} not loaded: {why}", dir.display());
        }
    }
    set
}

/// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
fn listen(args: &ServeArgs, state: http::AppState, model: &str, loaded: &[PackInfo]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the HTTP runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        let names: Vec<&str> = loaded.iter().map(|p| p.name.as_str()).collect();
        println!(
            "ptune serve: listening on http://{addr} (model {model}; packs: {})",
            if names.is_empty() {
                "none yet".to_string()
            } else {
                names.join(", ")
            }
        );
        std::io::stdout().flush()?;
        axum::serve(listener, http::router(state))
            .with_graceful_shutdown(shutdown())
            .await
            .context("the HTTP server failed")
    })
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => drop(interrupt.await),
        }
    }
    #[cfg(not(unix))]
    drop(interrupt.await);
}
