"""Scores people can trust: temperature scaling, per-label thresholds and calibration measures.

A fine-tuned classifier's softmax is overconfident. Temperature scaling (Guo et al. 2017, "On
Calibration of Modern Neural Networks") divides the logits by one number T > 0, fitted on held-out
data to minimise the negative log-likelihood; it changes no prediction (argmax is unchanged), only
how sure the model says it is. :class:`t5cls.T5ClassificationConfig` stores T and the model's
forward applies it. Multi-label models get one decision threshold per label instead, the one with
the best F1 on held-out data.

The measures: expected calibration error over 15 equal-width confidence bins (Guo et al.),
negative log-likelihood and the multi-class Brier score (mean over inputs of the squared distance
between the probability vector and the one-hot truth).

(:mod:`t5cls.calibration` is something else: LabelScorer's prompt-bias corrections.)

A data module: numpy and scipy on arrays; imports nothing of the model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from .errors import InputError

logger = logging.getLogger(__name__)

ECE_BINS = 15
DEFAULT_THRESHOLD = 0.5
# T is searched on log T in [1/100, 100]: wide enough for any trained model, bounded so that a
# separable fit set (NLL -> 0 as T -> 0) cannot run away.
_LOG_T_BOUNDS = (-math.log(100.0), math.log(100.0))


def check_fit_labels(y_true: Any, *, problem_type: str, source: str = "eval data", labels: Sequence[str] | None = None) -> None:
    """Raise :class:`InputError` when ``y_true`` cannot fit a temperature or thresholds: one class only.

    Args:
        y_true: class ids (single-label) or 0/1 rows (multi-label).
        problem_type: ``"single_label_classification"`` or ``"multi_label_classification"``.
        labels: label names in id order, to name the class in the message.
    """
    y = np.asarray(y_true)
    if problem_type == "multi_label_classification":
        distinct = {tuple(row) for row in y.astype(int).tolist()}
        if len(distinct) < 2:
            raise InputError(
                f"{source} has one label set only ({sorted(distinct)[0] if distinct else 'no rows'}) for all {len(y)} rows; "
                "per-label thresholds need rows with and without each label. Pass a representative eval set, "
                "or fit_temperature=False (--no-fit-temperature)."
            )
        return
    classes = np.unique(y).tolist()
    if len(classes) < 2:
        named = [labels[c] for c in classes] if labels is not None else classes
        raise InputError(
            f"{source} has one class only ({named}) in {len(y)} rows; a temperature fitted on it would only "
            "learn to be sure of that class. Pass an eval set with several classes, or fit_temperature=False "
            "(--no-fit-temperature)."
        )


def softmax_nll(logits: np.ndarray, y_true: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``y_true`` under ``softmax(logits / temperature)``."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(logp)), np.asarray(y_true, dtype=np.int64)].mean())


def fit_temperature(logits: np.ndarray, y_true: Sequence[int]) -> float:
    """The T > 0 minimising the NLL of ``softmax(logits / T)`` on ``(logits, y_true)``.

    One-dimensional and convex in log T: a bounded scalar search (Brent) is exact enough. When the
    search does not beat T = 1 (it always should, up to rounding), 1.0 is returned, so the NLL on the
    fit set is never larger after scaling than before.

    Args:
        logits: ``(n, num_labels)`` raw logits (at temperature 1).
        y_true: ``(n,)`` class ids.

    Example:
        >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> round(fit_temperature(logits, [0, 1, 1, 0]), 2)  # one of four confidently wrong: soften
        3.64
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    result = minimize_scalar(lambda log_t: softmax_nll(logits, y, math.exp(log_t)), bounds=_LOG_T_BOUNDS, method="bounded",
                             options={"xatol": 1e-6})
    temperature = float(math.exp(result.x))
    if softmax_nll(logits, y, temperature) > softmax_nll(logits, y, 1.0):
        return 1.0
    return temperature


def fit_thresholds(proba: np.ndarray, y_true: np.ndarray) -> list[float]:
    """Per label, the probability threshold with the best F1 of ``proba >= threshold`` on ``y_true``.

    The candidates are the probabilities themselves (so the decision at the threshold is "predicted"),
    scanned with scikit-learn's ``precision_recall_curve``; ties go to the lowest threshold. A label
    with no positive or no negative rows cannot be fitted and keeps 0.5 (logged).

    Args:
        proba: ``(n, num_labels)`` sigmoid probabilities.
        y_true: ``(n, num_labels)`` 0/1 targets.

    Returns:
        One threshold per label, in id order.

    Example:
        >>> fit_thresholds(np.array([[0.9, 0.2], [0.4, 0.3], [0.1, 0.8]]), np.array([[1, 0], [1, 0], [0, 1]]))
        [0.4, 0.8]
    """
    from sklearn.metrics import precision_recall_curve

    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true).astype(int)
    thresholds = []
    for j in range(proba.shape[1]):
        positives = int(y[:, j].sum())
        if positives == 0 or positives == len(y):
            logger.info("Label %d is %s in every eval row: its threshold stays %.1f.", j, "present" if positives else "absent", DEFAULT_THRESHOLD)
            thresholds.append(DEFAULT_THRESHOLD)
            continue
        precision, recall, candidates = precision_recall_curve(y[:, j], proba[:, j])
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        thresholds.append(float(candidates[int(np.argmax(f1))]))
    return thresholds


