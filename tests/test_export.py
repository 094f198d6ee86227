"""ONNX export and int8: parity with the torch model, loading, and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from t5cls.cli import main
from t5cls.export import ONNX_FILE, ONNX_INT8_FILE, export_onnx
from t5cls.inference import Classifier
from tests.conftest import int8_has_vnni, sample_texts


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory, tiny_classifier_dir):
    """`t5cls export MODEL OUT --format onnx --int8`, run through the CLI entry point."""
    out = tmp_path_factory.mktemp("export") / "onnx"
    assert main(["export", str(tiny_classifier_dir), str(out), "--format", "onnx", "--int8"]) == 0
    return out


@pytest.fixture(scope="module")
def torch_clf(tiny_classifier_dir):
    return Classifier(tiny_classifier_dir, device="cpu")


def test_export_writes_onnx_config_and_tokenizer(onnx_dir, tiny_classifier_dir):
    names = {p.name for p in onnx_dir.iterdir()}
    assert {ONNX_FILE, ONNX_INT8_FILE, "config.json", "tokenizer.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)
    config = json.loads((onnx_dir / "config.json").read_text())
    assert config["id2label"] == json.loads((tiny_classifier_dir / "config.json").read_text())["id2label"]


def test_onnx_fp32_probabilities_within_1e4_of_torch(onnx_dir, torch_clf):
    texts = sample_texts(64)
    # A small budget gives many batch shapes: the batch and sequence axes must be dynamic.
    onnx = Classifier(onnx_dir, backend="onnx", batch_tokens=600)
    assert onnx.backend == "onnx" and onnx.labels == torch_clf.labels
    np.testing.assert_allclose(onnx.predict_proba(texts), torch_clf.predict_proba(texts), atol=1e-4, rtol=0)
    assert onnx.predict(texts) == torch_clf.predict(texts)


def test_int8_agrees_with_fp32_on_real_texts(onnx_dir, torch_clf):
    texts = sample_texts(200)
    int8 = Classifier(onnx_dir, quantize="int8")
    fp32, q = torch_clf.predict_proba(texts), int8.predict_proba(texts)
    agreement = (fp32.argmax(axis=1) == q.argmax(axis=1)).mean()
    min_agreement, max_diff = (0.97, 0.05) if int8_has_vnni() else (0.93, 0.15)  # see conftest.int8_has_vnni
    assert agreement >= min_agreement, agreement
    assert np.abs(fp32 - q).max() < max_diff


def test_export_directory_loads_as_onnx_by_default(onnx_dir, torch_clf):
    clf = Classifier(onnx_dir)  # no torch weights there: the ONNX backend is picked
    assert clf.backend == "onnx" and clf.model is None
    assert clf("a short text")[0]["label"] in torch_clf.labels
    with pytest.raises(ValueError, match="ONNX export"):
        Classifier(onnx_dir, backend="torch")


def test_int8_from_an_fp32_only_export(onnx_dir, tmp_path):
    fp32_only = tmp_path / "fp32-only"
    shutil.copytree(onnx_dir, fp32_only)
    (fp32_only / ONNX_INT8_FILE).unlink()
    texts = sample_texts(16)
    quantised_now = Classifier(fp32_only, quantize="int8").predict_proba(texts)
    np.testing.assert_allclose(quantised_now, Classifier(onnx_dir, quantize="int8").predict_proba(texts), atol=1e-6)


def test_model_object_on_onnx_exports_on_the_fly_and_takes_pairs(tiny_nli_dir, tiny_tokenizer):
    torch_nli = Classifier(tiny_nli_dir)
    onnx_nli = Classifier(torch_nli.model, tiny_tokenizer, backend="onnx")
    pairs = [(t, "This text is about sports.") for t in sample_texts(12)]
    np.testing.assert_allclose(onnx_nli.predict_proba(pairs), torch_nli.predict_proba(pairs), atol=1e-4, rtol=0)
    assert torch_nli.model.config._attn_implementation == "sdpa"  # export switched to eager and back


def test_export_errors(onnx_dir, tiny_t5_dir, tiny_classifier_dir, tmp_path, capsys):
    with pytest.raises(FileExistsError, match="not empty"):
        export_onnx(tiny_classifier_dir, onnx_dir)
    with pytest.raises(ValueError, match="not a T5 classifier"):
        export_onnx(tiny_t5_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["export", str(tmp_path / "nowhere"), str(tmp_path / "out2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_predict_with_int8(onnx_dir, tmp_path, capsys):
    texts = sample_texts(5)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    assert main(["predict", str(onnx_dir), str(tmp_path / "in.jsonl"), "--int8", "-o", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == Classifier(onnx_dir, quantize="int8").predict(texts)
