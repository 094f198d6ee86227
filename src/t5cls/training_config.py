"""TrainingConfig: every setting of a :func:`t5cls.train` run, validated once.

One dataclass, as transformers' ``TrainingArguments`` and setfit's ``TrainingArguments`` are: each
field has a type, a default and a help text (``field.metadata["help"]``). :func:`t5cls.train`
takes one (or builds one from keyword arguments), and the ``t5cls train`` command generates its
options from the fields, so a new setting is one field with one help text.

Every value is checked in ``__post_init__`` (types first, then ranges and combinations), so a bad
setting fails with an :class:`t5cls.InputError` naming it before any data is read or written;
``dataclasses.replace(config, epochs=5)`` checks again.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError, InputTypeError


def _setting(default: Any, help: str, **metadata: Any) -> Any:  # noqa: A002  (the metadata key argparse uses)
    """A dataclass field with its help text (and, for the CLI, optional ``aliases`` / ``cli_type``)."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass
class TrainingConfig:
    """The settings of a :func:`t5cls.train` run (everything but the model, the data, the tokenizer
    and callbacks).

    Every field is also a ``t5cls train`` option (``--field-name``); ``t5cls train --help`` lists
    them with these help texts. Values are validated when the config is made.

    Raises:
        InputError: a value out of range or a combination that cannot work, naming the field.
        InputTypeError: a value of the wrong type (also a ``TypeError``).

    Example:
        >>> config = t5cls.TrainingConfig(output_dir="clf", epochs=2, batch_size=32)  # doctest: +SKIP
        >>> t5cls.train("google/flan-t5-base", "train.csv", eval="dev.csv", config=config)  # doctest: +SKIP
        >>> t5cls.train("google/flan-t5-base", "train.csv", config=config, learning_rate=3e-4)  # doctest: +SKIP
    """

    output_dir: str | os.PathLike[str] = field(
        metadata={"help": "where the model, metrics.json, the plots and the checkpoints go", "aliases": ["--output"]}
    )
    # ---- the data ----
    text_column: str = _setting("text", "column holding the text")
    text_pair_column: str | None = _setting(None, "second text column, for sentence pairs (e.g. hypothesis)")
    label_column: str = _setting("label", "column holding the label")
    label_separator: str | None = _setting(None, "splits string labels into several (multi-label), e.g. '|'")
    problem_type: Literal["single_label_classification", "multi_label_classification", "regression"] | None = _setting(
        None, "inferred from the labels when not given: lists (or label_separator) -> multi-label, non-whole numbers -> regression"
    )
    labels: list[str] | None = _setting(None, "label names in id order (comma-separated on the command line); default: the sorted training labels")
    max_length: int = _setting(512, "truncate inputs to this many tokens (the </s> is kept)")
    # ---- the model ----
    mode: Literal["classifier", "text2text"] = _setting(
        "classifier", "classifier: encoder + query decoder + head; text2text: fine-tune the seq2seq model to write the label string"
    )
    template: str | None = _setting(None, "text2text prompt with {text} (and {text_pair}), e.g. 'sst2 sentence: {text}'; default '{text}'")
    num_decoder_layers: int = _setting(1, "decoder layers kept when building a classifier from a T5 checkpoint (0 = mean pooling)",
                                       aliases=["--decoder-layers"])
    classifier_dropout: float = _setting(0.0, "dropout before the classifier head, when building from a T5 checkpoint")
    lora: Any = _setting(
        None,
        "train LoRA adapters and the head: true (r=16, alpha=32 on q and v) or a dict of peft.LoraConfig options "
        "(JSON on the command line; a LoraConfig in Python); the saved model is merged, the adapter kept in adapter/",
        cli_type=bool | dict,
    )
    lora_r: int | None = _setting(None, "LoRA rank, alpha = 2 x rank (implies lora)")
    # ---- the optimisation ----
    epochs: float = _setting(3.0, "passes over the training data")
    learning_rate: float | None = _setting(None, "default: 1e-3 with adafactor, 1e-4 with adamw")
    batch_size: int = _setting(16, "training examples per device and step")
    eval_batch_size: int | None = _setting(None, "evaluation examples per device and step; default: batch_size")
    gradient_accumulation_steps: int = _setting(1, "batches summed into one optimizer step")
    optimizer: Literal["adafactor", "adamw"] = _setting("adafactor", "adafactor (T5's own; little optimizer memory) or adamw")
    weight_decay: float = _setting(0.0, "decoupled weight decay")
    warmup_ratio: float = _setting(0.0, "share of the steps spent warming the learning rate up, in [0, 1)")
    bf16: bool | None = _setting(None, "bf16 mixed precision; default: on for CUDA GPUs that support it, off on CPU (never fp16)")
    gradient_checkpointing: bool = _setting(False, "recompute activations in the backward pass: less memory, more compute")
    seed: int = _setting(42, "seeds the new head, dropout and the data order")
    early_stopping: int | None = _setting(
        None, "patience: stop after this many evaluations without improvement of the main metric, keep the best (needs eval data)"
    )
    checkpoint_steps: int | None = _setting(None, "checkpoint and evaluate every N optimizer steps; default: every epoch")
    # ---- the run ----
    resume: bool = _setting(False, "continue from the last complete checkpoint in output_dir (a fresh start when there is none)")
    overwrite: bool = _setting(False, "replace output_dir if it is not empty")
    keep_checkpoints: bool = _setting(False, "keep output_dir/checkpoints after a successful run")
    show_progress_bar: bool | None = _setting(None, "a progress bar; default: on when stderr is a terminal")
    fit_temperature: bool = _setting(
        True, "after training, fit on the eval set and save: a softmax temperature (single-label) or per-label F1-best thresholds (multi-label)"
    )
    training_args: dict[str, Any] | None = _setting(
        None, "extra transformers.TrainingArguments fields, overriding the above (JSON on the command line), e.g. {\"deepspeed\": \"ds.json\"}"
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        if self.labels is not None:
            self.labels = [str(label) for label in self.labels]
        self._check_values()

    def _check_values(self) -> None:
        if not str(self.output_dir):
            raise InputError("output_dir='' is empty; pass the directory to write the model to.")
        for name in ("text_column", "label_column", "text_pair_column", "label_separator"):
            if getattr(self, name) == "":
                raise InputError(f"{name}='' is empty; pass a column name (or leave it out).")
        if self.labels is not None and len(self.labels) < (1 if self.problem_type == "regression" else 2):
            raise InputError(f"labels={self.labels!r}: give at least two label names in id order (or leave it out).")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise InputError(f"labels={self.labels!r} repeat a name; each label appears once.")
        _at_least("max_length", self.max_length, 2, "tokens")
        _at_least("num_decoder_layers", self.num_decoder_layers, 0, "(0 = mean pooling over the encoder)")
        _share("classifier_dropout", self.classifier_dropout)
        _share("warmup_ratio", self.warmup_ratio)
        if not self.epochs > 0:
            raise InputError(f"epochs={self.epochs!r} must be a positive number.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise InputError(f"learning_rate={self.learning_rate!r} must be positive (or None: 1e-3 adafactor, 1e-4 adamw).")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay={self.weight_decay!r} must be >= 0.")
        for name in ("batch_size", "gradient_accumulation_steps", "eval_batch_size", "lora_r", "checkpoint_steps"):
            if getattr(self, name) is not None:
                _at_least(name, getattr(self, name), 1, "")
        if self.early_stopping is not None:
            _at_least("early_stopping", self.early_stopping, 1, "(a patience: evaluations without improvement)")
        if self.seed < 0:
            raise InputError(f"seed={self.seed!r} must be >= 0.")
        if self.template is not None and self.mode != "text2text":
            raise InputError(f"template={self.template!r} is the prompt of mode='text2text'; the classifier reads the text as it is.")
        if self.lora_r is not None and self.lora is not None and not isinstance(self.lora, (bool, dict)):
            raise InputError("lora_r= together with a peft.LoraConfig: set r on the LoraConfig instead.")
        if self.lora is not None and not isinstance(self.lora, (bool, dict)) and type(self.lora).__name__ != "LoraConfig":
            raise InputTypeError(
                f"lora={self.lora!r}: pass True (r=16, alpha=32 on q and v), a dict of peft.LoraConfig options, or a LoraConfig."
            )
        if self.training_args:
            _check_training_args(self.training_args)

    @property
    def uses_lora(self) -> bool:
        """Whether the run trains LoRA adapters (``lora`` set, or ``lora_r`` given)."""
        return bool(self.lora) or self.lora_r is not None

    def lora_options(self) -> Any:
        """``lora`` with ``lora_r`` applied: True, a dict of LoraConfig options, or the LoraConfig given."""
        if self.lora_r is None:
            return self.lora
        options = dict(self.lora) if isinstance(self.lora, dict) else {}
        return {**options, "r": self.lora_r, "lora_alpha": 2 * self.lora_r}

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of the settings, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_overrides(cls, config: TrainingConfig | None, overrides: dict[str, Any]) -> TrainingConfig:
        """``config`` (or the defaults) with ``overrides`` applied and checked again.

        Raises:
            InputError: an override that is not a setting, naming the closest one.
        """
        names = cls.field_names()
        for key in overrides:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise InputError(f"{key!r} is not a training setting.{hint} The settings are the fields of t5cls.TrainingConfig.")
        if config is None:
            if "output_dir" not in overrides:
                raise InputError("output_dir is missing: pass output_dir=... (or config=TrainingConfig(output_dir=...)).")
            return cls(**overrides)
        if not isinstance(config, cls):
            raise InputTypeError(f"config={config!r}: pass a t5cls.TrainingConfig (or the settings as keyword arguments).")
        return dataclasses.replace(config, **overrides) if overrides else config


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is not None:
        return f"a {origin.__name__}"
    return {bool: "True or False", int: "an integer", float: "a number", str: "a string"}.get(hint, getattr(hint, "__name__", str(hint)))


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if origin is list:
        # Any sequence of strings (a list, a tuple); a bare string is a mistake, not a list of letters.
        return isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if origin is os.PathLike:
        return isinstance(value, os.PathLike)
    return isinstance(value, origin or hint)


def _check_type(name: str, value: Any, hint: Any) -> None:
    if _matches(value, hint):
        return
    error = InputError if typing.get_origin(hint) is Literal or Literal in map(typing.get_origin, typing.get_args(hint)) else InputTypeError
    if name == "labels" and isinstance(value, str):
        raise InputTypeError(f"labels={value!r} is one string; pass a list of label names, e.g. {value.split(',')!r}.")
    raise error(f"{name}={value!r} is not valid; pass {_describe(hint)}.")


def _at_least(name: str, value: int, low: int, unit: str) -> None:
    if value < low:
        raise InputError(f"{name}={value!r} must be an integer >= {low}{' ' + unit if unit else ''}.")


def _share(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise InputError(f"{name}={value!r} must be in [0, 1).")


def _check_training_args(options: dict[str, Any]) -> None:
    from transformers import TrainingArguments

    known = [f.name for f in dataclasses.fields(TrainingArguments)]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(f"training_args: {key!r} is not a transformers.TrainingArguments field.{hint}")


__all__ = ["TrainingConfig"]
