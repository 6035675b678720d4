#!/usr/bin/env bash
# The GPU check in one run (issue 17), for a machine lent for a few minutes with no network:
#
#   scripts/gpu_check.sh BIN_DIR OUT [BACKEND]
#
# BIN_DIR holds `ptune` and `bench` built by `cargo xtask build --backend tch` (stripped; they
# carry in well under 64 MiB), OUT receives everything (results.jsonl, one JSON line per check
# or run; summary.md; log.txt), BACKEND is `tch-cuda` (default) or `tch` to try the script on a
# CPU. Run from the repository root: the tiny fixtures come from the checkout.
#
#   1. `ptune predict` on every tiny fixture (and SMOLLM2, a .gguf path, when given) with BACKEND
#      and with flex: the same top-5 and log-probs within 1e-3;
#   2. `ptune train` on BACKEND (tiny GPT-2, a generated relation; SmolLM2 + bundled facts when
#      SMOLLM2 is given), then `ptune eval` of its pack on BACKEND and on flex: the same P@1;
#      with SMOLLM2, every bundled relation trained one by one and with --mix: wall times and
#      the same test P@1;
#   3. the bench example against scripts/peer_bench.py (reference and PEFT; PYTHON needs
#      transformers and peft, else ptune only): bert-base and SmolLM2 shapes, batch 8/32/128,
#      f32 and bf16; then Llama-3.2-1B and Llama-3.1-8B shapes in bf16 (SCALE=0 skips them).
#      Each run's peak GPU memory is sampled from nvidia-smi (used memory above the idle level).
#
# Env: PYTHON (python3), STEPS (10 timed steps per bench run), BATCHES ("8 32 128"),
# RUN_TIMEOUT (seconds per command, 240).
set -u
bin=${1:?usage: scripts/gpu_check.sh BIN_DIR OUT [tch-cuda|tch]}
out=${2:?usage: scripts/gpu_check.sh BIN_DIR OUT [tch-cuda|tch]}
backend=${3:-tch-cuda}
python=${PYTHON:-python3}
steps=${STEPS:-10}
batches=${BATCHES:-8 32 128}
limit=${RUN_TIMEOUT:-240}
mkdir -p "$out"
results="$out/results.jsonl"
log="$out/log.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fixtures=crates/ptune-backbone/tests/fixtures
lib=$($python -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
device=cpu
[ "$backend" = tch-cuda ] && device=cuda

emit() { echo "$1" | tee -a "$results"; }
note() { echo "== $*" | tee -a "$log"; }
gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -n1; }

emit "$($python - "$backend" <<'EOF'
import json, platform, subprocess, sys, torch
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip() if torch.cuda.is_available() else None
print(json.dumps({"check": "machine", "backend": sys.argv[1], "gpu": gpu, "torch": torch.__version__,
                  "cuda": torch.version.cuda, "cpu": platform.processor() or platform.machine()}))
EOF
)"

# 1. predict: BACKEND against flex.
predict_pair() {  # NAME MODEL TEXT
    local name=$1 model=$2 text=$3
    note "predict $name"
    timeout "$limit" "$bin/ptune" predict --json --top-k 5 --model "$model" --backend flex "$text" >"$tmp/flex.json" 2>>"$log"
    timeout "$limit" "$bin/ptune" predict --json --top-k 5 --model "$model" --backend "$backend" "$text" >"$tmp/other.json" 2>>"$log"
    emit "$($python - "$name" "$backend" "$tmp/flex.json" "$tmp/other.json" <<'EOF'
import json, sys
name, backend, a, b = sys.argv[1:]
def load(path):
    try:
        return json.load(open(path))
    except Exception as e:
        return {"error": repr(e)}
x, y = load(a), load(b)
if "error" in x or "error" in y:
    print(json.dumps({"check": "predict", "model": name, "ok": False, "flex": x, backend: y}))
    sys.exit()
same, diff = len(x["predictions"]) == len(y["predictions"]), 0.0
for p, q in zip(x["predictions"], y["predictions"]):
    same &= [c["id"] for c in p["top"]] == [c["id"] for c in q["top"]]
    diff = max([diff] + [abs(c["logprob"] - d["logprob"]) for c, d in zip(p["top"], q["top"])])
print(json.dumps({"check": "predict", "model": name, "backend": backend, "same_top5": same,
                  "max_abs_logprob_diff": diff, "ok": same and diff <= 1e-3}))
EOF
)"
}
predict_pair bert "$fixtures/bert" "paris is the capital of [MASK] ."
predict_pair roberta "$fixtures/roberta" "paris is the capital of <mask> ."
for f in gpt2 llama_gqa_tied llama_untied llama_gguf qwen2; do
    model="$fixtures/$f"
    [ -f "$model/model.gguf" ] && model="$model/model.gguf"
    predict_pair "$f" "$model" "the capital of france is"
