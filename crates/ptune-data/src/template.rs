//! Templates: where the prompt vectors, the subject and the object go in a query.
//!
//! Syntax: `[P]` is one prompt vector, `[P:n]` is `n` of them (at most [`MAX_PROMPTS`], in one slot
//! and in all together), `[X]` the subject, `[Y]` the object,
//! and any other text is literal anchor words. `"3,3,3"` (or `"(3, 3, 3)"`) is the paper's
//! shorthand for `[P:3] [X] [P:3] [Y] [P:3]`. LAMA's manual templates (`"[X] is located in [Y] ."`)
//! are templates with zero prompts.
//!
//! Whitespace is kept as a flag on each piece (`space_before`) because byte-level BPE tokenizers
//! give a word a different token after a space (`" Paris"` → `ĠParis`, `"Paris"` → `Paris`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Objective, Result};

/// The most prompt vectors a template may have, in one slot and in total: far more than P-tuning
/// uses (9 to 12), and as many positions as BERT has, so a typo such as `[P:10000000000]` is an
/// error rather than a terabyte allocation.
pub const MAX_PROMPTS: usize = 512;

/// What one piece of a template stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// `n >= 1` consecutive prompt vectors.
    Prompt(usize),
    /// The subject, `[X]`.
    Subject,
    /// The object to predict, `[Y]`.
    Object,
    /// Literal anchor words, trimmed (inner spaces kept).
    Text(String),
    /// A named input field of a task, `[premise]` (only in task templates, see
    /// [`Template::parse_task`]).
    Field(String),
}

/// A part and whether the template has whitespace right before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub part: Part,
    pub space_before: bool,
}

/// Whether a template is meant for P-tuning (trainable prompts) or the manual-prompt baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// At least one prompt slot is required.
    PTuning,
    /// No prompt slots are allowed: the LAMA manual-template baseline.
    Manual,
}

