#!/usr/bin/env bash
# The GPU side-by-side: `ptune bench` on libtorch CUDA (`--backend tch-cuda`) against the PyTorch
# peers of scripts/peer_bench.py on the same GPU, random-weight bert-base and SmolLM2-135M
# shapes, batch 8 and 64, 20 timed steps each. One JSON line per run into OUT/results.jsonl.
#
#   PTUNE_BIN=target/debug/ptune scripts/gpu_bench.sh [OUT]   # ptune built with --features tch
#
# PYTHON (default python3) needs torch 2.9.0 with CUDA (the libtorch ptune was built against),
# transformers and peft.
set -u
out=${1:-gpu-bench}
python=${PYTHON:-python3}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
if ! $python -c "import torch, transformers, peft; assert torch.cuda.is_available()"; then
    echo "no CUDA-enabled torch with transformers and peft in $python" | tee -a "$out/gpu.txt"
    exit 1
fi
$python -c "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)" | tee -a "$out/gpu.txt"
lib=$($python -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
for case in "random:bert-base|3,3,3" "random:smollm2-135m|[P:3] [X] [P:3] [Y]"; do
    model=${case%%|*}
    template=${case#*|}
    for batch in 8 64; do
        args=(--model "$model" --template "$template" --batch-size "$batch" --steps 20)
        LD_LIBRARY_PATH="$lib" "$PTUNE_BIN" bench --backend tch-cuda "${args[@]}" | tee -a "$out/results.jsonl"
        for impl in reference peft; do
            $python scripts/peer_bench.py --impl "$impl" --device cuda "${args[@]}" 2>>"$out/stderr.txt" | tee -a "$out/results.jsonl"
        done
    done
done
