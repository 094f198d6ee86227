"""A T5 encoder forward pass that skips padding: the inference fast path.

Nine tenths of a T5 encoder's FLOPs are per-token linear layers (q, k, v, o and the FFN), and a
padded batch spends them on padding too. :func:`packed_encoder_forward` runs the encoder's own
modules on the real tokens only, packed into one ``(tokens, d_model)`` matrix, and lays the
tokens out padded just for the attention product (:func:`t5cls.attention.attend`), which needs
the ``(batch, heads, seq, seq)`` shape. The relative position bias and the padding mask are
combined once per call instead of once per layer. The result equals ``T5Stack.forward`` at every
real token (tests check 1e-5 in fp32); padding positions are zeros. :func:`rms_norm` and
:func:`feed_forward` serve LabelScorer's label-tree decoder too.

It is used in evaluation mode with SDPA attention, in fp32 or bf16, and when the encoder's
blocks are plain ``T5Block`` (t5, mT5) or ``UMT5Block`` (UMT5: a bias per layer) modules (see :func:`can_pack`); anything else (training, fp16,
FSDP or checkpoint-wrapped blocks, eager attention, output_attentions, tracing for export) takes
transformers' own forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.t5.modeling_t5 import (
    T5Block,
    T5DenseActDense,
    T5LayerFF,
    T5LayerNorm,
    T5LayerSelfAttention,
    T5Stack,
)
from transformers.models.umt5.modeling_umt5 import UMT5Block, UMT5LayerNorm

from .attention import attend

PACKED_DTYPES = (torch.float32, torch.bfloat16)


def can_pack(encoder: T5Stack, *, dtype: torch.dtype) -> bool:
    """Whether :func:`packed_encoder_forward` computes what ``encoder.forward`` would.

    Not in training (dropout), not in fp16 (transformers clamps fp16 activations between
    layers), not while being traced or compiled (the packed shapes depend on the data), only with
    SDPA attention, and only when every block is a plain ``T5Block`` or ``UMT5Block`` (FSDP and
    activation checkpointing wrap blocks with hooks that calling their sub-modules would skip).
    """
    return (
        not encoder.training
        and dtype in PACKED_DTYPES
        and encoder.config._attn_implementation == "sdpa"
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and (all(type(block) is T5Block for block in encoder.block) or all(type(block) is UMT5Block for block in encoder.block))
    )


def packed_encoder_forward(
    encoder: T5Stack,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """The encoder's ``last_hidden_state`` ``(batch, seq, d_model)``, computed on real tokens only.

    Args:
        encoder: a T5 encoder stack (``T5EncoderModel.encoder``, ``T5Model.encoder``, ...) for which
            :func:`can_pack` holds.
        input_ids: token ids ``(batch, seq)``, or ``inputs_embeds`` ``(batch, seq, d_model)``.
        attention_mask: 1 for real tokens, 0 for padding ``(batch, seq)``; any pattern (left or
            right padding). ``None``: every position is real.

    Returns:
        Hidden states after the final layer norm, equal to ``encoder(...).last_hidden_state`` at
        real tokens and zero at padding.
    """
    embeds = encoder.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (batch, seq, d_model)
    batch, seq, d_model = embeds.shape
    if attention_mask is None:
        keep = torch.ones(batch, seq, dtype=torch.bool, device=embeds.device)
    else:
        keep = attention_mask.to(device=embeds.device, dtype=torch.bool)
    # No padding at all (one text, or texts of one length): no packing to do.
    index = None if bool(keep.all()) else keep.reshape(-1).nonzero().squeeze(1)  # (tokens,)
    layout = None if index is None else _Layout(index, (~keep).reshape(-1).nonzero().squeeze(1), batch * seq)
    hidden = embeds.reshape(batch * seq, d_model)
    if index is not None:
        hidden = hidden.index_select(0, index)  # (tokens, d_model)

    def layer_bias(attention: nn.Module) -> torch.Tensor:
        bias = attention.compute_bias(seq, seq, device=embeds.device).to(embeds.dtype)  # (1, heads, seq, seq)
        if index is not None:
            # The same additive mask transformers' SDPA path builds in every layer.
            bias = torch.where(keep[:, None, None, :], bias, torch.finfo(embeds.dtype).min)  # (batch, heads, seq, seq)
        return bias.contiguous()

    # T5 and mT5 share layer 0's bias, combined with the mask once per call; UMT5 has one per layer.
    per_layer = type(encoder.block[0]) is UMT5Block
    bias = None if per_layer else layer_bias(encoder.block[0].layer[0].SelfAttention)

    # Without autograd, residual adds and ReLU write into buffers this function owns.
    inplace = not torch.is_grad_enabled()
    if inplace and index is None and inputs_embeds is not None:
        hidden = hidden.clone()  # the caller's tensor
    for block in encoder.block:
        block_bias = layer_bias(block.layer[0].SelfAttention) if per_layer else bias
        hidden = _self_attention(block.layer[0], hidden, layout, batch, seq, block_bias, inplace=inplace)
        hidden = feed_forward(block.layer[-1], hidden, inplace=inplace)
    hidden = rms_norm(encoder.final_layer_norm, hidden)
    if layout is None:
        return hidden.view(batch, seq, d_model)
    return layout.pad(hidden).view(batch, seq, d_model)


class _Layout:
    """Where the packed tokens sit in the padded ``(batch * seq)`` rows."""

    def __init__(self, real: torch.Tensor, padding: torch.Tensor, rows: int):
        self.real, self.padding, self.rows = real, padding, rows

    def pad(self, packed: torch.Tensor) -> torch.Tensor:
        """``(tokens, n)`` -> ``(batch * seq, n)`` with zero rows at padding."""
        # Zeros, not garbage: masked keys get a zero weight, and 0 * NaN would still be NaN.
        out = packed.new_empty(self.rows, packed.shape[1]).index_copy_(0, self.real, packed)
        return out.index_fill_(0, self.padding, 0)

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """``(batch * seq, n)`` -> ``(tokens, n)``."""
        return padded.index_select(0, self.real)


def _residual(hidden: torch.Tensor, update: torch.Tensor, *, inplace: bool) -> torch.Tensor:
    # In place only when no dtype promotion is lost (e.g. T5 keeps ``wo`` in fp32 for fp16 weights).
    return hidden.add_(update) if inplace and update.dtype == hidden.dtype else hidden + update


def rms_norm(norm: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``norm(hidden)`` for a ``T5LayerNorm``: in fp32 as one fused kernel (the same formula), else the module itself."""
    weight = norm.weight
    if hidden.dtype == weight.dtype == torch.float32 and type(norm) in (T5LayerNorm, UMT5LayerNorm):
        return F.rms_norm(hidden, (hidden.shape[-1],), weight, norm.variance_epsilon)
    return norm(hidden)  # bf16: T5LayerNorm's own fp32 variance and casts


