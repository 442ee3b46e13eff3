"""Laplace posteriors of the trained network (bnnlib.evaluate.laplace, the `laplace` method).

Every comparison is with an independent float64 computation, within a bound derived from the
operations between them (tests/tolerances.py): the last layer against the exact conjugate Bayesian
linear regression of bnnlib.evaluate.exact on features computed here; the Kronecker-factored
curvature against the exact Gauss-Newton matrix from torch's Jacobians.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bnnlib.data import load_synthetic
from bnnlib.errors import BnnlibError
from bnnlib.evaluate import laplace
from bnnlib.evaluate.exact import elbo_references, linear_gaussian_posterior
from bnnlib.evaluate.study import ModelSpec, evaluate_model, fit_model
from bnnlib.infra.cache import Cache, cache_key
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.network import Architecture, forward, he_init, unflatten
from tolerances import EPS64, f64_tol

HIDDEN = (16, 8)
TRAINING = {"hidden": HIDDEN, "epochs": 3, "batch_size": 128}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_synthetic("tiny", root=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(tiny):
    """A network trained as the baseline trains, on the tiny data's rows (float64 copies)."""
    x, y, _ = tiny.arrays("train", [tiny.roles.main])
    x, y = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))[:, 0]
    arch = Architecture(x.shape[1], HIDDEN, 1)
    fit = train_mlp(x, y, arch, TrainConfig(epochs=3, batch_size=128, seed=0), progress=False)
    return fit.theta, arch, x.double(), y.double()


def _features(theta, arch, x):
    """The last hidden layer's activations, float64, by the network's own forward pass."""
    layers = unflatten(theta.double(), arch)
    return forward(x.double(), layers[:-1], last_relu=True)


def _condition(precision: np.ndarray) -> float:
    eig = np.linalg.eigvalsh(precision)
    return float(eig[-1] / eig[0])


@pytest.mark.parametrize("delta, sigma", [(1.0, 0.2), (25.0, 0.5), (0.01, 0.05)])
def test_the_last_layer_posterior_is_the_exact_conjugate_posterior(trained, delta, sigma):
    """Mean and covariance for a given prior precision and noise against bnnlib.evaluate.exact's
    conjugate Bayesian linear regression on the features. Both are float64: the sums over n rows
    differ by at most f64_tol(n) of their magnitudes, and a solve with the precision P amplifies
    that by its condition number."""
    theta, arch, x, y = trained
    stats = laplace.curvature(theta, arch, x, y, block_rows=100)  # several blocks
    mean, cov = laplace.last_layer_posterior(stats, delta, sigma)
    exact = linear_gaussian_posterior(_features(theta, arch, x), y, 1 / math.sqrt(delta), sigma)
    k = len(exact.mean)
    tol = _condition(exact.precision) * (f64_tol(len(y)) + f64_tol(k))
    mean_gap = np.abs(mean.numpy() - exact.mean).max() / np.abs(exact.mean).max()
    cov_gap = np.abs(cov.numpy() - exact.cov).max() / np.abs(exact.cov).max()
    assert mean_gap <= tol and cov_gap <= tol, (mean_gap, cov_gap, tol)


@pytest.mark.parametrize("delta, sigma", [(1.0, 0.2), (25.0, 0.5)])
def test_the_last_layer_evidence_is_the_exact_log_evidence(trained, delta, sigma):
    """The last layer's log marginal likelihood against exact.py's closed form, which goes by
    another route (the posterior mean's quadratic form, slogdet): for a linear-Gaussian model the
    Laplace evidence is exact. Both sum n squared terms of size up to y^T y / sigma^2."""
    theta, arch, x, y = trained
    stats = laplace.curvature(theta, arch, x, y)
    ours = float(laplace.last_layer_log_evidence(stats, torch.tensor(math.log(delta), dtype=torch.float64),
                                                 torch.tensor(math.log(sigma), dtype=torch.float64)))
    features = _features(theta, arch, x)
    reference = elbo_references(features, y, 1 / math.sqrt(delta), sigma)["log_evidence"] * len(y)
    precision = linear_gaussian_posterior(features, y, 1 / math.sqrt(delta), sigma).precision
    magnitude = float(y @ y) / sigma**2 + len(y) * abs(math.log(sigma)) + abs(reference)
    assert abs(ours - reference) <= _condition(precision) * f64_tol(len(y)) * magnitude


def test_maximising_the_evidence_raises_it_to_a_stationary_maximum(trained):
    """For both subsets: the optimum beats the start (delta 1, sigma the residuals' RMS), and
    moving either hyperparameter by 1% either way lowers it (beyond float64 rounding)."""
    theta, arch, x, y = trained
    fitted = laplace.fit_laplace(theta, arch, x, y)
    stats = laplace.curvature(theta, arch, x, y)
    factors = laplace.KronFactors.of(stats)
    norm2 = float(theta.double() @ theta.double())
    evidence = {"last_layer": lambda d, s: laplace.last_layer_log_evidence(stats, d, s),
                "all": lambda d, s: laplace.kron_log_evidence(stats, factors, norm2, d, s)}
    for subset, log_evidence in evidence.items():
        summary = fitted[subset]["summary"]
        best = summary["log_marginal_likelihood"]
        assert summary["converged"] and math.isfinite(best)
        assert best > summary["log_marginal_likelihood_start"]
        log_d, log_s = math.log(summary["prior_precision"]), math.log(summary["sigma_noise"])
        at = float(log_evidence(torch.tensor(log_d, dtype=torch.float64), torch.tensor(log_s, dtype=torch.float64)))
        assert abs(at - best) <= 1e3 * EPS64 * (abs(best) + len(y))
        for dd, ds in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
            moved = float(log_evidence(torch.tensor(log_d + dd, dtype=torch.float64),
                                       torch.tensor(log_s + ds, dtype=torch.float64)))
            assert moved < best, (subset, dd, ds, moved, best)


