"""demo.py and `t5cls demo`: the shipped data, the from-scratch tokenizer, and real demo runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import t5cls
from t5cls.demo import EXAMPLES, demo_data, run_demo, split, train_tokenizer

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_demo_data_is_shipped_balanced_and_unique():
    frame = demo_data()
    assert len(frame) >= 300
    counts = frame["label"].value_counts()
    assert len(counts) >= 6 and counts.min() == counts.max()  # balanced intents
    assert frame["text"].is_unique
    assert not set(EXAMPLES) & set(frame["text"])  # the closing examples are new sentences
    train, test = split(frame, seed=0)
    assert len(test) == round(0.2 * len(frame)) and not set(train["text"]) & set(test["text"])
    assert test["label"].value_counts().nunique() == 1  # stratified


def test_tokenizer_is_t5_shaped_deterministic_and_saves(tmp_path):
    from transformers import AutoTokenizer

    texts = demo_data()["text"].tolist()
    tokenizer = train_tokenizer(texts, vocab_size=500)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    ids = tokenizer("Turn ON the lights")["input_ids"]
    assert ids[-1] == 1 and tokenizer.decode(ids, skip_special_tokens=True) == "turn on the lights"
    assert train_tokenizer(texts, vocab_size=500).get_vocab() == tokenizer.get_vocab()  # same data, same vocabulary
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("Turn ON the lights")["input_ids"] == ids


def _demo(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "t5cls.cli", "demo", *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600
    )


def test_cli_demo_from_scratch_end_to_end(tmp_path):
    """The README's main job, as shipped (default settings, about 20 s)."""
    done = _demo(cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "600 requests in 8 intents" in out and "120 held out" in out
    accuracy = float(out.split("held-out accuracy: ")[1].split()[0])
    assert accuracy > 0.5  # 8 intents: chance is 0.125
    assert all(repr(text) in out for text in EXAMPLES)
    words = " ".join(out.split())
    assert "demonstrates the pipeline" in words and "not what T5 reaches" in words and "--model" in words
    demo_dir = tmp_path / "t5cls-demo"
    assert {"metrics.json", "loss_curve.png", "confusion_matrix.png", "model.safetensors"} <= {p.name for p in demo_dir.iterdir()}
    assert t5cls.Classifier(demo_dir).predict("switch off the kitchen lights") in t5cls.Classifier(demo_dir).labels

    again = _demo("--epochs", 1, cwd=tmp_path)  # a demo replaces its own output
    assert again.returncode == 0, again.stderr[-2000:]


def test_demo_refuses_a_directory_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    done = _demo("--output", tmp_path / "mine", "--epochs", 1, cwd=tmp_path)
    assert done.returncode == 2 and "was not written by a previous demo" in done.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_demo_with_a_checkpoint(tiny_t5_dir, tmp_path):
    result = run_demo(tiny_t5_dir, output_dir=tmp_path / "ckpt", epochs=1, show_progress_bar=False)
    assert not result.from_scratch
    assert result.n_train == 480 and result.n_test == 120 and 0.0 <= result.accuracy <= 1.0
    assert [text for text, _ in result.examples] == EXAMPLES
    ranked = result.examples[0][1]
    assert len(ranked) == 8 and ranked[0][1] >= ranked[-1][1] and sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-5)
