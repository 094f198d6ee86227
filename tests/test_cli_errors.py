"""Every bad option or input file of the ``t5cls`` command exits 2 with one line naming the value; a
bug exits 1 with its traceback. In process through ``t5cls.cli.main(argv)`` (no Python per case).
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys

import pytest
import torch

from t5cls.cli import main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def run(capsys, argv: list) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv: list, match: str) -> str:
    code, _, err = run(capsys, argv)
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert code == 2, err
    assert last.startswith(f"t5cls {argv[0]}: error: "), err
    assert re.search(match, last), last
    return last


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Input files, good and bad, shared by the cases."""
    d = tmp_path_factory.mktemp("cli-inputs")
    (d / "good.txt").write_text("a gripping film\ndull\n", encoding="utf-8")
    (d / "good.csv").write_text("text,label,question,passage\na gripping film,positive,is it good?,it is\ndull,negative,is it?,no\n", encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "empty.csv").write_bytes(b"")
    (d / "blank.txt").write_text("a gripping film\n\ndull\n", encoding="utf-8")
    (d / "latin1.txt").write_bytes("fine\ncafé\n".encode("latin-1"))
    (d / "latin1.csv").write_bytes("text,label\nfine,positive\ncafé,negative\n".encode("latin-1"))
    (d / "body.csv").write_text("id,body\n1,x\n", encoding="utf-8")
    (d / "table.xlsx").write_text("x")
    (d / "unknown-label.csv").write_text("text,label\nx,positive\ny,sarcastic\n", encoding="utf-8")
    (d / "full").mkdir()
    (d / "full" / "keep.txt").write_text("mine")
    return d


# --- serve: the address is checked before anything loads -------------------------------------


def test_serve_port_out_of_range(capsys, tiny_classifier_dir):
    assert_user_error(capsys, ["serve", tiny_classifier_dir, "--port", 99999], r"port=99999 must be between 1 and 65535")


def test_serve_negative_port(capsys, tiny_classifier_dir):
    assert_user_error(capsys, ["serve", tiny_classifier_dir, "--port=-1"], r"port=-1 must be between 1 and 65535")


def test_serve_host_not_of_this_machine(capsys, tiny_classifier_dir):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
    assert_user_error(
        capsys, ["serve", tiny_classifier_dir, "--host", "192.0.2.1", "--port", 8123],
        r"Cannot listen on 192\.0\.2\.1:8123: .*; '192\.0\.2\.1' is not an address of this machine",
    )


def test_serve_port_in_use(capsys, tiny_classifier_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        match = rf"Cannot listen on 127\.0\.0\.1:{port}: .*another process listens on port {port}"
        assert_user_error(capsys, ["serve", tiny_classifier_dir, "--port", port], match)


@pytest.mark.parametrize(
    "options, match",
    [
        (["--max-batch-tokens", 0], r"max_batch_tokens=0 must be at least 1"),
        (["--max-inputs", 0], r"max_inputs=0"),
        (["--max-wait-ms", -1], r"max_wait_ms=-1.0 must be at least 0"),
        (["--threads", 0], r"threads=0"),
        (["--limit-concurrency", 0], r"limit_concurrency=0"),
        (["--device", "gpu"], r"device='gpu' is not a device name"),
        (["--dtype", "float33"], r"dtype='float33' is not supported"),
    ],
)
def test_serve_options(capsys, tiny_classifier_dir, options, match):
    assert_user_error(capsys, ["serve", tiny_classifier_dir, "--port", 8124, *options], match)


def test_serve_sources(capsys, tmp_path):
    assert_user_error(capsys, ["serve", tmp_path, "--port", 8125], r"is not a model directory \(no config\.json")


# --- predict ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        (["--max-length", 0], r"max_length=0 must be at least 2"),
        (["--max-length=-5"], r"max_length=-5 must be at least 2"),
        (["--batch-tokens", 0], r"batch_tokens=0 must be at least 1"),
        (["--threshold", 1.5], r"threshold=1.5 must be a probability between 0 and 1"),
        (["--device", "gpu"], r"device='gpu' is not a device name"),
        (["--int8", "--backend", "torch"], r"quantize='int8' runs through ONNX Runtime"),
        (["--pair-column", "hypothesis"], r"has no column\(s\) \['hypothesis'\]"),
        (["--text-column", "review"], r"has no column\(s\) \['review'\]; its columns are \['text'\]"),
        (["--output", "out.parquet"], r"Cannot write 'out\.parquet': use an output file ending in \.jsonl or \.csv"),
    ],
)
def test_predict_options(capsys, tiny_classifier_dir, files, options, match, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert_user_error(capsys, ["predict", tiny_classifier_dir, files / "good.txt", *options], match)


@NO_CUDA
def test_predict_on_cuda_without_cuda(capsys, tiny_classifier_dir, files):
    assert_user_error(capsys, ["predict", tiny_classifier_dir, files / "good.txt", "--device", "cuda"], r"device='cuda' but")


@pytest.mark.parametrize(
    "name, match",
    [
        ("empty.txt", r"empty\.txt is empty \(no lines\)"),
        ("empty.csv", r"empty\.csv is empty \(no rows\)"),
        ("blank.txt", r"blank\.txt has empty text in line\(s\) 2"),
        ("latin1.txt", r"latin1\.txt line 2 is not UTF-8 text \(byte 0xe9 at column 4\)"),
        ("latin1.csv", r"latin1\.csv line 3 is not UTF-8 text"),
        ("body.csv", r"body\.csv has no column\(s\) \['text'\]; its columns are \['id', 'body'\]"),
        ("table.xlsx", r"unknown suffix '\.xlsx'"),
        ("missing.txt", r"Input file '.*missing\.txt' does not exist"),
    ],
)
def test_predict_input_files(capsys, tiny_classifier_dir, files, name, match):
    assert_user_error(capsys, ["predict", tiny_classifier_dir, files / name], match)


def test_predict_empty_file_writes_nothing(capsys, tiny_classifier_dir, files, tmp_path):
    out = tmp_path / "out.jsonl"
    assert_user_error(capsys, ["predict", tiny_classifier_dir, files / "empty.txt", "--output", out], r"is empty")
    assert not out.exists()


def test_predict_stdin_blank_line(capsys, tiny_classifier_dir, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"fine\n\n")))
    assert_user_error(capsys, ["predict", tiny_classifier_dir, "-"], r"stdin has empty text in line\(s\) 2")


