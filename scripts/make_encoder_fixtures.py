"""Writes ptune-encoder's parity fixtures and checks PEFT's adapter format both ways.

Committed output, under ``crates/ptune-encoder/tests/fixtures/``:

* ``thudm_lstm/``: THUDM's P-tuning ``PromptEncoder`` (re-implemented below, as in the reference
  repository's ``LAMA/p_tuning/prompt_encoder.py``; H=32, 9 prompts, dropout 0),
  ``peft_mlp/`` and ``peft_lstm/``: PEFT's own ``PromptEncoder`` (MLP, h=16; LSTM, h=12).
  Each holds

  - ``weights.safetensors``: the seeded initial parameters under PyTorch names;
  - ``forward.safetensors``: ``output`` F32 [9, 32] (the encoder's prompts), ``r`` F32 [9, 32]
    (a fixed random matrix) and ``loss`` F32 [1] = ``sum(output * r)``;
  - ``grads.safetensors``: d loss / d parameter, under the parameter names;
  - ``adam3.safetensors``: the parameters after 3 steps of
    ``torch.optim.Adam(lr=1e-2, weight_decay=5e-4)`` (L2 added to the gradient, eps 1e-8) on
    that loss;
  - ``meta.json``: sizes, parameter count, optimizer settings.
* ``peft_adapter/``: an adapter PEFT itself wrote (``save_pretrained`` of a p-tuning model on the
  tiny gpt2 fixture), with ``reference.safetensors`` holding ``prompts``, the virtual-token
  embeddings PEFT uses after loading it back (``get_prompt``), which Rust must read back equal.

Checked, not written: ``rust_adapter_gpt2/`` and ``rust_adapter_bert/`` are written by Rust
(``PTUNE_WRITE_FIXTURES=1 cargo test -p ptune-encoder --test peft``); when present, this script
loads each with ``PeftModel.from_pretrained`` on the tiny gpt2/bert fixture, checks that the prompts
PEFT uses equal the values Rust wrote, and runs a forward pass.

Run from the repository root (offline, deterministic: a rerun gives byte-identical files):

    /root/.cache/ptune-venv/bin/python scripts/make_encoder_fixtures.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "crates/ptune-encoder/tests/fixtures"
BACKBONES = REPO / "crates/ptune-backbone/tests/fixtures"

N_PROMPT = 9
HIDDEN = 32
# Adam's first step is lr * x / (|x| + 1e-8), x = grad + weight_decay * param: where L2 nearly
# cancels the gradient, float32 noise in the gradient decides the step. The seed keeps every |x|
# above 1e-7 (write_case checks 3e-8), so 1e-5 parity after 3 steps is a fair test.
SEED = 1241
LR = 1e-2
WEIGHT_DECAY = 5e-4
STEPS = 3


class ThudmPromptEncoder(torch.nn.Module):
    """THUDM's P-tuning PromptEncoder: Embedding → 2-layer BiLSTM (H/2 per direction) → MLP."""

    def __init__(self, spell_length: int, hidden_size: int, lstm_dropout: float = 0.0):
        super().__init__()
        self.seq_indices = torch.arange(spell_length)
        self.embedding = torch.nn.Embedding(spell_length, hidden_size)
        self.lstm_head = torch.nn.LSTM(
            input_size=hidden_size,
            hidden_size=hidden_size // 2,
            num_layers=2,
            dropout=lstm_dropout,
            bidirectional=True,
            batch_first=True,
        )
        self.mlp_head = torch.nn.Sequential(
            torch.nn.Linear(hidden_size, hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden_size, hidden_size),
        )

    def forward(self) -> torch.Tensor:
        input_embeds = self.embedding(self.seq_indices).unsqueeze(0)
        return self.mlp_head(self.lstm_head(input_embeds)[0]).squeeze()


def peft_encoder(kind: str, hidden: int) -> torch.nn.Module:
    """PEFT's own PromptEncoder (training mode, so its MLP/LSTM exists)."""
    from peft import PromptEncoderConfig
    from peft.tuners.p_tuning.model import PromptEncoder

    config = PromptEncoderConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=N_PROMPT,
        token_dim=HIDDEN,
        num_transformer_submodules=1,
        encoder_reparameterization_type=kind,
        encoder_hidden_size=hidden,
        encoder_dropout=0.0,
    )
    return PromptEncoder(config)


