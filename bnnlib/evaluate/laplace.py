"""Laplace posteriors of a trained point network, with prior precision and noise set by evidence.

The mean-field BNN asks which Normal guide maximises the ELBO; a Laplace posterior asks what the
data say around the network that training found (Daxberger et al. 2021, "Laplace Redux"). Two
subsets of the weights, both under a Gaussian likelihood y ~ Normal(f(x), sigma) and an isotropic
prior theta ~ Normal(0, 1 / delta):

- ``last_layer``: the hidden layers stay at their trained values and the last layer (its weights
  and bias) is Bayesian. The model is then linear in those parameters with features
  phi(x) = [h(x), 1], so its posterior is exactly Gaussian (conjugate Bayesian linear
  regression, full covariance) and its log marginal likelihood is exact: nothing is
  approximated given the features. The posterior mean is the last layer's MAP under the fitted
  prior, solved in closed form; laplace-torch instead keeps the trained weights as the mode, which
  is the MAP only when training used that prior's weight decay.
- ``all``: every weight and bias, around the trained theta, with the Gauss-Newton (GGN)
  curvature in laplace-torch's Kronecker-factored form (KFAC, "expand", weight and bias as
  separate blocks): a layer's weight block is (sum_n a a^T) kron (sum_n g g^T) / N, a the layer's
  input and g d f / d (its pre-activation), and its bias block sum_n g g^T (exact).

Prior precision delta and noise sigma maximise the log marginal likelihood (type-II maximum
likelihood, laplace-torch's ``marglik``), here by L-BFGS over (log delta, log sigma) on closed
forms: one pass over the training rows gives every sufficient statistic, after which the evidence
costs a few eigenvalues per evaluation. The log marginal likelihood is in nats, summed over the
training rows (`Laplace.extras` also gives it per row, for the ELBO ladder).

Why not laplace-torch itself: it installs beside torch 2.13 but does not import here. Its hard
dependency torchvision exists on the package index only as builds linked to CUDA torch
(torchvision 0.28.0 asks for libtorch_cuda.so), which fail to import beside the CPU torch this
project pins, and torchmetrics, which laplace-torch imports, imports torchvision whenever it is
installed. So this module computes the same quantities itself, and adds no dependency. Checked
once against laplace-torch 0.3 (torchvision removed by hand so that it imports), on a 6-5-4-1
network, 300 rows, float64, delta 2.5, sigma 0.7: KronLaplace's (subset "all", hessian "kron")
log marginal likelihood and `kron_log_evidence` agree to 1e-13 nats (-598.80466); its last-layer
full-Hessian Laplace, with the last layer at the conjugate mean, and `last_layer_log_evidence`
to 2e-7 (-470.89368), the posterior covariances to 4e-8 of their size. tests/test_laplace.py
checks everything against exact answers computed independently.

Predictive: scored from `spec.draws` parameter samples (`ThetaDraws`), by the same per-draw and
ensemble code as every method. For the last layer the GLM (linearised) predictive would be exact,
since the network is linear in those parameters; the sampled predictive's mean converges to it.
For all weights, the sampled network predictive is what is scored, not the GLM predictive.

A chapter names it as (one training, one curvature pass: both subsets share the fit)::

    ModelSpec("laplace_last_layer", method="laplace", laplace_subset="last_layer", draws=1000,
              epochs=30, lr=1e-2, ...)   # the baseline's training fields
    ModelSpec("laplace_all", method="laplace", laplace_subset="all", draws=1000, ...)

and reads `result.extras["log_marginal_likelihood"]` (and ``..._per_row``), ``prior_precision``,
``sigma_noise`` and ``subset``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.models.network import Architecture, unflatten

SUBSETS = ("last_layer", "all")
"""The weights a Laplace posterior covers: the last layer (exact, full covariance) or all of them (KFAC)."""

BLOCK_ROWS = 1 << 14
"""Training rows per block of the curvature pass: 2^14 rows x 128 units in float64 is 16 MB, so
memory is bounded whatever the number of rows (no n x P Jacobian ever exists)."""

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class Curvature:
    """What one pass over the training rows leaves, in float64: enough for every evidence below.

    n: rows with an observed target; sse: their sum of squared residuals at the trained theta;
    phi_phi, phi_y, y_y: Phi^T Phi, Phi^T y and y^T y for the last layer's features
    Phi = [h(x), 1]; input_cov[l], grad_cov[l]: sum_n a a^T and sum_n g g^T of layer l."""

    n: int
    sse: float
    phi_phi: torch.Tensor
    phi_y: torch.Tensor
    y_y: float
    input_cov: list[torch.Tensor]
    grad_cov: list[torch.Tensor]


def check_network(arch: Architecture) -> None:
    """A Laplace posterior here is for a one-output network with the Gaussian likelihood."""
    if arch.n_outputs != 1:
        raise BnnlibError(f"a Laplace posterior needs a network with one output (the 'single' hypothesis), "
                          f"got {arch.n_outputs}")


def curvature(theta: torch.Tensor, arch: Architecture, x: torch.Tensor, y: torch.Tensor,
              block_rows: int = BLOCK_ROWS, device: str | torch.device = "cpu") -> Curvature:
    """The sufficient statistics of both Laplace posteriors, in one pass over blocks of rows.

    Each block runs forward in float64 (the last layer's posterior is checked against an exact
    float64 answer, and the pass costs a few forward passes, small beside training), then
    backpropagates d f / d s by hand through the ReLUs. Rows with a NaN target are left out, as
    the likelihood masks them."""
    check_network(arch)
    y = y.reshape(len(y), -1)[:, 0]
    if len(x) != len(y):
        raise BnnlibError(f"x has {len(x)} rows and y {len(y)}")
    layers = [(w.to(device, torch.float64), b.to(device, torch.float64)) for w, b in unflatten(theta, arch)]
    width = arch.layers[-1][0]
    stats = {
        "phi_phi": torch.zeros(width + 1, width + 1, dtype=torch.float64, device=device),
        "phi_y": torch.zeros(width + 1, dtype=torch.float64, device=device),
        "input_cov": [torch.zeros(i, i, dtype=torch.float64, device=device) for i, _ in arch.layers],
        "grad_cov": [torch.zeros(o, o, dtype=torch.float64, device=device) for _, o in arch.layers],
    }
    n, sse, y_y = 0, 0.0, 0.0
    for start in range(0, len(x), block_rows):
        xb = x[start : start + block_rows].to(device, torch.float64)
        yb = y[start : start + block_rows].to(device, torch.float64)
        observed = ~torch.isnan(yb)
        if not observed.all():
            xb, yb = xb[observed], yb[observed]
        inputs, pre = _forward(xb, layers)
        residual = yb - pre[-1][:, 0]
        _accumulate(stats, inputs, pre, layers, yb)
        n, sse, y_y = n + len(yb), sse + float(residual @ residual), y_y + float(yb @ yb)
    if n == 0:
        raise BnnlibError("a Laplace posterior needs training rows with an observed target; got none")
    cpu = {k: [t.cpu() for t in v] if isinstance(v, list) else v.cpu() for k, v in stats.items()}
    return Curvature(n, sse, y_y=y_y, **cpu)


def _forward(x: torch.Tensor, layers: list) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each layer's input a_l and pre-activation s_l (ReLU between layers, a linear output)."""
    inputs, pre = [], []
    h = x
    for i, (weight, bias) in enumerate(layers):
        inputs.append(h)
        pre.append(torch.addmm(bias, h, weight))
        h = torch.relu(pre[-1])
    return inputs, pre


