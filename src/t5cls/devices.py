"""Where and how models run: the default device and dtype every job uses, and the quantisations.

CUDA when available, else CPU; bf16 on CUDA (T5 overflows in fp16), fp32 on CPU.
"""

from __future__ import annotations

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


__all__ = ["as_dtype", "default_device", "default_dtype", "QUANTIZATIONS", "DTYPES"]
