"""The one place that knows model directories: what is at a path or hub id, and how to load it.

:func:`inspect_model` reads ``config.json`` / ``adapter_config.json`` (no weights) and says which
kind of model a directory holds. The loaders below give every job (``Classifier``,
``LabelScorer``, ``ZeroShotClassifier``, ``train``, ``export``, the server, the CLI) its model and
tokenizer from any kind that fits it, with one error wording for the kinds that do not:

============================  ==============================================================
kind                          what the directory holds
============================  ==============================================================
``"t5cls"``                   a T5ForClassification saved by t5cls (``model_type: "t5cls"``)
``"t5forclassification"``     the published T5ForClassification format (REFERENCE.md §1)
``"enct5"``                   an EncT5 checkpoint (REFERENCE.md §2)
``"seq2seq"``                 a T5-family checkpoint (t5, mT5, UMT5), normally with its LM head
``"sequence_classifier"``     any other transformers ``...ForSequenceClassification``
``"onnx"``                    a ``t5cls export`` directory (ONNX files, no torch weights)
``"peft"``                    a PEFT adapter; ``base`` is the :class:`ModelInfo` of its base
============================  ==============================================================
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .configuration import T5_MODEL_TYPES, T5ClassificationConfig
from .convert import foreign_id2label, from_t5, load_foreign, resolve_checkpoint_dir
from .devices import as_dtype
from .errors import InputError, InputTypeError
from .modeling import T5ForClassification

logger = logging.getLogger(__name__)

MODEL_KINDS = ("t5cls", "t5forclassification", "enct5", "seq2seq", "sequence_classifier", "onnx", "peft")
# Kinds that load as a T5ForClassification (the two published formats are converted on load).
T5_CLASSIFIER_KINDS = ("t5cls", "t5forclassification", "enct5")
# Kinds that Classifier / ZeroShotClassifier / the server's /v1/classify take (torch backend).
CLASSIFIER_KINDS = (*T5_CLASSIFIER_KINDS, "sequence_classifier")
CONFIG_FILE = "config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
# Longest input when the tokenizer states no real maximum (transformers uses 1e30 for "none").
FALLBACK_MAX_LENGTH = 512
LORA_INSTALL = 'pip install "t5cls[lora]"'
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json")

# What each kind is, and what takes it: the two halves of every "wrong kind" error.
_WHAT = {
    "t5cls": "a t5cls classifier (T5ForClassification)",
    "t5forclassification": "a published T5ForClassification classifier (REFERENCE format of flan-t5-xxl-classif-3way)",
    "enct5": "an EncT5 classifier",
    "seq2seq": "a seq2seq T5-family checkpoint (LM head, no classifier head)",
    "sequence_classifier": "a transformers sequence classifier",
    "onnx": "an ONNX export (`t5cls export`: ONNX files, no torch weights)",
}
_FITS = {
    "t5cls": "use it with t5cls.Classifier / `t5cls predict`, t5cls.ZeroShotClassifier / `t5cls zero-shot` (NLI "
    "models), `t5cls serve`, `t5cls export`, or continue training it with t5cls.train",
    "t5forclassification": "use it with t5cls.Classifier / `t5cls predict`, t5cls.ZeroShotClassifier / "
    "`t5cls zero-shot` (it is a 3-way NLI model), or `t5cls serve`",
    "enct5": "use it with t5cls.Classifier / `t5cls predict`, `t5cls serve`, or fine-tune it with t5cls.train",
    "seq2seq": "score labels with it through t5cls.LabelScorer / `t5cls score`, or turn it into a classifier with "
    "`t5cls convert` / t5cls.from_t5 / t5cls.train",
    "sequence_classifier": "use it with t5cls.Classifier / `t5cls predict`, or t5cls.ZeroShotClassifier / "
    "`t5cls zero-shot` when it is an NLI model",
    "onnx": "use it with t5cls.Classifier(dir, backend='onnx') / `t5cls predict DIR --backend onnx`; for anything "
    "else pass the directory it was exported from",
}


@dataclass(frozen=True)
class ModelInfo:
    """What a model directory or hub id holds, read from its config files without loading weights.

    Attributes:
        source: the directory or hub id, as a string.
        kind: one of :data:`MODEL_KINDS`.
        model_type: the config's ``model_type`` (for ``"peft"``, the base's).
        labels: class names in id order (classifiers; empty otherwise).
        nli: whether a classifier has an ``entail*`` label (zero-shot classification works with it).
        base: for ``"peft"``, the :class:`ModelInfo` of the model the adapter applies to.
    """

    source: str
    kind: str
    model_type: str | None
    labels: tuple[str, ...] = ()
    nli: bool = False
    base: ModelInfo | None = None
    config: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def path(self) -> Path:
        """``source`` as a Path (a local directory, or the hub id)."""
        return Path(self.source)

    @property
    def target(self) -> ModelInfo:
        """The model that runs: ``base`` for an adapter (after merging), else this one."""
        return self.base.target if self.base is not None else self

    @property
    def is_classifier(self) -> bool:
        """True when the model that runs is a sequence classifier (a T5 one or any other)."""
        if self.kind == "peft":
            return self.task_type == "SEQ_CLS" and (self.base.is_classifier or bool(self.labels))
        return self.kind in CLASSIFIER_KINDS

    @property
    def is_seq2seq(self) -> bool:
        """True when the model that runs is a seq2seq T5 with an LM head."""
        if self.kind == "peft":
            return self.base.is_seq2seq and not self.is_classifier
        return self.kind == "seq2seq"

    @property
    def task_type(self) -> str | None:
        """An adapter's PEFT ``task_type`` (``"SEQ_CLS"``, ``"SEQ_2_SEQ_LM"``...); None for other kinds."""
        return self.config.get("task_type") if self.kind == "peft" else None

    def describe(self) -> str:
        """One line saying what this is, for messages."""
        if self.kind == "peft":
            task = self.task_type or "no task_type"
            return f"a PEFT adapter ({self.config.get('peft_type', 'LORA')}, {task}) over {self.base.describe()}"
        return f"{_WHAT[self.kind]} (model_type {self.model_type!r})"


