"""Reports people can look at: ``metrics.json`` and PNG plots of a training run or an evaluation.

Plots are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never through
``pyplot``: no global backend switch, no display needed, nothing left open in the caller's session.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .labels import MULTI_LABEL, REGRESSION, SINGLE_LABEL

METRICS_FILE = "metrics.json"
LOSS_PLOT = "loss_curve.png"
CONFUSION_PLOT = "confusion_matrix.png"
SCATTER_PLOT = "regression_scatter.png"
PER_LABEL_PLOT = "per_label_f1.png"
RELIABILITY_PLOT = "reliability_diagram.png"


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON (through a temporary file, so a reader never sees half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def plot_loss_curve(log_history: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """Training loss (and evaluation loss, when there is one) against the optimizer step.

    Args:
        log_history: ``Trainer.state.log_history``: dicts with ``step`` and ``loss`` / ``eval_loss``.
        path: the PNG to write.

    Returns:
        The path, or None when the history has no loss to plot.
    """
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    if train:
        ax.plot(*zip(*train), marker="." if len(train) < 40 else None, label="training loss")
    if evals:
        ax.plot(*zip(*evals), marker="o", label="evaluation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, Path(path))


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike) -> Path:
    """A confusion matrix: rows are true labels, columns predictions; colour = share of the true row.

    Each cell shows its count; the colour is normalised per row so that rare classes stay readable.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = counts / np.maximum(rows, 1)
    n = len(labels)
    size = min(max(4.0, 0.55 * n + 2.5), 14.0)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")
    ax.set_xticks(range(n), [str(lab) for lab in labels], rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), [str(lab) for lab in labels])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"Confusion matrix (accuracy {accuracy:.3f}, n={int(counts.sum())})")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                colour = "white" if shares[i, j] > 0.6 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=9)
    return _save(fig, Path(path))


def plot_regression_scatter(y_true: Sequence[float], y_pred: Sequence[float], path: str | os.PathLike) -> Path:
    """Predicted against true values, with the ``y = x`` line; Pearson r in the title."""
    true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    fig = _figure(5.0, 5.0)
    ax = fig.subplots()
    ax.scatter(true, pred, s=12, alpha=0.6)
    low = float(min(true.min(), pred.min()))
    high = float(max(true.max(), pred.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="y = x")
    r = np.corrcoef(true, pred)[0, 1] if len(true) > 1 and true.std() > 0 and pred.std() > 0 else float("nan")
    ax.set_title("Predicted vs true" + ("" if math.isnan(r) else f" (Pearson r = {r:.3f})"))
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, Path(path))


def plot_per_label_f1(per_label: dict[str, float], path: str | os.PathLike) -> Path:
    """Horizontal bars of F1 per label (multi-label classification)."""
    names = list(per_label)
    fig = _figure(6.0, max(2.5, 0.35 * len(names) + 1.2))
    ax = fig.subplots()
    ax.barh(range(len(names)), [per_label[n] for n in names])
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title("F1 per label")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, Path(path))


def plot_reliability(calibration: dict[str, Any], path: str | os.PathLike) -> Path:
    """Reliability diagram: accuracy against confidence per bin, before and after temperature scaling.

    Args:
        calibration: the ``"calibration"`` entry of ``metrics.json`` (see
            :func:`t5cls.temperature.calibration_report`): ``reliability`` tables and the measures.
        path: the PNG to write.

    A calibrated model's points lie on the diagonal; bars show how many inputs fall in each bin.
    """
    tables = calibration["reliability"]
    bins = len(tables["before"]["count"])
    fig = _figure(6.4, 5.2)
    ax, counts = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    temperature = calibration["temperature"]
    centres = (np.arange(bins) + 0.5) / bins
    for name, style in (("before", "o-"), ("after", "s-")):
        table = tables[name]
        points = [(c, a) for c, a in zip(table["confidence"], table["accuracy"]) if c is not None]
        if not points:
            continue
        measures = calibration[name]
        what = "before scaling (T = 1)" if name == "before" else f"after scaling (T = {temperature:.3g})"
        ax.plot(*zip(*points), style, markersize=4, label=f"{what}: ECE {measures['ece']:.3f}, NLL {measures['nll']:.3f}")
        counts.bar(centres + (-0.25 if name == "before" else 0.25) / bins, table["count"], width=0.5 / bins, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability ({bins} equal-width confidence bins)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    counts.set_xlabel("confidence (top probability)")
    counts.set_ylabel("inputs")
    counts.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def write_eval_plots(
    problem_type: str, metrics: dict[str, Any], y_true: Any, scores: np.ndarray, output_dir: str | os.PathLike
) -> list[Path]:
    """The plots that fit the problem: confusion matrix (and reliability diagram), regression scatter or per-label F1."""
    output_dir = Path(output_dir)
    if problem_type == SINGLE_LABEL:
        plots = [plot_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], output_dir / CONFUSION_PLOT)]
        if metrics.get("calibration"):
            plots.append(plot_reliability(metrics["calibration"], output_dir / RELIABILITY_PLOT))
        return plots
    if problem_type == REGRESSION:
        return [plot_regression_scatter(y_true, scores, output_dir / SCATTER_PLOT)]
    if problem_type == MULTI_LABEL:
        return [plot_per_label_f1(metrics["per_label_f1"], output_dir / PER_LABEL_PLOT)]
    raise ValueError(f"Unknown problem_type {problem_type!r}.")


__all__ = [
    "METRICS_FILE",
    "LOSS_PLOT",
    "CONFUSION_PLOT",
    "SCATTER_PLOT",
    "PER_LABEL_PLOT",
    "RELIABILITY_PLOT",
    "write_json",
    "plot_loss_curve",
    "plot_confusion_matrix",
    "plot_regression_scatter",
    "plot_per_label_f1",
    "plot_reliability",
    "write_eval_plots",
]
