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


# --------------------------------------------------------------------------------------------
# Labels: what kind of problem a label column describes, and its label map
# --------------------------------------------------------------------------------------------

from numbers import Real  # noqa: E402  (numpy floats and ints register as Real)

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"


def _is_listlike(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return isinstance(value, str) and not value.strip()


def _rows(indices: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:limit])
    return f"row(s) {shown}" + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


def infer_problem_type(values: Sequence[Any], *, separator: str | None = None) -> str:
    """The problem a label column describes.

    Lists of labels, or a ``separator``, mean multi-label classification; numbers that are not all
    whole mean regression; anything else (strings, integers, booleans) is single-label classification.

    Example:
        >>> infer_problem_type(["pos", "neg"]), infer_problem_type([0.5, 1.0]), infer_problem_type([["a"], []])
        ('single_label_classification', 'regression', 'multi_label_classification')
    """
    present = [v for v in values if _is_listlike(v) or not _is_missing(v)]
    if separator is not None or any(_is_listlike(v) for v in present):
        return MULTI_LABEL
    numbers = [v for v in present if isinstance(v, Real) and not isinstance(v, bool)]
    if present and len(numbers) == len(present) and any(not float(v).is_integer() for v in numbers):
        return REGRESSION
    return SINGLE_LABEL


def _label_text(value: Any) -> str:
    # Whole-number floats (a CSV int column with a gap reads as float) name the class "1", not "1.0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_labels(
    values: Sequence[Any], *, problem_type: str, separator: str | None = None, source: str = "labels"
) -> list[Any]:
    """Validate a label column and normalise it: ``str`` per row, ``list[str]`` (multi-label) or ``float``.

    Args:
        values: one label per row (a list of labels per row, or a ``separator``-joined string, for multi-label).
        problem_type: ``single_label_classification``, ``multi_label_classification`` or ``regression``.
        separator: splits string labels into several (multi-label); ``","`` when multi-label and not given.
        source: names the data in error messages.

    Raises:
        ValueError: missing or empty labels, or regression targets that are not numbers (naming the rows).
    """
    values = list(values)
    missing = [i for i, v in enumerate(values) if not _is_listlike(v) and _is_missing(v)]
    if missing:
        raise ValueError(f"{source} has missing or empty labels in {_rows(missing)}; fill them in or drop those rows.")
    if problem_type == REGRESSION:
        out, bad = [], []
        for i, v in enumerate(values):
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                bad.append(i)
        if bad:
            raise ValueError(
                f"{source} has regression targets that are not numbers in {_rows(bad)} "
                f"(e.g. {values[bad[0]]!r}); regression needs numeric labels."
            )
        return out
    if problem_type == MULTI_LABEL:
        sep = "," if separator is None else separator
        out = []
        for v in values:
            parts = list(v) if _is_listlike(v) else str(v).split(sep)
            out.append(sorted({_label_text(p) for p in parts if not _is_missing(p)}))
        return out
    if problem_type == SINGLE_LABEL:
        bad = [i for i, v in enumerate(values) if _is_listlike(v)]
        if bad:
            raise ValueError(
                f"{source} has lists of labels in {_rows(bad)}; use problem_type='multi_label_classification' for those."
            )
        return [_label_text(v) for v in values]
    raise ValueError(f"problem_type={problem_type!r} is not supported; use one of {SINGLE_LABEL}, {MULTI_LABEL}, {REGRESSION}.")


def _label_sort_key(names: Sequence[str]) -> Any:
    # Integer class names ("0", "1", ..., "10") sort as numbers; anything else sorts as text.
    try:
        [int(n) for n in names]
        return lambda n: (int(n), n)
    except ValueError:
        return lambda n: n


def label_names(parsed: Sequence[Any], *, problem_type: str, labels: Sequence[str] | None = None, source: str = "labels") -> list[str]:
    """The label map of a classification column, in id order: sorted (stable under row order) or ``labels``.

    Args:
        parsed: labels from :func:`parse_labels`.
        problem_type: single- or multi-label classification.
        labels: the label names in id order, when the caller fixes them; every label in the data must be one.
        source: names the data in error messages.

    Raises:
        ValueError: fewer than two classes (single-label), or data labels missing from ``labels``.

    Example:
        >>> label_names(["b", "a", "10", "b"], problem_type="single_label_classification")
        ['10', 'a', 'b']
        >>> label_names(["2", "10", "1"], problem_type="single_label_classification")
        ['1', '2', '10']
    """
    seen = set()
    for item in parsed:
        seen.update(item if isinstance(item, list) else [item])
    if labels is not None:
        labels = [str(lab) for lab in labels]
        unknown = sorted(seen - set(labels))
        if unknown:
            raise ValueError(f"{source} has labels {unknown} that are not in labels={labels}; add them or drop those rows.")
        names = labels
    else:
        names = sorted(seen, key=_label_sort_key(sorted(seen)))
    if problem_type == SINGLE_LABEL and len(names) < 2:
        raise ValueError(
            f"{source} has a single class {names}; a classifier needs at least two (or pass labels=[...] naming all classes)."
        )
    if problem_type == MULTI_LABEL and not names:
        raise ValueError(f"{source} has no labels at all; multi-label classification needs at least one.")
    return names


def check_known_labels(parsed: Sequence[Any], known: Sequence[str], *, source: str = "eval data") -> None:
    """Raise a ValueError naming the labels in ``parsed`` that the model does not know."""
    seen = set()
    for item in parsed:
        seen.update(item if isinstance(item, list) else [item])
    unseen = sorted(seen - set(known))
    if unseen:
        raise ValueError(
            f"{source} has labels {unseen} that the training data / model does not have (known labels: {list(known)})."
        )


def encode_labels(parsed: Sequence[Any], label2id: dict[str, int], *, problem_type: str) -> list[Any]:
    """Class ids (single-label), 0/1 float vectors (multi-label) or floats (regression), one per row."""
    if problem_type == REGRESSION:
        return [float(v) for v in parsed]
    if problem_type == MULTI_LABEL:
        rows = []
        for item in parsed:
            row = [0.0] * len(label2id)
            for name in item:
                row[label2id[name]] = 1.0
            rows.append(row)
        return rows
    return [label2id[v] for v in parsed]


def text_column_values(frame: pd.DataFrame, column: str, *, source: str) -> list[str]:
    """The texts of ``column`` as strings; missing or empty texts are a ValueError naming the rows."""
    values = frame[column].tolist()
    missing = [i for i, v in enumerate(values) if _is_missing(v)]
    if missing:
        raise ValueError(f"{source} has missing or empty text in column {column!r}, {_rows(missing)}; fill them in or drop those rows.")
    return [v if isinstance(v, str) else str(v) for v in values]


__all__ += [
    "infer_problem_type",
    "parse_labels",
    "label_names",
    "check_known_labels",
    "encode_labels",
    "text_column_values",
    "SINGLE_LABEL",
    "MULTI_LABEL",
    "REGRESSION",
]
