"""What every fit shares: seeding, mini-batches, progress bars."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's, numpy's and Python's global generators (Pyro samples from torch's) and
    return a private generator for initialisation and batch order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def minibatches(n_rows: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Row indices of one epoch: a fresh permutation cut into batches (the last may be short)."""
    order = torch.randperm(n_rows, generator=generator)
    yield from torch.split(order, batch_size)


def epoch_bar(epochs: int, description: str, progress: bool | None = None) -> tqdm:
    """A bar over epochs; `progress=None` shows it only on a terminal."""
    return tqdm(range(epochs), desc=description, unit="epoch", disable=None if progress is None else not progress,
                leave=False, dynamic_ncols=True)


def as_tensor(array, device: str | torch.device = "cpu") -> torch.Tensor:
    """float32 tensor view of an array (no copy when it is already float32 on the CPU)."""
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32), device=device)
