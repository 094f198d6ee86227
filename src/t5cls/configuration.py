"""Configuration of :class:`~t5cls.modeling.T5ForClassification`.

This module is copied next to the weights by ``save_pretrained`` so that a saved directory loads
with ``trust_remote_code=True`` in a process that never imports t5cls: it may import only
transformers and the standard library.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import T5Config

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
# The transformers model types of the T5 family: the checkpoints a classifier is built from and
# the seq2seq models labels are scored with.
T5_MODEL_TYPES = ("t5", "mt5", "umt5")


@strict
class T5ClassificationConfig(T5Config):
    r"""Configuration of a T5 encoder classifier: every T5 field, plus how the classifier pools.

    Args:
        num_decoder_layers (`int`, defaults to 1):
            How many of the source's first decoder layers are kept to pool the encoder output with
            learned queries. ``0`` pools by the mean over the encoder (Sentence-T5 style).
        problem_type (`str`, *optional*):
            ``"single_label_classification"`` (one query, cross-entropy), ``"multi_label_classification"``
            (one query per label, binary cross-entropy) or ``"regression"`` (one query, MSE).
            When left out: regression if ``num_labels == 1``, else single-label classification.
        classifier_dropout (`float`, defaults to 0.0):
            Dropout applied to the pooled vector before the ``classifier`` head.
        relative_attention_per_layer (`bool`, defaults to False):
            Every layer has its own relative position bias, as in UMT5 (t5 and mT5 share layer 0's).
        temperature (`float`, defaults to 1.0):
            The model's logits are the head's divided by this (temperature scaling, Guo et al. 2017),
            so every way of running the model (transformers' pipeline, ONNX export, t5cls) gives
            calibrated probabilities. Fitted after training on the eval set (``t5cls.train``,
            ``t5cls calibrate``); 1.0 leaves the logits as they are. Not applied to regression.
        thresholds (`list[float]`, *optional*):
            Multi-label only: per label (id order), the probability at or above which it is
            predicted, F1-best on the eval set. ``None``: 0.5 for every label.

    Example:

        >>> from t5cls import T5ClassificationConfig
        >>> config = T5ClassificationConfig(d_model=64, num_layers=2, num_heads=4, id2label={0: "neg", 1: "pos"})
        >>> config.num_queries
        1
    """

    model_type = "t5cls"

    num_decoder_layers: int = 1
    relative_attention_per_layer: bool = False
    temperature: float = 1.0
    thresholds: list[float] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.problem_type is None:
            self.problem_type = "regression" if self.num_labels == 1 else "single_label_classification"
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(
                f"problem_type={self.problem_type!r} is not supported; use one of {', '.join(PROBLEM_TYPES)}."
            )
        if self.num_decoder_layers < 0:
            raise ValueError(
                f"num_decoder_layers={self.num_decoder_layers} must be >= 0 (0 = mean pooling over the encoder)."
            )
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r} must be a positive number (1.0 = no scaling).")
        self.temperature = float(self.temperature)
        if self.thresholds is not None:
            if self.problem_type != "multi_label_classification":
                raise ValueError(f"thresholds={self.thresholds!r} are for multi-label models; this one is {self.problem_type}.")
            if len(self.thresholds) != self.num_labels or not all(0.0 <= float(t) <= 1.0 for t in self.thresholds):
                raise ValueError(
                    f"thresholds={self.thresholds!r} must be {self.num_labels} probabilities in [0, 1], one per label."
                )
            self.thresholds = [float(t) for t in self.thresholds]
        # The classifier never generates and takes no decoder inputs: no cache, and not an
        # encoder-decoder in the sense pipelines and Trainer check for.
        self.use_cache = False
        self.is_encoder_decoder = False

    @property
    def num_queries(self) -> int:
        """Number of learned query vectors fed to the decoder layers (0 for mean pooling)."""
        if self.num_decoder_layers == 0:
            return 0
        return self.num_labels if self.problem_type == "multi_label_classification" else 1


__all__ = ["T5ClassificationConfig", "PROBLEM_TYPES", "T5_MODEL_TYPES"]
