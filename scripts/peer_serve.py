"""The serving workload of ``cargo xtask bench --serve`` through PEFT, for ptune's ratio.

PEFT cannot put prompt-learning adapters of different tasks in one batch, so a server built on
it runs one adapter per forward pass and switches adapters between batches. This script plays
that server without HTTP (which only flatters PEFT): ``--clients`` closed-loop clients each keep
one request outstanding, client ``c``'s ``k``-th request going to adapter ``(c + k) % packs``
(as the load generator sends them); the server takes the
oldest request's adapter, batches every pending request for it (at most ``--max-batch``), runs
the frozen model with that adapter's p-tuning prompts (PEFT ``PromptEncoderConfig``, 6 virtual
tokens, LSTM reparameterization, as a user sets it up), and the answered clients send their next
request. One JSON line per level, as the load generator prints.

    python scripts/peer_serve.py --model ~/.cache/ptune/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"""

import argparse
import json
import pathlib
import time
from collections import deque

import torch


def subjects(root: pathlib.Path) -> list:
    out = []
    for rel in sorted((root / "datasets/facts/fact-retrieval/original").iterdir()):
        for line in (rel / "test.jsonl").read_text().splitlines():
            if line.strip():
                out.append(json.loads(line)["sub_label"])
    return out


def nearest_rank(sorted_values: list, q: float) -> float:
    n = len(sorted_values)
    k = min(max(int(-(-q * n // 1)), 1), n)
    return sorted_values[k - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="a .gguf file")
    parser.add_argument("--packs", type=int, default=8)
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from peft import PromptEncoderConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = pathlib.Path(args.model).expanduser()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    hidden = base.config.hidden_size

    def config():
        return PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=6,
                                   encoder_hidden_size=hidden, inference_mode=True)

    torch.manual_seed(0)
    model = get_peft_model(base, config(), adapter_name="L0")
    for p in range(1, args.packs):
        model.add_adapter(f"L{p}", config())
    model.eval()
    names = subjects(pathlib.Path(__file__).resolve().parent.parent)

    def forward(adapter: str, texts: list) -> None:
        model.set_adapter(adapter)
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            logits = model(**batch).logits[:, -1]
        logits.log_softmax(-1).topk(1)

    forward("L0", names[:1])  # warm-up
    for mixed in (1, args.packs):
        for clients in [int(c) for c in args.clients.split(",")]:
            per_client = -(-args.requests // clients)
            total = per_client * clients
            pending = deque()  # (client, request number, adapter, enqueued at)
            sent = [0] * clients

            def send(c: int, now: float) -> None:
                n = c * per_client + sent[c]
                pending.append((c, n, f"L{(c + sent[c]) % mixed}", now))
                sent[c] += 1

            start = time.perf_counter()
            for c in range(clients):
                send(c, start)
            latencies, batches = [], 0
            while pending:
                adapter = pending[0][2]
                batch = [r for r in pending if r[2] == adapter][: args.max_batch]
                for r in batch:
                    pending.remove(r)
                forward(adapter, [names[r[1] % len(names)] for r in batch])
                batches += 1
                now = time.perf_counter()
                for c, _, _, enqueued in batch:
                    latencies.append((now - enqueued) * 1e3)
                    if sent[c] < per_client:
                        send(c, now)
            wall = time.perf_counter() - start
            latencies.sort()
            print(json.dumps({
                "bench": "serve", "impl": "peft", "packs": mixed, "clients": clients,
                "requests": total, "inputs_per_request": 1, "threads": args.threads,
                "wall_s": wall, "inputs_per_s": total / wall,
                "p50_ms": nearest_rank(latencies, 0.5), "p99_ms": nearest_rank(latencies, 0.99),
                "mean_batch_requests": total / batches,
            }), flush=True)


if __name__ == "__main__":
    main()
