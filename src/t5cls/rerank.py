"""Reranker: how relevant is each document to a query, as P(relevant), best first.

Two kinds of model (REFERENCE.md §4 and §7):

- a seq2seq T5 in the monoT5 way: the prompt ``Query: {query} Document: {document} Relevant:``
  and one decoder step; P(relevant) is the softmax over the logits of ``▁true`` and ``▁false``.
  This is :class:`t5cls.LabelScorer` with the labels ``[true_word, false_word]`` and
  ``mode="first_token"``: the Reranker builds the prompts' token ids and the scorer runs them,
  so every speed-up of the scorer's encoder or decoder is the Reranker's too;
- a sequence classifier trained on (query, document) pairs (a t5cls classifier or any
  transformers one), run through :class:`t5cls.Classifier`: a regression output is squashed
  with a sigmoid, a two-label one gives P(``relevant_label``).

Long documents are read in windows (MaxP): only the document is split, into windows of the
tokens that the template and the query leave within ``max_length``, consecutive windows sharing
``stride`` tokens (:mod:`t5cls.windows`); each window is scored with the template and the query
whole, and the document scores its best window. A document that fits is scored from the
tokenisation of the whole prompt, exactly as ``tokenizer(template.format(...))`` gives it.

All pairs (and windows) of a call go through the job's one batching path: sorted by length and
packed into batches by a token budget (:mod:`t5cls.batching`), results put back in input order.
"""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from transformers import PreTrainedModel

from .batching import DEFAULT_BATCH_TOKENS
from .configuration import T5_MODEL_TYPES
from .errors import InputError, InputTypeError
from .inference import Classifier
from .loading import inspect_model, load_tokenizer, wrong_kind
from .scoring import LabelScorer, template_fields
from .windows import aggregate_windows, check_long_inputs, check_window, token_windows

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "Query: {query} Document: {document} Relevant:"
# Label names that mean "relevant" in a two-label pair classifier (compared in lower case).
RELEVANT_LABELS = ("relevant", "true", "yes", "1", "positive", "entailment")
KINDS = ("seq2seq", "classifier")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_rerank_template(template: Any) -> list[tuple[str, str | None]]:
    """The template's pieces ``(literal, field or None)``; raise unless it has ``{query}`` and one ``{document}``.

    Example:
        >>> check_rerank_template("Query: {query} Document: {document} Relevant:")[:2]
        [('Query: ', 'query'), (' Document: ', 'document')]
    """
    if not isinstance(template, str):
        raise InputTypeError(f"template must be a string such as {DEFAULT_TEMPLATE!r}, got {type(template).__name__}.")
    try:
        fields = template_fields(template)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{exc} A rerank template has the fields {{query}} and {{document}}, e.g. {DEFAULT_TEMPLATE!r}.") from exc
    missing = [name for name in ("query", "document") if name not in fields]
    extra = [name for name in fields if name not in ("query", "document")]
    if missing or extra:
        what = f"lacks {', '.join('{' + m + '}' for m in missing)}" if missing else f"has unknown field(s) {extra}"
        raise InputError(f"template {template!r} {what}; a rerank template has exactly {{query}} and {{document}}, e.g. {DEFAULT_TEMPLATE!r}.")
    pieces = [(literal, field) for literal, field, _, _ in string.Formatter().parse(template)]
    if sum(field == "document" for _, field in pieces) != 1:
        raise InputError(f"template {template!r} has {{document}} more than once; use it once (long documents are windowed there).")
    return pieces


