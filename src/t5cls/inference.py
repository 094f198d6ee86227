"""Classifier: batched, length-sorted prediction with a T5 classifier (or any sequence classifier).

Every prediction (Python, CLI, server) goes through :meth:`Classifier.logits`: tokenise, sort by
length, pack batches to a padded-token budget, run the model under ``torch.inference_mode()``
(or an ONNX Runtime session), and put the results back in input order.

Why this shape: on CPU a transformer's cost is proportional to the tokens it processes, padding
included. Batches of 32 texts in input order pad every text to the longest of its batch (AG News:
about a third of the work is padding); sorting by length and packing to a token budget brings
padding under a few percent, and large enough batches keep the matmuls efficient.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from .allocator import tune_malloc
from .batching import DEFAULT_BATCH_TOKENS, PACKED_PADDING_COST, min_padding_batches
from .cpu_linear import linear_kernel, onednn_linear_enabled
from .devices import QUANTIZATIONS, default_device, default_dtype
from .errors import InputError, InputTypeError, check_bool, check_choice, check_int, check_max_length
from .inputs import TextInput, as_text_list
from .loading import ModelInfo, default_max_length, inspect_model, load_classifier_model, load_config, load_tokenizer, wrong_kind
from .temperature import DEFAULT_THRESHOLD, check_min_score, check_threshold
from .windows import aggregate_windows, check_aggregate, check_long_inputs, check_window, token_windows

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
# Inputs per chunk when streaming: enough to sort well, little enough to keep memory flat.
DEFAULT_CHUNK_SIZE = 2048
# Auto progress bar: only when there are more batches than this.
_PROGRESS_MIN_BATCHES = 8
_DEFAULT_TOP_K: Any = object()
_UNSET: Any = object()  # "the Classifier's own setting", where None has a meaning of its own
# Overlap between windows when chunking and no stride is given: a quarter of the window.
DEFAULT_STRIDE_SHARE = 0.25


def load_classifier(
    model_dir: str | Path, *, device: torch.device, dtype: torch.dtype, base: str | os.PathLike | None = None
) -> PreTrainedModel:
    """Load a sequence classifier from any directory that holds one (see :mod:`t5cls.loading`).

    Raises:
        FileNotFoundError: no such directory, or no ``config.json`` in it.
        InputError: the directory holds another kind of model, or only an ONNX export.
    """
    return load_classifier_model(model_dir, base=base, dtype=dtype).to(device).eval()


class _TorchRunner:
    """Logits from a transformers model; inputs are numpy (batch, seq) arrays."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model = model
        self.device = device

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {name: torch.from_numpy(array).to(self.device) for name, array in inputs.items()}
        logits = self.model(**tensors).logits  # (batch, num_labels)
        return logits.float().cpu().numpy()


class _OnnxRunner:
    """Logits from an ONNX Runtime session over a file written by :func:`t5cls.export.export_onnx`."""

    def __init__(self, path: Path, device: torch.device):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError("backend='onnx' needs ONNX Runtime: pip install 't5cls[onnx]'.") from exc

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Same thread count as torch (the user's or the machine's), one op at a time.
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: array for name, array in inputs.items() if name in self.input_names}
        return self.session.run(None, feed)[0].astype(np.float32, copy=False)


def _progress_bar(total: int | None, *, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="text", disable=not enabled)


def _show_progress(show_progress_bar: bool | None, num_batches: int) -> bool:
    if show_progress_bar is False or not sys.stderr.isatty():
        return False
    return bool(show_progress_bar) or num_batches > _PROGRESS_MIN_BATCHES


