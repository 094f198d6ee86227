"""Batch inference on Ray Data: every t5cls job as a step of a Ray ``Dataset``, across processes and machines.

``pip install "t5cls[ray]"``. :func:`predict` adds one ``map_batches`` step to a Dataset: a pool of
actors, each loading the model once and running every batch it gets through the job's own
batching path (:class:`t5cls.Classifier`, :class:`t5cls.ZeroShotClassifier`,
:class:`t5cls.LabelScorer`, :class:`t5cls.Reranker`), so a row gets on a cluster the numbers it
gets in process. Every input column is kept and the job's result columns (those ``t5cls predict``
/ ``zero-shot`` / ``score`` / ``rerank`` write, from the same record functions) are added. Ray
schedules the actors on CPUs or GPUs, restarts an actor whose process dies and retries its batch,
so each input row comes out exactly once.

:func:`read_inputs` reads files with the CLI's one reader (:mod:`t5cls.inputs`: the same formats
and rules as without Ray), one read task per file; :func:`connect` joins a cluster or starts a
local one, failing fast when an address cannot be reached.

Example:
    >>> import ray.data, t5cls.ray  # doctest: +SKIP
    >>> ds = ray.data.read_parquet("s3://bucket/reviews/")  # doctest: +SKIP
    >>> out = t5cls.ray.predict(ds, "sst2-classifier", task="classify", text_column="review", concurrency=8)  # doctest: +SKIP
    >>> out.write_parquet("s3://bucket/predictions/")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa

try:
    import ray
    import ray.data
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as exc:  # the extra is optional; say how to get it
    raise ImportError('t5cls.ray needs Ray Data: pip install "t5cls[ray]"') from exc

from .errors import InputError
from .inference import DEFAULT_CHUNK_SIZE
from .inputs import TABLE_SUFFIXES, iter_query_documents, read_chunks, require_columns, text_column_values

logger = logging.getLogger(__name__)

TASKS = ("classify", "zero-shot", "score", "rerank")
OUTPUT_FORMATS = ("parquet", "jsonl")
# How long connect() waits for a cluster's port to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 5.0
# CPUs a read or write task asks for: none. Reading text is light next to a T5 forward, and a task
# asking for any CPU never starts once the actors hold every CPU (a pool of 2 x 1 CPU on 2 cores hung).
IO_TASK_CPUS = 0
_DEFAULT_GCS_PORT = 6379
_DEFAULT_CLIENT_PORT = 10001


# --------------------------------------------------------------------------------------------
# Jobs: callable classes for Dataset.map_batches in an actor pool
# --------------------------------------------------------------------------------------------


def _with_columns(batch: pd.DataFrame, records: list[dict[str, Any]]) -> pa.Table:
    """``batch`` (every input column) with the records' fields appended as columns."""
    # Without pandas' metadata: it would list the input columns only, and a reader would trust it.
    table = pa.Table.from_pandas(batch, preserve_index=False).replace_schema_metadata(None)
    for name in records[0] if records else ():
        array = pa.array([record[name] for record in records])
        # A batch where every label is None, or every multi-label list empty, infers null types;
        # the labels are strings, and every block of a dataset must agree on its schema.
        if pa.types.is_null(array.type):
            array = array.cast(pa.string())
        elif pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type):
            array = array.cast(pa.list_(pa.string()))
        table = table.append_column(name, array)
    return table


class _Job:
    """Loads the job once (in the actor's ``__init__``) with torch on ``num_threads`` threads."""

    def __init__(self, *, num_threads: int | None = None):
        import torch

        if num_threads:
            torch.set_num_threads(num_threads)

    def _texts(self, batch: pd.DataFrame, column: str) -> list[str]:
        return text_column_values(batch.reset_index(drop=True), column, source=f"column {column!r}")


