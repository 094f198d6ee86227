"""Evaluating a classifier on labelled data: metrics (``metrics.json``) and plots, through the same
prediction path users call.

An encoder classifier is evaluated through :class:`t5cls.Classifier`; a seq2seq model fine-tuned
with ``train(mode="text2text")`` through :class:`t5cls.LabelScorer` (exact label probabilities),
so the two approaches are compared on the same metrics.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError, InputTypeError, check_int, check_max_length
from .inputs import TextInput, read_table, require_columns, text_column_values
from .labels import MULTI_LABEL, REGRESSION, SINGLE_LABEL, check_known_labels, encode_labels, parse_labels
from .metrics import compute_metrics
from .reports import METRICS_FILE, write_eval_plots, write_json
from .temperature import (
    calibration_report,
    check_fit_labels,
    check_threshold,
    fit_temperature,
    fit_thresholds,
    raw_logits_from_proba,
)

logger = logging.getLogger(__name__)

# Written next to a text-to-text model: its label strings and prompt template.
TEXT2TEXT_FILE = "t5cls_text2text.json"
DEFAULT_TEMPLATE = "{text}"
DEFAULT_PAIR_TEMPLATE = "{text} {text_pair}"


def load_frame(data: Any, *, name: str, columns: Sequence[str], text_columns: Sequence[str | None] = ()) -> pd.DataFrame:
    """A DataFrame from a path (.csv/.tsv/.jsonl/.parquet), a ``datasets.Dataset`` or a DataFrame.

    Raises:
        InputTypeError: ``data`` is none of those.
        FileNotFoundError / InputError: see :func:`t5cls.inputs.read_table`; also an empty table or a
            missing column (the message lists the columns that exist).
    """
    if isinstance(data, (str, os.PathLike)):
        # The one reader: blank texts of a file are refused naming their line (.txt, .jsonl) or row.
        return read_table(data, columns=columns, text_columns=text_columns)
    if isinstance(data, pd.DataFrame):
        frame = data
    elif type(data).__module__.startswith("datasets") and hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    else:
        raise InputTypeError(
            f"{name} data is a {type(data).__name__}; pass a file path (.csv, .tsv, .jsonl, .parquet), "
            "a datasets.Dataset or a pandas DataFrame."
        )
    if frame.empty:
        raise InputError(f"{name} data has no rows.")
    require_columns(frame, columns, source=f"{name} data")
    return frame.reset_index(drop=True)


def frame_texts(frame: pd.DataFrame, *, source: str, text_column: str, text_pair_column: str | None) -> list[TextInput]:
    """Texts (or ``(text, text_pair)`` tuples) of a table, with missing texts an InputError naming the rows."""
    texts = text_column_values(frame, text_column, source=source)
    if text_pair_column is None:
        return list(texts)
    pairs = text_column_values(frame, text_pair_column, source=source)
    return list(zip(texts, pairs))


def prompts(texts: Sequence[TextInput], template: str) -> list[str]:
    """Text-to-text inputs: ``template`` filled with ``{text}`` (and ``{text_pair}`` for pairs)."""
    out = []
    for item in texts:
        if isinstance(item, str):
            out.append(template.format(text=item))
        else:
            out.append(template.format(text=item[0], text_pair=item[1]))
    return out


def check_template(template: str, *, pairs: bool) -> None:
    """Raise an InputError when ``template`` lacks ``{text}`` (or ``{text_pair}`` with sentence pairs)."""
    needed = ["{text}"] + (["{text_pair}"] if pairs else [])
    missing = [field for field in needed if field not in template]
    if missing:
        raise InputError(f"template={template!r} lacks {', '.join(missing)}; e.g. {DEFAULT_PAIR_TEMPLATE if pairs else DEFAULT_TEMPLATE!r}.")
    try:
        template.format(text="", text_pair="")
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(f"template={template!r} has a field other than {{text}} / {{text_pair}} ({exc}).") from exc


class Predictor:
    """What evaluation needs from a model: its problem type, label names and ``predict_proba``."""

    def __init__(
        self, model: Any, *, problem_type: str, labels: list[str], template: str | None = None, temperature: float = 1.0,
        thresholds: Any = None,
    ):
        self.model = model
        self.problem_type = problem_type
        self.labels = labels
        self.template = template  # text-to-text only
        self.temperature = temperature  # the model's own (its probabilities already include it)
        self.thresholds = thresholds  # multi-label: per label, or None for 0.5

    def scores(self, texts: Sequence[TextInput]) -> np.ndarray:
        """``(n, num_labels)`` probabilities, or predicted values for regression."""
        if self.template is not None:
            return np.asarray(self.model.predict_proba(prompts(texts, self.template)))
        return np.asarray(self.model.predict_proba(list(texts)))


def classifier_predictor(classifier: Any) -> Predictor:
    """A :class:`Predictor` around a :class:`t5cls.Classifier`."""
    config = classifier.config
    return Predictor(
        classifier, problem_type=config.problem_type, labels=list(classifier.labels),
        temperature=float(getattr(config, "temperature", 1.0) or 1.0), thresholds=getattr(config, "thresholds", None),
    )


def text2text_predictor(model: Any, tokenizer: Any, *, labels: Sequence[str], template: str, **kwargs: Any) -> Predictor:
    """A :class:`Predictor` scoring ``labels`` with :class:`t5cls.LabelScorer` on a seq2seq model."""
    from .scoring import LabelScorer  # written beside this module; imported only when used

    # Prompts are filled here (sentence pairs included), so the scorer sees them as they are.
    scorer = LabelScorer((model, tokenizer), labels=list(labels), template="{text}", **kwargs)
    return Predictor(scorer, problem_type="single_label_classification", labels=list(labels), template=template)


def load_predictor(
    model: Any, *, device: Any = None, dtype: Any = None, max_length: int | None = None, batch_tokens: int | None = None,
    base: str | os.PathLike | None = None,
) -> Predictor:
    """A :class:`Predictor` for a saved model directory, a ``Classifier`` or a ``LabelScorer``.

    A directory holding ``t5cls_text2text.json`` (written by ``train(mode="text2text")``) is scored
    with LabelScorer; any other is loaded as a :class:`t5cls.Classifier`.
    """
    from .inference import Classifier

    if isinstance(model, Predictor):
        return model
    if isinstance(model, Classifier):
        return classifier_predictor(model)
    if type(model).__name__ == "LabelScorer":
        return Predictor(model, problem_type="single_label_classification", labels=list(model.labels), template=DEFAULT_TEMPLATE)
    if not isinstance(model, (str, os.PathLike)):
        raise InputTypeError(f"model is a {type(model).__name__}; pass a model directory, a t5cls.Classifier or a t5cls.LabelScorer.")
    path = Path(model)
    if not path.is_dir():
        raise FileNotFoundError(f"Model directory {str(model)!r} does not exist.")
    options = {k: v for k, v in {"max_length": max_length, "batch_tokens": batch_tokens}.items() if v is not None}
    marker = path / TEXT2TEXT_FILE
    if marker.is_file():
        from .devices import default_device, default_dtype
        from .loading import load_seq2seq_model, load_tokenizer

        info = json.loads(marker.read_text())
        target = default_device(device)
        seq2seq = load_seq2seq_model(path, dtype=default_dtype(target, dtype)).to(target).eval()
        tokenizer = load_tokenizer(path)
        return text2text_predictor(seq2seq, tokenizer, labels=info["labels"], template=info["template"])
    return classifier_predictor(Classifier(path, device=device, dtype=dtype, base=base, **options))


def evaluate_texts(
    predictor: Predictor,
    texts: Sequence[TextInput],
    raw_labels: Sequence[Any],
    *,
    label_separator: str | None = None,
    threshold: float | None = None,
    source: str = "eval data",
) -> tuple[dict[str, Any], Any, np.ndarray]:
    """Check labels against the model, predict, and compute metrics.

    Single-label metrics include ``calibration``: the model's temperature and ECE, NLL and Brier
    score before (T = 1) and after temperature scaling, with the reliability tables. Multi-label
    decisions use ``threshold`` when given, else the model's saved thresholds, else 0.5.

    Returns:
        ``(metrics, encoded true labels, scores)``.

    Raises:
        InputError: missing labels, or labels the model does not know (naming them).
    """
    parsed = parse_labels(raw_labels, problem_type=predictor.problem_type, separator=label_separator, source=source)
    if predictor.problem_type != REGRESSION:
        check_known_labels(parsed, predictor.labels, source=source)
    y_true = encode_labels(parsed, {name: i for i, name in enumerate(predictor.labels)}, problem_type=predictor.problem_type)
    threshold = check_threshold(threshold)
    scores = predictor.scores(texts)
    if threshold is None:
        threshold = np.asarray(predictor.thresholds) if predictor.thresholds else 0.5
    metrics = compute_metrics(predictor.problem_type, y_true, scores, predictor.labels, threshold=threshold)
    if predictor.problem_type == SINGLE_LABEL and len(scores):
        raw = raw_logits_from_proba(scores, predictor.temperature)
        metrics["calibration"] = calibration_report(raw, y_true, temperature=predictor.temperature)
    if predictor.problem_type == MULTI_LABEL:
        metrics["thresholds"] = dict(zip(predictor.labels, np.broadcast_to(threshold, len(predictor.labels)).tolist()))
    return metrics, y_true, scores


def write_eval_report(
    problem_type: str, metrics: dict[str, Any], y_true: Any, scores: np.ndarray, output_dir: str | os.PathLike
) -> list[str]:
    """Write the plots for ``metrics`` into ``output_dir``; return their file names."""
    return [p.name for p in write_eval_plots(problem_type, metrics, y_true, scores, output_dir)]


def evaluate(
    model: Any,
    data: Any,
    *,
    output_dir: str | os.PathLike | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    label_separator: str | None = None,
    threshold: float | None = None,
    device: Any = None,
    dtype: Any = None,
    max_length: int | None = None,
    batch_tokens: int | None = None,
    base: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a classifier on labelled data; optionally write ``metrics.json`` and plots.

    Args:
        model: a directory written by :func:`t5cls.train` or ``save_pretrained``, a
            :class:`t5cls.Classifier`, or a :class:`t5cls.LabelScorer`.
        data: a .csv/.tsv/.jsonl/.parquet path, a ``datasets.Dataset`` or a pandas DataFrame.
        output_dir: where to write ``metrics.json`` and the plots (confusion matrix,
            regression scatter or per-label F1); nothing is written when None.
        text_column, text_pair_column, label_column: column names.
        label_separator: splits multi-label strings (``","`` by default for multi-label models).
        threshold: multi-label decision threshold for every label; ``None``: the model's saved
            per-label thresholds, else 0.5.
        device, dtype, max_length, batch_tokens: passed to :class:`t5cls.Classifier`.
        base: when ``model`` is a PEFT adapter directory, its base model (see :class:`t5cls.Classifier`).

    Returns:
        The metrics: accuracy, macro_f1, mcc, confusion_matrix and ``calibration`` (ECE, NLL and
        Brier before and after temperature scaling; single-label); micro_f1, macro_f1, exact_match
        and ``thresholds`` (multi-label); pearson, spearman, mse (regression); plus ``n``.

    Raises:
        FileNotFoundError: no such model directory or data file.
        InputError: missing columns, empty data, missing labels, labels the model does not know.

    Example:
        >>> metrics = t5cls.evaluate("my-classifier", "test.csv", output_dir="report")  # doctest: +SKIP
        >>> metrics["accuracy"]  # doctest: +SKIP
        0.91
    """
    check_threshold(threshold)  # options first: they fail before the data and the model are read
    check_int("batch_tokens", batch_tokens, none_ok=True, hint="padded tokens per batch")
    check_max_length(max_length)
    columns = [text_column, label_column] + ([text_pair_column] if text_pair_column else [])
    frame = load_frame(data, name="evaluation", columns=columns, text_columns=[text_column, text_pair_column])
    source = str(data) if isinstance(data, (str, os.PathLike)) else "evaluation data"
    texts = frame_texts(frame, source=source, text_column=text_column, text_pair_column=text_pair_column)
    predictor = load_predictor(model, device=device, dtype=dtype, max_length=max_length, batch_tokens=batch_tokens, base=base)
    metrics, y_true, scores = evaluate_texts(
        predictor, texts, frame[label_column].tolist(), label_separator=label_separator, threshold=threshold, source=source
    )
    if output_dir is not None:
        plots = write_eval_report(predictor.problem_type, metrics, y_true, scores, output_dir)
        report = {
            "model": str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__,
            "data": source,
            "problem_type": predictor.problem_type,
            "labels": predictor.labels,
            "eval": metrics,
            "plots": plots,
        }
        write_json(report, Path(output_dir) / METRICS_FILE)
    return metrics


