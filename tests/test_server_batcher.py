"""MicroBatcher on its own: merging, budgets, keys, error isolation, closing."""

from __future__ import annotations

import asyncio

import pytest

from t5cls.server.batcher import BatcherClosedError, MicroBatcher


def _run_batcher(run, submissions, **options):
    """Submit ``(items, key)`` pairs concurrently; return results (or exceptions) and the calls made."""
    calls: list[list] = []

    def recording(items, key):
        calls.append(list(items))
        return run(items, key)

    async def main():
        batcher = MicroBatcher(recording, executor=None, **options)
        batcher.start()
        outcomes = await asyncio.gather(
            *(batcher.submit(items, costs=[len(i) for i in items], key=key) for items, key in submissions),
            return_exceptions=True,
        )
        assert batcher.alive
        await batcher.close()
        assert not batcher.alive
        with pytest.raises(BatcherClosedError):
            await batcher.submit(["late"], costs=[1])
        return outcomes, batcher.stats

    outcomes, stats = asyncio.run(asyncio.wait_for(main(), timeout=30))
    return outcomes, calls, stats


def _upper(items, key):
    return [item.upper() for item in items]


def test_batcher_merges_concurrent_requests_in_order():
    submissions = [(["a", "bb"], None), (["ccc"], None), (["d"], None)]
    outcomes, calls, stats = _run_batcher(_upper, submissions, max_wait_ms=200)
    assert outcomes == [["A", "BB"], ["CCC"], ["D"]]
    assert calls == [["a", "bb", "ccc", "d"]]
    assert stats.as_dict()["mean_batch_size"] == 4.0


def test_batcher_respects_budget_batch_size_and_keys():
    many = [([c], None) for c in "abcd"]
    _, calls, _ = _run_batcher(_upper, many, max_wait_ms=200, max_batch_size=1)
    assert calls == [["a"], ["b"], ["c"], ["d"]]  # batching off: one request per call
    _, calls, _ = _run_batcher(_upper, [(["xxxx"], None), (["yyyy"], None), (["zz"], None)], max_wait_ms=200, max_batch_tokens=8)
    assert calls == [["xxxx", "yyyy"], ["zz"]]  # 2 inputs x 4 tokens fill the budget
    outcomes, calls, _ = _run_batcher(_upper, [(["a"], "k1"), (["b"], "k2"), (["c"], "k1")], max_wait_ms=200)
    assert outcomes == [["A"], ["B"], ["C"]]
    assert calls == [["a", "c"], ["b"]]


def test_batcher_error_fails_only_its_request():
    def fragile(items, key):
        if "boom" in items:
            raise RuntimeError("cannot classify boom")
        return _upper(items, key)

    outcomes, calls, stats = _run_batcher(fragile, [(["a"], None), (["boom", "b"], None), (["c"], None)], max_wait_ms=200)
    assert outcomes[0] == ["A"] and outcomes[2] == ["C"]
    assert isinstance(outcomes[1], RuntimeError) and "boom" in str(outcomes[1])
    assert calls[0] == ["a", "boom", "b", "c"]  # merged first, then retried one by one
    assert stats.failed_requests == 1


def test_batcher_refuses_bad_settings():
    with pytest.raises(ValueError, match="max_batch_tokens=0"):
        MicroBatcher(_upper, max_batch_tokens=0)
    with pytest.raises(ValueError, match="max_wait_ms=-1"):
        MicroBatcher(_upper, max_wait_ms=-1)