# --------------------------------------------------------------------------------------------
# Reading config files
# --------------------------------------------------------------------------------------------


def _looks_local(text: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else can only be a local path.
    return text.startswith((".", "/", "~")) or text.count("/") > 1


def _read_json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); the model directory is damaged.") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a JSON {type(data).__name__}, not an object; the model directory is damaged.")
    return data


def _hub_file(repo_id: str, filename: str) -> Path | None:
    """A config file of a hub repo (from the local cache when offline), or None when the repo has none."""
    from transformers.utils import cached_file

    try:
        found = cached_file(
            repo_id, filename, _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False
        )
    except OSError as exc:  # unknown repo, no access
        raise FileNotFoundError(
            f"{repo_id!r} is not a local directory and could not be found on the Hugging Face Hub ({exc}). "
            "Pass a local model directory when offline."
        ) from exc
    return Path(found) if found else None


def read_config_files(src: str | os.PathLike) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Path | None]:
    """``(config.json, adapter_config.json, local directory)`` of ``src``; a missing file is None.

    The directory is None for a hub id (the files then come from the hub cache).

    Raises:
        FileNotFoundError: no such directory, or a hub id that cannot be found.
        InputError: ``src`` is a file, or a config file is not valid JSON.
    """
    text = os.fspath(src)
    path = Path(text).expanduser()
    if path.is_dir():
        files = {name: path / name for name in (CONFIG_FILE, ADAPTER_CONFIG_FILE)}
        files = {name: (f if f.is_file() else None) for name, f in files.items()}
        directory: Path | None = path
    elif path.exists():
        raise InputError(f"{text!r} is a file; pass the model directory that holds config.json and the weights.")
    elif _looks_local(text) or not text.strip():
        raise FileNotFoundError(f"Model directory {text!r} does not exist.")
    else:
        files = {name: _hub_file(text, name) for name in (CONFIG_FILE, ADAPTER_CONFIG_FILE)}
        directory = None
        if files[CONFIG_FILE] is None and files[ADAPTER_CONFIG_FILE] is None:
            raise FileNotFoundError(f"{text!r} has neither config.json nor adapter_config.json on the Hugging Face Hub.")
    config = _read_json_file(files[CONFIG_FILE]) if files[CONFIG_FILE] else None
    adapter = _read_json_file(files[ADAPTER_CONFIG_FILE]) if files[ADAPTER_CONFIG_FILE] else None
    return config, adapter, directory


