//! What a run leaves behind: `run.json`, per relation a prompt pack, `history.json` and
//! `curves.svg`, and the summary as a terminal table, `summary.md`, `summary.csv`, `summary.json`.

use super::{FactCounts, Hparams, RelationData, RelationResult, TrainArgs};
use crate::output::{atomic_write, write_json};
use crate::plot::{Curves, curves};
use anyhow::{Context, Result};
use ptune_data::task::metrics::TaskScores;
use ptune_data::{DropReason, Part, Relation, Template, VocabStrategy};
use ptune_encoder::peft::PeftTaskType;
use ptune_encoder::{BackboneIdentity, PromptPack};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

#[derive(Serialize)]
pub struct RunInfo<'a> {
    /// Everything needed to resume the run.
    args: &'a TrainArgs,
    model: &'a str,
    data: String,
    template: String,
    encoder: &'static str,
    vocab: &'static str,
    hparams: &'a Hparams,
    backbone: &'a BackboneIdentity,
}

impl<'a> RunInfo<'a> {
    pub fn new(
        args: &'a TrainArgs,
        model: &'a str,
        hparams: &'a Hparams,
        template: &str,
        backbone: &'a BackboneIdentity,
    ) -> Self {
        Self {
            args,
            model,
            data: args
                .data
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            template: template.to_string(),
            encoder: args.encoder.as_str(),
            vocab: args.vocab.as_str(),
            hparams,
            backbone,
        }
    }
}

/// One line of the summary.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Row {
    pub relation: String,
    pub label: String,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
    /// The manual template's dev P@1: what the P-tuned prompts must beat.
    #[serde(default)]
    pub manual_dev_p1: f64,
    pub manual_p1: f64,
    pub dev_p1: f64,
    pub test_p1: f64,
    pub test_p10: f64,
    pub test_mrr: f64,
    pub best_epoch: usize,
    pub epochs: usize,
    pub seconds: f64,
    /// Facts in the files, kept and dropped, per split (absent in rows of older runs).
    #[serde(default)]
    pub facts: FactCounts,
    /// A task's SuperGLUE scores on test (absent for a relation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<TestScores>,
}

/// A task's SuperGLUE scores on test, with its manual pattern and with the P-tuned prompts.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TestScores {
    pub manual: TaskScores,
    pub p_tuned: TaskScores,
}

impl Row {
    /// A one-line report printed as each relation finishes.
    pub fn line(&self) -> String {
        format!(
            "{:>6} {:<20} manual P@1 {:.3}  P-tuned test P@1 {:.3} (dev {:.3} at best epoch {} of {}, {:.0}s)",
            self.relation,
            self.label,
            self.manual_p1,
            self.test_p1,
            self.dev_p1,
            self.best_epoch,
            self.epochs,
            self.seconds
        )
    }

    /// Whether the manual prompt did better on dev than the prompts that were kept.
    pub fn loses(&self) -> bool {
        self.dev_p1 < self.manual_dev_p1
    }

    /// Says so in the terminal and the log when P-tuning lost to the manual prompt.
    pub fn warn_if_worse(&self, log: &crate::output::RunLog) {
        if self.loses() {
            log.line(&format!(
                "warning: {}: P-tuning loses to the manual prompt on dev (P@1 {:.3} < {:.3}); \
                 its pack is saved, but the manual template scores better",
                self.relation, self.dev_p1, self.manual_dev_p1
            ));
        }
    }
}