def confidence_bins(proba: np.ndarray, y_true: Sequence[int], *, bins: int = ECE_BINS) -> dict[str, list[float]]:
    """Reliability table: per equal-width confidence bin, its mean confidence, accuracy and size.

    Confidence is the top probability; bin b holds confidences in ``(b/bins, (b+1)/bins]`` (the first
    bin also holds 0). Empty bins have ``None`` for confidence and accuracy.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    conf, acc, count = [], [], []
    for b in range(bins):
        members = index == b
        n = int(members.sum())
        count.append(n)
        conf.append(float(confidence[members].mean()) if n else None)
        acc.append(float(correct[members].mean()) if n else None)
    return {"confidence": conf, "accuracy": acc, "count": count}


def expected_calibration_error(proba: np.ndarray, y_true: Sequence[int], *, bins: int = ECE_BINS) -> float:
    """ECE: the size-weighted mean over confidence bins of ``|accuracy - mean confidence|``.

    Example:
        >>> round(expected_calibration_error(np.array([[0.9, 0.1], [0.8, 0.2]]), [0, 1]), 3)
        0.45
    """
    table = confidence_bins(proba, y_true, bins=bins)
    total = sum(table["count"])
    if total == 0:
        return 0.0
    return float(sum(n * abs(a - c) for n, a, c in zip(table["count"], table["accuracy"], table["confidence"]) if n) / total)


def calibration_metrics(proba: np.ndarray, y_true: Sequence[int]) -> dict[str, float]:
    """``{"ece", "nll", "brier"}`` of single-label probabilities ``(n, num_labels)`` against class ids."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return {"ece": 0.0, "nll": 0.0, "brier": 0.0}
    picked = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    return {
        "ece": expected_calibration_error(proba, y),
        "nll": float(-np.log(picked).mean()),
        "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()),
    }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` per row, in float64."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1))


def calibration_report(raw_logits: np.ndarray, y_true: Sequence[int], *, temperature: float) -> dict[str, Any]:
    """What ``metrics.json`` records: the temperature, and the measures before and after scaling.

    Args:
        raw_logits: ``(n, num_labels)`` logits at temperature 1.
        y_true: class ids.
        temperature: the model's temperature.
    """
    before = softmax(raw_logits)
    after = softmax(raw_logits, temperature)
    return {
        "temperature": float(temperature),
        "bins": ECE_BINS,
        "before": calibration_metrics(before, y_true),
        "after": calibration_metrics(after, y_true),
        "reliability": {"before": confidence_bins(before, y_true), "after": confidence_bins(after, y_true)},
    }


def raw_logits_from_proba(proba: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Logits at temperature 1 that give ``proba`` at ``temperature``: ``temperature * log(proba)``.

    Softmax ignores a constant per row, so ``softmax(T * log p)`` is exactly ``softmax(raw)`` when
    ``p = softmax(raw / T)``; this lets reports work from probabilities (chunked inputs included).
    """
    proba = np.asarray(proba, dtype=np.float64)
    return temperature * np.log(np.maximum(proba, np.finfo(np.float32).tiny))


def check_min_score(min_score: Any, *, problem_type: str | None = None) -> float | None:
    """``min_score`` as a float in [0, 1] (or None); InputError for anything else or a model it does not fit."""
    if min_score is None:
        return None
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0.0 <= float(min_score) <= 1.0:
        raise InputError(f"min_score={min_score!r} must be a probability between 0 and 1 (or None: always give the best label).")
    if problem_type == "multi_label_classification":
        raise InputError(
            f"min_score={min_score!r} is for single-label models; this one is multi-label, where each label's threshold "
            "already decides (threshold=... or the thresholds saved with the model)."
        )
    if problem_type == "regression":
        raise InputError(f"min_score={min_score!r} is for single-label classifiers; a regression model gives values, not labels.")
    return float(min_score)


def check_threshold(threshold: Any) -> float | None:
    """``threshold`` as a float in [0, 1] (or None); InputError otherwise."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"threshold={threshold!r} must be a probability between 0 and 1 (or None: the model's saved thresholds, else 0.5).")
    return float(threshold)


__all__ = [
    "ECE_BINS",
    "DEFAULT_THRESHOLD",
    "check_fit_labels",
    "check_min_score",
    "check_threshold",
    "softmax",
    "softmax_nll",
    "fit_temperature",
    "fit_thresholds",
    "confidence_bins",
    "expected_calibration_error",
    "calibration_metrics",
    "calibration_report",
    "raw_logits_from_proba",
]