def _self_attention(
    layer: T5LayerSelfAttention,
    hidden: torch.Tensor,
    layout: _Layout | None,
    batch: int,
    seq: int,
    bias: torch.Tensor,
    *,
    inplace: bool,
) -> torch.Tensor:
    """``T5LayerSelfAttention`` on packed tokens ``(tokens, d_model)``: norm, attention, residual."""
    attention = layer.SelfAttention
    heads, head_dim = attention.n_heads, attention.key_value_proj_dim
    normed = rms_norm(layer.layer_norm, hidden)

    def padded_heads(projection: torch.nn.Module) -> torch.Tensor:
        states = projection(normed)  # (tokens, heads * head_dim)
        if layout is not None:
            states = layout.pad(states)  # (batch * seq, heads * head_dim)
        return states.view(batch, seq, heads, head_dim).transpose(1, 2)  # (batch, heads, seq, head_dim)

    query, key, value = padded_heads(attention.q), padded_heads(attention.k), padded_heads(attention.v)
    context = attend(query, key, value, bias, scale=attention.scaling)
    context = context.transpose(1, 2).reshape(batch * seq, heads * head_dim)  # (batch * seq, inner)
    if layout is not None:
        context = layout.pack(context)  # (tokens, inner)
    update = attention.o(context)
    return _residual(hidden, update, inplace=inplace)


def _weight_dtype(linear: nn.Module) -> torch.dtype | None:
    """A linear layer's weight dtype; ``None`` for int8 dynamic layers, whose ``weight`` is a method."""
    weight = linear.weight
    return weight.dtype if isinstance(weight, torch.Tensor) else None


def feed_forward(layer: T5LayerFF, hidden: torch.Tensor, *, inplace: bool) -> torch.Tensor:
    """``T5LayerFF`` (norm, FFN, residual) on states of any leading shape; ``inplace``: add into ``hidden``."""
    dense = layer.DenseReluDense
    normed = rms_norm(layer.layer_norm, hidden)
    if inplace and type(dense) is T5DenseActDense and isinstance(dense.act, nn.ReLU) and _weight_dtype(dense.wi) == _weight_dtype(dense.wo):
        update = dense.wo(torch.relu_(dense.wi(normed)))  # the original T5's ReLU FFN, without a copy
    else:
        update = dense(normed)  # gated-GELU (flan-t5, mT5, UL2) and the rest: transformers' own
    return _residual(hidden, update, inplace=inplace)


__all__ = ["can_pack", "feed_forward", "packed_encoder_forward", "PACKED_DTYPES", "rms_norm"]