/// Writes a relation's pack, history and curves; returns its summary row.
pub fn write_relation(
    out: &Path,
    vocab: VocabStrategy,
    relation: &Relation,
    identity: &BackboneIdentity,
    data: &RelationData,
    result: &RelationResult,
) -> Result<Row> {
    let dir = out.join(&relation.id);
    let template = &data.template;
    let row = Row {
        relation: relation.id.clone(),
        label: relation.label.clone(),
        train: data.train.len(),
        dev: data.dev.len(),
        test: data.test.len(),
        manual_dev_p1: result.manual_dev.p_at_1,
        manual_p1: result.manual_test.p_at_1,
        dev_p1: result.best_dev.p_at_1,
        test_p1: result.test.p_at_1,
        test_p10: result.test.p_at_10,
        test_mrr: result.test.mrr,
        best_epoch: result.best_epoch,
        epochs: result.epochs_run,
        seconds: result.seconds,
        facts: data.facts.clone(),
        scores: result
            .task_scores
            .clone()
            .map(|(p_tuned, manual)| TestScores { manual, p_tuned }),
    };
    let pack = PromptPack::new(
        result.best_prompts.clone(),
        template.to_string(),
        identity.clone(),
        relation.id.clone(),
    )?
    .with_metric("test_p_at_1", row.test_p1)
    .with_metric("test_p_at_10", row.test_p10)
    .with_metric("test_mrr", row.test_mrr)
    .with_metric("dev_p_at_1", row.dev_p1)
    .with_metric("manual_dev_p_at_1", row.manual_dev_p1)
    .with_metric("manual_test_p_at_1", row.manual_p1)
    .with_metric("best_epoch", row.best_epoch as u64)
    .with_vocab(vocab);
    pack.save(&dir)?;
    if leading_prompts_only(template) {
        // PEFT prepends its virtual tokens, so only such templates mean the same there.
        let task = match identity.architecture.as_str() {
            "bert" | "roberta" => PeftTaskType::FeatureExtraction,
            _ => PeftTaskType::CausalLm,
        };
        pack.write_peft(&dir.join("peft"), task, None)?;
    }
    write_json(&dir.join("history.json"), &result.history)?;
    write_json(&dir.join(ROW), &row)?;
    let loss: Vec<f64> = result.history.iter().map(|e| e.train_loss).collect();
    let dev: Vec<f64> = std::iter::once(result.initial_dev.p_at_1)
        .chain(result.history.iter().map(|e| e.dev.p_at_1))
        .collect();
    let heading = format!(
        "{} {}: P-tuned dev P@1 {:.3}, test P@1 {:.3}",
        relation.id, relation.label, row.dev_p1, row.test_p1
    );
    let figure = curves(&Curves {
        heading: &heading,
        loss: &loss,
        dev: &dev,
        manual_dev: row.manual_dev_p1,
        best_epoch: row.best_epoch,
    });
    atomic_write(&dir.join("curves.svg"), figure.svg().as_bytes())?;
    atomic_write(&dir.join("curves.png"), &figure.png(2)?)?;
    Ok(row)
}

/// Whether every prompt slot comes first (`[P:n] ...`), the only layout PEFT's adapter expresses.
fn leading_prompts_only(template: &Template) -> bool {
    matches!(template.pieces().first().map(|p| &p.part), Some(Part::Prompt(n)) if *n == template.n_prompts())
}

/// Marks a finished relation (written last) and holds its summary row.
const ROW: &str = "row.json";

/// The summary row of a relation a previous (resumed) run finished.
pub fn finished_row(dir: &Path) -> Result<Option<Row>> {
    let path = dir.join(ROW);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let row = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a ptune result row", path.display()))?;
    Ok(Some(row))
}

/// Prints the table and writes `summary.md`, `summary.csv` and `summary.json`.
pub fn write_summary(out: &Path, rows: &[Row]) -> Result<()> {
    let macro_row = macro_average(rows);
    let losing = rows.iter().filter(|r| r.loses()).count();
    let table = markdown(rows, &macro_row);
    println!("\n{}", terminal_table(rows, &macro_row, &table));
    let facts = facts_markdown(rows);
    let scores = scores_markdown(rows);
    if !scores.is_empty() {
        println!("SuperGLUE scores on test:\n{scores}");
    }
    atomic_write(
        &out.join("summary.md"),
        format!("{table}\n{scores}\n{facts}").as_bytes(),
    )?;
    atomic_write(&out.join("summary.csv"), csv(rows, &macro_row).as_bytes())?;
    write_json(
        &out.join("summary.json"),
        &serde_json::json!({"relations": rows, "macro": macro_row, "losing_relations": losing}),
    )
}

