"""Fine-tuning: a T5 checkpoint and labelled data in, a fast classifier and a report out.

:func:`train` is a thin layer over ``transformers.Trainer``, so accelerate, DDP, FSDP and
DeepSpeed launches work unchanged (``torchrun`` / ``accelerate launch`` the same script or the
``t5cls train`` command). What it adds is what the Trainer leaves to the user:

* reading the data (file, ``datasets.Dataset`` or DataFrame), inferring the problem type and a
  sorted, stable label map, and rejecting bad input before anything is written;
* building the classifier from a T5 checkpoint (:func:`t5cls.from_t5`) or continuing a saved one;
* length-grouped batches (the Trainer's ``group_by_length`` sampler), Adafactor or AdamW, bf16 on
  GPUs that have it and fp32 on CPU, optional LoRA (peft) and gradient checkpointing;
* resuming from the last complete checkpoint after a crash or preemption;
* the output directory: the model (safetensors + tokenizer, loadable by :class:`t5cls.Classifier`
  and by transformers' Auto classes), ``metrics.json`` and PNG plots, where the final evaluation
  runs through the same :class:`t5cls.Classifier` (or :class:`t5cls.LabelScorer`) users call.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, InputTypeError
from .evaluation import (
    DEFAULT_PAIR_TEMPLATE,
    DEFAULT_TEMPLATE,
    TEXT2TEXT_FILE,
    check_template,
    evaluate_texts,
    fit_scaling,
    frame_texts,
    load_frame,
    load_predictor,
    prompts,
    save_scaling,
    write_eval_report,
)
from .inputs import TextInput
from .labels import MULTI_LABEL, REGRESSION, SINGLE_LABEL, check_known_labels, encode_labels, infer_problem_type, label_names, parse_labels
from .loading import ADAPTER_CONFIG_FILE, LORA_INSTALL
from .metrics import MAIN_METRIC
from .reports import LOSS_PLOT, METRICS_FILE, plot_loss_curve, write_json
from .temperature import check_fit_labels
from .training_config import TrainingConfig

logger = logging.getLogger(__name__)

# TrainingConfig.optimizer -> TrainingArguments.optim
OPTIMIZERS = {"adafactor": "adafactor", "adamw": "adamw_torch"}
# Adafactor at a constant-ish 1e-3 is how T5 was fine-tuned; AdamW wants a smaller step.
DEFAULT_LEARNING_RATE = {"adafactor": 1e-3, "adamw": 1e-4}
CHECKPOINTS_DIR = "checkpoints"
ADAPTER_DIR = "adapter"
LORA_DEFAULTS = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q", "v"]}
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        output_dir: the directory holding the model, ``metrics.json`` and the plots.
        problem_type: single-label, multi-label or regression.
        labels: label names in id order (the target name for regression).
        global_step: optimizer steps taken in total (a resumed run counts the steps before the crash).
        train_loss: mean training loss reported by the Trainer.
        metrics: evaluation metrics on ``eval`` data (None without eval data).
        resumed_from_step: the checkpoint step the run resumed from, or None.
    """

    output_dir: Path
    problem_type: str
    labels: list[str]
    global_step: int
    train_loss: float | None
    metrics: dict[str, Any] | None
    resumed_from_step: int | None = None


# --------------------------------------------------------------------------------------------
# Checking settings and the output directory (before anything is read or written)
# --------------------------------------------------------------------------------------------


def _check_output_dir(output_dir: Path, *, resume: bool, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"output_dir {str(output_dir)!r} is a file; pass a directory.")
    if resume or overwrite or not output_dir.exists() or not any(output_dir.iterdir()):
        return
    raise FileExistsError(
        f"Output directory {str(output_dir)!r} exists and is not empty; pass resume=True (--resume) to continue "
        "its run, overwrite=True (--overwrite) to replace it, or pick another directory."
    )


def last_checkpoint(checkpoints_dir: str | os.PathLike) -> Path | None:
    """The newest *complete* checkpoint (one whose ``trainer_state.json`` was written), or None.

    The Trainer writes ``trainer_state.json`` after the weights and optimizer state, so a run
    killed while writing a checkpoint leaves one without it; that one is skipped.
    """
    directory = Path(checkpoints_dir)
    if not directory.is_dir():
        return None
    found = []
    for child in directory.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


