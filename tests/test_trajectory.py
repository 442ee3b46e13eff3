"""One trajectory, two snapshots: A at the end of the talk's procedure, B converged after it.

What must hold: A is exactly what the talk's procedure alone gives (same seed, same steps, the
last iterate); the continuation starts from A's state and stops at a converged verdict before
its cap; B is the mean-field optimum where that is known exactly (the Bayesian linear
regression); both snapshots come from one fit and are scored apart; a diverging fit stops."""

import math

import pytest
import torch

from bnnlib.data import load_synthetic
from bnnlib.errors import BnnlibError
from bnnlib.evaluate.convergence import judge
from bnnlib.evaluate.fits import fits_table
from bnnlib.evaluate.methods import snapshot_history, stop_continuation
from bnnlib.evaluate.study import ModelSpec, evaluate_models, fit_groups
from bnnlib.infra.cache import Cache
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture


def linear_problem(n: int = 2000, d: int = 3, sigma: float = 0.3):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=gen)
    w_true = torch.tensor([0.5, -1.0, 2.0])[:d]
    y = (x @ w_true + 0.3 + sigma * torch.randn(n, generator=gen)).unsqueeze(1)
    return x, y, Architecture(d, (), 1), sigma


def exact_mean_field(x: torch.Tensor, y: torch.Tensor, sigma: float):
    """The mean-field optimum of the linear model under its He Normal prior with known noise:
    the exact posterior mean, and stds 1 / sqrt(diag(precision))."""
    n, d = x.shape
    z = torch.cat([x, torch.ones(n, 1)], 1).double()
    prior_var = (2.0 / d) * torch.ones(d + 1, dtype=torch.double)
    precision = z.T @ z / sigma**2 + torch.diag(1 / prior_var)
    mean = torch.linalg.solve(precision, z.T @ y.double()[:, 0] / sigma**2)
    return mean, 1 / torch.sqrt(torch.diag(precision))


TALK = dict(epochs=4, batch_size=200, lr=1e-2, init_scale=0.01, seed=3)  # 40 steps: far from the optimum


def test_snapshot_a_is_the_talks_procedure_alone_to_the_bit():
    x, y, arch, sigma = linear_problem()
    alone = fit_bnn(x, y, arch, get_likelihood("single"), "normal",
                    SVIConfig(**TALK, sigma=sigma, average=0.0), progress=False)
    both = fit_bnn(x, y, arch, get_likelihood("single"), "normal",
                   SVIConfig(**TALK, sigma=sigma, scale_lr=0.05, lr_final_ratio=0.01, continue_steps=4000),
                   progress=False, stop=stop_continuation)
    a = both.snapshot_a
    assert torch.equal(a.loc, alone.loc) and torch.equal(a.scale, alone.scale)
    records = both.history["snapshot_a_records"]
    assert both.history["step"][:records] == alone.history["step"]
    assert both.history["elbo_per_row"][:records] == alone.history["elbo_per_row"]


def test_continuation_converges_to_the_exact_mean_field_optimum_before_its_cap():
    """A is 40 steps at lr 1e-2 from stds 0.01: far from the optimum (the exact stds are ~0.007,
    the means ~1 from He's start). B must stop on its own verdict, before the cap, within a
    quarter of a posterior std of the exact means and 15% of the exact stds."""
    x, y, arch, sigma = linear_problem()
    mean, std = exact_mean_field(x, y, sigma)
    cap = 20_000
    post = fit_bnn(x, y, arch, get_likelihood("single"), "normal",
                   SVIConfig(**TALK, sigma=sigma, lr_final_ratio=0.01, continue_steps=cap, scale_lr=0.01),
                   progress=False, stop=stop_continuation)
    steps = post.history["step"]
    assert judge(post.history).verdict == "converged"
    assert 2 * 40 <= steps[-1] < 40 + cap  # at least the budget again, and stopped by the verdict
    assert torch.all((post.loc.double() - mean).abs() < 0.25 * std), (post.loc, mean, std)
    assert torch.allclose(post.scale.double(), std, rtol=0.15), (post.scale, std)
    a = post.snapshot_a
    assert torch.max((a.loc.double() - mean).abs() / std) > 1.0  # A had not got there: the check can fail
    a_history = snapshot_history(post.history, "A")
    assert a_history["step"][-1] == 40 and judge(a_history).verdict == "still moving"
    assert post.history["averaged_steps"] > 0 and a_history["averaged_steps"] == 0


def test_a_diverging_budget_stops_and_has_no_continuation():
    """A loss that is not finite in the budget stops the fit there: B is A, both diverging."""
    x, y, arch, sigma = linear_problem()
    post = fit_bnn(x, y, arch, get_likelihood("single"), "flat",
                   SVIConfig(epochs=4, batch_size=200, lr=1e6, init_scale=0.01, seed=3, continue_steps=100),
                   progress=False, stop=stop_continuation)
    if post.history["stopped_at_step"] is None:
        pytest.skip("this lr did not overflow here")
    assert post.history["step"][-1] <= 40 and post.history["snapshot_a_stopped_at_step"] is not None
    assert judge(post.history).verdict == "diverging"


