"""The inference benchmark of the README (issue 3): `t5cls bench` for one or more presets.

Same random weights and shapes per preset, real AG News texts (../shared/data/agnews/train.tsv)
tokenised with the real T5 vocabulary; rows: transformers T5ForSequenceClassification (batch 32,
input order), transformers T5EncoderModel + mean pooling (batch 32), t5cls fp32, t5cls int8,
t5cls on ONNX Runtime. See ``t5cls.bench`` for what each column means.

Usage:
    flock /tmp/t5cls-bench.lock python benchmarks/bench_classifier.py [--preset t5-small,t5-base] [--n N] [--repeat 2]
"""

from __future__ import annotations

import argparse
import logging

from t5cls.bench import format_report, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="t5-small,t5-base", help="comma-separated presets (default: t5-small,t5-base)")
    parser.add_argument("--n", type=int, help="texts per preset (default: 512 for t5-small, 192 for t5-base)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per row, best counts (default: 2)")
    parser.add_argument("--data", help="a text file other than AG News")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for preset in args.preset.split(","):
        report = run_benchmark(preset=preset.strip(), n=args.n, repeat=args.repeat, data=args.data, threads=args.threads)
        print(format_report(report), flush=True)
        print()


if __name__ == "__main__":
    main()
