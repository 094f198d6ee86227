"""t5cls.ray on a real local Ray cluster: results equal the in-process jobs, every row once, the CLI's --ray.

One cluster for the module (``ray.init(num_cpus=2)``: Ray starts slowly on a shared 2-core machine),
tiny random models, a Parquet file of 2,000 rows with an ``id`` column.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "t5cls[ray]"')
pytest.importorskip("ray.data", reason='Ray Data is not installed: pip install "t5cls[ray]"')

import t5cls  # noqa: E402
import t5cls.ray as t5ray  # noqa: E402
from t5cls.cli import main  # noqa: E402
from t5cls.errors import InputError  # noqa: E402

from .conftest import sample_texts  # noqa: E402

N_ROWS = 2000
LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def cluster():
    # Workers import the t5cls this test imported (a worktree's src/, or the installed one).
    src = str(Path(t5cls.__file__).resolve().parents[1])
    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, old_path) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield
    ray.shutdown()
    if old_path is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old_path


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    base = sample_texts(64)
    # Distinct texts of varied length; ids that are not the row numbers, so a mix-up shows.
    texts = [f"{base[i % len(base)]} {' '.join(['again'] * (i % 7))} #{i}".strip() for i in range(N_ROWS)]
    # Rerank's columns: a query and its documents (a list) per row.
    queries = [f"what about {base[i % len(base)].split()[0]}" for i in range(N_ROWS)]
    documents = [[texts[i], texts[(i + 1) % N_ROWS], base[(i * 3) % len(base)]] for i in range(N_ROWS)]
    return pd.DataFrame({"id": [f"doc-{i * 7 % N_ROWS:05d}" for i in range(N_ROWS)], "text": texts, "query": queries, "documents": documents})


@pytest.fixture(scope="module")
def parquet_file(frame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ray-input") / "texts.parquet"
    frame.to_parquet(path, row_group_size=250)
    return path


def _floats(out: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return np.asarray(out[columns].to_numpy(), dtype=np.float64)  # Ray's pandas may hold Arrow dtypes


def _by_id(out: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``out`` in ``frame``'s row order, after checking that every id is there exactly once."""
    assert len(out) == len(frame)
    assert sorted(out["id"]) == sorted(frame["id"])
    out = out.set_index("id").loc[frame["id"]].reset_index()
    assert out["text"].tolist() == frame["text"].tolist()  # every input column kept, aligned with its id
    return out


@pytest.fixture(scope="module")
def pipeline(cluster, parquet_file, frame, tiny_classifier_dir, tiny_nli_dir, tiny_t5_dir) -> pd.DataFrame:
    """classify -> zero-shot -> score -> rerank as steps of one Dataset: one run, four actor pools side by side."""
    dataset = ray.data.read_parquet(str(parquet_file))
    dataset = t5ray.predict(dataset, tiny_classifier_dir, task="classify", num_cpus=0.25, batch_size=400)
    dataset = dataset.rename_columns({"label": "classify_label", "score": "classify_score"})
    dataset = t5ray.predict(dataset, tiny_nli_dir, task="zero-shot", num_cpus=0.25, candidate_labels=ZERO_SHOT_LABELS, hypothesis_template="It is {}.")
    dataset = dataset.rename_columns({"label": "zero_shot_label"})
    dataset = t5ray.predict(dataset, tiny_t5_dir, task="score", num_cpus=0.25, labels="positive,negative", template=SCORE_TEMPLATE, batch_size=500)
    dataset = dataset.rename_columns({"label": "score_label"})
    dataset = t5ray.predict(dataset, tiny_t5_dir, task="rerank", num_cpus=0.25, top_n=2, return_documents=True, batch_size=500)
    return _by_id(dataset.to_pandas(), frame)


ZERO_SHOT_LABELS = ["sports", "politics", "science"]
SCORE_TEMPLATE = "review: {text} sentiment:"