def test_both_snapshots_share_one_fit_and_are_scored_apart(tmp_path):
    tiny_dataset = load_synthetic("tiny", root=tmp_path / "data")
    common = dict(method="bnn", prior="normal", hidden=(8,), epochs=1, batch_size=64, draws=20,
                  continue_steps=60, scale_lr=1e-2, lr_final=0.1)
    specs = [ModelSpec("normal", **common), ModelSpec("normal_converged", snapshot="B", **common)]
    assert len(fit_groups(specs)) == 1
    cache = Cache(tmp_path / "cache")
    results = evaluate_models(specs, tiny_dataset, cache)
    assert sum(e.kind == "fit" and not e.hit for e in cache.events) == 1
    a, b = results["normal"], results["normal_converged"]
    assert a.history["step"][-1] < b.history["step"][-1]
    assert not torch.equal(torch.as_tensor(a.scores.ensemble), torch.as_tensor(b.scores.ensemble))
    table = fits_table(results)
    assert list(table["snapshot"]) == ["A", "B"]
    assert table.loc["normal_converged", "budget_steps"] == table.loc["normal", "budget_steps"] + 60


def test_snapshot_b_needs_a_continuation():
    with pytest.raises(BnnlibError, match="continue_steps"):
        ModelSpec("b", prior="normal", snapshot="B")
    with pytest.raises(BnnlibError, match="snapshot"):
        ModelSpec("c", prior="normal", snapshot="C", continue_steps=10)
    with pytest.raises(BnnlibError, match="continue_steps"):
        ModelSpec("d", prior="normal", continue_steps=-1)
    # a point network ignores the BNN's trajectory fields: they do not split its cache entries
    base = ModelSpec("base", method="baseline")
    assert ModelSpec("base", method="baseline", continue_steps=50).fit_spec() == base.fit_spec()


def test_fits_without_continuation_are_unchanged():
    """continue_steps 0 is the fit as before: averaging over the last fifth, the decaying lrs."""
    x, y, arch, sigma = linear_problem()
    config = SVIConfig(**TALK, sigma=sigma, lr_final_ratio=0.1, scale_lr=0.01)
    post = fit_bnn(x, y, arch, get_likelihood("single"), "normal", config, progress=False)
    assert post.snapshot_a is None and "snapshot_a_records" not in post.history
    assert post.history["averaged_steps"] == int(0.2 * 40)
    assert math.isfinite(post.history["elbo_per_row"][-1])


def test_the_plan_counts_a_trajectorys_continuation_at_its_cap(tmp_path):
    from bnnlib.build.warmup import training_cost
    from bnnlib.models.training import step_plan

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    base = ModelSpec("n", prior="normal", hidden=(8,), epochs=2, batch_size=64)
    trajectory = ModelSpec("n", prior="normal", hidden=(8,), epochs=2, batch_size=64, continue_steps=90)
    budget = step_plan(len(dataset.train), 64, 2).total_steps
    assert training_cost(trajectory, dataset)[0] / training_cost(base, dataset)[0] == pytest.approx((budget + 90) / budget)


def test_the_plan_expects_a_trajectory_to_stop_at_its_floor_and_bounds_it_by_its_cap(tmp_path):
    """The estimate prices a trajectory at its floor (the budget again, at least
    `SVIConfig.min_continue_steps`, at most the cap: where `fit_bnn` first asks the verdict)
    and gives the cap as the most it can cost."""
    from bnnlib.build.warmup import continuation_floor, planned_steps, training_cost
    from bnnlib.models.training import step_plan

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    budget = step_plan(len(dataset.train), 64, 2).total_steps
    for cap in (90, 5000, 100_000):
        spec = ModelSpec("n", prior="normal", hidden=(8,), epochs=2, batch_size=64, continue_steps=cap)
        floor = min(cap, max(budget, SVIConfig.min_continue_steps))
        assert continuation_floor(budget, spec) == floor
        assert planned_steps(spec, dataset, at_cap=False)[1] == budget + floor
        assert planned_steps(spec, dataset, at_cap=True)[1] == budget + cap
        ratio = training_cost(spec, dataset, at_cap=False)[0] / training_cost(spec, dataset, at_cap=True)[0]
        assert ratio == pytest.approx((budget + floor) / (budget + cap))
    point = ModelSpec("b", method="baseline", hidden=(8,), epochs=2, batch_size=64)
    assert planned_steps(point, dataset, at_cap=False)[1] == planned_steps(point, dataset)[1] == budget
