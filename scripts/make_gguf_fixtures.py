#!/usr/bin/env python3
"""Writes the GGUF test fixtures of ptune-gguf and ptune-backbone.

Needs numpy, torch, transformers, gguf (gguf-py), safetensors and tokenizers; on the dev machine
they live in /root/.cache/ptune-venv. Run from the repository root:

    /root/.cache/ptune-venv/bin/python scripts/make_gguf_fixtures.py

Everything is seeded, so reruns give the same files. It writes:

* crates/ptune-gguf/tests/fixtures/quants.gguf and quants_expected.safetensors: one small tensor
  per supported ggml type, and gguf-py's dequantization of each (the Rust reader must match).
* crates/ptune-backbone/tests/fixtures/llama_gguf/: a tiny random Llama written the way
  llama.cpp's converter writes one (names, Q/K row permutation, mixed quantization, byte-level BPE
  tokenizer metadata), with `hf_weights.safetensors` (the weights transformers loads from it),
  `reference.safetensors` (transformers' outputs on a padded batch) and `tokens.json`.
* crates/ptune-gguf/tests/reference/smollm2_tokens.json, only when the SmolLM2 GGUF is present
  (`cargo xtask fetch smollm2`; path from $PTUNE_MODELS, default ~/.cache/ptune/models):
  transformers' token ids and a few dequantized weights of that file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch
from tokenizers import pre_tokenizers

ROOT = Path(__file__).resolve().parent.parent
GGUF_TESTS = ROOT / "crates/ptune-gguf/tests"
LLAMA_DIR = ROOT / "crates/ptune-backbone/tests/fixtures/llama_gguf"
SMOLLM2 = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def write_gguf(path: Path, arch: str, fill) -> None:
    """Writes a GGUF file; `fill(writer)` adds the metadata and tensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def add_quantized(writer, name: str, values: np.ndarray, qtype: T) -> np.ndarray:
    """Stores `values` as `qtype` and returns what gguf-py dequantizes them back to."""
    if qtype == T.F32:
        raw = values.astype(np.float32)
        writer.add_tensor(name, raw)
        return raw
    if qtype == T.F16:
        raw = values.astype(np.float16)
        writer.add_tensor(name, raw)
        return raw.astype(np.float32)
    raw = gguf.quants.quantize(values.astype(np.float32), qtype)
    writer.add_tensor(name, raw, raw_dtype=qtype)
    return gguf.quants.dequantize(raw, qtype)


# Where each K-quant keeps its f16 super-block scales: (offset of d, offset of dmin or None).
K_SCALES = {
    T.Q2_K: (80, 82),
    T.Q3_K: (108, None),
    T.Q4_K: (0, 2),
    T.Q5_K: (0, 2),
    T.Q6_K: (208, None),
}


def random_k_blocks(rng: np.random.Generator, qtype: T, rows: int, cols: int) -> np.ndarray:
    """Random K-quant blocks (gguf-py cannot quantize these) with sane f16 scales."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    blocks = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for offset in K_SCALES[qtype]:
        if offset is not None:
            scale = rng.uniform(0.001, 0.1, size=n_blocks).astype(np.float16)
            blocks[:, offset : offset + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(rows, cols // block * size)


def make_quant_fixture() -> None:
    rng = np.random.default_rng(0)
    expected: dict[str, np.ndarray] = {}

    def fill(writer):
        plain = {"f32": T.F32, "f16": T.F16, "bf16": T.BF16}
        for name, qtype in plain.items():
            expected[name] = add_quantized(writer, name, rng.standard_normal((3, 40)), qtype)
        expected["f32_3d"] = add_quantized(writer, "f32_3d", rng.standard_normal((2, 3, 4)), T.F32)
        expected["f32_1d"] = add_quantized(writer, "f32_1d", rng.standard_normal(5), T.F32)
        for qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
            values = rng.standard_normal((3, 64)) * rng.uniform(0.1, 2.0, size=(3, 1))
            expected[qtype.name.lower()] = add_quantized(writer, qtype.name.lower(), values, qtype)
        for qtype in K_SCALES:
            raw = random_k_blocks(rng, qtype, 2, 512)
            writer.add_tensor(qtype.name.lower(), raw, raw_dtype=qtype)
            expected[qtype.name.lower()] = gguf.quants.dequantize(raw, qtype)

    write_gguf(GGUF_TESTS / "fixtures/quants.gguf", "none", fill)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()}
    save_numpy(arrays, str(GGUF_TESTS / "fixtures/quants_expected.safetensors"))


# --- a tiny byte-level BPE tokenizer -----------------------------------------------------------

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<think>"]
CORPUS = """The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.
Hello, world! Hello there, little model. 123 apples and 4567 pears in 2024, 12345 in 1999.
Paris is the capital of France. Berlin is the capital of Germany.
I'M sure it's the fox's den; DON'T touch THE fox's 123456 things.\n\n  then\r\n\n  there
the the the then there these those other brother mother father weather 42 420 4200
"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable spelling of every byte, as byte-level BPE vocabularies use."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def train_bpe(n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE on CORPUS, ties broken by the pair's text, so the result is fixed. Pieces are
    GPT-2's, so merges span digits and whitespace runs and the pre-tokenizers give different ids."""
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = Counter(tuple(piece) for piece, _ in pre.pre_tokenize_str(CORPUS))
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def tiny_tokenizer() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges): specials first, then the 256 bytes, merges, user-defined."""
    merges = train_bpe(120)
    byte_tokens = [bytes_to_unicode()[b] for b in range(256)]
    merged = [a + b for a, b in merges]
    tokens = SPECIALS + byte_tokens + merged + USER_DEFINED
    assert len(set(tokens)) == len(tokens), "duplicate tokens"
    types = [3] * len(SPECIALS) + [1] * (len(byte_tokens) + len(merged)) + [4] * len(USER_DEFINED)
    return tokens, types, [f"{a} {b}" for a, b in merges]


# --- a tiny Llama, written like llama.cpp's convert_hf_to_gguf.py ------------------------------


def permute(weights: torch.Tensor, n_head: int, n_head_kv: int | None) -> torch.Tensor:
    """convert_hf_to_gguf.py's LlamaModel.permute: rotate-half row order to interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


