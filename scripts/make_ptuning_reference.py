"""Writes the full P-tuning reference that ptune-train's parity test consumes.

THUDM's ``PTuneForLAMA`` forward, re-implemented on the tiny fixture backbones
``crates/ptune-backbone/tests/fixtures/{bert,gpt2}`` (loaded with transformers, eval mode, eager
attention, every backbone parameter frozen) and THUDM's LSTM ``PromptEncoder`` (seeded, dropout 0):

    raw = word_embeddings(input_ids)                # prompt slots hold a placeholder id
    prompts = encoder()                             # once per batch, [n_prompt, H]
    raw[b, prompt_positions[b, i]] = prompts[i]
    logits = backbone(inputs_embeds=raw, attention_mask).logits[b, target_positions[b]]
    loss = cross_entropy(logits, labels)            # mean over the batch

A batch of 3 examples with subjects of 1, 2 and 3 tokens, right-padded, built directly as ids:

* bert: ``[CLS] P P P <sub> P P P [MASK] P P P [SEP]`` (template (3, sub, 3, obj, 3)); the target
  is the [MASK] (id 4); placeholder id 1 ([UNK]); padding id 0.
* gpt2: ``P P P <sub> P P P`` (template ``[P:3] [X] [P:3] [Y]``; Y is what the last real position
  predicts); placeholder id 0; padding id 0 (masked out).

Output: ``crates/ptune-train/tests/fixtures/ptuning_reference/{bert,gpt2}/``, laid out as the
README.md there says. Run from the repository root (offline, deterministic):

    /root/.cache/ptune-venv/bin/python scripts/make_ptuning_reference.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BACKBONES = REPO / "crates/ptune-backbone/tests/fixtures"
OUT = REPO / "crates/ptune-train/tests/fixtures/ptuning_reference"

SEEDS = {"bert": 4323, "gpt2": 4338}  # see adam_margin
LR = 1e-3
WEIGHT_DECAY = 5e-4
STEPS = 3
SUBJECTS = [[17], [23, 31], [40, 41, 42]]  # 1, 2 and 3 subject tokens
OBJECTS = [57, 63, 71]


def thudm_encoder_class():
    """THUDM's PromptEncoder, shared with scripts/make_encoder_fixtures.py."""
    path = Path(__file__).with_name("make_encoder_fixtures.py")
    spec = importlib.util.spec_from_file_location("make_encoder_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ThudmPromptEncoder


def bert_query(subject: list[int]) -> tuple[list[int], list[int], int]:
    """ids, prompt slot positions, target position: [CLS] P*3 sub P*3 [MASK] P*3 [SEP]."""
    p, cls, sep, mask = 1, 2, 3, 4
    ids = [cls] + [p] * 3 + subject + [p] * 3 + [mask] + [p] * 3 + [sep]
    slots = [1, 2, 3] + [4 + len(subject) + i for i in range(3)]
    target = 7 + len(subject)
    slots += [target + 1 + i for i in range(3)]
    return ids, slots, target


def gpt2_query(subject: list[int]) -> tuple[list[int], list[int], int]:
    """ids, prompt slot positions, target position: P*3 sub P*3; the last position predicts Y."""
    p = 0
    ids = [p] * 3 + subject + [p] * 3
    slots = [0, 1, 2] + [3 + len(subject) + i for i in range(3)]
    return ids, slots, len(ids) - 1


def make_batch(query, pad: int) -> dict[str, torch.Tensor]:
    rows = [query(s) for s in SUBJECTS]
    t = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), t), pad, dtype=torch.int64)
    attention_mask = torch.zeros((len(rows), t), dtype=torch.int64)
    for b, (ids, _, _) in enumerate(rows):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention_mask[b, : len(ids)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "prompt_positions": torch.tensor([slots for _, slots, _ in rows], dtype=torch.int64),
        "target_positions": torch.tensor([target for _, _, target in rows], dtype=torch.int64),
        "labels": torch.tensor(OBJECTS, dtype=torch.int64),
    }


