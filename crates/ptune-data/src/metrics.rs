//! Ranking metrics: P@1 (hit@1), P@10 (hit@10) and MRR, per relation and averaged over relations.
//!
//! **Ties** are broken by token id, lower first, which is what an argmax that returns the first
//! maximum (`torch.argmax`, `Iterator::max_by` over ids in reverse) does: the rank of the object
//! is `1 + #{allowed j: s_j > s_obj} + #{allowed j < obj: s_j == s_obj}`. This is deterministic and
//! neither optimistic (ties never all favour the object) nor pessimistic.
//! **NaN**: a NaN score is never greater than anything, so NaN tokens sink to the bottom; a NaN
//! score for the object itself ranks it last among the allowed tokens.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{AllowedVocab, Error, Result};

/// The 1-based rank of `object_id` in one score row, among the allowed ids (all ids if `None`).
pub fn rank(scores: &[f32], object_id: u32, allowed: Option<&AllowedVocab>) -> Result<usize> {
    let gold = object_id as usize;
    let Some(&s) = scores.get(gold) else {
        return Err(Error::ObjectOutOfRange {
            id: object_id,
            len: scores.len(),
        });
    };
    if allowed.is_some_and(|a| !a.contains(object_id)) {
        return Err(Error::ObjectNotAllowed { id: object_id });
    }
    let ahead = |j: usize| scores[j] > s || (scores[j] == s && j < gold);
    let count = match allowed {
        None if s.is_nan() => scores.len(),
        None => (0..scores.len()).filter(|&j| ahead(j)).count() + 1,
        Some(a) => {
            let ids = a
                .ids()
                .iter()
                .map(|&j| j as usize)
                .filter(|&j| j < scores.len());
            if s.is_nan() {
                ids.count()
            } else {
                ids.filter(|&j| ahead(j)).count() + 1
            }
        }
    };
    Ok(count)
}

/// Ranks for a flattened `[rows, width]` score matrix, one object id per row.
pub fn ranks(
    scores: &[f32],
    width: usize,
    object_ids: &[u32],
    allowed: Option<&AllowedVocab>,
) -> Result<Vec<usize>> {
    let rows = object_ids.len();
    if scores.len() != rows * width {
        return Err(Error::ScoreShape {
            len: scores.len(),
            rows,
            width,
        });
    }
    let row = |i: usize| &scores[i * width..(i + 1) * width];
    let ranked = object_ids.iter().enumerate();
    ranked.map(|(i, &id)| rank(row(i), id, allowed)).collect()
}

/// Running counts for one set of examples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RankStats {
    pub n: usize,
    pub hits_at_1: usize,
    pub hits_at_10: usize,
    pub reciprocal_rank_sum: f64,
}

impl RankStats {
    /// Adds one example with its 1-based rank.
    pub fn add(&mut self, rank: usize) {
        let rank = rank.max(1);
        self.n += 1;
        self.hits_at_1 += usize::from(rank == 1);
        self.hits_at_10 += usize::from(rank <= 10);
        self.reciprocal_rank_sum += 1.0 / rank as f64;
    }

    /// Fractions over the examples seen (all zero when there were none).
    pub fn summary(&self) -> Summary {
        let frac = |x: f64| if self.n == 0 { 0.0 } else { x / self.n as f64 };
        Summary {
            n: self.n,
            p_at_1: frac(self.hits_at_1 as f64),
            p_at_10: frac(self.hits_at_10 as f64),
            mrr: frac(self.reciprocal_rank_sum),
        }
    }
}

/// Metrics as fractions in `[0, 1]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub n: usize,
    pub p_at_1: f64,
    pub p_at_10: f64,
    pub mrr: f64,
}

/// Rank statistics per relation, with the macro average LAMA reports (mean of the relations'
/// metrics, each relation weighing the same) and the micro average (pooled examples).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsTable {
    relations: BTreeMap<String, RankStats>,
}

