"""The offline demo: train an intent classifier on data shipped with t5cls, evaluate it, use it.

Without a checkpoint the demo builds everything here: a SentencePiece-style (Unigram) tokenizer
trained on the training sentences with the ``tokenizers`` library and a small
:class:`T5ForClassification` with random weights, trained from scratch. That shows the whole path
(data -> :func:`t5cls.train` -> held-out metrics -> :class:`t5cls.Classifier`) in about a minute on
two CPU cores, but a from-scratch model on a few hundred sentences is a demonstration, not what a
pretrained T5 reaches: ``model=`` (``t5cls demo --model SRC``) fine-tunes a real checkpoint instead.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

DEMO_FILE = "intents.csv"
MARKER = ".t5cls-demo"  # lets a later demo run replace its own output, and nothing else
HELD_OUT = 0.2

# Requests written for the demo's end, in none of the data: what a user might try next.
EXAMPLES = [
    "could you dim the lights in the dining room",
    "is it going to be chilly on friday evening",
    "put some soft jazz on",
    "how do I make a lemon tart",
    "send twenty dollars to my brother",
    "we have run out of cheese",
]

# Small enough to train in well under a minute on 2 cores, big enough to learn 8 intents. From
# scratch on 480 sentences, mean pooling (num_decoder_layers=0) does as well as a learned query
# with one decoder layer (held-out accuracy 0.83 / 0.82 vs 0.77 / 0.82, seeds 0 / 1) at two thirds
# of the time; a pretrained checkpoint keeps the default query decoder.
SCRATCH_SHAPE = dict(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_heads=4, num_decoder_layers=0)
SCRATCH_VOCAB = 1200
SCRATCH_TRAINING = dict(epochs=20, learning_rate=1e-3, optimizer="adamw", batch_size=16, warmup_ratio=0.1, weight_decay=0.01)
PRETRAINED_TRAINING = dict(epochs=5, learning_rate=1e-3, optimizer="adafactor", batch_size=16)


@dataclass
class DemoResult:
    """What the demo did and found.

    Attributes:
        output_dir: the trained classifier, ``metrics.json`` and plots.
        from_scratch: True when no checkpoint was given (random init, tokenizer trained here).
        labels: the intents.
        n_train, n_test: sentences trained on and held out.
        accuracy, macro_f1: on the held-out sentences, through :class:`t5cls.Classifier`.
        examples: for each new sentence, its labels and probabilities, most likely first.
        parameters: the classifier's parameter count.
        seconds: wall time of training and evaluation.
    """

    output_dir: Path
    from_scratch: bool
    labels: list[str]
    n_train: int
    n_test: int
    accuracy: float
    macro_f1: float
    examples: list[tuple[str, list[tuple[str, float]]]] = field(default_factory=list)
    parameters: int = 0
    seconds: float = 0.0


def demo_data() -> pd.DataFrame:
    """The demo dataset: 600 assistant requests (``text``), 8 intents (``label``), 75 each."""
    with resources.as_file(resources.files("t5cls") / "demo_data" / DEMO_FILE) as path:
        from .inputs import read_table

        return read_table(path, columns=["text", "label"])


def split(frame: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified ``HELD_OUT`` share held out for evaluation (the same for the same seed)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=HELD_OUT, stratify=frame["label"], random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def train_tokenizer(texts: list[str], *, vocab_size: int = SCRATCH_VOCAB) -> Any:
    """A T5-style tokenizer learned from ``texts``: ``<pad>``=0, ``</s>``=1, ``<unk>``=2, ``</s>`` appended.

    SentencePiece-style word boundaries (``▁``) with BPE pieces, lower-cased and NFKC-normalised (a
    tiny model should not spend capacity on case). BPE rather than T5's Unigram because the
    ``tokenizers`` Unigram trainer is not deterministic, and the demo's numbers should repeat.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    eos_id = tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=128
    )


def scratch_t5(tokenizer: Any, *, seed: int, shape: dict[str, int] | None = None) -> Any:
    """A small randomly initialised seq2seq T5 (``T5ForConditionalGeneration``) for ``tokenizer``'s vocabulary.

    The demo's from-scratch shape (``SCRATCH_SHAPE``, gated-GELU, untied embeddings, transformers'
    own initialisation); ``shape`` overrides its sizes. ``num_decoder_layers`` of 0 (the
    classifier's mean pooling) builds one decoder layer, which :func:`scratch_model` then drops.
    """
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    sizes = {**SCRATCH_SHAPE, **(shape or {})}
    decoder_layers = sizes.pop("num_decoder_layers")
    config = T5Config(
        vocab_size=len(tokenizer),
        feed_forward_proj="gated-gelu",
        dropout_rate=0.1,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        num_decoder_layers=max(decoder_layers, 1),
        **sizes,
    )
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config)