# --------------------------------------------------------------------------------------------
# The model and tokenizer
# --------------------------------------------------------------------------------------------


def _is_path(src: Any) -> bool:
    return isinstance(src, (str, os.PathLike))


def _existing_classifier(src: Any, *, base: Any = None) -> tuple[Any, Any]:
    """``(classifier, source)``: ``src`` loaded as a :class:`T5ForClassification` (fp32) when it is
    one already (else None), and what to train from otherwise (``src``, or a merged adapter model)."""
    import torch
    from transformers import PreTrainedModel

    from .loading import T5_CLASSIFIER_KINDS, inspect_model, load_classifier_model, load_seq2seq_model, wrong_kind
    from .modeling import T5ForClassification

    if isinstance(src, T5ForClassification):
        return src, src
    if isinstance(src, PreTrainedModel) or not _is_path(src):
        if base is not None:
            raise InputError(f"base={base!r} goes with a PEFT adapter directory, not with a loaded {type(src).__name__}.")
        return None, src
    info = inspect_model(src, base=base)
    if info.kind in T5_CLASSIFIER_KINDS or (info.kind == "peft" and info.target.kind in T5_CLASSIFIER_KINDS and info.is_classifier):
        return load_classifier_model(info, dtype=torch.float32), src
    if info.kind == "peft" and info.is_classifier and info.config.get("classifier_config") is not None:
        return load_classifier_model(info, dtype=torch.float32), src  # a train(lora=...) adapter over a seq2seq T5
    if info.kind == "peft" and info.is_seq2seq:
        return None, load_seq2seq_model(info, dtype=torch.float32)  # merged: converted or fine-tuned below
    if info.kind == "seq2seq":
        return None, src
    raise wrong_kind(info, "a T5 checkpoint or T5 classifier to train")


def _adapter_base(src: Any) -> str | None:
    """What a LoRA adapter trained from ``src`` names as its base: a local directory in full, or a hub id."""
    if not _is_path(src):
        return None
    path = Path(src).expanduser()
    if (path / ADAPTER_CONFIG_FILE).is_file():
        return None  # trained on top of a merged adapter: no single directory is its base
    return str(path.resolve()) if path.is_dir() else os.fspath(src)


def _existing_labels(config: Any) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]


def _training_tokenizer(src: Any, tokenizer: Any, *, base: Any = None) -> Any:
    if tokenizer is not None:
        return tokenizer
    if not _is_path(src):
        raise InputError("Pass tokenizer= with an in-memory model: train(model, data, tokenizer=tokenizer, ...).")
    from .loading import load_tokenizer

    return load_tokenizer(src, base=base, what="train(..., tokenizer=...)")


def _load_model(
    src: Any, *, mode: str, existing: Any, problem_type: str, labels: list[str], num_decoder_layers: int,
    classifier_dropout: float,
) -> Any:
    import torch
    from transformers import AutoModelForSeq2SeqLM, PreTrainedModel

    from .convert import from_t5

    if mode == "text2text":
        if isinstance(src, PreTrainedModel):
            return src
        from .convert import resolve_checkpoint_dir

        # Master weights in fp32: bf16 autocast does the fast math, fp32 keeps small updates.
        return AutoModelForSeq2SeqLM.from_pretrained(resolve_checkpoint_dir(src), dtype=torch.float32)
    if existing is not None:
        # Training starts from temperature 1 and no thresholds: the old ones were fitted to other weights.
        if existing.config.temperature != 1.0 or existing.config.thresholds is not None:
            logger.info("The classifier's temperature and thresholds are reset for training (refitted on eval data after).")
        existing.config.temperature = 1.0
        existing.config.thresholds = None
        return existing
    return from_t5(
        src,
        labels=labels,
        problem_type=problem_type,
        num_decoder_layers=num_decoder_layers,
        classifier_dropout=classifier_dropout,
        dtype=None if isinstance(src, PreTrainedModel) else torch.float32,
    )