class ClassifyBatches(_Job):
    """Classify the ``text_column`` of each batch with :class:`t5cls.Classifier`.

    Adds what ``t5cls predict`` writes: ``label``, ``score`` and ``proba_<label>`` (single-label);
    ``labels`` and ``proba_<label>`` (multi-label); ``value`` (regression).

    Args:
        model: a T5 classifier directory (or an ONNX export of one).
        text_column: the column of texts.
        pair_column: optional second-text column (sentence pairs).
        threshold: multi-label models: probability to predict a label (default: the model's saved thresholds, else 0.5).
        num_threads: torch threads in this actor.
        **options: passed to :class:`t5cls.Classifier` (``batch_tokens``, ``max_length``, ``min_score``,
            ``long_inputs``, ``stride``, ``aggregate``, ``device``, ...); with ``long_inputs="chunk"`` rows
            also get ``windows``.
    """

    def __init__(
        self,
        model: str,
        *,
        text_column: str = "text",
        pair_column: str | None = None,
        threshold: float | None = None,
        num_threads: int | None = None,
        **options: Any,
    ):
        super().__init__(num_threads=num_threads)
        from .inference import Classifier

        self.classifier = Classifier(model, show_progress_bar=False, **options)
        self.text_column, self.pair_column, self.threshold = text_column, pair_column, threshold

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        texts: list[Any] = self._texts(batch, self.text_column)
        if self.pair_column:
            texts = list(zip(texts, self._texts(batch, self.pair_column)))
        proba, windows = self.classifier.predict_proba_windows(texts)
        return _with_columns(batch, self.classifier.records(proba, threshold=self.threshold, windows=windows))


class ZeroShotBatches(_Job):
    """Zero-shot classify each batch with :class:`t5cls.ZeroShotClassifier`.

    Adds what ``t5cls zero-shot`` writes as JSON lines (the text is the input column):
    ``labels`` and ``scores`` (best first) and ``label``.

    Args:
        model: an NLI model directory.
        text_column: the column of texts (premises).
        candidate_labels: labels for every row (a list or a comma-separated string); or
        labels_column: a column holding each row's labels (a list, or a comma-separated string).
        passage_column, question_column: the columns for ``preset="boolean-qa"``.
        hypothesis_template, multi_label, threshold, preset: as :meth:`t5cls.ZeroShotClassifier.__call__`.
        num_threads: torch threads in this actor.
        **options: passed to :class:`t5cls.ZeroShotClassifier` (``batch_tokens``, ``max_length``, ``device``, ...).
    """

    def __init__(
        self,
        model: str,
        *,
        text_column: str = "text",
        candidate_labels: Any = None,
        labels_column: str | None = None,
        passage_column: str = "passage",
        question_column: str = "question",
        hypothesis_template: str | None = None,
        multi_label: bool = False,
        threshold: float | None = None,
        preset: str | None = None,
        num_threads: int | None = None,
        **options: Any,
    ):
        super().__init__(num_threads=num_threads)
        from .zero_shot import ZeroShotClassifier

        self.classifier = ZeroShotClassifier(model, **options)
        self.text_column, self.candidate_labels, self.labels_column = text_column, candidate_labels, labels_column
        self.passage_column, self.question_column = passage_column, question_column
        self.call = {"hypothesis_template": hypothesis_template, "multi_label": multi_label, "threshold": threshold, "preset": preset}

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        from .zero_shot import PRESETS, parse_candidate_labels

        preset = PRESETS.get(self.call["preset"]) if self.call["preset"] else None
        if preset is not None and preset.premise_template is not None:
            items: list[Any] = list(zip(self._texts(batch, self.passage_column), self._texts(batch, self.question_column)))
        else:
            items = self._texts(batch, self.text_column)
        labels = self.candidate_labels
        if self.labels_column:
            # Parquet list columns come back as numpy arrays; a CSV column as "a, b, c".
            labels = [parse_candidate_labels(value if isinstance(value, str) else [str(v) for v in value]) for value in batch[self.labels_column]]
        results = self.classifier(items, labels, **self.call)
        return _with_columns(batch, self.classifier.records(results))


class ScoreBatches(_Job):
    """Score labels for each batch with :class:`t5cls.LabelScorer`, the template filled from the row's columns.

    Adds what ``t5cls score`` writes after the template fields: ``label``, ``p_<label>``, ``entropy``.

    Args:
        model: a seq2seq T5 directory.
        labels: the labels (a list, or a comma-separated string).
        template: the prompt; its named fields are column names (default ``"{text}"``).
        num_threads: torch threads in this actor.
        **options: passed to :class:`t5cls.LabelScorer` (``normalize``, ``calibrate``, ``mode``, ``batch_tokens``, ...).
    """

    def __init__(self, model: str, *, labels: Any, template: str = "{text}", num_threads: int | None = None, **options: Any):
        super().__init__(num_threads=num_threads)
        from .scoring import LabelScorer, template_fields

        self.scorer = LabelScorer(model, labels=_label_list(labels), template=template, show_progress_bar=False, **options)
        self.fields = template_fields(template)

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        # As `t5cls score` reads its rows: every template field is a text column (a blank one is an error).
        columns = [self._texts(batch, field) for field in self.fields]
        rows = [dict(zip(self.fields, values)) for values in zip(*columns)]
        return _with_columns(batch, self.scorer.records(self.scorer.predict_proba(rows)))


