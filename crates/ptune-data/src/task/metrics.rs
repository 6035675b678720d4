//! SuperGLUE's metrics beyond ranking: accuracy, macro-F1 (CB), F1 over answer options and exact
//! match per question (MultiRC), and SQuAD-style token F1 and exact match (ReCoRD).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::Example;

/// SuperGLUE's scores of a task's predictions, chosen by what its examples hold: accuracy
/// always; macro-F1 over the labels of a label task (CB's second metric); F1a and exact match
/// per group when examples are grouped (MultiRC: the second label is "true"); token F1 and
/// exact match against every right answer's text when examples carry several (ReCoRD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    pub accuracy: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1a: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub em: Option<f64>,
    /// The task's one SuperGLUE number: the mean of its metrics (CB: accuracy and macro-F1;
    /// MultiRC: F1a and EM; ReCoRD: F1 and EM), else accuracy.
    pub superglue: f64,
}

impl TaskScores {
    /// `examples[i]` predicted as its candidate `pred[i]`; `labels` is a label task's label
    /// count (0 for choices): SuperGLUE scores macro-F1 where there are three or more (CB).
    pub fn new(examples: &[&Example], pred: &[usize], labels: usize) -> Self {
        let label_task = labels > 0;
        let gold: Vec<usize> = examples.iter().map(|e| e.gold.unwrap_or(0)).collect();
        let mut scores = TaskScores {
            accuracy: accuracy(pred, &gold),
            macro_f1: label_task.then(|| macro_f1(pred, &gold)),
            ..Self::default()
        };
        if label_task && examples.iter().all(|e| e.group.is_some()) && !examples.is_empty() {
            let truth = |v: &[usize]| v.iter().map(|&l| l == 1).collect::<Vec<_>>();
            let groups: Vec<usize> = examples.iter().filter_map(|e| e.group).collect();
            let (f1a, em) = multirc(&truth(pred), &truth(&gold), &groups);
            (scores.f1a, scores.em) = (Some(f1a), Some(em));
        }
        if examples.iter().any(|e| !e.answers.is_empty()) {
            let each: Vec<(f64, f64)> = examples
                .iter()
                .zip(pred)
                .map(|(e, &p)| {
                    let golds: Vec<&str> = e.answers.iter().map(String::as_str).collect();
                    record(e.choices.get(p).map_or("", String::as_str), &golds)
                })
                .collect();
            let mean = |f: fn(&(f64, f64)) -> f64| ratio_f(each.iter().map(f).sum(), each.len());
            (scores.f1, scores.em) = (Some(mean(|s| s.0)), Some(mean(|s| s.1)));
        }
        scores.superglue = match (scores.f1a.or(scores.f1), scores.em, scores.macro_f1) {
            (Some(f1), Some(em), _) => (f1 + em) / 2.0,
            (_, _, Some(f1)) if labels >= 3 => (scores.accuracy + f1) / 2.0,
            _ => scores.accuracy,
        };
        scores
    }

    /// `accuracy 0.6250  macro-F1 0.4360 ...`: every score present, for a summary line.
    pub fn line(&self) -> String {
        let named = [
            ("accuracy", Some(self.accuracy)),
            ("macro-F1", self.macro_f1),
            ("F1a", self.f1a),
            ("F1", self.f1),
            ("EM", self.em),
        ];
        let parts: Vec<String> = named
            .iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n} {v:.4}")))
            .collect();
        parts.join("  ")
    }
}

/// Share of examples whose predicted label is the gold one (0 for no examples).
pub fn accuracy(pred: &[usize], gold: &[usize]) -> f64 {
    let right = pred.iter().zip(gold).filter(|(p, g)| p == g).count();
    ratio(right, gold.len())
}

/// F1 per label, averaged over the labels that occur in `gold` or `pred` (what SuperGLUE's CB
/// scorer gets from scikit-learn's `f1_score(average="macro")`); a label's F1 is 0 when it has
/// no true positives.
pub fn macro_f1(pred: &[usize], gold: &[usize]) -> f64 {
    let labels: BTreeSet<usize> = pred.iter().chain(gold).copied().collect();
    let f1s: Vec<f64> = labels
        .iter()
        .map(|&label| {
            let pairs = pred.iter().zip(gold);
            let tp = pairs
                .clone()
                .filter(|&(&p, &g)| p == label && g == label)
                .count();
            let predicted = pred.iter().filter(|&&p| p == label).count();
            let actual = gold.iter().filter(|&&g| g == label).count();
            f1(tp, predicted, actual)
        })
        .collect();
    ratio_f(f1s.iter().sum(), f1s.len())
}