def _lora_config(lora: Any, *, mode: str, model: Any) -> Any:
    from peft import LoraConfig, TaskType

    if isinstance(lora, LoraConfig):
        return lora
    options = dict(LORA_DEFAULTS)
    if isinstance(lora, dict):
        options.update(lora)
    elif lora is not True:
        raise InputTypeError(f"lora={lora!r}: pass True (r=16, alpha=32 on q and v), a dict of LoraConfig options, or a LoraConfig.")
    if mode == "text2text":
        options.setdefault("task_type", TaskType.SEQ_2_SEQ_LM)
    else:
        options.setdefault("task_type", TaskType.SEQ_CLS)
        # The head and the learned queries are new: train them fully (SEQ_CLS adds `classifier` itself).
        new_modules = ["classifier"] + (["query_embeddings"] if hasattr(model, "query_embeddings") else [])
        options.setdefault("modules_to_save", new_modules)
    return LoraConfig(**options)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _encode_inputs(tokenizer: Any, texts: Sequence[TextInput], max_length: int) -> Any:
    firsts = [t if isinstance(t, str) else t[0] for t in texts]
    seconds = None if isinstance(texts[0], str) else [t[1] for t in texts]
    return tokenizer(firsts, seconds, truncation=True, max_length=max_length, return_token_type_ids=False)


def _rows(tokenizer: Any, texts: Sequence[TextInput], targets: Sequence[Any], *, max_length: int) -> list[dict[str, Any]]:
    """Tokenised training rows ``{"input_ids", "attention_mask", "labels"}``; collators pad them per batch."""
    encoded = _encode_inputs(tokenizer, texts, max_length)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": target}
        for ids, mask, target in zip(encoded["input_ids"], encoded["attention_mask"], targets)
    ]


def _text2text_rows(tokenizer: Any, inputs: list[str], label_strings: list[str], *, max_length: int) -> list[dict[str, Any]]:
    """Rows whose ``labels`` are the label string's token ids (+ ``</s>``), for teacher forcing."""
    encoded = tokenizer(inputs, truncation=True, max_length=max_length, return_token_type_ids=False)
    targets = tokenizer(text_target=label_strings)["input_ids"]
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": target}
        for ids, mask, target in zip(encoded["input_ids"], encoded["attention_mask"], targets)
    ]


# --------------------------------------------------------------------------------------------
# Labelled data: reading, the label plan, tokenised rows
# --------------------------------------------------------------------------------------------


@dataclass
class _Labelled:
    texts: list[TextInput]
    raw: list[Any]  # the label column as read
    source: str  # names the data in messages
    parsed: list[Any] | None = None  # see t5cls.labels.parse_labels


def _read_labelled(
    data: Any, *, name: str, columns: list[str], text_column: str, text_pair_column: str | None, label_column: str
) -> _Labelled:
    source = str(data) if _is_path(data) else f"{name} data"
    frame = load_frame(data, name=name, columns=columns)
    texts = frame_texts(frame, source=source, text_column=text_column, text_pair_column=text_pair_column)
    return _Labelled(texts=texts, raw=frame[label_column].tolist(), source=source)


def _label_plan(
    data: _Labelled, *, existing: Any, problem_type: str | None, labels: Sequence[str] | None,
    separator: str | None, label_column: str,
) -> tuple[str, list[str]]:
    """The problem type and label names (id order) for training data; fills ``data.parsed``.

    An existing classifier fixes both: its problem type, and its labels, which the data must use.
    """
    own = _existing_labels(existing) if existing is not None else None
    if problem_type is None:
        problem_type = existing.problem_type if existing is not None else infer_problem_type(data.raw, separator=separator)
    if existing is not None and existing.problem_type != problem_type:
        raise InputError(
            f"The classifier was built for {existing.problem_type}, but problem_type={problem_type!r}; "
            "start from the T5 checkpoint instead."
        )
    if own is not None and labels is not None and [str(lab) for lab in labels] != own:
        raise InputError(
            f"labels={list(labels)} differ from the classifier's own {own}; start from the T5 checkpoint to learn a new label set."
        )
    data.parsed = parse_labels(data.raw, problem_type=problem_type, separator=separator, source=data.source)
    if problem_type == REGRESSION:
        return problem_type, list(labels) if labels is not None else (own[:1] if own else [label_column])
    try:
        return problem_type, label_names(data.parsed, problem_type=problem_type, labels=labels or own, source=data.source)
    except ValueError as exc:
        if own is None or labels is not None:
            raise
        raise InputError(f"{exc} The classifier was built for those labels; start from the T5 checkpoint to learn new ones.") from exc


