//! How a task's examples are grouped into forward passes that fit in memory: evaluation's
//! batches, and the parts a training step's batch is computed in. Attention's scores grow with
//! the square of a row's length and a training pass keeps every layer's activations for
//! backward, so a batch of long passages (MultiRC's, BoolQ's) is cut by what it computes, not
//! by how many examples it holds.

use ptune_data::task::ScoredExample;

/// The most one forward pass of a task computes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub examples: usize,
    /// A causal model reads each candidate of several tokens in a row of its own.
    pub rows: usize,
    /// Outputs the LM head scores: each is a row of logits over the vocabulary.
    pub outputs: usize,
    /// Positions computed: a shared prefix once, then rows × their longest rest.
    pub positions: usize,
    /// A causal model takes each row's lead (its words before the first prompt) from keys and
    /// values kept apart (`outlives_prompts` in `PrefixCache::forward_rows`): only the rest
    /// counts.
    pub leads_kept: bool,
}

impl Limits {
    /// Evaluation keeps no activations for backward, so its batches are big. More examples
    /// than a training batch: a causal model computes a passage its examples share once per
    /// batch (MultiRC's answers to one paragraph), so the more of them a batch holds, the less
    /// is computed again. 1,024 of SmolLM2's output rows are 200 MB; 8,192 positions keep
    /// BoolQ's 1,100-token passages to 7 a batch.
    pub const EVAL: Limits = Limits {
        examples: 64,
        rows: 256,
        outputs: 1024,
        positions: 8192,
        leads_kept: false,
    };

    /// A training pass keeps every layer's activations for backward: on SmolLM2, 8 of
    /// MultiRC's 400-token rows at once took a run to 13.6 GB, in parts of 1,024 positions to
    /// 4.0 GB (docs/performance.md). A step's batch is computed in parts within these limits
    /// and their gradients summed (the same gradient, see `candidates::task_grads`). The
    /// passages before the prompts are kept apart, untracked, so they do not count.
    pub const TRAIN: Limits = Limits {
        examples: usize::MAX,
        rows: 64,
        outputs: 256,
        positions: 1024,
        leads_kept: true,
    };
}

/// Examples in order, in batches within `limits` ([`BatchLoad::fits`]: an example with
/// hundreds of candidates, a relation's objects, or one very long passage may fill a batch
/// alone). `causal`: the model computes a prefix its rows share once.
pub fn within<'a>(
    examples: impl IntoIterator<Item = &'a ScoredExample>,
    causal: bool,
    limits: &Limits,
) -> Vec<Vec<&'a ScoredExample>> {
    let mut batches: Vec<Vec<&ScoredExample>> = Vec::new();
    let mut load = BatchLoad::default();
    let leads_kept = causal && limits.leads_kept;
    for example in examples {
        let grown = load.with(example, causal, leads_kept);
        load = match batches.last_mut() {
            Some(batch) if grown.fits(limits) => {
                batch.push(example);
                grown
            }
            _ => {
                batches.push(vec![example]);
                BatchLoad::default().with(example, causal, leads_kept)
            }
        };
    }
    batches
}

/// What a batch of a task holds so far: enough to tell whether one more example fits.
#[derive(Debug, Default, Clone, Copy)]
struct BatchLoad<'a> {
    examples: usize,
    rows: usize,
    /// Outputs the LM head scores (one `[vocab]` row of logits each).
    outputs: usize,
    longest: usize,
    /// The batch's first row, and how many of its leading tokens every row repeats before its
    /// last token: a causal model computes those once per batch (`model::shared_prefix`).
    first: &'a [u32],
    shared: usize,
    /// With leads kept apart: the longest row after its lead, while every row has one target
    /// (the rows whose leads are kept; `None` once one has several).
    rest: Option<usize>,
}

