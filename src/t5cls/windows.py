"""Long inputs as overlapping token windows, and putting their results back together.

One mechanism for every job that reads long texts: ``Classifier`` and ``ZeroShotClassifier``
with ``long_inputs="chunk"`` and the ``Reranker``'s MaxP windows. Only the part of an input
that may be long (the text, a premise, a document) is windowed; templates, a text pair's second
text, hypotheses and queries stay whole in every window, so callers pass the token budget that
is left for the windowed part.

A data module: imports nothing of the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError

LONG_INPUTS = ("truncate", "chunk")
AGGREGATES = ("mean", "max")


def check_window(size: int, stride: int) -> None:
    """Raise :class:`InputError` unless ``0 <= stride < size``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"The window size must be a positive number of tokens, got {size!r}; raise max_length.")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
        raise InputError(f"stride={stride!r} must be a number of tokens >= 0 (the overlap between windows).")
    if stride >= size:
        raise InputError(
            f"stride={stride} must be smaller than the window ({size} tokens): it is the overlap between "
            f"consecutive windows; use e.g. stride={size // 4}."
        )


def token_windows(ids: Sequence[int], *, size: int, stride: int) -> list[list[int]]:
    """Split ``ids`` into windows of at most ``size`` tokens, consecutive ones overlapping by ``stride``.

    An input of at most ``size`` tokens is one window, itself. The last window ends at the last
    token (it may overlap its neighbour by more than ``stride``), so no window is a short tail.

    Example:
        >>> token_windows(list(range(10)), size=4, stride=1)
        [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    """
    check_window(size, stride)
    ids = list(ids)
    if len(ids) <= size:
        return [ids]
    step = size - stride
    starts = list(range(0, len(ids) - size, step)) + [len(ids) - size]
    return [ids[start : start + size] for start in starts]


def check_aggregate(aggregate: str) -> str:
    if aggregate not in AGGREGATES:
        raise InputError(f"aggregate={aggregate!r} is not one of {AGGREGATES}: 'mean' averages the windows' probabilities, 'max' takes each label's largest.")
    return aggregate


def check_long_inputs(long_inputs: str) -> str:
    if long_inputs not in LONG_INPUTS:
        raise InputError(f"long_inputs={long_inputs!r} is not one of {LONG_INPUTS}: 'truncate' cuts at max_length, 'chunk' reads overlapping windows.")
    return long_inputs


def aggregate_windows(values: np.ndarray, counts: Sequence[int], *, how: str, renormalize: bool = False) -> np.ndarray:
    """One row per input from one row per window.

    Args:
        values: ``(total_windows, k)`` results, the windows of each input consecutive.
        counts: how many windows each input has (they sum to ``total_windows``).
        how: ``"mean"`` (average the rows) or ``"max"`` (each column's largest).
        renormalize: after ``"max"``, divide each row by its sum (single-label probabilities).

    Returns:
        ``(len(counts), k)``.
    """
    check_aggregate(how)
    values = np.asarray(values)
    bounds = np.cumsum([0, *counts])
    if bounds[-1] != len(values):
        raise ValueError(f"{len(values)} window rows for counts summing to {bounds[-1]}")  # a bug, not user input
    reduce = np.mean if how == "mean" else np.max
    out = np.stack([reduce(values[a:b], axis=0) for a, b in zip(bounds[:-1], bounds[1:])]) if len(counts) else values[:0]
    if how == "max" and renormalize:
        out = out / out.sum(axis=1, keepdims=True)
    return out


__all__ = ["LONG_INPUTS", "AGGREGATES", "check_window", "check_aggregate", "check_long_inputs", "token_windows", "aggregate_windows"]
