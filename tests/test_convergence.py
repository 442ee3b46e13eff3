"""The fit's trace, its optimiser budget in steps, and the verdict read from it."""

import functools
import math

import pytest
import torch

from bnnlib.evaluate import convergence
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture
from bnnlib.models.training import batches, step_plan
from test_hetero import reference_elbo_terms, reference_negative_elbo
from tolerances import assert_within, f32_tol


def trace(elbo, p50, p90):
    steps = [100 * (i + 1) for i in range(len(elbo))]
    return {"step": steps, "elbo_per_row": elbo,
            "scale_quantiles": {"layer1": [[m / 2, m, h] for m, h in zip(p50, p90)]}}


def test_flat_elbo_and_scales_converge():
    history = trace([-1.0, 0.05, 0.070, 0.0705, 0.0706, 0.0707], [0.1] * 6, [0.3, 0.3, 0.3, 0.301, 0.302, 0.302])
    assert convergence.judge(history).verdict == "converged"


def test_rising_elbo_or_moving_scales_are_still_moving():
    rising = trace([-1.0, 0.0, 0.02, 0.04, 0.06, 0.08], [0.1] * 6, [0.3] * 6)
    assert convergence.judge(rising).verdict == "still moving"
    shrinking = trace([0.07] * 6, [0.010, 0.0100, 0.0100, 0.0099, 0.009, 0.008], [0.02] * 6)
    assert convergence.judge(shrinking).verdict == "still moving"


