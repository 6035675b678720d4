//! `cargo xtask seeds`: the main job once per seed, then how much the results move between
//! seeds: per relation and for the macro average, the mean, the spread (max − min) and each
//! seed's value, as a table (`seeds.md`) and JSON (`seeds.json`).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Seeds to train with, comma-separated (34 is `ptune train`'s default).
    #[arg(long, value_delimiter = ',', default_value = "34,1,2")]
    seeds: Vec<u64>,
    /// Directory for one run per seed (`seed-N/`) and the tables [default: runs/smollm2-seeds,
    /// or runs/fewglue-seeds with --fewglue].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run `cargo xtask train fewglue DIR`'s job (every built-in SuperGLUE task on FewGLUE_32dev
    /// in DIR) instead of the main job.
    #[arg(long, value_name = "DIR")]
    fewglue: Option<PathBuf>,
    /// With --fewglue: only these built-in tasks, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "fewglue")]
    tasks: Vec<String>,
    /// More `ptune train` flags for every seed (e.g. `--extra=--min-steps=60`), repeatable.
    #[arg(long, allow_hyphen_values = true)]
    extra: Vec<String>,
    /// Train nothing: tabulate the runs already in OUT/seed-N (for example runs made by hand,
    /// or by a `--ptune` binary on another machine).
    #[arg(long, conflicts_with = "extra")]
    tabulate: bool,
}

