"""Which kernel computes LabelScorer's edge log-probabilities faster on this CPU: log_softmax or logsumexp.

Every label-tree edge's log-probability is its token's logit minus the log-sum-exp of its node's
32,128 logits. ``LabelScorer`` takes ``torch.log_softmax(logits)[:, nodes, tokens]``, one fused
kernel; the formula written out, ``logits[:, nodes, tokens] - logits.logsumexp(-1)[:, nodes]``, runs
``logsumexp`` as separate max, subtract, exp and sum passes. This script times both on one chunk
of the shape ``bench_peers.py`` gives LabelScorer at 20 labels (29 texts x 36 tree nodes x the
t5-small vocabulary; ``LOGIT_BUDGET`` sets the 29), alternating in this process on the same
logits, each the median of ``--repeats`` calls, after checking the two equal (fp32 rounding, 1e-5),
with glibc's malloc tuned as LabelScorer tunes it on a CPU (:func:`t5cls.allocator.tune_malloc`).
The last line scales the difference to the 200 texts of a ``bench_peers.py`` pass.

    flock /tmp/t5cls-bench.lock python benchmarks/log_prob_kernels.py
    python benchmarks/log_prob_kernels.py --repeats 1 --threads 1 --texts 2      # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from t5cls.allocator import tune_malloc
from t5cls.bench import machine_line
from t5cls.scoring import LOGIT_BUDGET

NODES, VOCAB, EDGES = 36, 32128, 55  # LabelScorer's trie for bench_peers.py's 20 labels, t5-small's vocabulary
BENCH_TEXTS = 200  # texts in a bench_peers.py pass


def _log_softmax(logits: torch.Tensor, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, dim=-1)[:, nodes, tokens]


def _minus_logsumexp(logits: torch.Tensor, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return logits[:, nodes, tokens] - logits.logsumexp(dim=-1)[:, nodes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=LOGIT_BUDGET // (NODES * VOCAB), help="texts in the chunk (default: LabelScorer's chunk at 36 nodes)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tune_malloc()  # as LabelScorer on a CPU: each call's 134 MB of temporaries reuse freed heap, not fresh pages
    torch.manual_seed(0)
    logits = torch.randn(args.texts, NODES, VOCAB) * 3  # about the spread of t5-small's logits
    nodes, tokens = torch.randint(0, NODES, (EDGES,)), torch.randint(0, VOCAB, (EDGES,))
    torch.testing.assert_close(_log_softmax(logits, nodes, tokens), _minus_logsumexp(logits, nodes, tokens), rtol=0, atol=1e-5)
    times: dict[str, list[float]] = {"log_softmax": [], "logsumexp": []}
    for _ in range(args.repeats):
        for name, kernel in (("log_softmax", _log_softmax), ("logsumexp", _minus_logsumexp)):
            start = time.perf_counter()
            kernel(logits, nodes, tokens)
            times[name].append(time.perf_counter() - start)
    fused, written_out = (statistics.median(times[name]) * 1e3 for name in ("log_softmax", "logsumexp"))
    print(machine_line(args.threads))
    print(f"fp32 logits {args.texts} texts x {NODES} nodes x {VOCAB}, {EDGES} edges; median ms of {args.repeats} calls each, alternating\n")
    print("| kernel | ms per chunk |")
    print("|---|---:|")
    print(f"| log_softmax, gathered (LabelScorer) | {fused:.2f} |")
    print(f"| logits - logsumexp(logits) | {written_out:.2f} |")
    saved = (written_out - fused) * BENCH_TEXTS / args.texts
    print(f"\nlogsumexp / log_softmax: {written_out / fused:.2f}x; per {BENCH_TEXTS} texts log_softmax saves {saved:.0f} ms")


if __name__ == "__main__":
    main()
