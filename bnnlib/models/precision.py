"""The precision of a network's matrix products: float32 (the reference) or bfloat16.

On CPUs with native bf16 instructions (avx512_bf16 or AMX) and on GPUs, bf16 products run
several times faster than float32. Only the products are reduced: parameters, optimiser
state, likelihoods, the ELBO and the last layer's output stay float32, so predictions keep
float32's resolution and their ranks are not tied by rounding. Where bf16 is used, a test and
a table of the book compare the scores with float32's (study 1, "bf16 against float32").
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from bnnlib.errors import unknown_name

PRECISIONS = ("float32", "bf16")
CHOICES = (*PRECISIONS, "auto")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively; elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, device: "str | torch.device" = "cpu") -> str:
    """A concrete precision: 'auto' is bf16 where it is native (this CPU, or the CUDA GPU of
    `device`, a setting such as 'auto' or 'cuda:0', when it supports bf16), else float32.
    Resolved before a cache key is made, so the key says which."""
    key = str(name).lower()
    if key not in CHOICES:
        raise unknown_name("precision", name, CHOICES)
    if key != "auto":
        return key
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    return "bf16" if cpu_has_native_bf16() else "float32"


def compute_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if resolve_precision(precision) == "bf16" else torch.float32


def autocast(precision: str, device_type: str = "cpu"):
    """The context under which a network's products run at `precision` (a no-op for float32):
    torch.autocast on the device's type ('cpu', or 'cuda' for torch.autocast('cuda', bf16))."""
    if resolve_precision(precision) == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)