/// MultiRC: F1 over every answer option with "true" as the positive class (F1a), and the share
/// of questions (`question[i]` names option `i`'s) whose options are all judged right (EM).
pub fn multirc(pred: &[bool], gold: &[bool], question: &[usize]) -> (f64, f64) {
    let tp = pred.iter().zip(gold).filter(|&(&p, &g)| p && g).count();
    let f1a = f1(
        tp,
        pred.iter().filter(|&&p| p).count(),
        gold.iter().filter(|&&g| g).count(),
    );
    let mut all_right: HashMap<usize, bool> = HashMap::new();
    for ((p, g), q) in pred.iter().zip(gold).zip(question) {
        *all_right.entry(*q).or_insert(true) &= p == g;
    }
    let em = ratio(all_right.values().filter(|&&r| r).count(), all_right.len());
    (f1a, em)
}

/// SQuAD's normalisation: lowercase, punctuation removed, the articles a/an/the dropped,
/// whitespace collapsed.
pub fn normalize_answer(text: &str) -> String {
    let lower = text.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    let words = kept
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"));
    words.collect::<Vec<_>>().join(" ")
}

/// Token F1 between a predicted and a gold answer after [`normalize_answer`] (tokens counted
/// with multiplicity, as SQuAD does).
pub fn token_f1(pred: &str, gold: &str) -> f64 {
    let (p, g) = (normalize_answer(pred), normalize_answer(gold));
    let (p, g): (Vec<&str>, Vec<&str>) = (
        p.split_whitespace().collect(),
        g.split_whitespace().collect(),
    );
    let mut counts: HashMap<&str, usize> = HashMap::new();
    g.iter().for_each(|t| *counts.entry(t).or_default() += 1);
    let common = p
        .iter()
        .filter(|t| match counts.get_mut(*t) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count();
    f1(common, p.len(), g.len())
}

/// ReCoRD: the best token F1 and exact match (after normalisation) of `pred` against any of the
/// gold answers.
pub fn record(pred: &str, golds: &[&str]) -> (f64, f64) {
    let f1 = golds.iter().map(|g| token_f1(pred, g)).fold(0.0, f64::max);
    let norm = normalize_answer(pred);
    let em = golds.iter().any(|g| normalize_answer(g) == norm);
    (f1, if em { 1.0 } else { 0.0 })
}

/// `2PR / (P + R)` from counts; 0 without true positives.
fn f1(tp: usize, predicted: usize, actual: usize) -> f64 {
    if tp == 0 {
        return 0.0;
    }
    let (p, r) = (tp as f64 / predicted as f64, tp as f64 / actual as f64);
    2.0 * p * r / (p + r)
}

fn ratio(n: usize, d: usize) -> f64 {
    ratio_f(n as f64, d)
}

fn ratio_f(n: f64, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn example(gold: usize, group: Option<usize>, choices: &[&str], answers: &[&str]) -> Example {
        Example {
            fields: Default::default(),
            choices: choices.iter().map(|s| s.to_string()).collect(),
            gold: Some(gold),
            answers: answers.iter().map(|s| s.to_string()).collect(),
            group,
            line: 1,
        }
    }

    /// A label task: accuracy and macro-F1; grouped examples add MultiRC's F1a and EM (the
    /// hand-made case of `multirc_scores_options_and_questions`, as labels 0/1).
    #[test]
    fn task_scores_follow_what_the_examples_hold() {
        let plain: Vec<Example> = [0, 0, 1, 1, 2].map(|g| example(g, None, &[], &[])).into();
        let plain_refs: Vec<&Example> = plain.iter().collect();
        let s = TaskScores::new(&plain_refs, &[0, 1, 1, 1, 2], 3);
        close(s.accuracy, 0.8);
        close(s.macro_f1.unwrap(), 37.0 / 45.0);
        close(s.superglue, (0.8 + 37.0 / 45.0) / 2.0);
        assert_eq!((s.f1a, s.f1, s.em), (None, None, None));
        let grouped: Vec<Example> = [(1, 0), (0, 0), (1, 0), (0, 1), (1, 1)]
            .map(|(g, q)| example(g, Some(q), &[], &[]))
            .into();
        let refs: Vec<&Example> = grouped.iter().collect();
        let s = TaskScores::new(&refs, &[1, 1, 1, 0, 1], 2);
        close(s.f1a.unwrap(), 6.0 / 7.0);
        close(s.em.unwrap(), 0.5);
        close(s.superglue, (6.0 / 7.0 + 0.5) / 2.0);
        let line = format!(
            "accuracy 0.8000  macro-F1 {:.4}  F1a 0.8571  EM 0.5000",
            s.macro_f1.unwrap()
        );
        assert_eq!(s.line(), line);
        // Two labels, no groups: accuracy is the SuperGLUE score (RTE, BoolQ, WiC, WSC).
        let s = TaskScores::new(&plain_refs[..3], &[0, 1, 1], 2);
        close(s.superglue, 2.0 / 3.0);
    }

    /// Choices with several right texts (ReCoRD): the predicted candidate's text against the
    /// best of them. Example 1 picks "Paris" (F1 1, EM 1), example 2 picks "France" against
    /// "Paris, France" (F1 2/3, EM 0): F1 5/6, EM 1/2; accuracy against the trained gold 1/2.
    #[test]
    fn record_scores_compare_the_chosen_text() {
        let a = example(0, None, &["Paris", "London"], &["paris"]);
        let b = example(0, None, &["Paris, France", "France"], &["Paris, France"]);
        let s = TaskScores::new(&[&a, &b], &[0, 1], 0);
        close(s.accuracy, 0.5);
        close(s.f1.unwrap(), 5.0 / 6.0);
        close(s.em.unwrap(), 0.5);
        close(s.superglue, (5.0 / 6.0 + 0.5) / 2.0);
        assert_eq!(s.macro_f1, None);
    }

    #[test]
    fn accuracy_counts_matches() {
        close(accuracy(&[0, 1, 1, 0], &[0, 1, 0, 0]), 0.75);
        close(accuracy(&[], &[]), 0.0);
    }

    /// gold 0 0 1 1 2, pred 0 1 1 1 2: label 0 P 1 R 1/2 F1 2/3; label 1 P 2/3 R 1 F1 4/5;
    /// label 2 F1 1; mean (2/3 + 4/5 + 1) / 3 = 37/45.
    #[test]
    fn macro_f1_averages_each_labels_f1() {
        close(macro_f1(&[0, 1, 1, 1, 2], &[0, 0, 1, 1, 2]), 37.0 / 45.0);
        // A label only predicted (never gold) counts with F1 0: labels {0, 1}, F1 (2/3 + 0) / 2.
        close(macro_f1(&[0, 1], &[0, 0]), 1.0 / 3.0);
    }

    /// Question 0: gold T F T, pred T T T (wrong); question 1: gold F T, pred F T (right).
    /// Options: 4 predicted true, 3 gold true, 3 both: P 3/4, R 1, F1a 6/7; EM 1/2.
    #[test]
    fn multirc_scores_options_and_questions() {
        let gold = [true, false, true, false, true];
        let pred = [true, true, true, false, true];
        let (f1a, em) = multirc(&pred, &gold, &[0, 0, 0, 1, 1]);
        close(f1a, 6.0 / 7.0);
        close(em, 0.5);
    }

    #[test]
    fn squad_normalisation_and_token_f1() {
        assert_eq!(normalize_answer("The  Eiffel Tower!"), "eiffel tower");
        assert_eq!(normalize_answer("a U.S. state"), "us state");
        // pred eiffel tower in paris, gold eiffel tower: 2 common, P 1/2, R 1, F1 2/3.
        close(
            token_f1("the Eiffel tower in Paris", "Eiffel Tower"),
            2.0 / 3.0,
        );
        close(token_f1("paris paris", "paris"), 2.0 / 3.0);
        close(token_f1("London", "Paris"), 0.0);
    }

    #[test]
    fn record_takes_the_best_gold() {
        let (f1, em) = record("Paris", &["paris", "Paris, France"]);
        close(f1, 1.0);
        close(em, 1.0);
        // france vs paris france: P 1, R 1/2, F1 2/3; no exact match.
        let (f1, em) = record("France", &["Paris, France"]);
        close(f1, 2.0 / 3.0);
        close(em, 0.0);
    }
}
