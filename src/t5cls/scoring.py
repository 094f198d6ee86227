"""LabelScorer: exact label probabilities from a seq2seq T5, with the encoder run once per text.

A text-to-text T5 (t5, flan-t5, mT5, UL2...) answers with text; to classify with it, score every
candidate label: log P(label | prompt) = the sum over the label's tokens and the closing ``</s>``
of the decoder's log-softmax, teacher-forced (REFERENCE.md §4). The usual way (lm-evaluation-
harness) runs the whole model once per (text, label) pair. Here, per batch of texts:

1. the encoder runs once per text, on its real tokens only (:mod:`t5cls.packed`, the same
   padding-free forward as ``T5ForClassification``'s);
2. all labels are merged into one prefix tree (trie) of decoder inputs: node 0 is the decoder
   start token, every other node a label-token prefix shared by the labels that start with it.
   The tree is one decoder row per text, so the cross-attention keys/values of a text are
   computed once for all its labels, and shared prefixes are decoded once;
3. in self-attention a node sees only itself and its ancestors, at relative position
   ``depth(key) - depth(query)`` -- exactly the keys and the relative position bias it sees when
   its label is decoded alone, so the log-likelihoods are exact, not approximate;
4. the vocabulary projection runs once per node; each (node, next token) edge's log-probability
   is summed into the labels whose path uses it.

When every label is one token, the tree is the start node plus one leaf per label: a single
decoder pass gives each label's token and its closing ``</s>``. ``mode="first_token"`` keeps only
the start node: the classic restricted softmax over the labels' first tokens (one decoder position).

The decoder blocks run here over the tree, from the model's own modules (projections, norms,
FFN, final layer norm and LM head) with the attention product on :func:`t5cls.attention.attend`;
the tree mask and the relative position bias are built here, the bias with the blocks' own
``compute_bias``. Block 0's self-attention sees only the tree's token embeddings, the same for
every prompt, so it runs once per batch. ``use_tree_blocks = False`` (and training, and fp16)
runs transformers' ``T5Block`` on the same tree instead. For small trees (the first-token mode: one node) the
cross-attention reads the encoder states without projecting them to keys and values
(:func:`factored_cross_attention`, the same product in another order): projecting them costs a
sixth of the encoder again at t5 shapes, for one decoder position to read.
"""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import softmax
from scipy.stats import entropy as _entropy
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.t5.modeling_t5 import T5Block, T5LayerCrossAttention
from transformers.models.umt5.modeling_umt5 import UMT5Block

from .allocator import tune_malloc
from .attention import attend
from .batching import DEFAULT_BATCH_TOKENS, PACKED_PADDING_COST, min_padding_batches
from .calibration import (
    CONTENT_FREE_INPUTS,
    check_calibration,
    content_free_prior,
    contextual_scores,
    domain_pmi,
    fill_fields,
)
from .configuration import T5_MODEL_TYPES, T5ClassificationConfig
from .cpu_linear import linear_kernel, onednn_linear_enabled
from .devices import QUANTIZATIONS, default_device, default_dtype
from .errors import InputError, InputTypeError, check_bool, check_int, check_max_length
from .labels import check_labels
from .loading import default_max_length, inspect_model, load_seq2seq_model, load_tokenizer, wrong_kind
from .packed import can_pack, feed_forward, packed_encoder_forward, rms_norm

logger = logging.getLogger(__name__)

SCORING_MODES = ("full", "first_token")
NORMALIZATIONS = ("sum", "mean", "chars")
# Most fp32 logits held at once by the vocabulary projection (128 MiB); the batch is cut to fit.
LOGIT_BUDGET = 1 << 25


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


def template_fields(template: str) -> list[str]:
    """The named fields of a ``str.format`` template, in order of first appearance.

    Raises:
        InputError: a malformed template, a positional ``{}`` or non-name field, or no field at all.

    Example:
        >>> template_fields("premise: {premise} hypothesis: {hypothesis}")
        ['premise', 'hypothesis']
    """
    if not isinstance(template, str):
        raise InputTypeError(f"template must be a string such as 'sst2 sentence: {{text}}', got {type(template).__name__}.")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputError(f"template {template!r} is malformed ({exc}); write literal braces as '{{{{' and '}}}}'.") from exc
    fields: list[str] = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise InputError(
                f"template {template!r} has the field {{{field}}}; use plain named fields such as {{text}} "
                "(no positional {{}}, attributes, indexes or format specs)."
            )
        if field not in fields:
            fields.append(field)
    if not fields:
        raise InputError(f"template {template!r} has no field for the input; add one, e.g. 'sst2 sentence: {{text}}'.")
    return fields


