"""Token-budget batching: group inputs of similar length so that padded batches fit a budget.

A data module: imports nothing of the model. (The HTTP server's micro-batcher, which merges
concurrent requests, is :mod:`t5cls.server.batcher`.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import InputError

# Padded tokens per batch. On 2 CPU threads with t5-small shapes, budgets of 1k to 4k tokens ran
# within 10% of each other (matmuls are large enough either way); more only costs memory.
DEFAULT_BATCH_TOKENS = 4096
# Price of a padding token relative to a real one, for batching, when the encoder skips padding
# (t5cls.packed): only attention sees it (2% of a real token's FLOPs at 64 tokens, 16% at 512 for
# t5-small), plus the memory traffic of the padded attention inputs. Of 0.1, 0.3, 0.6 and 1.0,
# 0.3 ran fastest on t5-small shapes and AG News texts (2 threads): fewer, larger batches
# (1.0 against 0.3: benchmarks/classifier_ablation.py, settings 3 and 4).
PACKED_PADDING_COST = 0.3


def batches(lengths: Sequence[int], *, batch_tokens: int, max_batch_size: int | None = None) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size fits a token budget.

    Inputs are sorted by length (longest first, so a too-large budget fails on the first batch,
    not the last) and packed while ``len(batch) * longest_in_batch <= batch_tokens``. An input
    longer than the budget gets a batch of its own. Callers put results back in input order.

    Args:
        lengths: token count of each input.
        batch_tokens: most padded tokens per batch.
        max_batch_size: optional cap on inputs per batch.

    Returns:
        Lists of indices into ``lengths``.

    Example:
        >>> batches([5, 1, 4, 2], batch_tokens=8)
        [[0], [2, 3], [1]]
    """
    if batch_tokens < 1:
        raise InputError(f"batch_tokens={batch_tokens} must be a positive number of tokens.")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    result: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(int(lengths[index]), 1)
        longest_if_added = max(longest, length)
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (full or (len(current) + 1) * longest_if_added > batch_tokens):
            result.append(current)
            current, longest_if_added = [], length
        current.append(index)
        longest = longest_if_added
    if current:
        result.append(current)
    return result


def padding_share(lengths: Sequence[int], groups: Iterable[Sequence[int]]) -> float:
    """Padding tokens as a share of all processed tokens when ``groups`` are padded to their longest."""
    processed = real = 0
    for group in groups:
        longest = max(lengths[i] for i in group)
        processed += longest * len(group)
        real += sum(lengths[i] for i in group)
    return 0.0 if processed == 0 else (processed - real) / processed


def min_padding_batches(
    lengths: Sequence[int],
    *,
    batch_tokens: int,
    max_batch_size: int | None = None,
    batch_cost: int = 64,
    padding_cost: float = 1.0,
) -> list[list[int]]:
    """Length-sorted batches under a padded-token budget, cut where they waste the fewest tokens.

    :func:`batches` fills each batch up to the budget, so a batch can span a wide range of
    lengths (on 512 AG News texts with a 4096-token budget, 11% of the processed tokens are
    padding). Here the cut points over the sorted inputs are chosen by dynamic programming to
    minimise ``padding_cost * padding tokens + batch_cost * number of batches``: the padding is
    what a longer batch wastes, ``batch_cost`` what another forward call costs (launch overhead,
    smaller matmuls), in tokens. A model that skips padding in its linear layers (the packed
    encoder, :mod:`t5cls.packed`) pays for padding only in attention: a ``padding_cost`` well
    under 1 then keeps batches large. Same contract as :func:`batches`: longest first, every
    batch within ``batch_tokens`` (an input longer than that gets a batch of its own).

    Args:
        lengths: token count of each input.
        batch_tokens: most padded tokens per batch.
        max_batch_size: optional cap on inputs per batch.
        batch_cost: the price of one more batch, in tokens.
        padding_cost: the price of a padding token, relative to a real one.

    Returns:
        Lists of indices into ``lengths``.

    Example:
        >>> min_padding_batches([5, 1, 4, 2], batch_tokens=8, batch_cost=0)
        [[0], [2], [3, 1]]
    """
    import numpy as np

    if batch_tokens < 1:
        raise InputError(f"batch_tokens={batch_tokens} must be a positive number of tokens.")
    if batch_cost < 0:
        raise InputError(f"batch_cost={batch_cost} must be >= 0 tokens.")
    if padding_cost < 0:
        raise InputError(f"padding_cost={padding_cost} must be >= 0 (a share of a real token's cost).")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    size = np.array([max(int(lengths[i]), 1) for i in order], dtype=np.int64)  # longest first
    n = len(size)
    real = np.concatenate([[0], np.cumsum(size)])  # real[i]: real tokens of the first i inputs
    cap = max_batch_size or n
    best = np.zeros(n + 1, dtype=np.float64)  # best[i]: cheapest plan for the first i inputs
    start = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that plan starts
    low = 0
    for i in range(1, n + 1):
        # A batch order[j:i] is padded to size[j]; it fits when (i - j) * size[j] <= batch_tokens.
        # That product only grows as j moves left, and for larger i, so `low` only moves right.
        while low < i - 1 and ((i - low) * size[low] > batch_tokens or i - low > cap):
            low += 1
        j = np.arange(low, i)
        padding = (i - j) * size[low:i] - (real[i] - real[low:i])  # padding tokens of batch order[j:i]
        cost = best[low:i] + padding_cost * padding + batch_cost
        pick = int(np.argmin(cost))
        best[i], start[i] = cost[pick], low + pick
    groups: list[list[int]] = []
    i = n
    while i > 0:
        groups.append(order[start[i] : i])
        i = int(start[i])
    return groups[::-1]


__all__ = ["batches", "min_padding_batches", "padding_share"]