def _accumulate(stats: dict, inputs: list, pre: list, layers: list, y: torch.Tensor) -> None:
    """Add one block's sums: each layer's input and output-gradient covariances, and the last
    layer's Phi^T Phi and Phi^T y (Phi = [its input, 1])."""
    g = torch.ones_like(pre[-1])  # d f / d s of the output layer
    for i in range(len(layers) - 1, -1, -1):
        stats["input_cov"][i] += inputs[i].T @ inputs[i]
        stats["grad_cov"][i] += g.T @ g
        if i > 0:
            g = (g @ layers[i][0].T) * (pre[i - 1] > 0)
    phi = torch.cat([inputs[-1], torch.ones_like(inputs[-1][:, :1])], dim=1)
    stats["phi_phi"] += phi.T @ phi
    stats["phi_y"] += phi.T @ y


# --------------------------------------------------------------------------- the last layer


def last_layer_posterior(stats: Curvature, prior_precision: float, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact posterior of the last layer (its weights, then its bias, as theta lays them
    out) given the trained features: mean and covariance, float64."""
    precision = stats.phi_phi / sigma**2 + prior_precision * torch.eye(len(stats.phi_phi), dtype=torch.float64)
    cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
    mean = cov @ stats.phi_y / sigma**2
    return mean, (cov + cov.T) / 2


def last_layer_log_evidence(stats: Curvature, log_delta: torch.Tensor, log_sigma: torch.Tensor,
                            eig: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """log p(y | delta, sigma) of Bayesian linear regression on the features, exactly:
    -n/2 log(2 pi sigma^2) - (y^T y - sigma^-2 b^T P^-1 b) / (2 sigma^2) + K/2 log delta
    - 1/2 log det P, with P = Phi^T Phi / sigma^2 + delta I, b = Phi^T y, in the eigenbasis of
    Phi^T Phi (`eig`: its eigenvalues and the projections of b), differentiable in both logs."""
    lam, proj = eig if eig is not None else _last_layer_eig(stats)
    delta, s2 = torch.exp(log_delta), torch.exp(2 * log_sigma)
    p = lam / s2 + delta
    fit = stats.y_y / s2 - (proj**2 / p).sum() / s2**2
    return (-stats.n * (log_sigma + _LOG_SQRT_2PI) - 0.5 * fit + 0.5 * len(lam) * log_delta
            - 0.5 * torch.log(p).sum())


def _last_layer_eig(stats: Curvature) -> tuple[torch.Tensor, torch.Tensor]:
    lam, vectors = torch.linalg.eigh(stats.phi_phi)
    return lam.clamp(min=0.0), vectors.T @ stats.phi_y


# --------------------------------------------------------------------------- all weights (KFAC)


@dataclass
class KronFactors:
    """The eigendecomposed Kronecker factors of every layer: input_eig[l], input_vec[l] of
    sum a a^T, grad_eig[l], grad_vec[l] of sum g g^T, and the rows n."""

    input_eig: list[torch.Tensor]
    input_vec: list[torch.Tensor]
    grad_eig: list[torch.Tensor]
    grad_vec: list[torch.Tensor]
    n: int

    @classmethod
    def of(cls, stats: Curvature) -> "KronFactors":
        inputs = [torch.linalg.eigh(a) for a in stats.input_cov]
        grads = [torch.linalg.eigh(g) for g in stats.grad_cov]
        return cls([e.clamp(min=0.0) for e, _ in inputs], [v for _, v in inputs],
                   [e.clamp(min=0.0) for e, _ in grads], [v for _, v in grads], stats.n)

    def precisions(self, delta: torch.Tensor, s2: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the posterior precision's eigenvalues: of the weight block [fan_in,
        fan_out] (lambda_a lambda_g / (N sigma^2) + delta) and of the bias block [fan_out]
        (lambda_g / sigma^2 + delta)."""
        return [(torch.outer(a, g) / (self.n * s2) + delta, g / s2 + delta)
                for a, g in zip(self.input_eig, self.grad_eig)]

    def to_dict(self) -> dict:
        """CPU tensors for the cache."""
        return {"input_eig": self.input_eig, "input_vec": self.input_vec, "grad_eig": self.grad_eig,
                "grad_vec": self.grad_vec, "n": self.n}


def kron_log_evidence(stats: Curvature, factors: KronFactors, theta_norm2: float, log_delta: torch.Tensor,
                      log_sigma: torch.Tensor) -> torch.Tensor:
    """laplace-torch's Laplace log marginal likelihood around the trained theta (taken as the
    mode): log p(y | theta) - 1/2 (log det P - P_dim log delta + delta |theta|^2), P the KFAC
    posterior precision; differentiable in both logs."""
    delta, s2 = torch.exp(log_delta), torch.exp(2 * log_sigma)
    log_lik = -stats.n * (log_sigma + _LOG_SQRT_2PI) - 0.5 * stats.sse / s2
    log_det, dim = 0.0, 0
    for weight, bias in factors.precisions(delta, s2):
        log_det = log_det + torch.log(weight).sum() + torch.log(bias).sum()
        dim += weight.numel() + bias.numel()
    return log_lik - 0.5 * (log_det - dim * log_delta + delta * theta_norm2)


def kron_sample(factors: KronFactors, arch: Architecture, prior_precision: float, sigma: float,
                z: torch.Tensor) -> torch.Tensor:
    """Map standard normal z [S, P] (theta's layout) to zero-mean draws of the KFAC posterior:
    per layer, W = Q_a (Z / sqrt(d)) Q_g^T and b = Q_g (z_b / sqrt(d_b)), d the precision's
    eigenvalues; so each block's covariance is that block's inverse precision."""
    delta, s2 = torch.tensor(prior_precision, dtype=torch.float64), torch.tensor(sigma**2, dtype=torch.float64)
    parts = []
    for (zw, zb), (d_w, d_b), q_a, q_g in zip(unflatten(z, arch), factors.precisions(delta, s2), factors.input_vec,
                                              factors.grad_vec):
        parts.append((q_a @ (zw / d_w.sqrt()) @ q_g.T).flatten(-2))
        parts.append((zb / d_b.sqrt()) @ q_g.T)
    return torch.cat(parts, dim=-1)


# --------------------------------------------------------------------------- evidence maximisation


def maximise_evidence(log_evidence, start: tuple[float, float], rows: int) -> dict:
    """Type-II maximum likelihood: (delta, sigma) maximising `log_evidence(log_delta,
    log_sigma)` by L-BFGS on the two logs, with torch's exact gradient (float64), from `start`
    (delta, sigma). Returns the optimum, the evidence before and after, and whether the largest
    gradient left is below 1e-6 per training row (an evidence summed over n rows has gradients of
    order n; L-BFGS's own flag also reports line searches that stop on rounding at the optimum)."""

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        params = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        value = -log_evidence(params[0], params[1])
        value.backward()
        return float(value.detach()), params.grad.numpy().copy()

    x0 = np.log(np.asarray(start, dtype=np.float64))
    before = -objective(x0)[0]
    result = minimize(objective, x0, jac=True, method="L-BFGS-B",
                      bounds=[(x0[0] - 30.0, x0[0] + 30.0), (x0[1] - 10.0, x0[1] + 10.0)],
                      options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-9})
    after = -float(result.fun)
    gradient = float(np.abs(result.jac).max())
    if not math.isfinite(after):
        raise BnnlibError(f"the Laplace log marginal likelihood is not finite at its optimum ({result.message})")
    return {"prior_precision": float(np.exp(result.x[0])), "sigma_noise": float(np.exp(result.x[1])),
            "log_marginal_likelihood": after, "log_marginal_likelihood_start": before,
            "iterations": int(result.nit), "gradient": gradient, "converged": gradient <= 1e-6 * rows}


