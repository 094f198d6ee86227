"""Long inputs: token windows, their aggregation, and long_inputs="chunk" in Classifier and ZeroShotClassifier.

Chunked results are checked against the windows computed directly: each window's token ids run
through transformers' padded forward one at a time, softmaxed, and averaged (or maxed) by hand.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import torch
from scipy.special import softmax
from transformers import AutoTokenizer, pipeline

import t5cls
from t5cls import InputError
from t5cls.cli import main
from t5cls.server import create_app
from t5cls.windows import aggregate_windows, token_windows
from tests.test_server import ThreadServer

ATOL = 1e-5
WORDS = "the market rallied as the team won a close game while scientists found new results in the lab".split()
LABELS = ["sports", "politics"]
TEMPLATE = "This example is {}."


def _text_with_tokens(tokenizer, low: int, high: int) -> str:
    """A text whose token count (no special tokens) is in ``(low, high]``."""
    words: list[str] = []
    while True:
        words.append(WORDS[len(words) % len(WORDS)])
        n = len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"])
        if low < n <= high:
            return " ".join(words)
        assert n <= high, "the word list cannot hit the range"


def _plain_logits(model, rows: list[list[int]]) -> np.ndarray:
    """transformers' padded forward, one row at a time (no packing, no batching)."""
    model.use_packed_encoder = False
    with torch.no_grad():
        return np.concatenate([model(input_ids=torch.tensor([ids])).logits.numpy() for ids in rows])


# --- the data module -------------------------------------------------------------------------------


def test_token_windows_and_aggregation():
    assert token_windows(list(range(10)), size=4, stride=1) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert token_windows([1, 2], size=4, stride=1) == [[1, 2]]
    values = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5], [0.9, 0.1]])
    np.testing.assert_allclose(aggregate_windows(values, [3, 1], how="mean"), [[1.3 / 3, 1.7 / 3], [0.9, 0.1]])
    np.testing.assert_allclose(aggregate_windows(values, [3, 1], how="max", renormalize=True), [[0.6 / 1.4, 0.8 / 1.4], [0.9, 0.1]])


# --- Classifier ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_window_text(tiny_tokenizer) -> str:
    # max_length 16 leaves 15 tokens for the text beside </s>; stride 3 steps by 12: 28..39 tokens is three windows.
    return _text_with_tokens(tiny_tokenizer, 27, 39)


@pytest.mark.parametrize("how", ["mean", "max"])
def test_three_windows_equal_the_windows_computed_directly(tiny_classifier_dir, tiny_tokenizer, three_window_text, how):
    clf = t5cls.Classifier(tiny_classifier_dir, max_length=16, long_inputs="chunk", stride=3, aggregate=how)
    proba, windows = clf.predict_proba_windows([three_window_text])
    assert windows == [3]

    ids = tiny_tokenizer(three_window_text, add_special_tokens=False)["input_ids"]
    starts = [0, 12, len(ids) - 15]
    rows = [ids[a : a + 15] + [tiny_tokenizer.eos_token_id] for a in starts]
    assert len(set(map(tuple, rows))) == 3
    model = t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir).eval()
    per_window = softmax(_plain_logits(model, rows).astype(np.float64), axis=1)  # (3, num_labels)
    if how == "mean":
        expected = per_window.mean(axis=0)
    else:
        expected = per_window.max(axis=0) / per_window.max(axis=0).sum()
    np.testing.assert_allclose(proba[0], expected, atol=ATOL, rtol=0)
    assert abs(proba[0].sum() - 1.0) < 1e-6


