"""Where fits and scoring run: the `device` setting (auto | cpu | cuda | cuda:N).

Numbers can differ between a CPU and a GPU, and between two CPUs (other kernels, other summation
orders: torch picks AVX2 or AVX-512 kernels, and native or emulated bf16, by the CPU it runs on),
so what decides the bits is part of every cache key (`environment`): the resolved device and,
on a CPU, torch's kernel capability and whether bf16 is native; on a GPU, its model and the CUDA
version (torch's own version is in every key already). A cluster of mixed machines so never
stores two machines' numbers under one key. The device is also part of a chapter's provenance. Seeded randomness stays on CPU generators and is moved to the device, so
the CPU path is exactly what it was before devices existed.
"""

from __future__ import annotations

import re

import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.precision import cpu_has_native_bf16

CHOICES = ("auto", "cpu", "cuda", "cuda:N")
_PATTERN = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def check_device_name(name: object) -> str:
    """`name` lower-cased if it is written as a device setting, else a one-line BnnlibError
    (syntax only: whether the GPU exists is `resolve_device`'s question)."""
    text = str(name).strip().lower() if isinstance(name, str) else None
    match = _PATTERN.match(text) if text else None
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise BnnlibError(f"device {name!r} is not a device setting; use one of: {', '.join(CHOICES)} "
                          "(e.g. --device cuda:0)")
    return text


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The concrete device of a setting: 'auto' is the first GPU torch sees, else the CPU; a GPU
    asked for that torch does not see is a BnnlibError naming the fix."""
    if isinstance(name, torch.device):
        name = str(name)
    text = check_device_name(name)
    if text == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise BnnlibError(f"device {name!r} was asked for, but torch sees no CUDA GPU here (torch "
                          f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use --device cpu "
                          "or auto, or install a CUDA build of torch on a machine with a GPU")
    index = int(text.split(":")[1]) if ":" in text else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise BnnlibError(f"device {name!r} does not exist: torch sees {count} GPU(s), cuda:0..cuda:{count - 1}; "
                          "pick one of those")
    return torch.device("cuda", index)


def device_environment(device: str | torch.device) -> dict[str, str]:
    """What a cache key records of the device: what decides the bits of a result computed there."""
    device = resolve_device(device)
    if device.type == "cuda":
        return {"device": str(device), "gpu": torch.cuda.get_device_name(device), "cuda": str(torch.version.cuda)}
    return {"device": "cpu", "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": "yes" if cpu_has_native_bf16() else "no"}


def device_label(device: str | torch.device) -> str:
    """The device as a provenance table shows it, e.g. 'cpu' or 'cuda:0 (NVIDIA H200)'."""
    environment = device_environment(device)
    return f"{environment['device']} ({environment['gpu']})" if "gpu" in environment else environment["device"]