impl<'a> BatchLoad<'a> {
    fn with(self, example: &'a ScoredExample, causal: bool, leads_kept: bool) -> Self {
        let empty = self.examples == 0;
        let first = if empty {
            first_row(example)
        } else {
            self.first
        };
        let repeats = |ids: &[u32]| match causal {
            true => common_len(first, ids).min(ids.len().saturating_sub(1)),
            false => 0,
        };
        let longest = self.longest.max(longest_row(example));
        // A batch's first example shares at most its longest row; rows only narrow it.
        let so_far = if empty { longest } else { self.shared };
        let shared = (example.rows.iter().map(|r| repeats(&r.input_ids))).fold(so_far, usize::min);
        let rest = match (leads_kept, empty || self.rest.is_some()) {
            (true, true) => rest_after_leads(example).map(|r| r.max(self.rest.unwrap_or(0))),
            _ => None,
        };
        Self {
            examples: self.examples + 1,
            rows: self.rows + example.rows.len(),
            outputs: self.outputs + outputs(example),
            longest,
            first,
            shared,
            rest,
        }
    }

    /// The positions a forward pass computes: the shared prefix once, then every row's rest
    /// padded to the longest (what attention's scores and the layers' activations grow with);
    /// with leads kept apart, every row's rest after its lead.
    fn positions(&self) -> usize {
        match self.rest {
            Some(rest) => self.rows * rest,
            None => self.shared + self.rows * (self.longest - self.shared),
        }
    }

    fn fits(&self, limits: &Limits) -> bool {
        self.examples <= limits.examples
            && self.rows <= limits.rows
            && self.outputs <= limits.outputs
            && self.positions() <= limits.positions
    }
}

/// An example's first row's tokens (its context, for a task whose candidates have rows of
/// their own).
pub fn first_row(example: &ScoredExample) -> &[u32] {
    example.rows.first().map_or(&[], |r| &r.input_ids)
}

