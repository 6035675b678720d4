//! The HTTP + JSON side: routes, request checks, and the bounded queue to the model thread.
//! Every error is a JSON `{"error": "one sentence"}` with a 4xx or 5xx status.

use super::answer::{Request, unknown_pack};
use super::metrics::Metrics;
use super::packs::{PackInfo, Refused};
use super::worker::Msg;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;
use tokio::sync::oneshot;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub queue: SyncSender<Msg>,
    pub metrics: Arc<Metrics>,
    pub listing: Arc<RwLock<Vec<PackInfo>>>,
    pub limits: Limits,
    pub model: Arc<str>,
}

/// Per-request bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_inputs: usize,
    pub max_top_k: usize,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/predict", post(predict))
        .route("/packs", get(list).post(load))
        .route("/packs/{name}", delete(unload))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(404, "no such route: the routes are POST /predict, GET|POST /packs, DELETE /packs/NAME, GET /health, GET /metrics".into())
        })
        .with_state(state)
}

fn error(status: u16, message: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "error": message }))).into_response()
}

/// A status and the sentence that goes with it.
type Refusal = (u16, String);

/// The body as `T`, or a 400 saying what is wrong with it.
fn body<T: for<'de> Deserialize<'de>>(
    bytes: &Bytes,
    what: &str,
    shape: &str,
) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| {
        let e = ptune_data::short_message(&e.to_string()).into_owned();
        (
            400,
            format!("the body is not a {what} request {shape}: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    pack: String,
    inputs: Vec<Value>,
    #[serde(default = "default_top_k")]
    top_k: usize,
}

fn default_top_k() -> usize {
    5
}

async fn predict(State(state): State<AppState>, bytes: Bytes) -> Response {
    let start = Instant::now();
    state.metrics.requests.fetch_add(1, Relaxed);
    let response = match checked(&state, &bytes) {
        Ok(request) => queued(&state, request).await,
        Err((status, message)) => error(status, message),
    };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    state.metrics.answered(response.status().as_u16(), ms);
    response
}

/// The request, or why it is refused. An unknown pack is refused here at once; the model thread
/// checks again (a pack may be unloaded while a request waits).
fn checked(state: &AppState, bytes: &Bytes) -> Result<Request, Refusal> {
    let b: PredictBody = body(bytes, "predict", r#"{"pack", "inputs": [...], "top_k"}"#)?;
    let limits = state.limits;
    if b.inputs.is_empty() {
        return Err((400, "\"inputs\" is empty: send at least one input".into()));
    }
    if b.inputs.len() > limits.max_inputs {
        let (n, most) = (b.inputs.len(), limits.max_inputs);
        return Err((
            413,
            format!("{n} inputs in one request; at most {most} (--max-inputs)"),
        ));
    }
    if b.top_k == 0 || b.top_k > limits.max_top_k {
        let most = limits.max_top_k;
        return Err((400, format!("\"top_k\" must be between 1 and {most}")));
    }
    let listing = listed(state);
    if !listing.iter().any(|p| p.name == b.pack) {
        let names: Vec<&str> = listing.iter().map(|p| p.name.as_str()).collect();
        return Err(unknown_pack(&b.pack, &names));
    }
    drop(listing);
    let inputs = b.inputs.len() as u64;
    state.metrics.inputs.fetch_add(inputs, Relaxed);
    Ok(Request {
        pack: b.pack,
        inputs: b.inputs,
        top_k: b.top_k,
    })
}

/// Puts the request on the queue (503 at once when it is full) and waits for its answer.
async fn queued(state: &AppState, request: Request) -> Response {
    match ask(state, |reply| Msg::Predict(request, reply)).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err((status, message))) | Err((status, message)) => error(status, message),
    }
}

/// Sends the model thread the message `msg` makes around a reply channel, and waits for the
/// reply; a full queue or a server shutting down is a 503.
async fn ask<T>(
    state: &AppState,
    msg: impl FnOnce(oneshot::Sender<T>) -> Msg,
) -> Result<T, Refusal> {
    let (tx, rx) = oneshot::channel();
    enqueue(state, msg(tx))?;
    rx.await.map_err(|_| (503, SHUTTING_DOWN.into()))
}

const SHUTTING_DOWN: &str = "the server is shutting down";

fn enqueue(state: &AppState, msg: Msg) -> Result<(), Refusal> {
    state.metrics.queued.fetch_add(1, Relaxed);
    state.queue.try_send(msg).map_err(|e| {
        state.metrics.queued.fetch_sub(1, Relaxed);
        match e {
            TrySendError::Full(_) => (
                503,
                "the server is busy: its queue is full; retry shortly".into(),
            ),
            TrySendError::Disconnected(_) => (503, SHUTTING_DOWN.into()),
        }
    })
}

/// The packs loaded now, as the model thread last published them.
fn listed(state: &AppState) -> RwLockReadGuard<'_, Vec<PackInfo>> {
    state.listing.read().unwrap_or_else(|e| e.into_inner())
}

async fn list(State(state): State<AppState>) -> Response {
    let packs = listed(&state).clone();
    Json(json!({ "model": &*state.model, "packs": packs })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    path: std::path::PathBuf,
    name: Option<String>,
}

async fn load(State(state): State<AppState>, bytes: Bytes) -> Response {
    let b: LoadBody = match body(&bytes, "load", r#"{"path", "name"}"#) {
        Ok(b) => b,
        Err((status, message)) => return error(status, message),
    };
    let (dir, name) = (b.path, b.name);
    match ask(&state, |reply| Msg::Load { dir, name, reply }).await {
        Ok(Ok(info)) => (StatusCode::CREATED, Json(json!(info))).into_response(),
        Ok(Err(Refused(status, message))) | Err((status, message)) => error(status, message),
    }
}

async fn unload(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let msg = |reply| Msg::Unload {
        name: name.clone(),
        reply,
    };
    match ask(&state, msg).await {
        Ok(true) => Json(json!({ "unloaded": name })).into_response(),
        Ok(false) => error(404, format!("no pack named {name} is loaded")),
        Err((status, message)) => error(status, message),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    let packs = listed(&state).len();
    Json(json!({ "status": "ok", "model": &*state.model, "packs": packs })).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    Json(state.metrics.report()).into_response()
}