/// A parsed template with exactly one `[X]` and one `[Y]`. Serialized as its canonical string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses the bracket syntax or the `a,b,c` shorthand and checks `[X]`/`[Y]` appear once each.
    pub fn parse(source: &str) -> Result<Self> {
        let source = source.trim();
        let pieces = match parse_shorthand(source) {
            Some(counts) => shorthand_pieces(check_counts(counts, source)?),
            None => parse_pieces(source, false)?,
        };
        let template = Self { pieces };
        template.check_slots(source)?;
        template.check_prompt_count(source)?;
        Ok(template)
    }

    /// Parses a task's template: named field slots (`[premise]`, lowercase letters, digits and
    /// `_`, starting with a letter) in place of `[X]`, exactly one `[Y]` (the answer), prompts and
    /// words as in LAMA templates. Which fields exist is the task's to check ([`Template::fields`]).
    pub fn parse_task(source: &str) -> Result<Self> {
        let source = source.trim();
        let template = Self {
            pieces: parse_pieces(source, true)?,
        };
        let object = template.pieces.iter().filter(|p| p.part == Part::Object);
        let repeated = |slot| Error::TemplateRepeatedSlot {
            template: source.to_string(),
            slot,
        };
        if template.pieces.iter().any(|p| p.part == Part::Subject) {
            return Err(Error::TaskTemplateSubject {
                template: source.to_string(),
            });
        }
        if template.fields().next().is_none() {
            return Err(Error::TaskTemplateNoField {
                template: source.to_string(),
            });
        }
        match object.count() {
            0 => Err(Error::TemplateNoObject {
                template: source.to_string(),
            }),
            1 => Ok(()),
            _ => Err(repeated("[Y]")),
        }?;
        template.check_prompt_count(source)?;
        Ok(template)
    }

    /// The field names the template places, in order (a field may appear more than once).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The same template with every prompt slot removed: a task's manual pattern.
    pub fn without_prompts(&self) -> Self {
        let kept = self
            .pieces
            .iter()
            .filter(|p| !matches!(p.part, Part::Prompt(_)));
        Self {
            pieces: kept.cloned().collect(),
        }
    }

    /// The paper's `(a, sub, b, obj, c)` template: `[P:a] [X] [P:b] [Y] [P:c]`, or
    /// [`Error::TemplateTooManyPrompts`] past [`MAX_PROMPTS`].
    pub fn ptuning(a: usize, b: usize, c: usize) -> Result<Self> {
        Self::parse(&format!("{a},{b},{c}"))
    }

    /// A template of already checked pieces (one `[X]`, one `[Y]`).
    pub(crate) fn from_pieces(pieces: Vec<Piece>) -> Self {
        Self { pieces }
    }

    /// The pieces in order, each with its whitespace flag.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The parts in order, without whitespace flags.
    pub fn parts(&self) -> impl Iterator<Item = &Part> {
        self.pieces.iter().map(|p| &p.part)
    }

    /// Total number of prompt vectors, i.e. the rows the prompt encoder must produce.
    pub fn n_prompts(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p.part {
                Part::Prompt(n) => n,
                _ => 0,
            })
            .fold(0, usize::saturating_add)
    }

    /// Checks the template suits the model and the mode.
    ///
    /// For a causal LM the query ends right before the object, so prompts or the subject after `[Y]`
    /// are refused (they could not influence the prediction), while literal text after `[Y]` (LAMA's
    /// trailing `" ."`, or `"[X] is [Y] citizen ."`) is dropped, as LAMA does for left-to-right
    /// models; [`Template::text_after_object`] tells what is dropped.
    pub fn validate(&self, objective: Objective, mode: PromptMode) -> Result<()> {
        self.check_mode(mode)?;
        self.check_objective(objective)
    }

    pub(crate) fn check_mode(&self, mode: PromptMode) -> Result<()> {
        let n = self.n_prompts();
        match mode {
            PromptMode::PTuning if n == 0 => Err(Error::TemplateNoPrompts {
                template: self.to_string(),
            }),
            PromptMode::Manual if n > 0 => Err(Error::TemplateHasPrompts {
                template: self.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The objective part of [`Template::validate`], also checked by the query builder.
    pub(crate) fn check_objective(&self, objective: Objective) -> Result<()> {
        match objective {
            Objective::Causal => self.check_causal(),
            Objective::Masked => Ok(()),
        }
    }

    /// The literal text after `[Y]`, which a causal LM query leaves out (`None` when there is none).
    pub fn text_after_object(&self) -> Option<String> {
        let words: Vec<&str> = self
            .after_object()
            .iter()
            .filter_map(|p| match &p.part {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }

    /// The pieces up to (and without) `[Y]`: all a causal LM sees.
    pub(crate) fn before_object(&self) -> &[Piece] {
        &self.pieces[..self.object_index()]
    }

    /// The pieces a model of `objective` reads, `[Y]` included: all of them for a masked LM;
    /// up to `[Y]` for a causal LM, which drops the words after it.
    pub(crate) fn seen_by(&self, objective: Objective) -> &[Piece] {
        match objective {
            Objective::Masked => &self.pieces,
            Objective::Causal => &self.pieces[..=self.object_index()],
        }
    }

    /// Whether `[Y]` follows whitespace, which decides the object's token for byte-level BPE.
    pub fn object_space_before(&self) -> bool {
        self.pieces[self.object_index()].space_before
    }

    fn object_index(&self) -> usize {
        let is_object = |p: &Piece| p.part == Part::Object;
        self.pieces.iter().position(is_object).unwrap_or(0)
    }

    fn after_object(&self) -> &[Piece] {
        &self.pieces[self.object_index() + 1..]
    }

    fn check_causal(&self) -> Result<()> {
        let after = self.after_object();
        let field = after.iter().find_map(|p| match &p.part {
            Part::Field(name) => Some(format!("the field [{name}]")),
            _ => None,
        });
        let what = if after.iter().any(|p| p.part == Part::Subject) {
            Some("the subject [X]".to_string())
        } else if field.is_some() {
            field
        } else {
            let n: usize = after
                .iter()
                .map(|p| match p.part {
                    Part::Prompt(n) => n,
                    _ => 0,
                })
                .sum();
            (n > 0).then(|| format!("{n} prompt slot(s)"))
        };
        match what {
            Some(what) => Err(Error::TemplateAfterObject {
                template: self.to_string(),
                what,
            }),
            None => Ok(()),
        }
    }

    fn check_prompt_count(&self, source: &str) -> Result<()> {
        match self.n_prompts() {
            n if n > MAX_PROMPTS => Err(too_many(source, &n.to_string())),
            _ => Ok(()),
        }
    }

    fn check_slots(&self, source: &str) -> Result<()> {
        let count = |part: Part| self.pieces.iter().filter(|p| p.part == part).count();
        let template = source.to_string();
        match (count(Part::Subject), count(Part::Object)) {
            (0, _) => Err(Error::TemplateNoSubject { template }),
            (_, 0) => Err(Error::TemplateNoObject { template }),
            (s, _) if s > 1 => Err(Error::TemplateRepeatedSlot {
                template,
                slot: "[X]",
            }),
            (_, o) if o > 1 => Err(Error::TemplateRepeatedSlot {
                template,
                slot: "[Y]",
            }),
            _ => Ok(()),
        }
    }
}

impl FromStr for Template {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Template {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.to_string()
    }
}

/// The canonical form: `[P:n]` for prompt runs (`[P]` for one), spaces as in the source.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 && piece.space_before {
                f.write_str(" ")?;
            }
            match &piece.part {
                Part::Prompt(1) => f.write_str("[P]")?,
                Part::Prompt(n) => write!(f, "[P:{n}]")?,
                Part::Subject => f.write_str("[X]")?,
                Part::Object => f.write_str("[Y]")?,
                Part::Text(t) => f.write_str(t)?,
                Part::Field(name) => write!(f, "[{name}]")?,
            }
        }
        Ok(())
    }
}

/// `a,b,c` with optional parentheses and spaces, e.g. `3,3,3` or `(3, 3, 0)`, as digit strings.
fn parse_shorthand(s: &str) -> Option<[&str; 3]> {
    let inner = s.trim_start_matches('(').trim_end_matches(')');
    let nums: Vec<&str> = inner.split(',').map(str::trim).collect();
    let &[a, b, c] = nums.as_slice() else {
        return None;
    };
    let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    [a, b, c].into_iter().all(digits).then_some([a, b, c])
}

/// The shorthand's counts, each at most [`MAX_PROMPTS`] (the total is checked with the template).
fn check_counts(counts: [&str; 3], source: &str) -> Result<[usize; 3]> {
    let count = |n: &str| match n.parse::<usize>() {
        Ok(n) if n <= MAX_PROMPTS => Ok(n),
        _ => Err(too_many(source, n)),
    };
    Ok([count(counts[0])?, count(counts[1])?, count(counts[2])?])
}

fn too_many(source: &str, asked: &str) -> Error {
    Error::TemplateTooManyPrompts {
        template: source.to_string(),
        asked: asked.to_string(),
        max: MAX_PROMPTS,
    }
}

fn shorthand_pieces([a, b, c]: [usize; 3]) -> Vec<Piece> {
    let parts = [
        Part::Prompt(a),
        Part::Subject,
        Part::Prompt(b),
        Part::Object,
        Part::Prompt(c),
    ];
    let kept = parts.into_iter().filter(|p| *p != Part::Prompt(0));
    kept.enumerate()
        .map(|(i, part)| Piece {
            part,
            space_before: i > 0,
        })
        .collect()
}

/// The pieces of a bracket-syntax template; `fields` allows named field slots (task templates).
fn parse_pieces(source: &str, fields: bool) -> Result<Vec<Piece>> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut rest = source;
    while !rest.is_empty() {
        let open = rest.find('[').unwrap_or(rest.len());
        push_text(&mut pieces, &rest[..open]);
        rest = &rest[open..];
        if rest.is_empty() {
            break;
        }
        let close = rest.find(']').ok_or_else(|| Error::TemplateUnclosed {
            template: source.to_string(),
        })?;
        let space_before = source[..source.len() - rest.len()].ends_with(char::is_whitespace);
        let part = parse_slot(&rest[..=close], source, fields)?;
        push_part(&mut pieces, part, space_before);
        rest = &rest[close + 1..];
    }
    Ok(pieces)
}