# --------------------------------------------------------------------------- KFAC, on a network small enough to be dense


@pytest.fixture(scope="module")
def small():
    arch = Architecture(5, (4, 3), 1)
    generator = torch.Generator().manual_seed(3)
    theta = he_init(arch, generator).double() + 0.1 * torch.randn(arch.n_params, generator=generator, dtype=torch.float64)
    x = torch.randn(200, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(200, generator=generator, dtype=torch.float64)
    return arch, theta, x, y


def _exact_ggn(arch, theta, x) -> torch.Tensor:
    """J^T J, J [n, P] the Jacobian of the network's output in theta, by autograd."""
    jacobian = torch.func.jacrev(lambda t: forward(x, unflatten(t, arch))[:, 0])(theta)
    return jacobian.T @ jacobian


def _blocks(arch):
    """(weight slice, bias slice) of each layer in theta."""
    out, start = [], 0
    for fan_in, fan_out in arch.layers:
        out.append((slice(start, start + fan_in * fan_out), slice(start + fan_in * fan_out, start + (fan_in + 1) * fan_out)))
        start += (fan_in + 1) * fan_out
    return out


def _dense_kron_precision(arch, factors, stats, delta, s2) -> torch.Tensor:
    """The KFAC posterior precision as one block-diagonal matrix in theta's layout."""
    blocks = []
    for a, g in zip(stats.input_cov, stats.grad_cov):
        blocks += [torch.kron(a, g) / stats.n / s2, g / s2]
    return torch.block_diag(*blocks) + delta * torch.eye(arch.n_params, dtype=torch.float64)


def test_kfac_is_exact_where_the_gauss_newton_matrix_factorises(small):
    """Each bias block (sum g g^T) and the one-output layer's weight block ((sum a a^T) N / N) of
    the Kronecker factors equal the exact Gauss-Newton matrix's, from torch's Jacobians."""
    arch, theta, x, y = small
    stats = laplace.curvature(theta, arch, x, y, block_rows=64)
    ggn = _exact_ggn(arch, theta, x)
    scale = float(ggn.abs().max())
    for (weight, bias), a, g in zip(_blocks(arch), stats.input_cov, stats.grad_cov):
        assert float((ggn[bias, bias] - g).abs().max()) <= f64_tol(len(x)) * scale * 10
    (weight, _), a, g = _blocks(arch)[-1], stats.input_cov[-1], stats.grad_cov[-1]
    assert float((ggn[weight, weight] - torch.kron(a, g) / stats.n).abs().max()) <= f64_tol(len(x)) * scale * 10


def test_kfac_evidence_and_draws_match_the_dense_precision(small):
    """The eigenvalue forms against dense linear algebra on the same precision: the log
    determinant in the evidence, and the draws' map S (z -> draw) with S S^T = precision^-1."""
    arch, theta, x, y = small
    stats = laplace.curvature(theta, arch, x, y)
    factors = laplace.KronFactors.of(stats)
    delta, sigma = 0.7, 0.9
    precision = _dense_kron_precision(arch, factors, stats, delta, sigma**2)
    norm2 = float(theta @ theta)
    ours = float(laplace.kron_log_evidence(stats, factors, norm2, torch.tensor(math.log(delta), dtype=torch.float64),
                                           torch.tensor(math.log(sigma), dtype=torch.float64)))
    p = arch.n_params
    dense = (-len(y) * math.log(sigma * math.sqrt(2 * math.pi)) - 0.5 * stats.sse / sigma**2
             - 0.5 * (float(torch.linalg.slogdet(precision)[1]) - p * math.log(delta) + delta * norm2))
    condition = float(torch.linalg.cond(precision))
    assert abs(ours - dense) <= condition * f64_tol(p) * (abs(dense) + p)
    s = laplace.kron_sample(factors, arch, delta, sigma, torch.eye(p, dtype=torch.float64)).T
    covariance = torch.linalg.inv(precision)
    assert float((s @ s.T - covariance).abs().max()) <= condition * f64_tol(p) * float(covariance.abs().max())


def test_draws_are_seeded_and_differ(trained):
    theta, arch, x, y = trained
    stored = laplace.fit_laplace(theta, arch, x, y)
    for subset in laplace.SUBSETS:
        a = laplace.laplace_draws(theta, arch, stored, subset, 5, seed=1)
        assert torch.equal(a, laplace.laplace_draws(theta, arch, stored, subset, 5, seed=1))
        assert not torch.equal(a, laplace.laplace_draws(theta, arch, stored, subset, 5, seed=2))
        assert torch.unique(a, dim=0).shape[0] == 5 and torch.isfinite(a).all()
    last = laplace.laplace_draws(theta, arch, stored, "last_layer", 5, seed=1)
    k = HIDDEN[-1] + 1
    assert torch.equal(last[:, :-k], theta[:-k].expand(5, -1))  # the hidden layers stay trained
    with pytest.raises(BnnlibError, match="unknown Laplace subset 'first'; choose one of: 'all', 'last_layer'"):
        laplace.laplace_draws(theta, arch, stored, "first", 5, seed=1)


# --------------------------------------------------------------------------- the method, through the pipeline


def test_a_laplace_spec_is_checked():
    spec = ModelSpec("l", method="laplace", init_scale=0.3, guide_init="prior")
    assert spec.laplace_subset == "last_layer" and not spec.has_posterior
    assert spec.init_scale is None and spec.guide_init == "he"  # the guide's settings are reset
    with pytest.raises(BnnlibError, match="unknown laplace_subset 'first'; choose one of: 'all', 'last_layer'"):
        ModelSpec("l", method="laplace", laplace_subset="first")
    for hypothesis in ("hetero", "h2"):
        with pytest.raises(BnnlibError, match="a Laplace posterior is fitted for the 'single' hypothesis|trains with"):
            ModelSpec("l", method="laplace", hypothesis=hypothesis)


def test_the_subset_keys_the_scores_not_the_fit_and_bnn_fields_key_neither():
    last = ModelSpec("a", method="laplace", laplace_subset="last_layer", draws=100)
    every = dataclasses.replace(last, name="b", laplace_subset="all")
    assert last.fit_spec() == every.fit_spec()  # one training, one curvature pass for both
    assert last.score_spec() != every.score_spec() and every.score_spec()["laplace_subset"] == "all"
    assert cache_key(last.score_spec(), "fp", "scores") != cache_key(every.score_spec(), "fp", "scores")
    baseline = ModelSpec("c", method="baseline")
    assert {k: v for k, v in last.fit_spec().items() if k != "method"} == \
           {k: v for k, v in baseline.fit_spec().items() if k != "method"}  # the baseline's training fields
    for field, value in {"prior": "laplace", "init_scale": 0.05, "scale_lr": 0.02, "estimator": "weights",
                         "guide_init": "prior", "dropout": 0.3, "members": 4}.items():
        other = dataclasses.replace(last, name="d", **{field: value})
        assert other.score_spec() == last.score_spec(), field
    assert "laplace_subset" not in ModelSpec("e", prior="normal").score_spec()  # no other method reads it


def test_a_laplace_model_goes_through_evaluate_model(tiny, tmp_path):
    """Both subsets from one fit (the network trained as the baseline's, to the bit), scored by
    the common code; the last layer's ensemble is its posterior mean's prediction up to the
    Monte Carlo error of S draws."""
    cache = Cache(tmp_path / "cache")
    draws = 64
    specs = {subset: ModelSpec(f"laplace_{subset}", method="laplace", laplace_subset=subset, draws=draws, **TRAINING)
             for subset in laplace.SUBSETS}
    results = {subset: evaluate_model(spec, tiny, cache, progress=False) for subset, spec in specs.items()}
    assert [e.kind for e in cache.events if not e.hit].count("fit") == 1
    n_eras = tiny.validation["era"].nunique()
    stored = fit_model(specs["all"], tiny, cache)
    baseline = fit_model(ModelSpec("b", method="baseline", **TRAINING), tiny, cache)
    assert torch.equal(stored["thetas"], baseline["thetas"])
    for subset, result in results.items():
        assert result.scores.draw_corr.shape == (draws, n_eras) and np.isfinite(result.scores.draw_corr).all()
        assert np.unique(result.scores.draw_corr[:, 0]).size > 1  # the draws differ
        extras = result.extras
        assert extras["subset"] == subset and math.isfinite(extras["log_marginal_likelihood"])
        assert extras["prior_precision"] > 0 and extras["sigma_noise"] > 0
        assert extras["log_marginal_likelihood_per_row"] == pytest.approx(extras["log_marginal_likelihood"] / len(tiny.train))
        assert result.history["validation_corr"]  # the baseline's trace
    x, _, _ = tiny.arrays("validation", [tiny.roles.main])
    arch = Architecture(x.shape[1], HIDDEN, 1)
    part = stored["laplace"]["last_layer"]
    mean = laplace.posterior_mean(stored["thetas"][0], {"last_layer": part}, "last_layer")
    at_mean = forward(torch.from_numpy(np.array(x)).double(), unflatten(mean.double(), arch))[:, 0].numpy()
    scores = results["last_layer"].scores
    # float32 scoring of each draw adds at most a few float32 roundings of the predictions' size
    monte_carlo = 6 * scores.std / math.sqrt(draws) + 1e-5 * (np.abs(at_mean) + 1)
    assert (np.abs(scores.ensemble - at_mean) <= monte_carlo).all()
