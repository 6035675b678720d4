//! What `GET /metrics` reports: request and input counts, refusals, batch sizes, the queue's
//! depth and latency percentiles over the most recent requests.

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Latencies kept for the percentiles: the most recent ones.
const WINDOW: usize = 4096;

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub inputs: AtomicU64,
    /// Answered with a 4xx (bad request, unknown pack, input that cannot be predicted).
    pub client_errors: AtomicU64,
    /// Refused with 503 because the queue was full.
    pub busy: AtomicU64,
    pub server_errors: AtomicU64,
    pub batches: AtomicU64,
    pub batched_inputs: AtomicU64,
    pub batched_requests: AtomicU64,
    pub largest_batch: AtomicU64,
    /// Requests waiting for the model now.
    pub queued: AtomicUsize,
    latencies_ms: Mutex<VecDeque<f64>>,
}

impl Metrics {
    /// One forward round of `requests` requests holding `inputs` inputs.
    pub fn batch(&self, requests: usize, inputs: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.batched_requests.fetch_add(requests as u64, Relaxed);
        self.batched_inputs.fetch_add(inputs as u64, Relaxed);
        self.largest_batch.fetch_max(inputs as u64, Relaxed);
    }

    /// A request answered after `ms` milliseconds with `status`.
    pub fn answered(&self, status: u16, ms: f64) {
        match status {
            503 => self.busy.fetch_add(1, Relaxed),
            400..=499 => self.client_errors.fetch_add(1, Relaxed),
            500..=599 => self.server_errors.fetch_add(1, Relaxed),
            _ => 0,
        };
        let mut window = self.latencies_ms.lock().unwrap_or_else(|e| e.into_inner());
        if window.len() == WINDOW {
            window.pop_front();
        }
        window.push_back(ms);
    }

    pub fn report(&self) -> Value {
        let window = self.latencies_ms.lock().unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<f64> = window.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let batches = self.batches.load(Relaxed).max(1) as f64;
        json!({
            "requests": self.requests.load(Relaxed),
            "inputs": self.inputs.load(Relaxed),
            "client_errors": self.client_errors.load(Relaxed),
            "busy": self.busy.load(Relaxed),
            "server_errors": self.server_errors.load(Relaxed),
            "queue_depth": self.queued.load(Relaxed),
            "batches": self.batches.load(Relaxed),
            "mean_batch_inputs": self.batched_inputs.load(Relaxed) as f64 / batches,
            "mean_batch_requests": self.batched_requests.load(Relaxed) as f64 / batches,
            "largest_batch_inputs": self.largest_batch.load(Relaxed),
            "latency_ms": {
                "window": sorted.len(),
                "p50": percentile(&sorted, 0.50),
                "p90": percentile(&sorted, 0.90),
                "p99": percentile(&sorted, 0.99),
                "max": sorted.last(),
            },
        })
    }
}

/// The nearest-rank percentile of sorted values (`None` when there are none).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    (n > 0).then(|| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v[..1], 0.99), Some(1.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn batches_and_refusals_are_counted() {
        let m = Metrics::default();
        m.batch(3, 10);
        m.batch(1, 2);
        m.answered(503, 0.1);
        m.answered(404, 0.2);
        m.answered(200, 5.0);
        let r = m.report();
        assert_eq!(r["batches"], 2);
        assert_eq!(r["mean_batch_inputs"], 6.0);
        assert_eq!(r["largest_batch_inputs"], 10);
        assert_eq!(
            (r["busy"].clone(), r["client_errors"].clone()),
            (1.into(), 1.into())
        );
        assert_eq!(r["latency_ms"]["p50"], 0.2);
    }
}
