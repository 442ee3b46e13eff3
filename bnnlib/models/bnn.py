"""The Bayesian MLP on Pyro: a network, a prior, a likelihood and a guide, each swappable.

Generative model: theta ~ prior (one flat site for every weight, bias and head parameter);
for each row, every target ~ Normal(mean_k(f_theta(x)), sigma_k), a missing target masked out.
Guide: mean-field Normal over theta. The noise scales sigma_k are point estimates learned with
the ELBO (type-II maximum likelihood). Inference: Pyro's Trace_ELBO, one particle, mini-batches
of rows whose likelihood Pyro scales by n_rows / batch_size through a subsampled plate, and
torch's Adam on the guide's and the noise's parameters.

One flat site rather than a PyroModule per layer keeps Pyro's per-step bookkeeping to two
sample sites, which is what brings an SVI epoch near a plain network's (see `bnnlib bench`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO

from bnnlib.models.likelihoods import Likelihood
from bnnlib.models.network import Architecture, fan_in_per_param, forward, he_init, unflatten
from bnnlib.models.priors import make_prior
from bnnlib.models.training import epoch_bar, minibatches, seed_everything


@dataclass(frozen=True)
class SVIConfig:
    """The talk's SVI settings by default: Adam lr 1e-3, batch 4096, 30 epochs, no early stop."""

    epochs: int = 30
    batch_size: int = 4096
    lr: float = 1e-3
    init_scale: float = 1e-2  # the guide's starting standard deviation for every parameter
    sigma: float | None = None  # a known noise scale, or None to learn one per target
    seed: int = 0
    lr_final_ratio: float = 1.0  # the lr decays geometrically per epoch to lr * this (talk: constant)


class BayesianMLP(torch.nn.Module):
    """Model and guide of one Bayesian MLP; its parameters are the guide's and the noise's."""

    def __init__(self, arch: Architecture, likelihood: Likelihood, prior: str, init_scale: float,
                 sigma_init: torch.Tensor, generator: torch.Generator, learn_sigma: bool = True):
        super().__init__()
        self.arch, self.likelihood, self.prior_name = arch, likelihood, prior
        head_fan_in = torch.ones(likelihood.n_head_params)
        self.register_buffer("fan_in", torch.cat([fan_in_per_param(arch), head_fan_in]))
        loc = torch.cat([he_init(arch, generator), likelihood.head_init()])
        self.loc = torch.nn.Parameter(loc)
        self.log_scale = torch.nn.Parameter(torch.full_like(loc, math.log(init_scale)))
        self.log_sigma = torch.nn.Parameter(torch.log(sigma_init), requires_grad=learn_sigma)
        self.register_buffer("sigma_index", torch.tensor(likelihood.sigma_index))
        self.prior = make_prior(prior, self.fan_in)

    @property
    def n_network_params(self) -> int:
        return self.arch.n_params

    def split(self, theta: torch.Tensor) -> tuple[list, torch.Tensor]:
        """Network layers and head parameters of theta ([..., P])."""
        p = self.n_network_params
        return unflatten(theta[..., :p], self.arch), theta[..., p:]

    def model(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, n_rows: int) -> None:
        theta = pyro.sample("theta", self.prior)
        layers, head = self.split(theta)
        mean = self.likelihood.means(forward(x, layers), head)
        sigma = torch.exp(self.log_sigma)[self.sigma_index]
        observed = ~torch.isnan(y)
        with pyro.plate("rows", n_rows, subsample=rows):
            pyro.sample(
                "y",
                dist.Normal(mean, sigma).mask(observed).to_event(1),
                obs=torch.where(observed, y, torch.zeros_like(y)),
            )

    def guide(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, n_rows: int) -> None:
        pyro.sample("theta", dist.Normal(self.loc, torch.exp(self.log_scale)).to_event(1))

    def posterior(self) -> "Posterior":
        return Posterior(
            loc=self.loc.detach().clone(),
            scale=torch.exp(self.log_scale).detach().clone(),
            sigma=torch.exp(self.log_sigma).detach().clone(),
            arch=self.arch,
            likelihood=self.likelihood,
        )


@dataclass
class Posterior:
    """A fitted mean-field posterior: what the cache stores and the predictive draws from."""

    loc: torch.Tensor
    scale: torch.Tensor
    sigma: torch.Tensor
    arch: Architecture
    likelihood: Likelihood
    history: dict = field(default_factory=dict)

    def sample(self, n_draws: int, generator: torch.Generator) -> torch.Tensor:
        """n_draws thetas [n_draws, P]."""
        eps = torch.randn(n_draws, self.loc.numel(), generator=generator)
        return self.loc + self.scale * eps

    def head(self, name: str) -> tuple[float, float]:
        """Posterior mean and std of a head parameter of theta (e.g. h4's 'beta')."""
        if self.likelihood.name != "h4" or name != "beta":
            raise KeyError(f"{self.likelihood.name} has no head parameter {name!r}")
        i = self.arch.n_params
        return float(self.loc[i]), float(self.scale[i])


def fit_bnn(x: torch.Tensor, y: torch.Tensor, arch: Architecture, likelihood: Likelihood, prior: str,
            config: SVIConfig = SVIConfig(), progress: bool | None = None) -> Posterior:
    """Fit the mean-field posterior by SVI; x [n, features], y [n, targets] (NaN = missing)."""
    generator = seed_everything(config.seed)
    if config.sigma is None:
        sigma_init = torch.nan_to_num(torch.nanmean((y - torch.nanmean(y, 0)) ** 2, 0).sqrt(), nan=1.0)
        sigma_init = sigma_init[: likelihood.n_sigmas].clamp(min=1e-3)
        if sigma_init.numel() < likelihood.n_sigmas:  # h1: one sigma for all targets
            sigma_init = sigma_init[:1].expand(likelihood.n_sigmas).clone()
    else:
        sigma_init = torch.full((likelihood.n_sigmas,), float(config.sigma))
    net = BayesianMLP(arch, likelihood, prior, config.init_scale, sigma_init, generator,
                      learn_sigma=config.sigma is None)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=config.lr)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, config.lr_final_ratio ** (1.0 / config.epochs))
    elbo = Trace_ELBO(num_particles=1)
    n_rows = x.shape[0]
    history = {"elbo_per_row": [], "sigma": [], "epoch_seconds": []}
    bar = epoch_bar(config.epochs, f"BNN {prior}/{likelihood.name}", progress)
    for _ in bar:
        started, total = time.perf_counter(), 0.0
        for rows in minibatches(n_rows, config.batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            loss = elbo.differentiable_loss(net.model, net.guide, x[rows], y[rows], rows, n_rows)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows) / n_rows
        decay.step()
        history["elbo_per_row"].append(-total / n_rows)
        history["sigma"].append(torch.exp(net.log_sigma).tolist())
        history["epoch_seconds"].append(time.perf_counter() - started)
        bar.set_postfix(elbo_per_row=f"{-total / n_rows:.4f}")
    posterior = net.posterior()
    posterior.history = history
    return posterior
