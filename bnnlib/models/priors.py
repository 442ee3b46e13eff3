"""Priors over a network's flat parameter vector, as the talk compares them.

- flat: improper uniform on every weight (Pyro's ImproperUniform: log density 0, no sampling,
  so no analytic KL; the ELBO is estimated by Monte Carlo).
- normal: Normal(0, sqrt(2 / fan_in)), He initialisation read as a prior; its MAP is L2.
- laplace: Laplace with the same variance, scale sqrt(1 / fan_in); its MAP is L1.
"""

from __future__ import annotations

import torch
import pyro.distributions as dist
from torch.distributions import constraints

from bnnlib.errors import unknown_name

PRIORS = ("flat", "normal", "laplace")
"""Prior names the engine accepts; 'uniform' is accepted as the talk's name for 'flat'."""

_ALIASES = {"uniform": "flat", "improper": "flat", "gaussian": "normal"}


def canonical_prior(name: str) -> str:
    """The engine's name for a prior, accepting the talk's spelling ('uniform' is 'flat')."""
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in PRIORS:
        raise unknown_name("prior", name, PRIORS + tuple(_ALIASES))
    return key


def he_scale(fan_in: torch.Tensor) -> torch.Tensor:
    """He initialisation's standard deviation, sqrt(2 / fan_in)."""
    return torch.sqrt(2.0 / fan_in)


def make_prior(name: str, fan_in: torch.Tensor) -> dist.TorchDistribution:
    """The prior over theta (event shape [P]) for a vector of per-parameter fan-ins."""
    key = canonical_prior(name)
    if key == "flat":
        return dist.ImproperUniform(constraints.real, batch_shape=(), event_shape=fan_in.shape)
    std = he_scale(fan_in)
    if key == "normal":
        return dist.Normal(torch.zeros_like(std), std).to_event(1)
    # A Laplace(0, b) has variance 2 b^2; b = std / sqrt(2) matches the normal prior's variance.
    return dist.Laplace(torch.zeros_like(std), std / 2.0**0.5).to_event(1)
