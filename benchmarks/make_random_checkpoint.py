"""Write a randomly initialised T5 checkpoint of a published shape, with the real T5 tokenizer.

No model hub here, so benchmarks and README examples use these stand-ins:

    python benchmarks/make_random_checkpoint.py flan-t5-base /tmp/flan-t5-base-random
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

from param_counts import SHAPES

TOKENIZER = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers" / "t5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    T5ForConditionalGeneration(T5Config(vocab_size=32128, **SHAPES[args.shape])).save_pretrained(args.out)
    AutoTokenizer.from_pretrained(str(TOKENIZER)).save_pretrained(args.out)
    print(f"wrote a random {args.shape} checkpoint to {args.out}")


if __name__ == "__main__":
    main()
