//! From an example and its candidates' tokens to the rows a model scores.
//!
//! A masked LM gets the template with as many masks at `[Y]` as a candidate has tokens; a
//! candidate's score comes from its tokens' log-probabilities at those masks (PET's way for
//! multi-token verbalizers), so candidates of equal length share one row. A causal LM gets the
//! context up to `[Y]` followed by the candidate's tokens but the last: the position before each
//! token predicts it, and candidates whose rows are equal (all one-token candidates) share one
//! row. Fields are tokenized piece by piece like a LAMA query's subject.

use tokenizers::Tokenizer;

use super::{Answer, Example};
use crate::encode::{PieceEncoder, Slot, words_as_prompts};
use crate::template::Part;
use crate::{DropReason, Error, Objective, Result, Template, TokenizerSpec};

/// One input row: token ids with prompt placeholders at `prompt_positions` (slot `k` takes
/// prompt vector `k`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub input_ids: Vec<u32>,
    pub prompt_positions: Vec<usize>,
}

/// One token of a candidate: the row and position whose output predicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub row: usize,
    pub position: usize,
    pub token: u32,
}

/// An example ready to score: its rows and, per candidate, the tokens that make its score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredExample {
    pub rows: Vec<Row>,
    pub candidates: Vec<Vec<Target>>,
    pub gold: Option<usize>,
    /// The example's index in the list it was built from.
    pub index: usize,
}

impl ScoredExample {
    /// The example scored against `keep` (candidate indices, in that order) only: the rows no
    /// kept candidate reads are left out, and `gold` follows its candidate (`None` if dropped).
    pub fn with_candidates(&self, keep: &[usize]) -> ScoredExample {
        let mut rows: Vec<usize> = Vec::new();
        let mut row_of = |r: usize| match rows.iter().position(|&x| x == r) {
            Some(i) => i,
            None => {
                rows.push(r);
                rows.len() - 1
            }
        };
        let candidates = keep
            .iter()
            .map(|&c| {
                let targets = self.candidates[c].iter();
                targets
                    .map(|t| Target {
                        row: row_of(t.row),
                        ..*t
                    })
                    .collect()
            })
            .collect();
        ScoredExample {
            rows: rows.iter().map(|&r| self.rows[r].clone()).collect(),
            candidates,
            gold: self.gold.and_then(|g| keep.iter().position(|&c| c == g)),
            index: self.index,
        }
    }

    /// The positions of row `r` whose outputs score some candidate token, ascending, each
    /// once: what the LM head is run at.
    pub fn target_positions(&self, r: usize) -> Vec<usize> {
        let mut positions: Vec<usize> = (self.candidates.iter().flatten())
            .filter(|t| t.row == r)
            .map(|t| t.position)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    /// Row `r`'s leading positions that hold words only, before its first prompt slot and its
    /// first target: what a causal model computes there does not depend on the prompts, so a
    /// training run can keep it from step to step (a MultiRC passage, a BoolQ one).
    pub fn lead(&self, r: usize) -> usize {
        let first_prompt = self.rows[r].prompt_positions.iter().copied().min();
        let first_target = self.target_positions(r).first().copied();
        (first_prompt.into_iter().chain(first_target))
            .min()
            .unwrap_or(0)
    }

    /// At most `n` candidates for a training step: the right one and `n - 1` others drawn
    /// with `seed` (all of them when there are no more than `n`). Cross-entropy over a sample
    /// of a relation's hundreds of objects is the sampled-softmax estimate of the full one.
    pub fn sampled(&self, n: usize, seed: u64) -> ScoredExample {
        let count = self.candidates.len();
        if count <= n.max(1) {
            return self.clone();
        }
        let mut others: Vec<usize> = (0..count).filter(|&c| Some(c) != self.gold).collect();
        ptune_host::shuffle(&mut others, seed);
        let mut keep: Vec<usize> = self.gold.into_iter().collect();
        keep.extend(others.into_iter().take(n.max(1) - keep.len()));
        keep.sort_unstable();
        self.with_candidates(&keep)
    }
}

/// Builds scored examples for one task template and tokenizer.
#[derive(Debug, Clone)]
pub struct RowBuilder<'a> {
    enc: PieceEncoder<'a>,
    slots: Vec<Slot>,
    answer_space: bool,
    max_len: Option<usize>,
}

