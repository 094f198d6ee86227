"""A saved T5ForClassification is native in transformers: Auto classes, remote code, pipeline, PEFT."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

import t5cls

TEXTS = ["a gripping, beautifully shot film", "the plot never gets going", "it is a film"]


def _logits(model, tokenizer, texts=TEXTS) -> np.ndarray:
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.numpy()


def test_auto_model_loads_a_saved_classifier(tiny_classifier_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()
    assert type(model) is t5cls.T5ForClassification
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    direct = t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir).eval()
    np.testing.assert_allclose(_logits(model, tokenizer), _logits(direct, tokenizer), atol=1e-6)


REMOTE_CODE_PROBE = r"""
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
path, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
with torch.no_grad():
    logits = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
print(json.dumps({"logits": logits.tolist(), "t5cls_imported": any(m == "t5cls" or m.startswith("t5cls.") for m in sys.modules),
                  "class": type(model).__name__}))
"""


def test_trust_remote_code_loads_without_importing_t5cls(tiny_classifier_dir, tmp_path):
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_PROBE, str(tiny_classifier_dir), json.dumps(TEXTS)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["class"] == "T5ForClassification" and not report["t5cls_imported"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    expected = _logits(t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir).eval(), tokenizer)
    np.testing.assert_allclose(np.array(report["logits"]), expected, atol=1e-5)


def test_plain_auto_tokenizer_without_t5cls_falls_back_without_waiting(tiny_classifier_dir, tmp_path):
    # transformers 5 resolves AutoConfig before it reads tokenizer_config.json; without t5cls imported
    # and no terminal to ask on, it refuses the remote config and loads the tokenizer files: no hang.
    probe = "import sys; from transformers import AutoTokenizer; t = AutoTokenizer.from_pretrained(sys.argv[1]); print('ids', t(sys.argv[2]).input_ids)"
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tiny_classifier_dir), TEXTS[0]],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # transformers prints its [y/N] prompt to stdout (input() then meets end of input: a refusal), so find our line.
    ids = result.stdout.rsplit("ids ", 1)[-1].strip()
    assert json.loads(ids) == AutoTokenizer.from_pretrained(tiny_classifier_dir)(TEXTS[0]).input_ids


def test_text_classification_pipeline(tiny_classifier_dir):
    classify = pipeline("text-classification", model=str(tiny_classifier_dir), top_k=None)
    results = classify(TEXTS)
    proba = t5cls.Classifier(tiny_classifier_dir).predict_proba(TEXTS)
    labels = ["negative", "neutral", "positive"]
    for row, expected in zip(results, proba):
        scores = {item["label"]: item["score"] for item in row}
        assert set(scores) == set(labels)
        np.testing.assert_allclose([scores[label] for label in labels], expected, atol=1e-5)


def test_peft_lora_trains_adapters_and_saves_the_head(tiny_classifier_dir, tmp_path):
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    base = t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir)
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, target_modules=["q", "v"], r=4, lora_alpha=8))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert not any("wi_0" in n or "shared" in n for n in trainable)

    head_before = base.classifier.weight.detach().clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    labels = torch.tensor([2, 0, 1])
    model.train()
    for _ in range(3):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    trained = _logits(model, tokenizer)

    model.save_pretrained(tmp_path / "adapter")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), framework="pt") as reader:
        saved = list(reader.keys())
    assert any("classifier" in k for k in saved) and any("lora_A" in k for k in saved)

    fresh = t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir)
    torch.testing.assert_close(fresh.classifier.weight, head_before)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    np.testing.assert_allclose(_logits(reloaded, tokenizer), trained, atol=1e-5)