def test_collapsing_elbo_or_runaway_scales_diverge():
    collapse = trace([-1.0, 0.05, 0.06, 0.06, 0.06, -403.0], [0.1] * 6, [0.3] * 6)
    assert convergence.judge(collapse).verdict == "diverging"
    runaway = trace([0.07] * 6, [0.1] * 6, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    assert convergence.judge(runaway).verdict == "diverging"
    # growing towards a proper prior's scale is slow progress, not divergence
    approach = trace([0.07] * 6, [0.1] * 6, [0.01, 0.02, 0.04, 0.08, 0.16, 0.2])
    assert convergence.judge(approach).verdict == "still moving"
    assert convergence.judge(trace([0.0, math.nan, 0.0], [0.1] * 3, [0.3] * 3)).verdict == "diverging"


def test_window_is_the_last_fifth_of_the_steps():
    assert convergence.window_start([100 * (i + 1) for i in range(30)]) == 23  # step 2400 = 80% of 3000
    assert convergence.window_start([100, 200, 300]) == 0  # too short: the last three records


def test_step_budget_overrides_epochs_and_records_at_epoch_ends():
    plan = step_plan(n_rows=1000, batch_size=300, epochs=30)  # 4 steps an epoch, the last short
    assert plan.total_steps == 120 and plan.checkpoints[:2] == (4, 8) and plan.checkpoints[-1] == 120
    plan = step_plan(n_rows=1000, batch_size=300, epochs=30, steps=10)
    assert plan.checkpoints == (4, 8, 10)
    long = step_plan(n_rows=100, batch_size=50, epochs=1, steps=10_000)  # 5,000 passes, 100 records
    assert len(long.checkpoints) == 100 and long.checkpoints[-1] == 10_000
    rows = list(batches(1000, 300, 10, torch.Generator().manual_seed(0)))
    assert len(rows) == 10 and [len(r) for r in rows[:4]] == [300, 300, 300, 100]
    assert sorted(torch.cat(rows[:4]).tolist()) == list(range(1000))  # each epoch sees every row once


def test_fit_records_a_trace_per_epoch_with_scales_per_layer_and_validation_corr():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(600, 4, generator=gen), torch.rand(600, 1, generator=gen)
    arch = Architecture(4, (5, 3), 1)
    calls = []
    post = fit_bnn(x, y, arch, get_likelihood("single"), "normal", SVIConfig(batch_size=128, steps=12, seed=1),
                   progress=False, evaluate=lambda theta: calls.append(theta.shape) or 0.5)
    history = post.history
    assert history["step"] == [5, 10, 12] and len(history["elbo_per_row"]) == 3
    assert set(history["scale_quantiles"]) == {"layer1", "layer2", "layer3"}
    p10, p50, p90 = history["scale_quantiles"]["layer1"][-1]
    assert p10 <= p50 <= p90
    assert history["validation_corr"] == [0.5] * 3 and calls[0] == (arch.n_params,)
    verdict = convergence.judge(history)  # 12 steps from the start: the ELBO is still climbing
    assert verdict.verdict == "still moving" and verdict.elbo_change > 10 * convergence.ELBO_TOL


@pytest.mark.parametrize("prior", ["flat", "normal", "laplace"])
@pytest.mark.parametrize("hypothesis", ["single", "h2", "h4"])
def test_direct_elbo_equals_pyro_trace_elbo(prior, hypothesis):
    """The fit's loss is Pyro's Trace_ELBO of the model and guide, without Pyro's tracing."""
    from pyro.infer import Trace_ELBO

    from bnnlib.models.bnn import BayesianMLP

    likelihood = get_likelihood(hypothesis)
    gen = torch.Generator().manual_seed(0)
    n = 400
    x, y = torch.rand(n, 5, generator=gen), torch.rand(n, len(likelihood.targets), generator=gen)
    y[:40, -1] = float("nan")
    arch = Architecture(5, (4,), likelihood.n_outputs)
    net = BayesianMLP(arch, likelihood, prior, 0.1, torch.full((likelihood.n_sigmas,), 0.3), gen)
    rows = torch.arange(64)
    torch.manual_seed(3)
    pyro_loss = Trace_ELBO().differentiable_loss(net.model, net.guide, x[rows], y[rows], rows, n)
    torch.manual_seed(3)
    ours = net.negative_elbo(x[rows], y[rows], n)
    # both within float32's bound of the ELBO of the same draw, recomputed in float64
    loc, log_scale, log_sigma = (p.detach() for p in (net.loc, net.log_scale, net.log_sigma))
    reference = reference_negative_elbo(likelihood, arch, prior, loc, log_scale.exp(), log_sigma.exp(), x[rows], y[rows],
                                        n, "weights", seed=3)
    assert_within(ours.detach(), reference, "direct ELBO")
    assert_within(pyro_loss.detach(), reference, "Pyro's Trace_ELBO")
    grads = torch.autograd.grad(ours, [net.loc, net.log_scale])
    torch.manual_seed(3)
    pyro_grads = torch.autograd.grad(Trace_ELBO().differentiable_loss(net.model, net.guide, x[rows], y[rows], rows, n),
                                     [net.loc, net.log_scale])

    def terms(loc, log_scale):  # the loss's terms (per parameter, per row), float64
        parts, by_row = reference_elbo_terms(likelihood, arch, prior, loc, log_scale.exp(), log_sigma.exp().double(),
                                             x[rows], y[rows], n, "weights", seed=3)
        return torch.cat([*(part.value for part in parts), by_row.value])

    jacobians = torch.autograd.functional.jacobian(terms, (loc.double(), log_scale.double()))
    # each gradient entry adds the rows' and the prior's terms, each passed forward and back
    # through the layers' sums: within f32_tol(n_terms) of the sum of the terms' |gradients|
    n_terms = len(rows) + 2 + 2 * sum(fan_in + 1 for fan_in, _ in arch.layers)
    for a, b, jacobian in zip(grads, pyro_grads, jacobians):
        assert torch.all((a - b).abs() <= 2 * f32_tol(n_terms) * jacobian.abs().sum(0))


@pytest.mark.parametrize("prior", ["flat", "normal", "laplace"])
def test_local_estimator_has_the_same_expectation_with_less_noise(prior):
    """The local reparameterisation with the KL in closed form estimates the same ELBO as Pyro's
    Trace_ELBO (equal means over many draws, within 4 standard errors), with less variance."""
    from bnnlib.models.bnn import BayesianMLP

    torch.manual_seed(0)
    likelihood, n = get_likelihood("h4"), 300
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 5, generator=gen), torch.rand(n, 2, generator=gen)
    y[:30, 1] = float("nan")
    net = BayesianMLP(Architecture(5, (4, 3), 2), likelihood, prior, 0.3, torch.tensor([0.3, 0.3]), gen)
    with torch.no_grad():
        weights = torch.stack([net.negative_elbo(x, y, n) for _ in range(3000)])
        local = torch.stack([net.negative_elbo_local(x, y, n) for _ in range(3000)])
        output = torch.stack([net.negative_elbo_local(x, y, n, local_from=2) for _ in range(3000)])
    for estimate in (local, output):
        error = math.hypot(weights.std(), estimate.std()) / math.sqrt(3000)
        assert abs(float(estimate.mean() - weights.mean())) < 4 * error
    assert local.std() < 0.5 * weights.std()


@pytest.mark.parametrize("prior", ["flat", "normal", "laplace", "wide"])
def test_closed_form_prior_term_equals_its_monte_carlo_estimate(prior):
    from bnnlib.models.priors import expected_log_ratio, make_prior

    fan_in = torch.tensor([38.0, 38.0, 64.0, 1.0])
    loc, scale = torch.tensor([0.3, -0.1, 0.0, 2.0]), torch.tensor([0.05, 0.2, 0.01, 0.5])
    q = torch.distributions.Normal(loc, scale)
    theta = q.sample((200_000,))
    samples = (q.log_prob(theta).sum(-1) - make_prior(prior, fan_in).log_prob(theta)).double()
    standard_error = float(samples.std()) / math.sqrt(len(samples))
    assert abs(float(expected_log_ratio(prior, fan_in, loc, scale)) - float(samples.mean())) < 5 * standard_error