impl<'a> RowBuilder<'a> {
    /// Checks the template suits the objective (a causal LM sees nothing after `[Y]` but
    /// words, which it drops) and tokenizes its words.
    pub fn new(
        tokenizer: &'a Tokenizer,
        spec: &'a TokenizerSpec,
        template: &Template,
    ) -> Result<Self> {
        let enc = PieceEncoder::new(tokenizer, spec)?;
        template.check_objective(spec.objective)?;
        let pieces = template.seen_by(spec.objective);
        if template.parts().any(|p| *p == Part::Subject) {
            return Err(Error::TaskTemplateSubject {
                template: template.to_string(),
            });
        }
        let slots = enc.slots(pieces)?;
        Ok(Self {
            enc,
            slots,
            answer_space: template.object_space_before(),
            max_len: None,
        })
    }

    /// Fits rows into `max_len` ids (the model's position limit) by cutting the end of the
    /// longest field, token by token (PET's way); an example is dropped only when one token
    /// per field still does not fit.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    /// `template` (this builder's pattern, without prompts) with its literal words turned into
    /// prompt slots, and their token ids: P-tuning that starts exactly at the manual pattern
    /// (`--init manual`), as for a relation.
    pub fn words_as_prompts(&self, template: &Template) -> Result<(Template, Vec<u32>)> {
        words_as_prompts(template, self.enc.spec.objective, &self.slots)
    }

    /// An answer's tokens where `[Y]` stands (with the template's space before it).
    pub fn answer_ids(&self, answer: &str) -> Result<Vec<u32>, DropReason> {
        match self.enc.encode(answer, self.answer_space)? {
            ids if ids.is_empty() => Err(DropReason::EmptyAnswer),
            ids => Ok(ids),
        }
    }

    /// The verbalizers' tokens in label order; a verbalizer with no tokens, or two that
    /// tokenize the same (so the model could not tell their labels apart), is an error.
    pub fn verbalizer_ids(&self, verbalizers: &[(String, String)]) -> Result<Vec<Vec<u32>>> {
        let mut out: Vec<Vec<u32>> = Vec::new();
        for (label, words) in verbalizers {
            let ids = self
                .answer_ids(words)
                .map_err(|reason| Error::BadVerbalizer {
                    label: label.clone(),
                    words: words.clone(),
                    reason: reason.describe(),
                })?;
            if let Some(i) = out.iter().position(|o| *o == ids) {
                return Err(Error::VerbalizersCollide {
                    first: verbalizers[i].0.clone(),
                    second: label.clone(),
                    ids: format!("{ids:?}"),
                });
            }
            out.push(ids);
        }
        Ok(out)
    }

    /// A task's fixed candidates: its verbalizers' ids in label order (see
    /// [`RowBuilder::verbalizer_ids`]); `None` for a choices task, whose candidates come with
    /// each example.
    pub fn label_ids(&self, answer: &Answer) -> Result<Option<Vec<Vec<u32>>>> {
        Ok(match answer {
            Answer::Label { verbalizers, .. } => Some(self.verbalizer_ids(verbalizers)?),
            Answer::Choices { .. } => None,
        })
    }

    /// The example scored against `labels` (a label task's, from [`RowBuilder::label_ids`]),
    /// or else against its own choices.
    pub fn build_example(
        &self,
        example: &Example,
        labels: Option<&[Vec<u32>]>,
        index: usize,
    ) -> Result<ScoredExample, DropReason> {
        match labels {
            Some(labels) => self.build(example, labels, index),
            None => {
                let choices = example.choices.iter().map(|c| self.answer_ids(c));
                self.build(example, &choices.collect::<Result<Vec<_>, _>>()?, index)
            }
        }
    }

