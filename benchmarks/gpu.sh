#!/usr/bin/env bash
# Every GPU benchmark in one go: classifier, label scoring (4 and 20 labels), zero-shot, rerank and
# the HTTP server, on CUDA in bf16 (t5cls's CUDA default) and in fp32 for comparison; t5-small shapes,
# random weights, AG News. Budget: under 8 minutes on one GPU. All tables go to one file.
#
#   benchmarks/gpu.sh [OUT]          # default OUT: gpu-benchmarks.md
#
# Without CUDA it says so, runs the same scripts on CPU at their smallest shapes (a dry run: checks
# that they work, not their speed) and exits 0, so CI can run it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu-benchmarks.md}"
PYTHON="${PYTHON:-python}"

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu.sh: no CUDA device here; dry run on CPU at the smallest shapes (no numbers to keep), exit 0." >&2
    : > "$OUT"
    echo "# dry run on CPU (no CUDA): these tables check the scripts, not the speed" >> "$OUT"
    "$PYTHON" benchmarks/bench_gpu.py --device cpu --dtype float32 --dry-run --out "$OUT"
    "$PYTHON" benchmarks/bench_server.py --size tiny --device cpu --dtype float32 --requests 8 --clients 2 --texts 8 --data agnews --out "$OUT"
    echo "gpu.sh: dry run written to $OUT" >&2
    exit 0
fi

: > "$OUT"
echo "# t5cls on $("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0))')" >> "$OUT"
for DTYPE in bfloat16 float32; do
    # About 90 s per dtype for bench_gpu.py and 60 s for the server on an H100-class GPU.
    timeout 200 "$PYTHON" benchmarks/bench_gpu.py --device cuda --dtype "$DTYPE" --texts 2048 --repeats 3 --out "$OUT"
    timeout 120 "$PYTHON" benchmarks/bench_server.py --device cuda --dtype "$DTYPE" --requests 640 --clients 32 --data agnews --out "$OUT"
done
echo "gpu.sh: tables written to $OUT" >&2
