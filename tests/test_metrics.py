"""metrics.py: values checked against hand computations and sklearn/scipy definitions."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from t5cls.metrics import (
    classification_metrics,
    compute_metrics,
    multilabel_metrics,
    regression_metrics,
    trainer_metrics,
)


def test_classification_metrics_by_hand():
    # true: a a b b c c ; predicted: a b b b c a  -> 4/6 right
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1 per label: a: p=1/2 r=1/2 -> 0.5 ; b: p=2/3 r=1 -> 0.8 ; c: p=1 r=1/2 -> 2/3
    assert m["per_label_f1"] == pytest.approx({"a": 0.5, "b": 0.8, "c": 2 / 3})
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert -1.0 <= m["mcc"] <= 1.0 and m["n"] == 6
    json.dumps(m, allow_nan=False)  # JSON-ready


def test_classification_metrics_keep_absent_labels_in_the_matrix():
    m = classification_metrics([0, 0], [0, 0], ["a", "b", "c"])
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert m["accuracy"] == 1.0


def test_multilabel_metrics():
    true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1]])
    m = multilabel_metrics(true, pred, ["x", "y", "z"])
    # micro: tp=4, fp=1, fn=1 -> 0.8
    assert m["micro_f1"] == pytest.approx(0.8)
    assert m["exact_match"] == pytest.approx(1 / 3)
    assert m["per_label_f1"]["z"] == 0.0


def test_regression_metrics_and_undefined_correlation():
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
    assert m["pearson"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx((1 + 4 + 9 + 16) / 4)
    constant = regression_metrics([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert constant["pearson"] is None and constant["spearman"] is None  # NaN would break JSON
    json.dumps(constant, allow_nan=False)


def test_compute_metrics_dispatch_and_trainer_hook():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert compute_metrics("single_label_classification", [0, 1, 1], proba, ["n", "p"])["accuracy"] == pytest.approx(2 / 3)
    multi = compute_metrics("multi_label_classification", [[1, 0], [0, 1], [1, 0]], proba, ["n", "p"], threshold=0.5)
    assert multi["micro_f1"] == pytest.approx(1.0)
    hook = trainer_metrics("single_label_classification", ["n", "p"])
    scalars = hook(SimpleNamespace(predictions=np.log(proba), label_ids=np.array([0, 1, 1])))
    assert set(scalars) == {"accuracy", "macro_f1", "mcc"}
    regression = trainer_metrics("regression", ["score"])(
        SimpleNamespace(predictions=np.array([[1.0], [2.0], [3.5]]), label_ids=np.array([1.0, 2.0, 3.0]))
    )
    assert set(regression) == {"pearson", "spearman", "mse"}