def test_classify_equals_classifier(pipeline, frame, tiny_classifier_dir):
    clf = t5cls.Classifier(tiny_classifier_dir)
    proba = clf.predict_proba(frame["text"].tolist())
    np.testing.assert_allclose(_floats(pipeline, [f"proba_{label}" for label in LABELS]), proba, atol=1e-5)
    assert pipeline["classify_label"].tolist() == clf.labels_from_proba(proba)
    np.testing.assert_allclose(_floats(pipeline, ["classify_score"])[:, 0], proba.max(axis=1), atol=1e-5)
    assert list(pipeline.columns[:9]) == ["id", "text", "query", "documents", "classify_label", "classify_score", *[f"proba_{label}" for label in LABELS]]


def test_zero_shot_equals_zero_shot_classifier(pipeline, frame, tiny_nli_dir):
    expected = t5cls.ZeroShotClassifier(tiny_nli_dir)(frame["text"].tolist(), ZERO_SHOT_LABELS, hypothesis_template="It is {}.")
    assert [list(labels) for labels in pipeline["labels"]] == [r["labels"] for r in expected]
    np.testing.assert_allclose(np.array([list(s) for s in pipeline["scores"]], dtype=np.float64), np.array([r["scores"] for r in expected]), atol=1e-5)
    assert pipeline["zero_shot_label"].tolist() == [r["label"] for r in expected]


def test_score_equals_label_scorer(pipeline, frame, tiny_t5_dir):
    scorer = t5cls.LabelScorer(tiny_t5_dir, labels=["positive", "negative"], template=SCORE_TEMPLATE)
    proba = scorer.predict_proba(frame["text"].tolist())
    np.testing.assert_allclose(_floats(pipeline, ["p_positive", "p_negative"]), proba, atol=1e-5)
    assert pipeline["score_label"].tolist() == [scorer.labels[j] for j in proba.argmax(axis=1)]
    np.testing.assert_allclose(_floats(pipeline, ["entropy"])[:, 0], [r["entropy"] for r in scorer.records(proba)], atol=1e-5)