def ptuning_forward(model, encoder, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """THUDM's embed_input + forward, logits only at the targets: (prompts, logits [B, V], loss)."""
    raw = model.get_input_embeddings()(batch["input_ids"])
    prompts = encoder()
    raw = raw.clone()
    positions = batch["prompt_positions"]
    for b in range(positions.shape[0]):
        for i in range(positions.shape[1]):
            raw[b, positions[b, i], :] = prompts[i, :]
    out = model(inputs_embeds=raw, attention_mask=batch["attention_mask"])
    rows = torch.arange(positions.shape[0])
    logits = out.logits[rows, batch["target_positions"]]
    return prompts, logits, F.cross_entropy(logits, batch["labels"])


def check_against_mlm_labels(model, encoder, batch, loss: torch.Tensor) -> None:
    """THUDM computes the BERT loss with transformers' `labels` (-100 except at [MASK]); same value."""
    raw = model.get_input_embeddings()(batch["input_ids"]).clone()
    prompts = encoder()
    for b, row in enumerate(batch["prompt_positions"]):
        raw[b, row] = prompts
    labels = torch.full_like(batch["input_ids"], -100)
    labels[torch.arange(3), batch["target_positions"]] = batch["labels"]
    hf_loss = model(inputs_embeds=raw, attention_mask=batch["attention_mask"], labels=labels).loss
    assert torch.allclose(hf_loss, loss, atol=1e-6), (hf_loss, loss)


def adam_margin(params: dict[str, torch.Tensor], grads) -> float:
    """The smallest |g + wd * p| over all parameter elements.

    Adam's first step is lr * x / (|x| + eps) with x = g + wd * p: lr * sign(x) where |x| >> eps,
    but where L2 nearly cancels the gradient (|x| ~ eps = 1e-8) the step swings with rounding
    noise in g (d step / dx ~ lr / eps = 1e5). With 15k elements the smallest |x| is typically
    ~1e-8, so the seeds are chosen to keep it above 3e-8, where float32 gradient noise moves the
    parameters after 3 steps by well under 1e-5."""
    return min((g + WEIGHT_DECAY * p).abs().min().item() for p, g in zip(params.values(), grads))


def write_reference(name: str, model_cls, query, pad: int, encoder_cls, seed: int) -> None:
    model = model_cls.from_pretrained(BACKBONES / name, attn_implementation="eager").eval()
    for param in model.parameters():
        param.requires_grad_(False)
    batch = make_batch(query, pad)
    n_prompt = batch["prompt_positions"].shape[1]
    hidden = model.config.hidden_size
    torch.manual_seed(seed)
    encoder = encoder_cls(n_prompt, hidden).eval()
    state = lambda: {k: v.detach().clone().contiguous() for k, v in encoder.state_dict().items()}  # noqa: E731

    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    save_file(batch, out / "batch.safetensors")
    save_file(state(), out / "encoder_init.safetensors")

    prompts, logits, loss = ptuning_forward(model, encoder, batch)
    if name == "bert":
        check_against_mlm_labels(model, encoder, batch, loss)
    params = dict(encoder.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    margin = adam_margin(params, grads)
    assert margin > 3e-8, f"{name}: seed {seed} gives |grad + weight_decay * param| = {margin:.1e}; pick another"
    save_file({k: g.contiguous() for k, g in zip(params, grads)}, out / "grads.safetensors")

    optim = torch.optim.Adam(encoder.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    step_losses = []
    for _ in range(STEPS):
        optim.zero_grad()
        step_loss = ptuning_forward(model, encoder, batch)[2]
        step_loss.backward()
        optim.step()
        step_losses.append(step_loss.detach())
    save_file(state(), out / "adam3.safetensors")
    with torch.no_grad():
        final_loss = ptuning_forward(model, encoder, batch)[2]
    save_file(
        {
            "prompts": prompts.detach().contiguous(),
            "logits": logits.detach().contiguous(),
            "loss": loss.detach().reshape(1),
            "step_losses": torch.stack(step_losses),
            "final_loss": final_loss.reshape(1),
        },
        out / "forward.safetensors",
    )
    meta = {
        "backbone": f"crates/ptune-backbone/tests/fixtures/{name}",
        "architecture": model.config.architectures[0],
        "hidden": hidden,
        "vocab_size": model.config.vocab_size,
        "n_prompt": n_prompt,
        "encoder": "lstm (THUDM PromptEncoder, dropout 0)",
        "seed": seed,
        "adam_margin": margin,
        "placeholder_id": 1 if name == "bert" else 0,
        "pad_id": pad,
        "adam": {"lr": LR, "weight_decay": WEIGHT_DECAY, "eps": 1e-8, "betas": [0.9, 0.999], "steps": STEPS},
        "loss": loss.item(),
        "step_losses": [v.item() for v in step_losses],
        "final_loss": final_loss.item(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{name}: T={batch['input_ids'].shape[1]}, loss {loss.item():.6f} → {final_loss.item():.6f} after {STEPS} steps")


def main() -> int:
    torch.use_deterministic_algorithms(True)
    encoder_cls = thudm_encoder_class()
    write_reference("bert", AutoModelForMaskedLM, bert_query, 0, encoder_cls, SEEDS["bert"])
    write_reference("gpt2", AutoModelForCausalLM, gpt2_query, 0, encoder_cls, SEEDS["gpt2"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