done
if [ -n "${SMOLLM2:-}" ]; then
    predict_pair smollm2 "$SMOLLM2" "The capital of France is"
fi

# 2. train on BACKEND, evaluate the pack on BACKEND and on flex.
data="$tmp/data"
mkdir -p "$data/fact-retrieval/original/P1"
echo '{"relation": "P1", "template": "[X] is near the [Y] .", "label": "near"}' >"$data/relations.jsonl"
facts() { for i in $(seq "$1" "$2"); do
    o=sea; [ $((i % 4)) = 3 ] && o=dog
    echo "{\"sub_label\": \"town $i\", \"obj_label\": \"$o\", \"predicate_id\": \"P1\"}"
done; }
facts 0 23 >"$data/fact-retrieval/original/P1/train.jsonl"
facts 24 35 >"$data/fact-retrieval/original/P1/dev.jsonl"
facts 36 47 >"$data/fact-retrieval/original/P1/test.jsonl"
train_pair() {  # NAME MODEL DATA RELATION ARGS...
    local name=$1 model=$2 dir=$3 relation=$4
    shift 4
    note "train $name on $backend"
    local start=$SECONDS
    timeout "$limit" "$bin/ptune" train --model "$model" --data "$dir" --relation "$relation" \
        --out "$out/run-$name" --backend "$backend" --seed 3 "$@" >>"$log" 2>&1
    local rc=$? seconds=$((SECONDS - start))
    for b in "$backend" flex; do
        timeout "$limit" "$bin/ptune" eval --json --pack "$out/run-$name/$relation" --data "$dir" \
            --backend "$b" >"$tmp/eval-$b.json" 2>>"$log"
    done
    emit "$($python - "$name" "$backend" "$rc" "$seconds" "$tmp/eval-$backend.json" "$tmp/eval-flex.json" <<'EOF'
import json, sys
name, backend, rc, seconds, a, b = sys.argv[1:]
def last(path):
    try:
        return json.loads(open(path).read().strip().splitlines()[-1])
    except Exception as e:
        return {"error": repr(e)}
x, y = last(a), last(b)
keys = ("p_at_1", "p_at_10", "mrr")
ok = rc == "0" and "error" not in x and all(abs(x[k] - y[k]) < 1e-9 for k in keys if k in x)
print(json.dumps({"check": "train+eval", "model": name, "backend": backend, "train_rc": int(rc),
                  "train_seconds": int(seconds), backend: {k: x.get(k) for k in keys},
                  "flex": {k: y.get(k) for k in keys}, "ok": ok}))
EOF
)"
}
train_pair gpt2 "$fixtures/gpt2" "$data" P1 --epochs 8 --patience 8 --lr 0.01 --init random
if [ -n "${SMOLLM2:-}" ]; then
    train_pair smollm2 "$SMOLLM2" datasets/facts P30 --epochs 2 --max-train 64
    # Mixed-relation training: every bundled relation one by one, then in shared batches (--mix);
    # wall time of each and whether every relation's test P@1 is the same.
    for mode in alone mix; do
        note "train all bundled relations ($mode) on $backend"
        start=$SECONDS
        flag=(); [ "$mode" = mix ] && flag=(--mix)
        timeout "$limit" "$bin/ptune" train --model "$SMOLLM2" --data datasets/facts --all-relations \
            --epochs 2 --min-steps 0 --out "$out/run-$mode" --backend "$backend" "${flag[@]}" >>"$log" 2>&1
        echo $((SECONDS - start)) >"$tmp/seconds-$mode"
    done
    emit "$($python - "$out" "$tmp" "$backend" <<'EOF'
import json, sys
out, tmp, backend = sys.argv[1:]
def rows(mode):
    try:
        return {r["relation"]: r["test_p1"] for r in json.load(open(f"{out}/run-{mode}/summary.json"))["relations"]}
    except Exception as e:
        return {"error": repr(e)}