def fit_laplace(theta: torch.Tensor, arch: Architecture, x: torch.Tensor, y: torch.Tensor,
                device: str | torch.device = "cpu") -> dict:
    """Both Laplace posteriors of the trained network theta on the training rows: what the cache
    stores (CPU tensors, and a JSON-able "summary" per subset). The evidence maximisation starts
    at delta = 1 (laplace-torch's default prior precision) and sigma = the trained network's
    root mean squared residual (the noise's maximum-likelihood value at theta)."""
    started = time.perf_counter()
    stats = curvature(theta, arch, x, y, device=device)
    seconds_pass = time.perf_counter() - started
    start = (1.0, math.sqrt(max(stats.sse / stats.n, 1e-30)))

    eig = _last_layer_eig(stats)
    last = maximise_evidence(lambda d, s: last_layer_log_evidence(stats, d, s, eig), start, stats.n)
    mean, cov = last_layer_posterior(stats, last["prior_precision"], last["sigma_noise"])
    k = len(mean)

    factors = KronFactors.of(stats)
    norm2 = float(theta.double() @ theta.double())
    every = maximise_evidence(lambda d, s: kron_log_evidence(stats, factors, norm2, d, s), start, stats.n)
    seconds = time.perf_counter() - started
    common = {"rows": stats.n, "curvature_seconds": seconds_pass, "seconds": seconds}
    return {
        "last_layer": {"mean": mean, "cov_cholesky": torch.linalg.cholesky(cov),
                       "summary": {**last, **common, "parameters": k}},
        "all": {**factors.to_dict(), "summary": {**every, **common, "parameters": arch.n_params}},
    }


