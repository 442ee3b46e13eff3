"""The talk's simplified NN Starter baseline: He initialisation, MSE, Adam lr 1e-2, batch 4096,
30 epochs, no early stopping, no regularisation. With `heteroscedastic`, the network has a second
output for the noise and trains by the Gaussian negative log-likelihood (the heteroscedastic
likelihood's, with a learned sigma), so a deep ensemble or MC dropout can split its predictive
variance into epistemic and aleatoric parts as the BNN does.

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
from bnnlib.models.likelihoods import get_likelihood, masked_normal_log_prob
from bnnlib.models.network import Architecture, forward, he_init, unflatten
from bnnlib.models.precision import autocast, compute_dtype
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
    heteroscedastic: bool = False  # train output 0 as the mean, output 1 as the noise (Gaussian NLL), not MSE
    precision: str = "float32"  # the hidden layers' products (bnnlib.models.precision); the output layer stays float32


@dataclass
class PointFit:
    """A trained network: its final theta, the best-validation-epoch theta, and the history."""

    theta: torch.Tensor
    arch: Architecture
    best_theta: torch.Tensor | None = None
    best_epoch: int | None = None  # 1-based
    dropout: float = 0.0
    history: dict = field(default_factory=dict)
    sigma: torch.Tensor | None = None  # heteroscedastic: the learned noise scale (`Likelihood.noise_scales`)


def heteroscedastic_nll(out: torch.Tensor, y: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """The mean Gaussian negative log-likelihood per row of the heteroscedastic likelihood: the
    BNN's likelihood term at one theta; a missing (NaN) target adds nothing."""
    likelihood = get_likelihood("hetero")
    sigma = likelihood.noise_scales(out, torch.exp(log_sigma))
    return -masked_normal_log_prob(y, likelihood.means(out, out.new_zeros(0)), sigma).mean()


def forward_dropout(x: torch.Tensor, layers: list, p: float, generator: torch.Generator | None = None,
                    hidden_only: bool = False) -> torch.Tensor:
    """The MLP with inverted dropout on every hidden activation (training and MC dropout).
    Masks are drawn by `generator` (a CPU one) and moved to the activations' device, so a seed
    gives the same masks on every device. With `hidden_only`, `layers` are the hidden layers
    alone: ReLU and dropout follow the last of them too."""
    h = x
    last = len(layers) - 1 + int(hidden_only)
    for i, (weight, bias) in enumerate(layers):
        h = torch.addmm(bias, h, weight)
        if i < last:
            h = torch.relu(h) * dropout_mask_(torch.rand(h.shape, generator=generator).to(h.device), p)
    return h


def dropout_mask_(uniform: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout's multiplier from uniform draws, in place: 1 / (1 - p) where a unit is
    kept (draw >= p), else 0. Float throughout: multiplying by a bool mask cost ~8x more."""
    return uniform.ge_(p).mul_(1.0 / (1.0 - p))


def train_mlp(x: torch.Tensor, y: torch.Tensor, arch: Architecture, config: TrainConfig = TrainConfig(),
              evaluate: Callable[[torch.Tensor], float] | None = None, progress: bool | None = None,
              device: str | torch.device = "cpu") -> PointFit:
    """Train by mini-batch MSE on y [n] (the main target), or with `config.heteroscedastic` by
    the Gaussian NLL of a mean and a noise output (arch has two outputs) and a learned sigma that
    starts at y's std; `evaluate(theta)` -> validation corr. The data move once to `device`; the
    weights come back on the CPU."""
    generator = seed_everything(config.seed)
    device = resolve_device(device)
    x, y = x.to(device, compute_dtype(config.precision)), y.to(device)  # 5-level features are exact in bf16
    theta = torch.nn.Parameter(he_init(arch, generator).to(device))
    params = [theta]
    if config.heteroscedastic:
        log_sigma = torch.nn.Parameter(torch.log(torch.nan_to_num(y[~torch.isnan(y)].std(), nan=1.0)
                                                 .clamp(min=1e-3)).reshape(1))
        params.append(log_sigma)
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
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
            with autocast(config.precision, device.type):
                if config.dropout > 0:
                    hidden = forward_dropout(batch, layers[:-1], config.dropout, generator, hidden_only=True)
                else:
                    hidden = forward(batch, layers[:-1], last_relu=True)
            out = forward(hidden.float(), layers[-1:])
            if config.heteroscedastic:
                loss = heteroscedastic_nll(out, target.index_select(0, rows), log_sigma)
                mse = torch.nanmean((out[:, :1].detach() - target.index_select(0, rows)) ** 2)
            else:
                loss = mse = torch.nn.functional.mse_loss(out, target.index_select(0, rows))
            loss.backward()
            optimizer.step()
            if decay != 1.0:
                for group in optimizer.param_groups:
                    group["lr"] *= decay
            total += float(mse.detach()) * len(rows)
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
    sigma = torch.exp(log_sigma).detach().cpu().clone() if config.heteroscedastic else None
    return PointFit(theta.detach().cpu().clone(), arch, best_theta, best_epoch, config.dropout, history, sigma)
