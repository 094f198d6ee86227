"""ZeroShotClassifier: NLI zero-shot classification with any 3-way NLI sequence classifier.

Each (text, candidate label) pair becomes one NLI example, "premise = text, hypothesis =
template(label)", and the entailment logit says how well the label fits (REFERENCE.md §5). The
scores are transformers' ``pipeline("zero-shot-classification")``'s, computed faster: all pairs of
a call go through :class:`t5cls.Classifier` as (premise, hypothesis) pairs, so they are tokenised
once, sorted by length and packed into batches by a token budget, instead of one padded batch of
``batch_size`` pairs at a time in input order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from .batching import DEFAULT_BATCH_TOKENS
from .devices import QUANTIZATIONS, default_device, default_dtype
from .errors import InputError, InputTypeError, check_bool, check_choice, check_int, check_max_length, check_number
from .inference import Classifier
from .inputs import as_text_list
from .labels import check_labels
from .loading import inspect_model, load_classifier_model, load_tokenizer, wrong_kind
from .temperature import check_min_score
from .windows import aggregate_windows, check_aggregate, check_long_inputs, check_window

DEFAULT_TEMPLATE = "This example is {}."


@dataclass(frozen=True)
class ZeroShotPreset:
    """How one use of zero-shot NLI turns an input into a premise and a label into a hypothesis.

    Attributes:
        name: the preset's name (``ZeroShotClassifier(...)(texts, preset=name)``, ``--preset``).
        hypothesis_template: the hypothesis, with ``{}`` where the label goes.
        premise_template: ``None`` when the text is the premise; otherwise a format string over
            ``{passage}`` and ``{question}``, and each input is a ``(passage, question)`` pair.
        candidate_labels: labels used when the call names none (``None``: the call must name them).
    """

    name: str
    hypothesis_template: str
    premise_template: str | None = None
    candidate_labels: tuple[str, ...] | None = None

    def premise(self, item: Any) -> str:
        """The premise for one input (a text, or a ``(passage, question)`` pair)."""
        if self.premise_template is None:
            return item
        passage, question = item
        return self.premise_template.format(passage=passage, question=question)


# The four uses the seed checkpoint (REFERENCE.md §1) was published for; examples in the README.
PRESETS: dict[str, ZeroShotPreset] = {
    preset.name: preset
    for preset in (
        # Labels are topics: "sports", "politics", "science and technology".
        ZeroShotPreset("topic", "This text is about {}."),
        # Labels are verb phrases: "book a flight", "cancel my order", "talk to a human".
        ZeroShotPreset("intent", "The user wants to {}."),
        # The passage and the question together are the premise; the label answers the question.
        ZeroShotPreset(
            "boolean-qa",
            "The answer is {}.",
            premise_template="{passage}\nQuestion: {question}",
            candidate_labels=("yes", "no"),
        ),
        ZeroShotPreset("sentiment", "The sentiment of this text is {}.", candidate_labels=("positive", "negative")),
    )
}


def find_label_id(label2id: dict[str, int], prefix: str) -> int | None:
    """The id of the first label that starts with ``prefix`` (case-insensitive), as transformers does."""
    for label, index in label2id.items():
        if str(label).lower().startswith(prefix):
            return int(index)
    return None


def parse_labels(candidate_labels: Any) -> list[str]:
    """A label list from a list of strings or one comma-separated string ("sports, politics").

    Raises:
        InputError: no labels, an empty label, or a label given twice.
        InputTypeError: something other than strings.
    """
    if isinstance(candidate_labels, str):
        labels = [part.strip() for part in candidate_labels.split(",") if part.strip()]
        if not labels:
            raise InputError(f"No candidate labels in {candidate_labels!r}; pass at least one, e.g. ['sports', 'politics'].")
        candidate_labels = labels
    return check_labels(candidate_labels, name="candidate labels", example="['sports', 'politics']")


def check_template(template: str) -> None:
    """Raise an InputError unless ``template`` has a ``{}`` slot for the label."""
    if not isinstance(template, str):
        raise InputTypeError(f"hypothesis_template must be a string with '{{}}' for the label, got {template!r}.")
    try:
        filled = template.format("label")
    except (IndexError, KeyError, ValueError) as exc:
        raise InputError(
            f"hypothesis_template {template!r} cannot be filled with a label ({exc!r}); "
            "use one '{}' where the label goes, e.g. 'This example is {}.'"
        ) from exc
    if filled == template:
        raise InputError(
            f"hypothesis_template {template!r} has no '{{}}' for the label; "
            "put '{}' where the label goes, e.g. 'This example is {}.'"
        )


def load_nli_model(
    src: str | Path, *, dtype: torch.dtype | None = None, base: str | os.PathLike | None = None
) -> tuple[PreTrainedModel, Any]:
    """Load an NLI classifier and its tokenizer: a t5cls directory, the published T5ForClassification
    format, any transformers sequence classifier (directory or hub id), or a PEFT adapter over one."""
    info = inspect_model(src, base=base)
    if not info.is_classifier:
        raise wrong_kind(info, "an NLI classifier")
    model = load_classifier_model(info, dtype=dtype)
    return model, load_tokenizer(info, what="ZeroShotClassifier(model, tokenizer)")


class ZeroShotClassifier:
    """Zero-shot classification with an NLI model: scores of "text entails template(label)".

    Scores are those of transformers' ``pipeline("zero-shot-classification")`` with the same model
    and template: single-label, a softmax of the entailment logits across a text's labels;
    multi-label (and any call with one label), per label a softmax over [contradiction,
    entailment]. The entailment and contradiction ids come from the model's ``label2id``
    (labels starting with "entail" / "contradict", any case); no index is assumed. A pair longer
    than ``max_length`` has its premise truncated (``truncation="only_first"``, as the pipeline
    does; the hypothesis stays whole), or, with ``long_inputs="chunk"``, its premise read in
    overlapping windows, each paired with the whole hypothesis: a window's label scores are
    computed as above and the text's are their mean (``aggregate="mean"``) or per-label max
    (``"max"``, renormalised to sum to 1 when single-label). All labels of a text share its
    windows (sized for its longest hypothesis).

    Args:
        model: an NLI model directory or hub id (a t5cls classifier, the published
            T5ForClassification format, or any transformers sequence classifier trained on NLI),
            or a loaded model.
        tokenizer: the tokenizer, when ``model`` is an object (loaded from ``model`` otherwise).
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to bf16 on CUDA, fp32 on CPU.
        quantize: ``None`` or ``"int8"``: run the NLI model through :class:`t5cls.Classifier`'s
            ONNX Runtime int8 path (CPU). A t5cls directory with ``model_int8.onnx`` (from
            ``t5cls export --int8``) is used as it is; any other model is exported once, at start.
        max_length: most tokens per (premise, hypothesis) pair (defaults to the tokenizer's maximum).
        batch_tokens: most padded tokens per batch.
        long_inputs: ``"truncate"`` (default) or ``"chunk"`` (windows of the premise); per call too.
        stride: with ``"chunk"``, tokens of overlap between consecutive windows (smaller than
            ``max_length``); default a quarter of the window.
        aggregate: with ``"chunk"``, ``"mean"`` or ``"max"`` over the windows' label scores.
        base: for a PEFT adapter directory (such as the adapters published over
            flan-t5-xxl-classif-3way), its base model (default: the adapter's
            ``base_model_name_or_path``); the adapter is merged into it.

    ``model`` may also be a :class:`t5cls.Classifier` over an NLI model: its batching and backend
    (torch or ONNX, fp32 or int8) are shared, not copied.

    Raises:
        InputError: the model has no entailment label, or no tokenizer was given with a model object.

    Example:
        >>> zs = ZeroShotClassifier("flan-t5-xxl-classif-3way")  # doctest: +SKIP
        >>> zs("The striker scored twice.", ["sports", "politics"])  # doctest: +SKIP
        {'sequence': 'The striker scored twice.', 'labels': ['sports', 'politics'], 'scores': [0.97, 0.03], 'label': 'sports'}
    """

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        tokenizer: Any = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        quantize: str | None = None,
        max_length: int | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        long_inputs: str = "truncate",
        stride: int | None = None,
        aggregate: str = "mean",
        base: str | os.PathLike | None = None,
    ):
        check_max_length(max_length)
        check_int("batch_tokens", batch_tokens, hint="padded tokens per batch")
        check_choice("quantize", quantize, QUANTIZATIONS)
        check_long_inputs(long_inputs)
        check_aggregate(aggregate)
        if base is not None and not isinstance(model, (str, os.PathLike)):
            raise InputError(f"base={base!r} goes with a PEFT adapter directory, not with a loaded {type(model).__name__}.")
        classifier: Classifier | None = model if isinstance(model, Classifier) else None
        info = inspect_model(model, base=base) if classifier is None and isinstance(model, (str, os.PathLike)) else None
        if info is not None and (quantize or info.kind == "onnx"):
            # Classifier's own ONNX path: an export's model_int8.onnx (or model.onnx), else export (and quantise) once.
            classifier = Classifier(info, tokenizer, device=device, quantize=quantize, max_length=max_length, batch_tokens=batch_tokens)
        elif info is not None:
            # Loaded in the dtype it will run in; Classifier moves it to the device.
            run_dtype = torch.float32 if quantize else default_dtype(default_device(device), dtype)
            model, loaded_tokenizer = load_nli_model(info, dtype=run_dtype)
            tokenizer = tokenizer or loaded_tokenizer
        elif classifier is None and tokenizer is None:
            raise InputError("Pass the tokenizer with the model: ZeroShotClassifier(model, tokenizer).")
        config = classifier.config if classifier is not None else model.config
        label2id = dict(config.label2id or {})
        self.entailment_id = find_label_id(label2id, "entail")
        if self.entailment_id is None:
            raise InputError(
                f"The model's labels {label2id} have no entailment label, so it cannot score hypotheses. "
                "Use an NLI model, or name its labels: set model.config.label2id / id2label (e.g. "
                "{'entailment': 0, 'neutral': 1, 'contradiction': 2}) and pass (model, tokenizer)."
            )
        self.contradiction_id = find_label_id(label2id, "contradict")
        if self.contradiction_id is None and len(label2id) == 2:
            # Two-way NLI ("entailment" / "not_entailment"): the other label is the "no".
            self.contradiction_id = 1 - self.entailment_id
        # Tokenising, length-sorted token-budget batching and input order: the one shared path.
        if classifier is None:
            classifier = Classifier(
                model, tokenizer, device=device, dtype=None if quantize else dtype, quantize=quantize,
                max_length=max_length, batch_tokens=batch_tokens,
            )  # fmt: skip
        self.classifier = classifier
        self.config = config
        self.model = classifier.model  # None on the ONNX backend
        self.tokenizer = classifier.tokenizer
        self.quantize = classifier.quantize
        if stride is not None:
            check_window(classifier.max_length, stride)
        self.long_inputs = long_inputs
        self.stride = stride
        self.aggregate = aggregate

    def __call__(
        self,
        texts: Any,
        candidate_labels: Any = None,
        *,
        hypothesis_template: str | None = None,
        multi_label: bool = False,
        threshold: float | None = None,
        preset: str | ZeroShotPreset | None = None,
        min_score: float | None = None,
        long_inputs: str | None = None,
        stride: int | None = None,
        aggregate: str | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Classify ``texts`` among ``candidate_labels``.

        Args:
            texts: a string or a list of strings (``(passage, question)`` pairs for ``preset="boolean-qa"``).
            candidate_labels: the labels for every text (a list, or one comma-separated string), or
                one label list per text; defaults to the preset's labels where it has them.
            hypothesis_template: the hypothesis with ``{}`` for the label; defaults to the preset's,
                else ``"This example is {}."``.
            multi_label: score each label on its own (entailment vs contradiction) instead of
                sharing the probability across labels.
            threshold: when the best score is below it, ``"label"`` is ``None`` ("none of these").
            preset: ``"topic"``, ``"intent"``, ``"boolean-qa"``, ``"sentiment"`` (see ``PRESETS``) or
                a :class:`ZeroShotPreset`.
            min_score: the same as ``threshold`` (the name :class:`t5cls.Classifier` uses); give one.
            long_inputs, stride, aggregate: this call's long-input handling (default: the classifier's).

        Returns:
            Per text a dict, as transformers' pipeline returns it, plus the decision:
            ``{"sequence": text, "labels": [...], "scores": [...], "label": best or None}`` with
            labels sorted by score, best first, and ``"windows"`` (how many) when chunking. One
            dict for one text, else a list.

        Raises:
            InputError: no labels, an empty or repeated label, a template without ``{}``, a
                threshold outside [0, 1], an unknown preset, or label lists that do not match the texts.
            InputTypeError: an input that is not a string (or pair, for boolean QA).
        """
        preset = self._preset(preset)
        template = preset.hypothesis_template if hypothesis_template is None else hypothesis_template
        check_template(template)
        check_number("threshold", threshold, minimum=0.0, maximum=1.0, none_ok=True, hint="None for no threshold")
        check_bool("multi_label", multi_label)
        min_score = check_min_score(min_score)
        if min_score is not None:
            if threshold is not None and threshold != min_score:
                raise InputError(f"threshold={threshold} and min_score={min_score} are the same setting; give one.")
            threshold = min_score
        long_inputs = self.long_inputs if long_inputs is None else check_long_inputs(long_inputs)
        aggregate = self.aggregate if aggregate is None else check_aggregate(aggregate)
        stride = self.stride if stride is None else stride
        if stride is not None:
            check_window(self.classifier.max_length, stride)
        items, single = as_text_list(texts, allow_pairs=preset.premise_template is not None)
        if preset.premise_template is not None and any(isinstance(item, str) for item in items):
            raise InputTypeError(f"The {preset.name!r} preset takes (passage, question) pairs, not single strings.")
        label_sets = self._label_sets(candidate_labels, preset, len(items), single)

        premises = [preset.premise(item) for item in items]
        pairs = [(premise, template.format(label)) for premise, labels in zip(premises, label_sets) for label in labels]
        chunk = long_inputs == "chunk"
        if chunk:
            logits, windows = self._window_logits(pairs, label_sets, template=template, stride=stride)
        else:
            logits, windows = torch.from_numpy(self.logits(pairs)), [1] * len(items)  # (pairs, num_nli_labels)

        results = []
        start = 0
        for item, labels, count in zip(items, label_sets, windows):
            rows = logits[start : start + len(labels) * count]  # (labels * windows, num_nli_labels), label-major
            start += len(labels) * count
            by_window = rows.reshape(len(labels), count, -1).transpose(0, 1)  # (windows, labels, num_nli_labels)
            one_each = multi_label or len(labels) == 1
            window_scores = np.stack([self._scores(w, multi_label=one_each) for w in by_window])  # (windows, labels)
            scores = aggregate_windows(window_scores, [count], how=aggregate, renormalize=not one_each)[0]
            order = sorted(range(len(labels)), key=lambda j: -scores[j])
            best = float(scores[order[0]])
            result = {
                "sequence": item,
                "labels": [labels[j] for j in order],
                "scores": [float(scores[j]) for j in order],
                "label": labels[order[0]] if threshold is None or best >= threshold else None,
            }
            if chunk:
                result["windows"] = count
            results.append(result)
        return results[0] if single else results

    @staticmethod
    def records(results: Sequence[dict[str, Any]], *, flat: bool = False) -> list[dict[str, Any]]:
        """Output rows for results of :meth:`__call__` (what ``t5cls zero-shot`` writes after the input), one per text.

        Args:
            results: what :meth:`__call__` returned for a list of texts.
            flat: one column per label (``label``, ``score`` of the best label, ``score_<label>``), as
                the CLI's CSV/TSV output; otherwise ``labels`` and ``scores`` (best first) and
                ``label``, as its JSON lines; both with ``windows`` when the call chunked long texts.
        """
        if flat:
            return [
                {"label": r["label"], "score": r["scores"][0]}
                | ({"windows": r["windows"]} if "windows" in r else {})
                | {f"score_{label}": score for label, score in zip(r["labels"], r["scores"])}
                for r in results
            ]
        return [{key: value for key, value in r.items() if key != "sequence"} for r in results]

    def _window_logits(
        self, pairs: list[tuple[str, str]], label_sets: list[list[str]], *, template: str, stride: int | None
    ) -> tuple[torch.Tensor, list[int]]:
        """NLI logits of every (premise window, hypothesis) pair, label-major per text, and windows per text.

        A text's windows are the same for all its labels: sized for the longest of its hypotheses.
        """
        clf = self.classifier
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        hypotheses = sorted({template.format(label) for labels in label_sets for label in labels})
        lengths = dict(zip(hypotheses, (len(ids) for ids in self.tokenizer(hypotheses, add_special_tokens=False)["input_ids"])))
        sizes = []
        for labels in label_sets:
            size = clf.max_length - specials - max(lengths[template.format(label)] for label in labels)
            sizes.extend([size] * len(labels))
        rows, _, per_pair = clf.encode(pairs, chunk=True, stride=stride, window_sizes=sizes)
        windows, start = [], 0
        for labels in label_sets:
            windows.append(per_pair[start])  # the same for every label of the text
            start += len(labels)
        return torch.from_numpy(clf.logits_from_ids(rows)), windows

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """NLI logits ``(n, num_nli_labels)`` of (premise, hypothesis) pairs, in input order."""
        # Only the premise is cut, never the hypothesis, as transformers' zero-shot pipeline does.
        return self.classifier.logits(list(pairs), truncation="only_first")

    def _scores(self, rows: torch.Tensor, *, multi_label: bool) -> np.ndarray:
        """Label scores from one text's NLI logits ``rows`` (labels, num_nli_labels)."""
        if not multi_label:
            return torch.softmax(rows[:, self.entailment_id], dim=0).numpy()
        if self.contradiction_id is None:
            labels = dict(self.config.label2id)
            raise InputError(
                f"Multi-label scores (and calls with one label) need a contradiction label, and the model's labels "
                f"{labels} have none; pass two or more labels with multi_label=False, or name the model's labels."
            )
        pair = rows[:, [self.contradiction_id, self.entailment_id]]  # (labels, 2)
        return torch.softmax(pair, dim=1)[:, 1].numpy()

    @staticmethod
    def _preset(preset: str | ZeroShotPreset | None) -> ZeroShotPreset:
        if preset is None:
            return ZeroShotPreset("default", DEFAULT_TEMPLATE)
        if isinstance(preset, ZeroShotPreset):
            return preset
        if preset not in PRESETS:
            raise InputError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)} or pass a ZeroShotPreset.")
        return PRESETS[preset]

    @staticmethod
    def _label_sets(candidate_labels: Any, preset: ZeroShotPreset, n: int, single: bool) -> list[list[str]]:
        """One label list per text, from shared labels or per-text lists."""
        if candidate_labels is None:
            if preset.candidate_labels is None:
                raise InputError("No candidate_labels; pass the labels, e.g. ['sports', 'politics'] or 'sports,politics'.")
            candidate_labels = list(preset.candidate_labels)
        per_text = (
            not isinstance(candidate_labels, str)
            and isinstance(candidate_labels, Sequence)
            and len(candidate_labels) > 0
            and all(not isinstance(labels, str) and isinstance(labels, Sequence) for labels in candidate_labels)
        )
        if not per_text:
            return [parse_labels(candidate_labels)] * n
        if len(candidate_labels) != n:
            what = "1 text" if single else f"{n} texts"
            raise InputError(
                f"Got {len(candidate_labels)} label lists for {what}; pass one list per text, or one list for all."
            )
        return [parse_labels(labels) for labels in candidate_labels]


__all__ = ["ZeroShotClassifier", "ZeroShotPreset", "PRESETS", "DEFAULT_TEMPLATE", "check_template", "find_label_id", "parse_labels"]
