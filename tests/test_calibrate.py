"""The cost model's calibration times the budget's steps only: a trajectory's continuation runs at
least 2,000 steps whatever the budget, so timing it would price two equal runs' difference."""

from __future__ import annotations

from bnnlib.build import calibrate
from bnnlib.evaluate.methods import BNN
from bnnlib.evaluate.study import ModelSpec


def test_a_trajectory_is_timed_on_its_budget_alone(monkeypatch):
    seen = []

    def fit(self, spec, x, y, arch, likelihood, validation_corr, progress, device):
        seen.append((spec.steps, spec.continue_steps, spec.snapshot))
        return {}

    monkeypatch.setattr(BNN, "fit", fit)
    spec = ModelSpec("normal_converged", method="bnn", prior="normal", hidden=(4,), batch_size=8,
                     continue_steps=53_190, snapshot="B")
    calibrate._fit_seconds_per_mac(calibrate.Sample(spec, n_inputs=3, n_validation=10))
    assert seen and all(continued == 0 and snapshot == "A" for _, continued, snapshot in seen)
    assert sorted({steps for steps, _, _ in seen}) == [1, calibrate.SHORT, calibrate.LONG]
