"""t5cls: text classification with T5-family models.

Importing t5cls registers :class:`T5ClassificationConfig` with ``AutoConfig`` and
:class:`T5ForClassification` with ``AutoModelForSequenceClassification``, so transformers'
Auto classes, ``pipeline("text-classification")``, ``Trainer`` and PEFT load saved classifiers.
Saved directories also carry the model code (``auto_map``) and load with
``trust_remote_code=True`` where t5cls is not imported.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForSequenceClassification

from .configuration import T5ClassificationConfig
from .modeling import T5ForClassification

AutoConfig.register(T5ClassificationConfig.model_type, T5ClassificationConfig, exist_ok=True)
AutoModelForSequenceClassification.register(T5ClassificationConfig, T5ForClassification, exist_ok=True)
# Write the code files and `auto_map` next to saved weights, for trust_remote_code users.
T5ClassificationConfig.register_for_auto_class()
T5ForClassification.register_for_auto_class("AutoModelForSequenceClassification")

from .convert import from_t5  # noqa: E402
from .errors import InputError, InputTypeError  # noqa: E402
from .evaluation import calibrate, evaluate  # noqa: E402
from .inference import Classifier  # noqa: E402
from .loading import ModelInfo, inspect_model  # noqa: E402
from .rerank import Reranker  # noqa: E402
from .scoring import LabelScorer  # noqa: E402
from .training import train  # noqa: E402
from .training_config import TrainingConfig  # noqa: E402
from .zero_shot import ZeroShotClassifier  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "InputTypeError",
    "T5ClassificationConfig",
    "T5ForClassification",
    "Classifier",
    "LabelScorer",
    "Reranker",
    "ZeroShotClassifier",
    "from_t5",
    "inspect_model",
    "ModelInfo",
    "train",
    "TrainingConfig",
    "evaluate",
    "calibrate",
    "__version__",
]
