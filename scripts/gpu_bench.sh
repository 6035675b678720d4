#!/usr/bin/env bash
# The GPU side-by-side: ptune-train's bench example on a GPU backend against the PyTorch peers of
# scripts/peer_bench.py on the same GPU, random-weight bert-base and SmolLM2-135M shapes, batch 8
# and 64, f32 and bf16 weights, 20 timed steps each. One JSON line per run into
# OUT/results.jsonl.
#
#   PTUNE_WGPU=path/to/bench PTUNE_TCH=path/to/bench scripts/gpu_bench.sh [OUT]
#
# PTUNE_WGPU: the bench example (`cargo build --release -p ptune-train --example bench`) built
# with --features wgpu (runs --backend wgpu); PTUNE_TCH: built with --features tch against
# torch 2.9.0 (runs --backend tch-cuda). Either may be left out. PYTHON
# (default python3) needs a CUDA torch, transformers and peft; for tch-cuda its torch must be the
# 2.9.0 that ptune was built against.
set -u
out=${1:-gpu-bench}
python=${PYTHON:-python3}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
peers=1
if ! $python -c "import torch, transformers, peft; assert torch.cuda.is_available()" 2>/dev/null; then
    echo "no peers: $python lacks a CUDA torch, transformers or peft" | tee -a "$out/gpu.txt"
    peers=0
fi
lib=$($python -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null)
for case in "random:bert-base|3,3,3" "random:smollm2-135m|[P:3] [X] [P:3] [Y]"; do
    model=${case%%|*}
    template=${case#*|}
    for run in "8 f32" "64 f32" "8 bf16" "64 bf16"; do
        read -r batch precision <<<"$run"
        args=(--model "$model" --template "$template" --batch-size "$batch" --precision "$precision" --steps 20)
        if [ -n "${PTUNE_WGPU:-}" ] && [ "$precision" = f32 ]; then  # WGSL has no bf16
            "$PTUNE_WGPU" --backend wgpu "${args[@]}" 2>>"$out/stderr.txt" | tee -a "$out/results.jsonl"
        fi
        if [ -n "${PTUNE_TCH:-}" ]; then
            LD_LIBRARY_PATH="$lib" "$PTUNE_TCH" --backend tch-cuda "${args[@]}" 2>>"$out/stderr.txt" | tee -a "$out/results.jsonl"
        fi
        if [ "$peers" = 1 ]; then
            for impl in reference peft; do
                $python scripts/peer_bench.py --impl "$impl" --device cuda "${args[@]}" 2>>"$out/stderr.txt" | tee -a "$out/results.jsonl"
            done
        fi
    done
done