def check_top_n(top_n: Any) -> int | None:
    """``None`` or a positive int; an :class:`InputError` otherwise."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)):
        raise InputTypeError(f"top_n must be a positive integer or None (all documents), got {top_n!r}.")
    if top_n < 1:
        raise InputError(f"top_n={top_n} must be at least 1, or None for all documents.")
    return int(top_n)


def check_documents(documents: Any, *, where: str = "documents") -> list[str]:
    """A non-empty list of strings (empty strings allowed: they are scored like any text)."""
    if isinstance(documents, str):
        raise InputTypeError(f"{where} must be a list of strings, got one string; pass [{documents[:30]!r}...].")
    if documents is None or not isinstance(documents, Sequence):
        raise InputTypeError(f"{where} must be a list of strings, got {type(documents).__name__}.")
    documents = list(documents)
    if not documents:
        raise InputError(f"{where} is empty; pass at least one document to rank.")
    for index, document in enumerate(documents):
        if not isinstance(document, str):
            raise InputTypeError(f"{where}[{index}] is {document!r} ({type(document).__name__}); each document must be a string.")
    return documents


def check_pairs(pairs: Any) -> list[tuple[str, str]]:
    """A list of ``(query, document)`` pairs of strings (one pair is also accepted)."""
    if isinstance(pairs, tuple) and len(pairs) == 2 and all(isinstance(part, str) for part in pairs):
        pairs = [pairs]
    if isinstance(pairs, str) or pairs is None or not isinstance(pairs, Sequence):
        raise InputTypeError(f"pairs must be a list of (query, document) pairs of strings, got {type(pairs).__name__}.")
    out = []
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
            raise InputTypeError(f"pairs[{index}] is {pair!r}; each pair must be a (query, document) pair of strings.")
        out.append((pair[0], pair[1]))
    return out


def _one_token(tokenizer: Any, word: Any, name: str) -> int:
    if not isinstance(word, str) or not word.strip():
        raise InputError(f"{name}={word!r} must be a word such as 'true' or 'yes'.")
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise InputError(
            f"{name}={word!r} is {len(ids)} tokens in this tokenizer ({pieces}); monoT5 scoring reads one decoder "
            "step, so pick a word that is one token (e.g. 'true'/'false' or 'yes'/'no')."
        )
    return ids[0]


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _kind_of(model: Any, *, base: Any = None) -> str:
    """``"seq2seq"`` or ``"classifier"`` for a loaded model, a directory or a hub id (see :func:`t5cls.inspect_model`)."""
    if isinstance(model, PreTrainedModel) or hasattr(model, "config"):
        config = model.config
        seq2seq = getattr(config, "model_type", None) in T5_MODEL_TYPES and hasattr(model, "lm_head")
        return "seq2seq" if seq2seq else "classifier"
    info = inspect_model(model, base=base)
    if info.is_seq2seq:
        return "seq2seq"
    if info.is_classifier or info.kind == "onnx":
        return "classifier"
    raise wrong_kind(info, "a seq2seq T5 or a pair classifier to rerank with")


def _pair_classifier(model: Any, tokenizer: Any, **options: Any) -> Classifier:
    if not isinstance(model, (str, os.PathLike)) and tokenizer is None:
        raise InputError("Pass the tokenizer with the model: Reranker((model, tokenizer)) or Reranker(model, tokenizer=tokenizer).")
    return Classifier(model, tokenizer, **options)  # any classifier directory: t5cls's formats or transformers'


def _relevant_index(labels: list[str], relevant_label: Any) -> int:
    if relevant_label is not None:
        if relevant_label not in labels:
            raise InputError(f"relevant_label={relevant_label!r} is not one of the model's labels {labels}.")
        return labels.index(relevant_label)
    found = [i for i, label in enumerate(labels) if str(label).strip().lower() in RELEVANT_LABELS]
    if len(found) != 1:
        raise InputError(
            f"Which of the model's labels {labels} means 'relevant'? None is named one of {list(RELEVANT_LABELS)}"
            f"{' (more than one is)' if found else ''}; pass relevant_label=..., e.g. relevant_label={labels[-1]!r}."
        )
    return found[0]


# --------------------------------------------------------------------------------------------
# Reranker
# --------------------------------------------------------------------------------------------


class Reranker:
    """Rank documents by P(relevant | query, document): monoT5-style seq2seq T5s and pair classifiers.

    Args:
        model: a directory or hub id, a loaded model, or a ``(model, tokenizer)`` tuple. A seq2seq
            T5 (t5, flan-t5, mT5, monoT5...) is scored the monoT5 way; a sequence classifier
            (t5cls's, or any transformers ``...ForSequenceClassification``) on (query, document) pairs.
        tokenizer: the tokenizer, when ``model`` is a loaded model.
        template: seq2seq only: the prompt, with ``{query}`` and one ``{document}``.
        true_word, false_word: seq2seq only: one-token answers whose first-step logits are
            softmaxed (``"yes"``/``"no"`` for a Flan-T5 prompt such as "... Is the document relevant?").
        relevant_label: classifiers with two labels: the label whose probability is the score
            (default: the label named one of ``relevant``, ``true``, ``yes``, ``1``, ``positive``,
            ``entailment``, any case).
        max_length: most tokens per (query, document) input, template and special tokens
            included (default: the tokenizer's maximum, 512 for T5).
        stride: tokens shared by consecutive windows of a long document (default: a quarter of
            the window, i.e. of the tokens the template and the query leave for the document).
        long_inputs: ``"chunk"`` (default: windows, the document scores its best one, MaxP) or
            ``"truncate"`` (the document's first window only).
        batch_tokens: most tokens per batch (the job's token budget).
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to bf16 on CUDA, fp32 on CPU.
        quantize: ``None`` or ``"int8"`` (CPU): a seq2seq T5 scores through ``LabelScorer(quantize="int8")``
            (torch int8 linear layers in the packed encoder), a pair classifier through ``Classifier``'s
            ONNX Runtime int8 path.
        show_progress_bar: ``False`` never shows one; otherwise one shows on long runs in a terminal.
        base: for a PEFT adapter directory, its base model (default: the adapter's
            ``base_model_name_or_path``); the adapter is merged.

    Raises:
        InputError: a template without ``{query}``/``{document}``, a true/false word that is not
            one token, a classifier whose relevant label cannot be told, a bad ``stride``.
        FileNotFoundError: no model at ``model``.

    Example:
        >>> rr = Reranker("castorini/monot5-base-msmarco")  # doctest: +SKIP
        >>> rr.rank("what is t5", ["T5 is a text-to-text transformer.", "Bananas are yellow."])  # doctest: +SKIP
        [{'index': 0, 'score': 0.98}, {'index': 1, 'score': 0.01}]
    """

    def __init__(
        self,
        model: str | Path | PreTrainedModel | tuple[PreTrainedModel, Any],
        *,
        tokenizer: Any = None,
        template: str = DEFAULT_TEMPLATE,
        true_word: str = "true",
        false_word: str = "false",
        relevant_label: str | None = None,
        max_length: int | None = None,
        stride: int | None = None,
        long_inputs: str = "chunk",
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        quantize: str | None = None,
        show_progress_bar: bool | None = None,
        base: str | os.PathLike | None = None,
    ):
        self._pieces = check_rerank_template(template)
        self.template = template
        self.long_inputs = check_long_inputs(long_inputs)
        if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens < 1:
            raise InputError(f"batch_tokens={batch_tokens!r} must be a positive number of tokens.")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
            raise InputError(f"max_length={max_length!r} must be a number of tokens (at least 2), or None for the tokenizer's maximum.")
        if isinstance(model, tuple) and len(model) == 2 and tokenizer is None:
            model, tokenizer = model
        if base is not None and not isinstance(model, (str, os.PathLike)):
            raise InputError(f"base={base!r} goes with a PEFT adapter directory, not with a loaded {type(model).__name__}.")
        self.kind = _kind_of(model, base=base)
        options = {"device": device, "dtype": dtype, "quantize": quantize, "max_length": max_length, "batch_tokens": batch_tokens, "base": base}
        if self.kind == "seq2seq":
            if relevant_label is not None:
                raise InputError(f"relevant_label={relevant_label!r} is for pair classifiers; a seq2seq T5 answers true_word / false_word.")
            if isinstance(model, (str, os.PathLike)):
                tokenizer = tokenizer or load_tokenizer(model, base=base, what="Reranker(model, tokenizer=...)")
            elif tokenizer is None:
                raise InputError("Pass the tokenizer with the model: Reranker((model, tokenizer)) or Reranker(model, tokenizer=tokenizer).")
            # The words are checked before any weights load.
            true_id = _one_token(tokenizer, true_word, "true_word")
            false_id = _one_token(tokenizer, false_word, "false_word")
            if true_id == false_id:
                raise InputError(f"true_word={true_word!r} and false_word={false_word!r} are the same token; pick two different words.")
            self.scorer: LabelScorer | None = LabelScorer(
                model,
                tokenizer,
                labels=[true_word, false_word],
                template="{text}",  # prompts arrive as token ids, built here
                mode="first_token",
                show_progress_bar=show_progress_bar is not False,
                **options,
            )
            self.classifier: Classifier | None = None
            self.tokenizer = self.scorer.tokenizer
            self.model = self.scorer.model
            self.max_length = self.scorer.max_length
            self.true_word, self.false_word = true_word, false_word
            self.relevant_label = None
        else:
            self.scorer = None
            self.classifier = _pair_classifier(model, tokenizer, show_progress_bar=show_progress_bar, **options)
            self.tokenizer = self.classifier.tokenizer
            self.model = self.classifier.model
            self.max_length = self.classifier.max_length
            labels = list(self.classifier.labels)
            self._problem_type = self.classifier.problem_type
            if len(labels) == 1:
                if relevant_label is not None:
                    raise InputError(f"relevant_label={relevant_label!r}: the model has one output (a relevance value), no labels to choose from.")
                self._relevant = 0
            elif len(labels) == 2:
                self._relevant = _relevant_index(labels, relevant_label)
            else:
                raise InputError(
                    f"The model has {len(labels)} labels ({labels}); a reranker needs one output (regression) or two "
                    "labels (relevant / not relevant). For NLI models use t5cls.ZeroShotClassifier."
                )
            self.relevant_label = labels[self._relevant] if len(labels) == 2 else None
            self.true_word = self.false_word = None
        if stride is not None:
            check_window(self.max_length, stride)
        self.stride = stride
        self._fast = bool(getattr(self.tokenizer, "is_fast", False))
        self._warned_slow = False

    # -- building inputs --------------------------------------------------------------------

    def _fill(self, query: str, document: str) -> tuple[str, int, int]:
        """The prompt, and where the document's characters are in it."""
        parts: list[str] = []
        position = start = 0
        for literal, field in self._pieces:
            parts.append(literal)
            position += len(literal)
            if field is None:
                continue
            value = document if field == "document" else query
            if field == "document":
                start = position
            parts.append(value)
            position += len(value)
        return "".join(parts), start, start + len(document)

    def _encode(self, pairs: list[tuple[str, str]]) -> tuple[list[dict[str, list[int]]], list[int]]:
        """Model inputs of every window of every pair (the windows of a pair consecutive), and windows per pair."""
        rows: list[dict[str, list[int]]] = []
        counts: list[int] = []
        if not pairs:
            return rows, counts
        filled: list[tuple[str, int, int]] | None = None
        if self.kind == "seq2seq":
            filled = [self._fill(query, document) for query, document in pairs]
            encoded = self.tokenizer([text for text, _, _ in filled], return_offsets_mapping=self._fast, return_attention_mask=False)
            names = ["input_ids"]
        else:
            encoded = self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], return_attention_mask=False)
            names = [n for n in getattr(self.tokenizer, "model_input_names", ["input_ids"]) if n in encoded and n != "attention_mask"]
        for i in range(len(pairs)):
            row = {name: list(encoded[name][i]) for name in names}
            if len(row["input_ids"]) <= self.max_length:
                windows = [row]
            else:
                span = self._document_span(encoded, i, None if filled is None else filled[i])
                windows = self._windows(row, span, pairs[i])
            rows.extend(windows)
            counts.append(len(windows))
        return rows, counts

    def _document_span(self, encoded: Any, i: int, filled: tuple[str, int, int] | None) -> tuple[int, int] | None:
        """Token positions ``[a, b)`` of the document in input ``i``; None when the tokenizer cannot tell."""
        if not self._fast:
            return None
        if filled is None:  # a pair: the tokenizer marks the second sequence
            positions = [p for p, sequence in enumerate(encoded.sequence_ids(i)) if sequence == 1]
        else:  # a prompt: the tokens whose characters lie in the document's
            _, start, end = filled
            positions = [p for p, (a, b) in enumerate(encoded["offset_mapping"][i]) if b > a and a < end and b > start]
        if not positions:
            return (0, 0)
        return positions[0], positions[-1] + 1

    def _windows(self, row: dict[str, list[int]], span: tuple[int, int] | None, pair: tuple[str, str]) -> list[dict[str, list[int]]]:
        length = len(row["input_ids"])
        if span is None:
            # A slow (Python) tokenizer gives no offsets: cut at max_length, keeping the closing token.
            if not self._warned_slow:
                logger.warning("The tokenizer is not a fast one, so long documents are truncated, not windowed.")
                self._warned_slow = True
            return [{name: ids[: self.max_length - 1] + ids[-1:] for name, ids in row.items()}]
        start, end = span
        size = self.max_length - (length - (end - start))  # the tokens left for the document
        if size < 1:
            raise InputError(
                f"The query {pair[0][:60]!r} takes {length - (end - start)} tokens with the template and special tokens, "
                f"which leaves no room for the document within max_length={self.max_length}; shorten the query or raise max_length."
            )
        stride = size // 4 if self.stride is None else self.stride
        if stride >= size:
            raise InputError(
                f"stride={stride} is not smaller than the {size} tokens the query {pair[0][:60]!r} leaves for the document "
                f"within max_length={self.max_length}; use a smaller stride (e.g. {size // 4}) or a larger max_length."
            )
        windows = token_windows(range(start, end), size=size, stride=stride)
        if self.long_inputs == "truncate":
            windows = windows[:1]
        return [{name: ids[:start] + [ids[p] for p in window] + ids[end:] for name, ids in row.items()} for window in windows]

    # -- scores -----------------------------------------------------------------------------

    def _window_log_odds(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        if self.scorer is not None:
            log_likelihoods = self.scorer.log_likelihoods_from_ids([row["input_ids"] for row in rows])  # (windows, 2)
            return log_likelihoods[:, 0] - log_likelihoods[:, 1]
        logits = self.classifier.logits_from_ids(rows).astype(np.float64)  # (windows, num_labels)
        if logits.shape[1] == 1 or self._problem_type == "multi_label_classification":
            return logits[:, self._relevant]  # a relevance value or a per-label logit: sigmoid gives P
        return logits[:, self._relevant] - logits[:, 1 - self._relevant]  # softmax over 2 = sigmoid of the difference

    def log_odds(self, pairs: Any) -> np.ndarray:
        """``log(P / (1 - P))`` of relevance per ``(query, document)`` pair, in input order: the raw scores.

        A long document's is its best window's (MaxP; the best window is the same for P and log-odds).

        Returns:
            ``(n,)`` float64.
        """
        pairs = check_pairs(pairs)
        rows, counts = self._encode(pairs)
        if not rows:
            return np.zeros(0)
        return aggregate_windows(self._window_log_odds(rows)[:, None], counts, how="max")[:, 0]  # MaxP

    def score(self, pairs: Any) -> np.ndarray:
        """P(relevant) in [0, 1] per ``(query, document)`` pair, in input order.

        Args:
            pairs: a list of ``(query, document)`` pairs of strings (or one pair).

        Returns:
            ``(n,)`` float64.

        Example:
            >>> rr.score([("what is t5", "T5 is a text-to-text transformer.")])  # doctest: +SKIP
            array([0.98])
        """
        return expit(self.log_odds(pairs))

    def rank(self, query: Any, documents: Any, *, top_n: int | None = None, return_documents: bool = False) -> list[Any]:
        """The documents of a query, best first, as ``{"index", "score"[, "document"]}``.

        Args:
            query: a query, or a list of queries (then ``documents`` is one list per query; all
                pairs of the call are scored together, in one batching pass).
            documents: the documents to rank (a non-empty list of strings), or one list per query.
            top_n: keep the ``top_n`` best (default: all).
            return_documents: add each document's text as ``"document"``.

        Returns:
            A list of ``{"index": position in documents, "score": P(relevant)}`` dicts, best first
            (ties keep the input order); for a list of queries, one such list per query.

        Raises:
            InputError: an empty documents list, ``top_n`` < 1, a document that is not a string,
                or as many document lists as queries not given.
        """
        top_n = check_top_n(top_n)
        if isinstance(query, str):
            queries, lists, single = [query], [check_documents(documents)], True
        else:
            if query is None or not isinstance(query, Sequence):
                raise InputTypeError(f"query must be a string or a list of strings, got {type(query).__name__}.")
            queries, single = list(query), False
            bad = [i for i, q in enumerate(queries) if not isinstance(q, str)]
            if bad:
                raise InputTypeError(f"query[{bad[0]}] is {queries[bad[0]]!r}; each query must be a string.")
            if isinstance(documents, str) or not isinstance(documents, Sequence) or len(documents) != len(queries):
                given = len(documents) if isinstance(documents, Sequence) and not isinstance(documents, str) else type(documents).__name__
                raise InputError(f"{len(queries)} queries need {len(queries)} document lists (one per query), got {given}.")
            lists = [check_documents(docs, where=f"documents[{i}]") for i, docs in enumerate(documents)]
        scores = self.score([(q, d) for q, docs in zip(queries, lists) for d in docs])
        results, start = [], 0
        for docs in lists:
            part = scores[start : start + len(docs)]
            start += len(docs)
            order = np.argsort(-part, kind="stable")[:top_n]
            ranked = []
            for index in order:
                entry: dict[str, Any] = {"index": int(index), "score": float(part[index])}
                if return_documents:
                    entry["document"] = docs[index]
                ranked.append(entry)
            results.append(ranked)
        return results[0] if single else results


__all__ = [
    "Reranker",
    "DEFAULT_TEMPLATE",
    "RELEVANT_LABELS",
    "KINDS",
    "check_rerank_template",
    "check_top_n",
    "check_documents",
    "check_pairs",
]
