"""Exact answers for the linear model, to check SVI against.

With no hidden layer, the Normal prior and Gaussian noise of known scale, the model is Bayesian
linear regression: the posterior over theta (the weights, then the bias, as theta is laid out) is
Normal with precision Z^T Z / sigma^2 + diag(1 / prior_std^2), Z = [x, 1]. The mean-field Normal
guide's ELBO optimum is then also closed-form: its means are the exact posterior mean and its
variances are 1 / diag(precision). So a fitted linear `Posterior` can be scored against both:
its means in units of the exact posterior std, its stds as a ratio to the mean-field optimum
(not to the exact marginal stds, which mean-field cannot reach: it underestimates them).

Everything is float64; Z^T Z is accumulated in blocks of rows so 2.4M float32 rows x 38 features
never exist as one float64 copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.network import fan_in_per_param
from bnnlib.models.priors import he_scale

BLOCK_ROWS = 1 << 16
"""Rows converted to float64 at a time (2^16 x 38 features: 20 MB)."""


def _array(a):
    """A tensor on the CPU, or else a numpy view of an array or DataFrame (no copy of either)."""
    return a.detach().cpu() if isinstance(a, torch.Tensor) else np.asarray(a)


def _float64(block) -> torch.Tensor:
    """A float64 tensor copy of rows of a tensor or an array (a read-only array too)."""
    if isinstance(block, torch.Tensor):
        return block.to(torch.float64, copy=True)
    return torch.from_numpy(np.array(block, dtype=np.float64))


def _sufficient_stats(x, y, block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Z^T Z [d+1, d+1] and Z^T y [d+1] for Z = [x, 1], in float64, over the rows whose target
    is observed (a NaN target is masked out by the model, so it carries no information here).
    Torch's products, not numpy's: on a busy machine numpy's threaded BLAS ran 5-20x slower."""
    x, y = _array(x), _array(y)
    if y.ndim == 2:
        if y.shape[1] != 1:
            raise BnnlibError(f"the exact linear posterior takes one target, got {y.shape[1]} columns")
        y = y[:, 0]
    if x.ndim != 2 or len(x) != len(y):
        raise BnnlibError(f"x must be [n, features] and y [n], got {tuple(x.shape)} and {tuple(y.shape)}")
    d = x.shape[1]
    ztz = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    zty = torch.zeros(d + 1, dtype=torch.float64)
    for start in range(0, len(x), block_rows):
        xb = _float64(x[start : start + block_rows])  # one block in float64 at a time
        yb = _float64(y[start : start + block_rows])
        missing = torch.isnan(yb)
        if missing.any():  # a zero row adds nothing to any sum below
            xb[missing], yb[missing] = 0.0, 0.0
        col = xb.sum(0)
        ztz[:d, :d] += xb.T @ xb
        ztz[:d, d] += col
        ztz[d, :d] += col
        ztz[d, d] += len(yb) - int(missing.sum())
        zty[:d] += xb.T @ yb
        zty[d] += yb.sum()
    return ztz.numpy(), zty.numpy()


def _he_prior_std(arch) -> np.ndarray:
    """The Normal prior's std of every parameter of a network (He's, sqrt(2 / fan_in)), float64."""
    return he_scale(fan_in_per_param(arch).double()).numpy()


def _precision(ztz: np.ndarray, prior_std, sigma: float) -> np.ndarray:
    prior_var = np.broadcast_to(np.asarray(prior_std, dtype=np.float64) ** 2, (len(ztz),))
    return ztz / float(sigma) ** 2 + np.diag(1.0 / prior_var)


