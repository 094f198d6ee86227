"""Classifier: batched, length-sorted prediction with a T5 classifier.

Every prediction (Python, CLI, server) goes through :meth:`Classifier.predict_proba`: tokenise,
sort by length, pack batches to a token budget, run the model under ``torch.inference_mode()``,
and put the results back in input order.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedModel

from .data import TextInput, as_text_list, batches
from .configuration import T5ClassificationConfig
from .modeling import T5ForClassification, published_format

logger = logging.getLogger(__name__)

DEFAULT_BATCH_TOKENS = 8192


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device, dtype: torch.dtype | str | None = None) -> torch.dtype:
    """bf16 on CUDA (T5 overflows in fp16), fp32 on CPU, unless asked otherwise."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is not None:
        return dtype
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_classifier(model_dir: str | Path, *, device: torch.device, dtype: torch.dtype) -> T5ForClassification:
    """Load a saved T5 classifier, with a clear error when the directory holds something else."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} is not a model directory (no config.json).")
    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    if model_type != T5ClassificationConfig.model_type and published_format(path) is None:
        hint = (
            "convert it with `t5cls convert`, or score labels with t5cls.LabelScorer"
            if model_type in ("t5", "mt5")
            else "convert a T5 checkpoint first with `t5cls convert`"
        )
        raise ValueError(f"{str(model_dir)!r} holds a {model_type!r} model, not a T5 classifier; {hint}.")
    model = T5ForClassification.from_pretrained(path, dtype=dtype)
    return model.to(device).eval()


class Classifier:
    """Predict with a T5 classifier: batched by a token budget over length-sorted inputs.

    Args:
        model: a directory written by ``save_pretrained`` (or a published T5ForClassification /
            EncT5 directory), or a loaded :class:`T5ForClassification`.
        tokenizer: the tokenizer, when ``model`` is an object (loaded from the directory otherwise).
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to bf16 on CUDA, fp32 on CPU.
        max_length: truncate inputs to this many tokens (defaults to the tokenizer's maximum).
        batch_tokens: most padded tokens per batch.

    Example:
        >>> clf = Classifier("sst2-classifier")  # doctest: +SKIP
        >>> clf.predict(["a gripping film", "dull"])  # doctest: +SKIP
        ['positive', 'negative']
    """

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        tokenizer: Any = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        max_length: int | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
    ):
        self.device = default_device(device)
        self.dtype = default_dtype(self.device, dtype)
        if isinstance(model, (str, Path)):
            self.model = load_classifier(model, device=self.device, dtype=self.dtype)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
        else:
            if tokenizer is None:
                raise ValueError("Pass the tokenizer with the model: Classifier(model, tokenizer).")
            self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.config = self.model.config
        self.labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        tokenizer_max = getattr(tokenizer, "model_max_length", None) or 512
        self.max_length = max_length or (tokenizer_max if tokenizer_max < 100_000 else 512)
        self.batch_tokens = batch_tokens

    def _encode(self, items: list[TextInput]) -> list[list[int]]:
        firsts = [item if isinstance(item, str) else item[0] for item in items]
        seconds = [item[1] for item in items] if items and not isinstance(items[0], str) else None
        if seconds is not None and any(isinstance(item, str) for item in items):
            raise TypeError("Mix of single texts and (text, text_pair) tuples in one call; pass one kind.")
        full = self.tokenizer(firsts, seconds, add_special_tokens=True)["input_ids"]
        truncated = sum(len(ids) > self.max_length for ids in full)
        if truncated:
            logger.warning(
                "%d of %d inputs are longer than max_length=%d tokens and were truncated.",
                truncated,
                len(items),
                self.max_length,
            )
        return [ids if len(ids) <= self.max_length else ids[: self.max_length - 1] + [ids[-1]] for ids in full]

    def logits(self, texts: Any) -> np.ndarray:
        """Raw logits ``(n, num_labels)`` in input order."""
        items, _ = as_text_list(texts)
        if not items:
            return np.zeros((0, self.config.num_labels), dtype=np.float32)
        encoded = self._encode(items)
        out = np.zeros((len(items), self.config.num_labels), dtype=np.float32)
        pad_id = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for group in batches([len(ids) for ids in encoded], batch_tokens=self.batch_tokens):
                longest = max(len(encoded[i]) for i in group)
                input_ids = torch.full((len(group), longest), pad_id, dtype=torch.long)
                attention_mask = torch.zeros((len(group), longest), dtype=torch.long)
                for row, index in enumerate(group):
                    ids = encoded[index]
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    attention_mask[row, : len(ids)] = 1
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
                ).logits
                out[group] = logits.float().cpu().numpy()
        return out

    def predict_proba(self, texts: Any) -> np.ndarray:
        """Probabilities ``(n, num_labels)`` (softmax; sigmoid per label for multi-label; the value for regression)."""
        logits = self.logits(texts)
        problem_type = self.config.problem_type
        if problem_type == "multi_label_classification":
            return 1.0 / (1.0 + np.exp(-logits))
        if problem_type == "regression":
            return logits
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, texts: Any, *, threshold: float = 0.5) -> Any:
        """Labels: one per input (a list of labels per input for multi-label, the value for regression)."""
        items, single = as_text_list(texts)
        proba = self.predict_proba(items)
        problem_type = self.config.problem_type
        if problem_type == "multi_label_classification":
            result = [[self.labels[j] for j in np.flatnonzero(row >= threshold)] for row in proba]
        elif problem_type == "regression":
            result = [float(row[0]) if self.config.num_labels == 1 else row.tolist() for row in proba]
        else:
            result = [self.labels[int(j)] for j in proba.argmax(axis=1)]
        return result[0] if single else result


__all__ = ["Classifier", "default_device", "default_dtype", "load_classifier", "DEFAULT_BATCH_TOKENS"]
