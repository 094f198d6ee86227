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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError, InputTypeError, check_int, check_max_length, check_threshold
from .inputs import TextInput, read_table, require_columns, text_column_values
from .labels import REGRESSION, check_known_labels, encode_labels, parse_labels
from .metrics import compute_metrics
from .reports import METRICS_FILE, write_eval_plots, write_json

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

    def __init__(self, model: Any, *, problem_type: str, labels: list[str], template: str | None = None):
        self.model = model
        self.problem_type = problem_type
        self.labels = labels
        self.template = template  # text-to-text only

    def scores(self, texts: Sequence[TextInput]) -> np.ndarray:
        """``(n, num_labels)`` probabilities, or predicted values for regression."""
        if self.template is not None:
            return np.asarray(self.model.predict_proba(prompts(texts, self.template)))
        return np.asarray(self.model.predict_proba(list(texts)))


def classifier_predictor(classifier: Any) -> Predictor:
    """A :class:`Predictor` around a :class:`t5cls.Classifier`."""
    return Predictor(classifier, problem_type=classifier.config.problem_type, labels=list(classifier.labels))


def text2text_predictor(model: Any, tokenizer: Any, *, labels: Sequence[str], template: str, **kwargs: Any) -> Predictor:
    """A :class:`Predictor` scoring ``labels`` with :class:`t5cls.LabelScorer` on a seq2seq model."""
    from .scoring import LabelScorer  # written beside this module; imported only when used

    # Prompts are filled here (sentence pairs included), so the scorer sees them as they are.
    scorer = LabelScorer((model, tokenizer), labels=list(labels), template="{text}", **kwargs)
    return Predictor(scorer, problem_type="single_label_classification", labels=list(labels), template=template)


def load_predictor(
    model: Any, *, device: Any = None, dtype: Any = None, max_length: int | None = None, batch_tokens: int | None = None
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
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from .inference import default_device, default_dtype

        info = json.loads(marker.read_text())
        target = default_device(device)
        seq2seq = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=default_dtype(target, dtype)).to(target).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        return text2text_predictor(seq2seq, tokenizer, labels=info["labels"], template=info["template"])
    return classifier_predictor(Classifier(path, device=device, dtype=dtype, **options))


def evaluate_texts(
    predictor: Predictor,
    texts: Sequence[TextInput],
    raw_labels: Sequence[Any],
    *,
    label_separator: str | None = None,
    threshold: float = 0.5,
    source: str = "eval data",
) -> tuple[dict[str, Any], Any, np.ndarray]:
    """Check labels against the model, predict, and compute metrics.

    Returns:
        ``(metrics, encoded true labels, scores)``.

    Raises:
        InputError: missing labels, or labels the model does not know (naming them).
    """
    parsed = parse_labels(raw_labels, problem_type=predictor.problem_type, separator=label_separator, source=source)
    if predictor.problem_type != REGRESSION:
        check_known_labels(parsed, predictor.labels, source=source)
    y_true = encode_labels(parsed, {name: i for i, name in enumerate(predictor.labels)}, problem_type=predictor.problem_type)
    scores = predictor.scores(texts)
    metrics = compute_metrics(predictor.problem_type, y_true, scores, predictor.labels, threshold=threshold)
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
    threshold: float = 0.5,
    device: Any = None,
    dtype: Any = None,
    max_length: int | None = None,
    batch_tokens: int | None = None,
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
        threshold: multi-label decision threshold.
        device, dtype, max_length, batch_tokens: passed to :class:`t5cls.Classifier`.

    Returns:
        The metrics: accuracy, macro_f1, mcc, confusion_matrix (single-label); micro_f1, macro_f1,
        exact_match (multi-label); pearson, spearman, mse (regression); plus ``n``.

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
    predictor = load_predictor(model, device=device, dtype=dtype, max_length=max_length, batch_tokens=batch_tokens)
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


__all__ = [
    "evaluate",
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
