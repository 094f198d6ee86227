"""The suite's own fixtures: the same inputs in every pytest process."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from tests.conftest import REPO, build_tokenizer


def vocab_digest(vocab: dict[str, int] | None = None) -> str:
    """SHA-256 of a tokenizer's (piece, id) pairs; by default of a freshly trained test tokenizer."""
    vocab = build_tokenizer().get_vocab() if vocab is None else vocab
    return hashlib.sha256(repr(sorted(vocab.items())).encode()).hexdigest()


def test_test_tokenizer_has_the_same_ids_in_every_process(tiny_tokenizer):
    # The Unigram trainer orders its coverage characters anew in every process; before the test
    # tokenizer gave them one score, the ids differed from process to process, and with them every
    # tiny model's inputs (an int8 comparison passed or failed by the process's draw).
    code = "from tests.test_fixtures import vocab_digest; print(vocab_digest())"
    run = [sys.executable, "-c", code]
    digests = {subprocess.run(run, cwd=REPO, capture_output=True, text=True, check=True, timeout=300).stdout.strip() for _ in range(2)}
    assert digests == {vocab_digest(tiny_tokenizer.get_vocab())}  # the session's tokenizer, as loaded from disk
