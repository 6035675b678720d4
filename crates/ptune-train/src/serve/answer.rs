//! Answering a gathered set of predict requests, for any of the loaded packs, in mixed batches:
//! every relation pack's inputs share batches, and every task pack's.

use super::packs::PackSet;
use crate::mixed::{rank_answers, rank_subjects};
use crate::predict_file::subject;
use crate::task_predict::record;
use ptune_data::task::{Example, TaskDef};
use serde_json::{Value, json};

/// One predict request, as the worker receives it.
pub struct Request {
    pub pack: String,
    pub inputs: Vec<Value>,
    pub top_k: usize,
}

/// A request's answer: the response body, or an HTTP status with one sentence.
pub type Reply = Result<Value, (u16, String)>;

/// An input ready to run: its request, its place in the request and its pack.
struct Ready<T> {
    request: usize,
    index: usize,
    member: usize,
    input: T,
}

/// Answers `requests` together; `max_batch` rows run per forward pass.
pub fn answer(set: &PackSet, requests: &[Request], max_batch: usize) -> Vec<Reply> {
    let mut replies: Vec<Reply> = vec![Ok(Value::Null); requests.len()];
    let mut results: Vec<Vec<Value>> = requests
        .iter()
        .map(|r| vec![Value::Null; r.inputs.len()])
        .collect();
    let (mut subjects, mut examples) = (Vec::new(), Vec::new());
    for (r, request) in requests.iter().enumerate() {
        if let Err(e) = parse(set, r, request, &mut subjects, &mut examples) {
            replies[r] = Err(e);
        }
    }
    let top_k = requests.iter().map(|r| r.top_k).max().unwrap_or(1);
    let mut run = || -> anyhow::Result<()> {
        let (Some(prompts), members) = (set.stacked(), set.members()) else {
            return Ok(());
        };
        let inputs: Vec<(usize, &str)> = subjects
            .iter()
            .map(|s: &Ready<String>| (s.member, s.input.as_str()))
            .collect();
        let fixed = (prompts, Some(set.cache()));
        let ranked = rank_subjects(set.shared(), &members, fixed, &inputs, top_k, max_batch)?;
        for (s, result) in subjects.iter().zip(ranked) {
            let keep = requests[s.request].top_k;
            let value = result
                .map(|(_, p)| json!({"subject": s.input, "top": &p.top[..keep.min(p.top.len())]}));
            settle(&mut replies, &mut results, s.request, s.index, value);
        }
        let inputs: Vec<(usize, &Example)> = examples
            .iter()
            .map(|e: &Ready<Example>| (e.member, &e.input))
            .collect();
        let ranked = rank_answers(set.shared(), &members, prompts, &inputs, top_k, max_batch)?;
        for (e, result) in examples.iter().zip(ranked) {
            let keep = requests[e.request].top_k;
            let value = result.map(|a| json!({"answers": &a[..keep.min(a.len())]}));
            settle(&mut replies, &mut results, e.request, e.index, value);
        }
        Ok(())
    };
    if let Err(e) = run() {
        // Requests refused before the forward pass keep their 4xx.
        let failed = (500, format!("the model failed on this batch: {e:#}"));
        return replies
            .into_iter()
            .map(|reply| reply.and(Err(failed.clone())))
            .collect();
    }
    (replies.into_iter().zip(results).zip(requests))
        .map(|((reply, results), request)| {
            reply.map(|_| json!({"pack": request.pack, "results": results}))
        })
        .collect()
}

/// Puts one input's result in place, or fails its request naming the input.
fn settle(
    replies: &mut [Reply],
    results: &mut [Vec<Value>],
    r: usize,
    i: usize,
    value: Result<Value, String>,
) {
    match value {
        Ok(v) => results[r][i] = v,
        Err(reason) if replies[r].is_ok() => {
            replies[r] = Err((
                422,
                format!("input {} cannot be predicted: {reason}", i + 1),
            ));
        }
        Err(_) => {}
    }
}

/// The 404 for a pack name that is not loaded, naming those that are.
pub fn unknown_pack(name: &str, loaded: &[&str]) -> (u16, String) {
    let loaded = match loaded.is_empty() {
        true => "none".to_string(),
        false => loaded.join(", "),
    };
    (
        404,
        format!("no pack named {name} is loaded (loaded: {loaded})"),
    )
}

/// Sorts a request's inputs into subjects and task examples, or says what is wrong with it.
fn parse(
    set: &PackSet,
    r: usize,
    request: &Request,
    subjects: &mut Vec<Ready<String>>,
    examples: &mut Vec<Ready<Example>>,
) -> Result<(), (u16, String)> {
    let member = set
        .find(&request.pack)
        .ok_or_else(|| unknown_pack(&request.pack, &set.names()))?;
    let (start_s, start_e) = (subjects.len(), examples.len());
    for (index, value) in request.inputs.iter().enumerate() {
        let parsed = match set.task(member) {
            None => subject_of(value).map(|s| {
                subjects.push(Ready {
                    request: r,
                    index,
                    member,
                    input: s,
                })
            }),
            Some(def) => example_of(def, value, index).map(|e| {
                examples.push(Ready {
                    request: r,
                    index,
                    member,
                    input: e,
                })
            }),
        };
        if let Err(reason) = parsed {
            subjects.truncate(start_s);
            examples.truncate(start_e);
            return Err((422, format!("input {} {reason}", index + 1)));
        }
    }
    Ok(())
}

/// A relation's input: the subject as a string, or `{"subject": ...}`.
fn subject_of(value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Object(_) => {
            subject(&value.to_string()).map_err(|e| format!("is not a subject: {e}"))?
        }
        _ => return Err("is not a subject: send a string or {\"subject\": ...}".into()),
    };
    match text.is_empty() {
        true => Err("is empty".into()),
        false => Ok(text),
    }
}

/// A task's input: an object of its fields, or the text of its one field.
fn example_of(def: &TaskDef, value: &Value, index: usize) -> Result<Example, String> {
    let not = |why: String| format!("is not an example of task {}: {why}", def.name);
    let fields = match value {
        Value::Object(map) => map.clone(),
        Value::String(s) if s.trim().is_empty() => return Err("is empty".into()),
        Value::String(s) => record(def, s).map_err(|e| not(format!("{e:#}")))?,
        _ => return Err(not("send an object of its fields".into())),
    };
    def.example(&fields, index + 1).map_err(not)
}
