"""Where and how models run: the default device and dtype every job uses, the quantisations, and the CPU's features.

CUDA when available, else CPU; bf16 on CUDA (T5 overflows in fp16), fp32 on CPU.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .errors import InputError, InputTypeError

# Weight quantisations a model can run with: none, or dynamic int8 (CPU).
QUANTIZATIONS = (None, "int8")


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for, else CUDA when available, else CPU.

    Raises:
        InputError: an unknown device string, or a device this machine does not have (``"cuda"``
            without a CUDA GPU, ``"cuda:3"`` on a machine with two, ``"mps"`` off Apple silicon).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise InputTypeError(f"device={device!r} must be a string such as 'cpu' or 'cuda', or a torch.device.")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device={device!r} is not a device name; use 'cpu', 'cuda' or 'cuda:N' (or leave it unset).") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            why = "no CUDA GPU is visible" if torch.backends.cuda.is_built() else f"this torch ({torch.__version__}) is built without CUDA"
            raise InputError(f"device={device!r} but {why} on this machine; use device='cpu' or leave device unset.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(
                f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered from 0; use e.g. 'cuda:0'."
            )
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"device={device!r} but MPS (Apple silicon) is not available here; use device='cpu'.")
    elif resolved.type != "cpu":
        raise InputError(f"device={device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N' (or leave it unset).")
    return resolved


# Floating dtypes a model can run in; fp16 is allowed when asked for (T5 may overflow in it).
DTYPES = ("float32", "bfloat16", "float16", "float64")


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``dtype`` as a ``torch.dtype`` (a dtype or its name, e.g. ``"bfloat16"``); None stays None.

    Raises:
        InputError: ``dtype`` names no torch dtype.
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise InputError(f"dtype={dtype!r} is not a torch dtype; use e.g. 'float32' or 'bfloat16'.")
    return resolved


def default_dtype(device: torch.device, dtype: torch.dtype | str | None = None) -> torch.dtype:
    """bf16 on CUDA (T5 overflows in fp16), fp32 on CPU, unless asked otherwise.

    Raises:
        InputError: ``dtype`` names no floating torch dtype (e.g. ``"float33"`` or ``"int8"``).
    """
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None) if dtype.removeprefix("torch.") in DTYPES else None
        if resolved is None:
            raise InputError(f"dtype={dtype!r} is not supported; use one of {', '.join(DTYPES)} (or leave it unset).")
        dtype = resolved
    if dtype is not None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise InputError(f"dtype={dtype!r} is not supported; use one of {', '.join(DTYPES)} (or leave it unset).")
        return dtype
    return torch.bfloat16 if device.type == "cuda" else torch.float32


# CPU features that change which kernels run, and so the speed and, for int8, the rounding: two
# machines sold under one name (an "AMD EPYC" of 2021 has AVX2 only, one of 2022 AVX-512 and
# VNNI) give different numbers, so benchmarks print these next to the CPU's name.
CPU_FEATURES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI", "amx_tile": "AMX"}


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first CPU's fields in ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the first CPU's block
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    """The feature flags of this machine's first CPU, from ``/proc/cpuinfo`` (empty where there is none)."""
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu_vendor() -> str:
    """The CPU's maker as ``/proc/cpuinfo`` names it, e.g. ``"AuthenticAMD"``, ``"GenuineIntel"`` (empty where unknown)."""
    return _cpuinfo().get("vendor_id", "")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, e.g. ``"AMD EPYC"`` (empty where unknown)."""
    return _cpuinfo().get("model name", "")


def cpu_family_model() -> str:
    """The CPU's family and model numbers, e.g. ``"family 26 model 2"``: the generation behind a name such as "AMD EPYC" (empty where unknown)."""
    info = _cpuinfo()
    if "cpu family" not in info or "model" not in info:
        return ""
    return f"family {info['cpu family']} model {info['model']}"


def cpu_features() -> str:
    """The :data:`CPU_FEATURES` this CPU has, and the vector kernels torch picked, e.g. ``"AVX2; torch AVX2"``.

    Example:
        >>> cpu_features()  # doctest: +SKIP
        'AVX2, AVX-512, AVX512-VNNI; torch AVX512'
    """
    flags = cpu_flags()
    names = [name for flag, name in CPU_FEATURES.items() if flag in flags] or ["no flags read"]
    return f"{', '.join(names)}; torch {torch.backends.cpu.get_cpu_capability()}"


__all__ = [
    "cpu_family_model",
    "cpu_features",
    "cpu_flags",
    "cpu_model",
    "cpu_vendor",
    "CPU_FEATURES",
    "as_dtype",
    "default_device",
    "default_dtype",
    "QUANTIZATIONS",
    "DTYPES",
]