def test_predict_output_is_a_directory(capsys, tiny_classifier_dir, files, tmp_path):
    assert_user_error(capsys, ["predict", tiny_classifier_dir, files / "good.txt", "--output", tmp_path], r"is a directory")


@pytest.mark.parametrize(
    "model, match",
    [("seq2seq", r"is a seq2seq T5-family checkpoint .*\(model_type 't5'\), not a T5 classifier"), ("missing", r"does not exist")],
)
def test_predict_models(capsys, tiny_t5_dir, files, tmp_path, model, match):
    path = tiny_t5_dir if model == "seq2seq" else tmp_path / "nowhere"
    assert_user_error(capsys, ["predict", path, files / "good.txt"], match)


def test_argparse_mistakes_exit_2(capsys, tiny_classifier_dir, files):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(tiny_classifier_dir), str(files / "good.txt"), "--backend", "tensorflow"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tensorflow'" in capsys.readouterr().err


# --- a bug: exit 1 with the traceback ----------------------------------------------------------


def test_a_bug_exits_1_with_its_traceback(capsys, broken_vocab_classifier, tmp_path):
    directory, good, bad = broken_vocab_classifier
    (tmp_path / "in.txt").write_text(f"{good}\n{bad}\n", encoding="utf-8")
    code, _, err = run(capsys, ["predict", directory, tmp_path / "in.txt"])
    assert code == 1
    assert "Traceback (most recent call last)" in err and "IndexError" in err
    assert err.strip().splitlines()[-1] == "t5cls predict: internal error (the traceback above); this is a bug, please report it."
    (tmp_path / "good.txt").write_text(f"{good}\n", encoding="utf-8")
    code, out, _ = run(capsys, ["predict", directory, tmp_path / "good.txt"])
    assert code == 0 and json.loads(out)["label"] in ("negative", "positive")


# --- zero-shot, score, evaluate ----------------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        (["--labels", ""], r"No candidate labels in ''"),
        (["--labels", "a,a"], r"must be unique"),
        (["--labels", "a,b", "--template", "no slot"], r"has no '\{\}' for the label"),
        (["--labels", "a,b", "--threshold", 2], r"--threshold=2.0 must be between 0 and 1"),
        (["--labels", "a,b", "--batch-tokens", 0], r"batch_tokens=0 must be at least 1"),
        (["--labels", "a,b", "--device", "gpu"], r"device='gpu' is not a device name"),
        (["--labels", "a,b", "--text-column", "review"], r"has no column\(s\) \['review'\]"),
        (["--preset", "boolean-qa", "--passage-column", "context"], r"has no column\(s\) \['context'\]"),
    ],
)
def test_zero_shot_options(capsys, tiny_nli_dir, files, options, match):
    assert_user_error(capsys, ["zero-shot", tiny_nli_dir, files / "good.csv", *options], match)