class Classifier:
    """Predict with a sequence classifier: length-sorted batches under a token budget.

    Works with a saved T5 classifier directory, an ONNX export of one (``backend="onnx"``), or any
    loaded transformers sequence-classification model with its tokenizer.

    Args:
        model: a directory or hub id holding a classifier: one written by ``save_pretrained``,
            ``t5cls convert`` / ``train`` or ``t5cls export``, a published T5ForClassification / EncT5
            directory, any transformers sequence classifier, or a PEFT adapter over one of those
            (see :func:`t5cls.inspect_model`); or a loaded model object (any transformers
            ``...ForSequenceClassification``).
        tokenizer: the tokenizer, when ``model`` is an object (loaded from the directory otherwise).
        base: for a PEFT adapter directory, its base model (default: the adapter's
            ``base_model_name_or_path``); the adapter is merged into it for inference.
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to bf16 on CUDA, fp32 on CPU (torch backend).
        backend: ``"torch"`` or ``"onnx"`` (ONNX Runtime). Defaults to ``"onnx"`` when ``quantize``
            is set or ``model`` is a directory written by ``t5cls export``, else ``"torch"``. A directory without an ONNX file, or a model object, is
            exported to a temporary directory first (``t5cls export`` does it once, ahead of time).
        quantize: ``None`` or ``"int8"``: dynamic int8 quantisation of the matmul weights through
            ONNX Runtime, for CPU (``torch.ao.quantization.quantize_dynamic`` is deprecated).
        max_length: most tokens per model input (defaults to the tokenizer's maximum). Longer
            inputs are truncated (counted and reported once per call as a warning), or read in
            windows with ``long_inputs="chunk"``.
        min_score: single-label models: below this top probability the predicted label is ``None``
            ("none of these"); the probabilities are still returned. ``None``: always the best label.
            Per call too (``predict(..., min_score=...)``). An error for multi-label and regression models.
        long_inputs: ``"truncate"`` (default: an input longer than ``max_length`` is cut) or
            ``"chunk"``: its text is read in overlapping windows of ``max_length`` tokens (a text
            pair's second text stays whole in every window) and the windows' probabilities are
            aggregated. Per call too.
        stride: with ``"chunk"``, tokens of overlap between consecutive windows (smaller than
            ``max_length``); default a quarter of the window.
        aggregate: with ``"chunk"``, ``"mean"`` averages the windows' probability vectors, ``"max"``
            takes each label's largest (single-label: then renormalised to sum to 1).
        batch_tokens: most padded tokens per batch.
        max_batch_size: optional cap on inputs per batch.
        show_progress_bar: ``None`` shows a bar on long inputs when stderr is a terminal;
            ``False`` never; ``True`` whenever stderr is a terminal.

    Raises:
        FileNotFoundError: the model directory or its ONNX file does not exist.
        InputError: the directory holds no classifier, or an unknown backend / quantisation.

    Example:
        >>> clf = Classifier("sst2-classifier")  # doctest: +SKIP
        >>> clf.predict(["a gripping film", "dull"])  # doctest: +SKIP
        ['positive', 'negative']
        >>> clf("a gripping film")  # doctest: +SKIP
        [{'label': 'positive', 'score': 0.97}]
    """

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        tokenizer: Any = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        backend: str | None = None,
        quantize: str | None = None,
        max_length: int | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        min_score: float | None = None,
        long_inputs: str = "truncate",
        stride: int | None = None,
        aggregate: str = "mean",
        base: str | os.PathLike | None = None,
    ):
        check_long_inputs(long_inputs)
        check_aggregate(aggregate)
        check_choice("quantize", quantize, QUANTIZATIONS)
        by_name = isinstance(model, (str, os.PathLike, ModelInfo))
        if base is not None and not by_name:
            raise InputError(f"base={base!r} goes with a PEFT adapter directory, not with a loaded {type(model).__name__}.")
        info = inspect_model(model, base=base) if by_name else None
        if backend is None:
            backend = "onnx" if quantize or (info is not None and info.kind == "onnx") else "torch"
        check_choice("backend", backend, BACKENDS)
        if quantize and backend == "torch":
            raise InputError(
                "quantize='int8' runs through ONNX Runtime; use backend='onnx' (or leave backend unset). "
                "torch.ao.quantization.quantize_dynamic is deprecated."
            )
        check_int("batch_tokens", batch_tokens, hint="padded tokens per batch")
        check_int("max_batch_size", max_batch_size, none_ok=True)
        check_max_length(max_length)
        if show_progress_bar is not None:
            check_bool("show_progress_bar", show_progress_bar)
        self.device = default_device(device)
        self.dtype = default_dtype(self.device, dtype)
        self.backend = backend
        self.quantize = quantize
        self.model: PreTrainedModel | None = None
        self._export_dir: tempfile.TemporaryDirectory | None = None
        if info is not None:
            if not info.is_classifier and info.kind != "onnx":
                raise wrong_kind(info, "a T5 classifier (or any sequence classifier)")
            if info.kind == "onnx" and backend == "torch":
                raise wrong_kind(info, "a torch classifier (backend='torch')")
            tokenizer = tokenizer or load_tokenizer(info, what="Classifier(model, tokenizer)")
            if backend == "torch":
                self.model = load_classifier(info, device=self.device, dtype=self.dtype)
                self.config = self.model.config
        else:
            if tokenizer is None:
                raise InputError("Pass the tokenizer with the model: Classifier(model, tokenizer).")
            if not hasattr(model, "config") or not callable(model):
                raise InputTypeError(f"model must be a directory or a transformers model, got {type(model).__name__}.")
            self.config = model.config
            if backend == "torch":
                self.model = model.to(self.device).eval()
        if backend == "torch":
            self._run = _TorchRunner(self.model, self.device)
            if self.device.type == "cpu":
                tune_malloc()  # activations reuse freed heap memory instead of faulting in new pages
                onednn_linear_enabled()  # a bad T5CLS_ONEDNN_LINEAR fails here, not at the first batch
        else:
            onnx_file = self._onnx_file(model, tokenizer, info)
            self._run = _OnnxRunner(onnx_file, self.device)
            if info is not None:
                # An export directory carries the config it was exported with; a temporary export has
                # the model's own.
                exported = getattr(self, "_exported_config", None)
                self.config = exported if exported is not None else load_config(info)
        self.tokenizer = tokenizer
        self.labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        self.problem_type = self.config.problem_type or (
            "regression" if self.config.num_labels == 1 else "single_label_classification"
        )
        self.max_length = default_max_length(tokenizer, max_length)
        if stride is not None:
            check_window(self.max_length, stride)
        self.min_score = check_min_score(min_score, problem_type=self.problem_type)
        self.long_inputs = long_inputs
        self.stride = stride
        self.aggregate = aggregate
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.show_progress_bar = show_progress_bar
        # Tokenizers such as BERT's also return token_type_ids; T5's return only these two.
        self._input_names = list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"]))

    def _onnx_file(self, model: Any, tokenizer: Any, info: Any) -> Path:
        from .export import ONNX_FILE, ONNX_INT8_FILE, export_onnx, quantize_int8

        name = ONNX_INT8_FILE if self.quantize else ONNX_FILE
        if info is not None and (info.path / name).is_file():
            return info.path / name
        if info is not None and self.quantize and (info.path / ONNX_FILE).is_file():
            # An fp32 export is there: quantise it (seconds), no need to re-export.
            self._export_dir = tempfile.TemporaryDirectory(prefix="t5cls-onnx-")
            return quantize_int8(info.path / ONNX_FILE, Path(self._export_dir.name) / name)
        if info is not None and info.kind == "onnx":
            raise FileNotFoundError(f"{info.source!r} is an ONNX export without {name}; export it again with `t5cls export` (--int8 for {ONNX_INT8_FILE}).")
        logger.info("Exporting the model to ONNX for backend='onnx' (run `t5cls export` once to skip this).")
        source = load_classifier(info, device=torch.device("cpu"), dtype=torch.float32) if info is not None else model
        self._exported_config = source.config
        self._export_dir = tempfile.TemporaryDirectory(prefix="t5cls-onnx-")
        out = Path(self._export_dir.name) / "export"
        export_onnx(source, out, tokenizer=tokenizer, int8=bool(self.quantize))
        return out / name

    # --- tokenising and batching ---------------------------------------------------------

    def encode(
        self, items: list[TextInput], *, chunk: bool = False, stride: int | None = None, window_sizes: list[int] | None = None,
        truncation: str = "longest_first",
    ) -> tuple[list[dict[str, list[int]]], int, list[int] | None]:
        """Model inputs per item (token ids and the tokenizer's other inputs), as :meth:`logits_from_ids` takes them.

        Returns ``(rows, truncated, windows)``. Without ``chunk``: one row per item, truncated to
        ``max_length`` (``truncated`` counts them) and ``windows`` is None. With ``chunk``: an
        item's text (the first of a pair) is split into overlapping windows, each row one window
        with everything else of the item (special tokens, the pair's second text) whole, and
        ``windows`` says how many rows each item has. ``window_sizes``: per item, the tokens its
        text's windows may take (default: what ``max_length`` leaves beside the rest of the item).
        ``truncation``: how a pair is cut, ``"longest_first"`` (the tokenizer's default) or
        ``"only_first"`` (the premise only, as transformers' zero-shot pipeline does).
        """
        firsts = [item if isinstance(item, str) else item[0] for item in items]
        pairs = [not isinstance(item, str) for item in items]
        if any(pairs) and not all(pairs):
            raise InputTypeError("Mix of single texts and (text, text_pair) tuples in one call; pass one kind.")
        seconds = [item[1] for item in items] if all(pairs) else None
        encoded = self.tokenizer(firsts, seconds, add_special_tokens=True, return_attention_mask=False)
        names = [n for n in self._input_names if n in encoded and n != "attention_mask"]
        rows = [{name: encoded[name][i] for name in names} for i in range(len(items))]
        if chunk:
            out: list[dict[str, list[int]]] = []
            windows = []
            for i, row in enumerate(rows):
                pieces = self._windows(encoded, i, row, size=window_sizes[i] if window_sizes else None, stride=stride)
                out.extend(pieces)
                windows.append(len(pieces))
            return out, 0, windows
        too_long = [i for i, row in enumerate(rows) if len(row["input_ids"]) > self.max_length]
        if too_long:
            # Re-tokenise only those, with the tokenizer's own truncation: it keeps the special
            # tokens and, for pairs, trims the longer text (or only the first) instead of cutting the hypothesis.
            args = ([firsts[i] for i in too_long], [seconds[i] for i in too_long] if seconds is not None else None)
            options = dict(add_special_tokens=True, return_attention_mask=False, max_length=self.max_length)
            try:
                again = self.tokenizer(*args, truncation=truncation if seconds is not None else True, **options)
            except Exception as exc:
                if "too short" not in str(exc):
                    raise
                # As transformers' zero-shot pipeline does when the hypothesis alone is too long: no truncation.
                again = self.tokenizer(*args, truncation=False, add_special_tokens=True, return_attention_mask=False)
            for j, i in enumerate(too_long):
                rows[i] = {name: again[name][j] for name in names}
        return rows, len(too_long), None

    def _windows(self, encoded: Any, index: int, row: dict[str, list[int]], *, size: int | None, stride: int | None) -> list[dict[str, list[int]]]:
        """The windows of one encoded item: its first text's tokens in windows, the rest whole in each."""
        try:
            sequence_ids = encoded.sequence_ids(index)
        except (ValueError, AttributeError) as exc:
            raise InputError(f"long_inputs='chunk' needs a fast (tokenizers-backed) tokenizer, not {type(self.tokenizer).__name__}.") from exc
        text_positions = [p for p, seq in enumerate(sequence_ids) if seq == 0]
        length = len(row["input_ids"])
        if not text_positions:
            return [row]
        a, b = text_positions[0], text_positions[-1] + 1  # the text's tokens: row[a:b]
        rest = length - (b - a)
        if size is None:
            if length <= self.max_length:
                return [row]
            size = self.max_length - rest
        if b - a <= size:
            return [row]
        if size < 1:
            raise InputError(
                f"The rest of an input (special tokens and the second text or hypothesis) takes {rest} of max_length={self.max_length} "
                "tokens, leaving none for windows of the text; raise max_length or shorten the second text."
            )
        window_stride = int(size * DEFAULT_STRIDE_SHARE) if stride is None else stride
        pieces = []
        for positions in token_windows(range(a, b), size=size, stride=window_stride):
            pieces.append({name: ids[:a] + [ids[p] for p in positions] + ids[b:] for name, ids in row.items()})
        return pieces

    def _warn_truncated(self, truncated: int, total: int) -> None:
        if truncated:
            logger.warning(
                "%d of %d inputs were longer than max_length=%d tokens and were truncated.",
                truncated,
                total,
                self.max_length,
            )

    def _pad(self, rows: list[dict[str, list[int]]], group: list[int]) -> dict[str, np.ndarray]:
        """One batch as numpy arrays (batch, longest), padded on the right."""
        longest = max(len(rows[i]["input_ids"]) for i in group)
        pad_id = self.tokenizer.pad_token_id or 0
        arrays = {name: np.full((len(group), longest), pad_id if name == "input_ids" else 0, dtype=np.int64) for name in rows[group[0]]}
        attention_mask = np.zeros((len(group), longest), dtype=np.int64)
        for r, index in enumerate(group):
            row = rows[index]
            n = len(row["input_ids"])
            for name, ids in row.items():
                arrays[name][r, :n] = ids
            attention_mask[r, :n] = 1
        arrays["attention_mask"] = attention_mask
        return arrays

    def _padding_cost(self) -> float:
        # A model whose encoder skips padding (t5cls.packed) spends padding only on attention.
        packed = getattr(self.model, "_packed_encoder_applies", None)
        return PACKED_PADDING_COST if packed is not None and packed(None, None) else 1.0

    def _logits(self, items: list[TextInput], bar: Any = None, truncation: str = "longest_first") -> tuple[np.ndarray, int]:
        """Logits in input order and the number of truncated inputs; ``bar``: a tqdm bar to advance."""
        if not items:
            return np.zeros((0, self.config.num_labels), dtype=np.float32), 0
        rows, truncated, _ = self.encode(items, truncation=truncation)
        return self._rows_logits(rows, bar), truncated

    def logits_from_ids(self, rows: Sequence[Mapping[str, Sequence[int]]]) -> np.ndarray:
        """:meth:`logits` of inputs that are already tokenised, in input order.

        For callers that build inputs at the token level (the Reranker's document windows): each
        row maps the tokenizer's input names (``input_ids``, and e.g. ``token_type_ids``) to ids,
        special tokens included; they are used as given, not truncated. Same batching as for text.
        """
        rows = [{name: list(ids) for name, ids in row.items() if name != "attention_mask"} for row in rows]
        if not rows:
            return np.zeros((0, self.config.num_labels), dtype=np.float32)
        return self._rows_logits(rows, None)

    def _rows_logits(self, rows: list[dict[str, list[int]]], bar: Any) -> np.ndarray:
        groups = min_padding_batches(
            [len(row["input_ids"]) for row in rows],
            batch_tokens=self.batch_tokens,
            max_batch_size=self.max_batch_size,
            padding_cost=self._padding_cost(),
        )
        out = np.zeros((len(rows), self.config.num_labels), dtype=np.float32)
        own_bar = bar is None
        if own_bar:
            bar = _progress_bar(len(rows), enabled=_show_progress(self.show_progress_bar, len(groups)))
        try:
            with torch.inference_mode(), linear_kernel(self.device):
                for group in groups:
                    out[group] = self._run(self._pad(rows, group))
                    bar.update(len(group))
        finally:
            if own_bar:
                bar.close()
        return out

    def long_input_settings(self, long_inputs: str | None, stride: Any, aggregate: str | None) -> tuple[bool, int | None, str]:
        """``(chunk, stride, aggregate)`` for one call: its own settings, else the Classifier's.

        Raises:
            InputError: an unknown ``long_inputs`` or ``aggregate``, or ``stride`` not smaller than ``max_length``.
        """
        long_inputs = self.long_inputs if long_inputs is None else check_long_inputs(long_inputs)
        stride = self.stride if stride is _UNSET or stride is None else stride
        if stride is not None:
            check_window(self.max_length, stride)
        aggregate = self.aggregate if aggregate is None else check_aggregate(aggregate)
        return long_inputs == "chunk", stride, aggregate

    def _proba(
        self, items: list[TextInput], *, long_inputs: str | None = None, stride: Any = _UNSET, aggregate: str | None = None, bar: Any = None
    ) -> tuple[np.ndarray, list[int] | None, int]:
        """``(probabilities, windows per input or None, truncated inputs)`` in input order."""
        chunk, stride, aggregate = self.long_input_settings(long_inputs, stride, aggregate)
        if not chunk:
            logits, truncated = self._logits(items, bar)
            return self._proba_from_logits(logits), None, truncated
        if not items:
            return np.zeros((0, self.config.num_labels), dtype=np.float32), [], 0
        rows, _, windows = self.encode(items, chunk=True, stride=stride)
        per_window = self._proba_from_logits(self._rows_logits(rows, bar))  # (total windows, num_labels)
        single = self.problem_type == "single_label_classification"
        return aggregate_windows(per_window, windows, how=aggregate, renormalize=single).astype(np.float32), windows, 0

    # --- public API ----------------------------------------------------------------------

    def logits(self, texts: Any, *, truncation: str = "longest_first") -> np.ndarray:
        """The model's logits ``(n, num_labels)`` in input order (divided by the model's temperature;
        inputs longer than ``max_length`` truncated: windows have probabilities, not one logit row).

        Args:
            texts: a string, a ``(text, text_pair)`` tuple, or a list of either (not mixed).
            truncation: pairs longer than ``max_length``: ``"longest_first"`` trims the longer text
                first, ``"only_first"`` only the first text.

        Raises:
            InputTypeError: ``None`` or an item that is not a string / pair of strings (naming its index).
        """
        items, _ = as_text_list(texts)
        logits, truncated = self._logits(items, truncation=truncation)
        self._warn_truncated(truncated, len(items))
        return logits

    def _proba_from_logits(self, logits: np.ndarray) -> np.ndarray:
        if self.problem_type == "multi_label_classification":
            return 1.0 / (1.0 + np.exp(-logits))
        if self.problem_type == "regression":
            return logits
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Any, *, long_inputs: str | None = None, stride: int | None = None, aggregate: str | None = None) -> np.ndarray:
        """Probabilities ``(n, num_labels)``: softmax; sigmoid per label for multi-label; the values for regression.

        Args:
            texts: a string, a pair, or a list of them.
            long_inputs, stride, aggregate: this call's long-input handling (default: the Classifier's).
        """
        return self.predict_proba_windows(texts, long_inputs=long_inputs, stride=stride, aggregate=aggregate)[0]

    def predict_proba_windows(
        self, texts: Any, *, long_inputs: str | None = None, stride: int | None = None, aggregate: str | None = None
    ) -> tuple[np.ndarray, list[int] | None]:
        """:meth:`predict_proba` and how many windows each input was read in (None when truncating)."""
        items, _ = as_text_list(texts)
        proba, windows, truncated = self._proba(items, long_inputs=long_inputs, stride=stride, aggregate=aggregate)
        self._warn_truncated(truncated, len(items))
        return proba, windows

    def decision_thresholds(self, threshold: float | None = None) -> np.ndarray:
        """Multi-label decision thresholds, one per label: ``threshold`` for every label when given,
        else the thresholds saved with the model (``config.thresholds``), else 0.5."""
        threshold = check_threshold(threshold)
        if threshold is not None:
            return np.full(self.config.num_labels, threshold)
        saved = getattr(self.config, "thresholds", None)
        return np.asarray(saved if saved else [DEFAULT_THRESHOLD] * self.config.num_labels, dtype=np.float64)

    def _min_score(self, min_score: Any) -> float | None:
        return self.min_score if min_score is _UNSET else check_min_score(min_score, problem_type=self.problem_type)

    def predict(
        self, texts: Any, *, threshold: float | None = None, min_score: float | None = _UNSET, long_inputs: str | None = None,
        stride: int | None = None, aggregate: str | None = None,
    ) -> Any:
        """Labels: one per input (a list of labels per input for multi-label, the value for regression).

        Args:
            texts: a string, a pair, or a list of them; a single input gives a single result.
            threshold: multi-label only: predict the labels whose probability is at least this;
                ``None``: the model's saved per-label thresholds, else 0.5.
            min_score: single-label only: ``None`` (the label) when the top probability is under
                this; default: the Classifier's ``min_score``.
            long_inputs, stride, aggregate: this call's long-input handling (default: the Classifier's).
        """
        check_threshold(threshold)
        items, single = as_text_list(texts)
        proba = self.predict_proba(items, long_inputs=long_inputs, stride=stride, aggregate=aggregate)
        result = self.labels_from_proba(proba, threshold=threshold, min_score=min_score)
        return result[0] if single else result

    def labels_from_proba(self, proba: np.ndarray, *, threshold: float | None = None, min_score: float | None = _UNSET) -> list[Any]:
        """What :meth:`predict` returns for each row of ``proba``."""
        check_threshold(threshold)
        min_score = self._min_score(min_score)
        if self.problem_type == "multi_label_classification":
            thresholds = self.decision_thresholds(threshold)
            return [[self.labels[j] for j in np.flatnonzero(row >= thresholds)] for row in proba]
        if self.problem_type == "regression":
            return [float(row[0]) if self.config.num_labels == 1 else row.tolist() for row in proba]
        best = proba.argmax(axis=1)
        return [
            self.labels[int(j)] if min_score is None or row[j] >= min_score else None
            for j, row in zip(best, proba)
        ]

    def __call__(self, texts: Any, *, top_k: int | None = _DEFAULT_TOP_K, threshold: float | None = None) -> list[Any]:
        """Results shaped like transformers' ``pipeline("text-classification")``.

        A string gives ``[{"label", "score"}, ...]`` (the ``top_k`` best labels); a list gives one
        entry per input: a dict when ``top_k == 1``, else a list of dicts.

        Args:
            texts: a string, a pair, or a list of them.
            top_k: labels per input, best first; ``None`` = all. Defaults to 1, and to ``None`` for
                multi-label models.
            threshold: multi-label only: keep labels whose probability is at least this (``None``:
                the model's saved per-label thresholds, else 0.5).

        Returns:
            Single-label: softmax scores. Multi-label: the labels at or above their threshold with
            their sigmoid scores (a list per input). Regression: ``{"label", "score"}`` with the value.
        """
        check_threshold(threshold)
        if top_k is not _DEFAULT_TOP_K:
            check_int("top_k", top_k, none_ok=True, hint="None for all labels")
        items, single = as_text_list(texts)
        results = self.results_from_proba(self.predict_proba(items), top_k=top_k, threshold=threshold)
        if single:  # as the pipeline does: a string gives a list of {"label", "score"}
            return results[0] if isinstance(results[0], list) else [results[0]]
        return results

    def results_from_proba(self, proba: np.ndarray, *, top_k: int | None = _DEFAULT_TOP_K, threshold: float | None = None) -> list[Any]:
        """Pipeline-style results for each row of ``proba`` (see :meth:`__call__`)."""
        check_threshold(threshold)
        multi = self.problem_type == "multi_label_classification"
        if top_k is _DEFAULT_TOP_K:
            top_k = None if multi else 1
        check_int("top_k", top_k, none_ok=True, hint="None for all labels")
        thresholds = self.decision_thresholds(threshold) if multi else None
        results: list[Any] = []
        for row in proba:
            order = np.argsort(-row, kind="stable")
            if multi:
                order = [j for j in order if row[j] >= thresholds[j]]
            ranked = [{"label": self.labels[j], "score": float(row[j])} for j in order[:top_k]]
            results.append(ranked if multi or top_k != 1 else ranked[0])
        return results

    def stream(
        self, texts: Iterable[TextInput], *, chunk_size: int = DEFAULT_CHUNK_SIZE, long_inputs: str | None = None,
        stride: int | None = None, aggregate: str | None = None, return_windows: bool = False,
    ) -> Iterator[Any]:
        """Probabilities for a stream of inputs, one ``(chunk, num_labels)`` array per chunk, in order.

        Memory stays flat however long the stream: ``chunk_size`` inputs are read, sorted and
        batched at a time. Truncation is reported once, when the stream ends. With
        ``return_windows``, each chunk is ``(proba, windows)`` (see :meth:`predict_proba_windows`).

        Example:
            >>> for proba in clf.stream(open("texts.txt").read().splitlines()):  # doctest: +SKIP
            ...     print(proba.argmax(axis=1))
        """
        check_int("chunk_size", chunk_size)
        settings = dict(long_inputs=long_inputs, stride=stride, aggregate=aggregate)
        self.long_input_settings(long_inputs, stride, aggregate)  # bad settings fail before the first input is read
        truncated = total = 0
        chunk: list[TextInput] = []
        iterator = iter(texts)
        # One bar for the whole stream (its length is unknown), not one per chunk.
        with _progress_bar(None, enabled=_show_progress(self.show_progress_bar, _PROGRESS_MIN_BATCHES + 1)) as bar:
            while True:
                chunk.clear()
                for item in iterator:
                    chunk.append(item)
                    if len(chunk) >= chunk_size:
                        break
                if not chunk:
                    break
                try:
                    items, _ = as_text_list(chunk)
                except InputTypeError as exc:
                    raise InputTypeError(f"In the inputs from index {total} on: {exc}") from exc
                proba, windows, n = self._proba(items, bar=bar, **settings)
                truncated, total = truncated + n, total + len(items)
                yield (proba, windows) if return_windows else proba
        self._warn_truncated(truncated, total)

    def records(
        self, proba: np.ndarray, *, threshold: float | None = None, min_score: float | None = _UNSET, windows: list[int] | None = None
    ) -> list[dict[str, Any]]:
        """Flat output rows for ``proba`` (what ``t5cls predict`` writes), one per input.

        Single-label: ``label`` (``None`` under ``min_score``), ``score`` and ``proba_<label>`` per
        label; multi-label: ``labels`` (those at or above their threshold) and ``proba_<label>``;
        regression: ``value`` (or ``value_<label>`` per output). With ``windows`` (chunked inputs),
        each row also says how many windows its input had.
        """
        if self.problem_type == "regression":
            self._min_score(min_score)
            if self.config.num_labels == 1:
                rows = [{"value": float(row[0])} for row in proba]
            else:
                rows = [{f"value_{name}": float(v) for name, v in zip(self.labels, row)} for row in proba]
        else:
            predicted = self.labels_from_proba(proba, threshold=threshold, min_score=min_score)
            rows = []
            for labels, row in zip(predicted, proba):
                head = {"labels": labels} if isinstance(labels, list) else {"label": labels, "score": float(row.max())}
                rows.append({**head, **{f"proba_{name}": float(v) for name, v in zip(self.labels, row)}})
        if windows is not None:
            for row, count in zip(rows, windows):
                row["windows"] = int(count)
        return rows


__all__ = [
    "Classifier",
    "default_device",
    "default_dtype",
    "load_classifier",
    "DEFAULT_BATCH_TOKENS",
    "DEFAULT_CHUNK_SIZE",
]
