"""The PyTorch peers of ptune's bench example: one case, one process, one JSON line.

`cargo xtask bench --peer` runs this next to ptune's bench example on the same model file, batch shape,
template, thread count and step counts, and prints ptune's ratio to each peer. Two peers:

* ``reference``: THUDM's ``PTuneForLAMA`` as its code runs it (re-implemented here): the LSTM
  ``PromptEncoder`` (Embedding → 2-layer BiLSTM with H/2 per direction → MLP) once per batch, its
  rows written into the prompt slots of the word embeddings one slot at a time, then the frozen
  model with transformers' ``labels`` (-100 except at the target), so logits for every position.
  Evaluation runs the same forward under ``torch.no_grad()``.
* ``peft``: PEFT's p-tuning (``PromptEncoderConfig``, LSTM reparameterization) as a user sets it
  up: ``get_peft_model`` on the frozen model; the virtual tokens go in front of the input, so the
  sequence has the same length as ptune's (``seq_len`` tokens including the prompts). Masked LMs
  use the feature-extraction wrapper (PEFT has no masked-LM task) and the loss at the [MASK].

Both use Adam (lr 1e-4, weight decay 5e-4) like ptune's bench, the default (SDPA) attention,
and ``torch.set_num_threads(threads)``. ``--precision bf16`` casts the frozen model to bfloat16
(built or loaded with ``dtype=torch.bfloat16``, the fastest PyTorch setting) against the bench example's ``--precision bf16``; the prompt encoder stays fp32. The batch has the shape of ptune's
(``synthetic_batch`` in crates/ptune-train/examples/bench.rs: batch × seq_len ids, all real tokens);
the reference's prompt slots are positions 1..=n and its target the last position (where they
sit does not change its cost: it computes every position and the full vocabulary there). ``random:bert-base`` is a
``BertForMaskedLM`` with bert-base-cased's shapes and random weights (ptune builds the same
shape from its own random weights), so its load time is initialisation time on both sides.

    python scripts/peer_bench.py --impl reference --model PATH.gguf --template "[P:3] [X] [P:3] [Y]"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def rss_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def n_prompts(template: str) -> int:
    """Prompt slots in a ptune template: `3,3,3` or `[P:3] [X] [P:3] [Y]`."""
    if re.fullmatch(r"\d+(,\d+)*", template):
        return sum(int(n) for n in template.split(","))
    return sum(int(n) for n in re.findall(r"\[P:(\d+)\]", template)) + len(re.findall(r"\[P\]", template))


def load_model(spec: str, dtype, device: str = "cpu"):
    """(model, causal?) from `random:SHAPE`, a GGUF file, or a transformers directory, built in
    `dtype` (random shapes are initialised in it, files loaded with ``dtype=``)."""
    import torch

    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return _load_model(spec, dtype, device)
    finally:
        torch.set_default_dtype(default)


# random:SHAPE → (hidden, intermediate, layers, tied head) of the Llama 3 scale shapes, as in
# ptune_backbone::synthetic::shape (vocab 128256, 32 query and 8 key/value heads).
LLAMA3 = {"random:llama-3.2-1b": (2048, 8192, 16, True), "random:llama-3.1-8b": (4096, 14336, 32, False)}


def _load_model(spec: str, dtype, device: str):
    import torch
    from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, BertConfig, BertForMaskedLM,
                              LlamaConfig, LlamaForCausalLM)

    torch.manual_seed(1)
    if spec == "random:bert-base":  # the shapes of ptune_backbone::synthetic::shape
        config = BertConfig(vocab_size=28996, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=3072, max_position_embeddings=512)
        return BertForMaskedLM(config), False
    if spec == "random:smollm2-135m":
        config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                             num_attention_heads=9, num_key_value_heads=3, rms_norm_eps=1e-5, rope_theta=100000.0,
                             max_position_embeddings=8192, tie_word_embeddings=True)
        return LlamaForCausalLM(config), True
    if spec in LLAMA3:
        hidden, inter, layers, tied = LLAMA3[spec]
        config = LlamaConfig(vocab_size=128256, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                             num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, rope_theta=500000.0,
                             max_position_embeddings=131072, tie_word_embeddings=tied)
        with torch.device(device):  # on the GPU an 8B model initialises in seconds
            return LlamaForCausalLM(config), True
    path = Path(spec)
    if path.suffix == ".gguf":
        return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype), True
    config = AutoConfig.from_pretrained(path)
    causal = not config.model_type.startswith(("bert", "roberta"))
    cls = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    return cls.from_pretrained(path, dtype=dtype), causal


def synthetic_ids(b: int, t: int, n: int, vocab: int):
    """The ids, prompt slots (1..=n), targets (t-1) and labels of the bench example's batch."""
    import torch

    ids = torch.tensor([(i * 7919 + 13) % vocab for i in range(b * t)], dtype=torch.int64).reshape(b, t)
    slots = torch.arange(1, n + 1).repeat(b, 1)
    labels = torch.tensor([(i * 31 + 5) % vocab for i in range(b)], dtype=torch.int64)
    return ids, slots, labels


