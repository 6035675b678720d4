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
        let mut round = Round::default();
        round.take(first, &metrics);
        if !round.pending.is_empty() {
            gather(&rx, batching, &metrics, &mut round);
            answer_all(&set, round.pending, batching, &metrics);
        }
        if !round.controls.is_empty() {
            for control in round.controls {
                apply(&mut set, control);
            }
            publish(&set);
        }
    }
}

/// What one pass of the loop takes off the queue: predict requests, and loads and unloads
/// that wait for them.
#[derive(Default)]
struct Round {
    pending: Vec<(Request, oneshot::Sender<Reply>)>,
    inputs: usize,
    controls: Vec<Msg>,
}

impl Round {
    fn take(&mut self, msg: Msg, metrics: &Metrics) {
        metrics.queued.fetch_sub(1, Relaxed);
        match msg {
            Msg::Predict(request, reply) => {
                self.inputs += request.inputs.len();
                self.pending.push((request, reply));
            }
            control => self.controls.push(control),
        }
    }
}

/// Takes more requests until the batch is full or `max_wait` has passed since the first;
/// loads and unloads wait for the batch.
fn gather(rx: &Receiver<Msg>, batching: Batching, metrics: &Metrics, round: &mut Round) {
    let deadline = Instant::now() + batching.max_wait;
    while round.inputs < batching.max_batch {
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
        round.take(next, metrics);
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
