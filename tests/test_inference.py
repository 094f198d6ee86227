"""Classifier: parity with the plain model and transformers' pipeline, output shapes, bad input, CLI predict."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

import t5cls
from t5cls.convert import save_classifier
from t5cls.inference import Classifier
from tests.conftest import sample_texts


def _one_by_one(model, tokenizer, items) -> np.ndarray:
    """The plain computation: each input alone (no padding, no sorting), straight through the model."""
    rows = []
    with torch.no_grad():
        for item in items:
            encoded = tokenizer(*([item] if isinstance(item, str) else item), return_tensors="pt")
            rows.append(model(**encoded).logits[0].numpy())
    return np.stack(rows)


@pytest.fixture(scope="module")
def clf(tiny_classifier_dir):
    return Classifier(tiny_classifier_dir, device="cpu")


@pytest.fixture(scope="module")
def texts():
    return sample_texts(24)


def test_logits_match_the_model_run_one_text_at_a_time(clf, tiny_tokenizer, texts):
    # Small budget: several length-sorted batches, padding inside each; results back in input order.
    small = Classifier(clf.model, tiny_tokenizer, batch_tokens=300)
    expected = _one_by_one(clf.model, tiny_tokenizer, texts)
    np.testing.assert_allclose(small.logits(texts), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(clf.logits(texts), expected, atol=1e-5, rtol=0)


def test_packed_encoder_gives_what_the_padded_transformers_encoder_gives(clf, texts):
    from t5cls.inference import PACKED_PADDING_COST

    assert clf._padding_cost() == PACKED_PADDING_COST  # batches stay large: padding costs little
    packed = clf.logits(texts)
    clf.model.use_packed_encoder = False
    try:
        assert clf._padding_cost() == 1.0
        padded = clf.logits(texts)
    finally:
        clf.model.use_packed_encoder = True
    np.testing.assert_allclose(packed, padded, atol=1e-5, rtol=0)


def test_call_matches_transformers_pipeline(clf, tiny_tokenizer, texts):
    from transformers import pipeline

    pipe = pipeline("text-classification", model=clf.model, tokenizer=tiny_tokenizer, device="cpu")

    def same(ours, theirs):
        if isinstance(theirs, list):
            assert isinstance(ours, list) and len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                same(a, b)
        else:
            assert ours["label"] == theirs["label"]
            assert ours["score"] == pytest.approx(theirs["score"], abs=1e-5)

    same(clf(texts[0]), pipe(texts[0]))  # a str: [{"label", "score"}]
    same(clf(texts[:5]), pipe(texts[:5]))  # a list: one dict per input
    same(clf(texts[0], top_k=2), pipe(texts[0], top_k=2))
    same(clf(texts[:3], top_k=None), pipe(texts[:3], top_k=None))
    assert isinstance(clf(texts[0]), list) and isinstance(clf(texts[:2])[0], dict)


def test_predict_and_proba_shapes(clf, texts):
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    labels = clf.predict(texts)
    assert labels == [clf.labels[j] for j in proba.argmax(axis=1)]
    assert clf.predict(texts[0]) == labels[0]


def test_empty_list_gives_empty_results(clf):
    assert clf.predict([]) == []
    assert clf([]) == []
    assert clf.predict_proba([]).shape == (0, 3)


@pytest.mark.parametrize(
    "bad, index",
    [(None, None), (["fine", None], 1), (["fine", "ok", 3], 2), ([b"bytes"], 0)],
)
def test_bad_inputs_raise_type_error_naming_the_index(clf, bad, index):
    with pytest.raises(TypeError) as excinfo:
        clf.predict(bad)
    if index is not None:
        assert f"texts[{index}]" in str(excinfo.value)


def test_sentence_pairs_match_the_model(tiny_nli_dir, tiny_tokenizer):
    nli = Classifier(tiny_nli_dir)
    pairs = [("A man plays a guitar on stage.", "A person makes music."), ("It rains.", "The ground is dry.")]
    expected = _one_by_one(nli.model, tiny_tokenizer, pairs)
    np.testing.assert_allclose(nli.logits(pairs), expected, atol=1e-5, rtol=0)
    assert len(nli(pairs[0])) == 1  # one pair is one input
    with pytest.raises(TypeError, match="Mix"):
        nli.logits(["a text", ("a", "pair")])


def test_truncation_is_counted_and_warned_once(clf, tiny_tokenizer, caplog):
    short = Classifier(clf.model, tiny_tokenizer, max_length=8)
    items = ["one two three four five six seven eight nine ten eleven", "short", "a b c d e f g h i j k l m n"]
    with caplog.at_level(logging.WARNING, logger="t5cls.inference"):
        logits = short.logits(items)
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "2 of 3" in warnings[0].getMessage()
    # Same as the tokenizer's own truncation (which keeps </s>).
    with torch.no_grad():
        encoded = tiny_tokenizer(items[0], truncation=True, max_length=8, return_tensors="pt")
        assert encoded["input_ids"][0, -1].item() == tiny_tokenizer.eos_token_id
        np.testing.assert_allclose(logits[0], clf.model(**encoded).logits[0].numpy(), atol=1e-5)


def test_pairs_truncate_the_longer_text_not_the_hypothesis(tiny_nli_dir, tiny_tokenizer):
    nli = Classifier(tiny_nli_dir, max_length=16)
    premise = " ".join(["word"] * 50)
    got = nli.logits([(premise, "It is about music.")])
    encoded = tiny_tokenizer(premise, "It is about music.", truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        np.testing.assert_allclose(got[0], nli.model(**encoded).logits[0].numpy(), atol=1e-5)


def test_any_transformers_sequence_classifier_works(tiny_tokenizer, texts):
    # The zero-shot and server code reuse Classifier.logits with models that are not ours.
    from transformers import T5ForSequenceClassification

    from tests.conftest import tiny_t5_config

    torch.manual_seed(0)
    model = T5ForSequenceClassification(tiny_t5_config(num_labels=2)).eval()
    clf = Classifier(model, tiny_tokenizer, batch_tokens=256)
    np.testing.assert_allclose(clf.logits(texts[:6]), _one_by_one(model, tiny_tokenizer, texts[:6]), atol=1e-5, rtol=0)
    assert clf.labels == ["LABEL_0", "LABEL_1"]
    assert clf._padding_cost() == 1.0  # pads every layer: padding costs what a real token costs


@pytest.fixture(scope="module")
def multi_label_dir(tmp_path_factory, tiny_t5_dir, tiny_tokenizer):
    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["sports", "business", "tech"], problem_type="multi_label_classification")
    torch.manual_seed(3)
    with torch.no_grad():
        model.query_embeddings.weight.normal_()
        model.classifier.bias.copy_(torch.tensor([3.0, -3.0, 0.0]))  # one label always on, one always off
    out = tmp_path_factory.mktemp("multi") / "model"
    save_classifier(model, out, tokenizer=tiny_tokenizer)
    return out


def test_multi_label_threshold(multi_label_dir, texts):
    clf = Classifier(multi_label_dir)
    proba = clf.predict_proba(texts[:4])
    assert proba.shape == (4, 3) and ((proba > 0) & (proba < 1)).all()
    for labels, row in zip(clf.predict(texts[:4], threshold=0.5), proba):
        assert labels == [name for name, p in zip(clf.labels, row) if p >= 0.5]
        assert "sports" in labels and "business" not in labels
    assert clf.predict(texts[0], threshold=1.0) == []
    results = clf(texts[0])  # a str: all labels at or above the threshold, best first
    assert [r["label"] for r in results] == [n for n, p in sorted(zip(clf.labels, proba[0]), key=lambda x: -x[1]) if p >= 0.5]
    assert clf(texts[0], threshold=0.0, top_k=1)[0]["label"] == "sports"


def test_regression_gives_the_value(tmp_path, tiny_t5_dir, tiny_tokenizer, texts):
    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, num_labels=1, problem_type="regression")
    save_classifier(model, tmp_path / "reg", tokenizer=tiny_tokenizer)
    clf = Classifier(tmp_path / "reg")
    values = clf.predict(texts[:3])
    logits = clf.logits(texts[:3])
    assert values == pytest.approx(logits[:, 0].tolist(), abs=1e-6)
    assert clf(texts[0])[0]["score"] == pytest.approx(values[0], abs=1e-6)
    assert clf.records(clf.predict_proba(texts[:1])) == [{"value": pytest.approx(values[0], abs=1e-6)}]


def test_stream_matches_predict_proba_and_warns_once(clf, tiny_tokenizer, texts, caplog):
    short = Classifier(clf.model, tiny_tokenizer, max_length=12)
    with caplog.at_level(logging.WARNING, logger="t5cls.inference"):
        chunks = list(short.stream(iter(texts), chunk_size=5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 4]
    np.testing.assert_allclose(np.concatenate(chunks), short.predict_proba(texts), atol=1e-6)
    assert len([r for r in caplog.records if "truncated" in r.getMessage()]) == 2  # one for stream, one for predict_proba
    with pytest.raises(TypeError, match=r"from index 5 on: texts\[1\]"):
        list(short.stream(texts[:6] + [None], chunk_size=5))


def test_records_are_flat_rows(clf, texts):
    rows = clf.records(clf.predict_proba(texts[:2]))
    assert list(rows[0]) == ["label", "score", "proba_negative", "proba_neutral", "proba_positive"]
    assert rows[0]["score"] == max(rows[0]["proba_negative"], rows[0]["proba_neutral"], rows[0]["proba_positive"])


def test_no_progress_bar_when_not_a_tty(clf, tiny_tokenizer, texts, capsys):
    Classifier(clf.model, tiny_tokenizer, batch_tokens=64, show_progress_bar=True).predict(texts)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal


def test_a_directory_that_is_not_a_classifier_is_a_clear_error(tiny_t5_dir, tmp_path):
    with pytest.raises(ValueError, match="not a T5 classifier"):
        Classifier(tiny_t5_dir)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Classifier(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no config.json; it holds \['notes.txt'\]"):
        Classifier(tmp_path / "empty")


def test_bad_settings_are_clear_errors(tiny_classifier_dir, clf):
    with pytest.raises(ValueError, match="quantize"):
        Classifier(tiny_classifier_dir, quantize="int4")
    with pytest.raises(ValueError, match="backend"):
        Classifier(tiny_classifier_dir, backend="tensorrt")
    with pytest.raises(ValueError, match="ONNX Runtime"):
        Classifier(tiny_classifier_dir, backend="torch", quantize="int8")
    with pytest.raises(ValueError, match="tokenizer"):
        Classifier(clf.model)
    with pytest.raises(ValueError, match="top_k"):
        clf("text", top_k=0)


# --- CLI predict --------------------------------------------------------------------------------
# One real subprocess (stdin to stdout, the streaming path); the rest call the same entry point in-process.


def test_cli_predict_stdin_to_stdout_in_a_subprocess(clf, tiny_classifier_dir, texts):
    done = subprocess.run(
        [sys.executable, "-m", "t5cls.cli", "predict", str(tiny_classifier_dir), "-"],
        input="\n".join(texts[:3]) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["label"] for line in done.stdout.splitlines()] == clf.predict(texts[:3])


def test_cli_predict_csv_to_jsonl_and_txt_to_csv(clf, tiny_classifier_dir, texts, tmp_path, capsys):
    import csv

    from t5cls.cli import main

    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        writer.writerows([[i, t] for i, t in enumerate(texts[:6])])
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.csv"), "--text-column", "review", "--output", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == clf.predict(texts[:6])
    np.testing.assert_allclose([r["proba_positive"] for r in rows], clf.predict_proba(texts[:6])[:, 2], atol=1e-6)
    assert "wrote 6 predictions" in capsys.readouterr().err

    (tmp_path / "in.txt").write_text("\n".join(texts[:4]) + "\n", encoding="utf-8")
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.csv")]) == 0
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "label,score,proba_negative,proba_neutral,proba_positive" and len(lines) == 5


def test_cli_predict_errors_are_one_line(tiny_classifier_dir, tiny_t5_dir, tmp_path, capsys):
    from t5cls.cli import main

    (tmp_path / "in.csv").write_text("id,body\n1,hello\n", encoding="utf-8")
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "['id', 'body']" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.jsonl").exists()
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "in.csv" in err
    assert main(["predict", str(tiny_t5_dir), str(tmp_path / "in.csv"), "--text-column", "body"]) == 2
    assert "not a T5 classifier" in capsys.readouterr().err