def scratch_model(tokenizer: Any, labels: list[str], *, seed: int, shape: dict[str, int] | None = None) -> Any:
    """A small randomly initialised :class:`T5ForClassification` for ``tokenizer``'s vocabulary.

    Built the way a real one is: a T5 with transformers' own initialisation (:func:`scratch_t5`),
    converted with :func:`t5cls.from_t5` (so the kept decoder layer, the queries and the head start
    as they would from a checkpoint). ``shape`` overrides the T5 sizes (``d_model``,
    ``num_layers``, ...; default ``SCRATCH_SHAPE``).
    """
    from .convert import from_t5

    decoder_layers = {**SCRATCH_SHAPE, **(shape or {})}["num_decoder_layers"]
    return from_t5(scratch_t5(tokenizer, seed=seed, shape=shape), labels=labels, num_decoder_layers=decoder_layers)


def _check_demo_dir(output_dir: Path, overwrite: bool) -> None:
    if not output_dir.exists() or overwrite:
        return
    if output_dir.is_dir() and (not any(output_dir.iterdir()) or (output_dir / MARKER).is_file()):
        return
    raise FileExistsError(
        f"{str(output_dir)!r} exists and was not written by a previous demo; pass another output directory "
        "(--output DIR) or overwrite=True (--overwrite)."
    )


def run_demo(
    model: str | os.PathLike | None = None,
    *,
    output_dir: str | os.PathLike = "t5cls-demo",
    epochs: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> DemoResult:
    """Train an intent classifier on the shipped demo data, evaluate it on held-out sentences, use it.

    Args:
        model: a T5-family checkpoint (directory or hub id) to fine-tune; None trains a small model
            and its tokenizer from scratch (a demonstration of the pipeline, not of T5's accuracy).
        output_dir: where the classifier and its report go; a previous demo's output is replaced.
        epochs: training epochs (30 from scratch, 5 for a checkpoint by default).
        seed: the held-out split, initialisation and data order.
        overwrite: replace ``output_dir`` even when a demo did not write it.
        show_progress_bar: defaults to on when stderr is a terminal.

    Returns:
        A :class:`DemoResult`.

    Raises:
        FileExistsError: ``output_dir`` holds something else and ``overwrite`` is false.

    Example:
        >>> result = run_demo(output_dir="demo-out")  # doctest: +SKIP
        >>> round(result.accuracy, 2)  # doctest: +SKIP
        0.9
    """
    import torch

    from .inference import Classifier
    from .labels import label_names
    from .training import train

    output_dir = Path(output_dir)
    _check_demo_dir(output_dir, overwrite)
    started = time.perf_counter()
    train_frame, test_frame = split(demo_data(), seed=seed)
    labels = label_names(train_frame["label"].tolist(), problem_type="single_label_classification")
    threads = torch.get_num_threads()
    if model is None:
        tokenizer = train_tokenizer(train_frame["text"].tolist())  # the held-out sentences stay unseen
        source: Any = scratch_model(tokenizer, labels, seed=seed)
        settings = dict(SCRATCH_TRAINING)
        # Matrices this small gain nothing from a second thread, and lose a lot when the cores are busy.
        torch.set_num_threads(1)
    else:
        tokenizer, source = None, model
        settings = dict(PRETRAINED_TRAINING)
    if epochs is not None:
        settings["epochs"] = epochs
    try:
        result = train(
            source,
            train_frame,
            eval=test_frame,
            output_dir=output_dir,
            tokenizer=tokenizer,
            seed=seed,
            overwrite=True,  # checked above: empty, a previous demo's, or overwrite asked for
            show_progress_bar=show_progress_bar,
            max_length=64,
            **settings,
        )
    finally:
        torch.set_num_threads(threads)
    (output_dir / MARKER).write_text(json.dumps({"from_scratch": model is None, "seed": seed}) + "\n")

    classifier = Classifier(output_dir)
    proba = classifier.predict_proba(EXAMPLES)
    examples = []
    for text, row in zip(EXAMPLES, proba):
        order = row.argsort()[::-1]
        examples.append((text, [(classifier.labels[j], float(row[j])) for j in order]))
    return DemoResult(
        output_dir=output_dir,
        from_scratch=model is None,
        labels=labels,
        n_train=len(train_frame),
        n_test=len(test_frame),
        accuracy=float(result.metrics["accuracy"]),
        macro_f1=float(result.metrics["macro_f1"]),
        examples=examples,
        parameters=sum(p.numel() for p in classifier.model.parameters()),
        seconds=time.perf_counter() - started,
    )


__all__ = ["run_demo", "DemoResult", "demo_data", "split", "train_tokenizer", "scratch_model", "scratch_t5", "EXAMPLES"]