/// The macro average over relations; counts are summed.
fn macro_average(rows: &[Row]) -> Row {
    let n = rows.len().max(1) as f64;
    let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let mut facts = FactCounts::default();
    for r in rows {
        facts.train.merge(&r.facts.train);
        facts.dev.merge(&r.facts.dev);
        facts.test.merge(&r.facts.test);
    }
    Row {
        relation: "macro".into(),
        label: "average".into(),
        train: rows.iter().map(|r| r.train).sum(),
        dev: rows.iter().map(|r| r.dev).sum(),
        test: rows.iter().map(|r| r.test).sum(),
        manual_dev_p1: mean(|r| r.manual_dev_p1),
        manual_p1: mean(|r| r.manual_p1),
        dev_p1: mean(|r| r.dev_p1),
        test_p1: mean(|r| r.test_p1),
        test_p10: mean(|r| r.test_p10),
        test_mrr: mean(|r| r.test_mrr),
        best_epoch: 0,
        epochs: rows.iter().map(|r| r.epochs).sum(),
        seconds: rows.iter().map(|r| r.seconds).sum(),
        facts,
        scores: None,
    }
}

/// Tasks' SuperGLUE scores on test, manual pattern against P-tuned, with the macro average of
/// each side's SuperGLUE score; empty when no row is a task.
fn scores_markdown(rows: &[Row]) -> String {
    let scored: Vec<(&str, &TestScores)> = rows
        .iter()
        .filter_map(|r| Some((r.relation.as_str(), r.scores.as_ref()?)))
        .collect();
    if scored.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "| task | manual SuperGLUE | P-tuned SuperGLUE | manual scores | P-tuned scores |\n|---|---|---|---|---|\n",
    );
    for (task, t) in &scored {
        let _ = writeln!(
            s,
            "| {task} | {:.3} | {:.3} | {} | {} |",
            t.manual.superglue,
            t.p_tuned.superglue,
            t.manual.line(),
            t.p_tuned.line()
        );
    }
    let n = scored.len() as f64;
    let mean = |f: fn(&TestScores) -> f64| scored.iter().map(|(_, t)| f(t)).sum::<f64>() / n;
    let _ = writeln!(
        s,
        "| macro | {:.3} | {:.3} | | |",
        mean(|t| t.manual.superglue),
        mean(|t| t.p_tuned.superglue)
    );
    s
}

/// The full table where it fits the terminal; on a narrower one (or 80 columns) the compact
/// form. Output that is not a terminal gets the full table, as `summary.md` has it.
fn terminal_table(rows: &[Row], macro_row: &Row, full: &str) -> String {
    let widest = full.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    match console::Term::stdout().size_checked() {
        Some((_, columns)) if widest > columns as usize => compact(rows, macro_row),
        _ => full.to_string(),
    }
}

const HEADER: [&str; 14] = [
    "relation",
    "label",
    "train",
    "dev",
    "test",
    "manual P@1",
    "manual dev P@1",
    "dev P@1",
    "loses",
    "test P@1",
    "test P@10",
    "test MRR",
    "epochs",
    "seconds",
];

fn cells(r: &Row) -> [String; 14] {
    [
        r.relation.clone(),
        r.label.clone(),
        r.train.to_string(),
        r.dev.to_string(),
        r.test.to_string(),
        format!("{:.3}", r.manual_p1),
        format!("{:.3}", r.manual_dev_p1),
        format!("{:.3}", r.dev_p1),
        loses_cell(r),
        format!("{:.3}", r.test_p1),
        format!("{:.3}", r.test_p10),
        format!("{:.3}", r.test_mrr),
        r.epochs.to_string(),
        format!("{:.0}", r.seconds),
    ]
}

fn loses_cell(r: &Row) -> String {
    if r.loses() { "LOSES" } else { "" }.to_string()
}

fn markdown(rows: &[Row], macro_row: &Row) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        HEADER.join(" | "),
        "---|".repeat(HEADER.len())
    );
    for r in rows.iter().chain([macro_row]) {
        let _ = writeln!(s, "| {} |", cells(r).join(" | "));
    }
    s
}

