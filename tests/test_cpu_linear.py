"""fp32 CPU linear layers on oneDNN: the same numbers as torch's own F.linear, and the choice of kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.profiler import profile

from t5cls import Classifier, InputError, LabelScorer
from t5cls.cpu_linear import ENV_VAR, OneDNNLinear, linear_kernel, linear_kernel_name, onednn_available, onednn_linear_enabled
from t5cls.devices import cpu_vendor

from .conftest import build_seq2seq, sample_texts

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")
ONEDNN_OP = "mkldnn::_linear_pointwise"


def ops_run(fn) -> set[str]:
    """The names of the operators ``fn()`` runs, from torch.profiler."""
    with profile() as prof:
        fn()
    return {event.key for event in prof.key_averages()}


@needs_onednn
@pytest.mark.parametrize(
    "x_shape, bias, transposed",
    [((7, 16), True, False), ((3, 5, 16), True, False), ((4, 16), False, False), ((16, 6), True, True), ((1, 16), False, False)],
)
def test_onednn_linear_equals_torch_linear(x_shape, bias, transposed):
    torch.manual_seed(0)
    x = torch.randn(*x_shape)
    x = x.t() if transposed else x  # a non-contiguous input
    weight, b = torch.randn(24, 16), torch.randn(24) if bias else None
    with torch.inference_mode():
        expected = F.linear(x, weight, b)
        got = _linear_in_mode(x, weight, b)
        assert ONEDNN_OP in ops_run(lambda: _linear_in_mode(x, weight, b))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def _linear_in_mode(x, weight, bias):
    with OneDNNLinear():
        return F.linear(x, weight, bias)


@needs_onednn
def test_onednn_runs_only_where_it_computes_the_same():
    """Autograd, other dtypes, 1-D and empty inputs take torch's own kernel, with its result."""
    torch.manual_seed(0)
    weight = torch.randn(8, 4)
    cases = {
        "autograd": (torch.randn(3, 4, requires_grad=True), weight, True),
        "fp64": (torch.randn(3, 4, dtype=torch.float64), weight.double(), False),
        "bf16": (torch.randn(3, 4).bfloat16(), weight.bfloat16(), False),
        "1-D": (torch.randn(4), weight, False),
        "empty": (torch.randn(0, 4), weight, False),
    }
    for name, (x, w, grad) in cases.items():
        with torch.set_grad_enabled(grad):
            ops = ops_run(lambda: _linear_in_mode(x, w, None))
            got = _linear_in_mode(x, w, None)
            expected = F.linear(x, w)
        assert ONEDNN_OP not in ops, name
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=name)
    # Autograd still flows through the fallback.
    x = torch.randn(3, 4, requires_grad=True)
    with torch.enable_grad():
        _linear_in_mode(x, weight, None).sum().backward()
    torch.testing.assert_close(x.grad, weight.sum(0).expand(3, 4))


@needs_onednn
def test_a_transformers_t5_forward_in_the_mode_equals_its_plain_forward():
    model = build_seq2seq(seed=3)
    torch.manual_seed(0)
    input_ids = torch.randint(1, model.config.vocab_size, (3, 11))
    mask = torch.ones_like(input_ids)
    mask[1, 7:] = 0
    decoder_input_ids = torch.randint(1, model.config.vocab_size, (3, 4))
    with torch.inference_mode():
        expected = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
        with OneDNNLinear():
            got = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@needs_onednn
def test_classifier_and_label_scorer_equal_with_either_kernel(monkeypatch, tiny_classifier_dir, tiny_t5_dir):
    texts = sample_texts(12)
    results = {}
    for setting in ("0", "1"):
        monkeypatch.setenv(ENV_VAR, setting)
        classifier = Classifier(tiny_classifier_dir, device="cpu", show_progress_bar=False)
        scorer = LabelScorer(tiny_t5_dir, labels=["positive", "negative", "not good"], template="review: {text}", show_progress_bar=False)
        ops = ops_run(lambda: (classifier.predict_proba(texts), scorer.log_likelihoods(texts)))
        assert (ONEDNN_OP in ops) == (setting == "1")
        results[setting] = (classifier.predict_proba(texts), scorer.log_likelihoods(texts))
    np.testing.assert_allclose(results["1"][0], results["0"][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(results["1"][1], results["0"][1], rtol=0, atol=1e-5)


def test_the_setting_picks_the_kernel(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "0")
    assert not onednn_linear_enabled()
    assert linear_kernel_name() in ("MKL", "torch's BLAS")
    assert not isinstance(linear_kernel("cpu"), OneDNNLinear)
    monkeypatch.delenv(ENV_VAR)
    # auto: oneDNN on x86 CPUs not made by Intel, where it measured faster; torch's BLAS elsewhere.
    import platform

    expected = onednn_available() and platform.machine().lower() in ("x86_64", "amd64") and cpu_vendor() not in ("GenuineIntel", "")
    assert onednn_linear_enabled() == expected
    assert (linear_kernel_name() == "oneDNN") == expected
    if onednn_available():
        monkeypatch.setenv(ENV_VAR, "1")
        assert onednn_linear_enabled()
        assert isinstance(linear_kernel("cpu"), OneDNNLinear)
        assert not isinstance(linear_kernel("meta"), OneDNNLinear)  # CPU only


@pytest.mark.parametrize("value", ["yes", "on", "2"])
def test_a_bad_setting_names_the_value_and_the_choices(monkeypatch, tiny_classifier_dir, tiny_t5_dir, value):
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(InputError, match=rf"{ENV_VAR}='{value}' is not one of auto, 1, 0"):
        onednn_linear_enabled()
    # Models fail when they are made, not at their first batch.
    with pytest.raises(InputError, match=ENV_VAR):
        Classifier(tiny_classifier_dir, device="cpu")
    with pytest.raises(InputError, match=ENV_VAR):
        LabelScorer(tiny_t5_dir, labels=["a", "b"], template="{text}")
