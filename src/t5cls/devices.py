"""Where and how models run: the default device and dtype every job uses, and the quantisations.

CUDA when available, else CPU; bf16 on CUDA (T5 overflows in fp16), fp32 on CPU.
"""

from __future__ import annotations

import torch

# Weight quantisations a model can run with: none, or dynamic int8 (CPU).
QUANTIZATIONS = (None, "int8")


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device, dtype: torch.dtype | str | None = None) -> torch.dtype:
    """bf16 on CUDA (T5 overflows in fp16), fp32 on CPU, unless asked otherwise."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is not None:
        return dtype
    return torch.bfloat16 if device.type == "cuda" else torch.float32


__all__ = ["default_device", "default_dtype", "QUANTIZATIONS"]