# How each layer's matrices are stored: a mix, so the reader is tested on every path the
# backbone meets (quantized Q/K go through un-permutation after dequantization).
LAYER_TYPES = [
    {"attn_q": T.Q4_1, "attn_k": T.Q8_0, "attn_v": T.F16, "attn_output": T.Q4_0,
     "ffn_gate": T.Q8_0, "ffn_up": T.F16, "ffn_down": T.Q4_1},
    {"attn_q": T.F32, "attn_k": T.F16, "attn_v": T.Q8_0, "attn_output": T.F32,
     "ffn_gate": T.F16, "ffn_up": T.Q4_0, "ffn_down": T.F32},
]
HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def tiny_llama(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, initializer_range=0.1,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:  # away from 1, so a swapped norm shows
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
    return model


def write_tiny_llama(path: Path, model, tokens, types, merges) -> None:
    cfg = model.config
    state = model.state_dict()

    def fill(w):
        w.add_name("Tiny Llama")
        w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_block_count(cfg.num_hidden_layers)
        w.add_feed_forward_length(cfg.intermediate_size)
        w.add_rope_dimension_count(cfg.head_dim)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(cfg.num_key_value_heads)
        w.add_rope_freq_base(100000.0)
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        w.add_vocab_size(cfg.vocab_size)
        w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("smollm")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_pad_token_id(2)
        w.add_add_bos_token(True)  # unlike SmolLM2, to test the BOS path of the tokenizer
        w.add_add_space_prefix(False)
        add_quantized(w, "token_embd.weight", state["model.embed_tokens.weight"].numpy(), T.Q8_0)
        for layer, kinds in enumerate(LAYER_TYPES):
            for hf, short in HF_TO_GGUF.items():
                weight = state[f"model.layers.{layer}.{hf}.weight"]
                if short == "attn_q":
                    weight = permute(weight, cfg.num_attention_heads, cfg.num_attention_heads)
                elif short == "attn_k":
                    weight = permute(weight, cfg.num_attention_heads, cfg.num_key_value_heads)
                add_quantized(w, f"blk.{layer}.{short}.weight", weight.numpy(), kinds.get(short, T.F32))
        add_quantized(w, "output_norm.weight", state["model.norm.weight"].numpy(), T.F32)

    write_gguf(path, "llama", fill)


def make_llama_fixture() -> None:
    from transformers import LlamaForCausalLM

    tokens, types, merges = tiny_tokenizer()
    original = tiny_llama(len(tokens))
    LLAMA_DIR.mkdir(parents=True, exist_ok=True)
    write_tiny_llama(LLAMA_DIR / "model.gguf", original, tokens, types, merges)

    # The reference is what transformers makes of the file: quantization included.
    model = LlamaForCausalLM.from_pretrained(
        str(LLAMA_DIR), gguf_file="model.gguf", attn_implementation="eager", dtype=torch.float32
    ).eval()
    weights = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_torch(weights, str(LLAMA_DIR / "hf_weights.safetensors"))

    seq = 7
    gen = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, len(tokens), (2, seq), generator=gen)
    attention_mask = torch.ones(2, seq, dtype=torch.long)
    input_ids[1, 4:] = 2  # pad
    attention_mask[1, 4:] = 0
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    save_torch(
        {
            "input_ids": input_ids.contiguous(),
            "attention_mask": attention_mask.contiguous(),
            "hidden": out.hidden_states[-1].contiguous(),  # after the final norm
            "logits": out.logits.contiguous(),
        },
        str(LLAMA_DIR / "reference.safetensors"),
    )

    json.dump(
        {"texts": TOKENIZER_TEXTS, "ids": token_ids(tokens, types, merges)},
        open(LLAMA_DIR / "tokens.json", "w"),
        indent=1,
        ensure_ascii=False,
    )


