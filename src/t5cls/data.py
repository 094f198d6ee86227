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


def check_labels(labels: Any, *, name: str = "labels", example: str = "['positive', 'negative']") -> list[str]:
    """Validate a list of label names: strings, non-empty, each given once.

    Args:
        labels: the label names.
        name: what the caller calls them, for the messages ("labels", "candidate labels").
        example: a valid value to show in the messages.

    Returns:
        The labels as a list.

    Raises:
        TypeError: not a list, or an item that is not a string.
        ValueError: no labels, a blank label, or a label given twice.
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{name} must be a list of strings, e.g. {example}, got {labels!r}.")
    labels = list(labels)
    if not labels:
        raise ValueError(f"No {name}: the list is empty; pass at least one, e.g. {example}.")
    not_strings = [label for label in labels if not isinstance(label, str)]
    if not_strings:
        raise TypeError(f"{name} must be strings; got {not_strings!r}.")
    if any(not label.strip() for label in labels):
        raise ValueError(f"{name} must be non-empty strings; got {labels!r}.")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"{name} must be unique; {duplicates} appear more than once (duplicates) in {labels!r}.")
    return labels


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


__all__ = ["as_text_list", "batches", "check_labels", "padding_share", "read_table", "require_columns", "TextInput"]


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


# --------------------------------------------------------------------------------------------
# Streaming inputs and outputs (`t5cls predict`): one row at a time, so memory stays flat
# --------------------------------------------------------------------------------------------

import io  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

STREAM_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")
RECORD_SUFFIXES = (".jsonl", ".csv")


def iter_texts(source: str | Path, *, text_column: str = "text", pair_column: str | None = None) -> Iterator[TextInput]:
    """Stream the inputs of a file, one at a time: .txt (one text a line), .csv, .tsv, .jsonl, or ``-`` (stdin).

    The file is checked before the first item is read (it exists, its suffix is known, its columns
    are there), so errors come before any output. Every line of a .txt file or stdin is one input,
    empty lines included, so output rows line up with input lines. TSV is read with quoting off.

    Args:
        source: a path, or ``"-"`` for standard input (one text a line).
        text_column: the text column of .csv/.tsv/.jsonl input.
        pair_column: optional second-text column: items are then ``(text, text_pair)`` tuples.

    Returns:
        An iterator of texts (or pairs).

    Raises:
        FileNotFoundError: no such file (the message lists readable files next to it).
        ValueError: an unknown suffix, or a missing column (the message lists the columns there are).
        TypeError: (while iterating) a .jsonl value that is not a string, naming its line.

    Example:
        >>> texts = iter_texts("reviews.csv", text_column="review")  # doctest: +SKIP
        >>> next(texts)  # doctest: +SKIP
        'A gripping film.'
    """
    if str(source) == "-":
        return (line.rstrip("\r\n") for line in sys.stdin)
    path = Path(source)
    if not path.is_file():
        nearby = sorted(p.name for p in path.parent.glob("*") if p.suffix.lower() in STREAM_SUFFIXES) if path.parent.is_dir() else []
        where = f"; readable files in {str(path.parent)!r}: {nearby[:10]}" if nearby else ""
        raise FileNotFoundError(f"Input file {str(path)!r} does not exist{where}.")
    suffix = path.suffix.lower()
    if suffix not in STREAM_SUFFIXES:
        raise ValueError(f"Cannot read {str(path)!r}: unknown suffix {suffix!r}; use one of {', '.join(STREAM_SUFFIXES)} or '-' for stdin.")
    columns = [c for c in (text_column, pair_column) if c]
    handle = path.open(encoding="utf-8", newline="" if suffix in (".csv", ".tsv") else None)
    try:
        if suffix == ".txt":
            rows: Iterator[Any] = (line.rstrip("\r\n") for line in handle)
            return _closing(handle, rows)
        if suffix in (".csv", ".tsv"):
            reader = (
                csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
                if suffix == ".tsv"
                else csv.DictReader(handle)
            )
            _require_fields(reader.fieldnames or [], columns, source=str(path))
            return _closing(handle, _pick(reader, text_column, pair_column, str(path), first_row=2))
        first = handle.readline()
        record = _json_record(first, 1, str(path)) if first.strip() else {}
        _require_fields(list(record), columns, source=str(path))
        records = (_json_record(line, number, str(path)) for number, line in enumerate(handle, start=2) if line.strip())
        return _closing(handle, _pick(_chain_one(record, records), text_column, pair_column, str(path), first_row=1))
    except BaseException:
        handle.close()
        raise


def _chain_one(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _closing(handle: io.IOBase, items: Iterator[Any]) -> Iterator[Any]:
    with handle:
        yield from items


def _json_record(line: str, number: int, source: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} line {number} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{source} line {number} is a {type(record).__name__}, not a JSON object with a text field.")
    return record


def _require_fields(fields: Sequence[str], columns: Sequence[str], *, source: str) -> None:
    missing = [c for c in columns if c not in fields]
    if missing:
        raise ValueError(
            f"{source} has no column(s) {missing}; its columns are {list(fields)}. Pick the right one with --text-column."
        )


def _pick(rows: Iterable[dict[str, Any]], text_column: str, pair_column: str | None, source: str, *, first_row: int) -> Iterator[TextInput]:
    for number, row in enumerate(rows, start=first_row):
        values = [row.get(text_column)] + ([row.get(pair_column)] if pair_column else [])
        for column, value in zip((text_column, pair_column), values):
            if not isinstance(value, str):
                raise TypeError(f"{source} line {number}: {column!r} is {value!r} ({type(value).__name__}), not a string.")
        yield values[0] if len(values) == 1 else (values[0], values[1])


@contextmanager
def record_writer(path: str | Path | None):
    """Write dict records to a .jsonl or .csv file (or JSON lines on stdout when ``path`` is None or ``-``).

    Yields a ``write(records)`` function taking an iterable of dicts. A file is written under a
    temporary name and moved into place at the end, so a failure leaves no half-written output.
    CSV columns come from the first record; list values are joined with ``;``.

    Raises:
        ValueError: an output suffix other than .jsonl / .csv.
    """
    if path is None or str(path) == "-":
        yield lambda records: _write_records(records, sys.stdout, "jsonl")
        sys.stdout.flush()
        return
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if f".{kind}" not in RECORD_SUFFIXES:
        raise ValueError(f"Cannot write {str(path)!r}: use an output file ending in {' or '.join(RECORD_SUFFIXES)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    state: dict[str, Any] = {}
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield lambda records: _write_records(records, handle, kind, state)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _write_records(records: Iterable[dict[str, Any]], handle: Any, kind: str, state: dict[str, Any] | None = None) -> None:
    if kind == "jsonl":
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    state = state if state is not None else {}
    for record in records:
        if "writer" not in state:
            state["writer"] = csv.DictWriter(handle, fieldnames=list(record))
            state["writer"].writeheader()
        state["writer"].writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in record.items()})


__all__ += ["iter_texts", "record_writer", "STREAM_SUFFIXES", "RECORD_SUFFIXES"]


# --------------------------------------------------------------------------------------------
# Batching with the least padding
# --------------------------------------------------------------------------------------------


def min_padding_batches(
    lengths: Sequence[int],
    *,
    batch_tokens: int,
    max_batch_size: int | None = None,
    batch_cost: int = 64,
    padding_cost: float = 1.0,
) -> list[list[int]]:
    """Length-sorted batches under a padded-token budget, cut where they waste the fewest tokens.

    :func:`batches` fills each batch up to the budget, so a batch can span a wide range of
    lengths (on 512 AG News texts with a 4096-token budget, 11% of the processed tokens are
    padding). Here the cut points over the sorted inputs are chosen by dynamic programming to
    minimise ``padding_cost * padding tokens + batch_cost * number of batches``: the padding is
    what a longer batch wastes, ``batch_cost`` what another forward call costs (launch overhead,
    smaller matmuls), in tokens. A model that skips padding in its linear layers (the packed
    encoder, :mod:`t5cls.packed`) pays for padding only in attention: a ``padding_cost`` well
    under 1 then keeps batches large. Same contract as :func:`batches`: longest first, every
    batch within ``batch_tokens`` (an input longer than that gets a batch of its own).

    Args:
        lengths: token count of each input.
        batch_tokens: most padded tokens per batch.
        max_batch_size: optional cap on inputs per batch.
        batch_cost: the price of one more batch, in tokens.
        padding_cost: the price of a padding token, relative to a real one.

    Returns:
        Lists of indices into ``lengths``.

    Example:
        >>> min_padding_batches([5, 1, 4, 2], batch_tokens=8, batch_cost=0)
        [[0], [2], [3, 1]]
    """
    import numpy as np

    if batch_tokens < 1:
        raise ValueError(f"batch_tokens={batch_tokens} must be a positive number of tokens.")
    if batch_cost < 0:
        raise ValueError(f"batch_cost={batch_cost} must be >= 0 tokens.")
    if padding_cost < 0:
        raise ValueError(f"padding_cost={padding_cost} must be >= 0 (a share of a real token's cost).")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    size = np.array([max(int(lengths[i]), 1) for i in order], dtype=np.int64)  # longest first
    n = len(size)
    real = np.concatenate([[0], np.cumsum(size)])  # real[i]: real tokens of the first i inputs
    cap = max_batch_size or n
    best = np.zeros(n + 1, dtype=np.float64)  # best[i]: cheapest plan for the first i inputs
    start = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that plan starts
    low = 0
    for i in range(1, n + 1):
        # A batch order[j:i] is padded to size[j]; it fits when (i - j) * size[j] <= batch_tokens.
        # That product only grows as j moves left, and for larger i, so `low` only moves right.
        while low < i - 1 and ((i - low) * size[low] > batch_tokens or i - low > cap):
            low += 1
        j = np.arange(low, i)
        padding = (i - j) * size[low:i] - (real[i] - real[low:i])  # padding tokens of batch order[j:i]
        cost = best[low:i] + padding_cost * padding + batch_cost
        pick = int(np.argmin(cost))
        best[i], start[i] = cost[pick], low + pick
    groups: list[list[int]] = []
    i = n
    while i > 0:
        groups.append(order[start[i] : i])
        i = int(start[i])
    return groups[::-1]


__all__ += ["min_padding_batches"]