def laplace_draws(theta: torch.Tensor, arch: Architecture, stored: dict, subset: str, n_draws: int,
                  seed: int) -> torch.Tensor:
    """n_draws parameter vectors [S, P] (float32) from the subset's posterior, seeded: the last
    layer's exact Gaussian (the hidden layers fixed at theta), or the KFAC Gaussian around theta."""
    if subset not in SUBSETS:
        raise unknown_name("Laplace subset", subset, SUBSETS)
    generator = torch.Generator().manual_seed(seed)
    base = theta.double().expand(n_draws, -1).clone()
    if subset == "last_layer":
        part = stored["last_layer"]
        k = len(part["mean"])
        z = torch.randn(n_draws, k, generator=generator, dtype=torch.float64)
        base[:, -k:] = part["mean"] + z @ part["cov_cholesky"].T
        return base.float()
    part = stored["all"]
    factors = KronFactors(part["input_eig"], part["input_vec"], part["grad_eig"], part["grad_vec"], part["n"])
    summary = part["summary"]
    z = torch.randn(n_draws, arch.n_params, generator=generator, dtype=torch.float64)
    return (base + kron_sample(factors, arch, summary["prior_precision"], summary["sigma_noise"], z)).float()


def posterior_mean(theta: torch.Tensor, stored: dict, subset: str) -> torch.Tensor:
    """The posterior's mean theta: the trained one, with the last layer's exact mean for ``last_layer``."""
    if subset not in SUBSETS:
        raise unknown_name("Laplace subset", subset, SUBSETS)
    mean = theta.clone()
    if subset == "last_layer":
        k = len(stored["last_layer"]["mean"])
        mean[-k:] = stored["last_layer"]["mean"].to(theta.dtype)
    return mean