TOKENIZER_TEXTS = [
    "Hello, world!", "The quick brown fox", "<|im_start|>user\nthe dog<|im_end|>",
    "there <think> other", "naïve ünïcode ✓", "I'M the fox's 12345 pears,the\n\n  then\r\nthere",
]


def token_ids(tokens, types, merges) -> dict[str, list[list[int]]]:
    """Expected ids of TOKENIZER_TEXTS for the fixture's vocabulary under several
    `tokenizer.ggml.pre` values. `smollm` is the fixture's own (with BOS, as its metadata asks):
    transformers ignores its digit split, which llama.cpp and SmolLM2's tokenizer.json apply, so
    its ids come from that tokenizer.json pipeline rebuilt with `tokenizers`. The others (no BOS)
    are transformers' GGUF tokenizer on copies of the vocabulary with that `pre`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors
    from transformers import AutoTokenizer

    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                               merges=[tuple(m.split(" ")) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t, k in zip(tokens, types) if k == 3])
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t, k in zip(tokens, types) if k == 4])
    tok.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", pair="<|im_start|> $A <|im_start|>:1 $B:1",
        special_tokens=[("<|im_start|>", 1)],
    )
    out = {"smollm": [tok.encode(t).ids for t in TOKENIZER_TEXTS]}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in ["default", "llama-bpe", "qwen2"]:
            def fill(w):
                w.add_tokenizer_model("gpt2")
                w.add_tokenizer_pre(pre)
                w.add_token_list(tokens)
                w.add_token_types(types)
                w.add_token_merges(merges)
                w.add_bos_token_id(1)
                w.add_eos_token_id(2)
                w.add_add_bos_token(False)

            write_gguf(Path(tmp) / f"{pre}.gguf", "llama", fill)
            hf = AutoTokenizer.from_pretrained(tmp, gguf_file=f"{pre}.gguf")
            out[pre] = [hf(t)["input_ids"] for t in TOKENIZER_TEXTS]
    return out


# --- SmolLM2 reference values ------------------------------------------------------------------

SMOLLM2_TEXTS = [
    "The capital of France is",
    " Paris",
    "Hello, world! 123",
    "Grüße aus Köln — naïve café, 東京, 😀",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
    "  leading spaces\tand\ttabs\n\nnewlines",
]


def make_smollm2_reference() -> None:
    models = Path(os.environ.get("PTUNE_MODELS", Path.home() / ".cache/ptune/models"))
    path = models / SMOLLM2
    if not path.exists():
        print(f"skipping SmolLM2 reference: {path} is absent")
        return
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / path.name
        os.symlink(path, link)
        tok = AutoTokenizer.from_pretrained(tmp, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=path.name, dtype=torch.float32)
    state = model.state_dict()

    def values(name, rows, cols):
        return state[name][rows, cols].flatten().tolist()

    ref = {
        "texts": SMOLLM2_TEXTS,
        "ids": [tok(t)["input_ids"] for t in SMOLLM2_TEXTS],
        "weights": {
            "embed_row0": values("model.embed_tokens.weight", 0, slice(0, 32)),
            "embed_row1000": values("model.embed_tokens.weight", 1000, slice(0, 32)),
            "q_proj0_rows0_4_cols0_8": values("model.layers.0.self_attn.q_proj.weight", slice(0, 4), slice(0, 8)),
            "q_proj0_rows32_36_cols0_8": values("model.layers.0.self_attn.q_proj.weight", slice(32, 36), slice(0, 8)),
            "k_proj5_rows60_64_cols100_108": values("model.layers.5.self_attn.k_proj.weight", slice(60, 64), slice(100, 108)),
            "down_proj29_row7_cols0_16": values("model.layers.29.mlp.down_proj.weight", 7, slice(0, 16)),
            "norm_0_16": state["model.norm.weight"][:16].tolist(),
        },
        "config": {
            "rope_theta": float(model.config.rope_parameters["rope_theta"]),
            "rms_norm_eps": model.config.rms_norm_eps,
            "head_dim": model.config.head_dim,
            "num_key_value_heads": model.config.num_key_value_heads,
        },
    }
    out = GGUF_TESTS / "reference/smollm2_tokens.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    json.dump(ref, open(out, "w"), indent=1, ensure_ascii=False)


if __name__ == "__main__":
    make_quant_fixture()
    make_llama_fixture()
    make_smollm2_reference()
    print("fixtures written")
