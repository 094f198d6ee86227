"""Calibrating label scores: contextual calibration and domain-conditional PMI.

Both correct a prompt's bias towards some labels regardless of the input (REFERENCE.md §4):

- Contextual calibration (Zhao et al. 2021): p_cf is the mean label distribution on
  content-free inputs ("N/A", "", "[MASK]") put through the same template; the calibrated
  distribution is q proportional to p / p_cf (W = diag(p_cf)^-1, b = 0).
- Domain-conditional PMI (Holtzman et al. 2021): score(y) = log P(y | x) - log P(y | x_domain),
  x_domain being the prompt with the input removed (every template field empty).

Pure numpy on label scores; :class:`t5cls.LabelScorer` supplies the scores of the content-free
and domain prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from .errors import InputError

CALIBRATIONS = (None, "contextual", "domain_pmi")
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


def check_calibration(calibrate: str | None) -> str | None:
    """Return ``calibrate`` if it names a known method, else raise a ValueError listing them."""
    if calibrate not in CALIBRATIONS:
        raise InputError(f"calibrate={calibrate!r} is not one of {CALIBRATIONS}.")
    return calibrate


def fill_fields(fields: Sequence[str], value: str) -> dict[str, str]:
    """Every template field set to ``value``: a content-free (``"N/A"``) or domain (``""``) input."""
    return {field: value for field in fields}


def content_free_prior(content_free_scores: np.ndarray) -> np.ndarray:
    """p_cf: the mean over content-free inputs of the label distribution ``softmax(scores)``.

    Args:
        content_free_scores: ``(k, C)`` label scores (normalised log-likelihoods) of k content-free inputs.

    Returns:
        ``(C,)`` probabilities summing to 1.

    Example:
        >>> content_free_prior(np.log([[0.5, 0.5], [0.7, 0.3]])).round(2)
        array([0.6, 0.4])
    """
    return softmax(np.asarray(content_free_scores, dtype=np.float64), axis=1).mean(axis=0)


def contextual_calibrate(proba: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Contextual calibration: q proportional to p / p_cf, each row renormalised to sum to 1.

    Args:
        proba: ``(n, C)`` label probabilities.
        prior: ``(C,)`` p_cf from :func:`content_free_prior`.

    Returns:
        ``(n, C)`` calibrated probabilities.

    Example:
        >>> contextual_calibrate(np.array([[0.6, 0.4]]), np.array([0.6, 0.4]))
        array([[0.5, 0.5]])
    """
    ratio = np.asarray(proba, dtype=np.float64) / np.asarray(prior, dtype=np.float64)[None, :]
    return ratio / ratio.sum(axis=1, keepdims=True)


def contextual_scores(scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Scores whose softmax is :func:`contextual_calibrate` of ``softmax(scores)``: ``scores - log p_cf``.

    Working in log space keeps tiny probabilities from underflowing to 0/0.
    """
    return np.asarray(scores, dtype=np.float64) - np.log(np.asarray(prior, dtype=np.float64))[None, :]


def domain_pmi(scores: np.ndarray, domain_scores: np.ndarray) -> np.ndarray:
    """Domain-conditional PMI: ``log P(y | x) - log P(y | x_domain)`` per label.

    Args:
        scores: ``(n, C)`` label log-likelihoods of the inputs.
        domain_scores: ``(C,)`` label log-likelihoods of the domain prompt (template, empty fields).

    Returns:
        ``(n, C)`` PMI scores (softmax them for a distribution).
    """
    return np.asarray(scores, dtype=np.float64) - np.asarray(domain_scores, dtype=np.float64)[None, :]


__all__ = [
    "CALIBRATIONS",
    "CONTENT_FREE_INPUTS",
    "check_calibration",
    "content_free_prior",
    "contextual_calibrate",
    "contextual_scores",
    "domain_pmi",
    "fill_fields",
]
