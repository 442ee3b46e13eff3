"""Likelihoods: how the network's outputs become the means of one or several targets.

The talk's study 3 compares generative models of several targets; each is a `Likelihood` here,
with the network unchanged. Every model is scored on the main target's mean.

- single: y_main ~ Normal(f(x), sigma).
- h1: main and the two auxiliary targets share one mean and one noise scale.
- h2: main and the two auxiliary targets are affine maps a_k z + c_k of one shared latent z = f(x),
  each with its own noise (what the NN Starter's multi-output layer amounts to).
- h3: as h2, for the 20-day and the 60-day main target.
- h4: the network gives two outputs (u, v); the 60-day mean is v and the 20-day mean is u + beta v,
  so the posterior of beta says how much the 60-day mean explains the 20-day mean.
- hetero: y_main ~ Normal(f_0(x), sigma * r(f_1(x))): a second output sets the noise per row
  (heteroscedastic), so the predictive variance splits into an epistemic and an aleatoric part.

The head parameters (a, c, beta) are Bayesian: they sit in theta after the network's and get the
same prior, with fan-in 1. A missing (NaN) target masks only its own term, not the row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bnnlib.errors import unknown_name


@dataclass(frozen=True)
class Likelihood:
    """A generative model of targets given the network's outputs."""

    name: str
    targets: tuple[str, ...]  # target roles: main, aux0, aux1, long
    n_outputs: int  # network outputs it needs
    n_head_params: int  # Bayesian parameters of its own, appended to theta
    sigma_index: tuple[int, ...]  # which noise scale each target uses
    description: str
    heteroscedastic: bool = False  # the last output sets the main target's noise per row (`noise_scales`)

    @property
    def n_sigmas(self) -> int:
        return max(self.sigma_index) + 1

    def head_init(self) -> torch.Tensor:
        """Starting values of the head parameters: the identity map (a = 1, c = 0, beta = 0)."""
        if self.name in ("h2", "h3"):
            k = len(self.targets)
            return torch.cat([torch.ones(k), torch.zeros(k)])
        return torch.zeros(self.n_head_params)

    def means(self, out: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """Means of every target: out [..., n, n_outputs], head [..., H] -> [..., n, T]."""
        if self.name == "single":
            return out
        if self.heteroscedastic:
            return out[..., :1]
        if self.name == "h1":
            return out.expand(*out.shape[:-1], len(self.targets))
        if self.name in ("h2", "h3"):
            k = len(self.targets)
            scale, shift = head[..., :k], head[..., k:]
            return out * scale.unsqueeze(-2) + shift.unsqueeze(-2)
        # h4: the 60-day mean v explains the 20-day mean through beta.
        u, v = out[..., 0], out[..., 1]
        beta = head[..., 0:1]
        return torch.stack([u + beta * v, v], dim=-1)

    def main_weights(self, head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The main target's mean as an affine map of the outputs, out @ a + c: a [..., n_outputs],
        c [...]. Being affine, it folds into the network's last layer, which then has one column
        (a product with two columns ran ~9x slower than with one on the CPU)."""
        one, zero = head.new_ones(*head.shape[:-1], 1), head.new_zeros(head.shape[:-1])
        if self.name in ("single", "h1"):
            return one, zero
        if self.heteroscedastic:  # the mean is output 0; output 1 is the noise
            return torch.cat([one, zero.unsqueeze(-1)], dim=-1), zero
        if self.name in ("h2", "h3"):
            return head[..., 0:1], head[..., len(self.targets)]
        return torch.cat([one, head[..., 0:1]], dim=-1), zero  # h4: u + beta v

    def main_mean(self, out: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """The mean of the main target, [..., n]: the prediction every model is scored on."""
        a, c = self.main_weights(head)
        return (out * a.unsqueeze(-2)).sum(-1) + c.unsqueeze(-1)

    def noise_scales(self, out: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Each target's noise std: out [..., n, n_outputs], sigma [T] the learned scales (one per
        target, indexed by `sigma_index`) -> [..., n, T], or [T] (broadcastable) when the noise does
        not depend on x. A heteroscedastic likelihood scales sigma by `noise_ratio` of its last output."""
        if not self.heteroscedastic:
            return sigma
        return sigma * noise_ratio(out[..., -1:])


NOISE_FLOOR = 0.01
"""The smallest noise a heteroscedastic likelihood allows, as a share of its learned sigma."""

_UNIT_SHIFT = math.log(math.expm1(1.0 - NOISE_FLOOR))  # softplus(0 + shift) + floor = 1


def noise_ratio(output: torch.Tensor) -> torch.Tensor:
    """sigma(x) / sigma: softplus(output + shift) + NOISE_FLOOR, equal to 1 at output 0.

    Why this form: the log density has -log sigma(x) and z^2 / sigma(x)^2. exp(output) overflows
    for large outputs and makes 1 / sigma^2 explode for very negative ones (a few rows would
    then carry a mini-batch's gradient); softplus grows only linearly, and the floor bounds
    1 / sigma(x)^2 by 1 / (0.01 sigma)^2. Scaling a learned sigma (started at the target's std,
    as the homoscedastic fits start) rather than using softplus(output) alone puts the prior's
    centre, output 0, at "the noise of the homoscedastic model", not at softplus(0) = 0.69 (three
    times Numerai's target std), and keeps the learned sigma's trace meaningful."""
    return torch.nn.functional.softplus(output + _UNIT_SHIFT) + NOISE_FLOOR


LIKELIHOODS = {
    "single": Likelihood("single", ("main",), 1, 0, (0,), "one target: y ~ Normal(f(x), sigma)"),
    "h1": Likelihood(
        "h1", ("main", "aux0", "aux1"), 1, 0, (0, 0, 0),
        "H1: the three 20-day targets are drawn from one distribution (one mean, one sigma)",
    ),
    "h2": Likelihood(
        "h2", ("main", "aux0", "aux1"), 1, 6, (0, 1, 2),
        "H2: each 20-day target's mean is an affine map of one shared latent",
    ),
    "h3": Likelihood(
        "h3", ("main", "long"), 1, 4, (0, 1),
        "H3: the 20-day and 60-day means are affine maps of one shared latent",
    ),
    "h4": Likelihood(
        "h4", ("main", "long"), 2, 1, (0, 1),
        "H4: the 60-day mean is an explanatory variable of the 20-day mean (weight beta)",
    ),
    "hetero": Likelihood(
        "hetero", ("main",), 2, 0, (0,),
        "heteroscedastic: y ~ Normal(f_0(x), sigma r(f_1(x))), the noise depends on x", heteroscedastic=True,
    ),
}
HYPOTHESES = tuple(LIKELIHOODS)


def get_likelihood(name: str) -> Likelihood:
    key = str(name).lower()
    if key not in LIKELIHOODS:
        raise unknown_name("hypothesis", name, HYPOTHESES)
    return LIKELIHOODS[key]


def masked_normal_log_prob(y: torch.Tensor, mean: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Normal log density per row, summed over targets, with NaN targets contributing 0; sigma is
    one std per target ([T]) or one per row and target ([n, T], heteroscedastic)."""
    observed = ~torch.isnan(y)
    z = (torch.where(observed, y, mean) - mean) / sigma
    log_prob = -0.5 * z * z - torch.log(sigma) - 0.9189385332046727  # log sqrt(2 pi)
    return (log_prob * observed).sum(-1)
