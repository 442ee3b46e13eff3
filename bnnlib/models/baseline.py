"""The talk's simplified NN Starter baseline: He initialisation, MSE, Adam lr 1e-2, batch 4096,
30 epochs, no early stopping, no regularisation.

It records per-epoch training loss and, when given an evaluation function, validation corr, and
keeps the weights of the epoch with the best validation corr: the talk's "best epoch" reference,
which is chosen by watching validation and so is not a fair score.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bnnlib.models.device import resolve_device
from bnnlib.models.network import Architecture, forward, he_init, unflatten
from bnnlib.models.training import batches, epoch_bar, seed_everything, step_plan


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 4096
    lr: float = 1e-2
    dropout: float = 0.0  # > 0 trains with dropout before every hidden layer's output (MC dropout)
    seed: int = 0
    steps: int | None = None  # the optimiser's budget in steps; None: `epochs` passes over the rows
    lr_final_ratio: float = 1.0  # the lr decays geometrically over the steps to lr * this (talk: constant)


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
    """The MLP with inverted dropout on every hidden activation (training and MC dropout).
    Masks are drawn by `generator` (a CPU one) and moved to the activations' device, so a seed
    gives the same masks on every device."""
    h = x
    last = len(layers) - 1
    for i, (weight, bias) in enumerate(layers):
        h = torch.addmm(bias, h, weight)
        if i < last:
            keep = torch.rand(h.shape, generator=generator).to(h.device) >= p
            h = torch.relu(h) * keep / (1.0 - p)
    return h


def train_mlp(x: torch.Tensor, y: torch.Tensor, arch: Architecture, config: TrainConfig = TrainConfig(),
              evaluate: Callable[[torch.Tensor], float] | None = None, progress: bool | None = None,
              device: str | torch.device = "cpu") -> PointFit:
    """Train by mini-batch MSE on y [n] (the main target); `evaluate(theta)` -> validation corr.
    The data move once to `device`; the weights come back on the CPU."""
    generator = seed_everything(config.seed)
    device = resolve_device(device)
    x, y = x.to(device), y.to(device)
    theta = torch.nn.Parameter(he_init(arch, generator).to(device))
    optimizer = torch.optim.Adam([theta], lr=config.lr, fused=True)
    target = y.reshape(-1, 1)
    plan = step_plan(x.shape[0], config.batch_size, config.epochs, config.steps)
    decay = config.lr_final_ratio ** (1.0 / plan.total_steps)
    history: dict[str, list] = {"step": [], "train_mse": [], "validation_corr": [], "epoch_seconds": []}
    best_score, best_theta, best_epoch = -float("inf"), None, None
    label = "MLP" if config.dropout == 0 else f"MLP dropout {config.dropout}"
    bar = epoch_bar(len(plan.checkpoints), label, progress)
    batch_iter = batches(x.shape[0], config.batch_size, plan.total_steps, generator)
    done = 0
    for epoch, mark in enumerate(plan.checkpoints):
        started, total, rows_seen = time.perf_counter(), 0.0, 0
        for rows in itertools.islice(batch_iter, mark - done):
            rows = rows.to(device)
            optimizer.zero_grad(set_to_none=True)
            layers = unflatten(theta, arch)
            batch = x.index_select(0, rows)
            if config.dropout > 0:
                out = forward_dropout(batch, layers, config.dropout, generator)
            else:
                out = forward(batch, layers)
            loss = torch.nn.functional.mse_loss(out, target.index_select(0, rows))
            loss.backward()
            optimizer.step()
            if decay != 1.0:
                optimizer.param_groups[0]["lr"] *= decay
            total += float(loss.detach()) * len(rows)
            rows_seen += len(rows)
        done = mark
        history["step"].append(done)
        history["train_mse"].append(total / rows_seen)
        history["epoch_seconds"].append(time.perf_counter() - started)
        if evaluate is not None:
            score = float(evaluate(theta.detach()))
            history["validation_corr"].append(score)
            if score > best_score:
                best_score, best_theta, best_epoch = score, theta.detach().cpu().clone(), epoch + 1
        bar.update()
        bar.set_postfix(mse=f"{total / rows_seen:.5f}")
    bar.close()
    return PointFit(theta.detach().cpu().clone(), arch, best_theta, best_epoch, config.dropout, history)
