"""Turn any T5-family checkpoint, or a published T5 classifier, into a :class:`T5ForClassification`.

Conversion reads only the tensors it keeps: safetensors shards are opened lazily and read key by
key, ``pytorch_model.bin`` is memory-mapped (``torch.load(mmap=True, weights_only=True)``), so the
dropped decoder layers and the LM head are never materialised. The classifier is built on the
``meta`` device and the kept tensors are assigned into it, so peak memory is about the kept weights.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import CONFIG_NAME

from .configuration import PROBLEM_TYPES, T5_MODEL_TYPES, T5ClassificationConfig
from .devices import as_dtype
from .errors import InputError, check_number
from .labels import check_labels
from .modeling import T5ForClassification

logger = logging.getLogger(__name__)

# Architecture fields carried over from the source config; everything else is the classifier's own.
T5_FIELDS = (
    "vocab_size",
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_heads",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
    "dropout_rate",
    "layer_norm_epsilon",
    "initializer_factor",
    "feed_forward_proj",
    "pad_token_id",
    "eos_token_id",
    "decoder_start_token_id",
)
QUERY_INITS = ("decoder_start", "labels")
SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_FILE = "model.safetensors"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_FILE = "pytorch_model.bin"


# --------------------------------------------------------------------------------------------
# Reading only the tensors we keep
# --------------------------------------------------------------------------------------------


def resolve_checkpoint_dir(src: str | os.PathLike, *, needed: Callable[[str], bool] | None = None) -> Path:
    """A local directory for ``src``: itself when it is a directory, else a hub download.

    From the hub, only the config, tokenizer files and the weight shards holding a needed key
    are fetched.
    """
    path = Path(src)
    if path.is_dir():
        return path
    if path.exists():
        raise InputError(f"{str(src)!r} is a file; pass the checkpoint directory that holds config.json and the weights.")
    text = str(src)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"Checkpoint directory {text!r} does not exist.")
    return _download_from_hub(text, needed)


def _download_from_hub(repo_id: str, needed: Callable[[str], bool] | None) -> Path:
    from huggingface_hub import hf_hub_download, list_repo_files

    try:
        files = list_repo_files(repo_id)
    except Exception as exc:  # network, auth, or unknown repo: say which and how to work offline
        raise FileNotFoundError(
            f"{repo_id!r} is not a local directory and could not be fetched from the Hugging Face Hub ({exc}). "
            "Pass a local checkpoint directory when offline."
        ) from exc
    small = [f for f in files if f.endswith((".json", ".model", ".txt")) and "/" not in f]
    for name in small:
        local = hf_hub_download(repo_id, name)
    root = Path(local).parent
    for index_name in (SAFETENSORS_INDEX, BIN_INDEX):
        if index_name in files:
            weight_map = json.loads((root / index_name).read_text())["weight_map"]
            shards = {shard for key, shard in weight_map.items() if needed is None or needed(key)}
            break
    else:
        shards = {SAFETENSORS_FILE} if SAFETENSORS_FILE in files else {BIN_FILE}
    for shard in sorted(shards):
        hf_hub_download(repo_id, shard)
    return root


def _weight_files(directory: Path) -> tuple[str, list[Path]]:
    """('safetensors' | 'bin', shard paths) of a checkpoint directory."""
    for index_name, kind in ((SAFETENSORS_INDEX, "safetensors"), (BIN_INDEX, "bin")):
        index = directory / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = sorted({directory / shard for shard in weight_map.values()})
            missing = [str(s.name) for s in shards if not s.is_file()]
            if missing:
                raise FileNotFoundError(f"{index} names shards that are missing: {', '.join(missing)}.")
            return kind, shards
    if (directory / SAFETENSORS_FILE).is_file():
        return "safetensors", [directory / SAFETENSORS_FILE]
    if (directory / BIN_FILE).is_file():
        return "bin", [directory / BIN_FILE]
    present = sorted(p.name for p in directory.iterdir())
    raise FileNotFoundError(
        f"No weights in {directory}: expected {SAFETENSORS_FILE}, {SAFETENSORS_INDEX}, {BIN_FILE} or {BIN_INDEX}; "
        f"found {present or 'nothing'}."
    )


def read_tensors(directory: Path, keep: Callable[[str], bool]) -> tuple[dict[str, torch.Tensor], int]:
    """Read the tensors whose key ``keep`` accepts; return them and the number of elements skipped."""
    kind, shards = _weight_files(directory)
    tensors: dict[str, torch.Tensor] = {}
    skipped = 0
    for shard in shards:
        try:
            if kind == "safetensors":
                with safe_open(str(shard), framework="pt") as reader:
                    for key in reader.keys():
                        if keep(key):
                            tensors[key] = reader.get_tensor(key)
                        else:
                            skipped += _numel(reader.get_slice(key).get_shape())
            else:
                # mmap: tensors we drop stay on disk and are never paged in.
                state = torch.load(str(shard), map_location="cpu", weights_only=True, mmap=True)
                for key, value in state.items():
                    if keep(key):
                        tensors[key] = value.clone()
                    else:
                        skipped += value.numel()
                del state
        except (OSError, RuntimeError, ValueError, EOFError) as exc:
            raise InputError(f"Could not read weights file {shard}: it is truncated or corrupt ({exc}).") from exc
        except Exception as exc:  # safetensors raises its own SafetensorError for bad headers
            if type(exc).__name__ == "SafetensorError":
                raise InputError(f"Could not read weights file {shard}: it is truncated or corrupt ({exc}).") from exc
            raise
    return tensors, skipped


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


def _source_config_dict(src: Any) -> dict[str, Any]:
    if isinstance(src, PreTrainedModel):
        return src.config.to_dict()
    directory = Path(src)
    if not (directory / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{directory} has no {CONFIG_NAME}; is it a T5 checkpoint directory?")
    # transformers' own reader (it also resolves the dict a config file may nest).
    return PretrainedConfig.get_config_dict(str(directory))[0]


def _check_t5_source(cfg: dict[str, Any], where: str) -> None:
    model_type = cfg.get("model_type")
    if model_type not in T5_MODEL_TYPES:
        raise InputError(
            f"{where} has model_type {model_type!r}, not a T5-family model. "
            f"Pass a checkpoint whose config has model_type in {T5_MODEL_TYPES} (t5, t5-v1_1, flan-t5, byT5, UL2, mT5, UMT5)."
        )


def _label_maps(
    labels: Sequence[str] | None, num_labels: int | None, problem_type: str
) -> tuple[dict[int, str], int]:
    if labels is not None:
        labels = check_labels(labels)
        if num_labels is not None and num_labels != len(labels):
            raise InputError(
                f"num_labels={num_labels} disagrees with the {len(labels)} labels given {labels}; pass one or the other."
            )
        num_labels = len(labels)
    if num_labels is None:
        num_labels = 1 if problem_type == "regression" else 2
    if not isinstance(num_labels, int) or num_labels < 1:
        raise InputError(f"num_labels={num_labels!r} must be a positive integer.")
    if problem_type == "single_label_classification" and num_labels < 2:
        raise InputError(
            f"single_label_classification needs at least 2 labels, got num_labels={num_labels}; "
            "use problem_type='regression' for one output."
        )
    id2label = {i: lab for i, lab in enumerate(labels)} if labels is not None else {i: f"LABEL_{i}" for i in range(num_labels)}
    return id2label, num_labels


def classification_config(
    source: dict[str, Any], *, id2label: dict[int, str], problem_type: str, num_decoder_layers: int, **extra: Any
) -> T5ClassificationConfig:
    """A :class:`T5ClassificationConfig` with the source's architecture and the classifier's settings."""
    fields = {name: source[name] for name in T5_FIELDS if source.get(name) is not None}
    # Some published configs (the seed checkpoint among them) say `feed_forward_proj: "gelu"` with
    # `is_gated_act: true` and `dense_act_fn: "gelu"`; the JSON fields win in transformers, so the
    # model is gated with exact GELU. State that unambiguously in the classifier's config.
    feed_forward = fields.get("feed_forward_proj", "relu")
    if source.get("is_gated_act") and not feed_forward.startswith("gated-"):
        fields["feed_forward_proj"] = f"gated-{feed_forward}"
    if source.get("dense_act_fn"):
        fields["dense_act_fn"] = source["dense_act_fn"]
    return T5ClassificationConfig(
        **fields,
        # UMT5: one relative position bias per layer (its keys are in every block of the checkpoint).
        relative_attention_per_layer=source.get("model_type") == "umt5" or bool(source.get("relative_attention_per_layer")),
        num_decoder_layers=num_decoder_layers,
        problem_type=problem_type,
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
        architectures=["T5ForClassification"],
        **extra,
    )


# --------------------------------------------------------------------------------------------
# Assembling the classifier
# --------------------------------------------------------------------------------------------


def _build_from_state(
    config: T5ClassificationConfig, kept: dict[str, torch.Tensor], new: dict[str, torch.Tensor], where: str
) -> T5ForClassification:
    """Assign ``kept`` (pretrained) and ``new`` (fresh) tensors into a meta-built classifier, strictly."""
    with torch.device("meta"):
        model = T5ForClassification(config)
    expected = {k: v.shape for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    state = {**kept, **new}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise InputError(f"{where} lacks {len(missing)} tensor(s) the classifier needs: {_names(missing)}.")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k])})" for k in expected if state[k].shape != expected[k]]
    if wrong:
        raise InputError(f"{where} has tensor(s) of the wrong shape for this config: {_names(wrong)}.")
    state = {k: state[k] for k in expected}
    state["encoder.embed_tokens.weight"] = state["shared.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    return model.eval()


def _normalise_shared(kept: dict[str, torch.Tensor], where: str) -> None:
    """Store the vocabulary embedding as ``shared.weight``: tied checkpoints may use either name."""
    embed = kept.pop("encoder.embed_tokens.weight", None)
    if embed is not None:
        kept.setdefault("shared.weight", embed)
    if "shared.weight" not in kept:
        raise InputError(f"{where} has no shared.weight (nor encoder.embed_tokens.weight): not a T5 checkpoint?")


def _names(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _new_head(config: T5ClassificationConfig, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    weight = torch.empty(config.num_labels, config.d_model, dtype=torch.float32)
    torch.nn.init.normal_(weight, mean=0.0, std=config.initializer_factor * config.d_model**-0.5)
    return {"classifier.weight": weight.to(dtype), "classifier.bias": torch.zeros(config.num_labels, dtype=dtype)}


def _kept_key(num_decoder_layers: int) -> Callable[[str], bool]:
    decoder_prefixes = tuple(f"decoder.block.{i}." for i in range(num_decoder_layers))

    def keep(key: str) -> bool:
        if key in ("shared.weight", "encoder.embed_tokens.weight") or key.startswith("encoder."):
            return True
        if num_decoder_layers == 0:
            return False
        return key.startswith(decoder_prefixes) or key == "decoder.final_layer_norm.weight"

    return keep


def _label_query_init(
    shared: torch.Tensor, labels: Sequence[str], tokenizer: Any, eos_id: int | None
) -> torch.Tensor:
    rows = []
    for label in labels:
        ids = [i for i in tokenizer(label, add_special_tokens=False)["input_ids"] if i != eos_id]
        if not ids:
            raise InputError(f"Label {label!r} tokenizes to no tokens; query_init='labels' needs label names with text.")
        rows.append(shared[ids].float().mean(dim=0))
    return torch.stack(rows).to(shared.dtype)  # (num_labels, d_model)


def from_t5(
    src: Any,
    *,
    num_labels: int | None = None,
    labels: Sequence[str] | None = None,
    problem_type: str = "single_label_classification",
    num_decoder_layers: int = 1,
    query_init: str = "decoder_start",
    tokenizer: Any = None,
    dtype: torch.dtype | str | None = None,
    classifier_dropout: float = 0.0,
) -> T5ForClassification:
    """Build a :class:`T5ForClassification` from a T5-family checkpoint, keeping only what it uses.

    Args:
        src: a local checkpoint directory, a hub id, or an in-memory ``T5ForConditionalGeneration``,
            ``T5Model``, ``T5EncoderModel`` or their ``MT5`` counterparts.
        num_labels: number of outputs (defaults to ``len(labels)``, else 2, or 1 for regression).
        labels: label names, in id order.
        problem_type: ``single_label_classification``, ``multi_label_classification`` or ``regression``.
        num_decoder_layers: decoder layers kept for query pooling; 0 means mean pooling.
        query_init: ``"decoder_start"`` starts every query from the decoder-start (pad) embedding,
            so the pretrained decoder layer sees its usual first input; ``"labels"`` starts query i
            from the mean embedding of label i's name (multi-label only).
        tokenizer: used by ``query_init="labels"``; loaded from ``src`` when not given.
        dtype: dtype of the result (defaults to the checkpoint's).
        classifier_dropout: dropout before the head during training.

    Returns:
        The classifier in eval mode; ``save_pretrained`` it to get a directory every t5cls and
        transformers entry point loads.

    Raises:
        InputError: bad settings, a non-T5 source, too many decoder layers, missing or misshaped tensors.
        FileNotFoundError: no such directory, no config or no weights.

    Example:
        >>> model = from_t5("google/flan-t5-small", labels=["negative", "positive"])  # doctest: +SKIP
        >>> model.save_pretrained("sst2-classifier")  # doctest: +SKIP
    """
    if problem_type not in PROBLEM_TYPES:
        raise InputError(f"problem_type={problem_type!r} is not supported; use one of {', '.join(PROBLEM_TYPES)}.")
    if query_init not in QUERY_INITS:
        raise InputError(f"query_init={query_init!r} is not supported; use one of {', '.join(QUERY_INITS)}.")
    if not isinstance(num_decoder_layers, int) or num_decoder_layers < 0:
        raise InputError(f"num_decoder_layers={num_decoder_layers!r} must be an integer >= 0 (0 = mean pooling).")
    check_number("classifier_dropout", classifier_dropout, minimum=0.0, maximum=1.0, hint="a probability, e.g. 0.1")
    as_dtype(dtype)  # a bad dtype fails before the checkpoint is read
    id2label, num_labels = _label_maps(labels, num_labels, problem_type)
    if query_init == "labels":
        if problem_type != "multi_label_classification" or num_decoder_layers == 0:
            raise InputError(
                "query_init='labels' gives one query per label, which only multi-label classification with "
                f"num_decoder_layers >= 1 has (got problem_type={problem_type!r}, num_decoder_layers={num_decoder_layers})."
            )
        if labels is None:
            raise InputError("query_init='labels' needs label names: pass labels=[...].")

    in_memory = isinstance(src, PreTrainedModel)
    keep = _kept_key(num_decoder_layers)
    directory = None if in_memory else resolve_checkpoint_dir(src, needed=keep)
    where = type(src).__name__ if in_memory else str(directory)
    source_cfg = _source_config_dict(src if in_memory else directory)
    _check_t5_source(source_cfg, where)
    source_decoder_layers = source_cfg.get("num_decoder_layers") or source_cfg.get("num_layers", 0)
    if in_memory and not hasattr(src, "decoder"):
        source_decoder_layers = 0  # T5EncoderModel and friends
    if num_decoder_layers > source_decoder_layers:
        raise InputError(
            f"num_decoder_layers={num_decoder_layers} but {where} has only {source_decoder_layers} decoder layer(s); "
            f"use at most {source_decoder_layers}" + (" (0 = mean pooling)." if source_decoder_layers == 0 else ".")
        )

    if in_memory:
        kept = {k: v.detach() for k, v in src.state_dict().items() if keep(k)}
        skipped = sum(v.numel() for k, v in src.state_dict().items() if not keep(k) and not k.endswith("embed_tokens.weight"))
    else:
        kept, skipped = read_tensors(directory, keep)
    _normalise_shared(kept, where)

    target_dtype = as_dtype(dtype) or kept["shared.weight"].dtype
    kept = {k: v.to(target_dtype) for k, v in kept.items()}
    config = classification_config(
        source_cfg,
        id2label=id2label,
        problem_type=problem_type,
        num_decoder_layers=num_decoder_layers,
        classifier_dropout=classifier_dropout,
    )
    new = _new_head(config, target_dtype)
    if num_decoder_layers > 0:
        shared = kept["shared.weight"]
        if query_init == "labels":
            if tokenizer is None:
                tokenizer = _load_tokenizer(src if in_memory else directory)
            queries = _label_query_init(shared, labels, tokenizer, source_cfg.get("eos_token_id"))
        else:
            start = source_cfg.get("decoder_start_token_id")
            start = source_cfg.get("pad_token_id", 0) if start is None else start
            queries = shared[start].unsqueeze(0).repeat(config.num_queries, 1).clone()  # (queries, d_model)
        new["query_embeddings.weight"] = queries

    model = _build_from_state(config, kept, new, where)
    n_kept = sum(v.numel() for v in kept.values())
    logger.info(
        "Converted %s: kept %s pretrained parameters, dropped %s, added %s new.",
        where,
        f"{n_kept:,}",
        f"{skipped:,}",
        f"{sum(v.numel() for v in new.values()):,}",
    )
    model.conversion_stats = {"kept": n_kept, "dropped": skipped, "new": sum(v.numel() for v in new.values())}
    return model


T5ForClassification.register_loaders(from_t5=from_t5)



def _load_tokenizer(src: Any) -> Any:
    from transformers import AutoTokenizer

    name = getattr(getattr(src, "config", None), "_name_or_path", None) if isinstance(src, PreTrainedModel) else src
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise InputError(f"query_init='labels' needs a tokenizer and none could be loaded from {name!r}; pass tokenizer=.") from exc


# --------------------------------------------------------------------------------------------
# Published classifier formats (REFERENCE.md §1 and §2)
# --------------------------------------------------------------------------------------------

FOREIGN_FORMATS = ("t5forclassification", "enct5")


def load_foreign(
    src: str | os.PathLike, fmt: str, *, config: dict[str, Any] | None = None, dtype: torch.dtype | str | None = None
) -> T5ForClassification:
    """Load a published T5ForClassification or EncT5 checkpoint as a :class:`T5ForClassification`.

    Args:
        src: the checkpoint directory.
        fmt: ``"t5forclassification"`` or ``"enct5"`` (what :func:`t5cls.loading.inspect_model` calls it).
        config: its ``config.json`` as a dict (read with transformers' reader when not given).
        dtype: dtype of the result (defaults to the checkpoint's).
    """
    directory = Path(src)
    cfg = config if config is not None else _source_config_dict(directory)
    dtype = as_dtype(dtype)
    if fmt == "t5forclassification":
        model = _load_t5forclassification(directory, cfg)
    elif fmt == "enct5":
        model = _load_enct5(directory, cfg)
    else:
        raise InputError(f"Unknown checkpoint format {fmt!r}; known: {FOREIGN_FORMATS}.")
    return model.to(dtype) if dtype is not None else model


# The published 3-way T5ForClassification was trained on MNLI+SNLI+SciTail in MNLI's label order
# (REFERENCE.md §1) but its config names no labels.
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


def foreign_id2label(cfg: dict[str, Any], fmt: str) -> dict[int, str]:
    """The label names of a published-format config (MNLI's for the 3-way T5ForClassification, which names none)."""
    if fmt == "t5forclassification":
        return _id2label_from(cfg, int(cfg["n_class"]), default=NLI_LABELS)
    id2label = cfg.get("id2label") or {}
    return _id2label_from(cfg, int(cfg.get("num_labels") or len(id2label) or 2))


def _id2label_from(cfg: dict[str, Any], num_labels: int, *, default: dict[int, str] | None = None) -> dict[int, str]:
    id2label = {int(k): v for k, v in (cfg.get("id2label") or {}).items()}
    generic = all(v == f"LABEL_{k}" for k, v in id2label.items())
    if len(id2label) == num_labels and not (generic and default):
        return id2label
    if default is not None and len(default) == num_labels:
        logger.info("%s names no labels; using %s.", cfg.get("_name_or_path") or "The checkpoint", default)
        return dict(default)
    return {i: f"LABEL_{i}" for i in range(num_labels)}


def _load_t5forclassification(directory: Path, cfg: dict[str, Any]) -> T5ForClassification:
    # The published model feeds `<pad>` as the first decoder token and reads position 0; causal
    # self-attention means that position sees only the pad embedding: one query = shared[pad].
    layers = int(cfg.get("num_decoder_layers") or 1)
    num_labels = int(cfg["n_class"])
    keep = _kept_key(layers)
    kept, _ = read_tensors(directory, lambda k: keep(k) or k == "head.weight")
    _normalise_shared(kept, str(directory))
    head = kept.pop("head.weight", None)
    if head is None:
        raise InputError(f"{directory} is a T5ForClassification checkpoint without head.weight.")
    problem_type = "regression" if num_labels == 1 else "single_label_classification"
    config = classification_config(
        cfg, id2label=_id2label_from(cfg, num_labels, default=NLI_LABELS), problem_type=problem_type, num_decoder_layers=layers
    )
    start = cfg.get("decoder_start_token_id") or 0
    new = {
        "classifier.weight": head,
        "classifier.bias": torch.zeros(num_labels, dtype=head.dtype),  # the published head has no bias
        "query_embeddings.weight": kept["shared.weight"][start].unsqueeze(0).clone(),
    }
    return _build_from_state(config, kept, new, str(directory))


def _load_enct5(directory: Path, cfg: dict[str, Any]) -> T5ForClassification:
    layers = int(cfg.get("num_decoder_layers") or 1)
    id2label = cfg.get("id2label") or {}
    num_labels = int(cfg.get("num_labels") or len(id2label) or 2)
    problem_type = cfg.get("problem_type") or ("regression" if num_labels == 1 else "single_label_classification")
    keep = _kept_key(layers)
    # EncT5 nests the T5 weights under `transformer.`; its own query table and head sit at the top.
    raw, _ = read_tensors(
        directory, lambda k: keep(k.removeprefix("transformer.")) if k.startswith("transformer.") else True
    )
    kept = {k.removeprefix("transformer."): v for k, v in raw.items() if k.startswith("transformer.")}
    _normalise_shared(kept, str(directory))
    config = classification_config(
        cfg, id2label=_id2label_from(cfg, num_labels), problem_type=problem_type, num_decoder_layers=layers,
        classifier_dropout=float(cfg.get("classifier_dropout") or 0.0),
    )
    table = raw.get("decoder_embeddings.weight")
    if table is None or table.shape[0] < config.num_queries:
        raise InputError(
            f"{directory} is an EncT5 checkpoint whose decoder_embeddings.weight is missing or has fewer than "
            f"{config.num_queries} rows."
        )
    if problem_type == "multi_label_classification":
        weight, bias = raw.get("classification_head.weights"), raw.get("classification_head.biases")
    else:
        weight, bias = raw.get("classification_head.out_proj.weight"), raw.get("classification_head.out_proj.bias")
    if weight is None or bias is None:
        raise InputError(f"{directory} is an EncT5 checkpoint without its classification_head weights.")
    new = {
        "query_embeddings.weight": table[: config.num_queries].clone(),
        "classifier.weight": weight.reshape(num_labels, -1),
        "classifier.bias": bias.reshape(num_labels),
    }
    return _build_from_state(config, kept, new, str(directory))


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


__all__: Iterable[str] = [
    "from_t5",
    "read_tensors",
    "resolve_checkpoint_dir",
    "classification_config",
    "load_foreign",
    "foreign_id2label",
    "count_parameters",
    "save_classifier",
    "staged_directory",
    "load_source_tokenizer",
]


def check_output_dir(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``out`` as a Path when a model can be written there; call it before the work that fills it.

    Raises:
        FileExistsError: ``out`` is a directory that is not empty and ``overwrite`` is false, or a file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"Output {str(out)!r} is a file, not a directory; pick a directory name.")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"Output directory {str(out)!r} exists and is not empty; pass overwrite=True (--overwrite) or pick another.")
    return out


@contextmanager
def staged_directory(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Write into a temporary sibling of ``out``, moved into place only if the block succeeds.

    A failure (an exception, Ctrl-C) leaves nothing at ``out`` and no staging directory behind.

    Raises:
        FileExistsError: ``out`` exists and is not empty, and ``overwrite`` is false.
    """
    out = check_output_dir(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_classifier(model: T5ForClassification, out: str | os.PathLike, *, tokenizer: Any = None, overwrite: bool = False) -> Path:
    """Save ``model`` (and ``tokenizer``) to ``out`` atomically: a failure leaves nothing at ``out``.

    Raises:
        FileExistsError: ``out`` exists and is not empty, and ``overwrite`` is false.
    """
    with staged_directory(out, overwrite=overwrite) as staging:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
    return Path(out)


def load_source_tokenizer(src: Any) -> Any:
    """The tokenizer stored with a checkpoint directory or hub id, or None when there is none."""
    from transformers import AutoTokenizer

    if isinstance(src, PreTrainedModel):
        return None
    try:
        return AutoTokenizer.from_pretrained(str(src))
    except Exception as exc:  # no tokenizer files is common for bare weight dumps
        logger.warning("No tokenizer found with %s (%s); the output will hold the model only.", src, exc)
        return None
