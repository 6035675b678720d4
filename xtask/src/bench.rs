//! `cargo xtask bench`: the macro benchmark. Each case runs `ptune bench` in its own process and
//! prints one JSON line; a markdown table follows. `--short` (CI) times one step per case.

use crate::fetch;
use anyhow::{Context, Result, bail};

/// One case: what model, which template.
struct Case {
    name: &'static str,
    template: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "bert-base (random weights)",
        template: "3,3,3",
    },
    Case {
        name: "SmolLM2-135M",
        template: "[P:3] [X] [P:3] [Y]",
    },
];

pub fn run(args: &[String]) -> Result<()> {
    let steps = match args.first().map(String::as_str) {
        None => "5",
        Some("--short") => "1",
        Some(other) => bail!("unknown argument `{other}`: cargo xtask bench [--short]"),
    };
    let smollm2 = fetch::fetch_named("smollm2")?.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let models = [
        "random:bert-base".to_string(),
        smollm2.to_string_lossy().into_owned(),
    ];
    let mut rows = Vec::new();
    for (case, model) in CASES.iter().zip(&models) {
        let line = run_case(model, case.template, steps)?;
        println!("{line}");
        rows.push((case.name, serde_json::from_str::<serde_json::Value>(&line)?));
    }
    println!("\n{}", table(&rows));
    Ok(())
}

fn run_case(model: &str, template: &str, steps: &str) -> Result<String> {
    let out = crate::ptune(&["bench"])
        .args(["--model", model, "--template", template, "--steps", steps])
        .output()
        .context("could not run cargo")?;
    if !out.status.success() {
        bail!(
            "ptune bench failed for {model}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
    stdout
        .lines()
        .last()
        .map(str::to_string)
        .context("ptune bench printed nothing")
}

fn table(rows: &[(&str, serde_json::Value)]) -> String {
    let mut s = String::from(
        "| case | backend | threads | batch × tokens | load s | train ex/s | eval ex/s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (name, m) in rows {
        let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        s += &format!(
            "| {name} | {} | {} | {} × {} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
            m["backend"].as_str().unwrap_or("?"),
            m["threads"],
            m["batch_size"],
            m["seq_len"],
            f("load_seconds"),
            f("train_examples_per_s"),
            f("eval_examples_per_s"),
            f("peak_rss_mb"),
        );
    }
    s
}