/// How many leading tokens two rows have in common.
pub fn common_len(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// An example's longest row after its lead, when each of its rows has one target (`None`
/// otherwise: such rows are computed whole).
fn rest_after_leads(example: &ScoredExample) -> Option<usize> {
    let rows = 0..example.rows.len();
    let single = rows.clone().all(|r| example.target_positions(r).len() == 1);
    let rest = |r: usize| example.rows[r].input_ids.len() - example.lead(r);
    single.then(|| rows.map(rest).max().unwrap_or(0))
}

/// How many outputs score an example's candidates (each a row of logits).
fn outputs(example: &ScoredExample) -> usize {
    let rows = 0..example.rows.len();
    rows.map(|r| example.target_positions(r).len()).sum()
}

/// The token count of an example's longest row (what its batch pads to).
pub fn longest_row(example: &ScoredExample) -> usize {
    let lens = example.rows.iter().map(|r| r.input_ids.len());
    lens.max().unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ptune_data::task::Row;

    /// An example of one row and no candidates.
    pub(crate) fn example(index: usize, input_ids: Vec<u32>) -> ScoredExample {
        let rows = vec![Row {
            input_ids,
            prompt_positions: Vec::new(),
        }];
        ScoredExample {
            rows,
            candidates: Vec::new(),
            gold: None,
            index,
        }
    }

    /// A row of `len` tokens that starts with `passage` (a prefix shared with others) and
    /// ends with `tail` tokens of its own.
    fn row(passage: u32, shared: usize, own: u32, len: usize) -> Vec<u32> {
        let mut ids = vec![passage; shared];
        ids.resize(len, own);
        ids
    }

    fn sizes(examples: &[ScoredExample], causal: bool, limits: &Limits) -> Vec<usize> {
        within(examples, causal, limits)
            .iter()
            .map(Vec::len)
            .collect()
    }

    #[test]
    fn long_passages_go_fewer_to_a_batch() {
        // Each row its own from the first token: nothing shared.
        let own = |n: usize, len: usize| -> Vec<ScoredExample> {
            (0..n)
                .map(|i| example(i, row(0, 0, i as u32, len)))
                .collect()
        };
        // 64 × 100 = 6400 positions fit in 8192: the example cap binds.
        assert_eq!(sizes(&own(80, 100), true, &Limits::EVAL), vec![64, 16]);
        // 7 × 1100 = 7700 positions fit in 8192, 8 do not.
        assert_eq!(sizes(&own(20, 1100), true, &Limits::EVAL), vec![7, 7, 6]);
        let alone = [example(0, vec![1; 9000]), example(1, vec![2; 10])];
        assert_eq!(sizes(&alone, true, &Limits::EVAL), vec![1, 1]);
    }

    #[test]
    fn a_shared_passage_counts_once_for_a_causal_model() {
        // 40 answers to one 400-token passage, 30 tokens each after it.
        let answers: Vec<ScoredExample> = (0..40)
            .map(|i| example(i, row(7, 400, 100 + i as u32, 430)))
            .collect();
        // Causal: 400 + 40 × 30 = 1600 positions, one batch; a masked LM computes every row
        // whole: 40 × 430 positions, at most 19 to a batch.
        assert_eq!(sizes(&answers, true, &Limits::EVAL), vec![40]);
        assert_eq!(sizes(&answers, false, &Limits::EVAL), vec![19, 19, 2]);
        // A second passage shares nothing with the first: joining the batch would count
        // every row whole (41 × 430 positions), so it starts a batch of its own.
        let mut two = answers.clone();
        two.extend((0..40).map(|i| example(40 + i, row(8, 400, 200 + i as u32, 430))));
        assert_eq!(sizes(&two, true, &Limits::EVAL), vec![40, 40]);
    }

    #[test]
    fn a_training_step_of_long_rows_is_computed_in_parts() {
        // MultiRC-shaped: 8 answers of 400 tokens, each to a passage of its own.
        let long: Vec<ScoredExample> = (0..8)
            .map(|i| example(i, row(i as u32, 400, 100, 400)))
            .collect();
        assert_eq!(sizes(&long, true, &Limits::TRAIN), vec![2, 2, 2, 2]);
        // Short rows: the whole batch in one pass.
        let short: Vec<ScoredExample> = (0..8).map(|i| example(i, vec![i as u32; 40])).collect();
        assert_eq!(within(&short, true, &Limits::TRAIN).len(), 1);
    }

    #[test]
    fn a_training_step_counts_rows_after_their_kept_passages() {
        use ptune_data::task::Target;
        // MultiRC-shaped: 8 answers, each to a 400-token passage of its own, prompts after it
        // and one target (a label's one-token verbalizers).
        let answer = |i: usize, targets: usize| {
            let mut e = example(i, row(i as u32, 400, 100, 430));
            e.rows[0].prompt_positions = vec![400, 401];
            let target = |position| Target {
                row: 0,
                position,
                token: 5,
            };
            e.candidates = vec![(429 - targets..429).map(target).collect()];
            e
        };
        let long: Vec<ScoredExample> = (0..8).map(|i| answer(i, 1)).collect();
        assert_eq!(long[0].lead(0), 400);
        // 8 × 30 positions after the passages: one part (a causal model only).
        assert_eq!(sizes(&long, true, &Limits::TRAIN), vec![8]);
        assert_eq!(sizes(&long, false, &Limits::TRAIN), vec![2, 2, 2, 2]);
        // Evaluation computes the passages in its own pass.
        assert_eq!(sizes(&long, true, &Limits::EVAL), vec![8]);
        // Rows with several targets are computed whole (their leads are not kept apart).
        let whole: Vec<ScoredExample> = (0..8).map(|i| answer(i, 2)).collect();
        assert_eq!(sizes(&whole, true, &Limits::TRAIN), vec![2, 2, 2, 2]);
    }

    #[test]
    fn a_batch_size_caps_short_rows_and_long_ones_go_fewer() {
        // `ptune serve --max-batch 4`: at most 4 inputs a batch.
        let four = Limits {
            examples: 4,
            ..Limits::EVAL
        };
        let short: Vec<ScoredExample> = (0..10).map(|i| example(i, vec![i as u32; 20])).collect();
        assert_eq!(sizes(&short, true, &four), vec![4, 4, 2]);
        // 3 × 3,000 positions pass 8,192: two to a batch.
        let long: Vec<ScoredExample> = (0..4).map(|i| example(i, vec![i as u32; 3000])).collect();
        assert_eq!(sizes(&long, true, &four), vec![2, 2]);
    }
}