def update_config_file(model_dir: str | os.PathLike, updates: dict[str, Any]) -> Path:
    """Set ``updates`` in a local model directory's ``config.json``, leaving every other field as it is.

    Raises:
        FileNotFoundError: no ``config.json`` there.
    """
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} has no {CONFIG_FILE} to update.")
    config = {**_read_json_file(path), **updates}
    tmp = path.with_name(f".{CONFIG_FILE}.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomically: a failed write leaves the old config
    return path


def _has_torch_weights(directory: Path) -> bool:
    return any(any(directory.glob(pattern)) for pattern in _WEIGHT_PATTERNS)


def is_onnx_export(directory: str | os.PathLike) -> bool:
    """True for a directory written by ``t5cls export``: ONNX files and no torch weights."""
    directory = Path(directory)
    return directory.is_dir() and any(directory.glob("*.onnx")) and not _has_torch_weights(directory)


def _labels_of(config: dict[str, Any], kind: str) -> tuple[str, ...]:
    if kind in ("t5forclassification", "enct5"):
        id2label = foreign_id2label(config, kind)
    else:
        id2label = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
        if not id2label and config.get("num_labels"):
            id2label = {i: f"LABEL_{i}" for i in range(int(config["num_labels"]))}
    return tuple(id2label[i] for i in sorted(id2label))


def _config_kind(config: dict[str, Any], directory: Path | None, where: str) -> str:
    model_type = config.get("model_type")
    architectures = [str(a) for a in (config.get("architectures") or [])]
    if directory is not None and is_onnx_export(directory):
        return "onnx"
    if model_type == T5ClassificationConfig.model_type:
        return "t5cls"
    if model_type == "enct5":
        return "enct5"
    if model_type in T5_MODEL_TYPES:
        if "n_class" in config and "T5ForClassification" in architectures:
            return "t5forclassification"
        if any(a.endswith("ForSequenceClassification") for a in architectures):
            return "sequence_classifier"  # transformers' own T5ForSequenceClassification
        return "seq2seq"
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "sequence_classifier"
    raise InputError(
        f"{where} holds a {model_type!r} model ({', '.join(architectures) or 'no architectures'}), which t5cls "
        "does not load. t5cls takes a T5 classifier (t5cls, the published T5ForClassification or EncT5 formats), a "
        "seq2seq T5-family checkpoint (t5, flan-t5, mT5, UMT5), any transformers sequence classifier, a "
        "`t5cls export` directory, or a PEFT adapter over one of those."
    )


def inspect_model(src: Any, *, base: str | os.PathLike | None = None) -> ModelInfo:
    """Say what ``src`` holds, reading only its config files (no weights).

    Args:
        src: a model directory or a hub id (a :class:`ModelInfo` is returned as it is).
        base: for a PEFT adapter, the base model to use instead of the adapter's
            ``base_model_name_or_path`` (a local copy of it, say).

    Returns:
        A :class:`ModelInfo`.

    Raises:
        FileNotFoundError: no such directory (or hub id), or a directory without ``config.json``.
        InputError: a file instead of a directory, a model t5cls does not load, an adapter with no
            base, or ``base=`` for something that is not an adapter.

    Example:
        >>> t5cls.inspect_model("flan-t5-xxl-classif-3way")  # doctest: +SKIP
        ModelInfo(source='flan-t5-xxl-classif-3way', kind='t5forclassification', model_type='t5',
                  labels=('entailment', 'neutral', 'contradiction'), nli=True, base=None)
    """
    if isinstance(src, ModelInfo):
        return src
    if not isinstance(src, (str, os.PathLike)):
        raise InputTypeError(f"A model must be given as a directory or hub id, got {type(src).__name__} ({src!r}).")
    source = os.fspath(src)
    config, adapter, directory = read_config_files(source)
    where = repr(source)
    if adapter is not None:
        return _inspect_adapter(source, adapter, config, base=base)
    if base is not None:
        raise InputError(
            f"base={os.fspath(base)!r} was given, but {where} is not a PEFT adapter (no adapter_config.json); "
            "base= / --base only go with an adapter directory."
        )
    if config is None:
        present = sorted(p.name for p in directory.iterdir())[:10] if directory is not None else []
        raise FileNotFoundError(
            f"{where} is not a model directory (no config.json; it holds {present or 'nothing'}). Pass a directory "
            "written by save_pretrained, `t5cls convert`, `t5cls train` or `t5cls export`, or a checkpoint directory."
        )
    kind = _config_kind(config, directory, where)
    labels = _labels_of(config, kind) if kind in (*CLASSIFIER_KINDS, "onnx") else ()
    nli = any(label.lower().startswith("entail") for label in labels)
    return ModelInfo(source, kind, config.get("model_type"), labels, nli, None, config)


def _inspect_adapter(
    source: str, adapter: dict[str, Any], config: dict[str, Any] | None, *, base: str | os.PathLike | None
) -> ModelInfo:
    base_source = os.fspath(base) if base is not None else adapter.get("base_model_name_or_path")
    if not base_source:
        raise InputError(
            f"{source!r} is a PEFT adapter whose adapter_config.json names no base model "
            "(base_model_name_or_path); pass base= (--base) with the base model's directory."
        )
    try:
        base_info = inspect_model(base_source)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{source!r} is a PEFT adapter over {base_source!r}, which cannot be found ({exc}). "
            "Pass base= (--base) with a local copy of the base model."
        ) from exc
    if base_info.kind in ("peft", "onnx"):
        raise InputError(f"{source!r} is a PEFT adapter over {base_source!r}, which is {base_info.describe()}; "
                         "an adapter applies to a torch model directory.")
    # A `train(lora=...)` adapter over a seq2seq T5 carries the classifier's config: the base is
    # converted with it (from_t5) before the adapter, whose modules_to_save hold the new head.
    own = config if config is not None and config.get("model_type") == T5ClassificationConfig.model_type else None
    merged = {**adapter, "classifier_config": own} if own is not None else dict(adapter)
    labels = _labels_of(own, "t5cls") if own is not None else base_info.labels
    nli = any(label.lower().startswith("entail") for label in labels)
    model_type = own.get("model_type") if own is not None else base_info.model_type
    return ModelInfo(source, "peft", model_type, labels, nli, base_info, merged)