def fit_scaling(predictor: Predictor, texts: Sequence[TextInput], y_true: Any, *, source: str = "eval data") -> dict[str, Any]:
    """Fit the temperature (single-label) or per-label thresholds (multi-label) of a classifier.

    The fitted value is set on the model's config in memory (the forward uses it from the next
    call on); :func:`save_scaling` writes it to a directory. The predictor's probabilities are
    read at the model's current temperature and converted back to T = 1.

    Returns:
        ``{"temperature", "before", "after"}`` (NLL, ECE, Brier on ``texts``) or ``{"thresholds"}``.

    Raises:
        InputError: a regression model, or labels with one class only.
    """
    if predictor.problem_type == REGRESSION or predictor.template is not None:
        raise InputError("Temperatures and thresholds are fitted for classifiers (single- or multi-label), not regression or text-to-text models.")
    if getattr(predictor.model, "backend", "torch") != "torch":
        raise InputError(
            "The temperature is applied inside the model's forward, which an ONNX export has baked in; calibrate the "
            "classifier directory (torch weights), then export it again."
        )
    check_fit_labels(y_true, problem_type=predictor.problem_type, source=source, labels=predictor.labels)
    config = predictor.model.config
    scores = predictor.scores(texts)
    if predictor.problem_type == MULTI_LABEL:
        thresholds = fit_thresholds(scores, np.asarray(y_true))
        config.thresholds = thresholds
        predictor.thresholds = thresholds
        return {"thresholds": dict(zip(predictor.labels, thresholds))}
    raw = raw_logits_from_proba(scores, predictor.temperature)
    temperature = fit_temperature(raw, y_true)
    config.temperature = temperature
    predictor.temperature = temperature
    report = calibration_report(raw, y_true, temperature=temperature)
    return {"temperature": temperature, "before": report["before"], "after": report["after"]}


