"""The methods (bnnlib.evaluate.methods): one object each, one interface, and a new one needs no
edit of the pipeline (bnnlib.evaluate.study)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bnnlib.data import load_synthetic
from bnnlib.errors import BnnlibError
from bnnlib.evaluate import methods
from bnnlib.evaluate.methods import METHODS, Method
from bnnlib.evaluate.predictive import ThetaDraws
from bnnlib.evaluate.study import (ModelSpec, evaluate_model, evaluate_variance_split, fit_model, fitted_posterior,
                                   noisy_draws)
from bnnlib.infra.cache import Cache
from bnnlib.models.network import he_init

COMMON = {"method", "hypothesis", "hidden", "epochs", "batch_size", "lr", "seed", "steps", "precision", "lr_final"}
FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}


def spec_of(name: str, **fields) -> ModelSpec:
    return ModelSpec(name, method=name, prior="normal" if name == "bnn" else None, **fields)


def test_the_registry_holds_the_five_methods_each_by_its_name():
    assert set(METHODS) == {"baseline", "bnn", "dropout", "ensemble", "laplace"}
    for name, method in METHODS.items():
        assert method.name == name and isinstance(method, Method)
        assert spec_of(name).method_object is method
        assert spec_of(name).has_posterior is method.has_posterior is (name == "bnn")
    with pytest.raises(BnnlibError, match="unknown method 'svm'; choose one of: 'baseline', 'bnn', 'dropout'"):
        ModelSpec("x", method="svm")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_implements_the_interface(name):
    method = METHODS[name]
    spec = spec_of(name, draws=7, members=3)
    assert set(method.fit_fields) <= FIELDS - COMMON and set(method.score_fields) <= FIELDS - COMMON
    assert set(spec.fit_spec()) == COMMON | set(method.fit_fields)  # its fit key: what its fit reads
    assert set(spec.score_spec()) == set(spec.fit_spec()) | {"draws", *method.score_fields}
    assert spec.learning_rate == method.default_lr > 0
    assert spec.n_draws == method.n_draws(spec) == {"baseline": 1, "ensemble": 3}.get(name, 7)
    assert method.networks(spec) == (3 if name == "ensemble" else 1)
    assert isinstance(method.check(spec), dict)
    for member in ("fit", "draws", "noise"):  # what every method must say for itself
        assert getattr(type(method), member) is not getattr(Method, member), f"{name} lacks {member}"
    assert (type(method).posterior is not Method.posterior) == method.has_posterior


def test_a_point_network_resets_the_guides_settings_and_refuses_multi_target_hypotheses():
    spec = ModelSpec("e", method="ensemble", init_scale=0.3, estimator="weights", guide_init="prior", scale_lr=0.1)
    defaults = ModelSpec("f", method="ensemble")
    assert [getattr(spec, f) for f in methods.GUIDE_FIELDS] == [getattr(defaults, f) for f in methods.GUIDE_FIELDS]
    with pytest.raises(BnnlibError, match="a dropout network trains with hypothesis 'single' or 'hetero', not 'h3'"):
        ModelSpec("d", method="dropout", hypothesis="h3")


class RandomNetworks(Method):
    """A method the engine does not know: untrained He-initialised networks, one per draw."""

    name = "random"
    fit_fields = ("draws",)  # its fit draws the networks

    def check(self, spec):
        if spec.hypothesis != "single":
            raise BnnlibError(f"model {spec.name!r}: random networks predict one target")
        return {"prior": None}

    def fit(self, spec, x, y, arch, likelihood, validation_corr, progress, device):
        generator = torch.Generator().manual_seed(spec.seed)
        thetas = torch.stack([he_init(arch, generator) for _ in range(spec.draws)])
        return {"thetas": thetas, "history": {"validation_corr": [validation_corr(thetas[0])]}}

    def draws(self, spec, fitted, arch, likelihood):
        return ThetaDraws(fitted["thetas"], arch, likelihood, spec.precision)

    def noise(self, spec, fitted):
        return torch.ones(1)

    def extras(self, spec, fitted, arch):
        return {"parameters": arch.n_params}


def test_a_new_method_registered_in_methods_runs_through_the_pipeline(tmp_path, monkeypatch):
    """Fit, draws, scores, the variance split and the cache keys, with no edit of study.py (in
    this process: a worker process started by spawning would not see the registration)."""
    monkeypatch.setitem(METHODS, "random", RandomNetworks())
    dataset = load_synthetic("tiny", root=tmp_path / "data")
    cache = Cache(tmp_path / "cache")
    spec = ModelSpec("r", method="random", prior="normal", hidden=(4,), draws=3, init_scale=0.5)
    assert spec.prior is None and spec.init_scale == 0.5 and not spec.has_posterior  # its check normalised
    assert spec.fit_spec()["draws"] == 3 and "init_scale" not in spec.fit_spec()
    result = evaluate_model(spec, dataset, cache, progress=False)
    assert result.scores.draw_corr.shape == (3, dataset.validation["era"].nunique())
    assert result.extras == {"parameters": len(dataset.features) * 4 + 4 + 4 + 1}
    assert np.isfinite(result.history["validation_corr"][0])
    again = evaluate_model(spec, dataset, cache, progress=False)
    assert [e.hit for e in cache.events] == [False, False, True, True]
    np.testing.assert_array_equal(result.scores.ensemble, again.scores.ensemble)
    fitted = fit_model(spec, dataset, cache)
    assert torch.equal(noisy_draws(spec, fitted, len(dataset.features)).sigma, torch.ones(1))
    split = evaluate_variance_split(spec, dataset, cache)
    np.testing.assert_allclose(split.aleatoric, 1.0, rtol=1e-5)
    with pytest.raises(BnnlibError, match="'r' is a random model; only a BNN has a posterior"):
        fitted_posterior(spec, dataset, cache)
    with pytest.raises(BnnlibError, match="random networks predict one target"):
        ModelSpec("r", method="random", hypothesis="hetero")