class RerankBatches(_Job):
    """Rank each row's documents for its query with :class:`t5cls.Reranker`.

    Adds what ``t5cls rerank`` writes after the query: ``results``, best first, a list of
    ``{"index", "score"[, "document"]}`` (``score`` = P(relevant)).

    Args:
        model: a seq2seq T5 (monoT5-style) or a (query, document) pair classifier directory.
        query_column: the column of queries.
        documents_column: the column of document lists.
        top_n, return_documents: as :meth:`t5cls.Reranker.rank`.
        num_threads: torch threads in this actor.
        **options: passed to :class:`t5cls.Reranker` (``template``, ``true_word``, ``stride``, ``batch_tokens``, ...).
    """

    def __init__(
        self,
        model: str,
        *,
        query_column: str = "query",
        documents_column: str = "documents",
        top_n: int | None = None,
        return_documents: bool = False,
        num_threads: int | None = None,
        **options: Any,
    ):
        super().__init__(num_threads=num_threads)
        from .rerank import Reranker

        self.reranker = Reranker(model, show_progress_bar=False, **options)
        self.query_column, self.documents_column = query_column, documents_column
        self.top_n, self.return_documents = top_n, return_documents

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        queries = self._texts(batch, self.query_column)
        # Parquet list columns come back as numpy arrays: Reranker takes lists.
        documents = [value if isinstance(value, str) else list(value) for value in batch[self.documents_column]]
        ranked = self.reranker.rank(queries, documents, top_n=self.top_n, return_documents=self.return_documents)
        return _with_columns(batch, [{"results": results} for results in ranked])


def _label_list(labels: Any) -> Any:
    return [part.strip() for part in labels.split(",")] if isinstance(labels, str) else labels


JOBS: dict[str, type[_Job]] = {"classify": ClassifyBatches, "zero-shot": ZeroShotBatches, "score": ScoreBatches, "rerank": RerankBatches}


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------


def _columns_needed(task: str, text_column: str, options: dict[str, Any]) -> list[str]:
    """The input columns a job reads, so that a missing one fails on the driver."""
    if task == "classify":
        return [text_column, options.get("pair_column")]
    if task == "zero-shot":
        from .zero_shot import PRESETS

        preset = PRESETS.get(options.get("preset")) if options.get("preset") else None
        if preset is not None and preset.premise_template is not None:
            return [options.get("passage_column", "passage"), options.get("question_column", "question")]
        return [text_column, options.get("labels_column")]
    if task == "score":
        from .scoring import template_fields

        return template_fields(options["template"])
    return [options.get("query_column", "query"), options.get("documents_column", "documents")]


def _check_options(task: str, options: dict[str, Any]) -> None:
    """Argument mistakes a job would make in every actor, raised once here instead."""
    if task == "zero-shot":
        from .zero_shot import check_hypothesis_template, parse_candidate_labels

        if options.get("hypothesis_template") is not None:
            check_hypothesis_template(options["hypothesis_template"])
        if options.get("candidate_labels") is not None:
            if options.get("labels_column"):
                raise InputError("Pass candidate_labels (the same labels for every row) or labels_column (a column of labels), not both.")
            parse_candidate_labels(options["candidate_labels"])
    if task == "rerank":
        from .rerank import check_rerank_template, check_top_n

        check_top_n(options.get("top_n"))
        if "template" in options:
            check_rerank_template(options["template"])
    if task == "score":
        from .labels import check_labels

        if options.get("labels") is None:
            raise InputError("task='score' needs labels=, e.g. labels=['positive', 'negative'].")
        check_labels(_label_list(options["labels"]))