a, m = rows("alone"), rows("mix")
sec = {mode: int(open(f"{tmp}/seconds-{mode}").read()) for mode in ("alone", "mix")}
print(json.dumps({"check": "mix", "model": "smollm2 all bundled relations", "backend": backend, "one_by_one_s": sec["alone"], "mixed_s": sec["mix"],
                  "speedup": sec["alone"] / max(sec["mix"], 1), "test_p1_alone": a, "test_p1_mixed": m,
                  "ok": "error" not in a and a == m}))
EOF
)"
fi

# 3. speed and memory against the PyTorch peers on the same device.
peers=1
if ! $python -c "import transformers, peft" 2>/dev/null; then
    note "no peers: $python lacks transformers or peft"
    peers=0
fi
measure() {  # COMMAND...: runs it, samples GPU memory, emits its JSON line with gpu_peak_mib
    local idle peak used pid rc
    idle=$(gpu_used)
    peak=${idle:-0}
    timeout "$limit" "$@" >"$tmp/line" 2>>"$log" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        used=$(gpu_used)
        [ -n "$used" ] && [ "$used" -gt "$peak" ] && peak=$used
        sleep 0.1
    done
    wait "$pid"
    rc=$?
    emit "$($python - "$rc" "${idle:-}" "$peak" "$tmp/line" "$*" <<'EOF'
import json, sys
rc, idle, peak, path, command = sys.argv[1:]
try:
    line = json.loads(open(path).read().strip().splitlines()[-1])
except Exception:
    line = {"error": f"exit {rc}", "command": command}
line["check"] = "bench"
line["gpu_peak_mib"] = int(peak) - int(idle) if idle else None
print(json.dumps(line))
EOF
)"
}
bench_case() {  # MODEL TEMPLATE BATCH PRECISION
    local args=(--model "$1" --template "$2" --batch-size "$3" --precision "$4" --steps "$steps")
    note "bench $*"
    measure "$bin/bench" --backend "$backend" "${args[@]}"
    if [ "$peers" = 1 ]; then
        for impl in reference peft; do
            measure "$python" scripts/peer_bench.py --impl "$impl" --device "$device" "${args[@]}"
        done
    fi
}
for precision in f32 bf16; do
    for batch in $batches; do
        bench_case random:bert-base "3,3,3" "$batch" "$precision"
        bench_case random:smollm2-135m "[P:3] [X] [P:3] [Y]" "$batch" "$precision"
    done
done
if [ "${SCALE:-1}" = 1 ]; then
    for shape in llama-3.2-1b llama-3.1-8b; do
        for batch in 8 32; do
            bench_case "random:$shape" "[P:3] [X] [P:3] [Y]" "$batch" bf16
        done
    done
fi

# 4. the summary: each check, and ptune's ratio to the faster peer per bench case.
$python - "$results" >"$out/summary.md" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| check | model | ok |\n|---|---|---|")
for r in rows:
    if r.get("check") in ("predict", "train+eval", "mix"):
        print(f"| {r['check']} | {r['model']} | {r['ok']} |")
print("\n| model | precision | batch | ptune train ex/s | ptune eval ex/s | train × faster peer "
      "| eval × faster peer | GPU MiB ptune | GPU MiB peers (ref, peft) |\n|---|---|---|---|---|---|---|---|---|")
bench = [r for r in rows if r.get("check") == "bench" and "error" not in r]
key = lambda r: (r["model"], r["precision"], r["batch_size"])
for r in (r for r in bench if not r["backend"].startswith("pytorch")):
    peers = [p for p in bench if p["backend"].startswith("pytorch") and key(p) == key(r)]
    best = lambda k: max((p[k] for p in peers), default=None)
    ratio = lambda k: f"{r[k] / best(k):.2f}" if best(k) else "-"
    mem = ", ".join(str(p.get("gpu_peak_mib")) for p in peers) or "-"
    print(f"| {r['model']} | {r['precision']} | {r['batch_size']} | {r['train_examples_per_s']:.1f} "
          f"| {r['eval_examples_per_s']:.1f} | {ratio('train_examples_per_s')} | {ratio('eval_examples_per_s')} "
          f"| {r.get('gpu_peak_mib')} | {mem} |")
EOF
cat "$out/summary.md"
