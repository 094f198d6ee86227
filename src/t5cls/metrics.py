"""Evaluation metrics, computed with scikit-learn and scipy.

* single-label classification: accuracy, macro-F1, Matthews correlation, per-label F1 and the
  confusion matrix;
* multi-label classification: micro- and macro-F1, exact-match (subset) accuracy, per-label F1;
* regression: Pearson and Spearman correlation, mean squared error.

Every value is a plain Python number (or list) so that ``json.dump`` writes it; an undefined value
(a correlation with constant predictions) is ``None`` rather than NaN, which JSON cannot hold.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .labels import MULTI_LABEL, REGRESSION, SINGLE_LABEL

# The number each problem type is judged by (early stopping, best checkpoint, summaries).
MAIN_METRIC = {SINGLE_LABEL: "accuracy", MULTI_LABEL: "micro_f1", REGRESSION: "pearson"}


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, MCC, per-label F1 and the confusion matrix (rows = true, columns = predicted).

    Args:
        y_true: true class ids.
        y_pred: predicted class ids.
        labels: label names in id order.

    Example:
        >>> m = classification_metrics([0, 1, 1], [0, 1, 0], ["neg", "pos"])
        >>> round(m["accuracy"], 3), m["confusion_matrix"]
        (0.667, [[1, 0], [1, 1]])
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, matthews_corrcoef

    ids = list(range(len(labels)))
    per_label = f1_score(y_true, y_pred, labels=ids, average=None, zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MCC of a constant prediction or one class is 0, with a warning
        mcc = matthews_corrcoef(y_true, y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "mcc": _number(mcc),
        "per_label_f1": {name: float(f) for name, f in zip(labels, per_label)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(labels),
        "n": len(y_true),
    }


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Micro- and macro-F1, exact-match accuracy and per-label F1 of 0/1 matrices ``(n, num_labels)``."""
    from sklearn.metrics import accuracy_score, f1_score

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "exact_match": float(accuracy_score(y_true, y_pred)),
        "per_label_f1": {name: float(f) for name, f in zip(labels, per_label)},
        "labels": list(labels),
        "n": int(y_true.shape[0]),
    }


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, Any]:
    """Pearson and Spearman correlation and mean squared error (``None`` where a correlation is undefined).

    Example:
        >>> m = regression_metrics([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
        >>> round(m["pearson"], 3), round(m["spearman"], 3), round(m["mse"], 3)
        (0.991, 1.0, 0.02)
    """
    from scipy.stats import pearsonr, spearmanr

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN, reported as None
        pearson = np.mean([pearsonr(y_true[:, j], y_pred[:, j])[0] for j in range(y_true.shape[1])]) if len(y_true) > 1 else float("nan")
        spearman = np.mean([spearmanr(y_true[:, j], y_pred[:, j])[0] for j in range(y_true.shape[1])]) if len(y_true) > 1 else float("nan")
    return {
        "pearson": _number(pearson),
        "spearman": _number(spearman),
        "mse": float(np.mean((y_true - y_pred) ** 2)),
        "n": int(y_true.shape[0]),
    }


def compute_metrics(
    problem_type: str, y_true: Any, scores: np.ndarray, labels: Sequence[str], *, threshold: float = 0.5
) -> dict[str, Any]:
    """Metrics of model outputs against encoded true labels.

    Args:
        problem_type: single-label, multi-label or regression.
        y_true: class ids, 0/1 rows, or target values (see :func:`t5cls.labels.encode_labels`).
        scores: ``(n, num_labels)`` probabilities (classification) or predicted values (regression).
        labels: label names in id order.
        threshold: multi-label decision threshold on probabilities.
    """
    scores = np.asarray(scores)
    if problem_type == SINGLE_LABEL:
        return classification_metrics(list(y_true), scores.argmax(axis=1).tolist(), labels)
    if problem_type == MULTI_LABEL:
        return multilabel_metrics(np.asarray(y_true), scores >= threshold, labels)
    return regression_metrics(y_true, scores)


def trainer_metrics(problem_type: str, labels: Sequence[str]) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` for ``transformers.Trainer``: logits -> the scalar metrics (no matrices)."""

    def compute(prediction: Any) -> dict[str, float]:
        logits = np.asarray(prediction.predictions)
        if isinstance(prediction.predictions, tuple):
            logits = np.asarray(prediction.predictions[0])
        if problem_type == MULTI_LABEL:
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            scores = logits  # argmax of logits = argmax of probabilities; regression values as they are
        metrics = compute_metrics(problem_type, prediction.label_ids, scores, labels)
        return {k: v for k, v in metrics.items() if isinstance(v, float)}

    return compute


__all__ = [
    "MAIN_METRIC",
    "classification_metrics",
    "multilabel_metrics",
    "regression_metrics",
    "compute_metrics",
    "trainer_metrics",
]
