"""The ``t5cls`` command. Thin: parses arguments, calls the library, prints results.

Each subcommand is a pair of functions, ``_add_NAME(subparsers)`` and ``_run_NAME(args)``,
listed in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence


def _split_labels(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",")]


# --- convert -------------------------------------------------------------------------------


def _add_convert(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="Turn a T5-family checkpoint into a T5ForClassification directory.",
        description="Keep the encoder and the first K decoder layers of SRC, add learned queries and a "
        "classifier head, and save the result (safetensors + tokenizer) to OUT.",
    )
    p.add_argument("src", help="checkpoint directory or hub id (t5, t5-v1_1, flan-t5, mT5, byT5, UL2)")
    p.add_argument("out", help="output directory (must not exist or be empty, unless --overwrite)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--labels", help="comma-separated label names, e.g. 'negative,positive'")
    group.add_argument("--num-labels", type=int, help="number of labels when they have no names")
    p.add_argument(
        "--problem-type",
        default="single_label_classification",
        choices=["single_label_classification", "multi_label_classification", "regression"],
    )
    p.add_argument("--decoder-layers", type=int, default=1, help="decoder layers to keep (0 = mean pooling)")
    p.add_argument("--query-init", default="decoder_start", choices=["decoder_start", "labels"])
    p.add_argument("--dtype", default=None, help="e.g. float32 or bfloat16 (defaults to the checkpoint's)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import from_t5, load_source_tokenizer, save_classifier

    tokenizer = load_source_tokenizer(args.src)
    model = from_t5(
        args.src,
        labels=_split_labels(args.labels),
        num_labels=args.num_labels,
        problem_type=args.problem_type,
        num_decoder_layers=args.decoder_layers,
        query_init=args.query_init,
        tokenizer=tokenizer,
        dtype=args.dtype,
    )
    save_classifier(model, args.out, tokenizer=tokenizer, overwrite=args.overwrite)
    stats = model.conversion_stats
    print(f"kept {stats['kept']:,} pretrained parameters, dropped {stats['dropped']:,}, added {stats['new']:,} new")
    print(f"labels: {[model.config.id2label[i] for i in range(model.config.num_labels)]} ({model.config.problem_type})")
    print(f"saved to {args.out}")
    return 0


# --- registry ------------------------------------------------------------------------------

Command = tuple[str, Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]
COMMANDS: list[Command] = [
    ("convert", _add_convert, _run_convert),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t5cls", description="Text classification with T5-family models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for _, add, _ in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``t5cls`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run = {name: run for name, _, run in COMMANDS}[args.command]
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as exc:
        # User errors: one clear line, no traceback.
        print(f"t5cls {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