/// The results in under 80 columns: no label or counts, two header lines.
fn compact(rows: &[Row], macro_row: &Row) -> String {
    let head = [
        [
            "", "manual", "manual", "P-tuned", "P-tuned", "test", "test", "", "", "",
        ],
        [
            "relation", "dev P@1", "test P@1", "dev P@1", "test P@1", "P@10", "MRR", "epochs", "s",
            "",
        ],
    ];
    let body = rows.iter().chain([macro_row]).map(|r| {
        [
            r.relation.clone(),
            format!("{:.3}", r.manual_dev_p1),
            format!("{:.3}", r.manual_p1),
            format!("{:.3}", r.dev_p1),
            format!("{:.3}", r.test_p1),
            format!("{:.3}", r.test_p10),
            format!("{:.3}", r.test_mrr),
            r.epochs.to_string(),
            format!("{:.0}", r.seconds),
            loses_cell(r),
        ]
    });
    let lines: Vec<[String; 10]> = head
        .iter()
        .map(|h| h.map(String::from))
        .chain(body)
        .collect();
    let widths: Vec<usize> = (0..10)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for line in &lines {
        let mut text = format!("{:<w$}", line[0], w = widths[0]);
        for c in 1..9 {
            let _ = write!(text, "  {:>w$}", line[c], w = widths[c]);
        }
        let _ = write!(text, " {}", line[9]);
        let _ = writeln!(s, "{}", text.trim_end());
    }
    s
}

/// Per relation and split: facts in the files, kept, and dropped by reason.
fn facts_markdown(rows: &[Row]) -> String {
    let mut s =
        String::from("| relation | split | in files | kept | dropped |\n|---|---|---|---|---|\n");
    for r in rows {
        for (split, report) in r.facts.splits() {
            let _ = writeln!(
                s,
                "| {} | {split} | {} | {} | {} |",
                r.relation,
                report.total,
                report.kept,
                report.reasons()
            );
        }
    }
    s
}