@pytest.mark.parametrize(
    "name, match",
    [("empty.txt", r"is empty"), ("blank.txt", r"line\(s\) 2"), ("latin1.txt", r"line 2 is not UTF-8")],
)
def test_zero_shot_input_files(capsys, tiny_nli_dir, files, name, match):
    assert_user_error(capsys, ["zero-shot", tiny_nli_dir, files / name, "--labels", "a,b"], match)


@pytest.mark.parametrize(
    "options, match",
    [
        (["--labels", "yes,yes"], r"must be unique"),
        (["--labels", "yes,"], r"must be non-empty strings"),
        (["--labels", "yes,no", "--template", "q: {question} a: {answer}"], r"has no column\(s\) \['answer'\]; .*Name the fields of the template"),
        (["--labels", "yes,no", "--template", "no field"], r"has no field for the input"),
        (["--labels", "yes,no", "--batch-tokens", 0], r"batch_tokens=0 must be at least 1"),
        (["--labels", "yes,no", "--max-length", 0], r"max_length=0 must be at least 2"),
        (["--labels", "yes,no", "--mode", "first_token", "--normalize", "mean"], r"use normalize='sum'"),
        (["--labels", "yes,no", "--dtype", "float33"], r"dtype='float33' is not supported"),
    ],
)
def test_score_options(capsys, tiny_t5_dir, files, options, match):
    assert_user_error(capsys, ["score", tiny_t5_dir, files / "good.csv", *options], match)


@pytest.mark.parametrize("name, match", [("empty.csv", r"is empty"), ("blank.txt", r"line\(s\) 2"), ("latin1.csv", r"line 3 is not UTF-8")])
def test_score_input_files(capsys, tiny_t5_dir, files, name, match):
    assert_user_error(capsys, ["score", tiny_t5_dir, files / name, "--labels", "yes,no"], match)


@pytest.mark.parametrize(
    "data, options, match",
    [
        ("good.csv", ["--threshold", 2], r"threshold=2.0 must be a probability between 0 and 1"),
        ("good.csv", ["--batch-tokens", 0], r"batch_tokens=0 must be at least 1"),
        ("good.csv", ["--max-length", 0], r"max_length=0 must be at least 2"),
        ("good.csv", ["--label-column", "gold"], r"has no column\(s\) \['gold'\]"),
        ("good.csv", ["--device", "gpu"], r"device='gpu' is not a device name"),
        ("unknown-label.csv", [], r"labels \['sarcastic'\] that the training data / model does not have"),
        ("empty.csv", [], r"is empty"),
        ("latin1.csv", [], r"line 3 is not UTF-8"),
        ("missing.csv", [], r"does not exist"),
    ],
)
def test_evaluate_options(capsys, tiny_classifier_dir, files, data, options, match):
    assert_user_error(capsys, ["evaluate", tiny_classifier_dir, files / data, *options], match)


# --- convert, export, bench, train -----------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        (["--num-labels", 0], r"num_labels=0 must be a positive integer"),
        (["--labels", "a,a"], r"must be unique"),
        (["--labels", "a,"], r"must be non-empty strings"),
        (["--decoder-layers=-1"], r"num_decoder_layers=-1 must be an integer >= 0"),
        (["--decoder-layers", 9], r"num_decoder_layers=9 but .* has only 2 decoder layer"),
        (["--dtype", "float33"], r"dtype='float33' is not a torch dtype"),
    ],
)
def test_convert_options(capsys, tiny_t5_dir, tmp_path, options, match):
    assert_user_error(capsys, ["convert", tiny_t5_dir, tmp_path / "out", *options], match)


