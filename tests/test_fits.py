"""The fits report: layers at their prior, constant predictors (planted, so the answer is known)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bnnlib.evaluate import fits


def _result(prior: str, medians: list[float], hidden=(4, 3), ensemble=None, method="bnn"):
    """A stand-in for a ModelResult: only what the fits report reads."""
    n = 8
    quantiles = {f"layer{i}": [[m / 2, m, m * 2]] * n for i, m in enumerate(medians, 1)}
    history = {"step": list(range(100, 100 * n + 1, 100)), "elbo_per_row": [0.07] * n,
               "scale_quantiles": quantiles, "validation_corr": [0.01] * n, "seconds": [1.0] * n,
               "steps_per_epoch": 100}
    spec = SimpleNamespace(prior=prior, hidden=hidden, method=method, hypothesis="single", precision="float32",
                           guide_init="he", init_scale=0.01, steps=None, epochs=n, continue_steps=0,
                           snapshot="A")
    scores = SimpleNamespace(ensemble=np.linspace(0, 1, 50) if ensemble is None else ensemble)
    extras = {"scale_p10": 0.0, "scale_p50": 0.0, "scale_p90": 0.0}
    return SimpleNamespace(spec=spec, history=history, scores=scores, extras=extras)


def he(fan_in: int) -> float:
    return math.sqrt(2.0 / fan_in)


def test_layers_at_prior_counts_hidden_layers_whose_median_std_is_the_prior_std():
    # 10 inputs, hidden (4, 3): the He stds are sqrt(2/10), sqrt(2/4), and sqrt(2/3) for the output
    at_prior = _result("normal", [he(10), he(4) * 1.04, he(3)])
    assert fits.layers_at_prior(at_prior, 10) == "2/2"
    pinned = _result("normal", [0.01, he(4), he(3)])
    assert fits.layers_at_prior(pinned, 10) == "1/2"
    assert fits.layers_at_prior(_result("normal", [he(10) * 0.9, he(4) * 1.2, 0.1]), 10) == "0/2"
    ratios = fits.prior_std_ratios(pinned, 10)
    assert list(ratios.index) == ["layer1", "layer2", "layer3"]
    assert ratios["layer2"] == pytest.approx(1.0)


def test_layers_at_prior_is_blank_for_the_flat_prior_and_the_linear_model():
    assert fits.layers_at_prior(_result("flat", [0.2, 0.3, 0.4]), 10) == ""
    assert fits.layers_at_prior(_result("normal", [0.2], hidden=()), 10) == ""


def test_fits_table_reports_layers_at_prior_when_told_the_inputs():
    results = {"normal": _result("normal", [he(10), he(4), 0.01]),
               "baseline": _result(None, [], method="baseline")}
    table = fits.fits_table(results, n_inputs=10)
    assert list(table.index) == ["normal"]
    assert table.loc["normal", "layers_at_prior"] == "2/2"
    assert table.loc["normal", "budget_steps"] == 800  # 8 epochs of 100 steps
    assert fits.fits_table(results).loc["normal", "layers_at_prior"] == ""


def test_constant_predictors_are_the_models_whose_ensemble_does_not_vary():
    results = {"alive": _result("normal", [0.1]), "dead": _result(None, [], ensemble=np.full(50, 0.4987)),
               "nearly": _result(None, [], ensemble=np.full(50, 0.5) + np.arange(50) * 1e-7),
               "varies": _result(None, [], ensemble=np.full(50, 0.5) + np.arange(50) * 1e-5)}
    assert fits.constant_predictors(results) == ["dead", "nearly"]


def test_elbo_ladder_puts_every_fit_on_the_constants_scale():
    refs = {"log_evidence": 0.0790, "meanfield_elbo": 0.0789, "constant_loglik": 0.0788}
    results = {"normal": _result("normal", [he(10), he(4), 0.01])}
    table = fits.fits_table(results, n_inputs=10)
    ladder = fits.elbo_ladder(refs, table, n_rows=1000)
    assert ladder.loc["best constant prediction (exact)", "over_constant_nats"] == 0.0
    assert ladder.loc["linear model, log evidence (exact)", "over_constant_nats"] == pytest.approx(0.2)
    assert ladder.loc["normal (SVI, last record)", "over_constant_per_row"] == pytest.approx(0.07 - 0.0788)
    assert ladder.loc["normal (SVI, last record)", "verdict"] == table.loc["normal", "verdict"]
    assert ladder.loc["best constant prediction (exact)", "verdict"] == "–"


def test_a_laplace_layer_is_at_its_prior_at_the_kl_closest_normal_std():
    """Where the likelihood is flat, the Normal guide minimises KL(q || Laplace): found here by a
    grid search over its std, it is sqrt(pi)/2 of the prior's std, and that is what counts."""
    import torch

    from bnnlib.models.priors import expected_log_ratio

    fan_in = torch.tensor([10.0])
    grid = torch.linspace(0.2, 0.6, 4001)
    kl = torch.stack([expected_log_ratio("laplace", fan_in, torch.zeros(1), t.reshape(1)) for t in grid])
    best = float(grid[kl.argmin()])
    assert best == pytest.approx(float(fits.data_free_std("laplace", fan_in)), rel=1e-3)
    assert fits.layers_at_prior(_result("laplace", [best, he(4) * math.sqrt(math.pi) / 2, 0.01]), 10) == "2/2"
    assert fits.layers_at_prior(_result("laplace", [he(10), he(4), 0.01]), 10) == "0/2"


def test_diverging_names_the_fits_whose_verdict_says_so():
    """The trace figure draws these apart and the architecture appendix names them: the name must
    be the verdict's own (a check against "diverged" once matched no fit)."""
    from bnnlib.evaluate.convergence import DIVERGING, judge
    from bnnlib.evaluate.fits import diverging

    assert judge({"step": [1, 2, 3], "elbo_per_row": [0.1, float("nan"), 0.1]}).verdict == DIVERGING
    table = pd.DataFrame({"verdict": [DIVERGING, "converged", "still moving"]}, index=["flat", "normal", "wide"])
    assert diverging(table) == ["flat"]
    assert diverging(pd.DataFrame(index=["x"])) == []
