"""Which kernel runs fp32 linear layers on a CPU: torch's BLAS (MKL), or oneDNN where it is faster.

torch's CPU build sends ``F.linear`` in fp32 to MKL, whose fastest code paths are chosen for
Intel CPUs. On an AMD EPYC with AVX-512 (2 threads, t5-small shapes) oneDNN, which torch also
ships and which picks its kernels by the CPU's instruction set, ran the encoder's largest product
1.24x faster and the packed t5-small encoder 1.23x faster end to end
(``benchmarks/encoder_engines.py`` measures both on the machine it runs on). Inside :func:`linear_kernel`,
fp32 CPU ``F.linear`` calls without autograd run on ``torch.ops.mkldnn._linear_pointwise``
instead (the op torch's own compiler uses for CPU linear layers): the same product, summed in
another order, equal to within fp32 rounding (tests check transformers' forward to 1e-5).

It is a :class:`~torch.overrides.TorchFunctionMode`, so it covers every linear layer a forward
pass calls (transformers' own modules included) without changing the model: entered around a
forward pass by ``Classifier``, ``LabelScorer`` and what runs on them (``Reranker``,
``ZeroShotClassifier``, ``t5cls serve``), never during training, tracing or export.

``T5CLS_ONEDNN_LINEAR`` chooses: ``auto`` (the default: oneDNN on x86 CPUs not made by Intel, where
it was measured faster; MKL on Intel CPUs, its home ground, where it was not measured), ``1``
(always, where torch has oneDNN), ``0`` (never).
"""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .devices import cpu_vendor
from .errors import InputError

ENV_VAR = "T5CLS_ONEDNN_LINEAR"
CHOICES = ("auto", "1", "0")


def onednn_available() -> bool:
    """Whether this torch build has oneDNN and its linear op (x86 and aarch64 wheels do)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def onednn_linear_enabled() -> bool:
    """Whether fp32 CPU linear layers run on oneDNN here, by ``T5CLS_ONEDNN_LINEAR`` and the CPU.

    Raises:
        InputError: ``T5CLS_ONEDNN_LINEAR`` is not ``auto``, ``1`` or ``0``, or is ``1`` where
            this torch has no oneDNN.
    """
    value = os.environ.get(ENV_VAR, "auto").strip().lower()
    if value not in CHOICES:
        raise InputError(f"{ENV_VAR}={value!r} is not one of {', '.join(CHOICES)}; unset it for the default (auto).")
    if value == "0":
        return False
    if not onednn_available():
        if value == "1":
            raise InputError(f"{ENV_VAR}=1 but this torch ({torch.__version__}) is built without oneDNN; unset it or set it to 0.")
        return False
    if value == "1":
        return True
    return platform.machine().lower() in ("x86_64", "amd64") and cpu_vendor() not in ("GenuineIntel", "")


def _on_onednn(x: Any, weight: Any, bias: Any) -> bool:
    """Whether oneDNN computes ``F.linear(x, weight, bias)`` here: plain fp32 CPU tensors, no autograd."""
    return (
        type(x) is torch.Tensor
        and isinstance(weight, torch.Tensor)
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and weight.dim() == 2
        and x.dim() >= 2
        and x.numel() > 0
        and (bias is None or (isinstance(bias, torch.Tensor) and bias.dtype == torch.float32))
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
    )


class OneDNNLinear(TorchFunctionMode):
    """Within this mode, fp32 CPU ``F.linear`` calls without autograd run on oneDNN; every other call is unchanged.

    Example:
        >>> with OneDNNLinear():  # doctest: +SKIP
        ...     logits = model(**inputs).logits
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0] if args else kwargs["input"], args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if _on_onednn(x, weight, bias):
                return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
        return func(*args, **kwargs)


def linear_kernel(device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """The context a forward pass on ``device`` runs in: :class:`OneDNNLinear` where it is enabled on a CPU, else nothing.

    Raises:
        InputError: see :func:`onednn_linear_enabled`.
    """
    if torch.device(device).type == "cpu" and onednn_linear_enabled():
        return OneDNNLinear()
    return contextlib.nullcontext()


def linear_kernel_name() -> str:
    """What runs fp32 CPU linear layers in t5cls here, for benchmark tables: ``"oneDNN"`` or torch's BLAS."""
    if onednn_linear_enabled():
        return "oneDNN"
    return "MKL" if torch.backends.mkl.is_available() else "torch's BLAS"


__all__ = ["CHOICES", "ENV_VAR", "OneDNNLinear", "linear_kernel", "linear_kernel_name", "onednn_available", "onednn_linear_enabled"]
