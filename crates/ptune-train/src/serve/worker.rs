//! The one thread that owns the model: it takes requests off a bounded queue, gathers those that
//! arrive within `max_wait` (up to `max_batch` inputs), answers them in mixed batches, and
//! loads or unloads packs between batches.

use super::answer::{Reply, Request, answer};
use super::metrics::Metrics;
use super::packs::{PackInfo, PackSet, Refused};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What the HTTP side asks of the model thread.
pub enum Msg {
    Predict(Request, oneshot::Sender<Reply>),
    Load {
        dir: PathBuf,
        name: Option<String>,
        reply: oneshot::Sender<Result<PackInfo, Refused>>,
    },
    Unload {
        name: String,
        reply: oneshot::Sender<bool>,
    },
}

/// How requests are gathered into batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_batch: usize,
    pub max_wait: Duration,
}

/// Serves `rx` until every sender is gone (the server has shut down and drained); `listing`
/// follows each load and unload.
pub fn run(
    mut set: PackSet,
    rx: Receiver<Msg>,
    batching: Batching,
    metrics: Arc<Metrics>,
    listing: Arc<RwLock<Vec<PackInfo>>>,
) {
    let publish = |set: &PackSet| {
        *listing.write().unwrap_or_else(|e| e.into_inner()) = set.infos();
    };
    while let Ok(first) = rx.recv() {
        metrics.queued.fetch_sub(1, Relaxed);
        let mut controls = Vec::new();
        let mut pending = Vec::new();
        match first {
            Msg::Predict(request, reply) => pending.push((request, reply)),
            control => controls.push(control),
        }
        if !pending.is_empty() {
            gather(&rx, batching, &metrics, &mut pending, &mut controls);
            answer_all(&set, pending, batching, &metrics);
        }
        for control in controls {
            apply(&mut set, control);
        }
        publish(&set);
    }
}

/// Takes more requests until the batch is full or `max_wait` has passed since the first;
/// loads and unloads wait for the batch.
fn gather(
    rx: &Receiver<Msg>,
    batching: Batching,
    metrics: &Metrics,
    pending: &mut Vec<(Request, oneshot::Sender<Reply>)>,
    controls: &mut Vec<Msg>,
) {
    let deadline = Instant::now() + batching.max_wait;
    let inputs = |p: &[(Request, _)]| p.iter().map(|(r, _)| r.inputs.len()).sum::<usize>();
    while inputs(pending) < batching.max_batch {
        let next = match rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        metrics.queued.fetch_sub(1, Relaxed);
        match next {
            Msg::Predict(request, reply) => pending.push((request, reply)),
            control => controls.push(control),
        }
    }
}

fn answer_all(
    set: &PackSet,
    pending: Vec<(Request, oneshot::Sender<Reply>)>,
    batching: Batching,
    metrics: &Metrics,
) {
    let (requests, replies): (Vec<Request>, Vec<_>) = pending.into_iter().unzip();
    let inputs = requests.iter().map(|r| r.inputs.len()).sum();
    metrics.batch(requests.len(), inputs);
    for (reply, answer) in replies
        .into_iter()
        .zip(answer(set, &requests, batching.max_batch))
    {
        // The client may have gone; its answer is then dropped.
        let _ = reply.send(answer);
    }
}

fn apply(set: &mut PackSet, control: Msg) {
    match control {
        Msg::Load { dir, name, reply } => {
            let _ = reply.send(set.add(&dir, name.as_deref()));
        }
        Msg::Unload { name, reply } => {
            let _ = reply.send(set.remove(&name));
        }
        Msg::Predict(..) => unreachable!("predict requests are answered in batches"),
    }
}
