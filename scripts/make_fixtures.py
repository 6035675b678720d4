"""Writes ptune-backbone's parity fixtures: tiny seeded Hugging Face checkpoints and reference outputs.

This script is the source of the committed files under

* ``crates/ptune-backbone/tests/fixtures/<name>/``: tiny random models (hidden 32, 2 layers, 4 heads,
  intermediate 64, max positions 64) as ``save_pretrained`` writes them, with their tokenizer files
  and a ``reference.safetensors`` holding ``input_ids`` (I64 [2, T]), ``attention_mask`` (I64 [2, T]),
  ``hidden`` (F32 [2, T, H], the final hidden states that feed the LM head) and ``logits``
  (F32 [2, T, V]). Row 0 is full length; row 1 is shorter and right-padded.
* ``crates/ptune-backbone/tests/reference/``: reference outputs of three real models (SmolLM2 GGUF,
  AntiBERTy, all-MiniLM-L6-v2) whose weights are never committed, plus ``checksums.json``.

Run it (offline; no model hub is needed) from the repository root:

    HF_HUB_OFFLINE=1 /root/.cache/ptune-venv/bin/python scripts/make_fixtures.py [--models DIR] [--only NAME]

``--models`` is the model cache that ``cargo xtask fetch`` fills (default ``$PTUNE_MODELS`` or
``~/.cache/ptune/models``); real-model references whose files are absent are skipped with a note.
``--only`` (repeatable) limits the run to the named fixtures/references. The tiny fixtures are
deterministic: running the script twice gives byte-identical files. Every saved model is reloaded
with transformers and checked against its reference before the script finishes.

Fixtures: ``bert`` (BertForMaskedLM, WordPiece vocab.txt), ``bert_bin`` (the same model as a torch
zip ``pytorch_model.bin``), ``roberta`` (RobertaForMaskedLM, vocab.json + merges.txt), ``gpt2``
(GPT2LMHeadModel, vocab.json + merges.txt), ``llama_gqa_tied`` (GQA 4/2, tied), ``llama_untied``
(MQA, untied, sharded safetensors, config with the transformers-4 top-level ``rope_theta``) and
``qwen2`` (Qwen2ForCausalLM with q/k/v biases); the Llama and Qwen2 tokenizers are tokenizer.json.
transformers 5 writes ``rope_parameters`` into config.json and no longer writes pytorch_model.bin,
so ``bert_bin`` is written with ``torch.save`` as transformers 4's ``safe_serialization=False`` did.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF loader's progress bar

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import ByteLevelBPETokenizer, Tokenizer  # noqa: E402
from tokenizers.processors import TemplateProcessing  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Tokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizer,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "crates/ptune-backbone/tests/fixtures"
REFERENCE = REPO / "crates/ptune-backbone/tests/reference"

# Shared tiny sizes.
HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 64
MAX_POSITIONS = 64

# Reloading a saved fixture must reproduce its reference to this (the Rust tests allow 1e-4).
RELOAD_TOLERANCE = 1e-6

# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------

# Training text for the tiny byte-level BPE tokenizers.
CORPUS = [
    "The capital of France is Paris.",
    "The capital of Germany is Berlin.",
    "The capital of Italy is Rome.",
    "The capital of Spain is Madrid.",
    "The capital of Japan is Tokyo.",
    "Paris is the capital and largest city of France.",
    "The cat sat on the mat.",
    "The dog sat on the log.",
    "A cat and a dog are good friends.",
    "The sun rises in the east and sets in the west.",
    "Water is made of hydrogen and oxygen.",
    "The sky is blue and the grass is green.",
    "She reads a book in the morning.",
    "He writes a letter to his friend.",
    "We walk to the park on Sunday.",
    "They play music in the evening.",
    "The river flows to the sea.",
    "The mountain is high and the valley is deep.",
    "I like apples, oranges and bananas.",
    "The train leaves the station at noon.",
    "Birds sing in the trees.",
    "The children play in the garden.",
    "It is cold in the winter and warm in the summer.",
    "The moon shines at night.",
    "The teacher speaks to the class.",
    "A small boat sails on the lake.",
    "The city is large and the town is small.",
    "My friend lives in a house by the sea.",
    "The weather is nice today.",
    "Cats like to sleep in the sun.",
    "The capital city has many old buildings.",
    "People speak French in France and German in Germany.",
    "The model predicts the next word.",
    "This is a small test of the tokenizer.",
    "The quick brown fox jumps over the lazy dog.",
    "Rain falls from the clouds.",
]

BPE_VOCAB_SIZE = 360
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
GPT2_SPECIALS = ["<|endoftext|>"]
LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_WORDS = (
    "the of is and in to on at it he she we they capital city paris france london england "
    "berlin germany rome italy madrid spain tokyo japan cat dog sat mat sea sun water river "
    "large small big old new good day night ##ed ##ing ##er ##ly"
).split()


def train_byte_bpe(specials: list[str]) -> ByteLevelBPETokenizer:
    """Trains a tiny byte-level BPE on CORPUS; specials get ids 0.. in the given order."""
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        CORPUS,
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=specials,
        show_progress=False,
    )
    return tok


def write_bpe_vocab_merges(tok: ByteLevelBPETokenizer, out: Path) -> None:
    """Saves the classic GPT-2/RoBERTa tokenizer files, vocab.json and merges.txt."""
    tok.save_model(str(out))


def write_tokenizer_json(tok: ByteLevelBPETokenizer, out: Path, bos: str | None) -> Tokenizer:
    """Saves tokenizer.json; with `bos`, encoding prepends it as Llama tokenizers do."""
    inner: Tokenizer = tok._tokenizer
    if bos is not None:
        inner.post_processor = TemplateProcessing(
            single=f"{bos} $A",
            pair=f"{bos} $A {bos} $B",
            special_tokens=[(bos, inner.token_to_id(bos))],
        )
    inner.save(str(out / "tokenizer.json"))
    return Tokenizer.from_file(str(out / "tokenizer.json"))


def bert_vocab() -> list[str]:
    """The hand-written WordPiece vocabulary of the tiny BERT (one token per line of vocab.txt)."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    digits = [str(d) for d in range(10)]
    punct = [".", ",", "!", "?", "'", "-"]
    vocab = BERT_SPECIALS + punct + digits + letters + [f"##{c}" for c in letters] + BERT_WORDS
    assert len(vocab) == len(set(vocab)), "duplicate vocab entry"
    return vocab


