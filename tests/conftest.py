"""Shared fixtures: tiny random T5 checkpoints written to disk once per session.

Every test loads through the real loading code (directories with config.json, safetensors and
tokenizer files). The real T5 vocabulary comes from ../shared/tokenizers/t5; tests that need it
skip with a reason when ../shared is absent.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import torch

from t5cls.inputs import iter_texts

# Two cores: keep torch from oversubscribing when pytest runs beside other work.
torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TOKENIZER_DIR = SHARED / "tokenizers" / "t5"
DATA_DIR = SHARED / "data"
REFERENCE_DIR = SHARED / "reference"

needs_shared = pytest.mark.skipif(not TOKENIZER_DIR.is_dir(), reason="../shared (real T5 vocabulary and data) is absent")

# Tiny shapes: d_model 32, 2 layers; the vocabulary is the real one (32128 rows).
TINY = dict(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0)


def tiny_t5_config(**overrides):
    """A flan-t5-like (gated-gelu, untied) tiny config; pass overrides for t5 (relu, tied) etc."""
    from transformers import T5Config

    fields = {**TINY, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "decoder_start_token_id": 0}
    fields.update(overrides)
    return T5Config(**fields)


def build_seq2seq(seed: int = 0, **overrides):
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    return T5ForConditionalGeneration(tiny_t5_config(**overrides)).eval()


@pytest.fixture(scope="session")
def t5_tokenizer():
    if not TOKENIZER_DIR.is_dir():
        pytest.skip("../shared/tokenizers/t5 is absent")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory, t5_tokenizer) -> Path:
    """A flan-t5-shaped T5ForConditionalGeneration checkpoint with the real tokenizer."""
    out = tmp_path_factory.mktemp("tiny-flan-t5")
    build_seq2seq(seed=0).save_pretrained(out)
    t5_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_t5_relu_dir(tmp_path_factory, t5_tokenizer) -> Path:
    """An original-t5-shaped checkpoint (relu, tied embeddings), saved as pytorch_model.bin."""
    out = tmp_path_factory.mktemp("tiny-t5-relu")
    model = build_seq2seq(seed=1, feed_forward_proj="relu", tie_word_embeddings=True)
    model.config.save_pretrained(out)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    t5_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory, tiny_t5_dir, t5_tokenizer) -> Path:
    """A 3-label T5ForClassification converted from ``tiny_t5_dir``, with its tokenizer."""
    import t5cls
    from t5cls.convert import save_classifier

    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["negative", "neutral", "positive"])
    torch.manual_seed(0)
    with torch.no_grad():  # a non-trivial query so that parity tests are not comparing near-zero logits
        model.query_embeddings.weight.normal_()
    out = tmp_path_factory.mktemp("tiny-classifier") / "model"
    save_classifier(model, out, tokenizer=t5_tokenizer)
    return out


@pytest.fixture(scope="session")
def tiny_nli_dir(tmp_path_factory, tiny_t5_dir, t5_tokenizer) -> Path:
    """A 3-way NLI T5ForClassification (entailment / neutral / contradiction) with its tokenizer."""
    import t5cls
    from t5cls.convert import save_classifier

    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["entailment", "neutral", "contradiction"])
    torch.manual_seed(1)
    with torch.no_grad():
        model.query_embeddings.weight.normal_()
        model.classifier.weight.normal_()
    out = tmp_path_factory.mktemp("tiny-nli") / "model"
    save_classifier(model, out, tokenizer=t5_tokenizer)
    return out


def sample_texts(n: int = 64) -> list[str]:
    """Real texts: AG News rows when ../shared is present, else a fixed synthetic list."""
    path = DATA_DIR / "agnews" / "train.tsv"
    if path.is_file():
        return list(itertools.islice(iter_texts(path), n))
    words = "the market rallied as the team won a close game while scientists found new results".split()
    return [" ".join(words[: 3 + (i * 7) % len(words)]) for i in range(n)]


@pytest.fixture(scope="session")
def broken_vocab_classifier(tmp_path_factory, t5_tokenizer) -> tuple[Path, str, str]:
    """A classifier whose embedding table is smaller than its tokenizer's vocabulary: a real bug.

    Returns ``(directory, good_text, bad_text)``: ``good_text`` tokenizes to ids inside the table
    and classifies; ``bad_text`` has an id past its end, so the model raises an IndexError, as a
    bug deep in a forward pass would (tests of the CLI's exit 1 and the server's 500).
    """
    import t5cls
    from t5cls.convert import save_classifier

    good = "the"
    rows = max(t5_tokenizer(good)["input_ids"] + [t5_tokenizer.pad_token_id, t5_tokenizer.eos_token_id]) + 1
    candidates = ["xylophone quantum", "zeitgeist", "Mississippi", "ornithology", "the " + t5_tokenizer.convert_ids_to_tokens(len(t5_tokenizer) - 1)]
    bad = next(text for text in candidates if max(t5_tokenizer(text)["input_ids"]) >= rows)
    source = tmp_path_factory.mktemp("small-vocab-t5")
    build_seq2seq(seed=2, vocab_size=rows).save_pretrained(source)
    model = t5cls.T5ForClassification.from_t5(source, labels=["negative", "positive"])
    out = tmp_path_factory.mktemp("broken-vocab-classifier") / "model"
    save_classifier(model, out, tokenizer=t5_tokenizer)
    return out, good, bad
