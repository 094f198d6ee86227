"""training.py / evaluation.py: t5cls.train and t5cls.evaluate on tiny random T5 checkpoints.

Every run goes through the real Trainer, writes real files and reloads the result through
t5cls.Classifier (and transformers' Auto classes); bad input must fail before anything is written.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import t5cls
from t5cls.training import train

WORDS = {
    "sports": "game team won match goal player season coach league".split(),
    "business": "market stock profit shares bank company deal sales".split(),
    "science": "space research study scientists cells planet data lab".split(),
}


def topic_frame(n_per_label: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {"text": " ".join(rng.choice(words, size=5)), "label": label}
        for label, words in WORDS.items()
        for _ in range(n_per_label)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def topic_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("topics")
    topic_frame(8, seed=0).to_csv(root / "train.csv", index=False)
    topic_frame(3, seed=1).to_csv(root / "dev.csv", index=False)
    return root / "train.csv", root / "dev.csv"


FAST = dict(epochs=1, batch_size=8, show_progress_bar=False)


# --- the main path ---------------------------------------------------------------------------


def test_train_from_files_writes_model_metrics_and_plots(tiny_t5_dir, topic_files, tmp_path):
    train_csv, dev_csv = topic_files
    out = tmp_path / "clf"
    result = train(tiny_t5_dir, train_csv, eval=dev_csv, output_dir=out, epochs=2, batch_size=8, learning_rate=3e-3)

    assert result.labels == ["business", "science", "sports"]  # sorted
    assert result.problem_type == "single_label_classification"
    assert result.global_step == 2 * 3  # 24 rows / 8 per batch, 2 epochs
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json", "loss_curve.png", "confusion_matrix.png"} <= files
    assert not {"checkpoints", "training_args.bin", ".final-model"} & files  # no pickles, no leftovers
    report = json.loads((out / "metrics.json").read_text())
    assert report["labels"] == result.labels and report["train"]["global_step"] == 6
    assert set(report["eval"]) >= {"accuracy", "macro_f1", "mcc", "confusion_matrix"}
    assert any("eval_loss" in h for h in report["log_history"])
    assert report["plots"] == ["loss_curve.png", "confusion_matrix.png", "reliability_diagram.png"]  # reliability: any single-label eval

    # The saved directory is a classifier for t5cls and for transformers alike.
    clf = t5cls.Classifier(out)
    assert clf.labels == result.labels
    assert clf.predict("market stock profit bank deal") in result.labels
    from transformers import AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification.from_pretrained(out)
    assert auto.config.id2label == {0: "business", 1: "science", 2: "sports"}

    # evaluate() on the same data gives the numbers train() reported (same Classifier path).
    again = t5cls.evaluate(out, dev_csv, output_dir=tmp_path / "report")
    assert again["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert again["confusion_matrix"] == result.metrics["confusion_matrix"]
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"metrics.json", "confusion_matrix.png", "reliability_diagram.png"}


def test_train_from_dataframe_and_dataset_with_int_labels(tiny_t5_dir, tmp_path):
    import datasets

    frame = topic_frame(4, seed=2)
    frame["label"] = frame["label"].map({"business": 10, "science": 2, "sports": 1})
    result = train(tiny_t5_dir, frame, output_dir=tmp_path / "a", **FAST)
    assert result.labels == ["1", "2", "10"]  # numeric order, names as strings
    assert result.metrics is None
    shuffled = datasets.Dataset.from_pandas(frame.sample(frac=1.0, random_state=5), preserve_index=False)
    # The same settings as a TrainingConfig, with one field overridden by keyword.
    config = t5cls.TrainingConfig(output_dir=tmp_path / "unused", **FAST)
    again = train(tiny_t5_dir, shuffled, config=config, output_dir=tmp_path / "b")
    assert again.labels == result.labels  # stable under row order
    assert json.loads((tmp_path / "b" / "config.json").read_text())["id2label"] == {"0": "1", "1": "2", "2": "10"}


def test_multi_label_from_lists_and_from_a_separator(tiny_t5_dir, tmp_path):
    rows = [{"text": "apple banana", "tags": ["fruit", "yellow"]}, {"text": "lemon", "tags": ["fruit", "yellow"]},
            {"text": "sky sea", "tags": ["blue"]}, {"text": "apple", "tags": ["fruit"]}, {"text": "stone", "tags": []}] * 3
    path = tmp_path / "tags.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    result = train(tiny_t5_dir, path, eval=path, output_dir=tmp_path / "ml", label_column="tags", **FAST)
    assert result.problem_type == "multi_label_classification"
    assert result.labels == ["blue", "fruit", "yellow"]
    assert {"micro_f1", "macro_f1", "exact_match"} <= set(result.metrics)
    assert (tmp_path / "ml" / "per_label_f1.png").is_file()
    predicted = t5cls.Classifier(tmp_path / "ml").predict(["lemon", "sky"])
    assert all(isinstance(p, list) for p in predicted)

    joined = pd.DataFrame(rows).assign(tags=lambda f: f["tags"].map(lambda t: "|".join(t) or "none"))
    sep = train(tiny_t5_dir, joined, output_dir=tmp_path / "sep", label_column="tags", label_separator="|", **FAST)
    assert sep.labels == ["blue", "fruit", "none", "yellow"]


def test_regression_with_early_stopping(tiny_t5_dir, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"text": [f"item number {i} " + "good " * (i % 4) for i in range(24)], "label": rng.random(24) * 5})
    result = train(
        tiny_t5_dir, frame[:16], eval=frame[16:], output_dir=tmp_path / "reg", epochs=3, batch_size=8,
        early_stopping=1, show_progress_bar=False,
    )
    assert result.problem_type == "regression" and result.labels == ["label"]
    assert set(result.metrics) >= {"pearson", "spearman", "mse"}
    assert (tmp_path / "reg" / "regression_scatter.png").is_file()
    report = json.loads((tmp_path / "reg" / "metrics.json").read_text())
    assert report["train"]["settings"]["early_stopping"] == 1
    assert isinstance(t5cls.Classifier(tmp_path / "reg").predict("item number 3"), float)


def test_lora_trains_adapters_and_the_head_and_saves_a_merged_model(tiny_t5_dir, topic_files, tmp_path):
    from safetensors.torch import load_file

    train_csv, _ = topic_files
    before = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["business", "science", "sports"])
    result = train(tiny_t5_dir, train_csv, output_dir=tmp_path / "lora", lora={"r": 4, "lora_alpha": 8},
                   gradient_checkpointing=True, learning_rate=1e-2, **FAST)
    out = tmp_path / "lora"
    assert (out / "adapter" / "adapter_config.json").is_file()
    after = load_file(out / "model.safetensors")
    assert not any("lora" in key for key in after)  # merged: plain classifier keys
    state = before.state_dict()
    assert not torch.equal(after["encoder.block.0.layer.0.SelfAttention.q.weight"], state["encoder.block.0.layer.0.SelfAttention.q.weight"])
    assert torch.equal(after["encoder.block.0.layer.1.DenseReluDense.wo.weight"], state["encoder.block.0.layer.1.DenseReluDense.wo.weight"])
    assert not torch.equal(after["query_embeddings.weight"], state["query_embeddings.weight"])  # trained fully
    assert t5cls.Classifier(out).labels == result.labels
    # adapter/ loads on its own: its seq2seq base is converted with the saved settings, the adapter merged.
    adapter = t5cls.inspect_model(out / "adapter")
    assert adapter.kind == "peft" and adapter.base.kind == "seq2seq" and adapter.labels == tuple(result.labels)
    texts = ["stocks fell", "the team won the cup"]
    torch.testing.assert_close(
        torch.from_numpy(t5cls.Classifier(out / "adapter").logits(texts)), torch.from_numpy(t5cls.Classifier(out).logits(texts)),
        atol=1e-5, rtol=0,
    )


def test_continue_training_an_existing_classifier(tiny_classifier_dir, tmp_path):
    frame = pd.DataFrame({"text": ["good", "bad", "fine", "great"] * 2, "label": ["positive", "negative", "neutral", "positive"] * 2})
    result = train(tiny_classifier_dir, frame[frame.label != "neutral"], output_dir=tmp_path / "more", **FAST)
    assert result.labels == ["negative", "neutral", "positive"]  # the classifier's own order and labels
    with pytest.raises(ValueError, match=r"\['meh'\] that are not in labels.*start from the T5 checkpoint"):
        train(tiny_classifier_dir, frame.assign(label="meh"), output_dir=tmp_path / "new", **FAST)
    assert not (tmp_path / "new").exists()


def test_text2text_mode_is_evaluated_with_label_scorer(tiny_t5_dir, topic_files, tmp_path):
    train_csv, dev_csv = topic_files
    out = tmp_path / "t2t"
    result = train(tiny_t5_dir, train_csv, eval=dev_csv, output_dir=out, mode="text2text", template="topic: {text}", **FAST)
    assert json.loads((out / "t5cls_text2text.json").read_text()) == {"labels": result.labels, "template": "topic: {text}"}
    from transformers import AutoModelForSeq2SeqLM

    assert type(AutoModelForSeq2SeqLM.from_pretrained(out)).__name__ == "T5ForConditionalGeneration"
    assert {"accuracy", "macro_f1", "mcc"} <= set(result.metrics)
    assert t5cls.evaluate(out, dev_csv)["accuracy"] == pytest.approx(result.metrics["accuracy"])
    # The same probabilities as LabelScorer gives directly on the prompts.
    scorer = t5cls.LabelScorer(out, labels=result.labels, template="topic: {text}")
    dev = pd.read_csv(dev_csv)
    predicted = scorer.predict(dev["text"].tolist())
    expected_accuracy = float(np.mean([p == t for p, t in zip(predicted, dev["label"])]))
    assert result.metrics["accuracy"] == pytest.approx(expected_accuracy)


# --- bad input: clear errors before anything is written ----------------------------------------


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, kwargs, error, match",
    [
        (lambda d: _write(d / "t.csv", "sentence,label\nhi,a\nyo,b\n"), {}, ValueError, r"no column\(s\) \['text'\]; its columns are \['sentence', 'label'\]"),
        (lambda d: _write(d / "t.csv", "text,label\n"), {}, ValueError, r"is empty \(no rows\)"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,a\nyo,\nok,b\n"), {}, ValueError, r"missing or empty labels in row\(s\) 2"),
        (lambda d: _write(d / "t.csv", 'text,label\nhi,a\nyo,"  "\n'), {}, ValueError, r"missing or empty labels in row\(s\) 2"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,a\nyo,a\n"), {}, ValueError, r"single class \['a'\]"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,a\n,b\n"), {}, ValueError, r"missing or empty text in column 'text', row\(s\) 2"),
        (lambda d: _write(d / "t.tsv", "text\tlabel\nhi\ta\nyo\tb\textra\n"), {}, ValueError, "Cannot read"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,a\nyo,b\n"), {"eval": "unseen"}, ValueError, r"labels \['c'\] that the training data"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,a\nyo,b\n"), {"early_stopping": 2}, ValueError, "early_stopping needs eval data"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,a\nyo,b\n"), {"optimizer": "sgd"}, ValueError, "optimizer='sgd'"),
        (lambda d: _write(d / "t.csv", "text,label\nhi,0.5\nyo,1.5\n"), {"mode": "text2text"}, ValueError, "text2text.*single-label"),
        (lambda d: d / "missing.csv", {}, FileNotFoundError, "does not exist"),
        (lambda d: [1, 2, 3], {}, TypeError, "pass a file path"),
    ],
)
def test_bad_input_fails_before_writing(tiny_t5_dir, tmp_path, make, kwargs, error, match):
    data = make(tmp_path)
    if kwargs.get("eval") == "unseen":
        kwargs = {"eval": _write(tmp_path / "dev.csv", "text,label\nhi,a\nyo,c\n")}
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        train(tiny_t5_dir, data, output_dir=out, **kwargs)
    assert not out.exists()


def test_non_empty_output_dir_needs_resume_or_overwrite(tiny_t5_dir, topic_files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="resume=True.*overwrite=True"):
        train(tiny_t5_dir, topic_files[0], output_dir=out)
    assert (out / "precious.txt").read_text() == "keep me"


def test_evaluate_rejects_labels_the_model_does_not_know(tiny_classifier_dir, tmp_path):
    data = _write(tmp_path / "d.csv", "text,label\ngood,positive\nodd,surprised\n")
    with pytest.raises(ValueError, match=r"\['surprised'\] that the training data / model does not have"):
        t5cls.evaluate(tiny_classifier_dir, data, output_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_train_then_evaluate(tiny_t5_dir, topic_files, tmp_path, capsys):
    from t5cls.cli import main

    train_csv, dev_csv = topic_files
    out = tmp_path / "cli"
    code = main(["train", "--model", str(tiny_t5_dir), "--train", str(train_csv), "--eval", str(dev_csv), "--output", str(out),
                 "--epochs", "1", "--batch-size", "8", "--no-show-progress-bar"])
    done = capsys.readouterr()
    assert code == 0, done.err
    assert "trained 3 steps" in done.out and "eval: accuracy" in done.out
    assert t5cls.Classifier(out).labels == ["business", "science", "sports"]
    code = main(["evaluate", str(out), str(dev_csv), "--output", str(tmp_path / "rep")])
    evaluated = capsys.readouterr()
    assert code == 0, evaluated.err
    assert "9 examples: accuracy" in evaluated.out and "confusion matrix" in evaluated.out
    assert (tmp_path / "rep" / "confusion_matrix.png").is_file()

    code = main(["train", "--model", str(tiny_t5_dir), "--train", str(train_csv), "--output", str(out)])
    bad = capsys.readouterr()
    assert code == 2
    assert bad.err.strip().count("\n") == 0 and "exists and is not empty" in bad.err