def wrong_kind(info: ModelInfo, wanted: str) -> InputError:
    """The error for a model of a kind the caller cannot use: what it is, and what takes it."""
    kind = info.target.kind
    if info.kind == "peft" and info.is_classifier and kind == "seq2seq":
        kind = "t5cls"  # a train(lora=...) adapter: its base is converted into a classifier on load
    fits = _FITS[kind]
    if info.kind == "peft":
        fits = f"merged into its base, {fits}"
    return InputError(f"{info.source!r} is {info.describe()}, not {wanted}; {fits}.")


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def default_max_length(tokenizer: Any, max_length: int | None = None) -> int:
    """``max_length`` when given, else the tokenizer's ``model_max_length`` (512 when it states none)."""
    if max_length:
        return int(max_length)
    tokenizer_max = getattr(tokenizer, "model_max_length", None) or FALLBACK_MAX_LENGTH
    return int(tokenizer_max) if tokenizer_max < 100_000 else FALLBACK_MAX_LENGTH


def _has_tokenizer(info: ModelInfo) -> bool:
    path = info.path
    if path.is_dir():
        return any((path / name).is_file() for name in _TOKENIZER_FILES)
    return _hub_file(info.source, "tokenizer_config.json") is not None


def load_tokenizer(src: Any, *, base: str | os.PathLike | None = None, what: str = "the model") -> Any:
    """The tokenizer saved with a model (for an adapter without one, its base's).

    Raises:
        InputError: no tokenizer can be loaded from it.
    """
    from transformers import AutoTokenizer

    info = inspect_model(src, base=base)
    while info.kind == "peft" and not _has_tokenizer(info):
        info = info.base
    try:
        return AutoTokenizer.from_pretrained(info.source)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"No tokenizer could be loaded from {info.source!r} ({exc}); pass the tokenizer with {what}.") from exc


def _peft_model_class():
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ImportError(f"Loading a PEFT adapter needs peft: {LORA_INSTALL}.") from exc
    return PeftModel


def _apply_adapter(model: Any, info: ModelInfo) -> Any:
    """``model`` with the adapter of ``info`` applied and merged into its weights."""
    PeftModel = _peft_model_class()
    from peft import PeftConfig
    from peft.utils import load_peft_weights

    config = PeftConfig.from_pretrained(info.source)
    if config.task_type == "SEQ_CLS":
        saved = load_peft_weights(info.source)
        if not any(".classifier." in key or ".score." in key for key in saved):
            # The adapters published over flan-t5-xxl-classif-3way were trained on a model whose head
            # is `head`, which SEQ_CLS does not save, so the head stays the base's. peft would wrap our
            # `classifier` and then look for its saved copy: apply them as plain LoRA instead.
            config.task_type = None
            kept = [name for name in (config.modules_to_save or []) if name not in ("classifier", "score")]
            config.modules_to_save = kept or None
    logger.info("Applying the PEFT adapter %s over %s and merging it.", info.source, info.base.source)
    peft_model = PeftModel.from_pretrained(model, info.source, config=config, is_trainable=False)
    return peft_model.merge_and_unload()



