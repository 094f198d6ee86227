"""Which attention kernel is faster at T5's shapes on this CPU: SDPA, or two matmuls around a softmax.

``t5cls.attention.attend`` takes the plain computation on a CPU in fp32 for keys up to
``CPU_PLAIN_MAX_KEYS`` and SDPA elsewhere; this script measures the two at the shapes the packed
encoder and LabelScorer's label tree run (8 heads of 64, the t5-small head layout; from a torch
profile of LabelScorer over 200 AG News texts with 20 labels: encoder batches of 4-51 texts of
36-144 tokens, 36 tree nodes), and at longer sequences where the crossover lies. Both kernels run
in this process, alternating, on the same inputs; each cell is the median of ``--repeats`` calls,
after the outputs were checked equal (fp32 rounding, 1e-5).

    flock /tmp/t5cls-bench.lock python benchmarks/attention_kernels.py
    python benchmarks/attention_kernels.py --repeats 3 --threads 1      # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from t5cls.attention import CPU_PLAIN_MAX_KEYS, plain_attention
from t5cls.bench import machine_line

HEADS, HEAD_DIM = 8, 64
# (what, batch, queries, keys): T5 encoder self-attention, label-tree self- and cross-attention, long inputs.
SHAPES = [
    ("encoder, 51 texts of 44 tokens", 51, 44, 44),
    ("encoder, 4 texts of 144 tokens", 4, 144, 144),
    ("tree self-attention, 42 texts x 36 nodes", 42, 36, 36),
    ("tree cross-attention, 51 texts, 36 nodes x 44 tokens", 51, 36, 44),
    ("encoder, 16 texts of 128 tokens", 16, 128, 128),
    ("encoder, 8 texts of 192 tokens", 8, 192, 192),
    ("encoder, 8 texts of 256 tokens", 8, 256, 256),
    ("encoder, 4 texts of 512 tokens", 4, 512, 512),
]


def _plain(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return plain_attention(query, key, value, mask, scale=1.0)


def _sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(machine_line(args.threads))
    print(f"fp32, {HEADS} heads x {HEAD_DIM}; median ms of {args.repeats} calls each, alternating;", end=" ")
    print(f"attend() takes the plain kernel up to {CPU_PLAIN_MAX_KEYS} keys\n")
    print("| shape | batch x queries x keys | SDPA ms | matmul-softmax-matmul ms | SDPA / plain | attend() takes |")
    print("|---|---|---:|---:|---:|---|")
    for what, batch, queries, keys in SHAPES:
        query = torch.randn(batch, HEADS, queries, HEAD_DIM)
        key, value = torch.randn(2, batch, HEADS, keys, HEAD_DIM)
        mask = torch.randn(batch, HEADS, queries, keys)
        torch.testing.assert_close(_plain(query, key, value, mask), _sdpa(query, key, value, mask), rtol=0, atol=1e-5)
        times: dict[str, list[float]] = {"sdpa": [], "plain": []}
        for _ in range(args.repeats):
            for name, kernel in (("sdpa", _sdpa), ("plain", _plain)):
                start = time.perf_counter()
                kernel(query, key, value, mask)
                times[name].append(time.perf_counter() - start)
        sdpa, plain = (statistics.median(times[name]) * 1e3 for name in ("sdpa", "plain"))
        taken = "plain" if keys <= CPU_PLAIN_MAX_KEYS else "SDPA"
        print(f"| {what} | {batch} x {queries} x {keys} | {sdpa:.2f} | {plain:.2f} | {sdpa / plain:.2f}x | {taken} |")


if __name__ == "__main__":
    main()