/// The summary table's columns, then per split the facts in the files and, for each reason any
/// relation dropped facts for, how many.
fn csv(rows: &[Row], macro_row: &Row) -> String {
    let all: Vec<&Row> = rows.iter().chain([macro_row]).collect();
    let mut header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    let mut columns: Vec<(usize, Option<DropReason>)> = Vec::new();
    for (i, (split, _)) in FactCounts::default().splits().iter().enumerate() {
        header.push(format!("{split} in files"));
        columns.push((i, None));
        let reasons: std::collections::BTreeSet<DropReason> = all
            .iter()
            .flat_map(|r| {
                r.facts.splits()[i]
                    .1
                    .dropped
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect();
        for reason in reasons {
            header.push(format!("{split} dropped: {reason}"));
            columns.push((i, Some(reason)));
        }
    }
    let mut s = header.join(",") + "\n";
    for r in all {
        let mut fields: Vec<String> = cells(r).to_vec();
        for &(i, reason) in &columns {
            let report = r.facts.splits()[i].1;
            let n = reason.map_or(report.total, |reason| report.count(reason));
            fields.push(n.to_string());
        }
        let quoted: Vec<String> = fields
            .iter()
            .map(|c| match c.contains(',') {
                true => format!("\"{c}\""),
                false => c.clone(),
            })
            .collect();
        s += &(quoted.join(",") + "\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptune_data::DropReport;

    /// Train: 84 in the file, 61 multi-token, 3 beyond the cap; dev and test: 30, 2 too long.
    fn counts() -> FactCounts {
        let report = |total, dropped: &[(DropReason, usize)]| DropReport {
            total,
            kept: total - dropped.iter().map(|d| d.1).sum::<usize>(),
            dropped: dropped.iter().copied().collect(),
        };
        let dev = report(30, &[(DropReason::TooLong, 2)]);
        FactCounts {
            train: report(
                84,
                &[(DropReason::MultiTokenObject, 61), (DropReason::OverCap, 3)],
            ),
            dev: dev.clone(),
            test: dev,
        }
    }

    fn row(relation: &str, seconds: f64) -> Row {
        Row {
            relation: relation.into(),
            label: "native language".into(),
            train: 20,
            dev: 28,
            test: 28,
            manual_dev_p1: 0.5,
            manual_p1: 0.25,
            dev_p1: 0.25,
            test_p1: 1.0 / 3.0,
            test_p10: 0.9,
            test_mrr: 0.7,
            best_epoch: 6,
            epochs: 12,
            seconds,
            facts: counts(),
            scores: None,
        }
    }

    /// Every split's counts reach the summary: in-file totals and per-reason drops in the CSV
    /// (summed in the macro row), and a per-split table in `summary.md`.
    #[test]
    fn fact_counts_reach_every_summary_file() {
        let tmp = tempfile::tempdir().unwrap();
        write_summary(tmp.path(), &[row("P103", 76.0), row("P1412", 130.0)]).unwrap();
        let csv = std::fs::read_to_string(tmp.path().join("summary.csv")).unwrap();
        let lines: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
        let column = |name: &str| lines[0].iter().position(|h| *h == name).unwrap();
        let macro_line = &lines[3];
        assert_eq!(macro_line[column("train in files")], "168");
        assert_eq!(
            macro_line[column("train dropped: multi-token object")],
            "122"
        );
        assert_eq!(macro_line[column("train dropped: beyond --max-train")], "6");
        assert_eq!(
            lines[1][column("dev dropped: longer than the maximum length")],
            "2"
        );
        assert_eq!(lines[1][column("test in files")], "30");
        let md = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
        assert!(
            md.contains("| P103 | train | 84 | 20 | 61 multi-token object, 3 beyond --max-train |"),
            "{md}"
        );
        let json = std::fs::read_to_string(tmp.path().join("summary.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["macro"]["facts"]["dev"]["total"], 60);
        assert_eq!(
            json["relations"][1]["facts"]["train"]["dropped"]["over-cap"],
            3
        );
    }

    /// The compact table fits 80 columns with long relation ids and four-digit seconds, and
    /// keeps the "P-tuning loses" flag.
    #[test]
    fn the_compact_table_fits_80_columns() {
        let rows = [row("P1412", 1234.0), row("P103", 76.0)];
        let table = compact(&rows, &macro_average(&rows));
        for line in table.lines() {
            assert!(line.chars().count() <= 80, "{} columns: {line}", line.len());
        }
        assert!(table.lines().nth(2).unwrap().ends_with("LOSES"), "{table}");
        let full = markdown(&rows, &macro_average(&rows));
        assert!(
            full.lines().next().unwrap().len() > 80,
            "the full table needs the compact one"
        );
    }

    /// `--resume` reads finished relations back: their metrics must equal the ones written, bit
    /// for bit (serde_json's default float parser is off by an ulp for values like 7/30).
    #[test]
    fn finished_rows_read_back_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let row = Row {
            relation: "P1".into(),
            label: "near".into(),
            train: 1,
            dev: 1,
            test: 1,
            manual_dev_p1: 0.7,
            manual_p1: 0.1 + 0.2,
            dev_p1: 7.0 / 30.0,
            test_p1: 2.0 / 3.0,
            test_p10: 0.20000000000000118,
            test_mrr: 7.0 / 30.0 + 1e-17,
            best_epoch: 1,
            epochs: 2,
            seconds: 1.0 / 7.0,
            facts: counts(),
            scores: None,
        };
        write_json(&tmp.path().join(ROW), &row).unwrap();
        let back = finished_row(tmp.path()).unwrap().unwrap();
        let bits = |r: &Row| {
            [
                r.manual_dev_p1,
                r.manual_p1,
                r.dev_p1,
                r.test_p1,
                r.test_p10,
                r.test_mrr,
                r.seconds,
            ]
            .map(f64::to_bits)
        };
        assert_eq!(bits(&back), bits(&row));
        assert_eq!(back.facts.train, row.facts.train);
    }

    /// A relation whose kept prompts score below the manual prompt on dev is flagged in its
    /// summary cells; an equal score is not a loss.
    #[test]
    fn a_loss_to_the_manual_prompt_is_flagged() {
        let row = |dev_p1, manual_dev_p1| Row {
            relation: "P1".into(),
            label: "near".into(),
            train: 1,
            dev: 1,
            test: 1,
            manual_dev_p1,
            manual_p1: 0.5,
            dev_p1,
            test_p1: 0.5,
            test_p10: 0.5,
            test_mrr: 0.5,
            best_epoch: 1,
            epochs: 1,
            seconds: 1.0,
            facts: counts(),
            scores: None,
        };
        let loses = HEADER.iter().position(|h| *h == "loses").unwrap();
        assert_eq!(cells(&row(0.2, 0.4))[loses], "LOSES");
        assert_eq!(cells(&row(0.4, 0.4))[loses], "");
        assert_eq!(cells(&row(0.6, 0.4))[loses], "");
        assert!(
            csv(&[row(0.2, 0.4)], &row(0.2, 0.4))
                .lines()
                .nth(1)
                .unwrap()
                .contains("LOSES")
        );
    }
}
