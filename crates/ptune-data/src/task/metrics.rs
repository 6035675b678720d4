//! SuperGLUE's metrics beyond ranking: accuracy, macro-F1 (CB), F1 over answer options and exact
//! match per question (MultiRC), and SQuAD-style token F1 and exact match (ReCoRD).

use std::collections::{BTreeSet, HashMap};

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