def load_classifier_model(src: Any, *, base: str | os.PathLike | None = None, dtype: Any = None) -> Any:
    """A sequence classifier (eval mode, on CPU) from any directory that holds one.

    T5 classifiers (t5cls, the published T5ForClassification and EncT5 formats) load as
    :class:`~t5cls.modeling.T5ForClassification`; other sequence classifiers through
    ``AutoModelForSequenceClassification``; a PEFT adapter over any of these (or a ``train(lora=...)``
    adapter over a seq2seq T5) is applied and merged.

    Raises:
        FileNotFoundError: no such directory, or a missing base.
        InputError: a directory that holds no classifier (the message says what takes it).
        ImportError: an adapter without peft installed.
    """
    info = inspect_model(src, base=base)
    dtype = as_dtype(dtype)
    if info.kind == "peft":
        if not info.is_classifier:
            raise wrong_kind(info, "a classifier")
        own = info.config.get("classifier_config")
        if own is not None and info.base.kind == "seq2seq":
            model = _convert_for_adapter(info.base, own, dtype=dtype)
        else:
            model = load_classifier_model(info.base, dtype=dtype)
        return _apply_adapter(model, info).eval()
    if info.kind not in CLASSIFIER_KINDS:
        raise wrong_kind(info, "a classifier")
    if info.kind in ("t5forclassification", "enct5"):
        model = load_foreign(resolve_checkpoint_dir(info.source), info.kind, config=info.config, dtype=dtype)
    elif info.kind == "t5cls":
        model = T5ForClassification.from_pretrained(info.source, dtype=dtype)
    else:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(info.source, dtype=dtype)
    return model.eval()


def _convert_for_adapter(base: ModelInfo, classifier_config: dict[str, Any], *, dtype: Any) -> Any:
    """The classifier a ``train(lora=...)`` run started from: its seq2seq base converted with the saved settings."""
    id2label = {int(k): v for k, v in (classifier_config.get("id2label") or {}).items()}
    return from_t5(
        base.source,
        labels=[id2label[i] for i in sorted(id2label)],
        problem_type=classifier_config.get("problem_type") or "single_label_classification",
        num_decoder_layers=int(classifier_config.get("num_decoder_layers", 1)),
        dtype=dtype,
    )


def load_seq2seq_model(src: Any, *, base: str | os.PathLike | None = None, dtype: Any = None) -> Any:
    """A seq2seq T5 with its LM head (eval mode, on CPU); a PEFT adapter over one is merged.

    Raises:
        FileNotFoundError: no such directory or hub id.
        InputError: the directory holds something else (a classifier, say), or weights are missing.
    """
    from transformers import AutoModelForSeq2SeqLM

    info = inspect_model(src, base=base)
    dtype = as_dtype(dtype)
    if info.kind == "peft":
        if not info.is_seq2seq:
            raise wrong_kind(info, "a seq2seq T5")
        return _apply_adapter(load_seq2seq_model(info.base, dtype=dtype), info).eval()
    if info.kind != "seq2seq":
        raise wrong_kind(info, "a seq2seq T5 with an LM head")
    try:
        model, loading_info = AutoModelForSeq2SeqLM.from_pretrained(info.source, dtype=dtype, output_loading_info=True)
    except OSError as exc:
        raise FileNotFoundError(f"Could not load a seq2seq model from {info.source!r}: {exc}") from exc
    missing = sorted(loading_info["missing_keys"])
    if missing:
        raise InputError(
            f"{info.source!r} lacks {len(missing)} weight(s) of a seq2seq T5 (e.g. {missing[:3]}); is it an encoder-only "
            "checkpoint? Label scoring needs a T5ForConditionalGeneration checkpoint; `t5cls convert` takes this one."
        )
    return model.eval()


def load_config(src: Any) -> Any:
    """The transformers config of a directory (a ``t5cls export`` one included), without weights."""
    from transformers import AutoConfig

    info = inspect_model(src)
    if info.kind in ("t5forclassification", "enct5", "peft"):
        raise wrong_kind(info, "a model with a transformers config")
    return AutoConfig.from_pretrained(info.source)


def _read_foreign_format(path: Any, **kwargs: Any) -> Any:
    """``T5ForClassification.from_pretrained`` of a published-format directory (None for any other)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        info = inspect_model(path)
    except (OSError, InputError):
        return None  # transformers' own loading reports it
    if info.kind not in ("t5forclassification", "enct5"):
        return None
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
    return load_foreign(resolve_checkpoint_dir(info.source), info.kind, config=info.config, dtype=None if dtype == "auto" else dtype)


T5ForClassification.register_loaders(foreign_reader=_read_foreign_format)


__all__ = [
    "ModelInfo",
    "inspect_model",
    "read_config_files",
    "update_config_file",
    "is_onnx_export",
    "wrong_kind",
    "default_max_length",
    "load_tokenizer",
    "load_classifier_model",
    "load_seq2seq_model",
    "load_config",
    "MODEL_KINDS",
    "CLASSIFIER_KINDS",
    "T5_CLASSIFIER_KINDS",
    "LORA_INSTALL",
]
