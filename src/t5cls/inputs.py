"""Reading inputs: validating texts given in Python, reading tables, and streaming files row by row.

A data module: used by everything above the model (inference, scoring, zero-shot, training, CLI,
server) and imports none of it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return isinstance(value, str) and not value.strip()


def describe_rows(indices: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:limit])
    return f"row(s) {shown}" + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


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


def text_column_values(frame: pd.DataFrame, column: str, *, source: str) -> list[str]:
    """The texts of ``column`` as strings; missing or empty texts are a ValueError naming the rows."""
    values = frame[column].tolist()
    missing = [i for i, v in enumerate(values) if is_missing(v)]
    if missing:
        raise ValueError(f"{source} has missing or empty text in column {column!r}, {describe_rows(missing)}; fill them in or drop those rows.")
    return [v if isinstance(v, str) else str(v) for v in values]



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


QUERY_SUFFIXES = (".jsonl", ".csv", ".tsv")


def iter_query_documents(
    source: str | Path,
    *,
    query_column: str = "query",
    documents_column: str = "documents",
    document_column: str = "document",
) -> Iterator[tuple[str, list[str]]]:
    """Stream ``(query, documents)`` groups from a file, in file order: what ``t5cls rerank`` reads.

    - ``.jsonl`` with a list column: one query per line, ``{"query": str, "documents": [str, ...]}``;
    - ``.csv`` / ``.tsv`` (or ``.jsonl`` without the list column): one (query, document) pair per
      row, consecutive rows with the same query forming one group.

    The file and its columns are checked before the first group is read (errors come before any
    output); rows are read one at a time through :func:`iter_texts`'s rules (TSV without quoting).

    Raises:
        FileNotFoundError: no such file.
        ValueError: another suffix, a missing column (naming those there are), an empty
            documents list (naming the line).
        TypeError: (while iterating) a query or document that is not a string, naming its line.

    Example:
        >>> groups = iter_query_documents("queries.jsonl")  # doctest: +SKIP
        >>> next(groups)  # doctest: +SKIP
        ('what is t5', ['T5 is a text-to-text transformer.', 'Bananas are yellow.'])
    """
    path = Path(source)
    suffix = path.suffix.lower()
    if path.is_file() and suffix not in QUERY_SUFFIXES:
        raise ValueError(
            f"Cannot read queries from {str(path)!r}: use .jsonl ({{{query_column!r}: ..., {documents_column!r}: [...]}} per line) "
            f"or a .csv/.tsv with the columns {query_column!r} and {document_column!r}."
        )
    if suffix == ".jsonl" and path.is_file():
        with path.open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
        fields = list(_json_record(first, 1, str(path))) if first else []
        if documents_column in fields:
            _require_fields(fields, [query_column], source=str(path))
            return _query_lists(path, query_column, documents_column)
        if document_column not in fields:
            raise ValueError(
                f"{path} has neither a {documents_column!r} list nor a {document_column!r} column (its fields are {fields}); "
                f"write {{{query_column!r}: ..., {documents_column!r}: [...]}} per line."
            )
    pairs = iter_texts(path, text_column=query_column, pair_column=document_column)
    return ((query, [document for _, document in group]) for query, group in itertools.groupby(pairs, key=lambda pair: pair[0]))


def _query_lists(path: Path, query_column: str, documents_column: str) -> Iterator[tuple[str, list[str]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _json_record(line, number, str(path))
            query, documents = record.get(query_column), record.get(documents_column)
            if not isinstance(query, str):
                raise TypeError(f"{path} line {number}: {query_column!r} is {query!r}, not a string.")
            if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
                raise TypeError(f"{path} line {number}: {documents_column!r} must be a list of strings, got {documents!r:.80}.")
            if not documents:
                raise ValueError(f"{path} line {number}: {documents_column!r} is empty; give each query at least one document.")
            yield query, documents


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


__all__ = [
    "TextInput",
    "TABLE_SUFFIXES",
    "STREAM_SUFFIXES",
    "RECORD_SUFFIXES",
    "as_text_list",
    "describe_rows",
    "is_missing",
    "iter_texts",
    "iter_query_documents",
    "QUERY_SUFFIXES",
    "read_table",
    "record_writer",
    "require_columns",
    "text_column_values",
]