def test_the_wide_prior_is_the_normal_prior_ten_times_wider():
    from bnnlib.models.priors import WIDE, make_prior, prior_std

    fan_in = torch.tensor([38.0, 64.0])
    # a division, a square root and a product in float32, in either order
    torch.testing.assert_close(make_prior("wide", fan_in).base_dist.scale, WIDE * torch.sqrt(2.0 / fan_in),
                               rtol=f32_tol(3), atol=0)
    torch.testing.assert_close(prior_std("wide", fan_in), WIDE * prior_std("normal", fan_in), rtol=f32_tol(3), atol=0)
    assert prior_std("uniform", fan_in) is None


def test_unknown_estimator_is_a_clear_error():
    from bnnlib.errors import BnnlibError

    with pytest.raises(BnnlibError, match="unknown ELBO estimator 'magic'.*'local'"):
        fit_bnn(torch.rand(10, 2), torch.rand(10, 1), Architecture(2, (), 1), get_likelihood("single"), "normal",
                SVIConfig(estimator="magic"), progress=False)


def test_a_fit_whose_loss_overflows_stops_with_its_last_finite_guide(monkeypatch):
    from bnnlib.models import bnn

    calls = {"n": 0}
    real = bnn.BayesianMLP.negative_elbo_local

    def overflowing(self, *args, **kwargs):
        calls["n"] += 1
        loss = real(self, *args, **kwargs)
        return loss * float("inf") if calls["n"] > 7 else loss

    monkeypatch.setattr(bnn.BayesianMLP, "negative_elbo_local", overflowing)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(600, 4, generator=gen), torch.rand(600, 1, generator=gen)
    post = fit_bnn(x, y, Architecture(4, (5,), 1), get_likelihood("single"), "flat",
                   SVIConfig(batch_size=128, epochs=4, seed=1), progress=False)
    history = post.history
    assert history["stopped_at_step"] == 8 and history["step"] == [5, 8]
    assert math.isnan(history["elbo_per_row"][-1]) and math.isfinite(history["elbo_per_row"][0])
    assert torch.isfinite(post.loc).all() and torch.isfinite(post.scale).all()
    assert convergence.judge(history).verdict == "diverging"


def test_a_guide_started_at_the_prior_has_zero_means_and_the_priors_stds():
    from bnnlib.errors import BnnlibError
    from bnnlib.models.bnn import BayesianMLP
    from bnnlib.models.priors import prior_std
    from bnnlib.evaluate.study import ModelSpec

    arch, lik = Architecture(5, (4,), 1), get_likelihood("single")
    gen = torch.Generator().manual_seed(0)
    net = BayesianMLP(arch, lik, "laplace", None, torch.tensor([0.2]), gen, guide_init="prior")
    p = arch.n_params
    assert torch.all(net.loc[:p] == 0)
    # std -> log -> exp in float32: a few roundings of the std (|log std| < 5 here)
    close = functools.partial(torch.testing.assert_close, rtol=f32_tol(4), atol=0)
    close(net.log_scale[:p].exp(), prior_std("laplace", net.fan_in[:p]))
    # init_scale is a multiple of the prior's std for this start, an absolute std for the talk's
    shrunk = BayesianMLP(arch, lik, "laplace", 0.1, torch.tensor([0.2]), gen, guide_init="prior")
    close(shrunk.log_scale[:p].exp(), 0.1 * prior_std("laplace", net.fan_in[:p]))
    talk = BayesianMLP(arch, lik, "laplace", None, torch.tensor([0.2]), gen, guide_init="he")
    close(talk.log_scale.exp(), torch.full_like(talk.log_scale, 0.01))
    assert ModelSpec("x", prior="normal", guide_init="prior").init_scale == 1.0
    assert ModelSpec("x", prior="normal").init_scale == 0.01
    with pytest.raises(BnnlibError, match="init_scale must be a positive number"):
        ModelSpec("x", prior="normal", init_scale=0.0)
    with pytest.raises(BnnlibError, match="flat prior has no std"):
        BayesianMLP(arch, lik, "flat", 0.01, torch.tensor([0.2]), gen, guide_init="prior")
    with pytest.raises(BnnlibError, match="guide initialisation 'middle'"):
        ModelSpec("x", prior="normal", guide_init="middle")
    with pytest.raises(BnnlibError, match="flat prior has no std"):
        ModelSpec("x", prior="uniform", guide_init="prior")
    assert ModelSpec("b", method="baseline", guide_init="prior").guide_init == "he"  # no guide to start