def fill_template(template: str, fields: Sequence[str], inputs: Any) -> tuple[list[str], bool]:
    """Prompts from inputs: strings fill a one-field template, dicts fill named fields.

    Args:
        template: a ``str.format`` template.
        fields: its fields (:func:`template_fields`).
        inputs: a string, a dict of field values, or a list of those.

    Returns:
        ``(prompts, single)``: one prompt per input, and whether one input (not a list) was given.

    Raises:
        InputTypeError: an input that is neither a string nor a dict of strings, naming its index.
        InputError: a string for a multi-field template, or a dict that lacks a template field or
            has a key the template does not use.
    """
    if inputs is None:
        raise InputTypeError("inputs is None; pass a string, a dict of template fields, or a list of those.")
    single = isinstance(inputs, (str, Mapping))
    items = [inputs] if single else inputs
    if not isinstance(items, Sequence):
        items = list(items) if hasattr(items, "__iter__") else None
        if items is None:
            raise InputTypeError(f"inputs must be a string, a dict or a list of those, got {type(inputs).__name__}.")
    prompts = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            if len(fields) != 1:
                raise InputError(
                    f"inputs[{index}] is a string but the template {template!r} has fields {list(fields)}; "
                    f"pass a dict with keys {list(fields)}."
                )
            values = {fields[0]: item}
        elif isinstance(item, Mapping):
            missing = [field for field in fields if field not in item]
            if missing:
                raise InputError(
                    f"inputs[{index}] lacks the field(s) {missing} that the template {template!r} uses; "
                    f"its keys are {list(item)}."
                )
            extra = [key for key in item if key not in fields]
            if extra:
                raise InputError(
                    f"inputs[{index}] has the key(s) {extra} that the template {template!r} does not use; "
                    f"add {{{extra[0]}}} to the template or drop the key."
                )
            bad = [key for key in fields if not isinstance(item[key], str)]
            if bad:
                raise InputTypeError(f"inputs[{index}][{bad[0]!r}] is {item[bad[0]]!r}; field values must be strings.")
            values = dict(item)
        else:
            raise InputTypeError(
                f"inputs[{index}] is {item!r} ({type(item).__name__}); each input must be a string or a dict of field values."
            )
        prompts.append(template.format(**values))
    return prompts, single


# --------------------------------------------------------------------------------------------
# The label trie
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelTrie:
    """All labels' target sequences as one tree of decoder inputs.

    Node 0 is the decoder start token; node i > 0 is a proper prefix of one or more target
    sequences, fed its last token. An edge is a (node, next token) pair: the node's decoder
    output predicts that token. A label's log-likelihood is the sum of its path's edges.
    """

    tokens: list[int]  # decoder input id per node
    depths: list[int]  # position of the node when its label is decoded alone
    ancestors: np.ndarray  # (nodes, nodes) bool: [q, k] is True when k is q or an ancestor of q
    edge_nodes: list[int]  # per edge, the node whose output predicts it
    edge_tokens: list[int]  # per edge, the predicted token
    incidence: np.ndarray  # (edges, labels) float64: 1 where the edge lies on the label's path

    @property
    def num_nodes(self) -> int:
        return len(self.tokens)

    @property
    def max_depth(self) -> int:
        return max(self.depths)


def build_label_trie(sequences: Sequence[Sequence[int]], *, start_token_id: int) -> LabelTrie:
    """Merge target token sequences (each ending in ``</s>`` for full scoring) into a :class:`LabelTrie`.

    Example:
        >>> trie = build_label_trie([[59, 1], [59, 207, 1]], start_token_id=0)  # "not", "not good"
        >>> trie.tokens, trie.edge_tokens
        ([0, 59, 207], [59, 1, 207, 1])
    """
    node_of: dict[tuple[int, ...], int] = {(): 0}
    tokens, depths, parents = [start_token_id], [0], [-1]
    edge_of: dict[tuple[int, int], int] = {}
    on_path: list[tuple[int, int]] = []  # (edge, label)
    for label, sequence in enumerate(sequences):
        for depth, token in enumerate(sequence):
            prefix = tuple(sequence[:depth])
            if prefix not in node_of:  # its parent prefix was added at the previous depth
                node_of[prefix] = len(tokens)
                tokens.append(prefix[-1])
                depths.append(depth)
                parents.append(node_of[prefix[:-1]])
            edge = edge_of.setdefault((node_of[prefix], int(token)), len(edge_of))
            on_path.append((edge, label))
    ancestors = np.zeros((len(tokens), len(tokens)), dtype=bool)
    for query in range(len(tokens)):
        key = query
        while key >= 0:
            ancestors[query, key] = True
            key = parents[key]
    incidence = np.zeros((len(edge_of), len(sequences)), dtype=np.float64)
    for edge, label in on_path:
        incidence[edge, label] = 1.0
    edges = sorted(edge_of, key=edge_of.__getitem__)
    return LabelTrie(
        tokens=tokens,
        depths=depths,
        ancestors=ancestors,
        edge_nodes=[node for node, _ in edges],
        edge_tokens=[token for _, token in edges],
        incidence=incidence,
    )


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


