"""reports.py: the PNG plots and metrics.json are written, readable images of the expected kind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t5cls.reports import (
    plot_confusion_matrix,
    plot_loss_curve,
    plot_per_label_f1,
    plot_regression_scatter,
    write_eval_plots,
    write_json,
)


def _image(path):
    from matplotlib.image import imread

    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    return image


def test_loss_curve(tmp_path):
    history = [{"step": s, "loss": 2.0 / s} for s in range(1, 20)] + [{"step": 10, "eval_loss": 0.4}, {"step": 19, "eval_loss": 0.3}]
    _image(plot_loss_curve(history, tmp_path / "loss.png"))
    assert plot_loss_curve([{"step": 1, "train_runtime": 3.0}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_confusion_matrix_many_labels(tmp_path):
    labels = [f"intent_{i}" for i in range(12)]
    matrix = np.diag(np.arange(1, 13)).tolist()
    matrix[0][5] = 3
    _image(plot_confusion_matrix(matrix, labels, tmp_path / "cm.png"))


def test_regression_scatter_and_per_label(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.random(50)
    _image(plot_regression_scatter(true, true + 0.1 * rng.standard_normal(50), tmp_path / "scatter.png"))
    _image(plot_regression_scatter([1.0, 1.0], [2.0, 2.0], tmp_path / "flat.png"))  # undefined r: no crash
    _image(plot_per_label_f1({"a": 0.5, "b": 0.9}, tmp_path / "f1.png"))


def test_write_eval_plots_by_problem_type(tmp_path):
    metrics = {"confusion_matrix": [[2, 0], [1, 1]], "labels": ["n", "p"], "per_label_f1": {"n": 0.8, "p": 0.6}}
    names = {p.name for kind in ("single_label_classification", "multi_label_classification", "regression")
             for p in write_eval_plots(kind, metrics, [0.1, 0.5, 0.9], np.array([0.2, 0.4, 1.0]), tmp_path)}
    assert names == {"confusion_matrix.png", "per_label_f1.png", "regression_scatter.png"}
    with pytest.raises(ValueError, match="Unknown problem_type"):
        write_eval_plots("ranking", metrics, [], np.zeros(0), tmp_path)


def test_write_json_is_strict(tmp_path):
    path = write_json({"a": 1.5, "b": None}, tmp_path / "m" / "metrics.json")
    assert json.loads(path.read_text()) == {"a": 1.5, "b": None}
    with pytest.raises(ValueError):
        write_json({"a": float("nan")}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