# What each task needs of the model, in the words of loading.wrong_kind's message.
_WANTED = {
    "classify": "a classifier (t5cls convert / train, or an ONNX export of one)",
    "zero-shot": "an NLI classifier (its labels include an entailment label)",
    "score": "a seq2seq T5 (t5, flan-t5, mT5, UMT5) to score labels with",
    "rerank": "a seq2seq T5 or a pair classifier to rerank with",
}


def _check_model(model: Any, task: str, base: Any = None) -> None:
    """Raise here, once, when ``model`` cannot serve ``task`` (rather than in every actor as it starts)."""
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"model must be a directory or hub id (each actor loads it), got {type(model).__name__}.")
    from .loading import inspect_model, wrong_kind

    info = inspect_model(model, base=base)  # reads config files only, no weights
    fits = {
        "classify": info.is_classifier or info.kind == "onnx",
        "zero-shot": info.is_classifier and (info.nli or info.target.nli),
        "score": info.is_seq2seq,
        "rerank": info.is_seq2seq or info.is_classifier or info.kind == "onnx",
    }[task]
    if not fits:
        raise wrong_kind(info, f"{_WANTED[task]} (task={task!r})")


def _schema_names(dataset: ray.data.Dataset) -> list[str]:
    schema = dataset.schema()
    if schema is None:
        raise InputError("The dataset has no schema (is it empty?); give it rows with the text column.")
    return list(schema.names)


def predict(
    dataset: ray.data.Dataset,
    model: str | os.PathLike,
    *,
    task: str,
    text_column: str = "text",
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    batch_size: int = DEFAULT_CHUNK_SIZE,
    **job_options: Any,
) -> ray.data.Dataset:
    """Add a t5cls job to ``dataset`` as a ``map_batches`` step over a pool of actors.

    Every input column is kept (ids line up with their results), and the job's result columns are
    added: ``classify`` as ``t5cls predict`` (``label``, ``score``, ``proba_<label>``; ``labels``
    for multi-label; ``value`` for regression), ``zero-shot`` as ``t5cls zero-shot``'s JSON lines
    (``labels``, ``scores``, ``label``), ``score`` as ``t5cls score`` (``label``, ``p_<label>``,
    ``entropy``), ``rerank`` as ``t5cls rerank`` (``results``). Rows come out in no fixed order
    (Ray's default; set ``DataContext.get_current().execution_options.preserve_order = True`` to keep it).

    Args:
        dataset: a Ray Dataset with the columns the job reads.
        model: a model directory or hub id, loaded once by each actor (so every node must see it).
        task: ``"classify"``, ``"zero-shot"``, ``"score"`` or ``"rerank"``.
        text_column: the column of texts (``score``: the default template is ``{<text_column>}``).
        concurrency: actors in the pool.
        num_cpus: CPUs per actor; torch runs that many threads in it (at least 1).
        num_gpus: GPUs per actor (a fraction shares one); the model then runs on CUDA.
        batch_size: rows per batch handed to an actor (the job sorts and packs them by length).
        **job_options: the job's own options: ``classify``: ``pair_column``, ``threshold`` and
            :class:`t5cls.Classifier`'s (``batch_tokens``, ``max_length``, ``backend``, ...);
            ``zero-shot``: ``candidate_labels`` or ``labels_column``, ``hypothesis_template``,
            ``multi_label``, ``threshold``, ``preset``, ``passage_column`` / ``question_column``
            and :class:`t5cls.ZeroShotClassifier`'s; ``score``: ``labels``, ``template`` and
            :class:`t5cls.LabelScorer`'s; ``rerank``: ``query_column`` (``"query"``),
            ``documents_column`` (``"documents"``, a list per row), ``top_n``,
            ``return_documents`` and :class:`t5cls.Reranker`'s.

    Returns:
        The Dataset with the step added (lazy: nothing runs until it is consumed or written).

    Raises:
        InputError: an unknown task or option, a column the job needs that the dataset lacks
            (naming the columns it has), or a model that cannot serve the task; all raised here,
            before any actor starts.
        FileNotFoundError: no such model.

    Example:
        >>> out = predict(ray.data.read_parquet("texts.parquet"), "clf", task="classify", concurrency=2)  # doctest: +SKIP
        >>> out.write_parquet("predictions/")  # doctest: +SKIP
    """
    if task not in JOBS:
        raise InputError(f"task={task!r} is not one of {', '.join(JOBS)}.")
    for name, value, low in (("concurrency", concurrency, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name}={value!r} must be an integer of at least {low}.")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InputError(f"{name}={value!r} must be a number of at least 0.")
    options = dict(job_options)
    if task == "score":
        options.setdefault("template", "{" + text_column + "}")
    elif task != "rerank":
        options["text_column"] = text_column
    _check_options(task, options)
    require_columns(
        pd.DataFrame(columns=_schema_names(dataset)),
        _columns_needed(task, text_column, options),
        source="The dataset",
        hint="Name the right one with text_column= (or the job's other *_column option, or the template's fields).",
    )
    _check_model(model, task, options.get("base"))
    options["num_threads"] = max(1, int(num_cpus))
    if num_gpus and "device" not in options:
        options["device"] = "cuda"
    return dataset.map_batches(
        JOBS[task],
        fn_constructor_args=(str(model),),
        fn_constructor_kwargs=options,
        batch_size=batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
        num_gpus=num_gpus or None,
    )


# --------------------------------------------------------------------------------------------
# Reading and writing files, joining a cluster
# --------------------------------------------------------------------------------------------


def input_files(source: str | os.PathLike) -> list[Path]:
    """The files of INPUT: a file, a folder (its readable files, sorted) or a glob pattern (sorted).

    Raises:
        FileNotFoundError: nothing matches, naming what was looked for.
    """
    text = str(source)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith((".", "_")))
        if not files:
            raise FileNotFoundError(f"Folder {text!r} holds no input files ({', '.join(TABLE_SUFFIXES)}).")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"No file matches {text!r}.")
        return files
    raise FileNotFoundError(f"Input {text!r} does not exist (give a file, a folder or a glob pattern).")


