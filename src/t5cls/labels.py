"""Labels: checking label lists, telling what kind of problem a label column describes, label maps.

A data module: imports nothing of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real  # numpy floats and ints register as Real
from typing import Any

from .errors import InputError, InputTypeError
from .inputs import describe_rows, is_missing


def check_labels(labels: Any, *, name: str = "labels", example: str = "['positive', 'negative']") -> list[str]:
    """Validate a list of label names: strings, non-empty, each given once.

    Args:
        labels: the label names.
        name: what the caller calls them, for the messages ("labels", "candidate labels").
        example: a valid value to show in the messages.

    Returns:
        The labels as a list.

    Raises:
        InputTypeError: not a list, or an item that is not a string.
        InputError: no labels, a blank label, or a label given twice.
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise InputTypeError(f"{name} must be a list of strings, e.g. {example}, got {labels!r}.")
    labels = list(labels)
    if not labels:
        raise InputError(f"No {name}: the list is empty; pass at least one, e.g. {example}.")
    not_strings = [label for label in labels if not isinstance(label, str)]
    if not_strings:
        raise InputTypeError(f"{name} must be strings; got {not_strings!r}.")
    if any(not label.strip() for label in labels):
        raise InputError(f"{name} must be non-empty strings; got {labels!r}.")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise InputError(f"{name} must be unique; {duplicates} appear more than once (duplicates) in {labels!r}.")
    return labels


SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"


def _is_listlike(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray"






def infer_problem_type(values: Sequence[Any], *, separator: str | None = None) -> str:
    """The problem a label column describes.

    Lists of labels, or a ``separator``, mean multi-label classification; numbers that are not all
    whole mean regression; anything else (strings, integers, booleans) is single-label classification.

    Example:
        >>> infer_problem_type(["pos", "neg"]), infer_problem_type([0.5, 1.0]), infer_problem_type([["a"], []])
        ('single_label_classification', 'regression', 'multi_label_classification')
    """
    present = [v for v in values if _is_listlike(v) or not is_missing(v)]
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
        InputError: missing or empty labels, or regression targets that are not numbers (naming the rows).
    """
    values = list(values)
    missing = [i for i, v in enumerate(values) if not _is_listlike(v) and is_missing(v)]
    if missing:
        raise InputError(f"{source} has missing or empty labels in {describe_rows(missing)}; fill them in or drop those rows.")
    if problem_type == REGRESSION:
        out, bad = [], []
        for i, v in enumerate(values):
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                bad.append(i)
        if bad:
            raise InputError(
                f"{source} has regression targets that are not numbers in {describe_rows(bad)} "
                f"(e.g. {values[bad[0]]!r}); regression needs numeric labels."
            )
        return out
    if problem_type == MULTI_LABEL:
        sep = "," if separator is None else separator
        out = []
        for v in values:
            parts = list(v) if _is_listlike(v) else str(v).split(sep)
            out.append(sorted({_label_text(p) for p in parts if not is_missing(p)}))
        return out
    if problem_type == SINGLE_LABEL:
        bad = [i for i, v in enumerate(values) if _is_listlike(v)]
        if bad:
            raise InputError(
                f"{source} has lists of labels in {describe_rows(bad)}; use problem_type='multi_label_classification' for those."
            )
        return [_label_text(v) for v in values]
    raise InputError(f"problem_type={problem_type!r} is not supported; use one of {SINGLE_LABEL}, {MULTI_LABEL}, {REGRESSION}.")


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
        InputError: fewer than two classes (single-label), or data labels missing from ``labels``.

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
            raise InputError(f"{source} has labels {unknown} that are not in labels={labels}; add them or drop those rows.")
        names = labels
    else:
        names = sorted(seen, key=_label_sort_key(sorted(seen)))
    if problem_type == SINGLE_LABEL and len(names) < 2:
        raise InputError(
            f"{source} has a single class {names}; a classifier needs at least two (or pass labels=[...] naming all classes)."
        )
    if problem_type == MULTI_LABEL and not names:
        raise InputError(f"{source} has no labels at all; multi-label classification needs at least one.")
    return names


def check_known_labels(parsed: Sequence[Any], known: Sequence[str], *, source: str = "eval data") -> None:
    """Raise an InputError naming the labels in ``parsed`` that the model does not know."""
    seen = set()
    for item in parsed:
        seen.update(item if isinstance(item, list) else [item])
    unseen = sorted(seen - set(known))
    if unseen:
        raise InputError(
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

__all__ = [
    "check_labels",
    "check_known_labels",
    "encode_labels",
    "infer_problem_type",
    "label_names",
    "parse_labels",
    "SINGLE_LABEL",
    "MULTI_LABEL",
    "REGRESSION",
]