def length_normalize(log_likelihoods: np.ndarray, lengths: Sequence[float]) -> np.ndarray:
    """Divide each label's log-likelihood by its length (tokens for ``"mean"``, characters for ``"chars"``).

    Example:
        >>> length_normalize(np.array([[-2.0, -6.0]]), [1, 3])
        array([[-2., -2.]])
    """
    return np.asarray(log_likelihoods, dtype=np.float64) / np.asarray(lengths, dtype=np.float64)[None, :]


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise InputError(f"{name}={value!r} is not one of {tuple(choices)}.")
    return value


# --------------------------------------------------------------------------------------------
# The decoder blocks over the label tree
# --------------------------------------------------------------------------------------------


def _split_heads(attention: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """``(batch, n, heads * head_dim)`` -> ``(batch, heads, n, head_dim)``."""
    batch, n, _ = states.shape
    return states.view(batch, n, attention.n_heads, attention.key_value_proj_dim).transpose(1, 2)


def _merge_heads(context: torch.Tensor) -> torch.Tensor:
    """``(batch, heads, n, head_dim)`` -> ``(batch, n, heads * head_dim)``."""
    batch, heads, n, head_dim = context.shape
    return context.transpose(1, 2).reshape(batch, n, heads * head_dim)


def tree_self_attention(layer: nn.Module, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A decoder block's self-attention layer (norm, attention, residual) over the tree ``(batch, nodes, d_model)``.

    ``layer`` is a ``T5LayerSelfAttention`` or UMT5's; ``bias`` ``(1, heads, nodes, nodes)`` is
    the tree mask plus the relative position bias indexed by depth, the keys and bias each node
    sees when its label is decoded alone.
    """
    attention = layer.SelfAttention
    normed = rms_norm(layer.layer_norm, hidden)
    query, key, value = (_split_heads(attention, projection(normed)) for projection in (attention.q, attention.k, attention.v))
    context = attend(query, key, value, bias, scale=attention.scaling)
    return hidden + layer.dropout(attention.o(_merge_heads(context)))


def tree_cross_attention(layer: nn.Module, hidden: torch.Tensor, encoder_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A decoder block's cross-attention layer (norm, attention over the encoder, residual).

    ``layer`` is a ``T5LayerCrossAttention`` or UMT5's; ``mask`` is additive ``(batch, 1, 1,
    seq)``: 0 at real tokens, the dtype's minimum at padding (T5's cross-attention has no
    position bias).
    """
    attention = layer.EncDecAttention
    query = _split_heads(attention, attention.q(rms_norm(layer.layer_norm, hidden)))
    key, value = (_split_heads(attention, projection(encoder_hidden)) for projection in (attention.k, attention.v))
    context = attend(query, key, value, mask, scale=attention.scaling)
    return hidden + layer.dropout(attention.o(_merge_heads(context)))


# --------------------------------------------------------------------------------------------
# Cross-attention for a few decoder positions
# --------------------------------------------------------------------------------------------


def can_factor_cross_attention(layer: nn.Module, nodes: int) -> bool:
    """Whether :func:`factored_cross_attention` applies to ``layer`` and is cheaper for ``nodes`` positions.

    It needs plain ``nn.Linear`` keys and values without bias (not int8 dynamic layers); it costs
    ``2 * heads * nodes`` multiply-adds per encoder state and d_model, against ``2 * heads *
    head_dim`` for projecting keys and values, so it pays while ``nodes`` is well under ``head_dim``.
    """
    attention = getattr(layer, "EncDecAttention", None)
    if type(layer) is not T5LayerCrossAttention or attention is None:
        return False
    plain = all(type(proj) is nn.Linear and proj.bias is None for proj in (attention.k, attention.v))
    return plain and 4 * nodes <= attention.key_value_proj_dim


def factored_cross_attention(layer: T5LayerCrossAttention, hidden: torch.Tensor, encoder_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``T5LayerCrossAttention`` (norm, attention over the encoder, residual) without keys and values.

    T5's cross-attention projects every encoder state to keys ``K = H Wk`` and values ``V = H Wv``
    (``2 * d_model * inner`` multiply-adds per encoder token and layer) for the decoder's few
    positions to read. By associativity, per head ``q_h K_h^T = (q_h Wk_h) H^T`` and
    ``softmax(.) V_h = (softmax(.) H) Wv_h^T`` (``Wk_h``, ``Wv_h``: the head's rows of the
    ``(inner, d_model)`` weights): the query is carried into the encoder's space
    and the encoder states are read as they are, so each encoder token costs ``2 * heads * nodes``
    multiply-adds per ``d_model`` instead. The same product, summed in another order (fp32: 1e-6).

    Args:
        layer: the decoder block's cross-attention layer.
        hidden: decoder states ``(batch, nodes, d_model)``.
        encoder_hidden: ``(batch, seq, d_model)``.
        mask: additive ``(batch, 1, 1, seq)``: 0 at real tokens, the dtype's minimum at padding.
    """
    attention = layer.EncDecAttention
    heads, head_dim = attention.n_heads, attention.key_value_proj_dim
    batch, nodes, d_model = hidden.shape
    query = attention.q(layer.layer_norm(hidden)).view(batch, nodes, heads, head_dim)
    key_weight = attention.k.weight.view(heads, head_dim, d_model)  # nn.Linear weight: (inner, d_model)
    value_weight = attention.v.weight.view(heads, head_dim, d_model)
    carried = torch.einsum("bnhk,hkd->bhnd", query, key_weight).reshape(batch, heads * nodes, d_model)
    scores = torch.bmm(carried, encoder_hidden.transpose(1, 2)).view(batch, heads, nodes, -1)  # (batch, heads, nodes, seq)
    scores = scores * attention.scaling + mask
    probs = torch.softmax(scores.float(), dim=-1).to(hidden.dtype)  # as transformers: softmax in fp32
    mixed = torch.bmm(probs.view(batch, heads * nodes, -1), encoder_hidden).view(batch, heads, nodes, d_model)
    context = torch.einsum("bhnd,hkd->bnhk", mixed, value_weight).reshape(batch, nodes, heads * head_dim)
    return hidden + layer.dropout(attention.o(context))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _not_seq2seq(where: str, model_type: Any) -> InputError:
    if model_type == T5ClassificationConfig.model_type or model_type in ("enct5", "t5forclassification"):
        return InputError(
            f"{where} is a t5cls classifier ({model_type!r}), not a seq2seq T5: it has no LM head to score label text. "
            "Use t5cls.Classifier for it, or pass a T5ForConditionalGeneration checkpoint (t5, flan-t5, mT5, UL2) to LabelScorer."
        )
    return InputError(
        f"{where} has model_type {model_type!r}; LabelScorer needs a T5ForConditionalGeneration-compatible "
        f"seq2seq checkpoint (model_type in {T5_MODEL_TYPES}: t5, t5-v1_1, flan-t5, mT5, UMT5, byT5, UL2)."
    )


def load_seq2seq(
    src: str | Path, *, device: torch.device, dtype: torch.dtype, base: str | os.PathLike | None = None
) -> tuple[PreTrainedModel, Any]:
    """Load a seq2seq T5 (or a PEFT adapter over one, merged) and its tokenizer, refusing anything else.

    Raises:
        FileNotFoundError: no such directory or hub id.
        InputError: a classifier, an encoder-only checkpoint, or no tokenizer.
    """
    info = inspect_model(src, base=base)
    if not info.is_seq2seq:
        raise wrong_kind(info, "a seq2seq T5 (LabelScorer scores label text with its LM head)")
    model = load_seq2seq_model(info, dtype=dtype)
    tokenizer = load_tokenizer(info, what="LabelScorer((model, tokenizer), ...)")
    return model.to(device).eval(), tokenizer


def _check_quantize(quantize: Any, device: Any, dtype: Any) -> str | None:
    """``quantize`` if valid: ``None`` or ``"int8"``, the latter on CPU in fp32 only."""
    if quantize not in QUANTIZATIONS:
        raise InputError(f"quantize={quantize!r} is not supported; use None or 'int8'.")
    if quantize and device is not None and default_device(device).type != "cpu":
        raise InputError(f"quantize='int8' runs on CPU; got device={str(device)!r}. Use device='cpu', or drop quantize on a GPU (bf16 is its fast path).")
    if quantize and dtype is not None and default_dtype(torch.device("cpu"), dtype) != torch.float32:
        raise InputError(f"quantize='int8' computes activations in float32; got dtype={dtype!r}. Leave dtype unset.")
    return quantize


def _check_model(model: Any) -> None:
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if not isinstance(model, PreTrainedModel) or model_type not in T5_MODEL_TYPES or not hasattr(model, "lm_head"):
        raise _not_seq2seq(f"The model ({type(model).__name__})", model_type)
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in (None, "eager", "sdpa"):
        raise InputError(
            f"The model uses attn_implementation={implementation!r}; LabelScorer's tree mask needs 'eager' or 'sdpa' "
            "(load it with attn_implementation='sdpa')."
        )


# --------------------------------------------------------------------------------------------
# LabelScorer
# --------------------------------------------------------------------------------------------


class LabelScorer:
    """Exact class probabilities from a seq2seq T5: log P(label | template(text)) for every label.

    Args:
        model: a T5ForConditionalGeneration-compatible checkpoint (directory or hub id: t5, flan-t5,
            mT5, UL2...), a loaded model, or a ``(model, tokenizer)`` tuple.
        tokenizer: the tokenizer, when ``model`` is a loaded model.
        labels: candidate label strings (any length; they may share prefixes).
        template: ``str.format`` template of the prompt, e.g. ``"sst2 sentence: {text}"`` or
            ``"premise: {premise} hypothesis: {hypothesis}"`` (filled from dict inputs).
        normalize: ``"sum"`` (exact log-likelihood, T0 rank classification), ``"mean"`` (divided by
            the number of scored tokens, ``</s>`` included; T-Few with alpha=1) or ``"chars"``
            (divided by the label's characters; lm-evaluation-harness ``acc_norm``).
        calibrate: ``None``, ``"contextual"`` (Zhao et al.) or ``"domain_pmi"`` (Holtzman et al.);
            see :mod:`t5cls.calibration`.
        mode: ``"full"`` (every label token and ``</s>``) or ``"first_token"`` (the classic
            softmax restricted to each label's first token; labels must start with distinct tokens).
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to bf16 on CUDA, fp32 on CPU (a loaded model keeps its dtype unless given).
        quantize: ``None`` or ``"int8"``: CPU only; the linear layers of the encoder and decoder
            run int8 dynamic quantisation (:func:`t5cls.export.quantize_linear_int8`: torch's
            kernels, inside the same packed encoder and tree decoder; the vocabulary projection
            stays fp32). A loaded model is quantised as a copy; the log-likelihoods move by up
            to a few tenths (README: int8 scoring).
        batch_tokens: most padded encoder tokens plus decoder tree nodes per batch.
        max_length: truncate prompts to this many tokens (defaults to the tokenizer's maximum).
        show_progress_bar: show a tqdm bar over batches (only on a terminal).
        base: for a PEFT adapter directory (``task_type`` SEQ_2_SEQ_LM), its base seq2seq model
            (default: the adapter's ``base_model_name_or_path``); the adapter is merged for scoring.

    Raises:
        InputError: empty, duplicate or indistinguishable labels, a template without a named field,
            an unknown option, or a checkpoint that is not a seq2seq T5 (e.g. a t5cls classifier).

    Example:
        >>> scorer = LabelScorer("google/flan-t5-base", labels=["positive", "negative"],
        ...                      template="sst2 sentence: {text}")  # doctest: +SKIP
        >>> scorer.predict_proba(["a gripping film"]).round(3)  # doctest: +SKIP
        array([[0.982, 0.018]])
    """

    # The encoder runs on real tokens only when that computes the same (see t5cls.packed); set
    # ``scorer.use_packed_encoder = False`` for transformers' padded forward.
    use_packed_encoder = True
    # The decoder blocks run here over the tree (t5cls.attention's kernel, block 0's
    # self-attention once per batch); ``False`` runs transformers' own T5Block (T5 and mT5; UMT5's
    # blocks always run here, as transformers' compute their bias from positions, not depths).
    use_tree_blocks = True
    # Small trees read the encoder states without projecting them to keys and values (see
    # factored_cross_attention); ``False`` projects them for every tree.
    use_factored_cross_attention = True

    def __init__(
        self,
        model: str | Path | PreTrainedModel | tuple[PreTrainedModel, Any],
        tokenizer: Any = None,
        *,
        labels: Sequence[str],
        template: str = "{text}",
        normalize: str = "sum",
        calibrate: str | None = None,
        mode: str = "full",
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        quantize: str | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_length: int | None = None,
        show_progress_bar: bool = True,
        base: str | os.PathLike | None = None,
    ):
        self.labels = check_labels(labels)
        self.template = template
        self.fields = template_fields(template)
        self.normalize = _check_choice("normalize", normalize, NORMALIZATIONS)
        self.calibrate = check_calibration(calibrate)
        self.mode = _check_choice("mode", mode, SCORING_MODES)
        if mode == "first_token" and normalize != "sum":
            raise InputError(f"mode='first_token' scores one token per label; use normalize='sum', not {normalize!r}.")
        self.batch_tokens = check_int("batch_tokens", batch_tokens, hint="padded tokens per batch")
        check_max_length(max_length)
        check_bool("show_progress_bar", show_progress_bar)
        self.show_progress_bar = show_progress_bar

        self.quantize = _check_quantize(quantize, device, dtype)
        self.device = default_device("cpu" if quantize and device is None else device)
        if self.device.type == "cpu":
            tune_malloc()  # see t5cls.allocator
            onednn_linear_enabled()  # a bad T5CLS_ONEDNN_LINEAR fails here, not at the first batch
        if isinstance(model, tuple) and len(model) == 2 and tokenizer is None:
            model, tokenizer = model
        if base is not None and not isinstance(model, (str, os.PathLike)):
            raise InputError(f"base={base!r} goes with a PEFT adapter directory, not with a loaded {type(model).__name__}.")
        if isinstance(model, (str, os.PathLike)):
            self.dtype = default_dtype(self.device, dtype)
            self.model, loaded_tokenizer = load_seq2seq(model, device=self.device, dtype=self.dtype, base=base)
            tokenizer = tokenizer or loaded_tokenizer
        else:
            _check_model(model)
            if tokenizer is None:
                raise InputError("Pass the tokenizer with the model: LabelScorer((model, tokenizer), labels=...).")
            model = model.to(self.device)
            if dtype is not None:
                model = model.to(default_dtype(self.device, dtype))
            self.model = model.eval()
            self.dtype = next(self.model.parameters()).dtype
        if quantize:
            from .export import quantize_linear_int8

            # A model this scorer loaded is its own to quantise; a model passed in is copied.
            self.model = quantize_linear_int8(self.model, inplace=isinstance(model, (str, Path)))
        self.tokenizer = tokenizer
        self.max_length = default_max_length(tokenizer, max_length)

        self._label_ids = self._tokenize_labels()
        if mode == "first_token":
            sequences = [ids[:1] for ids in self._label_ids]
            self._lengths = np.ones(len(self.labels))
        else:
            eos = self.tokenizer.eos_token_id
            if eos is None:
                raise InputError("The tokenizer has no eos_token_id; a T5 tokenizer closes every target with </s>.")
            sequences = [ids + [eos] for ids in self._label_ids]
            lengths = {
                "sum": [1] * len(sequences),
                "mean": [len(seq) for seq in sequences],  # scored tokens: the label's and </s>
                "chars": [len(label) for label in self.labels],
            }
            self._lengths = np.asarray(lengths[normalize], dtype=np.float64)
        config = self.model.config
        start = getattr(config, "decoder_start_token_id", None)
        start = getattr(config, "pad_token_id", None) if start is None else start  # T5 starts decoding with <pad>
        self.trie = build_label_trie(sequences, start_token_id=0 if start is None else start)
        self._decoder = self._decoder_tensors()
        self._reference_scores: np.ndarray | None = None  # content-free prior or domain scores, computed once

    # -- setup ----------------------------------------------------------------------------

    def _tokenize_labels(self) -> list[list[int]]:
        label_ids = [self.tokenizer(label, add_special_tokens=False)["input_ids"] for label in self.labels]
        seen: dict[tuple[int, ...], str] = {}
        for label, ids in zip(self.labels, label_ids):
            if not ids:
                raise InputError(f"label {label!r} has no tokens in this tokenizer; use a label with visible text.")
            key = tuple(ids if self.mode == "full" else ids[:1])
            if key in seen:
                what = "tokenize identically" if self.mode == "full" else "start with the same token"
                hint = "" if self.mode == "full" else "; mode='first_token' cannot tell them apart, use mode='full'"
                raise InputError(f"labels {seen[key]!r} and {label!r} {what} ({list(key)}){hint}.")
            seen[key] = label
        return label_ids

    def _decoder_tensors(self) -> dict[str, torch.Tensor]:
        """The trie as tensors on the model's device: inputs, depths, tree mask, edges."""
        trie, device = self.trie, self.device
        allowed = torch.as_tensor(trie.ancestors, device=device)
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=device)
        mask = mask.masked_fill(~allowed, torch.finfo(self.dtype).min)[None, None]  # (1, 1, nodes, nodes)
        return {
            "input_ids": torch.tensor([trie.tokens], device=device),  # (1, nodes)
            "depths": torch.tensor(trie.depths, device=device),
            "mask": mask,
            "edge_nodes": torch.tensor(trie.edge_nodes, device=device),
            "edge_tokens": torch.tensor(trie.edge_tokens, device=device),
        }

    # -- the forward pass -------------------------------------------------------------------

    def _edge_log_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(batch, edges)`` log-probabilities of every trie edge for a batch of prompts."""
        model, tree = self.model, self._decoder
        encoder = model.get_encoder()
        if self._packs():
            # Real tokens only (t5cls.packed, as T5ForClassification): zeros at padding, which the
            # cross-attention mask hides anyway.
            encoder_hidden = packed_encoder_forward(encoder, input_ids, attention_mask)  # (batch, seq, d_model)
        else:
            encoder_hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        decoder, batch = model.get_decoder(), input_ids.shape[0]
        if self._runs_tree_blocks():
            hidden = self._tree_decoder(decoder, encoder_hidden, attention_mask)
        else:
            hidden = self._tree_decoder_transformers_blocks(decoder, encoder_hidden, attention_mask)
        hidden = decoder.dropout(decoder.final_layer_norm(hidden))
        if getattr(model.config, "scale_decoder_outputs", False):  # original t5 (tied embeddings) rescales
            hidden = hidden * model.config.d_model**-0.5
        nodes, tokens = tree["edge_nodes"], tree["edge_tokens"]
        vocab = model.lm_head.out_features
        step = max(1, LOGIT_BUDGET // (self.trie.num_nodes * vocab))
        out = []
        for start in range(0, batch, step):
            logits = model.lm_head(hidden[start : start + step])  # (step, nodes, vocab)
            logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32, fp64 stays
            # log_softmax, not logits - logsumexp(logits): one fused kernel, 2x faster on a CPU than
            # logsumexp's separate passes, 2-3% of a pass at 20 labels (benchmarks/log_prob_kernels.py).
            out.append(torch.log_softmax(logits, dim=-1)[:, nodes, tokens])  # (step, edges)
        return torch.cat(out)

    def _depth_bias(self, attention: nn.Module) -> torch.Tensor:
        """``(1, heads, nodes, nodes)``: ``attention``'s relative position bias between tree nodes, by depth.

        ``attention.compute_bias(q, k)[..., i, j]`` is the bias of relative position ``j - i``;
        indexing it by depth gives each (query node, key node) pair the bias its label sees alone.
        """
        depths, size = self._decoder["depths"], self.trie.max_depth + 1
        grid = attention.compute_bias(size, size)  # (1, heads, size, size)
        return grid[:, :, depths[:, None], depths[None, :]]

    def _tree_bias(self, attention: nn.Module) -> torch.Tensor:
        """:meth:`_depth_bias` plus the tree mask: the additive mask of the tree's self-attention."""
        return self._depth_bias(attention).to(self.dtype) + self._decoder["mask"]

    def _tree_decoder(self, decoder: nn.Module, encoder_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The decoder blocks over the tree, run here: ``(batch, nodes, d_model)`` before the final norm."""
        batch = encoder_hidden.shape[0]
        # Block 0's self-attention reads only the tree's own token embeddings, the same for every
        # prompt: in evaluation it runs for one row, which the cross-attention then broadcasts.
        rows = batch if decoder.training else 1
        hidden = decoder.dropout(decoder.embed_tokens(self._decoder["input_ids"].expand(rows, -1)))  # (rows, nodes, d_model)
        # (batch, 1, 1, seq) additive: 0 at real tokens, the dtype's minimum at padding.
        cross_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        # T5 and mT5 share block 0's bias; UMT5 has one per layer.
        per_layer = type(decoder.block[0]) is UMT5Block
        shared_bias = None if per_layer else self._tree_bias(decoder.block[0].layer[0].SelfAttention)
        factored = self._factors_cross_attention()
        inplace = not torch.is_grad_enabled()
        for block in decoder.block:
            self_attention, cross_attention = block.layer[0], block.layer[1]
            hidden = tree_self_attention(self_attention, hidden, self._tree_bias(self_attention.SelfAttention) if per_layer else shared_bias)
            if factored:
                hidden = factored_cross_attention(cross_attention, hidden.expand(batch, -1, -1), encoder_hidden, cross_mask)
            else:
                hidden = tree_cross_attention(cross_attention, hidden, encoder_hidden, cross_mask)  # (batch, nodes, d_model)
            # In training (UMT5 only gets here then) the block's own FFN layer, which has the dropout.
            hidden = block.layer[-1](hidden) if decoder.training else feed_forward(block.layer[-1], hidden, inplace=inplace)
        return hidden

    def _tree_decoder_transformers_blocks(self, decoder: nn.Module, encoder_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """:meth:`_tree_decoder` through transformers' own ``T5Block`` (training, fp16's clamps, wrapped blocks)."""
        batch = encoder_hidden.shape[0]
        hidden = decoder.dropout(decoder.embed_tokens(self._decoder["input_ids"].expand(batch, -1)))  # (batch, nodes, d_model)
        cross_mask = create_bidirectional_mask(
            config=decoder.config,
            inputs_embeds=hidden,
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden,
        )
        position_bias = self._depth_bias(decoder.block[0].layer[0].SelfAttention)  # the mask goes separately
        cross_bias = None  # zeros made by the first block, shared by the others as in T5Stack
        for block in decoder.block:
            hidden, _, cross_bias = block(hidden, self._decoder["mask"], position_bias, encoder_hidden, cross_mask, cross_bias)
        return hidden

    def _runs_tree_blocks(self) -> bool:
        """Whether the decoder blocks run here (:meth:`_tree_decoder`) rather than as transformers' ``T5Block``."""
        decoder = self.model.get_decoder()
        if all(type(block) is UMT5Block for block in decoder.block):
            return True  # UMT5Block computes its bias from positions 0..n-1, not from tree depths
        return (
            self.use_tree_blocks
            and not decoder.training
            and self.dtype != torch.float16  # T5Block clamps fp16 activations between its layers
            and all(type(block) is T5Block for block in decoder.block)
        )

    def _factors_cross_attention(self) -> bool:
        decoder = self.model.get_decoder()
        return (
            self.use_factored_cross_attention
            and self._runs_tree_blocks()
            and all(can_factor_cross_attention(block.layer[1], self.trie.num_nodes) for block in decoder.block)
        )

    def _packs(self) -> bool:
        encoder = self.model.get_encoder()
        return self.use_packed_encoder and can_pack(encoder, dtype=encoder.embed_tokens.weight.dtype)

    def _encode(self, prompts: list[str]) -> list[list[int]]:
        if not prompts:  # transformers' fast tokenizers fail on an empty batch (IndexError)
            return []
        encoded = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        long = [i for i, ids in enumerate(encoded) if len(ids) > self.max_length]
        if long:
            logger.warning("%d of %d prompts exceed max_length=%d tokens and were truncated.", len(long), len(prompts), self.max_length)
            for i in long:  # keep the closing </s>
                encoded[i] = encoded[i][: self.max_length - 1] + encoded[i][-1:]
        return encoded

    def _prompt_log_likelihoods(self, prompts: list[str]) -> np.ndarray:
        return self.log_likelihoods_from_ids(self._encode(prompts))

    def log_likelihoods_from_ids(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """:meth:`log_likelihoods` of prompts that are already token ids (each closed by ``</s>``).

        For callers that build prompts at the token level (the Reranker's document windows); the
        ids are used as given, not truncated. Same batching and computation as for text.

        Returns:
            ``(n, num_labels)`` float64, in input order.
        """
        encoded = [list(ids) for ids in encoded]
        if not encoded:
            return np.zeros((0, len(self.labels)))
        edge_log_probs = np.zeros((len(encoded), len(self.trie.edge_tokens)))
        groups = min_padding_batches(
            [len(ids) + self.trie.num_nodes for ids in encoded],
            batch_tokens=self.batch_tokens,
            padding_cost=PACKED_PADDING_COST if self._packs() else 1.0,
        )
        with torch.inference_mode(), linear_kernel(self.device):
            for group in tqdm(groups, desc="scoring", unit="batch", disable=None if self.show_progress_bar else True):
                padded = self.tokenizer.pad({"input_ids": [encoded[i] for i in group]}, return_tensors="pt")
                edge_log_probs[group] = (
                    self._edge_log_probs(padded["input_ids"].to(self.device), padded["attention_mask"].to(self.device))
                    .double()
                    .cpu()
                    .numpy()
                )
        return edge_log_probs @ self.trie.incidence  # (n, labels)

    # -- public API -----------------------------------------------------------------------

    def log_likelihoods(self, inputs: Any) -> np.ndarray:
        """Exact ``log P(label | template(input))`` per input and label, in input order.

        Args:
            inputs: a string (one-field template), a dict of field values, or a list of those.

        Returns:
            ``(n, num_labels)`` float64: the sum over each label's tokens and its closing ``</s>``
            of the decoder's log-softmax (``mode="first_token"``: the first token's log-probability).
        """
        prompts, _ = fill_template(self.template, self.fields, inputs)
        return self._prompt_log_likelihoods(prompts)

    def scores(self, inputs: Any) -> np.ndarray:
        """``(n, num_labels)`` normalised and calibrated log-likelihoods: what :meth:`predict_proba` softmaxes."""
        return self._calibrated(length_normalize(self.log_likelihoods(inputs), self._lengths))

    def predict_proba(self, inputs: Any) -> np.ndarray:
        """``(n, num_labels)`` label probabilities: softmax of :meth:`scores` across the labels.

        Raises:
            InputError: fewer than two labels (a distribution over one label is always 1).
        """
        if len(self.labels) < 2:
            raise InputError(f"predict_proba needs at least 2 labels, got {self.labels}; use log_likelihoods for one.")
        return softmax(self.scores(inputs), axis=1)

    def predict(self, inputs: Any) -> str | list[str]:
        """The most probable label per input (one label for one input, else a list)."""
        _, single = fill_template(self.template, self.fields, inputs)
        result = [self.labels[int(j)] for j in self.predict_proba(inputs).argmax(axis=1)]
        return result[0] if single else result

    def entropy(self, inputs: Any) -> np.ndarray:
        """``(n,)`` entropy in nats of each input's label distribution (0 = certain, log C = uniform)."""
        return _entropy(self.predict_proba(inputs), axis=1)

    def records(self, proba: np.ndarray) -> list[dict[str, Any]]:
        """Flat output rows for ``proba`` (what ``t5cls score`` writes after the template fields), one per input.

        Each row: ``label`` (the most probable), ``p_<label>`` per label and ``entropy`` (nats).
        """
        entropies = _entropy(proba, axis=1)
        return [
            {"label": self.labels[int(row.argmax())]}
            | {f"p_{label}": float(value) for label, value in zip(self.labels, row)}
            | {"entropy": float(h)}
            for row, h in zip(proba, entropies)
        ]

    # -- calibration ----------------------------------------------------------------------

    def _calibrated(self, scores: np.ndarray) -> np.ndarray:
        if self.calibrate is None:
            return scores
        if self._reference_scores is None:
            if self.calibrate == "contextual":
                prompts = [self.template.format(**fill_fields(self.fields, value)) for value in CONTENT_FREE_INPUTS]
                self._reference_scores = content_free_prior(
                    length_normalize(self._prompt_log_likelihoods(prompts), self._lengths)
                )
            else:
                domain = [self.template.format(**fill_fields(self.fields, ""))]
                self._reference_scores = length_normalize(self._prompt_log_likelihoods(domain), self._lengths)[0]
        if self.calibrate == "contextual":
            return contextual_scores(scores, self._reference_scores)
        return domain_pmi(scores, self._reference_scores)


__all__ = [
    "LabelScorer",
    "LabelTrie",
    "build_label_trie",
    "fill_template",
    "length_normalize",
    "load_seq2seq",
    "template_fields",
    "SCORING_MODES",
    "NORMALIZATIONS",
]
