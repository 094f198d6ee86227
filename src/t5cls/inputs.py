"""Reading inputs: validating texts given in Python, reading tables, and streaming files row by row.

A data module: used by everything above the model (inference, scoring, zero-shot, training, CLI,
server) and imports none of it.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from .errors import InputError, InputTypeError, check_int

TextInput = Union[str, tuple[str, str]]


def as_text_list(texts: Any, *, allow_pairs: bool = True) -> tuple[list[TextInput], bool]:
    """Normalise user input to a list; also say whether a single input was given.

    Args:
        texts: a string, a ``(text, text_pair)`` tuple, or a list (any ordered iterable) of those.
        allow_pairs: accept ``(text, text_pair)`` tuples (sentence pairs such as premise/hypothesis).

    Returns:
        ``(items, single)``: the list of inputs and whether the caller passed one input.

    Raises:
        InputTypeError: ``None``, a dict, set, DataFrame or bytes (whose iteration is not a list of
            texts), or an item that is neither a string nor a pair of strings, naming its index.
    """
    if texts is None:
        raise InputTypeError("texts is None; pass a string or a list of strings.")
    single = isinstance(texts, str) or (allow_pairs and _is_pair(texts))
    if not single:
        _refuse_container(texts)
    items = [texts] if single else texts
    if not hasattr(items, "__iter__"):
        raise InputTypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}.")
    items = list(items)
    for index, item in enumerate(items):
        if isinstance(item, str):
            continue
        if allow_pairs and _is_pair(item):
            continue
        expected = "a string or a (text, text_pair) tuple of strings" if allow_pairs else "a string"
        raise InputTypeError(f"texts[{index}] is {item!r} ({type(item).__name__}); each input must be {expected}.")
    return items, single


def _refuse_container(texts: Any) -> None:
    # These iterate, but not over the texts a user means: a dict gives its keys, a DataFrame its
    # column names, bytes its integers, a set an arbitrary order that results could not follow.
    kind = type(texts).__name__
    if isinstance(texts, Mapping):
        raise InputTypeError(
            f"texts is a {kind}; a dict is not a list of texts (it would be read as its keys). "
            "Pass a list, e.g. list(d.values())."
        )
    if isinstance(texts, pd.DataFrame):
        raise InputTypeError("texts is a DataFrame (it would be read as its column names); pass one column, e.g. frame['text'].tolist().")
    if isinstance(texts, (bytes, bytearray)):
        raise InputTypeError(f"texts is {kind}; decode it to a string first, e.g. data.decode('utf-8').")
    if isinstance(texts, (set, frozenset)):
        raise InputTypeError(f"texts is a {kind}, which has no order to give results in; pass a list, e.g. sorted(texts).")


def _is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item)


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return isinstance(value, str) and not value.strip()


def describe_rows(indices: Sequence[int], limit: int = 5, *, unit: str = "row") -> str:
    """``row(s) 1, 3`` (1-based) for 0-based ``indices``; ``unit="line"`` for line-based files."""
    shown = ", ".join(str(i + 1) for i in indices[:limit])
    return f"{unit}(s) {shown}" + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


# --- the one input reader -------------------------------------------------------------------
#
# Every command that reads inputs from a file (predict, score, zero-shot, evaluate, train) reads
# it through read_chunks, so one file gives the same rows everywhere. The rule for blank input:
# every line of a .txt / .jsonl file (and of stdin) and every row of a table is one input, and an
# input whose text is blank (empty or only whitespace) is an error naming its line or row. Output
# row i is always input row i (so results can be pasted beside the input), and a blank text has
# nothing to classify: the server and evaluate refuse it too. Skipping such lines silently would
# shift every later result against its input; keeping them would classify nothing.

LINE_SUFFIXES = (".txt", ".jsonl")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")
STREAM_SUFFIXES = TABLE_SUFFIXES  # every format streams (a .json array is read whole)
RECORD_SUFFIXES = (".jsonl", ".csv")
# Rows per chunk: enough to sort and batch well, little enough to keep memory flat.
CHUNK_ROWS = 2048
STDIN = "-"


def read_chunks(
    source: str | Path,
    *,
    columns: Sequence[str] = (),
    text_columns: Sequence[str | None] = (),
    chunk_rows: int = CHUNK_ROWS,
    hint: str = "Pick the right one with --text-column / --label-column.",
) -> Iterator[pd.DataFrame]:
    """Read a file as DataFrame chunks of at most ``chunk_rows`` rows, with the checks every reader shares.

    Formats: .txt (one text a line, column ``text``), .csv, .tsv (quoting off: ``"`` is ordinary
    text in AG News and SST-2), .jsonl (one JSON object a line), .json (an array of objects),
    .parquet, or ``"-"`` for standard input (one text a line). A UTF-8 byte-order mark is skipped.
    The index of each chunk counts rows from 0 across the whole file. The file is opened and its
    first chunk read before this returns, so a missing file, a missing column or an empty file
    fails before any output is written.

    Args:
        source: a path, or ``"-"`` for standard input.
        columns: columns that must exist.
        text_columns: columns holding input texts (``None`` entries are ignored): they must exist,
            and a blank or missing text is an :class:`InputError` naming its line (.txt, .jsonl,
            stdin) or row (tables, 1 = the first row under the header). Numbers are read as text.
            The ``text`` column of a .txt file and stdin is always a text column.
        chunk_rows: rows per chunk.
        hint: the last sentence of a missing-column error (how to name the right column).

    Returns:
        An iterator of DataFrames.

    Raises:
        FileNotFoundError: no such file (the message lists readable files next to it).
        InputError: an unknown suffix, a file that is not UTF-8 or not valid CSV / JSON / Parquet
            (naming the line), an empty file, a missing column (listing the columns there are),
            or a blank text (naming its line or row).
        InputTypeError: a text that is a JSON list or object, naming its line.

    Example:
        >>> for chunk in read_chunks("reviews.csv", text_columns=["review"]):  # doctest: +SKIP
        ...     print(len(chunk))
    """
    check_int("chunk_rows", chunk_rows)
    name, suffix, path = _source(source)
    text_columns = [c for c in text_columns if c]
    if suffix == ".txt" and "text" not in text_columns:
        text_columns.append("text")
    unit = "line" if suffix in LINE_SUFFIXES else "row"
    chunks = (c for c in _raw_chunks(path, suffix, name, chunk_rows) if len(c))
    first = next(chunks, None)
    if first is None:
        what = "no lines" if unit == "line" else "no rows"
        raise InputError(f"{name} is empty ({what}); give it one input per {'line' if unit == 'line' else 'row'}.")
    require_columns(first, [*columns, *text_columns], source=name, hint=hint)
    return _checked_chunks(itertools.chain([first], chunks), text_columns, name, unit)


def read_table(
    source: str | Path,
    *,
    columns: Sequence[str] = (),
    text_columns: Sequence[str | None] = (),
    hint: str = "Pick the right one with --text-column / --label-column.",
) -> pd.DataFrame:
    """The whole file as one DataFrame: :func:`read_chunks` joined (the same formats, checks and rule).

    Raises:
        FileNotFoundError, InputError, InputTypeError: as :func:`read_chunks`.
    """
    chunks = list(read_chunks(source, columns=columns, text_columns=text_columns, hint=hint))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks)


def iter_texts(source: str | Path, *, text_column: str = "text", pair_column: str | None = None) -> Iterator[TextInput]:
    """Stream the inputs of a file, one at a time (:func:`read_chunks`'s formats, checks and rule).

    Args:
        source: a path, or ``"-"`` for standard input (one text a line).
        text_column: the text column of a table (.txt files and stdin have only ``text``).
        pair_column: optional second-text column: items are then ``(text, text_pair)`` tuples.

    Returns:
        An iterator of texts (or pairs), one per line or row, in order; errors in the file's
        opening (missing file or column, empty file) are raised before it is returned.

    Raises:
        FileNotFoundError, InputError, InputTypeError: as :func:`read_chunks` (a blank text while iterating).

    Example:
        >>> texts = iter_texts("reviews.csv", text_column="review")  # doctest: +SKIP
        >>> next(texts)  # doctest: +SKIP
        'A gripping film.'
    """
    chunks = read_chunks(source, text_columns=[text_column, pair_column])
    return _texts_of(chunks, text_column, pair_column)


def _texts_of(chunks: Iterator[pd.DataFrame], text_column: str, pair_column: str | None) -> Iterator[TextInput]:
    for chunk in chunks:
        if pair_column:
            yield from zip(chunk[text_column].tolist(), chunk[pair_column].tolist())
        else:
            yield from chunk[text_column].tolist()


def _source(source: str | Path) -> tuple[str, str, Path | None]:
    """(name for messages, suffix, path or None for stdin), after the checks that need no reading."""
    if str(source) == STDIN:
        return "stdin", ".txt", None
    path = Path(source)
    if not path.is_file():
        if path.is_dir():
            raise InputError(f"{str(path)!r} is a directory; pass a file ({', '.join(TABLE_SUFFIXES)}).")
        nearby = sorted(p.name for p in path.parent.glob("*") if p.suffix.lower() in TABLE_SUFFIXES) if path.parent.is_dir() else []
        where = f"; readable files in {str(path.parent)!r}: {nearby[:10]}" if nearby else ""
        raise FileNotFoundError(f"Input file {str(path)!r} does not exist{where}.")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"Cannot read {str(path)!r}: unknown suffix {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)} or '-' for stdin.")
    return str(path), suffix, path


def _raw_chunks(path: Path | None, suffix: str, name: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if path is not None and path.stat().st_size == 0:
        return  # an empty file of any format: no rows (read_chunks says so)
    if suffix in LINE_SUFFIXES:
        yield from _line_chunks(path, suffix, name, chunk_rows)
    elif suffix in (".csv", ".tsv"):
        options: dict[str, Any] = {"sep": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}
        try:
            # skip_blank_lines=False: a blank line is a row (with no text) as in every other format.
            reader = pd.read_csv(
                path, chunksize=chunk_rows, keep_default_na=False, na_values=[""], skip_blank_lines=False,
                encoding="utf-8-sig", **options,
            )
            with reader:
                yield from reader
        except UnicodeDecodeError:
            raise _not_utf8(path, name) from None
        except pd.errors.EmptyDataError:
            return
        except pd.errors.ParserError as exc:
            raise InputError(f"Cannot read {name} as {suffix[1:].upper()}: {exc}") from exc
    elif suffix == ".json":
        try:
            frame = pd.read_json(path, encoding="utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(path, name) from None
        except ValueError as exc:
            raise InputError(f"Cannot read {name}: not a JSON array of objects ({exc}); one object a line is .jsonl.") from exc
        yield frame.reset_index(drop=True)
    else:  # .parquet
        import pyarrow.parquet as pq
        from pyarrow import ArrowException

        start = 0
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                frame = batch.to_pandas()
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
        except ArrowException as exc:
            raise InputError(f"Cannot read {name} as Parquet: {exc}") from exc


def _line_chunks(path: Path | None, suffix: str, name: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """.txt / stdin (column ``text``) or .jsonl (one object a line), decoded line by line to name bad lines."""
    rows: list[Any] = []
    start = 0
    with _binary_lines(path) as lines:
        for number, raw in enumerate(lines, start=1):
            line = _decode(raw, number, name).rstrip("\r\n")
            if number == 1:
                line = line.removeprefix("\ufeff")
            if suffix == ".txt":
                rows.append(line)
            elif not line.strip():
                raise InputError(f"{name} line {number} is blank; every line of a .jsonl file is one JSON object (one input).")
            else:
                rows.append(_json_record(line, number, name))
            if len(rows) >= chunk_rows:
                yield _frame(rows, suffix, start)
                start += len(rows)
                rows = []
    if rows:
        yield _frame(rows, suffix, start)


def _frame(rows: list[Any], suffix: str, start: int) -> pd.DataFrame:
    index = pd.RangeIndex(start, start + len(rows))
    return pd.DataFrame({"text": rows}, index=index) if suffix == ".txt" else pd.DataFrame(rows, index=index)


@contextmanager
def _binary_lines(path: Path | None):
    if path is not None:
        with path.open("rb") as handle:
            yield handle
        return
    buffer = getattr(sys.stdin, "buffer", None)
    # A text stream without a buffer (e.g. io.StringIO in tests) is encoded back to read it the same way.
    yield buffer if buffer is not None else (line.encode("utf-8") for line in sys.stdin)


def _decode(raw: bytes, number: int, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _encoding_error(raw, exc, number, name) from None


def _encoding_error(raw: bytes, exc: UnicodeDecodeError, number: int, name: str) -> InputError:
    bad = raw[exc.start : exc.start + 1]
    return InputError(
        f"{name} line {number} is not UTF-8 text (byte 0x{bad.hex()} at column {exc.start + 1}); "
        "save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.txt > in-utf8.txt`."
    )


def _not_utf8(path: Path, name: str) -> InputError:
    """The error for a file a parser found not to be UTF-8, naming its first bad line (read again to find it)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return _encoding_error(raw, exc, number, name)
    return InputError(f"{name} is not UTF-8 text; save it as UTF-8.")


def _json_record(line: str, number: int, source: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} line {number} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise InputError(f"{source} line {number} is a {type(record).__name__}, not a JSON object with a text field.")
    return record


def _checked_chunks(chunks: Iterator[pd.DataFrame], text_columns: Sequence[str], name: str, unit: str) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        for column in text_columns:
            chunk[column] = _text_values(chunk[column], column, source=name, unit=unit)
        yield chunk


def _text_values(values: pd.Series, column: str, *, source: str, unit: str) -> list[str]:
    """The texts of one column as strings; blank, missing or non-text values are errors naming the rows."""
    missing = [i for i, v in zip(values.index, values.tolist()) if is_missing(v)]
    if missing:
        where = (
            f"empty text in {describe_rows(missing, unit=unit)} (blank, or no {column!r} field)"
            if unit == "line"
            else f"missing or empty text in column {column!r}, {describe_rows(missing, unit=unit)}"
        )
        raise InputError(
            f"{source} has {where}; every {unit} is one input, so fill those in or delete them "
            f"(results line up with input {unit}s)."
        )
    out = []
    for i, value in zip(values.index, values.tolist()):
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            out.append(str(value))  # a number in a text column (a CSV id, "42") is its text
        else:
            raise InputTypeError(
                f"{source} {unit} {i + 1}: {column!r} is {value!r} ({type(value).__name__}), not a string."
            )
    return out


def require_columns(
    frame: pd.DataFrame, columns: Sequence[str | None], *, source: str, hint: str = "Pick the right one with --text-column / --label-column."
) -> None:
    """Raise an InputError naming the missing columns and the ones that exist."""
    missing = [c for c in dict.fromkeys(columns) if c and c not in frame.columns]
    if missing:
        raise InputError(f"{source} has no column(s) {missing}; its columns are {list(map(str, frame.columns))}. {hint}")


def text_column_values(frame: pd.DataFrame, column: str, *, source: str) -> list[str]:
    """The texts of ``column`` as strings, by the readers' rule: a blank or missing text is an InputError naming the rows."""
    return _text_values(frame[column].reset_index(drop=True), column, source=source, unit="row")


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

    Read through :func:`read_chunks` (the one reader, its checks and its rule: a blank query or
    document is an error naming its line or row); the file and its columns are checked before
    the first group is read, so errors come before any output.

    Raises:
        FileNotFoundError: no such file.
        InputError: another suffix, a missing column (naming those there are), a blank query or
            document, an empty documents list (naming the line).
        InputTypeError: (while iterating) documents that are not a list of strings, naming the line.

    Example:
        >>> groups = iter_query_documents("queries.jsonl")  # doctest: +SKIP
        >>> next(groups)  # doctest: +SKIP
        ('what is t5', ['T5 is a text-to-text transformer.', 'Bananas are yellow.'])
    """
    name, suffix, _ = _source(source)
    if suffix not in QUERY_SUFFIXES or str(source) == STDIN:
        raise InputError(
            f"Cannot read queries from {name!r}: use .jsonl ({{{query_column!r}: ..., {documents_column!r}: [...]}} per line) "
            f"or a .csv/.tsv with the columns {query_column!r} and {document_column!r}."
        )
    if suffix == ".jsonl":
        chunks = read_chunks(source, text_columns=[query_column], hint="Name the query field (rerank: --query-column).")
        first = next(chunks)
        if documents_column in first.columns:
            return _query_lists(itertools.chain([first], chunks), name, query_column, documents_column)
        if document_column not in first.columns:
            raise InputError(
                f"{name} has neither a {documents_column!r} list nor a {document_column!r} column (its fields are "
                f"{list(map(str, first.columns))}); write {{{query_column!r}: ..., {documents_column!r}: [...]}} per line."
            )
    pairs = iter_texts(source, text_column=query_column, pair_column=document_column)
    return ((query, [document for _, document in group]) for query, group in itertools.groupby(pairs, key=lambda pair: pair[0]))


def _query_lists(chunks: Iterator[pd.DataFrame], name: str, query_column: str, documents_column: str) -> Iterator[tuple[str, list[str]]]:
    for chunk in chunks:
        for index, query, documents in zip(chunk.index, chunk[query_column].tolist(), chunk[documents_column].tolist()):
            number = index + 1
            if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
                raise InputTypeError(f"{name} line {number}: {documents_column!r} must be a list of strings, got {documents!r:.80}.")
            if not documents:
                raise InputError(f"{name} line {number}: {documents_column!r} is empty; give each query at least one document.")
            blank = [i for i, d in enumerate(documents) if not d.strip()]
            if blank:
                raise InputError(f"{name} line {number}: {documents_column!r} item(s) {blank} are blank; every document needs text.")
            yield query, documents


@contextmanager
def record_writer(path: str | Path | None):
    """Write dict records to a .jsonl or .csv file (or JSON lines on stdout when ``path`` is None or ``-``).

    Yields a ``write(records)`` function taking an iterable of dicts. A file is written under a
    temporary name and moved into place at the end, so a failure leaves no half-written output.
    CSV columns come from the first record; list values are joined with ``;``.

    Raises:
        InputError: an output suffix other than .jsonl / .csv.
    """
    if path is None or str(path) == "-":
        yield lambda records: _write_records(records, sys.stdout, "jsonl")
        sys.stdout.flush()
        return
    path = Path(path)
    if path.is_dir():
        raise InputError(f"Cannot write {str(path)!r}: it is a directory; name an output file ending in {' or '.join(RECORD_SUFFIXES)}.")
    kind = path.suffix.lower().lstrip(".")
    if f".{kind}" not in RECORD_SUFFIXES:
        raise InputError(f"Cannot write {str(path)!r}: use an output file ending in {' or '.join(RECORD_SUFFIXES)}.")
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
    "LINE_SUFFIXES",
    "CHUNK_ROWS",
    "as_text_list",
    "describe_rows",
    "is_missing",
    "iter_texts",
    "read_chunks",
    "iter_query_documents",
    "QUERY_SUFFIXES",
    "read_table",
    "record_writer",
    "require_columns",
    "text_column_values",
]
