"""t5cls.attention.attend against PyTorch's scaled_dot_product_attention, on both of its kernels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from t5cls.attention import CPU_PLAIN_MAX_KEYS, attend

HEADS, HEAD_DIM = 4, 8


def _qkv(batch: int, queries: int, keys: int, dtype: torch.dtype = torch.float32):
    generator = torch.Generator().manual_seed(queries * 1000 + keys)
    query = torch.randn(batch, HEADS, queries, HEAD_DIM, generator=generator, dtype=dtype)
    key, value = torch.randn(2, batch, HEADS, keys, HEAD_DIM, generator=generator, dtype=dtype)
    return query, key, value


def _masks(batch: int, queries: int, keys: int) -> dict[str, torch.Tensor | None]:
    """The additive masks callers pass: none, per head (relative position bias), per key (padding)."""
    padding = torch.zeros(batch, 1, 1, keys)
    padding[0, ..., keys // 2 :] = torch.finfo(torch.float32).min  # the first row's second half is padding
    return {
        "none": None,
        "bias": torch.randn(1, HEADS, queries, keys, generator=torch.Generator().manual_seed(1)),
        "padding": padding,
        "bias and padding": torch.randn(batch, HEADS, queries, keys, generator=torch.Generator().manual_seed(2)) + padding,
    }


@pytest.mark.parametrize("keys", [1, 36, CPU_PLAIN_MAX_KEYS, CPU_PLAIN_MAX_KEYS + 1, 200], ids=lambda k: f"{k}keys")
@pytest.mark.parametrize("scale", [1.0, 0.125])
def test_equals_sdpa_on_either_kernel(keys, scale):
    batch, queries = 3, 7
    query, key, value = _qkv(batch, queries, keys)
    for name, mask in _masks(batch, queries, keys).items():
        expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
        torch.testing.assert_close(attend(query, key, value, mask, scale=scale), expected, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("keys", [9, CPU_PLAIN_MAX_KEYS + 1], ids=["plain", "sdpa"])
def test_broadcasts_a_single_query_row_over_the_batch(keys):
    # The label tree's block 0 hands one row of queries to a batch of encoder states.
    query, _, _ = _qkv(1, 5, keys)
    _, key, value = _qkv(3, 5, keys)
    mask = _masks(3, 5, keys)["padding"]
    expected = F.scaled_dot_product_attention(query.expand(3, -1, -1, -1).contiguous(), key, value, attn_mask=mask, scale=1.0)
    got = attend(query, key, value, mask, scale=1.0)
    assert got.shape == (3, HEADS, 5, HEAD_DIM)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_leaves_its_inputs_unchanged():
    query, key, value = _qkv(2, 4, 6)
    mask = _masks(2, 4, 6)["bias and padding"]
    before = [t.clone() for t in (query, key, value, mask)]
    attend(query, key, value, mask, scale=0.5)
    for tensor, copy in zip((query, key, value, mask), before):
        assert torch.equal(tensor, copy)


def test_other_dtypes_take_sdpa_as_it_is():
    query, key, value = _qkv(2, 4, 6, dtype=torch.bfloat16)
    mask = _masks(2, 4, 6)["bias"].to(torch.bfloat16)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=1.0)
    assert torch.equal(attend(query, key, value, mask, scale=1.0), expected)


def test_the_kernel_benchmark_runs():
    # benchmarks/attention_kernels.py checks the two kernels equal at every shape before it times them.
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "attention_kernels.py"
    result = subprocess.run([sys.executable, str(script), "--repeats", "1", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| encoder") or line.startswith("| tree")]
    assert len(rows) == 8 and rows[0].endswith("| plain |") and rows[-1].endswith("| SDPA |")