def _read_file(path: str, columns: Sequence[Sequence[str]]) -> Iterator[pa.Table]:
    required, text_columns = columns
    for chunk in read_chunks(path, columns=required, text_columns=text_columns):
        yield pa.Table.from_pandas(chunk, preserve_index=False).replace_schema_metadata(None)


def _read_query_documents(path: str, columns: Sequence[str]) -> list[pa.Table]:
    query_column, documents_column, document_column = columns
    groups = list(iter_query_documents(path, query_column=query_column, documents_column=documents_column, document_column=document_column))
    return [pa.table({query_column: [q for q, _ in groups], documents_column: [d for _, d in groups]}, schema=_query_schema(columns))]


def _query_schema(columns: Sequence[str]) -> pa.Schema:
    return pa.schema([(columns[0], pa.string()), (columns[1], pa.list_(pa.string()))])


class _FilesDatasource(Datasource):
    """One read task per file, each reading through :mod:`t5cls.inputs` (the CLI's formats and rules)."""

    def __init__(self, files: Sequence[Path], columns: Sequence[Any], schema: pa.Schema | None, *, groups: bool = False):
        super().__init__()
        self.files, self.columns, self.schema = [str(f) for f in files], list(columns), schema
        self.read = _read_query_documents if groups else _read_file

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(os.path.getsize(f) for f in self.files)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None) -> list[ReadTask]:
        columns, read = self.columns, self.read
        return [
            ReadTask(
                lambda path=path: read(path, columns),
                BlockMetadata(num_rows=None, size_bytes=os.path.getsize(path), input_files=[path], exec_stats=None),
                schema=self.schema,
                per_task_row_limit=per_task_row_limit,
            )
            for path in self.files
        ]


def read_inputs(
    source: str | os.PathLike | Sequence[Path], *, columns: Sequence[str | None] = (), text_columns: Sequence[str | None] = ()
) -> ray.data.Dataset:
    """A Dataset of the rows of INPUT read by the CLI's reader (:func:`t5cls.inputs.read_chunks`), one read task per file.

    The same formats and rules as without Ray: blank lines and blank texts are errors naming the
    line, TSV is read without quoting, numbers in a text column are text. Every file's opening
    (it exists, its format is known, it has the columns, its first chunk reads) is checked on the
    driver first, so a mistake fails before any work is scheduled.

    Args:
        source: a file, a folder or a glob pattern (see :func:`input_files`), or a list of files.
        columns: columns every file must have.
        text_columns: columns of input texts (they must exist, and a blank text is an error).

    Raises:
        FileNotFoundError: nothing at ``source``.
        InputError: an unreadable file or a missing column, naming the file and the columns it has.
    """
    files = input_files(source) if isinstance(source, (str, os.PathLike)) else [Path(f) for f in source]
    required, texts = [c for c in columns if c], [c for c in text_columns if c]
    schema = None
    for path in files:
        first = next(read_chunks(path, columns=required, text_columns=texts))
        schema = schema or pa.Schema.from_pandas(first, preserve_index=False).remove_metadata()
    datasource = _FilesDatasource(files, [required, texts], schema)
    return ray.data.read_datasource(datasource, num_cpus=IO_TASK_CPUS)


