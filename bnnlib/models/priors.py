"""Priors over a network's flat parameter vector, as the talk compares them.

- flat: improper uniform on every weight (Pyro's ImproperUniform: log density 0, no sampling,
  so no analytic KL; the ELBO is estimated by Monte Carlo).
- normal: Normal(0, sqrt(2 / fan_in)), He initialisation read as a prior; its MAP is L2.
- laplace: Laplace with the same variance, scale sqrt(1 / fan_in); its MAP is L1.
- wide: Normal(0, WIDE * sqrt(2 / fan_in)), a proper prior as vague as a prior can be while a
  posterior still exists: the stand-in for the flat prior that keeps its comparison meaningful
  (under flat, the scales of weights the data do not pin down grow without bound; under wide,
  they stop at WIDE times He's std).
"""

from __future__ import annotations

import math

import torch
import pyro.distributions as dist
from torch.distributions import constraints

from bnnlib.errors import unknown_name

PRIORS = ("flat", "normal", "laplace", "wide")
"""Prior names the engine accepts; 'uniform' is accepted as the talk's name for 'flat'."""

_ALIASES = {"uniform": "flat", "improper": "flat", "gaussian": "normal"}

WIDE = 10.0
"""The wide prior's std in units of He's."""


def canonical_prior(name: str) -> str:
    """The engine's name for a prior, accepting the talk's spelling ('uniform' is 'flat')."""
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in PRIORS:
        raise unknown_name("prior", name, PRIORS + tuple(_ALIASES))
    return key


def he_scale(fan_in: torch.Tensor) -> torch.Tensor:
    """He initialisation's standard deviation, sqrt(2 / fan_in)."""
    return torch.sqrt(2.0 / fan_in)


def prior_std(name: str, fan_in: torch.Tensor) -> torch.Tensor | None:
    """Each parameter's prior std (None under the flat prior, which has none)."""
    key = canonical_prior(name)
    if key == "flat":
        return None
    return he_scale(fan_in) * (WIDE if key == "wide" else 1.0)


def has_std(name: str) -> bool:
    """Whether the prior is proper, with a std a guide can start from (all but flat)."""
    return canonical_prior(name) != "flat"


def make_prior(name: str, fan_in: torch.Tensor) -> dist.TorchDistribution:
    """The prior over theta (event shape [P]) for a vector of per-parameter fan-ins."""
    key = canonical_prior(name)
    if key == "flat":
        return dist.ImproperUniform(constraints.real, batch_shape=(), event_shape=fan_in.shape)
    std = prior_std(key, fan_in)
    if key in ("normal", "wide"):
        return dist.Normal(torch.zeros_like(std), std).to_event(1)
    # A Laplace(0, b) has variance 2 b^2; b = std / sqrt(2) matches the normal prior's variance.
    return dist.Laplace(torch.zeros_like(std), std / 2.0**0.5).to_event(1)


def expected_log_ratio(name: str, fan_in: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E_q[log q(theta) - log p(theta)] for the mean-field Normal q(loc, scale), in closed form:
    the KL divergence for the Normal and Laplace priors, and minus q's entropy for the flat prior
    (whose log density Pyro's ImproperUniform sets to 0). The same expectation as the Monte Carlo
    term of Trace_ELBO, without its sampling noise."""
    key = canonical_prior(name)
    log_q = -0.5 * math.log(2 * math.pi * math.e) - torch.log(scale)  # minus the entropy, per parameter
    if key == "flat":
        return log_q.sum()
    std = prior_std(key, fan_in)
    if key in ("normal", "wide"):
        log_p = -0.5 * math.log(2 * math.pi) - torch.log(std) - (scale**2 + loc**2) / (2 * std**2)
        return (log_q - log_p).sum()
    b = std / math.sqrt(2.0)
    z = loc / scale
    mean_abs = scale * math.sqrt(2 / math.pi) * torch.exp(-0.5 * z * z) + loc * torch.erf(z / math.sqrt(2.0))
    log_p = -torch.log(2 * b) - mean_abs / b
    return (log_q - log_p).sum()