impl MetricsTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, relation: &str, rank: usize) {
        self.relations
            .entry(relation.to_string())
            .or_default()
            .add(rank);
    }

    pub fn add_ranks(&mut self, relation: &str, ranks: &[usize]) {
        for &r in ranks {
            self.add(relation, r);
        }
    }

    /// One relation's metrics, if it has any examples.
    pub fn relation(&self, relation: &str) -> Option<Summary> {
        self.relations.get(relation).map(RankStats::summary)
    }

    /// Every relation's metrics, by relation id.
    pub fn per_relation(&self) -> BTreeMap<String, Summary> {
        let rows = self.relations.iter();
        rows.map(|(id, s)| (id.clone(), s.summary())).collect()
    }

    /// Mean over relations of each metric; `n` is the total number of examples.
    pub fn macro_average(&self) -> Summary {
        let rows: Vec<Summary> = self.relations.values().map(RankStats::summary).collect();
        let k = rows.len().max(1) as f64;
        let mean = |f: fn(&Summary) -> f64| rows.iter().map(f).sum::<f64>() / k;
        Summary {
            n: rows.iter().map(|s| s.n).sum(),
            p_at_1: mean(|s| s.p_at_1),
            p_at_10: mean(|s| s.p_at_10),
            mrr: mean(|s| s.mrr),
        }
    }

    /// All examples pooled, whatever their relation.
    pub fn micro_average(&self) -> Summary {
        let mut all = RankStats::default();
        for s in self.relations.values() {
            all.n += s.n;
            all.hits_at_1 += s.hits_at_1;
            all.hits_at_10 += s.hits_at_10;
            all.reciprocal_rank_sum += s.reciprocal_rank_sum;
        }
        all.summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: [f32; 4] = [0.1, 0.5, 0.3, 0.5];

    #[test]
    fn rank_counts_higher_scores_and_lower_id_ties() {
        // id 1 and id 3 tie at 0.5: the lower id (1) ranks first, as argmax would pick it.
        assert_eq!(rank(&ROW, 1, None).unwrap(), 1);
        assert_eq!(rank(&ROW, 3, None).unwrap(), 2);
        assert_eq!(rank(&ROW, 2, None).unwrap(), 3);
        assert_eq!(rank(&ROW, 0, None).unwrap(), 4);
    }

    #[test]
    fn rank_ignores_ids_outside_the_allowed_set() {
        let allowed = AllowedVocab::from_ids([0, 2, 3]);
        assert_eq!(rank(&ROW, 3, Some(&allowed)).unwrap(), 1);
        assert_eq!(rank(&ROW, 2, Some(&allowed)).unwrap(), 2);
        assert_eq!(rank(&ROW, 0, Some(&allowed)).unwrap(), 3);
        let e = rank(&ROW, 1, Some(&allowed)).unwrap_err();
        assert!(
            e.to_string().contains("not in the allowed vocabulary"),
            "{e}"
        );
        let e = rank(&ROW, 4, None).unwrap_err();
        assert!(
            e.to_string().contains("outside the score row of length 4"),
            "{e}"
        );
    }

    #[test]
    fn nan_scores_sink_to_the_bottom() {
        let row = [f32::NAN, 0.2, 0.1];
        assert_eq!(rank(&row, 1, None).unwrap(), 1);
        assert_eq!(rank(&row, 0, None).unwrap(), 3);
        let allowed = AllowedVocab::from_ids([0, 2]);
        assert_eq!(rank(&row, 0, Some(&allowed)).unwrap(), 2);
    }

    #[test]
    fn ranks_reads_a_flat_matrix_and_checks_its_shape() {
        let scores = [0.9, 0.1, 0.0, 0.2, 0.7, 0.4];
        assert_eq!(ranks(&scores, 3, &[0, 2], None).unwrap(), [1, 2]);
        let e = ranks(&scores, 4, &[0, 2], None).unwrap_err();
        assert!(e.to_string().contains("not 2 rows of 4"), "{e}");
    }

    #[test]
    fn stats_give_p_at_1_p_at_10_and_mrr() {
        let mut s = RankStats::default();
        for r in [1, 2, 11, 1] {
            s.add(r);
        }
        let m = s.summary();
        assert_eq!(m.n, 4);
        assert_eq!(m.p_at_1, 0.5);
        assert_eq!(m.p_at_10, 0.75);
        let mrr = (1.0 + 0.5 + 1.0 / 11.0 + 1.0) / 4.0;
        assert!((m.mrr - mrr).abs() < 1e-12);
        assert_eq!(RankStats::default().summary().p_at_1, 0.0);
    }

    #[test]
    fn macro_average_weighs_relations_equally_micro_weighs_examples() {
        let mut table = MetricsTable::new();
        table.add_ranks("P36", &[1, 1, 2]);
        table.add("P17", 3);
        let p36 = table.relation("P36").unwrap();
        assert!((p36.p_at_1 - 2.0 / 3.0).abs() < 1e-12);
        let macro_avg = table.macro_average();
        assert_eq!(macro_avg.n, 4);
        assert!((macro_avg.p_at_1 - 1.0 / 3.0).abs() < 1e-12);
        let mrr = ((1.0 + 1.0 + 0.5) / 3.0 + 1.0 / 3.0) / 2.0;
        assert!((macro_avg.mrr - mrr).abs() < 1e-12);
        assert_eq!(table.micro_average().p_at_1, 0.5);
        assert_eq!(table.per_relation().len(), 2);
        assert!(table.relation("P19").is_none());
    }
}
