"""t5cls.loading: what is in a model directory (inspect_model), and PEFT adapters wherever a model is accepted.

The adapter tests use the layout of the adapters published over flan-t5-xxl-classif-3way
(REFERENCE.md §1): a published-format T5ForClassification base (tiny, random) and a LoRA adapter
(r=16, alpha=32 on q and v, task_type SEQ_CLS, no saved head) written by peft itself. Every
entry point must give the logits of ``peft.PeftModel.from_pretrained(<t5cls's model of the base>,
adapter_dir)``.
"""

from __future__ import annotations

import json
import sys

import httpx
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import T5Model

import t5cls
from t5cls import Classifier, InputError, ZeroShotClassifier, inspect_model
from t5cls.loading import ModelInfo, default_max_length, load_classifier_model
from tests.conftest import tiny_t5_config

PUBLISHED_ID = "AntoineBlanot/flan-t5-xxl-classif-3way"
TEXTS = ["The striker scored twice in the final.", "Parliament passed the budget.", "A new chip doubles battery life."]
ATOL = 1e-5


@pytest.fixture(scope="module")
def published_dir(tmp_path_factory, t5_tokenizer):
    """A tiny random checkpoint in the published T5ForClassification layout (REFERENCE.md §1)."""
    out = tmp_path_factory.mktemp("published-3way")
    config = tiny_t5_config(num_decoder_layers=1)
    torch.manual_seed(21)
    t5 = T5Model(config).eval()
    state = {k: v.contiguous() for k, v in t5.state_dict().items() if not k.endswith("embed_tokens.weight")}
    # A head at T5's init scale keeps the logits near 1, where 1e-5 is a tight fp32 tolerance.
    head = torch.randn(3, config.d_model) * config.d_model**-0.5
    save_file({**state, "head.weight": head}, str(out / "model.safetensors"))
    cfg = config.to_dict()
    cfg.update(architectures=["T5ForClassification"], n_class=3, model_type="t5", tie_word_embeddings=False)
    (out / "config.json").write_text(json.dumps(cfg))
    t5_tokenizer.save_pretrained(out)
    return out


def _lora_adapter(base_model, out, *, base_name: str):
    """A random LoRA adapter (r=16, alpha=32 on q and v, SEQ_CLS: the published settings) saved by peft."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q", "v"], task_type=TaskType.SEQ_CLS)
    model = get_peft_model(base_model, lora)
    torch.manual_seed(5)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.normal_(std=0.2)  # lora_B starts at zero: make the adapter change the logits
    model.peft_config["default"].base_model_name_or_path = base_name
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def peft_adapter_dir(tmp_path_factory, published_dir):
    """A random LoRA adapter as peft saves it over t5cls's model of the base (naming the local base)."""
    out = tmp_path_factory.mktemp("peft-adapter") / "adapter"
    return _lora_adapter(t5cls.T5ForClassification.from_pretrained(published_dir), out, base_name=str(published_dir))