def _exact(ztz, zty, prior_std, sigma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = _precision(ztz, prior_std, sigma)
    cov = np.linalg.inv(precision)
    cov = (cov + cov.T) / 2
    mean = np.linalg.solve(precision, zty / float(sigma) ** 2)
    return mean, cov, precision


@dataclass(frozen=True)
class LinearGaussianPosterior:
    """The exact posterior of Bayesian linear regression over theta = (weights, bias): Normal with
    this mean and covariance; `precision` is the covariance's inverse, computed directly."""

    mean: np.ndarray  # [d+1]
    cov: np.ndarray  # [d+1, d+1]
    precision: np.ndarray  # [d+1, d+1]

    @property
    def std(self) -> np.ndarray:
        """The exact marginal stds."""
        return np.sqrt(np.diag(self.cov))

    @property
    def meanfield_std(self) -> np.ndarray:
        """The stds of the ELBO's optimum over fully factorised Normal guides (whose means are the
        exact posterior mean): 1 / sqrt(diag(precision)), never above the exact marginal std."""
        return 1.0 / np.sqrt(np.diag(self.precision))


def linear_gaussian_posterior(x, y, prior_std, sigma: float,
                              block_rows: int = BLOCK_ROWS) -> LinearGaussianPosterior:
    """Exact posterior of y ~ Normal(x w + b, sigma), theta = (w, b) ~ Normal(0, prior_std) (a
    scalar or one std per entry of theta), in theta's order: the d weights, then the bias. Rows
    with a NaN target are left out, as the model masks them."""
    return LinearGaussianPosterior(*_exact(*_sufficient_stats(x, y, block_rows), prior_std, sigma))


def exact_check(posterior, x, y, feature_names=None, block_rows: int = BLOCK_ROWS) -> pd.DataFrame:
    """One row per parameter of a linear, one-target, Normal-prior `Posterior`: the exact posterior
    mean and std, the mean-field optimum's std, and what SVI learned.

    The exact answers condition on the posterior's own noise scale `sigma` (SVI learns it as a
    point estimate with the ELBO, so the guide is optimal for that sigma) and on the Normal
    prior's He std sqrt(2 / fan_in); the posterior must have been fitted with the Normal prior.
    """
    arch, likelihood = posterior.arch, posterior.likelihood
    if arch.hidden or arch.n_outputs != 1 or likelihood.n_head_params or likelihood.n_sigmas != 1:
        raise BnnlibError("the exact check needs a linear model (hidden=()) with one output and the "
                          f"'single' likelihood, got hidden={list(arch.hidden)}, likelihood {likelihood.name!r}")
    d = arch.n_inputs
    if feature_names is None and hasattr(x, "columns"):  # a DataFrame names its own features
        feature_names = x.columns
    names = [str(i) for i in range(d)] if feature_names is None else [str(f) for f in feature_names]
    if len(names) != d:
        raise BnnlibError(f"{len(names)} feature names for a model with {d} inputs")
    sigma = float(posterior.sigma.reshape(-1)[0])
    prior_std = _he_prior_std(arch)
    exact = linear_gaussian_posterior(x, y, prior_std, sigma, block_rows)
    return pd.DataFrame({
        "parameter": [f"w[{n}]" for n in names] + ["bias"],
        "exact_mean": exact.mean,
        "exact_std": exact.std,
        "meanfield_std": exact.meanfield_std,
        "svi_mean": posterior.loc[: d + 1].double().numpy(),
        "svi_std": posterior.scale[: d + 1].double().numpy(),
    })


def exact_check_summary(table: pd.DataFrame) -> dict[str, float]:
    """The worst parameter of an `exact_check` table: its SVI mean's distance from the exact mean
    in exact posterior stds, and its SVI std's relative distance from the mean-field optimum."""
    return {
        "max_mean_error_in_std": float(((table.svi_mean - table.exact_mean).abs() / table.exact_std).max()),
        "max_std_ratio_error": float((table.svi_std / table.meanfield_std - 1.0).abs().max()),
    }


def _target_stats(y) -> tuple[int, float, float]:
    """The number of observed targets, their sum and their sum of squares (float64)."""
    y = _array(y)
    y = np.asarray(y[:, 0] if y.ndim == 2 else y, dtype=np.float64)
    y = y[~np.isnan(y)]
    return len(y), float(y.sum()), float(y @ y)


def _evidence_and_gap(ztz, zty, n: int, squares: float, prior_std, sigma: float) -> tuple[float, float]:
    """log p(y) of the Bayesian linear model at noise scale `sigma`, and the KL from its mean-field
    optimum to the exact posterior, 1/2 (sum log diag(A) - log det A), A the posterior precision."""
    mean, _, precision = _exact(ztz, zty, prior_std, sigma)
    s2 = float(sigma) ** 2
    prior_var = np.broadcast_to(np.asarray(prior_std, dtype=np.float64) ** 2, (len(ztz),))
    _, logdet_a = np.linalg.slogdet(precision)
    log_evidence = (-0.5 * n * np.log(2 * np.pi * s2) - 0.5 * (squares / s2 - mean @ precision @ mean)
                    - 0.5 * np.log(prior_var).sum() - 0.5 * logdet_a)
    return float(log_evidence), float(0.5 * (np.log(np.diag(precision)).sum() - logdet_a))


def elbo_references(x, y, prior_std, sigma: float | None = None, block_rows: int = BLOCK_ROWS) -> dict[str, float]:
    """Exact yardsticks, per row, for the ELBO per row that a fit's trace reports:

    - ``log_evidence``: log p(y) of the Bayesian linear model (Normal prior of std `prior_std`),
      the most any guide of that model can reach;
    - ``meanfield_elbo``: the ELBO of its mean-field optimum (log p(y) minus the KL from that guide
      to the exact posterior);
    - ``constant_loglik``: the log-likelihood of the best constant prediction (the targets' own
      mean and variance) with no prior cost: no model that ignores its inputs does better;
    - ``sigma``: the noise scale of the first two: `sigma`, or by default the one that maximises
      the log evidence (type-II maximum likelihood), as the constant's variance is its own best.

    A network whose ELBO per row ends near ``constant_loglik`` explains nothing beyond the
    targets' mean; the linear model's margin over it is what the inputs are worth in nats."""
    from scipy.optimize import minimize_scalar

    ztz, zty = _sufficient_stats(x, y, block_rows)
    n, total, squares = _target_stats(y)
    variance = squares / n - (total / n) ** 2
    if sigma is None:  # the evidence's maximum over log sigma, bracketed around the targets' own std
        best = minimize_scalar(lambda log_s: -_evidence_and_gap(ztz, zty, n, squares, prior_std, np.exp(log_s))[0],
                               bounds=(np.log(np.sqrt(variance)) - 3.0, np.log(np.sqrt(variance)) + 1.0),
                               method="bounded", options={"xatol": 1e-8})
        sigma = float(np.exp(best.x))
    log_evidence, gap = _evidence_and_gap(ztz, zty, n, squares, prior_std, sigma)
    return {"log_evidence": log_evidence / n, "meanfield_elbo": (log_evidence - gap) / n,
            "constant_loglik": float(-0.5 * np.log(2 * np.pi * variance) - 0.5), "sigma": float(sigma)}


def posterior_elbo_references(posterior, x, y, block_rows: int = BLOCK_ROWS) -> dict[str, float]:
    """`elbo_references` for the linear model a fitted linear `Posterior` belongs to (its He
    prior stds), with the noise scale at the evidence's maximum, not SVI's: the yardsticks
    must not depend on how far a fit got."""
    arch = posterior.arch
    if arch.hidden or arch.n_outputs != 1:
        raise BnnlibError(f"the ELBO's exact yardsticks need the linear model, got hidden={list(arch.hidden)}")
    prior_std = _he_prior_std(arch)
    return elbo_references(x, y, prior_std, None, block_rows)
