//! Structure-aware mutations of JSON and JSON-lines inputs: byte flips almost always break the
//! syntax and stop at serde, these keep it valid and attack the values the parsers trust.

use crate::mutate::{MAX_INPUT, Rng};
use serde_json::{Value, json};

/// Strings that meant trouble somewhere: number-like, path-like, template-like, control bytes.
const STRINGS: &[&str] = &[
    "",
    "NaN",
    "inf",
    "-1",
    "0",
    "18446744073709551616",
    "../../../../etc/passwd",
    "/",
    "a/b\\c",
    "\u{0}",
    "\u{202e}",
    "[P:99999999999999] [X] [Y]",
    "[X] [Y]",
    "%s%n",
    "F32",
    "Q4_0",
];

/// Mutates one value of a JSON document, or returns `None` when `bytes` is not JSON.
pub fn mutate(rng: &mut Rng, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(bytes).ok()?;
    for _ in 0..1 + rng.below(3) {
        mutate_value(rng, &mut doc);
    }
    let mut out = if rng.one_in(2) {
        serde_json::to_vec(&doc).ok()?
    } else {
        serde_json::to_vec_pretty(&doc).ok()?
    };
    out.truncate(MAX_INPUT);
    Some(out)
}

/// Mutates one line of a JSON-lines file, or duplicates or drops a line.
pub fn mutate_lines(rng: &mut Rng, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let i = rng.below(lines.len());
    match rng.below(6) {
        0 => {
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        1 if lines.len() > 1 => {
            lines.remove(i);
        }
        _ => lines[i] = mutate(rng, &lines[i])?,
    }
    let mut out = lines.join(&b'\n');
    out.truncate(MAX_INPUT);
    Some(out)
}

fn mutate_value(rng: &mut Rng, doc: &mut Value) {
    let n = count(doc);
    let donor = nth(doc, &mut rng.below(n)).map(|v| v.clone());
    let Some(target) = nth(doc, &mut rng.below(n)) else {
        return;
    };
    match target {
        Value::Object(map) if !map.is_empty() && rng.one_in(3) => {
            let key = map.keys().nth(rng.below(map.len())).cloned();
            key.map(|k| map.remove(&k));
        }
        Value::Array(items) if !items.is_empty() && rng.one_in(3) => {
            let i = rng.below(items.len());
            if rng.one_in(2) {
                items.remove(i);
            } else {
                let copy = items[i].clone();
                items.insert(i, copy);
            }
        }
        _ => *target = replacement(rng, target, donor),
    }
}

/// A value of another type, an edge number, a hostile string, or another part of the document.
fn replacement(rng: &mut Rng, old: &Value, donor: Option<Value>) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => json!(rng.interesting()),
        2 => json!(rng.interesting() as i64),
        3 => [
            json!(1e308),
            json!(-1e308),
            json!(-0.0),
            json!(0.5),
            json!(1e-300),
        ][rng.below(5)]
        .clone(),
        4 => json!(STRINGS[rng.below(STRINGS.len())]),
        5 => json!("A".repeat(1 << rng.below(17))),
        6 => [json!([]), json!({}), json!(true), json!([[]])][rng.below(4)].clone(),
        7 => donor.unwrap_or(Value::Null),
        8 => tweak_number(rng, old),
        _ => json!(format!("{}", rng.u64())),
    }
}

/// A number moved by one, doubled or negated: the off-by-ones of counts and shapes.
fn tweak_number(rng: &mut Rng, old: &Value) -> Value {
    match old.as_i64() {
        Some(n) => match rng.below(4) {
            0 => json!(n.wrapping_add(1)),
            1 => json!(n.wrapping_sub(1)),
            2 => json!(n.wrapping_mul(2)),
            _ => json!(n.wrapping_neg()),
        },
        None => json!(0),
    }
}

/// Number of values in the document, containers included.
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// The `k`-th value in pre-order.
fn nth<'a>(v: &'a mut Value, k: &mut usize) -> Option<&'a mut Value> {
    if *k == 0 {
        return Some(v);
    }
    *k -= 1;
    match v {
        Value::Array(items) => items.iter_mut().find_map(|x| nth(x, k)),
        Value::Object(map) => map.values_mut().find_map(|x| nth(x, k)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_mutations_stay_json() {
        let mut rng = Rng::new(3);
        let mut doc = br#"{"a": [1, {"b": "c"}], "d": 2.5}"#.to_vec();
        for _ in 0..500 {
            doc = mutate(&mut rng, &doc).expect("still JSON");
        }
        let lines = b"{\"x\": 1}\n{\"y\": [2]}\n";
        assert!(mutate_lines(&mut rng, lines).is_some());
    }
}