def save_scaling(model_dir: str | os.PathLike, fitted: dict[str, Any]) -> None:
    """Write what :func:`fit_scaling` fitted into ``model_dir/config.json`` (nothing else changes)."""
    from .loading import update_config_file

    updates: dict[str, Any] = {}
    if "temperature" in fitted:
        updates["temperature"] = fitted["temperature"]
    if "thresholds" in fitted:
        updates["thresholds"] = list(fitted["thresholds"].values())
    update_config_file(model_dir, updates)


def calibrate(
    model: str | os.PathLike,
    data: Any,
    *,
    output_dir: str | os.PathLike | None = None,
    in_place: bool = False,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    label_separator: str | None = None,
    device: Any = None,
    max_length: int | None = None,
    batch_tokens: int | None = None,
) -> dict[str, Any]:
    """Fit an existing classifier's temperature (single-label) or per-label thresholds (multi-label).

    Fitting changes no prediction of a single-label model, only its probabilities: the fitted
    temperature minimises the NLL on ``data`` (use held-out data, not the training set).

    Args:
        model: a classifier directory (torch weights; export to ONNX afterwards).
        data: labelled data: a .csv/.tsv/.jsonl/.parquet path, a ``datasets.Dataset`` or a DataFrame.
        output_dir: write a calibrated copy of the model here (must not exist or be empty).
        in_place: update ``model/config.json`` instead. Exactly one of the two.
        text_column, text_pair_column, label_column, label_separator: as for :func:`evaluate`.
        device, max_length, batch_tokens: passed to :class:`t5cls.Classifier`.

    Returns:
        ``{"temperature", "before", "after", "n", "model_dir"}`` (NLL, ECE and Brier before and
        after, on ``data``), or ``{"thresholds", "n", "model_dir"}`` for a multi-label model.

    Raises:
        InputError: both or neither of ``output_dir`` / ``in_place``, a regression model, one class only.

    Example:
        >>> t5cls.calibrate("clf", "dev.csv", in_place=True)["temperature"]  # doctest: +SKIP
        1.84
    """
    if (output_dir is None) == (not in_place):
        raise InputError("Say where the calibrated model goes: output_dir=DIR (--output DIR) or in_place=True (--in-place), one of them.")
    if output_dir is not None:
        out = Path(output_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(f"Output directory {str(out)!r} exists and is not empty; pick another, or use in_place=True.")
    columns = [text_column, label_column] + ([text_pair_column] if text_pair_column else [])
    frame = load_frame(data, name="calibration", columns=columns)
    source = str(data) if isinstance(data, (str, os.PathLike)) else "calibration data"
    texts = frame_texts(frame, source=source, text_column=text_column, text_pair_column=text_pair_column)
    predictor = load_predictor(model, device=device, max_length=max_length, batch_tokens=batch_tokens)
    if predictor.problem_type == REGRESSION or predictor.template is not None:
        raise InputError(f"{str(model)!r} is a {predictor.problem_type if predictor.template is None else 'text-to-text'} model; "
                         "calibrate fits single-label temperatures and multi-label thresholds.")
    parsed = parse_labels(frame[label_column].tolist(), problem_type=predictor.problem_type, separator=label_separator, source=source)
    check_known_labels(parsed, predictor.labels, source=source)
    y_true = encode_labels(parsed, {name: i for i, name in enumerate(predictor.labels)}, problem_type=predictor.problem_type)
    fitted = fit_scaling(predictor, texts, y_true, source=source)
    target = Path(model)
    if output_dir is not None:
        target = Path(output_dir)
        if target.exists():
            target.rmdir()  # empty, checked above
        shutil.copytree(model, target)
    save_scaling(target, fitted)
    return {**fitted, "n": len(texts), "model_dir": str(target)}


__all__ = [
    "evaluate",
    "calibrate",
    "fit_scaling",
    "save_scaling",
    "evaluate_texts",
    "load_frame",
    "frame_texts",
    "load_predictor",
    "Predictor",
    "classifier_predictor",
    "text2text_predictor",
    "prompts",
    "check_template",
    "write_eval_report",
    "TEXT2TEXT_FILE",
    "DEFAULT_TEMPLATE",
    "DEFAULT_PAIR_TEMPLATE",
]