class PeftWrapper(torch.nn.Module):
    """Calls a PEFT encoder the way PEFT does (indices [1, n]) and returns [n, H]."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self) -> torch.Tensor:
        return self.inner(torch.arange(N_PROMPT).unsqueeze(0))[0]


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def write_case(name: str, module: torch.nn.Module, forward, meta: dict) -> None:
    """Saves weights, forward output, gradients and post-Adam parameters of one encoder."""
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    save_file(state(module), out / "weights.safetensors")

    gen = torch.Generator().manual_seed(SEED + 1)
    r = torch.randn(N_PROMPT, HIDDEN, generator=gen)
    output = forward()
    loss = (output * r).sum()
    params = dict(module.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    margin = min((g + WEIGHT_DECAY * p).abs().min().item() for p, g in zip(params.values(), grads))
    assert margin > 3e-8, f"{name}: |grad + weight_decay * param| reaches {margin:.1e}; change SEED"
    save_file(
        {"output": output.detach().contiguous(), "r": r, "loss": loss.detach().reshape(1)},
        out / "forward.safetensors",
    )
    save_file({k: g.contiguous() for k, g in zip(params, grads)}, out / "grads.safetensors")

    optim = torch.optim.Adam(module.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    for _ in range(STEPS):
        optim.zero_grad()
        (forward() * r).sum().backward()
        optim.step()
    save_file(state(module), out / "adam3.safetensors")

    meta = {
        **meta,
        "n_prompt": N_PROMPT,
        "hidden": HIDDEN,
        "num_params": sum(p.numel() for p in module.parameters()),
        "seed": SEED,
        "adam_margin": margin,
        "adam": {"lr": LR, "weight_decay": WEIGHT_DECAY, "eps": 1e-8, "betas": [0.9, 0.999], "steps": STEPS},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{name}: {meta['num_params']} parameters, loss {loss.item():.6f}")


def make_encoders() -> None:
    torch.manual_seed(SEED)
    thudm = ThudmPromptEncoder(N_PROMPT, HIDDEN).eval()
    write_case("thudm_lstm", thudm, thudm, {"kind": "lstm"})

    torch.manual_seed(SEED)
    mlp = PeftWrapper(peft_encoder("MLP", 16)).eval()
    write_case("peft_mlp", mlp.inner, mlp, {"kind": "mlp", "mlp_hidden": 16})

    torch.manual_seed(SEED)
    lstm = PeftWrapper(peft_encoder("LSTM", 12)).eval()
    write_case("peft_lstm", lstm.inner, lstm, {"kind": "peft-lstm", "mlp_hidden": 12})


def load_base(name: str):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForCausalLM if name == "gpt2" else AutoModelForMaskedLM
    return cls.from_pretrained(BACKBONES / name, attn_implementation="eager").eval()


def make_peft_adapter() -> None:
    """An adapter written by PEFT, plus the prompts PEFT uses after loading it back."""
    from peft import PeftModel, PromptEncoderConfig, get_peft_model

    out = OUT / "peft_adapter"
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(SEED)
    config = PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=5, encoder_hidden_size=16)
    model = get_peft_model(load_base("gpt2"), config)
    model.save_pretrained(out)
    (out / "README.md").unlink(missing_ok=True)  # PEFT's model card: not needed, names a hub
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "gpt2-tiny-fixture"
    (out / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    loaded = PeftModel.from_pretrained(load_base("gpt2"), out)
    prompts = loaded.get_prompt(batch_size=1)[0].detach().contiguous()
    saved = model.get_prompt_embedding_to_save(adapter_name="default")
    assert torch.equal(prompts, saved), "PEFT's reloaded prompts differ from what it saved"
    save_file({"prompts": prompts}, out / "reference.safetensors")
    print(f"peft_adapter: {tuple(prompts.shape)} prompts")


def expected_rust_prompts(n: int, hidden: int) -> torch.Tensor:
    """The values the Rust test writes: ((i*H + j) % 97) / 32 - 1.5, exact in f32."""
    k = torch.arange(n * hidden, dtype=torch.float64)
    return ((k % 97) / 32 - 1.5).float().reshape(n, hidden)


def check_rust_adapter(name: str, base: str) -> None:
    from peft import PeftModel

    path = OUT / name
    if not path.exists():
        print(f"{name}: absent (write it with PTUNE_WRITE_FIXTURES=1 cargo test -p ptune-encoder --test peft)")
        return
    model = PeftModel.from_pretrained(load_base(base), path)
    cfg = model.peft_config["default"]
    ours = load_file(path / "adapter_model.safetensors")["prompt_embeddings"]
    used = model.get_prompt(batch_size=1)[0].detach()
    want = expected_rust_prompts(cfg.num_virtual_tokens, cfg.token_dim)
    assert torch.equal(ours, want), f"{name}: file values are not the ones Rust should write"
    assert torch.equal(used, want), f"{name}: PEFT uses other prompts than Rust wrote"
    ids = torch.tensor([[2, 5, 7, 4]])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits.shape[1] == ids.shape[1] + cfg.num_virtual_tokens, logits.shape
    print(f"{name}: PEFT ({type(model).__name__}, {cfg.task_type}) loads it, prompts equal, forward ok")


def main() -> int:
    torch.use_deterministic_algorithms(True)
    make_encoders()
    make_peft_adapter()
    check_rust_adapter("rust_adapter_gpt2", "gpt2")
    check_rust_adapter("rust_adapter_bert", "bert")
    return 0


if __name__ == "__main__":
    sys.exit(main())