def test_short_texts_are_the_same_in_both_modes_and_pairs_keep_the_second_text(tiny_classifier_dir, three_window_text):
    short = ["a gripping film", "the market rallied"]
    truncate = t5cls.Classifier(tiny_classifier_dir, max_length=16)
    chunk = t5cls.Classifier(tiny_classifier_dir, max_length=16, long_inputs="chunk")
    proba, windows = chunk.predict_proba_windows(short)
    assert windows == [1, 1]
    np.testing.assert_allclose(proba, truncate.predict_proba(short), atol=1e-6, rtol=0)
    # Per call, on a truncating Classifier, and mixed with a long text in one batch.
    np.testing.assert_allclose(
        truncate.predict_proba(short + [three_window_text], long_inputs="chunk", stride=3),
        chunk.predict_proba(short + [three_window_text], stride=3),
        atol=1e-6, rtol=0,
    )

    second = "about money"
    rows, _, windows = chunk.encode([(three_window_text, second)], chunk=True, stride=2)
    second_ids = chunk.tokenizer(second)["input_ids"]  # with its </s>
    assert windows == [len(rows)] and len(rows) >= 3
    assert all(len(row["input_ids"]) <= 16 and row["input_ids"][-len(second_ids):] == second_ids for row in rows)


def test_cli_and_server_carry_windows(tiny_classifier_dir, three_window_text, tmp_path):
    (tmp_path / "in.txt").write_text(f"{three_window_text}\na film\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.txt"), "-o", str(out), "--max-length", "16",
                 "--long-inputs", "chunk", "--stride", "3", "--aggregate", "max"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["windows"] for r in rows] == [3, 1]
    expected = t5cls.Classifier(tiny_classifier_dir, max_length=16).predict_proba([three_window_text], long_inputs="chunk", stride=3,
                                                                                  aggregate="max")
    assert rows[0]["score"] == pytest.approx(float(expected.max()), abs=ATOL)

    with ThreadServer(create_app(tiny_classifier_dir, max_wait_ms=1)) as running:
        url = f"{running.url}/v1/classify"
        answer = httpx.post(url, json={"inputs": [three_window_text, "a film"], "long_inputs": "chunk", "stride": 3}, timeout=60).json()
        assert answer["windows"] == [1, 1]  # the served max_length (the tokenizer's) holds both whole
        assert httpx.post(url, json={"inputs": ["a film"]}, timeout=60).json().get("windows") is None  # only when chunking
        bad = httpx.post(url, json={"inputs": ["a film"], "long_inputs": "chunk", "stride": 100_000}, timeout=60)
        assert bad.status_code == 422 and "stride=100000" in bad.text
        bad = httpx.post(url, json={"inputs": ["a film"], "aggregate": "median"}, timeout=60)
        assert bad.status_code == 422 and "aggregate" in bad.text


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_length=16, stride=16), "stride=16 must be smaller than the window"),
        (dict(max_length=16, stride=-1), "stride=-1"),
        (dict(aggregate="median"), "aggregate='median'"),
        (dict(long_inputs="window"), "long_inputs='window'"),
    ],
)
def test_bad_long_input_settings_are_input_errors(tiny_classifier_dir, tiny_nli_dir, kwargs, match):
    with pytest.raises(InputError, match=match):
        t5cls.Classifier(tiny_classifier_dir, **kwargs)
    with pytest.raises(InputError, match=match):
        t5cls.ZeroShotClassifier(tiny_nli_dir, **kwargs)
    call = {k: v for k, v in kwargs.items() if k != "max_length"}
    with pytest.raises(InputError, match=match):
        t5cls.Classifier(tiny_classifier_dir, max_length=16).predict_proba("a film", **call)
    with pytest.raises(InputError, match=match):
        t5cls.ZeroShotClassifier(tiny_nli_dir, max_length=16)("a film", LABELS, **call)


def test_cli_bad_stride_is_one_line(tiny_classifier_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("a film\n")
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.txt"), "--max-length", "16", "--long-inputs", "chunk",
                 "--stride", "20"]) == 2
    assert "stride=20 must be smaller" in capsys.readouterr().err


# --- ZeroShotClassifier: the premise is windowed, the hypothesis whole ------------------------------


