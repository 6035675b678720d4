"""Whether MKL's pre-packed weights would speed up ptune's frozen linear layers on libtorch's CPU.

ptune's tch training spends 17% of its samples in MKL's packing (perf, SmolLM2, 20 steps), and the
backbone's weights never change, so packing them once looks like a lever. This times torch's own
packed path (`torch.ops.mkl._mkl_reorder_linear_weight` + `_mkl_linear`) against plain
`F.linear` on one thread with 96 rows, as one of ptune's row groups multiplies them (8 x 24 rows
in two groups), on bert-base's three linear shapes, and prints each side's median of 30 calls,
three times, with the packed weight's size against the weight's.

    python scripts/mkl_prepack.py            # needs torch
"""

import time

import torch


def median_seconds(fn, n=30):
    for _ in range(3):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = 96
    for k, n in [(768, 768), (768, 3072), (3072, 768)]:
        x, w, b = torch.randn(rows, k), torch.randn(n, k), torch.randn(n)
        packed = torch.ops.mkl._mkl_reorder_linear_weight(w, rows)

        def plain():
            return torch.nn.functional.linear(x, w, b)

        def prepacked():
            return torch.ops.mkl._mkl_linear(x, packed, w, b, rows)

        assert torch.allclose(plain(), prepacked(), atol=1e-3)
        repeats = []
        for _ in range(3):
            a, p = median_seconds(plain), median_seconds(prepacked)
            repeats.append(f"{a * 1e3:.3f} / {p * 1e3:.3f} ms = {a / p:.2f}x")
        sizes = f"packed {packed.numel() * 4 / 1e6:.1f} MB vs {w.numel() * 4 / 1e6:.1f} MB"
        print(f"[{rows}, {k}] x [{k}, {n}]: plain / packed: " + "; ".join(repeats) + f"; {sizes}")


if __name__ == "__main__":
    main()
