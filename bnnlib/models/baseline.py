"""The talk's simplified NN Starter baseline: He initialisation, MSE, Adam lr 1e-2, batch 4096,
30 epochs, no early stopping, no regularisation.

It records per-epoch training loss and, when given an evaluation function, validation corr, and
keeps the weights of the epoch with the best validation corr: the talk's "best epoch" reference,
which is chosen by watching validation and so is not a fair score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bnnlib.models.network import Architecture, forward, he_init, unflatten
from bnnlib.models.training import epoch_bar, minibatches, seed_everything


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 4096
    lr: float = 1e-2
    dropout: float = 0.0  # > 0 trains with dropout before every hidden layer's output (MC dropout)
    seed: int = 0


@dataclass
class PointFit:
    """A trained network: its final theta, the best-validation-epoch theta, and the history."""

    theta: torch.Tensor
    arch: Architecture
    best_theta: torch.Tensor | None = None
    best_epoch: int | None = None  # 1-based
    dropout: float = 0.0
    history: dict = field(default_factory=dict)


def forward_dropout(x: torch.Tensor, layers: list, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The MLP with inverted dropout on every hidden activation (training and MC dropout)."""
    h = x
    last = len(layers) - 1
    for i, (weight, bias) in enumerate(layers):
        h = torch.addmm(bias, h, weight)
        if i < last:
            keep = torch.rand(h.shape, generator=generator) >= p
            h = torch.relu(h) * keep / (1.0 - p)
    return h


def train_mlp(x: torch.Tensor, y: torch.Tensor, arch: Architecture, config: TrainConfig = TrainConfig(),
              evaluate: Callable[[torch.Tensor], float] | None = None, progress: bool | None = None) -> PointFit:
    """Train by mini-batch MSE on y [n] (the main target); `evaluate(theta)` -> validation corr."""
    generator = seed_everything(config.seed)
    theta = torch.nn.Parameter(he_init(arch, generator))
    optimizer = torch.optim.Adam([theta], lr=config.lr)
    target = y.reshape(-1, 1)
    history: dict[str, list] = {"train_mse": [], "validation_corr": [], "epoch_seconds": []}
    best_score, best_theta, best_epoch = -float("inf"), None, None
    label = "MLP" if config.dropout == 0 else f"MLP dropout {config.dropout}"
    bar = epoch_bar(config.epochs, label, progress)
    for epoch in bar:
        started, total = time.perf_counter(), 0.0
        for rows in minibatches(x.shape[0], config.batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            layers = unflatten(theta, arch)
            if config.dropout > 0:
                out = forward_dropout(x[rows], layers, config.dropout, generator)
            else:
                out = forward(x[rows], layers)
            loss = torch.nn.functional.mse_loss(out, target[rows])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        history["train_mse"].append(total / x.shape[0])
        history["epoch_seconds"].append(time.perf_counter() - started)
        if evaluate is not None:
            score = float(evaluate(theta.detach()))
            history["validation_corr"].append(score)
            if score > best_score:
                best_score, best_theta, best_epoch = score, theta.detach().clone(), epoch + 1
        bar.set_postfix(mse=f"{total / x.shape[0]:.5f}")
    return PointFit(theta.detach().clone(), arch, best_theta, best_epoch, config.dropout, history)
