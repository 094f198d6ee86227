"""Every bad value a user can give the library is a clear InputError naming it (or FileNotFoundError /
FileExistsError naming the path), raised before any model work.

One parametrized case per argument and bad value, on the session's tiny models (tests/conftest.py).
The CLI's cases are in tests/test_cli_errors.py, the server's in tests/test_server_errors.py.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from t5cls import Classifier, InputError, InputTypeError, LabelScorer, ZeroShotClassifier, evaluate, from_t5
from t5cls.convert import save_classifier
from t5cls.errors import USER_ERRORS, check_choice, check_int, check_number
from t5cls.inference import default_device, default_dtype
from t5cls.inputs import as_text_list, iter_texts, read_chunks, read_table

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


# --- the exceptions and checks ---------------------------------------------------------------


def test_input_error_is_a_value_error_and_the_type_error_both():
    assert issubclass(InputError, ValueError)
    assert issubclass(InputTypeError, InputError) and issubclass(InputTypeError, TypeError)
    assert USER_ERRORS == (InputError, FileNotFoundError, FileExistsError)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_int("n", 0), r"n=0 must be at least 1"),
        (lambda: check_int("n", -5, minimum=0), r"n=-5 must be at least 0"),
        (lambda: check_int("port", 99999, maximum=65535), r"port=99999 must be between 1 and 65535"),
        (lambda: check_int("n", 2.0), r"n=2.0 must be an integer"),
        (lambda: check_int("n", True), r"n=True must be an integer"),
        (lambda: check_int("n", "3"), r"n='3' must be an integer"),
        (lambda: check_number("p", float("nan"), minimum=0.0, maximum=1.0), r"p=nan must be between 0 and 1"),
        (lambda: check_number("p", float("inf")), r"p=inf must be a finite number"),
        (lambda: check_number("p", "0.5"), r"p='0.5' must be a number"),
        (lambda: check_choice("mode", "fast", ("full", "first_token")), r"mode='fast' is not supported; use one of 'full', 'first_token'"),
    ],
)
def test_checks_name_the_value(call, match):
    with pytest.raises(InputError, match=match):
        call()


# --- devices and dtypes ------------------------------------------------------------------------


@NO_CUDA
def test_cuda_without_cuda_is_an_input_error():
    with pytest.raises(InputError, match=r"device='cuda' but .* on this machine; use device='cpu'"):
        default_device("cuda")


@pytest.mark.parametrize(
    "device, match",
    [
        ("gpu", r"device='gpu' is not a device name"),
        ("", r"device='' is not a device name"),
        ("meta", r"device='meta' is not supported"),
        (3, r"device=3 must be a string"),
    ],
)
def test_unknown_devices(device, match):
    with pytest.raises(InputError, match=match):
        default_device(device)


def test_cuda_index_past_the_devices():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(InputError, match=r"CUDA device\(s\)"):
        default_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("dtype", ["float33", "int8", "cuda", torch.int64])
def test_unknown_dtypes(dtype):
    with pytest.raises(InputError, match=r"dtype=.* is not supported; use one of float32, bfloat16"):
        default_dtype(torch.device("cpu"), dtype)


def test_known_devices_and_dtypes_still_work():
    assert default_device("cpu") == torch.device("cpu")
    assert default_dtype(torch.device("cpu"), "bfloat16") is torch.bfloat16
    assert default_dtype(torch.device("cpu"), "torch.float32") is torch.float32


# --- Classifier --------------------------------------------------------------------------------

CLASSIFIER_OPTIONS = [
    ({"max_length": 0}, r"max_length=0 must be at least 2"),
    ({"max_length": -5}, r"max_length=-5 must be at least 2"),
    ({"max_length": 1}, r"max_length=1 must be at least 2"),
    ({"max_length": "64"}, r"max_length='64' must be an integer"),
    ({"batch_tokens": 0}, r"batch_tokens=0 must be at least 1"),
    ({"batch_tokens": -1}, r"batch_tokens=-1"),
    ({"max_batch_size": 0}, r"max_batch_size=0 must be at least 1"),
    ({"backend": "tensorflow"}, r"backend='tensorflow' is not supported; use one of 'torch', 'onnx'"),
    ({"quantize": "int4"}, r"quantize='int4' is not supported"),
    ({"quantize": "int8", "backend": "torch"}, r"quantize='int8' runs through ONNX Runtime"),
    ({"device": "gpu"}, r"device='gpu' is not a device name"),
    ({"dtype": "float33"}, r"dtype='float33' is not supported"),
    ({"show_progress_bar": "no"}, r"show_progress_bar='no' must be True or False"),
]


@pytest.mark.parametrize("options, match", CLASSIFIER_OPTIONS, ids=[str(o) for o, _ in CLASSIFIER_OPTIONS])
def test_classifier_options(tiny_classifier_dir, options, match):
    with pytest.raises(InputError, match=match):
        Classifier(tiny_classifier_dir, **options)


@NO_CUDA
def test_classifier_on_cuda_without_cuda(tiny_classifier_dir):
    with pytest.raises(InputError, match=r"device='cuda' but"):
        Classifier(tiny_classifier_dir, device="cuda")


def test_classifier_sources(tmp_path, tiny_t5_dir, tiny_classifier_dir):
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        Classifier(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        Classifier(tmp_path)
    with pytest.raises(InputError, match=r"seq2seq T5-family checkpoint .*model_type 't5'.*not a T5 classifier.*`t5cls convert`"):
        Classifier(tiny_t5_dir)
    with pytest.raises(InputError, match=r"Pass the tokenizer"):
        Classifier(Classifier(tiny_classifier_dir).model)
    with pytest.raises(InputTypeError, match=r"model must be a directory or a transformers model, got int"):
        Classifier(3, tokenizer=object())


@pytest.fixture(scope="module")
def classifier(tiny_classifier_dir) -> Classifier:
    return Classifier(tiny_classifier_dir)


@pytest.mark.parametrize(
    "texts, match",
    [
        ({"a": 1}, r"texts is a dict; a dict is not a list of texts \(it would be read as its keys\)"),
        ({"a", "b"}, r"texts is a set, which has no order"),
        (b"a gripping film", r"texts is bytes; decode it"),
        (pd.DataFrame({"text": ["a"]}), r"texts is a DataFrame \(it would be read as its column names\)"),
        (None, r"texts is None"),
        (5, r"texts must be a string or a list of strings, got int"),
        (["fine", 3], r"texts\[1\] is 3 \(int\)"),
        (["fine", ("a", "b")], r"Mix of single texts and \(text, text_pair\) tuples"),
    ],
    ids=["dict", "set", "bytes", "dataframe", "none", "int", "int-item", "mixed"],
)
def test_classifier_inputs(classifier, texts, match):
    with pytest.raises(InputTypeError, match=match):
        classifier.predict(texts)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda c: c.predict("x", threshold=1.5), r"threshold=1.5 must be a probability between 0 and 1"),
        (lambda c: c.predict("x", threshold="high"), r"threshold='high' must be a probability"),
        (lambda c: c("x", top_k=0), r"top_k=0 must be at least 1"),
        (lambda c: c("x", threshold=-0.1), r"threshold=-0.1"),
        (lambda c: list(c.stream(["x"], chunk_size=0)), r"chunk_size=0 must be at least 1"),
        (lambda c: list(c.stream(["x", None])), r"from index 0 on: texts\[1\] is None"),
    ],
    ids=["threshold-high", "threshold-str", "top_k", "threshold-negative", "chunk_size", "stream-item"],
)
def test_classifier_call_options(classifier, call, match):
    with pytest.raises(InputError, match=match):
        call(classifier)


def test_classifier_good_inputs_still_work(classifier):
    assert classifier.predict("a gripping film") in classifier.labels
    assert len(classifier.predict(("a", "b") for _ in range(3))) == 3  # any ordered iterable
    assert len(classifier.predict(pd.Series(["a", "b"]))) == 2


# --- LabelScorer -------------------------------------------------------------------------------

SCORER_OPTIONS = [
    ({"labels": []}, InputError, r"No labels: the list is empty"),
    ({"labels": ["yes", "yes"]}, InputError, r"must be unique; \['yes'\] appear more than once"),
    ({"labels": ["yes", " "]}, InputError, r"must be non-empty strings"),
    ({"labels": ["yes", 1]}, InputTypeError, r"must be strings; got \[1\]"),
    ({"labels": "yes"}, InputTypeError, r"labels must be a list of strings"),
    ({"template": "no field here"}, InputError, r"has no field for the input"),
    ({"template": "{0}"}, InputError, r"use plain named fields"),
    ({"template": 5}, InputTypeError, r"template must be a string"),
    ({"normalize": "max"}, InputError, r"normalize='max' is not"),
    ({"calibrate": "platt"}, InputError, r"calibrate='platt' is not"),
    ({"mode": "greedy"}, InputError, r"mode='greedy' is not"),
    ({"mode": "first_token", "normalize": "mean"}, InputError, r"use normalize='sum'"),
    ({"batch_tokens": 0}, InputError, r"batch_tokens=0 must be at least 1"),
    ({"max_length": 0}, InputError, r"max_length=0 must be at least 2"),
    ({"max_length": -5}, InputError, r"max_length=-5 must be at least 2"),
    ({"device": "gpu"}, InputError, r"device='gpu' is not a device name"),
    ({"dtype": "float33"}, InputError, r"dtype='float33' is not supported"),
    ({"show_progress_bar": None}, InputTypeError, r"show_progress_bar=None must be True or False"),
    ({"quantize": "int4"}, InputError, r"quantize='int4' is not supported"),
    ({"quantize": "int8", "device": "gpu"}, InputError, r"device='gpu' is not a device name"),
    ({"quantize": "int8", "dtype": "bfloat16"}, InputError, r"quantize='int8' computes activations in float32"),
]


@pytest.mark.parametrize("options, error, match", SCORER_OPTIONS, ids=[str(o) for o, _, _ in SCORER_OPTIONS])
def test_label_scorer_options(tiny_t5_dir, options, error, match):
    options = {"labels": ["yes", "no"], **options}
    with pytest.raises(error, match=match):
        LabelScorer(tiny_t5_dir, **options)


def test_label_scorer_sources_and_inputs(tmp_path, tiny_t5_dir, tiny_classifier_dir):
    with pytest.raises(InputError, match=r"is a t5cls classifier .* not a seq2seq T5"):
        LabelScorer(tiny_classifier_dir, labels=["yes", "no"])
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        LabelScorer(tmp_path, labels=["yes", "no"])
    scorer = LabelScorer(tiny_t5_dir, labels=["yes", "no"], template="q: {question} a: {answer}")
    with pytest.raises(InputError, match=r"inputs\[0\] lacks the field\(s\) \['answer'\]"):
        scorer.predict_proba([{"question": "is it?"}])
    with pytest.raises(InputError, match=r"inputs\[0\] is a string but the template"):
        scorer.predict_proba(["is it?"])
    with pytest.raises(InputTypeError, match=r"inputs\[0\]\['answer'\] is 3"):
        scorer.predict_proba([{"question": "is it?", "answer": 3}])
    with pytest.raises(InputTypeError, match=r"inputs is None"):
        scorer.predict_proba(None)


# --- ZeroShotClassifier -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        ({"max_length": 0}, r"max_length=0 must be at least 2"),
        ({"batch_tokens": -3}, r"batch_tokens=-3 must be at least 1"),
        ({"device": "gpu"}, r"device='gpu' is not a device name"),
        ({"dtype": "int8"}, r"dtype='int8' is not supported"),
        ({"quantize": "int4"}, r"quantize='int4' is not supported"),
    ],
)
def test_zero_shot_options(tiny_nli_dir, options, match):
    with pytest.raises(InputError, match=match):
        ZeroShotClassifier(tiny_nli_dir, **options)


def test_zero_shot_needs_an_nli_model(tiny_classifier_dir):
    with pytest.raises(InputError, match=r"have no entailment label"):
        ZeroShotClassifier(tiny_classifier_dir)


@pytest.fixture(scope="module")
def zero_shot(tiny_nli_dir) -> ZeroShotClassifier:
    return ZeroShotClassifier(tiny_nli_dir)


@pytest.mark.parametrize(
    "args, options, error, match",
    [
        (("x", []), {}, InputError, r"No candidate labels: the list is empty"),
        (("x", ""), {}, InputError, r"No candidate labels in ''"),
        (("x", " , "), {}, InputError, r"No candidate labels in ' , '"),
        (("x", ["a", "a"]), {}, InputError, r"must be unique"),
        (("x", [1, 2]), {}, InputTypeError, r"must be strings"),
        (("x", ["a", "b"]), {"hypothesis_template": "no slot"}, InputError, r"has no '\{\}' for the label"),
        (("x", ["a", "b"]), {"hypothesis_template": "{label}"}, InputError, r"cannot be filled with a label"),
        (("x", ["a", "b"]), {"hypothesis_template": 5}, InputTypeError, r"hypothesis_template must be a string"),
        (("x", ["a", "b"]), {"threshold": 2}, InputError, r"threshold=2.0 must be between 0 and 1"),
        (("x", ["a", "b"]), {"multi_label": "yes"}, InputTypeError, r"multi_label='yes' must be True or False"),
        (("x", ["a", "b"]), {"preset": "legal"}, InputError, r"Unknown preset 'legal'"),
        (({"a": 1}, ["a", "b"]), {}, InputTypeError, r"a dict is not a list of texts"),
        ((["x", "y"], [["a", "b"]] * 3), {}, InputError, r"Got 3 label lists for"),
        (("x", None), {"preset": "boolean-qa"}, InputTypeError, r"takes \(passage, question\) pairs"),
    ],
    ids=[
        "no-labels", "empty-string", "blank-labels", "repeated", "not-strings", "template-no-slot",
        "template-named", "template-type", "threshold", "multi_label-type", "preset", "dict-texts",
        "label-lists", "boolean-qa-strings",
    ],
)
def test_zero_shot_calls(zero_shot, args, options, error, match):
    with pytest.raises(error, match=match):
        zero_shot(*args, **options)


# --- evaluate ------------------------------------------------------------------------------------


@pytest.fixture
def labelled(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("text,label\na gripping film,positive\ndull,negative\nfine,neutral\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"threshold": 1.5}, InputError, r"threshold=1.5 must be a probability between 0 and 1"),
        ({"batch_tokens": 0}, InputError, r"batch_tokens=0 must be at least 1"),
        ({"max_length": 0}, InputError, r"max_length=0 must be at least 2"),
        ({"text_column": "review"}, InputError, r"has no column\(s\) \['review'\]; its columns are \['text', 'label'\]"),
        ({"label_column": "gold"}, InputError, r"has no column\(s\) \['gold'\]"),
        ({"device": "gpu"}, InputError, r"device='gpu' is not a device name"),
    ],
)
def test_evaluate_options(tiny_classifier_dir, labelled, options, error, match):
    with pytest.raises(error, match=match):
        evaluate(tiny_classifier_dir, labelled, **options)


def test_evaluate_data_and_models(tmp_path, tiny_classifier_dir, labelled):
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        evaluate(tiny_classifier_dir, tmp_path / "missing.csv")
    with pytest.raises(InputTypeError, match=r"evaluation data is a dict"):
        evaluate(tiny_classifier_dir, {"text": ["a"], "label": ["positive"]})
    with pytest.raises(InputTypeError, match=r"model is a int"):
        evaluate(3, labelled)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("text,label\nx,positive\ny,sarcastic\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"labels \['sarcastic'\] that the training data / model does not have"):
        evaluate(tiny_classifier_dir, unknown)
    blank = tmp_path / "blank.csv"
    blank.write_text("text,label\nx,positive\n,negative\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"missing or empty text in column 'text', row\(s\) 2"):
        evaluate(tiny_classifier_dir, blank)


# --- convert and export --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        ({"problem_type": "ranking"}, r"problem_type='ranking' is not supported"),
        ({"num_labels": 0}, r"num_labels=0 must be a positive integer"),
        ({"num_labels": 1}, r"single_label_classification needs at least 2 labels"),
        ({"labels": ["a", "b"], "num_labels": 3}, r"num_labels=3 disagrees with the 2 labels"),
        ({"labels": ["a", "a"]}, r"must be unique"),
        ({"labels": []}, r"No labels: the list is empty"),
        ({"num_decoder_layers": -1}, r"num_decoder_layers=-1 must be an integer >= 0"),
        ({"num_decoder_layers": 5}, r"num_decoder_layers=5 but .* has only 2 decoder layer"),
        ({"query_init": "random"}, r"query_init='random' is not supported"),
        ({"query_init": "labels"}, r"query_init='labels' gives one query per label"),
        ({"dtype": "float33"}, r"dtype='float33' is not a torch dtype"),
        ({"classifier_dropout": 1.5}, r"classifier_dropout=1.5 must be between 0 and 1"),
    ],
)
def test_from_t5_options(tiny_t5_dir, options, match):
    with pytest.raises(InputError, match=match):
        from_t5(tiny_t5_dir, **options)


def test_from_t5_sources(tmp_path, tiny_classifier_dir):
    with pytest.raises(FileNotFoundError):
        from_t5(tmp_path / "nowhere")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(InputError, match=r"is a file; pass the checkpoint directory"):
        from_t5(tmp_path / "weights.bin")


def test_output_directories_that_exist(tmp_path, tiny_classifier_dir):
    from t5cls.export import export_onnx

    model = Classifier(tiny_classifier_dir).model
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"'.*full' exists and is not empty; pass overwrite=True"):
        save_classifier(model, tmp_path / "full")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileExistsError, match=r"is a file, not a directory"):
        save_classifier(model, tmp_path / "a-file")
    with pytest.raises(FileExistsError, match=r"exists and is not empty"):
        export_onnx(tiny_classifier_dir, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "options, match",
    [({"opset": 0}, r"opset=0 must be between 7 and"), ({"opset": 999}, r"opset=999"), ({"int8": "yes"}, r"int8='yes' must be True or False")],
)
def test_export_options(tmp_path, tiny_classifier_dir, options, match):
    from t5cls.export import export_onnx

    with pytest.raises(InputError, match=match):
        export_onnx(tiny_classifier_dir, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_export_sources(tmp_path, tiny_t5_dir):
    from t5cls.export import export_onnx

    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        export_onnx(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(InputError, match=r"not a T5 classifier"):
        export_onnx(tiny_t5_dir, tmp_path / "out")


# --- input files: the one reader -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".jsonl"])
def test_non_utf8_files_name_the_file_and_line(tmp_path, suffix):
    header = {".txt": b"", ".csv": b"text\n", ".tsv": b"text\n", ".jsonl": b""}[suffix]
    line = (lambda t: b'{"text": "' + t + b'"}') if suffix == ".jsonl" else (lambda t: t)
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes(header + line(b"fine") + b"\n" + line("café".encode("latin-1")) + b"\n")
    number = 3 if header else 2
    with pytest.raises(InputError, match=rf"latin1\{suffix} line {number} is not UTF-8 text \(byte 0xe9 at column \d+\)"):
        list(iter_texts(path))


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".jsonl", ".json"])
def test_empty_files(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=rf"empty\{suffix} is empty"):
        iter_texts(path)


def test_header_only_csv_is_empty(tmp_path):
    (tmp_path / "header.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"header\.csv is empty \(no rows\)"):
        read_table(tmp_path / "header.csv")


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("blank.txt", "one\n\nthree\n", r"blank\.txt has empty text in line\(s\) 2"),
        ("spaces.txt", "one\n   \n", r"spaces\.txt has empty text in line\(s\) 2"),
        ("trailing.txt", "one\ntwo\n\n", r"line\(s\) 3"),
        ("blank.csv", "text\none\n\nthree\n", r"blank\.csv has missing or empty text in column 'text', row\(s\) 2"),
        ("cell.csv", "id,text\n1,one\n2,\n", r"row\(s\) 2"),
        ("blank.jsonl", '{"text": "a"}\n\n', r"blank\.jsonl line 2 is blank"),
        ("null.jsonl", '{"text": "a"}\n{"text": null}\n', r"null\.jsonl has empty text in line\(s\) 2"),
        ("nofield.jsonl", '{"text": "a"}\n{"body": "b"}\n', r"line\(s\) 2 \(blank, or no 'text' field\)"),
        ("broken.jsonl", '{"text": "a"}\n{"text": \n', r"broken\.jsonl line 2 is not valid JSON"),
        ("array.jsonl", '["a"]\n', r"array\.jsonl line 1 is a list, not a JSON object"),
        ("list.jsonl", '{"text": ["a"]}\n', r"list\.jsonl line 1: 'text' is \['a'\] \(list\), not a string"),
        ("broken.json", "[{", r"Cannot read .*broken\.json: not a JSON array of objects"),
        ("table.xlsx", "x", r"unknown suffix '\.xlsx'"),
    ],
)
def test_bad_rows_name_their_line(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        list(iter_texts(path))


def test_missing_files_and_columns(tmp_path):
    (tmp_path / "texts.csv").write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"'.*text\.csv' does not exist; readable files in .*: \['texts\.csv'\]"):
        iter_texts(tmp_path / "text.csv")
    with pytest.raises(InputError, match=r"has no column\(s\) \['text'\]; its columns are \['id', 'body'\]"):
        iter_texts(tmp_path / "texts.csv")
    with pytest.raises(InputError, match=r"is a directory; pass a file"):
        iter_texts(tmp_path)
    with pytest.raises(InputError, match=r"chunk_rows=0"):
        read_chunks(tmp_path / "texts.csv", chunk_rows=0)


def test_utf8_bom_and_crlf_are_read(tmp_path):
    (tmp_path / "excel.csv").write_bytes("\ufefftext\r\ncafé\r\n".encode("utf-8"))
    (tmp_path / "notes.txt").write_bytes("\ufeffcafé\r\nthé\r\n".encode("utf-8"))
    assert list(iter_texts(tmp_path / "excel.csv")) == ["café"]
    assert list(iter_texts(tmp_path / "notes.txt")) == ["café", "thé"]


def test_as_text_list_keeps_what_worked():
    assert as_text_list("a") == (["a"], True)
    assert as_text_list(("a", "b")) == ([("a", "b")], True)
    assert as_text_list(iter(["a", "b"])) == (["a", "b"], False)


def test_every_format_gives_the_same_rows(tmp_path):
    texts = ["a gripping film", "dull, and \"long\"", "42"]
    frame = pd.DataFrame({"text": texts, "label": ["positive", "negative", "neutral"]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    frame.to_json(tmp_path / "in.jsonl", orient="records", lines=True)
    frame.to_json(tmp_path / "in.json", orient="records")
    frame.to_parquet(tmp_path / "in.parquet")
    (tmp_path / "in.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    for suffix in (".csv", ".jsonl", ".json", ".parquet", ".txt"):
        assert list(iter_texts(tmp_path / f"in{suffix}")) == texts, suffix
        assert list(read_table(tmp_path / f"in{suffix}")["text"]) == texts, suffix
    chunks = list(read_chunks(tmp_path / "in.csv", text_columns=["text"], chunk_rows=2))
    assert [list(c.index) for c in chunks] == [[0, 1], [2]]  # rows counted across chunks