class Reference:
    """THUDM's PTuneForLAMA forward: encoder, per-slot embedding writes, full-vocabulary logits."""

    def __init__(self, model, causal: bool, n: int, b: int, t: int):
        import torch

        sys.path.insert(0, str(Path(__file__).parent))
        from make_encoder_fixtures import ThudmPromptEncoder

        self.model, self.causal = model, causal
        hidden = model.config.hidden_size
        self.encoder = ThudmPromptEncoder(n, hidden)
        self.ids, self.slots, labels = synthetic_ids(b, t, n, model.config.vocab_size)
        self.mask = torch.ones(b, t, dtype=torch.int64)
        # THUDM: [MASK] label at the target for BERT; for GPT the last real position is labelled.
        self.labels = torch.full((b, t), -100, dtype=torch.int64)
        self.labels[:, t - 1] = labels

    def parameters(self):
        return self.encoder.parameters()

    def to(self, device: str) -> None:
        self.encoder.to(device)
        self.encoder.seq_indices = self.encoder.seq_indices.to(device)
        self.ids, self.mask, self.labels = (x.to(device) for x in (self.ids, self.mask, self.labels))

    def loss(self):
        embeds = self.model.get_input_embeddings()(self.ids).clone()
        prompts = self.encoder()
        for bidx in range(self.slots.shape[0]):
            for i in range(self.slots.shape[1]):
                embeds[bidx, self.slots[bidx, i], :] = prompts[i, :]
        return self.model(inputs_embeds=embeds, attention_mask=self.mask, labels=self.labels).loss


class Peft:
    """PEFT p-tuning: virtual tokens in front, then the `t - n` real tokens."""

    def __init__(self, model, causal: bool, n: int, b: int, t: int):
        import torch
        from peft import PromptEncoderConfig, get_peft_model

        hidden = model.config.hidden_size
        config = PromptEncoderConfig(
            task_type="CAUSAL_LM" if causal else "FEATURE_EXTRACTION",
            num_virtual_tokens=n,
            encoder_reparameterization_type="LSTM",
            encoder_hidden_size=hidden,
        )
        self.model, self.causal, self.n = get_peft_model(model, config), causal, n
        ids, _, self.targets = synthetic_ids(b, t, n, model.config.vocab_size)
        self.ids = ids[:, n:]
        self.mask = torch.ones_like(self.ids)
        self.labels = torch.full_like(self.ids, -100)
        self.labels[:, -1] = self.targets

    def parameters(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def to(self, device: str) -> None:
        self.model.to(device)
        self.ids, self.mask, self.labels, self.targets = (
            x.to(device) for x in (self.ids, self.mask, self.labels, self.targets)
        )

    def loss(self):
        import torch.nn.functional as F

        if self.causal:
            return self.model(input_ids=self.ids, attention_mask=self.mask, labels=self.labels).loss
        logits = self.model(input_ids=self.ids, attention_mask=self.mask).logits
        return F.cross_entropy(logits[:, -1, :], self.targets)


def timed(steps: int, step) -> float:
    """Seconds for `steps` calls of `step` after one warm-up call (GPU work included)."""
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=["reference", "peft"], required=True)
    parser.add_argument("--model", required=True, help="random:bert-base, random:smollm2-135m, random:llama-3.2-1b, random:llama-3.1-8b, a .gguf file or a transformers directory")
    parser.add_argument("--template", default="3,3,3")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=24)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU comparison")
    parser.add_argument("--precision", choices=["f32", "bf16"], default="f32", help="the frozen model's dtype")
    args = parser.parse_args()

    import peft  # noqa: F401  (imported before the baseline, like torch and transformers)
    import torch
    import transformers  # noqa: F401

    torch.set_num_threads(args.threads)
    base_rss = rss_mb("VmRSS")
    start = time.perf_counter()
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    model, causal = load_model(args.model, dtype, args.device)
    model.to(args.device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    load_seconds = time.perf_counter() - start

    n, b = n_prompts(args.template), args.batch_size
    case = (Reference if args.impl == "reference" else Peft)(model, causal, n, b, args.seq_len)
    case.to(args.device)
    optim = torch.optim.Adam(case.parameters(), lr=1e-4, weight_decay=5e-4)

    def train_step():
        optim.zero_grad()
        case.loss().backward()
        optim.step()

    def eval_step():
        with torch.no_grad():
            case.loss()

    train = timed(args.steps, train_step)
    if args.impl == "peft":
        case.model.eval()
    evaluate = timed(args.steps, eval_step)
    examples = args.steps * b
    print(json.dumps({
        "model": args.model,
        "backend": f"pytorch-{args.impl}",
        "threads": torch.get_num_threads(),
        "device": args.device,
        "precision": args.precision,
        "batch_size": b,
        "seq_len": args.seq_len,
        "n_prompts": n,
        "load_seconds": load_seconds,
        "train_examples_per_s": examples / train,
        "eval_examples_per_s": examples / evaluate,
        "base_rss_mb": base_rss,
        "peak_rss_mb": max(rss_mb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0),
        "cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else None,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__},
    }))


if __name__ == "__main__":
    main()