@pytest.mark.parametrize("how", ["mean", "max"])
def test_zero_shot_three_premise_windows_equal_direct_computation(tiny_nli_dir, tiny_tokenizer, how):
    hypotheses = [TEMPLATE.format(label) for label in LABELS]
    hyp_ids = [tiny_tokenizer(h, add_special_tokens=False)["input_ids"] for h in hypotheses]
    max_length = 24
    size = max_length - 2 - max(map(len, hyp_ids))  # the windows of the premise, shared by both labels
    stride = 2
    step = size - stride
    text = _text_with_tokens(tiny_tokenizer, size + step, size + 2 * step)
    premise = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    starts = [0, step, len(premise) - size]

    zs = t5cls.ZeroShotClassifier(tiny_nli_dir, max_length=max_length)
    result = zs(text, LABELS, long_inputs="chunk", stride=stride, aggregate=how)
    assert result["windows"] == 3

    eos = tiny_tokenizer.eos_token_id
    model = t5cls.T5ForClassification.from_pretrained(tiny_nli_dir).eval()
    per_window = []
    for a in starts:
        rows = [premise[a : a + size] + [eos] + ids + [eos] for ids in hyp_ids]
        entail = _plain_logits(model, rows)[:, zs.entailment_id].astype(np.float64)
        per_window.append(softmax(entail))  # single-label: softmax across the labels
    per_window = np.array(per_window)
    expected = per_window.mean(axis=0) if how == "mean" else per_window.max(axis=0) / per_window.max(axis=0).sum()
    got = dict(zip(result["labels"], result["scores"]))
    np.testing.assert_allclose([got[label] for label in LABELS], expected, atol=ATOL, rtol=0)

    # multi_label: each label its own [contradiction, entailment] softmax per window; no renormalising.
    multi = zs(text, LABELS, long_inputs="chunk", stride=stride, aggregate=how, multi_label=True)
    per_window = []
    for a in starts:
        rows = [premise[a : a + size] + [eos] + ids + [eos] for ids in hyp_ids]
        pair = _plain_logits(model, rows)[:, [zs.contradiction_id, zs.entailment_id]].astype(np.float64)
        per_window.append(softmax(pair, axis=1)[:, 1])
    per_window = np.array(per_window)
    expected = per_window.mean(axis=0) if how == "mean" else per_window.max(axis=0)
    got = dict(zip(multi["labels"], multi["scores"]))
    np.testing.assert_allclose([got[label] for label in LABELS], expected, atol=ATOL, rtol=0)


def test_zero_shot_cli_chunk_writes_windows(tiny_nli_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(" ".join(WORDS * 3) + "\nthe vote\n")
    assert main(["zero-shot", str(tiny_nli_dir), str(tmp_path / "in.txt"), "--labels", "sports,politics", "--max-length", "24",
                 "--long-inputs", "chunk", "--stride", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["windows"] > 1 and rows[1]["windows"] == 1
    with pytest.raises(SystemExit):  # argparse's choices name the allowed values
        main(["zero-shot", str(tiny_nli_dir), str(tmp_path / "in.txt"), "--labels", "a,b", "--aggregate", "median"])


def test_zero_shot_short_premises_are_the_same_in_both_modes(tiny_nli_dir):
    zs = t5cls.ZeroShotClassifier(tiny_nli_dir, max_length=64)
    texts = ["the striker scored twice", "the vote was close"]
    chunked = zs(texts, LABELS, long_inputs="chunk")
    plain = zs(texts, LABELS)
    for a, b in zip(chunked, plain):
        assert a["windows"] == 1 and a["labels"] == b["labels"]
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-6, rtol=0)


def test_zero_shot_truncates_only_the_premise_like_the_pipeline(tiny_nli_dir):
    # A hypothesis about as long as the premise's share: "longest_first" would cut the hypothesis too.
    template = "This piece of writing, taken as a whole and read with care, is about {}."
    tokenizer = AutoTokenizer.from_pretrained(tiny_nli_dir, model_max_length=28)
    model = t5cls.T5ForClassification.from_pretrained(tiny_nli_dir)
    text = " ".join(WORDS * 2)
    ours = t5cls.ZeroShotClassifier(model, tokenizer)(text, LABELS, hypothesis_template=template)
    theirs = pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device="cpu")(
        text, candidate_labels=LABELS, hypothesis_template=template
    )
    assert ours["labels"] == theirs["labels"]
    np.testing.assert_allclose(ours["scores"], theirs["scores"], atol=ATOL, rtol=0)
