"""Fine-tune a T5 classifier with LoRA adapters (peft), then use it.

LoRA trains small low-rank updates of the attention projections (here q and v, rank 16, as the
published flan-t5-xxl-classif-3way adapter did) plus the new classifier head and query vectors;
the T5 weights stay frozen, so optimizer memory is a fraction of full fine-tuning. t5cls saves the
adapter (``OUTPUT/adapter``, for peft users) and the merged model, which loads like any other.

    python examples/lora.py --model google/flan-t5-base --train train.csv --eval dev.csv --output lora-clf

The data files need ``text`` and ``label`` columns (see ``t5cls train --help`` for others).
"""

from __future__ import annotations

import argparse

import t5cls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="google/flan-t5-base", help="T5-family checkpoint (directory or hub id)")
    parser.add_argument("--train", required=True)
    parser.add_argument("--eval", default=None)
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()

    result = t5cls.train(
        args.model,
        args.train,
        eval=args.eval,
        output_dir=args.output,
        epochs=args.epochs,
        optimizer="adamw",
        learning_rate=5e-4,  # LoRA updates start at zero and want a larger step than full fine-tuning
        lora={"r": args.rank, "lora_alpha": 2 * args.rank, "lora_dropout": 0.05, "target_modules": ["q", "v"]},
    )
    print(f"trained {result.global_step} steps; eval: {result.metrics}")

    classifier = t5cls.Classifier(args.output)  # the merged model: no peft needed to use it
    print(classifier.predict(["an example sentence to classify"]))

    # The adapter alone, for peft: PeftModel.from_pretrained(base_classifier, f"{args.output}/adapter")
    print(f"adapter: {args.output}/adapter")


if __name__ == "__main__":
    main()