pub fn run(args: &Args) -> Result<()> {
    if args.seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    let default_out = match args.fewglue {
        Some(_) => "runs/fewglue-seeds",
        None => "runs/smollm2-seeds",
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_out));
    let mut runs = Vec::new();
    for &seed in &args.seeds {
        let dir = out.join(format!("seed-{seed}"));
        if !args.tabulate {
            train_seed(args, seed, &dir)?;
        }
        runs.push((seed, read_summary(&dir)?));
    }
    let table = spread_table(&runs);
    println!("\n{table}");
    std::fs::write(out.join("seeds.md"), &table)?;
    let json = json!({"seeds": args.seeds, "extra": args.extra, "rows": spread_rows(&runs)});
    std::fs::write(out.join("seeds.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// One seed's run of the job into `dir`.
fn train_seed(args: &Args, seed: u64, dir: &Path) -> Result<()> {
    println!("== seed {seed} → {}", dir.display());
    let mut train = match &args.fewglue {
        Some(data) => crate::train::fewglue_args_to(dir, data, &args.tasks)?,
        None => crate::train::default_args_to(dir)?,
    };
    train.extend(["--seed".to_string(), seed.to_string()]);
    train.extend(args.extra.iter().cloned());
    crate::train::ptune_train(&train).with_context(|| format!("seed {seed}"))
}

fn read_summary(dir: &Path) -> Result<Value> {
    let path = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut summary = serde_json::from_str(&text)?;
    superglue_columns(&mut summary);
    Ok(summary)
}

/// Tasks' SuperGLUE numbers on test as plain columns of their rows (`manual_superglue`,
/// `superglue`) and their mean in the macro row, so they spread over seeds like P@1.
fn superglue_columns(summary: &mut Value) {
    let mut sums = (0.0, 0.0, 0usize);
    for row in summary["relations"].as_array_mut().into_iter().flatten() {
        let side = |key: &str| row["scores"][key]["superglue"].as_f64();
        if let (Some(manual), Some(tuned)) = (side("manual"), side("p_tuned")) {
            row["manual_superglue"] = manual.into();
            row["superglue"] = tuned.into();
            sums = (sums.0 + manual, sums.1 + tuned, sums.2 + 1);
        }
    }
    if sums.2 > 0 {
        let n = sums.2 as f64;
        summary["macro"]["manual_superglue"] = (sums.0 / n).into();
        summary["macro"]["superglue"] = (sums.1 / n).into();
    }
}

/// Per relation (then `macro`): its summary rows over the seeds, in seed order.
fn by_relation(runs: &[(u64, Value)]) -> Vec<(String, Vec<Value>)> {
    let Some((_, first)) = runs.first() else {
        return Vec::new();
    };
    let ids: Vec<String> = first["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["relation"].as_str().map(String::from))
        .collect();
    let row = |summary: &Value, id: &str| -> Value {
        match id {
            "macro" => summary["macro"].clone(),
            _ => summary["relations"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["relation"] == id).cloned())
                .unwrap_or(Value::Null),
        }
    };
    ids.iter()
        .map(String::as_str)
        .chain(["macro"])
        .map(|id| {
            (
                id.to_string(),
                runs.iter().map(|(_, s)| row(s, id)).collect(),
            )
        })
        .collect()
}

/// Mean, max − min, and the values of one metric.
fn stats(rows: &[Value], key: &str) -> (f64, f64, Vec<f64>) {
    let values: Vec<f64> = rows.iter().filter_map(|r| r[key].as_f64()).collect();
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, if values.is_empty() { 0.0 } else { hi - lo }, values)
}

fn spread_rows(runs: &[(u64, Value)]) -> Vec<Value> {
    by_relation(runs)
        .iter()
        .map(|(id, rows)| {
            let metric = |key| {
                let (mean, spread, values) = stats(rows, key);
                json!({"mean": mean, "spread": spread, "values": values})
            };
            let losing = rows
                .iter()
                .filter(|r| r["dev_p1"].as_f64() < r["manual_dev_p1"].as_f64())
                .count();
            json!({
                "relation": id,
                "manual_dev_p1": metric("manual_dev_p1"),
                "manual_test_p1": metric("manual_p1"),
                "dev_p1": metric("dev_p1"),
                "test_p1": metric("test_p1"),
                "manual_superglue": metric("manual_superglue"),
                "superglue": metric("superglue"),
                "seconds": metric("seconds"),
                "runs_losing_on_dev": losing,
            })
        })
        .collect()
}

fn spread_table(runs: &[(u64, Value)]) -> String {
    let seeds: Vec<String> = runs.iter().map(|(s, _)| s.to_string()).collect();
    let mut s = format!(
        "| relation | manual dev P@1 | manual test P@1 | dev P@1 mean | test P@1 mean | test P@1 spread | test P@1 per seed ({}) | runs below manual on dev |\n|---|---|---|---|---|---|---|---|\n",
        seeds.join(", ")
    );
    for row in spread_rows(runs) {
        let per_seed: Vec<String> = row["test_p1"]["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| format!("{:.3}", v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        let mean = |key: &str| row[key]["mean"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            row["relation"].as_str().unwrap_or("?"),
            mean("manual_dev_p1"),
            mean("manual_test_p1"),
            mean("dev_p1"),
            mean("test_p1"),
            row["test_p1"]["spread"].as_f64().unwrap_or(f64::NAN),
            per_seed.join(" "),
            row["runs_losing_on_dev"],
        );
    }
    s + &superglue_table(runs)
}

/// The SuperGLUE numbers on test over the seeds, for runs of tasks (empty otherwise).
fn superglue_table(runs: &[(u64, Value)]) -> String {
    let rows: Vec<Value> = spread_rows(runs)
        .into_iter()
        .filter(|r| {
            r["superglue"]["values"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n| task | manual SuperGLUE | P-tuned SuperGLUE mean | spread | per seed |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let per_seed: Vec<String> = row["superglue"]["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| format!("{:.3}", v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.3} | {} |",
            row["relation"].as_str().unwrap_or("?"),
            row["manual_superglue"]["mean"].as_f64().unwrap_or(f64::NAN),
            row["superglue"]["mean"].as_f64().unwrap_or(f64::NAN),
            row["superglue"]["spread"].as_f64().unwrap_or(f64::NAN),
            per_seed.join(" ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p36: f64, p30: f64) -> Value {
        let row = |id: &str, test: f64| {
            json!({"relation": id, "test_p1": test, "dev_p1": 0.5, "manual_dev_p1": 0.6,
                   "manual_p1": 0.4, "seconds": 10.0})
        };
        json!({
            "relations": [row("P36", p36), row("P30", p30)],
            "macro": row("macro", (p36 + p30) / 2.0),
        })
    }

    /// Task runs spread their SuperGLUE numbers too: each task's, and their mean per seed.
    #[test]
    fn task_runs_spread_their_superglue_numbers() {
        let summary = |cb: f64, rte: f64| {
            let row = |id: &str, tuned: f64| {
                json!({"relation": id, "test_p1": 0.5, "dev_p1": 0.5, "manual_dev_p1": 0.5,
                       "manual_p1": 0.4, "seconds": 1.0,
                       "scores": {"manual": {"superglue": 0.4}, "p_tuned": {"superglue": tuned}}})
            };
            let mut s = json!({"relations": [row("cb", cb), row("rte", rte)],
                               "macro": {"relation": "macro", "test_p1": 0.5}});
            superglue_columns(&mut s);
            s
        };
        let runs = vec![(34, summary(0.6, 0.5)), (1, summary(0.8, 0.5))];
        let rows = spread_rows(&runs);
        assert!((rows[0]["superglue"]["mean"].as_f64().unwrap() - 0.7).abs() < 1e-12);
        assert!((rows[2]["superglue"]["spread"].as_f64().unwrap() - 0.1).abs() < 1e-12);
        let table = spread_table(&runs);
        assert!(
            table.contains("| cb | 0.400 | 0.700 | 0.200 | 0.600 0.800 |"),
            "{table}"
        );
        assert!(
            table.contains("| macro | 0.400 | 0.600 | 0.100 | 0.550 0.650 |"),
            "{table}"
        );
    }

    /// Mean, spread and per-seed values per relation and for the macro row; a run whose dev
    /// P@1 is below the manual prompt's is counted.
    #[test]
    fn spread_is_max_minus_min_per_relation_and_macro() {
        let runs = vec![(34, summary(0.5, 0.9)), (1, summary(0.7, 0.9))];
        let rows = spread_rows(&runs);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["relation"], "P36");
        assert!((rows[0]["test_p1"]["mean"].as_f64().unwrap() - 0.6).abs() < 1e-12);
        assert!((rows[0]["test_p1"]["spread"].as_f64().unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(rows[1]["test_p1"]["spread"], 0.0);
        assert!((rows[2]["test_p1"]["spread"].as_f64().unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(rows[0]["runs_losing_on_dev"], 2);
        let table = spread_table(&runs);
        assert!(
            table.contains("| P36 | 0.600 | 0.400 | 0.500 | 0.600 | 0.200 | 0.500 0.700 | 2 |"),
            "{table}"
        );
        assert!(table.contains("per seed (34, 1)"));
    }
}
