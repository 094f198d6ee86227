"""Temperature scaling, per-label thresholds, abstention and calibration reports.

A tiny classifier is trained once per module (real Trainer, real files); its fitted temperature
must give softmax(raw head logits / T) through every runner: Classifier, transformers' pipeline,
the HTTP server and the ONNX export.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import softmax

import t5cls
from t5cls import InputError
from t5cls.cli import main
from t5cls.evaluation import calibrate
from t5cls.server import create_app
from t5cls.temperature import (
    calibration_metrics,
    check_fit_labels,
    confidence_bins,
    expected_calibration_error,
    fit_temperature,
    fit_thresholds,
    softmax_nll,
)
from t5cls.training import train
from tests.test_server import ThreadServer
from tests.test_training import topic_frame

ATOL = 1e-5
FAST = dict(epochs=2, batch_size=8, learning_rate=3e-3, show_progress_bar=False)
TEXTS = ["market stock profit bank deal", "game team won match", "space research study cells", "bank deal won"]


@pytest.fixture(scope="module")
def topic_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("topics")
    topic_frame(8, seed=0).to_csv(root / "train.csv", index=False)
    topic_frame(4, seed=1).to_csv(root / "dev.csv", index=False)
    return root / "train.csv", root / "dev.csv"


@pytest.fixture(scope="module")
def trained(tiny_t5_dir, topic_files, tmp_path_factory):
    """A single-label classifier trained with an eval set: its temperature is fitted and saved."""
    train_csv, dev_csv = topic_files
    out = tmp_path_factory.mktemp("calibrated") / "clf"
    result = train(tiny_t5_dir, train_csv, eval=dev_csv, output_dir=out, **FAST)
    return out, result


def _raw_logits(model_dir, texts) -> np.ndarray:
    """The head's logits at temperature 1, through transformers' padded forward (no t5cls fast path)."""
    model = t5cls.T5ForClassification.from_pretrained(model_dir).eval()
    model.config.temperature = 1.0
    model.use_packed_encoder = False
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        return model(**tokenizer(texts, return_tensors="pt", padding=True)).logits.numpy()


# --- the numbers ---------------------------------------------------------------------------------


def test_fit_temperature_lowers_nll_and_keeps_argmax():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    logits = rng.normal(size=(200, 3)) * 4
    logits[np.arange(200), y] += 2.0  # right more often than not, and far too sure
    t = fit_temperature(logits, y)
    assert t > 1.0
    assert softmax_nll(logits, y, t) <= softmax_nll(logits, y, 1.0)
    # The fit is the minimum: nearby temperatures are no better.
    assert softmax_nll(logits, y, t) <= min(softmax_nll(logits, y, t * 1.05), softmax_nll(logits, y, t / 1.05)) + 1e-9
    # Underconfident logits get T < 1.
    assert fit_temperature(logits / 20, y) < 1.0


def test_ece_nll_brier_against_direct_computation():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.55, 0.45], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    m = calibration_metrics(proba, y)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.55, 0.7])))
    assert m["brier"] == pytest.approx(np.mean([2 * 0.1**2, 2 * 0.8**2, 2 * 0.45**2, 2 * 0.3**2]))
    # 15 bins: 0.9 and 0.8 and 0.7 and 0.55 each sit alone; ECE = mean |correct - confidence|.
    assert m["ece"] == pytest.approx(np.mean([0.1, 0.8, 0.45, 0.3]))
    table = confidence_bins(proba, y)
    assert sum(table["count"]) == 4 and len(table["count"]) == 15
    assert expected_calibration_error(np.array([[1.0, 0.0]]), [0]) == 0.0


def test_fit_thresholds_are_f1_best_per_label():
    proba = np.array([[0.9, 0.2], [0.4, 0.3], [0.1, 0.8], [0.35, 0.6]])
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    assert fit_thresholds(proba, y) == [0.4, 0.6]
    # A label with no positives keeps 0.5.
    assert fit_thresholds(proba, np.array([[1, 0], [0, 0], [1, 0], [0, 0]]))[1] == 0.5


def test_one_class_fit_sets_are_input_errors():
    with pytest.raises(InputError, match=r"one class only \(\[2\]\)"):
        check_fit_labels([2, 2, 2], problem_type="single_label_classification")
    with pytest.raises(InputError, match="one label set only"):
        check_fit_labels([[1, 0], [1, 0]], problem_type="multi_label_classification")
    check_fit_labels([[1, 0], [0, 1]], problem_type="multi_label_classification")


# --- trained with an eval set: the temperature is fitted, saved and used everywhere ----------------


def test_training_fits_and_saves_the_temperature(trained, topic_files):
    out, result = trained
    config = json.loads((out / "config.json").read_text())
    temperature = config["temperature"]
    assert temperature != 1.0 and temperature > 0
    calibration = result.metrics["calibration"]
    assert calibration["temperature"] == pytest.approx(temperature)
    # NLL on the set it was fitted on is not larger after scaling.
    assert calibration["after"]["nll"] <= calibration["before"]["nll"] + 1e-9
    assert set(calibration["before"]) == {"ece", "nll", "brier"}
    report = json.loads((out / "metrics.json").read_text())
    assert report["plots"] == ["loss_curve.png", "confusion_matrix.png", "reliability_diagram.png"]
    assert (out / "reliability_diagram.png").stat().st_size > 1000
    assert report["train"]["settings"]["fit_temperature"] is True


def test_classifier_and_pipeline_give_softmax_of_raw_logits_over_t(trained):
    out, _ = trained
    temperature = json.loads((out / "config.json").read_text())["temperature"]
    expected = softmax(_raw_logits(out, TEXTS).astype(np.float64) / temperature, axis=1)
    clf = t5cls.Classifier(out)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), expected, atol=ATOL, rtol=0)

    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(out), device="cpu", top_k=None)
    for result, row in zip(pipe(TEXTS), expected):
        scores = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([scores[label] for label in clf.labels], row, atol=ATOL, rtol=0)


def test_server_and_onnx_give_softmax_of_raw_logits_over_t(trained, tmp_path):
    out, _ = trained
    temperature = json.loads((out / "config.json").read_text())["temperature"]
    expected = softmax(_raw_logits(out, TEXTS).astype(np.float64) / temperature, axis=1)
    labels = t5cls.Classifier(out).labels

    with ThreadServer(create_app(out, max_wait_ms=1)) as running:
        answer = httpx.post(f"{running.url}/v1/classify", json={"inputs": TEXTS}, timeout=60).json()
    for result, row in zip(answer["results"], expected):
        scores = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([scores[label] for label in labels], row, atol=ATOL, rtol=0)
    assert answer["labels"] == [labels[j] for j in expected.argmax(axis=1)]

    pytest.importorskip("onnxruntime")
    assert main(["export", str(out), str(tmp_path / "onnx")]) == 0
    onnx = t5cls.Classifier(tmp_path / "onnx", backend="onnx")
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), expected, atol=ATOL, rtol=0)
    # An export has the temperature in its graph: calibrating it would change nothing it runs.
    data = pd.DataFrame({"text": TEXTS, "label": ["business", "science", "sports", "sports"]})
    with pytest.raises(InputError, match="ONNX export"):
        calibrate(tmp_path / "onnx", data, in_place=True)


def test_no_fit_temperature_leaves_one_and_one_class_eval_fails_before_training(tiny_t5_dir, topic_files, tmp_path):
    train_csv, dev_csv = topic_files
    one_class = tmp_path / "one_class.csv"
    pd.read_csv(dev_csv).assign(label="sports").to_csv(one_class, index=False)
    with pytest.raises(InputError, match=r"one class only \(\['sports'\]\)"):
        train(tiny_t5_dir, train_csv, eval=one_class, output_dir=tmp_path / "bad", **FAST)
    assert not (tmp_path / "bad").exists()  # nothing written, nothing trained
    # Without fitting, a one-class eval set is allowed, and the temperature stays 1.
    assert main(["train", "--model", str(tiny_t5_dir), "--train", str(train_csv), "--eval", str(one_class), "--output",
                 str(tmp_path / "plain"), "--epochs", "1", "--batch-size", "8", "--no-fit-temperature"]) == 0
    assert json.loads((tmp_path / "plain" / "config.json").read_text()).get("temperature", 1.0) == 1.0


def test_calibrate_cli_output_and_in_place(trained, topic_files, tmp_path, capsys):
    out, _ = trained
    _, dev_csv = topic_files
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    config = json.loads((copy / "config.json").read_text())
    config["temperature"] = 1.0
    (copy / "config.json").write_text(json.dumps(config))

    assert main(["calibrate", str(copy), str(dev_csv), "--output", str(tmp_path / "cal")]) == 0
    printed = capsys.readouterr().out
    assert "temperature" in printed and "nll" in printed and "saved to" in printed
    fitted = json.loads((tmp_path / "cal" / "config.json").read_text())["temperature"]
    assert fitted == pytest.approx(json.loads((out / "config.json").read_text())["temperature"], rel=1e-3)
    assert json.loads((copy / "config.json").read_text())["temperature"] == 1.0  # --output leaves MODEL alone

    report = calibrate(copy, dev_csv, in_place=True)
    assert report["after"]["nll"] <= report["before"]["nll"]
    assert json.loads((copy / "config.json").read_text())["temperature"] == pytest.approx(report["temperature"])
    # Refitting a scaled model starts from its raw logits: the same temperature again.
    assert calibrate(copy, dev_csv, in_place=True)["temperature"] == pytest.approx(report["temperature"], rel=1e-3)

    with pytest.raises(SystemExit):  # argparse: one of --output / --in-place is required
        main(["calibrate", str(copy), str(dev_csv)])
    with pytest.raises(InputError, match="output_dir=DIR"):
        calibrate(copy, dev_csv)
    with pytest.raises(FileExistsError, match="not empty"):
        calibrate(copy, dev_csv, output_dir=tmp_path / "cal")
    one_class = pd.read_csv(dev_csv).assign(label="sports")
    with pytest.raises(InputError, match="one class only"):
        calibrate(copy, one_class, in_place=True)


def test_evaluate_reports_calibration(trained, topic_files, tmp_path, capsys):
    out, _ = trained
    _, dev_csv = topic_files
    assert main(["evaluate", str(out), str(dev_csv), "--output", str(tmp_path / "rep")]) == 0
    assert "calibration: temperature" in capsys.readouterr().out
    report = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(report["eval"]["calibration"]) >= {"temperature", "before", "after", "reliability", "bins"}
    assert (tmp_path / "rep" / "reliability_diagram.png").is_file()


# --- thresholds (multi-label) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_label(tiny_t5_dir, tmp_path_factory):
    rows = [{"text": "apple banana", "tags": ["fruit", "yellow"]}, {"text": "lemon", "tags": ["fruit", "yellow"]},
            {"text": "sky sea", "tags": ["blue"]}, {"text": "apple", "tags": ["fruit"]}, {"text": "stone", "tags": []}] * 3
    root = tmp_path_factory.mktemp("multi")
    pd.DataFrame(rows).to_json(root / "tags.jsonl", orient="records", lines=True)
    result = train(tiny_t5_dir, root / "tags.jsonl", eval=root / "tags.jsonl", output_dir=root / "ml", label_column="tags", **FAST)
    return root / "ml", result


def test_one_label_set_eval_fails_before_training_and_evaluate_checks_the_threshold(multi_label, tiny_t5_dir, tmp_path):
    out, _ = multi_label
    same = pd.DataFrame({"text": ["apple", "lemon", "pear"], "tags": [["fruit"]] * 3})
    train_rows = pd.DataFrame({"text": ["apple", "sky", "lemon"], "tags": [["fruit"], ["blue"], ["fruit", "yellow"]]})
    with pytest.raises(InputError, match="one label set only"):
        train(tiny_t5_dir, train_rows, eval=same, output_dir=tmp_path / "bad", label_column="tags", **FAST)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(InputError, match="threshold=2"):
        t5cls.evaluate(out, same, label_column="tags", threshold=2)


def test_training_saves_per_label_thresholds_and_they_decide(multi_label):
    out, result = multi_label
    saved = json.loads((out / "config.json").read_text())["thresholds"]
    assert len(saved) == 3 and all(0.0 <= t <= 1.0 for t in saved)
    assert result.metrics["thresholds"] == dict(zip(result.labels, saved))
    clf = t5cls.Classifier(out)
    np.testing.assert_array_equal(clf.decision_thresholds(), saved)
    np.testing.assert_array_equal(clf.decision_thresholds(0.3), [0.3, 0.3, 0.3])  # an explicit number wins

    # Exactly at a label's threshold: predicted; just under: not; above: predicted.
    t = np.asarray(saved)
    at, under, above = t.copy(), np.nextafter(t, -1.0), np.minimum(t + 1e-3, 1.0)
    assert clf.labels_from_proba(np.stack([at, under, above])) == [clf.labels, [], clf.labels]
    # An explicit threshold applies to every label, the same way.
    proba = np.array([[0.3, 0.2999, 0.9]])
    assert clf.labels_from_proba(proba, threshold=0.3) == [["blue", "yellow"]]
    results = clf.results_from_proba(proba, threshold=0.3)
    assert [r["label"] for r in results[0]] == ["yellow", "blue"]
    with pytest.raises(InputError, match="threshold=1.5"):
        clf.predict("lemon", threshold=1.5)
    with pytest.raises(InputError, match="min_score=0.5 is for single-label models"):
        clf.predict("lemon", min_score=0.5)
    with pytest.raises(InputError, match="multi-label"):
        t5cls.Classifier(out, min_score=0.5)


# --- abstention (single-label) ---------------------------------------------------------------------


def test_min_score_at_below_and_above(tiny_classifier_dir):
    clf = t5cls.Classifier(tiny_classifier_dir, min_score=0.5)
    proba = np.array([[0.5, 0.3, 0.2], [np.nextafter(0.5, 0), 0.25, 0.25], [0.1, 0.2, 0.7]])
    assert clf.labels_from_proba(proba) == ["negative", None, "positive"]
    assert clf.labels_from_proba(proba, min_score=None) == ["negative", "negative", "positive"]  # per call wins
    assert clf.labels_from_proba(proba, min_score=0.75) == [None, None, None]
    rows = clf.records(proba)
    assert [r["label"] for r in rows] == ["negative", None, "positive"]
    assert rows[1]["score"] == pytest.approx(proba[1].max())  # scores are still there
    # The model's own outputs: min_score 1.0 abstains everywhere, 0.0 nowhere.
    texts = ["a film", "the market"]
    assert t5cls.Classifier(tiny_classifier_dir, min_score=1.0).predict(texts) == [None, None]
    assert clf.predict(texts, min_score=0.0) == t5cls.Classifier(tiny_classifier_dir).predict(texts)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.5", True])
def test_min_score_outside_zero_one_is_an_input_error(tiny_classifier_dir, bad):
    with pytest.raises(InputError, match=f"min_score={bad!r}"):
        t5cls.Classifier(tiny_classifier_dir, min_score=bad)
    with pytest.raises(InputError, match="min_score="):
        t5cls.Classifier(tiny_classifier_dir).predict("x", min_score=bad)


def test_cli_min_score_writes_an_empty_label(tiny_classifier_dir, tmp_path):
    (tmp_path / "in.txt").write_text("a film\nthe market\n")
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"), "--min-score", "1.0"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [None, None] and all(r["score"] > 0 for r in rows)
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.csv"), "--min-score", "1.0"]) == 0
    assert pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["label"].tolist() == ["", ""]
    assert main(["predict", str(tiny_classifier_dir), str(tmp_path / "in.txt"), "--min-score", "2"]) == 2


def test_server_min_score_and_labels(tiny_classifier_dir):
    with ThreadServer(create_app(tiny_classifier_dir, max_wait_ms=1)) as running:
        url = f"{running.url}/v1/classify"
        plain = httpx.post(url, json={"inputs": ["a film", "the market"]}, timeout=60).json()
        assert plain["labels"] == [r[0]["label"] for r in plain["results"]]
        sure = httpx.post(url, json={"inputs": ["a film", "the market"], "min_score": 1.0}, timeout=60).json()
        assert sure["labels"] == [None, None] and sure["results"] == plain["results"]
        bad = httpx.post(url, json={"inputs": ["a film"], "min_score": 1.5}, timeout=60)
        # Refused by the request schema (/openapi.json states the range), naming the field and the value.
        assert bad.status_code == 422 and "min_score: 1.5 must be a probability between 0 and 1" in bad.json()["detail"]


def test_zero_shot_min_score_is_its_threshold(tiny_nli_dir):
    zs = t5cls.ZeroShotClassifier(tiny_nli_dir)
    labels = ["sports", "politics"]
    best = zs("the match", labels)
    assert zs("the match", labels, min_score=best["scores"][0])["label"] == best["label"]  # at: kept
    assert zs("the match", labels, min_score=np.nextafter(best["scores"][0], 2.0))["label"] is None  # above the best: none
    assert zs("the match", labels, min_score=0.5, threshold=0.5)["label"] == best["label"]
    with pytest.raises(InputError, match="same setting"):
        zs("the match", labels, min_score=0.5, threshold=0.6)
    with pytest.raises(InputError, match="min_score=1.5"):
        zs("the match", labels, min_score=1.5)