fn push_text(pieces: &mut Vec<Piece>, raw: &str) {
    let text = raw.trim();
    if !text.is_empty() {
        let space_before = raw.starts_with(char::is_whitespace);
        pieces.push(Piece {
            part: Part::Text(text.to_string()),
            space_before,
        });
    }
}

/// Appends a slot, merging adjacent prompt runs (`[P][P:2]` is `[P:3]`).
fn push_part(pieces: &mut Vec<Piece>, part: Part, space_before: bool) {
    if let (Part::Prompt(n), Some(last)) = (&part, pieces.last_mut())
        && let Part::Prompt(m) = &mut last.part
    {
        *m += n;
        return;
    }
    pieces.push(Piece { part, space_before });
}

fn parse_slot(token: &str, source: &str, fields: bool) -> Result<Part> {
    let inner = &token[1..token.len() - 1];
    let bad_prompt = || Error::TemplateBadPrompt {
        template: source.to_string(),
        token: token.to_string(),
    };
    match inner {
        "X" => Ok(Part::Subject),
        "Y" => Ok(Part::Object),
        "P" => Ok(Part::Prompt(1)),
        _ if inner.starts_with('P') => {
            let n = inner.strip_prefix("P:").ok_or_else(bad_prompt)?.trim();
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_prompt());
            }
            match n.parse::<usize>() {
                Ok(0) => Err(bad_prompt()),
                Ok(n) if n <= MAX_PROMPTS => Ok(Part::Prompt(n)),
                _ => Err(too_many(source, n)),
            }
        }
        _ if fields && is_field_name(inner) => Ok(Part::Field(inner.to_string())),
        _ => Err(Error::TemplateUnknownSlot {
            template: source.to_string(),
            token: token.to_string(),
        }),
    }
}

