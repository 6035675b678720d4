"""Writes the task-scoring parity fixtures: candidate log-probabilities computed by transformers.

Source of ``crates/ptune-train/tests/fixtures/task_scores/<model>.json``. For each tiny model of
``crates/ptune-backbone/tests/fixtures`` and three small tasks (label answers of one and of several
tokens, choices scored by their mean token log-probability, with and without prompt vectors), it
assembles every (example, candidate) row on its own from the task's template, the way ptune
documents it in docs/tasks.md, and scores it with the Hugging Face model:

* the template's pieces are tokenized one at a time without special tokens; a piece written after a
  space gets a leading space for byte-level BPE; the tokenizer's own special tokens (``[CLS]`` ...
  ``[SEP]``, a BOS) go around the whole row;
* a masked LM gets as many masks at ``[Y]`` as the answer has tokens, and token ``i`` is scored at
  mask ``i``; a causal LM gets the context up to ``[Y]`` followed by the answer's tokens, token ``i``
  scored at the position before it (text after ``[Y]`` is dropped);
* prompt slots take the rows of a fixed seeded prompt matrix (saved in the fixture) in order, as
  ``inputs_embeds``;
* a candidate's score is the sum (or the mean) of its tokens' log-softmax values.

Run from the repository root (offline): ``/root/.cache/ptune-venv/bin/python scripts/make_task_fixtures.py``
(the packages of scripts/requirements.txt). Deterministic: two runs write identical files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "crates/ptune-backbone/tests/fixtures"
OUT = ROOT / "crates/ptune-train/tests/fixtures/task_scores"
CASES = {"bert": "masked", "roberta": "masked", "gpt2": "causal", "llama_gqa_tied": "causal"}

TASKS = [
    {
        "name": "mixed_lengths",
        "fields": ["premise", "hypothesis"],
        "template": "[P:2] [premise] ? [hypothesis] [P] answer: [Y] .",
        "answer": {"kind": "label", "verbalizers": [["city", "city"], ["sea", "the sea"], ["sun", "sun"]]},
        "examples": [
            {"premise": "the capital of france is paris", "hypothesis": "paris is a city", "label": "city"},
            {"premise": "the dog sat on the mat", "hypothesis": "it is large", "label": "sun"},
        ],
    },
    {
        "name": "manual_one_token",
        "fields": ["premise"],
        "template": "[premise] is [Y] .",
        "answer": {"kind": "label", "verbalizers": [["a", "dog"], ["b", "cat"]]},
        "examples": [
            {"premise": "the small one", "label": "a"},
            {"premise": "berlin in germany", "label": "b"},
        ],
    },
    {
        "name": "choices_mean",
        "fields": ["premise"],
        "template": "[premise] [P:2] because [Y]",
        "answer": {"kind": "choices", "from": ["choice1", "choice2"]},
        "score": "mean",
        "examples": [
            {"premise": "the river is large", "choice1": "the water rose", "choice2": "sun", "label": 0},
            {"premise": "we sat at night", "choice1": "it was old and good", "choice2": "the day is new", "label": 1},
        ],
    },
]

SLOT = re.compile(r"(\[[^\]]*\])")


def pieces(template: str):
    """(kind, value, space_before) like ptune's parser: text trimmed, slots keep their space flag."""
    out = []
    chunks = SLOT.split(template.strip())
    for i, chunk in enumerate(chunks):
        if not chunk:
            continue
        if SLOT.fullmatch(chunk):
            space = i > 0 and chunks[i - 1][-1:].isspace()
            inner = chunk[1:-1]
            if inner == "Y":
                out.append(("answer", None, space))
            elif inner == "P" or inner.startswith("P:"):
                out.append(("prompt", int(inner[2:]) if ":" in inner else 1, space))
            else:
                out.append(("field", inner, space))
        elif chunk.strip():
            out.append(("text", chunk.strip(), chunk[0].isspace()))
    return out


class Spec:
    def __init__(self, tok, objective):
        plain = tok("paris", add_special_tokens=False)["input_ids"]
        full = tok("paris")["input_ids"]
        start = next(i for i in range(len(full)) if full[i:i + len(plain)] == plain)
        self.prefix, self.suffix = full[:start], full[start + len(plain):]
        vocab = tok.get_vocab()
        self.byte_level = "Ġthe" in vocab or "Ġ" in vocab
        self.tok, self.objective = tok, objective
        if objective == "causal":
            self.suffix = []

    def encode(self, text, space):
        text = text.strip()
        if not text:
            return []
        if self.byte_level and space:
            text = " " + text
        return self.tok(text, add_special_tokens=False)["input_ids"]


def row(spec, parts, fields, answer):
    """ids, prompt positions, positions that predict the answer's tokens."""
    ids, prompt_pos, targets = list(spec.prefix), [], []
    for kind, value, space in parts:
        if kind == "prompt":
            prompt_pos += range(len(ids), len(ids) + value)
            ids += [spec.tok.unk_token_id or 0] * value
        elif kind == "field":
            ids += spec.encode(fields[value], space)
        elif kind == "text":
            ids += spec.encode(value, space)
        elif spec.objective == "masked":
            targets = list(range(len(ids), len(ids) + len(answer)))
            ids += [spec.tok.mask_token_id] * len(answer)
        else:
            targets = list(range(len(ids) - 1, len(ids) - 1 + len(answer)))
            ids += answer[:-1]
            break
    return ids + spec.suffix, prompt_pos, targets


def score(model, spec, parts, fields, answer, prompts, norm):
    ids, prompt_pos, targets = row(spec, parts, fields, answer)
    embeds = model.get_input_embeddings()(torch.tensor([ids])).detach().clone()
    for k, p in enumerate(prompt_pos):
        embeds[0, p] = prompts[k]
    with torch.no_grad():
        logits = model(inputs_embeds=embeds).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    values = [logp[t, a].item() for t, a in zip(targets, answer)]
    return sum(values) / (len(values) if norm == "mean" else 1)


def candidates(spec, parts, task, example):
    space = next(s for k, _, s in parts if k == "answer")
    if task["answer"]["kind"] == "label":
        words = [w for _, w in task["answer"]["verbalizers"]]
    else:
        words = [example[f] for f in task["answer"]["from"]]
    return [spec.encode(w, space) for w in words]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, objective in CASES.items():
        path = MODELS / name
        tok = AutoTokenizer.from_pretrained(path)
        cls = AutoModelForMaskedLM if objective == "masked" else AutoModelForCausalLM
        model = cls.from_pretrained(path).eval()
        spec = Spec(tok, objective)
        hidden = model.get_input_embeddings().weight.shape[1]
        generator = torch.Generator().manual_seed(7)
        out = {"model": name, "tasks": []}
        for task in TASKS:
            parts = pieces(task["template"])
            n_prompts = sum(v for k, v, _ in parts if k == "prompt")
            prompts = torch.randn(n_prompts, hidden, generator=generator) * 0.5
            norm = task.get("score", "sum")
            scores = []
            for example in task["examples"]:
                fields = {f: example[f] for f in task["fields"]}
                cands = candidates(spec, parts, task, example)
                scores.append([score(model, spec, parts, fields, c, prompts, norm) for c in cands])
            definition = {k: v for k, v in task.items() if k != "examples"}
            out["tasks"].append({
                "task": definition,
                "examples": task["examples"],
                "prompts": prompts.tolist(),
                "scores": scores,
            })
        target = OUT / f"{name}.json"
        target.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