def read_query_documents(
    source: str | os.PathLike | Sequence[Path], *, query_column: str = "query", documents_column: str = "documents", document_column: str = "document"
) -> ray.data.Dataset:
    """A Dataset of ``(query, documents)`` rows read as ``t5cls rerank`` reads them (:func:`t5cls.inputs.iter_query_documents`).

    JSONL lines with a documents list, or CSV/TSV (query, document) rows whose consecutive rows of
    one query form one group (within a file). Every file is checked on the driver first.

    Raises:
        FileNotFoundError, InputError: as :func:`read_inputs`.
    """
    files = input_files(source) if isinstance(source, (str, os.PathLike)) else [Path(f) for f in source]
    columns = [query_column, documents_column, document_column]
    for path in files:
        iter_query_documents(path, query_column=query_column, documents_column=documents_column, document_column=document_column)
    datasource = _FilesDatasource(files, columns, _query_schema(columns), groups=True)
    return ray.data.read_datasource(datasource, num_cpus=IO_TASK_CPUS)


def check_shard_dir(out_dir: str | os.PathLike) -> None:
    """Raise an InputError unless ``out_dir`` is a new or empty folder (shards of two runs must not mix)."""
    out = Path(out_dir)
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise InputError(f"Output folder {str(out)!r} exists and is not empty; shards of two runs would mix. Pick a new folder or empty it.")


def write_outputs(dataset: ray.data.Dataset, out_dir: str | os.PathLike, *, output_format: str = "parquet") -> None:
    """Run ``dataset`` and write it as shards (``.parquet`` or ``.jsonl`` files) in ``out_dir``.

    Raises:
        InputError: an unknown format, or an ``out_dir`` that is a file or a non-empty folder.
    """
    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"output format {output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}.")
    check_shard_dir(out_dir)
    io_args = {"ray_remote_args": {"num_cpus": IO_TASK_CPUS}}
    if output_format == "parquet":
        dataset.write_parquet(str(out_dir), **io_args)
    else:
        dataset.write_json(str(out_dir), **io_args)


def _host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    default = _DEFAULT_CLIENT_PORT if parts.scheme == "ray" else _DEFAULT_GCS_PORT
    if not parts.hostname:
        raise InputError(f"--address {address!r} is not an address; use auto, HOST:PORT or ray://HOST:PORT.")
    return parts.hostname, parts.port or default


def connect(address: str | None = None, *, logging_level: int = logging.WARNING) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), or start a local one.

    A ``HOST:PORT`` or ``ray://`` address is tried first with a plain TCP connection, so an address
    where nothing listens fails in seconds instead of waiting on Ray's own retries. When Ray is
    already initialised in this process, that connection is used.

    Returns:
        Whether this call started Ray (the caller then shuts it down).

    Raises:
        InputError: nothing answers at ``address`` (or ``auto`` finds no running cluster).
    """
    if address is not None and address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise InputError(
                f"Cannot reach a Ray cluster at {address!r} ({host}:{port}: {exc}); start one with `ray start --head` "
                "or give the head node's address (HOST:6379, or ray://HOST:10001 for Ray Client)."
            ) from None
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level=logging_level)
    except ConnectionError as exc:
        raise InputError(f"Cannot reach a Ray cluster at {address!r}: {exc}") from None
    return True


__all__ = [
    "ClassifyBatches",
    "RerankBatches",
    "ScoreBatches",
    "check_shard_dir",
    "ZeroShotBatches",
    "JOBS",
    "OUTPUT_FORMATS",
    "TASKS",
    "connect",
    "input_files",
    "predict",
    "read_inputs",
    "read_query_documents",
    "write_outputs",
]