/// `premise`, `question_2`: a lowercase letter, then lowercase letters, digits or `_`.
pub fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: &Template) -> Vec<Part> {
        t.parts().cloned().collect()
    }

    fn text(s: &str) -> Part {
        Part::Text(s.to_string())
    }

    fn err(source: &str) -> String {
        Template::parse(source).unwrap_err().to_string()
    }

    #[test]
    fn paper_template_and_its_shorthand_are_the_same() {
        let full = Template::parse("[P:3] [X] [P:3] [Y] [P:3]").unwrap();
        assert_eq!(Template::parse("3,3,3").unwrap(), full);
        assert_eq!(Template::parse("(3, 3, 3)").unwrap(), full);
        assert_eq!(Template::ptuning(3, 3, 3).unwrap(), full);
        assert_eq!(full.n_prompts(), 9);
        let expected = [
            Part::Prompt(3),
            Part::Subject,
            Part::Prompt(3),
            Part::Object,
            Part::Prompt(3),
        ];
        assert_eq!(parts(&full), expected);
    }

    #[test]
    fn zero_counts_in_the_shorthand_leave_out_the_prompt_run() {
        let t = Template::parse("3,3,0").unwrap();
        assert_eq!(t.n_prompts(), 6);
        assert_eq!(t.to_string(), "[P:3] [X] [P:3] [Y]");
        assert_eq!(Template::parse("0,0,0").unwrap().to_string(), "[X] [Y]");
    }

    #[test]
    fn anchor_words_are_kept_between_slots() {
        let t = Template::parse("[P:2] [X] 's capital is [Y] [P]").unwrap();
        let expected = [
            Part::Prompt(2),
            Part::Subject,
            text("'s capital is"),
            Part::Object,
            Part::Prompt(1),
        ];
        assert_eq!(parts(&t), expected);
        assert_eq!(t.n_prompts(), 3);
        assert_eq!(t.to_string(), "[P:2] [X] 's capital is [Y] [P]");
    }

    #[test]
    fn adjacent_prompt_slots_merge_into_one_run() {
        let t = Template::parse("[P][P][P:2] [X] [Y]").unwrap();
        assert_eq!(parts(&t)[0], Part::Prompt(4));
        assert_eq!(t.n_prompts(), 4);
    }

    #[test]
    fn whitespace_before_each_piece_is_recorded() {
        let t = Template::parse("[X]'s capital:[Y] .").unwrap();
        let spaces: Vec<bool> = t.pieces().iter().map(|p| p.space_before).collect();
        assert_eq!(spaces, [false, false, false, true]);
        assert!(!t.object_space_before());
        assert!(Template::parse("[X] is [Y]").unwrap().object_space_before());
    }

    #[test]
    fn manual_lama_templates_have_zero_prompts() {
        let t = Template::parse("[X] is located in [Y] .").unwrap();
        assert_eq!(t.n_prompts(), 0);
        assert_eq!(t.to_string(), "[X] is located in [Y] .");
        t.validate(Objective::Masked, PromptMode::Manual).unwrap();
        let e = t
            .validate(Objective::Masked, PromptMode::PTuning)
            .unwrap_err();
        assert!(e.to_string().contains("has no prompt slots"), "{e}");
        let p = Template::parse("3,3,3").unwrap();
        let e = p
            .validate(Objective::Masked, PromptMode::Manual)
            .unwrap_err();
        assert!(e.to_string().contains("must not"), "{e}");
    }

    #[test]
    fn missing_or_repeated_slots_are_refused() {
        assert!(err("[P:3] is the capital of [Y]").contains("has no [X]"));
        assert!(err("The capital of [X] is").contains("has no [Y]"));
        assert!(err("[X] and [X] are [Y]").contains("more than one [X]"));
        assert!(err("[X] is [Y] or [Y]").contains("more than one [Y]"));
    }

    #[test]
    fn malformed_prompt_slots_are_refused() {
        for bad in ["[P:0]", "[P:x]", "[P3]", "[P:]", "[P:-1]"] {
            let e = err(&format!("{bad} [X] [Y]"));
            assert!(e.contains(&format!("{bad} is not a prompt slot")), "{e}");
        }
        assert!(err("[Z] [X] [Y]").contains("unknown slot [Z]"));
        assert!(err("[X] is [Y").contains("never closed"));
    }

    #[test]
    fn prompt_counts_are_bounded_per_slot_and_in_total() {
        let e = err("[P:18446744073709551615] [X] [Y]");
        assert_eq!(
            e,
            "template \"[P:18446744073709551615] [X] [Y]\" asks for 18446744073709551615 prompt \
             vectors; a template may have at most 512, in one slot and in all together"
        );
        assert!(err("[P:10000000000] [X] [Y]").contains("asks for 10000000000"));
        assert!(err("[P:99999999999999999999999] [X] [Y]").contains("at most 512"));
        assert!(err("[P:300] [X] [P:300] [Y]").contains("asks for 600 prompt vectors"));
        assert!(err("[P:512][P] [X] [Y]").contains("asks for 513"));
        assert!(err("10000000000,3,3").contains("asks for 10000000000"));
        assert!(err("300,300,0").contains("asks for 600"));
        assert!(Template::ptuning(usize::MAX, 1, 1).is_err());
        assert_eq!(Template::parse("[P:512] [X] [Y]").unwrap().n_prompts(), 512);
        assert_eq!(Template::parse("500,12,0").unwrap().n_prompts(), 512);
    }

    #[test]
    fn odd_brackets_and_empty_templates_are_errors_not_panics() {
        for bad in [
            "",
            "[",
            "]",
            "[]",
            "[[X]]",
            "[X]]][Y",
            "[P:",
            "[P:é] [X] [Y]",
            "é[",
            ",",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
        let t = Template::parse("] [X] [Y]").unwrap();
        assert_eq!(t.to_string(), "] [X] [Y]");
    }

    #[test]
    fn causal_lms_refuse_prompts_or_subject_after_the_object() {
        let t = Template::parse("3,3,3").unwrap();
        let e = t
            .validate(Objective::Causal, PromptMode::PTuning)
            .unwrap_err();
        assert!(
            e.to_string().contains("puts 3 prompt slot(s) after [Y]"),
            "{e}"
        );
        t.validate(Objective::Masked, PromptMode::PTuning).unwrap();
        let t = Template::parse("[Y] participated in the [X] .").unwrap();
        let e = t
            .validate(Objective::Causal, PromptMode::Manual)
            .unwrap_err();
        assert!(e.to_string().contains("the subject [X]"), "{e}");
        Template::parse("3,3,0")
            .unwrap()
            .validate(Objective::Causal, PromptMode::PTuning)
            .unwrap();
    }

    #[test]
    fn causal_lms_drop_literal_text_after_the_object() {
        let t = Template::parse("[X] is [Y] citizen .").unwrap();
        t.validate(Objective::Causal, PromptMode::Manual).unwrap();
        assert_eq!(t.text_after_object().as_deref(), Some("citizen ."));
        let before: Vec<Part> = t.before_object().iter().map(|p| p.part.clone()).collect();
        assert_eq!(before, [Part::Subject, text("is")]);
        assert_eq!(Template::parse("3,3,0").unwrap().text_after_object(), None);
    }

    #[test]
    fn serializes_as_its_canonical_string() {
        let t = Template::parse("[P][P] [X] 's capital is [Y] [P]").unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""[P:2] [X] 's capital is [Y] [P]""#);
        assert_eq!(serde_json::from_str::<Template>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Template>(r#""[Y] only""#).is_err());
    }
}
