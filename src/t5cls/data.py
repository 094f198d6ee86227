"""Inputs in, batches out: validating texts, reading tables, and token-budget batching.

Used by everything above the model (inference, scoring, zero-shot, training, CLI, server) and
imports none of it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union

import pandas as pd

TextInput = Union[str, tuple[str, str]]
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")


def as_text_list(texts: Any, *, allow_pairs: bool = True) -> tuple[list[TextInput], bool]:
    """Normalise user input to a list; also say whether a single input was given.

    Args:
        texts: a string, a ``(text, text_pair)`` tuple, or a list of those.
        allow_pairs: accept ``(text, text_pair)`` tuples (sentence pairs such as premise/hypothesis).

    Returns:
        ``(items, single)``: the list of inputs and whether the caller passed one input.

    Raises:
        TypeError: ``None`` or an item that is neither a string nor a pair of strings, naming its index.
    """
    if texts is None:
        raise TypeError("texts is None; pass a string or a list of strings.")
    single = isinstance(texts, str) or (allow_pairs and _is_pair(texts))
    items = [texts] if single else texts
    if not isinstance(items, (list, tuple)) and not hasattr(items, "__iter__"):
        raise TypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}.")
    items = list(items)
    for index, item in enumerate(items):
        if isinstance(item, str):
            continue
        if allow_pairs and _is_pair(item):
            continue
        expected = "a string or a (text, text_pair) tuple of strings" if allow_pairs else "a string"
        raise TypeError(f"texts[{index}] is {item!r} ({type(item).__name__}); each input must be {expected}.")
    return items, single


def _is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item)


def batches(lengths: Sequence[int], *, batch_tokens: int, max_batch_size: int | None = None) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size fits a token budget.

    Inputs are sorted by length (longest first, so a too-large budget fails on the first batch,
    not the last) and packed while ``len(batch) * longest_in_batch <= batch_tokens``. An input
    longer than the budget gets a batch of its own. Callers put results back in input order.

    Args:
        lengths: token count of each input.
        batch_tokens: most padded tokens per batch.
        max_batch_size: optional cap on inputs per batch.

    Returns:
        Lists of indices into ``lengths``.

    Example:
        >>> batches([5, 1, 4, 2], batch_tokens=8)
        [[0], [2, 3], [1]]
    """
    if batch_tokens < 1:
        raise ValueError(f"batch_tokens={batch_tokens} must be a positive number of tokens.")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    result: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(int(lengths[index]), 1)
        longest_if_added = max(longest, length)
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (full or (len(current) + 1) * longest_if_added > batch_tokens):
            result.append(current)
            current, longest_if_added = [], length
        current.append(index)
        longest = longest_if_added
    if current:
        result.append(current)
    return result


def padding_share(lengths: Sequence[int], groups: Iterable[Sequence[int]]) -> float:
    """Padding tokens as a share of all processed tokens when ``groups`` are padded to their longest."""
    processed = real = 0
    for group in groups:
        longest = max(lengths[i] for i in group)
        processed += longest * len(group)
        real += sum(lengths[i] for i in group)
    return 0.0 if processed == 0 else (processed - real) / processed


def read_table(path: str | Path, *, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a .csv, .tsv, .jsonl/.json, .parquet or .txt (one text a line, column ``text``) file.

    TSV files are read with quoting off (``"`` is ordinary text in AG News and SST-2).

    Args:
        path: the file.
        columns: columns that must exist.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an unknown suffix, an unreadable or empty file, or a missing column (the
            message lists the columns that exist).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Data file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        elif suffix == ".tsv":
            frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""])
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=suffix == ".jsonl")
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            frame = pd.DataFrame({"text": [line for line in lines if line.strip()]})
        else:
            raise ValueError(f"Cannot read {str(path)!r}: unknown suffix {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}.")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"Cannot read {str(path)!r}: {exc}") from exc
    if frame.empty:
        raise ValueError(f"Data file {str(path)!r} has no rows.")
    require_columns(frame, columns, source=str(path))
    return frame


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, source: str) -> None:
    """Raise a ValueError naming the missing columns and the ones that exist."""
    missing = [c for c in columns if c and c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source} has no column(s) {missing}; its columns are {list(map(str, frame.columns))}. "
            "Pick the right one with --text-column / --label-column."
        )


__all__ = ["as_text_list", "batches", "padding_share", "read_table", "require_columns", "TextInput"]
