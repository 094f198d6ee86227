"""Scaled dot-product attention for the inference fast paths, on the kernel that is faster there.

T5 attends over short sequences (tens of tokens for classification prompts, a few dozen label-tree
nodes), with an additive mask that carries the relative position bias. On a CPU in fp32, PyTorch's
``scaled_dot_product_attention`` takes its flash-attention kernel, which at these shapes ran
1.1-1.7x slower than the plain computation (two batched matmuls around a softmax) up to 144 keys,
even with it at 128 keys in a larger batch, and faster from 192 keys on, where the score matrices
outgrow the cache (``benchmarks/attention_kernels.py`` measures both at the shapes LabelScorer and
the packed encoder run). :func:`attend` takes the plain computation on a CPU in fp32 up to
:data:`CPU_PLAIN_MAX_KEYS` keys and SDPA everywhere else (CUDA, bf16, long inputs). Both compute
``softmax(q k^T * scale + mask) v``; in fp32 they agree to rounding (tests check 1e-5 against
transformers' forward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Longest key sequence the plain computation takes on a CPU (at 192 keys SDPA was already faster).
CPU_PLAIN_MAX_KEYS = 128


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, *, scale: float) -> torch.Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``, without dropout.

    Args:
        query: ``(batch, heads, queries, head_dim)``, or one row ``(1, heads, queries, head_dim)`` for
            the whole batch (LabelScorer's label tree in its first block).
        key, value: ``(batch, heads, keys, head_dim)``.
        mask: additive, broadcastable to ``(batch, heads, queries, keys)`` (relative position bias
            plus the dtype's minimum at hidden keys), or ``None``.
        scale: the factor on the scores (T5: 1.0, its query projection is pre-scaled).

    Returns:
        ``(batch, heads, queries, head_dim)``.
    """
    if query.device.type != "cpu" or query.dtype != torch.float32 or key.shape[-2] > CPU_PLAIN_MAX_KEYS:
        # SDPA's fused CUDA kernels take q, k and v of one batch size only (else it falls back to its slow one).
        query = query.expand(key.shape[0], -1, -1, -1) if query.shape[0] != key.shape[0] else query
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
    return plain_attention(query, key, value, mask, scale=scale)


def plain_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, *, scale: float) -> torch.Tensor:
    """:func:`attend`'s CPU kernel: two batched matmuls around a softmax, whatever the device or length."""
    scores = torch.matmul(query, key.transpose(-1, -2))  # (batch, heads, queries, keys), this call's own
    if scale != 1.0:
        scores.mul_(scale)
    if mask is not None:  # in place where the mask broadcasts to the scores, as it does for every caller here
        scores = scores.add_(mask) if torch.broadcast_shapes(scores.shape, mask.shape) == scores.shape else scores + mask
    return torch.matmul(torch.softmax(scores, dim=-1), value)

__all__ = ["CPU_PLAIN_MAX_KEYS", "attend", "plain_attention"]