def write_bert_tokenizer(out: Path) -> BertTokenizer:
    (out / "vocab.txt").write_text("".join(f"{t}\n" for t in bert_vocab()))
    config = {"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": MAX_POSITIONS}
    write_json(out / "tokenizer_config.json", config)
    # transformers 5 takes `vocab=`; its old `vocab_file=` keyword is silently ignored.
    return BertTokenizer(vocab=str(out / "vocab.txt"), do_lower_case=True)


# ---------------------------------------------------------------------------------------------
# Tensors and files
# ---------------------------------------------------------------------------------------------


def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pad_batch(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads token id rows into (input_ids, attention_mask), both int64 [B, T]."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(rows), width), dtype=torch.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
        mask[i, : len(row)] = 1
    return ids, mask


def check_batch(ids: torch.Tensor, mask: torch.Tensor) -> None:
    """Row 0 full length, row 1 strictly shorter, T around 7-10."""
    t = ids.shape[1]
    assert ids.shape[0] == 2 and 7 <= t <= 12, f"unexpected batch shape {tuple(ids.shape)}"
    assert int(mask[0].sum()) == t and int(mask[1].sum()) < t


def randomize_(model: PreTrainedModel, seed: int) -> None:
    """Overwrites every parameter with seeded noise of non-trivial scale.

    Matrices and embeddings ~ N(0, 0.2); norm weights ~ 1 + N(0, 0.2); biases and norm biases
    ~ N(0, 0.1). Tied parameters appear once. Buffers (rotary frequencies, position ids) stay.
    """
    # Norms by module type: GPT-2 calls its LayerNorms ln_1, ln_2 and ln_f.
    norm_weights = {
        f"{prefix}.weight" for prefix, module in model.named_modules() if "norm" in type(module).__name__.lower()
    }
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            if param.dim() >= 2:
                param.copy_(noise * 0.2)
            elif name in norm_weights:
                param.copy_(1.0 + noise * 0.2)
            else:
                param.copy_(noise * 0.1)


def build(model_cls: type[PreTrainedModel], config, seed: int) -> PreTrainedModel:
    torch.manual_seed(seed)
    model = model_cls(config)
    randomize_(model, seed)
    return model.eval()


def head_of(model: PreTrainedModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """The module that maps final hidden states to logits."""
    if isinstance(model, BertForMaskedLM):
        return model.cls
    if isinstance(model, RobertaForMaskedLM):
        return model.lm_head
    return model.get_output_embeddings()


@torch.no_grad()
def forward_reference(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Runs the model; `hidden` is the base model's last_hidden_state (post final norm)."""
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = out.logits
    # The hidden states must be exactly what the LM head sees.
    torch.testing.assert_close(head_of(model)(hidden), logits, rtol=0, atol=1e-5)
    # transformers 5.24 makes hidden_states[-1] the post-norm state for every family here; say so if not.
    if not torch.allclose(out.hidden_states[-1], hidden, rtol=0, atol=1e-6):
        print(f"    note: hidden_states[-1] of {type(model).__name__} is not the final (post-norm) hidden")
    return {
        "input_ids": ids.contiguous(),
        "attention_mask": mask.contiguous(),
        "hidden": hidden.float().contiguous(),
        "logits": logits.float().contiguous(),
    }


def write_reference(out: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file(tensors, str(out / "reference.safetensors"))


def verify_reload(model_cls: type[PreTrainedModel], out: Path) -> None:
    """Reloads the saved checkpoint with transformers and checks it reproduces the reference."""
    ref = load_file(str(out / "reference.safetensors"))
    model, info = model_cls.from_pretrained(out, attn_implementation="eager", output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    assert not problems, f"{out.name}: reload reported {problems}"
    got = forward_reference(model.eval(), ref["input_ids"], ref["attention_mask"])
    for key in ("hidden", "logits"):
        err = (got[key] - ref[key]).abs().max().item()
        assert err <= RELOAD_TOLERANCE, f"{out.name}: reloaded {key} differs by {err}"
    print(f"    reload ok: {sorted(p.name for p in out.iterdir())}")


def fresh_dir(name: str) -> Path:
    out = FIXTURES / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def save_model(model: PreTrainedModel, out: Path, **kwargs) -> None:
    model.save_pretrained(out, **kwargs)
    (out / "generation_config.json").unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Tiny fixtures
# ---------------------------------------------------------------------------------------------

BERT_TEXTS = ["paris is the capital of [MASK] .", "the cat sat ."]


def bert_model(vocab_size: int) -> BertForMaskedLM:
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=2,
        pad_token_id=0,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    return build(BertForMaskedLM, config, seed=1)


def bert_inputs(tok: BertTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [tok(t)["input_ids"] for t in BERT_TEXTS]
    assert tok.mask_token_id in rows[0]
    assert all(tok.unk_token_id not in r for r in rows), rows
    ids, mask = pad_batch(rows, tok.pad_token_id)
    check_batch(ids, mask)
    return ids, mask


def make_bert() -> None:
    out = fresh_dir("bert")
    tok = write_bert_tokenizer(out)
    model = bert_model(len(bert_vocab()))
    save_model(model, out)
    write_reference(out, forward_reference(model, *bert_inputs(tok)))
    verify_reload(BertForMaskedLM, out)


def write_pytorch_bin(model: PreTrainedModel, out: Path) -> None:
    """pytorch_model.bin as transformers 4.x wrote it (safe_serialization=False): the full
    state_dict in torch's zip format, tied tensors kept as aliases of one storage."""
    state = {k: v.detach() for k, v in model.state_dict().items()}
    torch.save(state, out / "pytorch_model.bin")


def make_bert_bin() -> None:
    """Same weights, config and reference as `bert`, but as a PyTorch pickle checkpoint."""
    out = fresh_dir("bert_bin")
    tok = write_bert_tokenizer(out)
    (out / "tokenizer_config.json").unlink()  # vocab.txt only, as the brief asks
    model = bert_model(len(bert_vocab()))
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(out)
    write_pytorch_bin(model, out)
    write_reference(out, forward_reference(model, *bert_inputs(tok)))
    verify_reload(BertForMaskedLM, out)


def make_roberta() -> None:
    out = fresh_dir("roberta")
    bpe = train_byte_bpe(ROBERTA_SPECIALS)
    write_bpe_vocab_merges(bpe, out)
    tok = RobertaTokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    config = RobertaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        layer_norm_eps=1e-5,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    assert config.pad_token_id == 1
    model = build(RobertaForMaskedLM, config, seed=3)
    save_model(model, out)
    rows = [tok(t)["input_ids"] for t in ["The capital of France is <mask>.", "The cat sat."]]
    assert tok.mask_token_id in rows[0]
    ids, mask = pad_batch(rows, tok.pad_token_id)
    check_batch(ids, mask)
    write_reference(out, forward_reference(model, ids, mask))
    verify_reload(RobertaForMaskedLM, out)


def make_gpt2() -> None:
    out = fresh_dir("gpt2")
    bpe = train_byte_bpe(GPT2_SPECIALS)
    write_bpe_vocab_merges(bpe, out)
    tok = GPT2Tokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(
        vocab_size=bpe.get_vocab_size(),
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=HEADS,
        n_inner=INTERMEDIATE,
        n_positions=MAX_POSITIONS,
        bos_token_id=eot,
        eos_token_id=eot,
        attn_implementation="eager",
    )
    model = build(GPT2LMHeadModel, config, seed=4)
    save_model(model, out)
    rows = [tok(t)["input_ids"] for t in ["The capital of France is Paris", "The cat sat"]]
    ids, mask = pad_batch(rows, 0)  # GPT-2 has no pad token
    check_batch(ids, mask)
    write_reference(out, forward_reference(model, ids, mask))
    verify_reload(GPT2LMHeadModel, out)


def causal_inputs(tok: Tokenizer, texts: list[str], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [tok.encode(t).ids for t in texts]
    ids, mask = pad_batch(rows, pad_id)
    check_batch(ids, mask)
    return ids, mask


LLAMA_TEXTS = ["The capital of France is Paris", "The cat sat"]


def llama_config(vocab_size: int, **overrides) -> LlamaConfig:
    base = dict(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        head_dim=HIDDEN // HEADS,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="eager",
    )
    base.update(overrides)
    return LlamaConfig(**base)


def make_llama_gqa_tied() -> None:
    out = fresh_dir("llama_gqa_tied")
    tok = write_tokenizer_json(train_byte_bpe(LLAMA_SPECIALS), out, bos="<s>")
    config = llama_config(
        tok.get_vocab_size(), num_key_value_heads=2, tie_word_embeddings=True, rope_theta=10000.0
    )
    model = build(LlamaForCausalLM, config, seed=5)
    save_model(model, out)
    write_reference(out, forward_reference(model, *causal_inputs(tok, LLAMA_TEXTS, pad_id=0)))
    verify_reload(LlamaForCausalLM, out)


def legacy_rope_config(out: Path) -> None:
    """Rewrites config.json's transformers-5 `rope_parameters` as the top-level `rope_theta`
    (and `rope_scaling: null`) that transformers 4.x checkpoints carry, so that both layouts
    are covered by the fixtures. transformers 5 reads either; the reload check proves it."""
    path = out / "config.json"
    config = json.loads(path.read_text())
    rope = config.pop("rope_parameters")
    assert rope.get("rope_type", "default") == "default", rope
    config["rope_theta"] = rope["rope_theta"]
    config["rope_scaling"] = None
    write_json(path, dict(sorted(config.items())))


def make_llama_untied() -> None:
    out = fresh_dir("llama_untied")
    tok = write_tokenizer_json(train_byte_bpe(LLAMA_SPECIALS), out, bos="<s>")
    config = llama_config(
        tok.get_vocab_size(), num_key_value_heads=1, tie_word_embeddings=False, rope_theta=500000.0
    )
    model = build(LlamaForCausalLM, config, seed=6)
    save_model(model, out, max_shard_size="20KB")
    legacy_rope_config(out)
    assert (out / "model.safetensors.index.json").exists(), "expected a sharded checkpoint"
    write_reference(out, forward_reference(model, *causal_inputs(tok, LLAMA_TEXTS, pad_id=0)))
    verify_reload(LlamaForCausalLM, out)


def make_qwen2() -> None:
    out = fresh_dir("qwen2")
    tok = write_tokenizer_json(train_byte_bpe(QWEN2_SPECIALS), out, bos=None)
    eot = tok.token_to_id("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(),
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        tie_word_embeddings=False,
        bos_token_id=eot,
        eos_token_id=eot,
        attn_implementation="eager",
    )
    model = build(Qwen2ForCausalLM, config, seed=7)
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    save_model(model, out)
    write_reference(out, forward_reference(model, *causal_inputs(tok, LLAMA_TEXTS, pad_id=eot)))
    verify_reload(Qwen2ForCausalLM, out)


# ---------------------------------------------------------------------------------------------
# Real-model references
# ---------------------------------------------------------------------------------------------

SMOLLM2_GGUF = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ANTIBERTY_BIN = "antiberty/pytorch_model.bin"
MINILM_WEIGHTS = "minilm/model.safetensors"

SMOLLM2_PROMPTS = ["The capital of France is", "The capital of Japan is", "Water is made of hydrogen and"]
TOP_K = 10


def present(models: Path, *relpaths: str) -> bool:
    missing = [p for p in relpaths if not (models / p).is_file()]
    if missing:
        print(f"  SKIPPED: {', '.join(missing)} not found under {models}")
    return not missing


def gguf_add_bos(path: Path) -> bool | None:
    """`tokenizer.ggml.add_bos_token` from the GGUF metadata (None when absent)."""
    import gguf

    field = gguf.GGUFReader(str(path)).get_field("tokenizer.ggml.add_bos_token")
    return None if field is None else bool(field.contents())


@torch.no_grad()
def make_smollm2(models: Path) -> None:
    if not present(models, SMOLLM2_GGUF):
        return
    gguf_path = models / SMOLLM2_GGUF
    metadata_bos = gguf_add_bos(gguf_path)
    directory, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model, info = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, dtype=torch.float32, output_loading_info=True
    )
    model.eval()
    assert not any(info.values()), f"SmolLM2 loading info: {info}"
    assert model.config.tie_word_embeddings, "SmolLM2 ties lm_head to the embeddings"
    results = []
    for prompt in SMOLLM2_PROMPTS:
        ids = tok(prompt)["input_ids"]
        bos_added = bool(ids) and ids[0] == tok.bos_token_id
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        logprobs = torch.log_softmax(logits.double(), dim=-1)
        top = torch.topk(logprobs, TOP_K)
        results.append(
            {
                "prompt": prompt,
                "input_ids": ids,
                "bos_added": bos_added,
                "top": [
                    {
                        "id": int(i),
                        "token": tok.convert_ids_to_tokens(int(i)),
                        "text": tok.decode([int(i)]),
                        "logprob": float(lp),
                    }
                    for lp, i in zip(top.values.tolist(), top.indices.tolist())
                ],
            }
        )
        best = results[-1]["top"][0]
        print(f"  {prompt!r} -> {best['text']!r} ({best['logprob']:.4f}), bos_added={bos_added}")
    paris = results[0]["top"][0]["text"]
    if paris != " Paris":
        print(f"  !!!!! WARNING: SmolLM2's top-1 after {SMOLLM2_PROMPTS[0]!r} is {paris!r}, not ' Paris'")
    write_json(
        REFERENCE / "smollm2.json",
        {
            "model": SMOLLM2_GGUF,
            "loader": f"transformers {transformers.__version__} AutoModelForCausalLM(gguf_file), dequantized to f32",
            "gguf_add_bos_token": metadata_bos,
            "tie_word_embeddings": True,
            "bos_used": all(r["bos_added"] for r in results),
            "logprob": "log_softmax over the full vocabulary of the last position's f32 logits, in f64",
            "prompts": results,
        },
    )


ANTIBERTY_SEQUENCES = [
    "EVQLVESGGGLVQPGGSLRLSCAASGFTFS",  # heavy chain FR1
    "DIQMTQSPSSLSASVGDRVTITC",  # light chain FR1
]
ANTIBERTY_MASK_AT = 10  # residue index masked in sequence 0


def antiberty_texts() -> list[str]:
    """Space-separated residues as AntiBERTyRunner feeds its BertTokenizer, one [MASK] in row 0."""
    residues = list(ANTIBERTY_SEQUENCES[0])
    residues[ANTIBERTY_MASK_AT] = "[MASK]"
    return [" ".join(residues), " ".join(ANTIBERTY_SEQUENCES[1])]


@torch.no_grad()
def make_antiberty(models: Path) -> None:
    if not present(models, ANTIBERTY_BIN, "antiberty/config.json", "antiberty/vocab.txt"):
        return
    directory = models / "antiberty"
    tok = BertTokenizer(vocab=str(directory / "vocab.txt"), do_lower_case=False)
    model, info = BertForMaskedLM.from_pretrained(
        directory, attn_implementation="eager", output_loading_info=True, dtype=torch.float32
    )
    model.eval()
    loading = {k: sorted(v) for k, v in info.items() if v}
    print(f"  loading info: {loading}")
    assert not loading.get("missing_keys"), loading
    texts = antiberty_texts()
    enc = tok(texts, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert tok.mask_token_id in ids[0].tolist() and tok.unk_token_id not in ids.tolist()
    tensors = forward_reference(model, ids, mask)
    save_file(tensors, str(REFERENCE / "antiberty.safetensors"))
    masked = ids[0].tolist().index(tok.mask_token_id)
    top = tensors["logits"][0, masked].argmax().item()
    print(f"  [MASK] at {masked} (true {ANTIBERTY_SEQUENCES[0][ANTIBERTY_MASK_AT]}) -> {tok.convert_ids_to_tokens(top)}")
    write_json(
        REFERENCE / "antiberty.json",
        {
            "model": "antiberty (AntiBERTy_md_smooth) as BertForMaskedLM",
            "sequences": ANTIBERTY_SEQUENCES,
            "texts": texts,
            "tokenizer": "BertTokenizer(vocab.txt, do_lower_case=False), padding=True",
            "mask_position": masked,
            "loading_info": loading,
            "note": "the checkpoint's cls.predictions.decoder.weight aliases bert.embeddings.word_embeddings.weight"
            " (one storage) and cls.predictions.decoder.bias aliases cls.predictions.bias; it also holds the"
            " int64 buffer bert.embeddings.position_ids",
            "tensors": {k: list(v.shape) for k, v in tensors.items()},
        },
    )


MINILM_TEXTS = ["The capital of France is Paris.", "Hello world!"]


@torch.no_grad()
def make_minilm(models: Path) -> None:
    files = ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"]
    if not present(models, *(f"minilm/{f}" for f in files)):
        return
    directory = models / "minilm"
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tok.no_truncation()
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    encs = tok.encode_batch(MINILM_TEXTS)
    ids = torch.tensor([e.ids for e in encs], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.int64)
    types = torch.tensor([e.type_ids for e in encs], dtype=torch.int64)
    model = BertModel.from_pretrained(directory, attn_implementation="eager", dtype=torch.float32).eval()
    hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    tensors = {
        "input_ids": ids.contiguous(),
        "attention_mask": mask.contiguous(),
        "token_type_ids": types.contiguous(),
        "hidden": hidden.float().contiguous(),
    }
    save_file(tensors, str(REFERENCE / "minilm.safetensors"))
    write_json(
        REFERENCE / "minilm.json",
        {
            "model": "all-MiniLM-L6-v2 (BertModel, no MLM head)",
            "texts": MINILM_TEXTS,
            "tokenizer": "tokenizer.json, padding with [PAD]=0 to the longest",
            "tensors": {k: list(v.shape) for k, v in tensors.items()},
        },
    )
    print(f"  input_ids {ids.tolist()}")


def write_checksums(models: Path) -> None:
    """SHA-256 of the real model files, which `cargo xtask fetch` verifies."""
    path = REFERENCE / "checksums.json"
    sums = json.loads(path.read_text()) if path.exists() else {}
    for rel in (SMOLLM2_GGUF, ANTIBERTY_BIN, MINILM_WEIGHTS):
        if (models / rel).is_file():
            sums[rel] = sha256(models / rel)
            print(f"  {sums[rel]}  {rel}")
    write_json(path, dict(sorted(sums.items())))


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

TINY = {
    "bert": make_bert,
    "bert_bin": make_bert_bin,
    "roberta": make_roberta,
    "gpt2": make_gpt2,
    "llama_gqa_tied": make_llama_gqa_tied,
    "llama_untied": make_llama_untied,
    "qwen2": make_qwen2,
}
REAL = {
    "smollm2": make_smollm2,
    "antiberty": make_antiberty,
    "minilm": make_minilm,
    "checksums": write_checksums,
}


def default_models_dir() -> Path:
    return Path(os.environ.get("PTUNE_MODELS", Path.home() / ".cache/ptune/models")).expanduser()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=default_models_dir(), help="real-model cache")
    parser.add_argument("--only", action="append", choices=[*TINY, *REAL], help="run just these (repeatable)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")

    selected = set(args.only or [*TINY, *REAL])
    for name, make in TINY.items():
        if name in selected:
            print(f"fixture {name}")
            make()
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for name, make in REAL.items():
        if name in selected:
            print(f"reference {name}")
            make(args.models.expanduser())
    return 0


if __name__ == "__main__":
    sys.exit(main())