def test_convert_paths(capsys, tiny_t5_dir, files, tmp_path):
    assert_user_error(capsys, ["convert", tiny_t5_dir, files / "full"], r"'.*full' exists and is not empty; pass overwrite=True \(--overwrite\)")
    assert_user_error(capsys, ["convert", tiny_t5_dir, files / "good.txt"], r"is a file, not a directory")
    assert_user_error(capsys, ["convert", tmp_path / "nowhere", tmp_path / "out"], r"nowhere")
    assert (files / "full" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "model, out, options, match",
    [
        ("classifier", "full", [], r"exists and is not empty"),
        ("classifier", "new", ["--opset", 0], r"opset=0 must be between 7 and"),
        ("seq2seq", "new", [], r"not a T5 classifier"),
        ("missing", "new", [], r"does not exist"),
    ],
)
def test_export_options(capsys, tiny_classifier_dir, tiny_t5_dir, files, tmp_path, model, out, options, match):
    path = {"classifier": tiny_classifier_dir, "seq2seq": tiny_t5_dir, "missing": tmp_path / "nowhere"}[model]
    target = files / "full" if out == "full" else tmp_path / "new"
    assert_user_error(capsys, ["export", path, target, *options], match)


@pytest.mark.parametrize(
    "options, match",
    [
        (["--rows", "one"], r"--rows 'one' must be row numbers"),
        (["--rows", "9"], r"rows \[9\] do not exist"),
        (["--n", 0], r"n=0 must be at least 1"),
        (["--repeat", 0], r"repeat=0 must be at least 1"),
    ],
)
def test_bench_options(capsys, options, match):
    assert_user_error(capsys, ["bench", "--preset", "tiny", *options], match)


@pytest.mark.parametrize(
    "options, match",
    [
        (["--batch-size", 0], r"batch_size=0 must be an integer >= 1"),
        (["--epochs", 0], r"epochs=0.0 must be a positive number"),
        (["--learning-rate", 0], r"learning_rate=0.0 must be positive"),
        (["--max-length", 1], r"max_length=1 must be an integer >= 2"),
        (["--checkpoint-steps", 0], r"checkpoint_steps=0 must be an integer >= 1"),
        (["--early-stopping", 2], r"early_stopping needs eval data"),
        (["--lora-r", 0], r"lora_r=0 must be an integer >= 1"),
    ],
)
def test_train_options(capsys, tiny_t5_dir, files, tmp_path, options, match):
    assert_user_error(capsys, ["train", "--model", tiny_t5_dir, "--train", files / "good.csv", "--output", tmp_path / "out", *options], match)


# --- one reader: every command reads the same rows from the same file ---------------------------

TEXTS = ["a gripping film", "dull, and long", "fine"]


def _commands(tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir, path) -> dict[str, list]:
    return {
        "predict": ["predict", tiny_classifier_dir, path],
        "zero-shot": ["zero-shot", tiny_nli_dir, path, "--labels", "good,bad"],
        "score": ["score", tiny_t5_dir, path, "--labels", "yes,no"],
        "evaluate": ["evaluate", tiny_classifier_dir, path],
    }


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".jsonl"])
def test_every_command_reads_the_same_rows(capsys, tmp_path, tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir, suffix):
    path = tmp_path / f"in{suffix}"
    labels = ["positive", "negative", "neutral"]
    if suffix == ".csv":
        path.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in zip(TEXTS, labels)), encoding="utf-8")
    elif suffix == ".txt":
        path.write_text("".join(f"{t}\n" for t in TEXTS), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in zip(TEXTS, labels)), encoding="utf-8")
    seen = {}
    for name, argv in _commands(tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir, path).items():
        if name == "evaluate" and suffix == ".txt":
            continue  # a .txt file has no labels
        code, out, err = run(capsys, argv)
        assert code == 0, err
        if name == "evaluate":
            seen[name] = int(out.split()[0])  # "3 examples: ..."
            continue
        rows = [json.loads(line) for line in out.splitlines()]
        seen[name] = len(rows)
        if name == "zero-shot":
            assert [r["sequence"] for r in rows] == TEXTS
        if name == "score":
            assert [r["text"] for r in rows] == TEXTS
    assert set(seen.values()) == {len(TEXTS)}, seen


@pytest.mark.parametrize(
    "suffix, content, where",
    [
        (".txt", "a gripping film\n\nfine\n", r"line\(s\) 2"),
        (".csv", "text,label\na gripping film,positive\n,negative\nfine,neutral\n", r"row\(s\) 2"),
        (".jsonl", '{"text": "a", "label": "positive"}\n{"text": " ", "label": "negative"}\n', r"line\(s\) 2"),
    ],
)
def test_every_command_refuses_the_same_blank_row(capsys, tmp_path, tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir, suffix, content, where):
    path = tmp_path / f"blank{suffix}"
    path.write_text(content, encoding="utf-8")
    for name, argv in _commands(tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir, path).items():
        if name == "evaluate" and suffix == ".txt":
            continue
        assert_user_error(capsys, argv, rf"blank\{suffix} has .*empty text .*{where}")
