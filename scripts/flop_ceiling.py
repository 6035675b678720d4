"""How much faster than the PyTorch peers ptune can be on the same kernels: matmul FLOPs per step.

ptune and its tch backend run the same GEMMs as PyTorch (libtorch's MKL), so its speed-up over the
peers at a given precision is bounded by the work it skips. This counts the multiply-adds (2 FLOPs
each) of every matmul in one bench step, batch x seq_len as `cargo xtask bench` lays it out, for

* the reference (THUDM's PTuneForLAMA, scripts/peer_bench.py): every layer at every position, the
  LM head (and BERT's head transform) at every position;
* ptune: the last layer's query, output and feed-forward at the target rows only (keys and values
  at every row), the head at the target rows, and for causal templates that open with prompts the
  leading prompt rows once per batch in training and not at all at evaluation (kept keys/values).

Training is the forward plus the backward to the inputs (the frozen weights get no gradient: one
GEMM per linear layer, two per attention product). The prompt encoder (about 0.15 GFLOP a batch
forward, on both sides) and elementwise work are left out. The ratio reference/ptune is the
speed-up with both sides' matmuls equally fast: ptune's tch backend runs libtorch's, so it moves
past it only by keeping the cores busier than PyTorch does.

    python scripts/flop_ceiling.py                       # the bench's two cases, 8 x 24
    python scripts/flop_ceiling.py --batch 32 --seq-len 40
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class Shape:
    name: str
    layers: int
    hidden: int
    kv_dim: int  # keys' and values' width (hidden, or fewer with grouped-query attention)
    ffn: int
    vocab: int
    gated: bool  # SwiGLU (three matrices) or GELU (two)
    head_transform: bool  # BERT's dense + LayerNorm before the decoder
    causal: bool
    lead: int  # prompts before the subject, shared by a batch (causal only)


SHAPES = [
    Shape("bert-base", 12, 768, 768, 3072, 28996, False, True, False, 0),
    Shape("SmolLM2-135M", 30, 576, 192, 1536, 49152, True, False, True, 3),
]


def layer(s: Shape, rows: int, targets: int | None, t: int) -> tuple[float, float]:
    """One layer's matmul FLOPs (forward, backward to inputs); `targets` = rows past keys/values."""
    h, kv = s.hidden, s.kv_dim
    q_rows = rows if targets is None else targets
    kv_proj = 2 * rows * h * 2 * kv
    rest = 2 * q_rows * (2 * h * h + (3 if s.gated else 2) * h * s.ffn)
    attn = 2 * 2 * q_rows * t * h  # scores and the weighted sum, each query against t keys
    return kv_proj + rest + attn, kv_proj + rest + 2 * attn


def step(s: Shape, batch: int, t: int, ptune: bool, train: bool) -> float:
    """Matmul FLOPs of one step: forward (and backward to the inputs when training)."""
    lead = s.lead if (ptune and s.causal) else 0
    rows = batch * (t - lead) + (lead if train else 0)
    fwd = bwd = 0.0
    for i in range(s.layers):
        last = ptune and i == s.layers - 1
        f, b = layer(s, rows, batch if last else None, t)
        fwd, bwd = fwd + f, bwd + b
    head_rows = batch if ptune else batch * t
    head = 2 * head_rows * s.hidden * (s.vocab + (s.hidden if s.head_transform else 0))
    fwd, bwd = fwd + head, bwd + head
    return fwd + (bwd if train else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=24)
    args = parser.parse_args()
    b, t = args.batch, args.seq_len
    print(f"batch {b} x {t} tokens; GFLOP per step, reference / ptune = ceiling")
    print("| model | train, reference | train, ptune | train ceiling | eval, reference | eval, ptune | eval ceiling |")
    print("|---|---|---|---|---|---|---|")
    for s in SHAPES:
        cells = []
        for train in (True, False):
            ref, own = step(s, b, t, False, train), step(s, b, t, True, train)
            cells += [f"{ref / 1e9:.1f}", f"{own / 1e9:.1f}", f"{ref / own:.2f}x"]
        print(f"| {s.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