def test_rerank_equals_reranker(pipeline, frame, tiny_t5_dir):
    expected = t5cls.Reranker(tiny_t5_dir).rank(frame["query"].tolist(), frame["documents"].tolist(), top_n=2, return_documents=True)
    got = [list(results) for results in pipeline["results"]]
    assert [[(r["index"], r["document"]) for r in results] for results in got] == [[(r["index"], r["document"]) for r in results] for results in expected]
    np.testing.assert_allclose([[r["score"] for r in results] for results in got], [[r["score"] for r in results] for results in expected], atol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_predict_on_ray_matches_the_cli_without_it(cluster, frame, tiny_classifier_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    # Two formats in one folder, read with the CLI's rules: a CSV with quotes, a JSONL.
    frame = frame[["id", "text"]]
    frame.iloc[:300].assign(text=lambda f: f["text"] + ', "quoted"').to_csv(folder / "a.csv", index=False)
    frame.iloc[300:500].to_json(folder / "b.jsonl", orient="records", lines=True)
    out_dir = tmp_path / "out"
    argv = ["predict", str(tiny_classifier_dir), str(folder), "--ray", "--output", str(out_dir), "--output-format", "jsonl"]
    assert main(argv) == 0
    shards = sorted(out_dir.glob("*.json*"))
    assert shards
    rows = [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]
    got = pd.DataFrame(rows).set_index("id")
    for name in ("a.csv", "b.jsonl"):
        assert main(["predict", str(tiny_classifier_dir), str(folder / name), "--output", str(tmp_path / f"{name}.out.jsonl")]) == 0
    expected = pd.concat([pd.read_json(tmp_path / f"{name}.out.jsonl", lines=True) for name in ("a.csv", "b.jsonl")], ignore_index=True)
    ids = frame["id"].iloc[:500].tolist()
    assert len(got) == 500 and sorted(got.index) == sorted(ids)
    got = got.loc[ids].reset_index(drop=True)
    assert got["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(_floats(got, [f"proba_{label}" for label in LABELS]), expected[[f"proba_{label}" for label in LABELS]], atol=1e-5)

    assert "results" in capsys.readouterr().err


def test_every_row_exactly_once_when_an_actor_is_killed(cluster, frame, tiny_classifier_dir):
    psutil = pytest.importorskip("psutil", reason="psutil (installed with ray) finds the actor's process")
    dataset = ray.data.from_pandas([frame.iloc[i : i + 200] for i in range(0, N_ROWS, 200)])  # 10 blocks
    out = t5ray.predict(dataset, tiny_classifier_dir, task="classify", concurrency=2, num_cpus=0.5, batch_size=100)
    seen: list[pd.DataFrame] = []
    killed = None
    for batch in out.iter_batches(batch_format="pandas", batch_size=None):
        seen.append(batch)
        if killed is None:
            # This test's own Ray processes are its descendants; the actors run Ray Data's MapWorker.
            workers = [p for p in psutil.Process().children(recursive=True) if "MapWorker" in " ".join(_cmdline(p))]
            assert workers, "no actor process found"
            killed = workers[0].pid
            workers[0].kill()
    assert killed is not None and len(seen) > 1
    out = _by_id(pd.concat(seen, ignore_index=True), frame)
    proba = t5cls.Classifier(tiny_classifier_dir).predict_proba(frame["text"].tolist())
    np.testing.assert_allclose(_floats(out, [f"proba_{label}" for label in LABELS]), proba, atol=1e-5)


def _cmdline(process) -> list[str]:
    try:
        return process.cmdline()
    except Exception:  # exited meanwhile, or not ours to read
        return []


# --- bad input: all on the driver, before any actor starts ------------------------------------


def test_missing_column_names_the_columns_there_are(cluster, parquet_file, tiny_classifier_dir, tmp_path, capsys):
    dataset = ray.data.read_parquet(str(parquet_file))
    with pytest.raises(InputError, match=r"no column\(s\) \['review'\].*\['id', 'text', 'query', 'documents'\]"):
        t5ray.predict(dataset, tiny_classifier_dir, task="classify", text_column="review")
    with pytest.raises(InputError, match=r"no column\(s\) \['title'\]"):
        t5ray.predict(dataset, tiny_classifier_dir, task="score", labels=["a", "b"], template="{title}: {text}")
    argv = ["predict", str(tiny_classifier_dir), str(parquet_file), "--ray", "--text-column", "body", "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no column(s) ['body']" in err and "'id', 'text'" in err
    argv = ["zero-shot", str(tiny_classifier_dir), str(parquet_file), "--labels-column", "options", "--ray", "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "no column(s) ['options']" in capsys.readouterr().err
    argv = ["score", str(tiny_classifier_dir), str(parquet_file), "--labels", "a,b", "--template", "{title}", "--ray", "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "no column(s) ['title']" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_model_that_cannot_serve_the_task_fails_on_the_driver(cluster, parquet_file, tiny_t5_dir, tiny_classifier_dir):
    dataset = ray.data.read_parquet(str(parquet_file))
    with pytest.raises(InputError, match="task='classify'"):
        t5ray.predict(dataset, tiny_t5_dir, task="classify")
    with pytest.raises(InputError, match="task='score'"):
        t5ray.predict(dataset, tiny_classifier_dir, task="score", labels=["a", "b"])
    with pytest.raises(InputError, match="an NLI classifier.*task='zero-shot'"):  # no entailment label
        t5ray.predict(dataset, tiny_classifier_dir, task="zero-shot", candidate_labels=["a", "b"])
    with pytest.raises(InputError, match="task='translate' is not one of"):
        t5ray.predict(dataset, tiny_classifier_dir, task="translate")
    with pytest.raises(InputError, match="concurrency=0"):
        t5ray.predict(dataset, tiny_classifier_dir, task="classify", concurrency=0)


def test_unreachable_address_and_bad_output_fail_with_a_message(parquet_file, tiny_classifier_dir, tmp_path, capsys):
    # No cluster needed: nothing listens on the port, so connecting fails at once.
    address = f"127.0.0.1:{_free_port()}"
    base = ["predict", str(tiny_classifier_dir), str(parquet_file), "--ray"]
    assert main([*base, "--address", address, "--output", str(tmp_path / "o")]) == 2
    assert f"Cannot reach a Ray cluster at '{address}'" in capsys.readouterr().err
    assert main([*base, "--address", f"ray://{address}", "--output", str(tmp_path / "o")]) == 2
    assert "Cannot reach a Ray cluster" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.parquet").write_text("x")
    assert main([*base, "--output", str(tmp_path / "full")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main([*base]) == 2
    assert "give --output OUT_DIR" in capsys.readouterr().err


def test_cli_without_ray_does_not_import_ray(tiny_classifier_dir, tmp_path):
    (tmp_path / "in.txt").write_text("a fine day\nrain again\n")
    code = (
        "import sys; import t5cls.cli; assert 'ray' not in sys.modules, 'import t5cls.cli imported ray'; "
        f"rc = t5cls.cli.main(['predict', {str(tiny_classifier_dir)!r}, {str(tmp_path / 'in.txt')!r}, '-o', {str(tmp_path / 'o.jsonl')!r}]); "
        "assert rc == 0; assert 'ray' not in sys.modules, 'predict without --ray imported ray'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(t5cls.__file__).parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2


# --- the callable classes in process (no cluster): the other problem types and label columns ---


@pytest.fixture(scope="module")
def multi_label_and_regression_dirs(tiny_t5_dir, tmp_path_factory, t5_tokenizer):
    from t5cls.convert import save_classifier

    out = {}
    for problem_type, labels in (("multi_label_classification", ["a", "b", "c"]), ("regression", None)):
        model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=labels, num_labels=None if labels else 1, problem_type=problem_type)
        torch.manual_seed(0)
        with torch.no_grad():
            model.query_embeddings.weight.normal_()
        out[problem_type] = tmp_path_factory.mktemp(problem_type) / "model"
        save_classifier(model, out[problem_type], tokenizer=t5_tokenizer)
    return out


def test_batches_classes_give_the_cli_columns(multi_label_and_regression_dirs, tiny_nli_dir, frame):
    batch = frame.iloc[:40].reset_index(drop=True)
    texts = batch["text"].tolist()
    multi = multi_label_and_regression_dirs["multi_label_classification"]
    table = t5ray.ClassifyBatches(str(multi), threshold=0.4)(batch)
    clf = t5cls.Classifier(multi)
    assert table.column("labels").to_pylist() == clf.predict(texts, threshold=0.4)
    assert table.column_names == [*batch.columns, "labels", "proba_a", "proba_b", "proba_c"]
    regression = multi_label_and_regression_dirs["regression"]
    table = t5ray.ClassifyBatches(str(regression))(batch)
    np.testing.assert_allclose(table.column("value").to_numpy(), t5cls.Classifier(regression).predict(texts), atol=1e-5)

    # Zero-shot with each row's labels from a column: lists (as Parquet holds them), or comma-separated strings (CSV).
    label_lists = [["cats", "dogs"] if i % 2 else ["red", "green", "blue"] for i in range(len(batch))]
    expected = t5cls.ZeroShotClassifier(tiny_nli_dir)(texts, label_lists, threshold=0.9)
    job = t5ray.ZeroShotBatches(str(tiny_nli_dir), labels_column="options", threshold=0.9)
    for column in (label_lists, [", ".join(labels) for labels in label_lists]):
        table = job(batch.assign(options=column))
        assert table.column("labels").to_pylist() == [r["labels"] for r in expected]
        assert table.column("label").to_pylist() == [r["label"] for r in expected]