    /// The example's rows and candidate targets; `candidates` are the answers' token ids
    /// (the verbalizers' for a label task, the example's choices' otherwise).
    pub fn build(
        &self,
        example: &Example,
        candidates: &[Vec<u32>],
        index: usize,
    ) -> Result<ScoredExample, DropReason> {
        let mut fields = self.field_ids(example)?;
        if let Some(max) = self.max_len {
            let longest = candidates
                .iter()
                .max_by_key(|a| a.len())
                .map_or(&[][..], |a| a);
            let len = self.assemble(&fields, longest)?.0.input_ids.len();
            if len > max && !shorten(&mut fields, len - max) {
                return Err(DropReason::TooLong);
            }
        }
        let mut out = ScoredExample {
            rows: Vec::new(),
            candidates: Vec::with_capacity(candidates.len()),
            gold: example.gold,
            index,
        };
        for answer in candidates {
            let (row, positions) = self.assemble(&fields, answer)?;
            let r = match out.rows.iter().position(|x| *x == row) {
                Some(r) => r,
                None => {
                    out.rows.push(row);
                    out.rows.len() - 1
                }
            };
            let targets = positions
                .into_iter()
                .zip(answer)
                .map(|(position, &token)| Target {
                    row: r,
                    position,
                    token,
                });
            out.candidates.push(targets.collect());
        }
        Ok(out)
    }

    /// Each field slot's ids, in slot order (a field used twice is encoded twice).
    fn field_ids(&self, example: &Example) -> Result<Vec<Vec<u32>>, DropReason> {
        let fields = self.slots.iter().filter_map(|s| match s {
            Slot::Input {
                field: Some(name),
                space_before,
            } => Some((name, *space_before)),
            _ => None,
        });
        fields
            .map(|(name, space)| {
                let text = example.fields.get(name).map_or("", String::as_str);
                self.enc.encode(text, space)
            })
            .collect()
    }

    /// One row for `answer`, and the positions that predict its tokens.
    fn assemble(
        &self,
        fields: &[Vec<u32>],
        answer: &[u32],
    ) -> Result<(Row, Vec<usize>), DropReason> {
        let spec = self.enc.spec;
        let mut ids = spec.prefix_ids.clone();
        let mut prompt_positions = Vec::new();
        let mut targets = Vec::new();
        let mut fields = fields.iter();
        for slot in &self.slots {
            match slot {
                Slot::Prompt(n) => {
                    prompt_positions.extend(ids.len()..ids.len() + n);
                    ids.extend(std::iter::repeat_n(spec.placeholder_id, *n));
                }
                Slot::Input { .. } => ids.extend(fields.next().into_iter().flatten()),
                Slot::Ids(text) => ids.extend(text),
                Slot::Answer => match spec.objective {
                    Objective::Masked => {
                        targets.extend(ids.len()..ids.len() + answer.len());
                        ids.extend(std::iter::repeat_n(spec.mask_id.unwrap_or(0), answer.len()));
                    }
                    Objective::Causal => {
                        let Some(last) = ids.len().checked_sub(1) else {
                            return Err(DropReason::EmptyContext);
                        };
                        targets.extend(last..last + answer.len());
                        ids.extend(&answer[..answer.len() - 1]);
                    }
                },
            }
        }
        ids.extend(&spec.suffix_ids);
        let row = Row {
            input_ids: ids,
            prompt_positions,
        };
        Ok((row, targets))
    }
}

/// Cuts `over` tokens off the ends of the fields, one at a time from whichever is longest then
/// (PET's way with long inputs), each keeping at least one token; false when that is not enough.
fn shorten(fields: &mut [Vec<u32>], over: usize) -> bool {
    for _ in 0..over {
        match fields
            .iter_mut()
            .filter(|f| f.len() > 1)
            .max_by_key(|f| f.len())
        {
            Some(longest) => longest.truncate(longest.len() - 1),
            None => return false,
        }
    }
    true
}