@pytest.fixture(scope="module")
def published_adapter_dir(tmp_path_factory, peft_adapter_dir):
    """The same adapter in the published layout: no saved head (theirs is `head`, which SEQ_CLS does
    not save), and the base named by its hub id, so it is used with base=."""
    out = tmp_path_factory.mktemp("published-adapter") / "adapter"
    out.mkdir()
    weights = load_file(peft_adapter_dir / "adapter_model.safetensors")
    save_file({k: v for k, v in weights.items() if "classifier" not in k}, str(out / "adapter_model.safetensors"))
    config = json.loads((peft_adapter_dir / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {"q", "v"} and config["task_type"] == "SEQ_CLS"
    published = {**config, "base_model_name_or_path": PUBLISHED_ID, "modules_to_save": None}
    (out / "adapter_config.json").write_text(json.dumps(published))
    return out


@pytest.fixture(scope="module")
def reference_model(published_dir, peft_adapter_dir):
    """peft's own PeftModel over t5cls's model of the base, not merged."""
    from peft import PeftModel

    return PeftModel.from_pretrained(t5cls.T5ForClassification.from_pretrained(published_dir), peft_adapter_dir).eval()


def _reference_logits(model, tokenizer, texts, pairs=None) -> np.ndarray:
    batch = tokenizer(texts, pairs, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.numpy()


# --- inspect_model ---------------------------------------------------------------------------


def test_inspect_model_is_exported():
    assert t5cls.inspect_model is t5cls.loading.inspect_model and t5cls.ModelInfo is ModelInfo


def test_inspect_each_kind(tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir, published_dir, tmp_path):
    info = inspect_model(tiny_classifier_dir)
    assert (info.kind, info.model_type, info.labels, info.nli) == ("t5cls", "t5cls", ("negative", "neutral", "positive"), False)
    assert inspect_model(tiny_nli_dir).nli
    assert (inspect_model(tiny_t5_dir).kind, inspect_model(tiny_t5_dir).labels) == ("seq2seq", ())
    published = inspect_model(published_dir)
    assert (published.kind, published.model_type) == ("t5forclassification", "t5")
    assert published.labels == ("entailment", "neutral", "contradiction") and published.nli  # MNLI order, named by us
    enct5 = tmp_path / "enct5"
    enct5.mkdir()
    (enct5 / "config.json").write_text(json.dumps({"model_type": "enct5", "id2label": {"0": "a", "1": "b"}}))
    assert (inspect_model(enct5).kind, inspect_model(enct5).labels) == ("enct5", ("a", "b"))
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({
        "model_type": "bert", "architectures": ["BertForSequenceClassification"],
        "id2label": {"0": "ENTAILMENT", "1": "NEUTRAL", "2": "CONTRADICTION"},
    }))  # fmt: skip
    assert (inspect_model(bert).kind, inspect_model(bert).nli) == ("sequence_classifier", True)
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "config.json").write_text((tiny_classifier_dir / "config.json").read_text())
    (onnx / "model.onnx").write_bytes(b"")
    assert inspect_model(onnx).kind == "onnx" and inspect_model(onnx).labels == info.labels
    umt5 = tmp_path / "umt5"
    umt5.mkdir()
    (umt5 / "config.json").write_text(json.dumps({"model_type": "umt5", "architectures": ["UMT5ForConditionalGeneration"]}))
    assert inspect_model(umt5).kind == "seq2seq"


def test_inspect_an_adapter(published_adapter_dir, peft_adapter_dir, published_dir):
    info = inspect_model(peft_adapter_dir)
    assert info.kind == "peft" and info.base.kind == "t5forclassification" and info.base.source == str(published_dir)
    assert info.labels == ("entailment", "neutral", "contradiction") and info.nli and info.is_classifier
    assert info.task_type == "SEQ_CLS" and info.target is info.base
    overridden = inspect_model(published_adapter_dir, base=published_dir)
    assert overridden.base.source == str(published_dir)


def test_inspect_errors_say_what_is_there_and_what_fits(tmp_path, tiny_classifier_dir, tiny_t5_dir, peft_adapter_dir):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        inspect_model(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        inspect_model(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match=r"no config.json; it holds \['notes.txt'\]"):
        inspect_model(tmp_path)
    with pytest.raises(InputError, match="base=.*not a PEFT adapter"):
        inspect_model(tiny_classifier_dir, base=tiny_t5_dir)
    with pytest.raises(t5cls.InputTypeError, match="directory or hub id"):
        inspect_model(42)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(InputError, match="holds a 'gpt2' model"):
        inspect_model(tmp_path)
    # An adapter whose base cannot be found says to pass --base.
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    config = json.loads((peft_adapter_dir / "adapter_config.json").read_text())
    (orphan / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(FileNotFoundError, match=r"base= \(--base\)"):
        inspect_model(orphan)
    (orphan / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": None}))
    with pytest.raises(InputError, match="names no base model"):
        inspect_model(orphan)


def test_jobs_refuse_the_wrong_kind_naming_what_fits(tiny_t5_dir, tiny_classifier_dir):
    with pytest.raises(InputError, match="seq2seq.*not a T5 classifier.*LabelScorer"):
        Classifier(tiny_t5_dir)
    with pytest.raises(InputError, match="t5cls classifier.*not a seq2seq T5.*t5cls.Classifier"):
        t5cls.LabelScorer(tiny_classifier_dir, labels=["a", "b"])
    with pytest.raises(InputError, match="not an NLI classifier.*LabelScorer"):
        ZeroShotClassifier(tiny_t5_dir)


def test_default_max_length_rule(t5_tokenizer):
    assert default_max_length(t5_tokenizer) == 512 and default_max_length(t5_tokenizer, 64) == 64

    class Unbounded:
        model_max_length = int(1e30)

    assert default_max_length(Unbounded()) == 512


def test_published_format_loads_through_from_pretrained_and_the_loader(published_dir):
    """modeling.py reads no foreign format itself: the loader registered by t5cls.loading does."""
    via_class = t5cls.T5ForClassification.from_pretrained(published_dir)
    via_loader = load_classifier_model(published_dir)
    for key, value in via_class.state_dict().items():
        torch.testing.assert_close(value, via_loader.state_dict()[key])


# --- PEFT adapters ---------------------------------------------------------------------------


def test_classifier_applies_a_published_style_adapter(published_adapter_dir, published_dir, reference_model, t5_tokenizer):
    expected = _reference_logits(reference_model, t5_tokenizer, TEXTS)
    base_only = _reference_logits(t5cls.T5ForClassification.from_pretrained(published_dir).eval(), t5_tokenizer, TEXTS)
    assert np.abs(expected - base_only).max() > 1e-3  # the adapter matters
    clf = Classifier(published_adapter_dir, base=published_dir)
    np.testing.assert_allclose(clf.logits(TEXTS), expected, atol=ATOL, rtol=0)
    assert clf.labels == ["entailment", "neutral", "contradiction"]
    assert not any("lora" in name for name, _ in clf.model.named_parameters())  # merged


def test_adapter_base_from_its_config(peft_adapter_dir, reference_model, t5_tokenizer):
    clf = Classifier(peft_adapter_dir)  # base_model_name_or_path names the local base; the saved head is the base's
    np.testing.assert_allclose(clf.logits(TEXTS), _reference_logits(reference_model, t5_tokenizer, TEXTS), atol=ATOL, rtol=0)


def test_zero_shot_applies_the_adapter(published_adapter_dir, published_dir, reference_model, t5_tokenizer):
    zs = ZeroShotClassifier(published_adapter_dir, base=published_dir)
    premises = [TEXTS[0], TEXTS[0], TEXTS[1]]
    hypotheses = ["This text is about sports.", "This text is about politics.", "This text is about politics."]
    expected = _reference_logits(reference_model, t5_tokenizer, premises, hypotheses)
    np.testing.assert_allclose(zs.logits(list(zip(premises, hypotheses))), expected, atol=ATOL, rtol=0)
    result = zs(TEXTS[0], ["sports", "politics"], hypothesis_template="This text is about {}.")
    entail = torch.softmax(torch.from_numpy(expected[:2, 0]), dim=0).numpy()
    scores = dict(zip(result["labels"], result["scores"]))
    np.testing.assert_allclose([scores["sports"], scores["politics"]], entail, atol=ATOL)


def test_server_serves_the_adapter(published_adapter_dir, published_dir, reference_model, t5_tokenizer):
    from t5cls.server import create_app
    from tests.test_server import ThreadServer

    expected = torch.softmax(torch.from_numpy(_reference_logits(reference_model, t5_tokenizer, TEXTS)), dim=1).numpy()
    app = create_app(published_adapter_dir, base=published_dir, max_wait_ms=1)
    with ThreadServer(app) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        model = client.get("/v1/model").json()
        assert model["kind"] == "classifier" and model["format"] == "peft" and "POST /v1/zero-shot" in model["endpoints"]
        response = client.post("/v1/classify", json={"inputs": TEXTS, "top_k": None})
        assert response.status_code == 200, response.text
        for row, want in zip(response.json()["results"], expected):
            got = {item["label"]: item["score"] for item in row}
            np.testing.assert_allclose([got[name] for name in ("entailment", "neutral", "contradiction")], want, atol=ATOL)


def test_cli_predict_takes_base(published_adapter_dir, published_dir, reference_model, t5_tokenizer, tmp_path, capsys):
    from t5cls.cli import main

    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    assert main(["predict", str(published_adapter_dir), str(source), "--base", str(published_dir)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = torch.softmax(torch.from_numpy(_reference_logits(reference_model, t5_tokenizer, TEXTS)), dim=1).numpy()
    np.testing.assert_allclose([[r["proba_entailment"], r["proba_neutral"], r["proba_contradiction"]] for r in rows], expected, atol=ATOL)


def test_seq2seq_adapter_scores_labels(tiny_t5_dir, t5_tokenizer, tmp_path):
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model
    from transformers import T5ForConditionalGeneration

    model = get_peft_model(
        T5ForConditionalGeneration.from_pretrained(tiny_t5_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"], task_type=TaskType.SEQ_2_SEQ_LM),
    )
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.2)
    model.peft_config["default"].base_model_name_or_path = str(tiny_t5_dir)
    model.save_pretrained(tmp_path / "adapter")
    assert inspect_model(tmp_path / "adapter").is_seq2seq
    reference = PeftModel.from_pretrained(T5ForConditionalGeneration.from_pretrained(tiny_t5_dir), tmp_path / "adapter")
    reference = reference.merge_and_unload().eval()
    labels = ["sports", "politics", "science"]
    expected = t5cls.LabelScorer((reference, t5_tokenizer), labels=labels, show_progress_bar=False).log_likelihoods(TEXTS)
    scorer = t5cls.LabelScorer(tmp_path / "adapter", labels=labels, show_progress_bar=False)
    np.testing.assert_allclose(scorer.log_likelihoods(TEXTS), expected, atol=ATOL, rtol=0)
    with pytest.raises(InputError, match="not a T5 classifier"):
        Classifier(tmp_path / "adapter")


def test_without_peft_the_error_says_how_to_install_it(peft_adapter_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "t5cls\[lora\]"'):
        Classifier(peft_adapter_dir)


def test_base_with_a_loaded_model_is_an_error(tiny_classifier_dir, published_dir):
    model = t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir)
    with pytest.raises(InputError, match="base=.*adapter directory"):
        Classifier(model, object(), base=published_dir)