def _encode_rows(
    data: _Labelled, *, tokenizer: Any, mode: str, problem_type: str, names: list[str], template: str | None, max_length: int
) -> list[dict[str, Any]]:
    if mode == "text2text":
        return _text2text_rows(tokenizer, prompts(data.texts, template), [str(v) for v in data.parsed], max_length=max_length)
    label2id = {name: i for i, name in enumerate(names)}
    return _rows(tokenizer, data.texts, encode_labels(data.parsed, label2id, problem_type=problem_type), max_length=max_length)


def _collator(tokenizer: Any, model: Any, mode: str) -> Any:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    if mode == "text2text":
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    return DataCollatorWithPadding(tokenizer)


# --------------------------------------------------------------------------------------------
# Trainer pieces
# --------------------------------------------------------------------------------------------


def _log_callback() -> Any:
    from transformers import TrainerCallback

    class LogProgress(TrainerCallback):
        """Trainer logs to ``logging`` (the CLI shows them with -v) instead of ``print``."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
                logger.info("step %d/%d: %s", state.global_step, state.max_steps, shown)

    return LogProgress()


def _training_arguments(
    config: TrainingConfig, *, output_dir: Path, learning_rate: float, bf16: bool, has_eval: bool, problem_type: str,
    show_progress_bar: bool,
) -> Any:
    """``transformers.TrainingArguments`` for ``config``; the keywords are what the run resolved (defaults, data)."""
    import torch
    from transformers import TrainingArguments

    strategy = "steps" if config.checkpoint_steps else "epoch"
    if config.mode == "text2text":
        best_metric, greater = "eval_loss", False
    else:
        best_metric, greater = f"eval_{MAIN_METRIC[problem_type]}", True
    options: dict[str, Any] = dict(
        output_dir=str(output_dir / CHECKPOINTS_DIR),
        num_train_epochs=config.epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        optim=OPTIMIZERS[config.optimizer],
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the total steps
        lr_scheduler_type="linear",
        bf16=bf16,
        fp16=False,  # T5 overflows in fp16
        activation_checkpointing=config.gradient_checkpointing,
        seed=config.seed,
        data_seed=config.seed,
        # Batches of similar length: less padding, the same data order for a given seed.
        train_sampling_strategy="group_by_length",
        eval_strategy=strategy if has_eval else "no",
        save_strategy=strategy,
        save_steps=config.checkpoint_steps or 500,
        eval_steps=config.checkpoint_steps,
        # Two, so that a run killed while writing the newest still has a complete one to resume from.
        save_total_limit=2,
        load_best_model_at_end=config.early_stopping is not None,
        metric_for_best_model=best_metric if config.early_stopping is not None else None,
        greater_is_better=greater if config.early_stopping is not None else None,
        logging_strategy="steps",
        logging_steps=0.02,  # about 50 points on the loss curve, whatever the run length
        logging_first_step=True,
        prediction_loss_only=config.mode == "text2text",  # seq2seq logits over the vocabulary would pile up
        report_to="none",
        disable_tqdm=not show_progress_bar,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Without an accelerator, say so: then torchrun / accelerate launch give one CPU process per
        # rank with gloo (transformers otherwise starts the process group but trains unsharded).
        use_cpu=not _has_accelerator(),
        ddp_find_unused_parameters=False,  # every parameter takes part in every step
    )
    options.update(config.training_args or {})
    return TrainingArguments(**options)


def _has_accelerator() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return accelerator.is_available()
    return torch.cuda.is_available()


def _move_into(staging: Path, output_dir: Path) -> None:
    """Move the files of ``staging`` into ``output_dir`` (replacing same-named ones), then drop ``staging``."""
    for entry in staging.iterdir():
        target = output_dir / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        entry.replace(target)
    staging.rmdir()


def _save_final(trainer: Any, output_dir: Path, *, tokenizer: Any, lora: bool, adapter_config: Any = None) -> None:
    """Save the trained model into ``output_dir``; every process calls this (FSDP gathers shards).

    ``adapter_config``: with LoRA over a classifier converted from a seq2seq T5 here, its config,
    saved beside the adapter so that t5cls loads ``adapter/`` on its own (base converted, adapter merged).
    """
    staging = output_dir / ".final-model"
    if lora:
        # The adapter alone (small; for PEFT users), then the merged model so that Classifier and
        # transformers load the directory as a plain classifier.
        trainer.save_model(str(staging / ADAPTER_DIR))
        if trainer.is_world_process_zero():
            if adapter_config is not None:
                adapter_config.save_pretrained(staging / ADAPTER_DIR)
            if trainer.is_fsdp_enabled:
                logger.warning("LoRA with FSDP: only the adapter is saved (in %s); merge it on one device.", ADAPTER_DIR)
            else:
                merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
                merged.save_pretrained(staging)
                tokenizer.save_pretrained(staging)
    else:
        trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        # TrainingArguments pickled by the Trainer: the settings go to metrics.json instead.
        (staging / "training_args.bin").unlink(missing_ok=True)
        _move_into(staging, output_dir)


# --------------------------------------------------------------------------------------------
# train()
# --------------------------------------------------------------------------------------------


def _fits_scaling(fit_temperature: bool, *, mode: str, problem_type: str) -> bool:
    """Whether a temperature (single-label) or thresholds (multi-label) are fitted after training."""
    return bool(fit_temperature) and mode == "classifier" and problem_type in (SINGLE_LABEL, MULTI_LABEL)


def train(
    model: Any,
    train_data: Any,
    eval: Any = None,  # noqa: A002  (the public name users pass)
    config: TrainingConfig | None = None,
    *,
    tokenizer: Any = None,
    callbacks: Sequence[Any] = (),
    base: str | os.PathLike | None = None,
    **overrides: Any,
) -> TrainResult:
    """Fine-tune a T5 classifier (or a text-to-text T5) on labelled data and write a report.

    The settings are a :class:`t5cls.TrainingConfig`: pass one as ``config``, or its fields as
    keyword arguments (``output_dir=..., epochs=2``), or both (keywords override the config's
    fields). Every setting is checked before any data is read or anything is written.

    Args:
        model: a T5-family checkpoint (directory, hub id or in-memory seq2seq model), which
            becomes a :class:`T5ForClassification` with a new head; or an existing classifier
            (directory or object) to keep training, whose labels the data must use.
        train_data: a .csv/.tsv/.jsonl/.parquet path, a ``datasets.Dataset`` or a DataFrame.
        eval: evaluation data in the same forms; evaluated each epoch (or every ``checkpoint_steps``)
            and, at the end, through :class:`t5cls.Classifier` on the saved model.
        config: the settings (see :class:`t5cls.TrainingConfig` for each field and its default).
        tokenizer: needed with an in-memory model; loaded from ``model`` otherwise.
        base: when ``model`` is a PEFT adapter directory, its base model (default: the adapter's
            ``base_model_name_or_path``); training starts from the merged model.
        callbacks: extra ``transformers.TrainerCallback`` objects.
        **overrides: fields of :class:`t5cls.TrainingConfig` (``output_dir``, ``epochs``,
            ``learning_rate``, ``batch_size``, ``lora``, ``mode``, ``resume`` ...), replacing the
            config's values; ``output_dir`` is required when no ``config`` is given.

    Returns:
        A :class:`TrainResult`.

    Raises:
        InputError: an unknown setting (naming the closest one), a bad value, missing columns, empty data, missing or empty labels or texts,
            a single class, eval labels not in the training data (all before any training).
        FileNotFoundError: a data file or checkpoint that does not exist.
        FileExistsError: ``output_dir`` is not empty and neither ``resume`` nor ``overwrite`` is set.
        TypeError: data of an unsupported type.

    Example:
        >>> result = t5cls.train("google/flan-t5-base", "train.csv", eval="dev.csv", output_dir="clf")  # doctest: +SKIP
        >>> result.metrics["accuracy"]  # doctest: +SKIP
        0.93
        >>> t5cls.Classifier("clf").predict("what a film")  # doctest: +SKIP
        'positive'
    """
    config = TrainingConfig.from_overrides(config, overrides)
    eval_data = eval
    output_dir = Path(config.output_dir)
    if config.early_stopping is not None and eval_data is None:
        raise InputError("early_stopping needs eval data to watch: pass eval=... (or --eval FILE).")
    _check_output_dir(output_dir, resume=config.resume, overwrite=config.overwrite)
    text_column, text_pair_column, label_column = config.text_column, config.text_pair_column, config.label_column
    label_separator, mode, template, max_length, seed = config.label_separator, config.mode, config.template, config.max_length, config.seed
    lora = config.lora_options() if config.uses_lora else None
    fit_temperature = config.fit_temperature

    # ---- the data: every check a user can fail happens here, before anything is written -------
    columns = [text_column, label_column] + ([text_pair_column] if text_pair_column else [])
    read = dict(columns=columns, text_column=text_column, text_pair_column=text_pair_column, label_column=label_column)
    train_set = _read_labelled(train_data, name="training", **read)
    source = model
    classifier, model = _existing_classifier(source, base=base)
    problem_type, names = _label_plan(
        train_set, existing=classifier.config if classifier is not None else None, problem_type=config.problem_type,
        labels=config.labels, separator=label_separator, label_column=label_column,
    )
    if mode == "text2text":
        if classifier is not None:
            raise InputError(
                "mode='text2text' fine-tunes a seq2seq T5 checkpoint (T5ForConditionalGeneration) on label strings; "
                "the model given is a T5 classifier."
            )
        if problem_type != SINGLE_LABEL:
            raise InputError(f"mode='text2text' supports single-label classification, not {problem_type}; use mode='classifier'.")
        template = template or (DEFAULT_PAIR_TEMPLATE if text_pair_column else DEFAULT_TEMPLATE)
        check_template(template, pairs=text_pair_column is not None)
    eval_set = None
    if eval_data is not None:
        eval_set = _read_labelled(eval_data, name="evaluation", **read)
        eval_set.parsed = parse_labels(eval_set.raw, problem_type=problem_type, separator=label_separator, source=eval_set.source)
        if problem_type != REGRESSION:
            check_known_labels(eval_set.parsed, names, source=eval_set.source)
        if _fits_scaling(fit_temperature, mode=mode, problem_type=problem_type):
            y_eval = encode_labels(eval_set.parsed, {name: i for i, name in enumerate(names)}, problem_type=problem_type)
            check_fit_labels(y_eval, problem_type=problem_type, source=eval_set.source, labels=names)

    # ---- model, tokenizer, rows (a bad checkpoint still fails before anything is written) ------
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, set_seed

    set_seed(seed)  # the new head and queries start the same way for the same seed
    tokenizer = _training_tokenizer(source, tokenizer, base=base)
    model = _load_model(
        model, mode=mode, existing=classifier, problem_type=problem_type, labels=names,
        num_decoder_layers=config.num_decoder_layers, classifier_dropout=config.classifier_dropout,
    )
    encode = dict(tokenizer=tokenizer, mode=mode, problem_type=problem_type, names=names, template=template, max_length=max_length)
    train_rows = _encode_rows(train_set, **encode)
    eval_rows = _encode_rows(eval_set, **encode) if eval_set is not None else None

    bf16 = config.bf16 if config.bf16 is not None else torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = _training_arguments(
        config, output_dir=output_dir, learning_rate=config.learning_rate or DEFAULT_LEARNING_RATE[config.optimizer], bf16=bool(bf16),
        has_eval=eval_rows is not None, problem_type=problem_type,
        show_progress_bar=config.show_progress_bar if config.show_progress_bar is not None else sys.stderr.isatty(),
    )
    args.device  # noqa: B018  (sets up the process group under torchrun / accelerate launch)
    state = args.distributed_state  # one process per device under torchrun
    checkpoint = last_checkpoint(output_dir / CHECKPOINTS_DIR) if config.resume else None
    if config.resume and checkpoint is None:
        logger.info("resume=True but %s holds no complete checkpoint: starting from scratch.", output_dir / CHECKPOINTS_DIR)
    if state.is_main_process:
        if config.overwrite and not config.resume and output_dir.exists():
            shutil.rmtree(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()

    adapter_config = None
    if lora:
        try:
            from peft import get_peft_model
        except ImportError as exc:
            raise ImportError(f"lora= needs peft: {LORA_INSTALL}.") from exc

        if mode == "classifier" and classifier is None:
            adapter_config = model.config  # the base is converted here: loading adapter/ converts it again
        model = get_peft_model(model, _lora_config(lora, mode=mode, model=model))
        if _adapter_base(source) is not None:
            model.peft_config["default"].base_model_name_or_path = _adapter_base(source)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need a grad path

    from .metrics import trainer_metrics

    extra_callbacks = list(callbacks)
    if config.early_stopping is not None:
        extra_callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=_collator(tokenizer, model, mode),
        processing_class=tokenizer,
        compute_metrics=trainer_metrics(problem_type, names) if mode == "classifier" and eval_rows is not None else None,
        callbacks=[_log_callback(), *extra_callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # prints dicts to stdout when tqdm is off; we log instead

    started = time.perf_counter()
    # On CPU, gradients of freshly initialised heads and queries can be denormal floats (< 1e-38),
    # which x86 handles dozens of times slower: one backward pass took 30 s instead of 1.3 s at
    # t5-small shapes. Flushing them to zero changes nothing a model can tell apart.
    flush = args.device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        outcome = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    finally:
        if flush:
            torch.set_flush_denormal(False)
    seconds = time.perf_counter() - started
    _save_final(trainer, output_dir, tokenizer=tokenizer, lora=bool(lora), adapter_config=adapter_config)
    resumed_from = int(_CHECKPOINT_RE.match(checkpoint.name).group(1)) if checkpoint is not None else None

    metrics = None
    if trainer.is_world_process_zero():
        if mode == "text2text":
            (output_dir / TEXT2TEXT_FILE).write_text(json.dumps({"labels": names, "template": template}, indent=2) + "\n")
        plots = [LOSS_PLOT] if plot_loss_curve(trainer.state.log_history, output_dir / LOSS_PLOT) else []
        if eval_set is not None:
            # The final numbers come from the saved directory through the user-facing predictor:
            # what is reported is what Classifier(output_dir) does.
            predictor = load_predictor(output_dir, max_length=max_length)
            if _fits_scaling(fit_temperature, mode=mode, problem_type=problem_type):
                y_eval = encode_labels(eval_set.parsed, {name: i for i, name in enumerate(names)}, problem_type=problem_type)
                fitted = fit_scaling(predictor, eval_set.texts, y_eval, source=eval_set.source)
                save_scaling(output_dir, fitted)
                logger.info("Fitted on %s: %s", eval_set.source, {k: v for k, v in fitted.items() if k in ("temperature", "thresholds")})
            metrics, y_true, scores = evaluate_texts(
                predictor, eval_set.texts, eval_set.raw, label_separator=label_separator, source=eval_set.source
            )
            plots += write_eval_report(problem_type, metrics, y_true, scores, output_dir)
        report = {
            "mode": mode,
            "problem_type": problem_type,
            "labels": names,
            "train": {
                "data": train_set.source,
                "examples": len(train_rows),
                "global_step": trainer.state.global_step,
                "epochs": config.epochs,
                "train_loss": outcome.training_loss,
                "seconds": round(seconds, 2),
                "resumed_from_step": resumed_from,
                "settings": {
                    "optimizer": config.optimizer,
                    "learning_rate": args.learning_rate,
                    "batch_size": config.batch_size,
                    "gradient_accumulation_steps": config.gradient_accumulation_steps,
                    "world_size": args.world_size,
                    "bf16": bool(bf16),
                    "lora": bool(lora),
                    "max_length": max_length,
                    "seed": seed,
                    "early_stopping": config.early_stopping,
                    "fit_temperature": _fits_scaling(fit_temperature, mode=mode, problem_type=problem_type) and eval_set is not None,
                },
            },
            "eval": metrics,
            "eval_data": eval_set.source if eval_set is not None else None,
            "log_history": trainer.state.log_history,
            "plots": plots,
        }
        write_json(report, output_dir / METRICS_FILE)
        if not config.keep_checkpoints:
            shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
    state.wait_for_everyone()
    return TrainResult(
        output_dir=output_dir,
        problem_type=problem_type,
        labels=names,
        global_step=trainer.state.global_step,
        train_loss=outcome.training_loss,
        metrics=metrics,
        resumed_from_step=resumed_from,
    )


__all__ = ["train", "TrainResult", "TrainingConfig", "last_checkpoint", "OPTIMIZERS", "CHECKPOINTS_DIR"]
