"""Calibration formulas on fixed numbers (REFERENCE.md §4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from t5cls.calibration import (
    CONTENT_FREE_INPUTS,
    check_calibration,
    content_free_prior,
    contextual_calibrate,
    contextual_scores,
    domain_pmi,
    fill_fields,
)


def test_content_free_inputs_are_zhao_et_al():
    assert CONTENT_FREE_INPUTS == ("N/A", "", "[MASK]")


def test_content_free_prior_is_mean_of_softmaxes():
    scores = np.log(np.array([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.3, 0.4, 0.3]]))
    np.testing.assert_allclose(content_free_prior(scores), [0.5, 0.3, 0.2], atol=1e-12)
    # Scores need not be normalised log-probabilities: softmax first, then the mean.
    np.testing.assert_allclose(content_free_prior(scores + 5.0), [0.5, 0.3, 0.2], atol=1e-12)


def test_contextual_calibrate_divides_by_prior_and_renormalises():
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    prior = np.array([0.5, 0.3, 0.2])
    ratios = np.array([[1.2, 1.0, 0.5], [0.4, 2 / 3, 3.0]])
    expected = ratios / ratios.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(contextual_calibrate(proba, prior), expected, atol=1e-12)
    # A prediction equal to the prior becomes uniform: the bias is removed.
    np.testing.assert_allclose(contextual_calibrate(prior[None, :], prior), [[1 / 3] * 3], atol=1e-12)


def test_contextual_scores_in_log_space_match_the_ratio():
    scores = np.array([[-1.0, -2.5, -0.3], [-40.0, -0.1, -3.0]])
    prior = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(
        softmax(contextual_scores(scores, prior), axis=1), contextual_calibrate(softmax(scores, axis=1), prior), atol=1e-12
    )


def test_domain_pmi_subtracts_domain_log_likelihood():
    scores = np.array([[-1.0, -4.0], [-3.0, -2.0]])
    domain = np.array([-0.5, -6.0])
    np.testing.assert_allclose(domain_pmi(scores, domain), [[-0.5, 2.0], [-2.5, 4.0]])


def test_fill_fields_and_check_calibration():
    assert fill_fields(["premise", "hypothesis"], "N/A") == {"premise": "N/A", "hypothesis": "N/A"}
    assert check_calibration(None) is None
    assert check_calibration("domain_pmi") == "domain_pmi"
    with pytest.raises(ValueError, match="contextual"):
        check_calibration("platt")
