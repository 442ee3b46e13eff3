"""The heteroscedastic likelihood and the split of the predictive variance into an epistemic part
(the draws disagree) and an aleatoric part (the noise each draw expects)."""

import functools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.bnn import BayesianMLP, SVIConfig, fit_bnn
from bnnlib.models.likelihoods import (NOISE_FLOOR, _UNIT_SHIFT, get_likelihood, masked_normal_log_prob,
                                        noise_ratio)
from bnnlib.models.network import Architecture, fan_in_per_param, he_init, unflatten
from bnnlib.evaluate.predictive import DropoutDraws, NoisyDraws, ThetaDraws, score_draws, split_variance
from bnnlib.evaluate.study import single_threaded
from tolerances import (Bounded, assert_within, f32_tol, f64_tol, mean_over_draws, mean_square_over_draws,
                        network, variance_over_draws)
from tolerances import unflatten as unflatten_bounded

HETERO = get_likelihood("hetero")


def noisy_feature_data(n: int = 2000, seed: int = 0):
    """y = x0 + N(0, (0.1 + 0.4 x1)^2): the noise grows with feature 1; x2 is irrelevant."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=gen)
    true_sd = 0.1 + 0.4 * x[:, 1]
    y = x[:, 0] + true_sd * torch.randn(n, generator=gen)
    return x, y.unsqueeze(1), true_sd.numpy()


def eras_of(n: int, n_eras: int = 10) -> np.ndarray:
    return np.repeat([f"{e:04d}" for e in range(n_eras)], math.ceil(n / n_eras))[:n]


def random_draws(likelihood, n_draws: int = 9, n_inputs: int = 4, hidden=(6,), seed: int = 0) -> ThetaDraws:
    arch = Architecture(n_inputs, hidden, likelihood.n_outputs)
    gen = torch.Generator().manual_seed(seed)
    thetas = torch.randn(n_draws, arch.n_params + likelihood.n_head_params, generator=gen) * 0.7
    return ThetaDraws(thetas, arch, likelihood)


def main_mean_reference(draws: ThetaDraws, x: torch.Tensor) -> Bounded:
    """Each draw's main mean [S, n] from its network's outputs and the likelihood's definition of
    the main target's mean, in float64, with the bound on a float32 evaluation's error."""
    p, likelihood = draws.arch.n_params, draws.likelihood
    out = network(x, unflatten(draws.thetas[:, :p], draws.arch))  # [S, n, outputs]
    head = Bounded.of(draws.thetas[:, p:])
    if likelihood.name in ("h2", "h3"):  # a_0 z + c_0
        k = len(likelihood.targets)
        return out[..., 0] * head[:, 0:1] + head[:, k : k + 1]
    if likelihood.name == "h4":  # u + beta v
        return out[..., 0] + head[:, 0:1] * out[..., 1]
    return out[..., 0]  # single, h1, hetero


def test_a_heteroscedastic_bnn_recovers_noise_that_grows_with_a_feature():
    x, y, true_sd = noisy_feature_data()
    arch = Architecture(3, (16,), HETERO.n_outputs)
    config = SVIConfig(batch_size=256, steps=600, lr=1e-2, seed=0)
    post = single_threaded(fit_bnn, x, y, arch, HETERO, "normal", config, False)  # one thread: faster on small nets
    draws = ThetaDraws(post.sample(100, torch.Generator().manual_seed(1)), arch, HETERO)
    split = split_variance(NoisyDraws(draws, HETERO, post.sigma), x, eras_of(len(x)), pd.RangeIndex(len(x)))
    fitted_sd = np.sqrt(split.aleatoric)
    print(f"corr(fitted sd, true sd) {np.corrcoef(fitted_sd, true_sd)[0, 1]:.4f}, corr with x1 "
          f"{np.corrcoef(fitted_sd, x[:, 1].numpy())[0, 1]:.4f}, mean fitted/true sd {np.mean(fitted_sd / true_sd):.4f}, "
          f"aleatoric {split.aleatoric.mean():.5f}, epistemic {split.epistemic.mean():.6f}, sigma {float(post.sigma[0]):.4f}")
    assert np.corrcoef(fitted_sd, true_sd)[0, 1] > 0.9
    assert np.corrcoef(fitted_sd, x[:, 1].numpy())[0, 1] > 0.9  # increasing in x1
    assert 0.8 < np.mean(fitted_sd / true_sd) < 1.25
    assert split.aleatoric.mean() > 20 * split.epistemic.mean()  # 2000 rows pin the mean down; the noise stays
    assert np.corrcoef(split.mean, x[:, 0].numpy())[0, 1] > 0.95


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_a_point_network_trained_by_gaussian_nll_recovers_the_noise(dropout):
    x, y, true_sd = noisy_feature_data()
    arch = Architecture(3, (16,), HETERO.n_outputs)
    config = TrainConfig(batch_size=256, steps=600, lr=1e-2, dropout=dropout, heteroscedastic=True)
    fit = single_threaded(train_mlp, x, y[:, 0], arch, config, None, False)
    assert fit.sigma.shape == (1,) and len(fit.history["train_mse"]) > 0
    source = (ThetaDraws(fit.theta.unsqueeze(0), arch, HETERO) if dropout == 0
              else DropoutDraws(fit.theta, arch, dropout, 20))
    split = split_variance(NoisyDraws(source, HETERO, fit.sigma), x, eras_of(len(x)), pd.RangeIndex(len(x)))
    assert np.corrcoef(np.sqrt(split.aleatoric), true_sd)[0, 1] > 0.9
    assert (split.epistemic == 0).all() if dropout == 0 else split.epistemic.mean() > 0


def split_reference(draws: ThetaDraws, sigma: torch.Tensor, x: torch.Tensor) -> dict[str, Bounded]:
    """The split's parts from their definitions, in float64, each network's outputs from its
    layers (not the predictive's code), with the bound on any float32 evaluation's error."""
    arch = draws.arch
    out = network(x, unflatten(draws.thetas[:, : arch.n_params], arch))  # [S, n, 2]
    mean = out[..., 0]  # the heteroscedastic mean is output 0, exactly
    noise = Bounded.of(sigma) * ((out[..., 1] + _UNIT_SHIFT).softplus() + NOISE_FLOOR)  # sigma * noise_ratio
    return {"mean": mean_over_draws(mean), "epistemic": variance_over_draws(mean),
            "aleatoric": mean_square_over_draws(noise)}


def test_the_split_is_the_law_of_total_variance_on_the_draws_whatever_the_chunking():
    """Each part is its definition on the draws (the mean and the variance over draws of each
    network's mean, the mean of its noise variance), computed here in float64 from the networks'
    layers: within float32's error bound however the draws are chunked, a bound far below what
    a draw counted twice, skipped or mixed up with another would move."""
    draws = random_draws(HETERO, n_draws=9)
    sigma = torch.tensor([0.3])
    x = torch.rand(60, 4, generator=torch.Generator().manual_seed(2))
    eras, ids = eras_of(60, 3), pd.RangeIndex(60)
    reference = split_reference(draws, sigma, x)
    split = split_variance(NoisyDraws(draws, HETERO, sigma), x, eras, ids, widest=6)
    import bnnlib.evaluate.predictive as predictive

    with pytest.MonkeyPatch.context() as patch:  # two draws a chunk (the last has one); the 60 rows are one group
        patch.setattr(predictive, "CHUNK_BYTES_PER_THREAD", -(-60 * 6 * 4 * 2 // torch.get_num_threads()))
        assert predictive.draw_chunk(60, 6) == 2
        chunked = split_variance(NoisyDraws(draws, HETERO, sigma), x, eras, ids, widest=6)
    for result in (split, chunked):
        for part in ("mean", "epistemic", "aleatoric"):
            assert_within(getattr(result, part), reference[part], part)
    # the bound is tight: below a thousandth of the smallest epistemic part (the others' are tighter still)
    assert float(reference["epistemic"].error.max()) < 1e-3 * float(reference["epistemic"].value.min())
    per_era = split.per_era()
    assert list(per_era.index) == ["0000", "0001", "0002"]
    # float64 means of 20 rows, in pandas' order and in numpy's
    np.testing.assert_allclose(per_era.loc["0001", "aleatoric"], split.aleatoric[20:40].mean(), rtol=f64_tol(20))


def test_epistemic_plus_aleatoric_is_the_variance_of_sampled_targets():
    """y drawn from the predictive (a draw, then its Normal): its variance per row is the sum of
    the two parts, within Monte Carlo error (5 standard errors of a sample variance)."""
    draws = random_draws(HETERO, n_draws=7, seed=5)
    sigma = torch.tensor([0.2])
    x = torch.rand(12, 4, generator=torch.Generator().manual_seed(3))
    noisy = NoisyDraws(draws, HETERO, sigma)
    split = split_variance(noisy, x, eras_of(12, 2), pd.RangeIndex(12))
    mean, noise = noisy.mean_and_noise(x, slice(None))  # [7, 12]
    gen = torch.Generator().manual_seed(0)
    k = 40_000
    pick = torch.randint(0, 7, (k, 12), generator=gen)
    y = (mean.gather(0, pick) + noise.gather(0, pick) * torch.randn(k, 12, generator=gen)).double()
    centred = y - y.mean(0)
    variance = (centred**2).mean(0)
    standard_error = torch.sqrt(((centred**4).mean(0) - variance**2) / k)
    assert torch.all((variance - torch.from_numpy(split.total)).abs() < 5 * standard_error)
    assert split.epistemic.mean() > 0.05 * split.total.mean()  # both parts matter in this check


@pytest.mark.parametrize("hypothesis", ["single", "h4"])
def test_a_homoscedastic_split_has_aleatoric_sigma_squared_and_the_scored_ensemble(hypothesis):
    likelihood = get_likelihood(hypothesis)
    draws = random_draws(likelihood, n_draws=11)
    sigma = torch.tensor([0.25, 0.4])[: likelihood.n_sigmas]
    x = torch.rand(90, 4, generator=torch.Generator().manual_seed(1))
    eras, ids = eras_of(90, 3), pd.RangeIndex(90)
    split = split_variance(NoisyDraws(draws, likelihood, sigma), x, eras, ids, widest=6)
    # sigma = 2^-2: its square, the float64 sums of 11 of them and their mean are exact on any machine
    np.testing.assert_array_equal(split.aleatoric, np.full(90, float(sigma[0]) ** 2))
    target = np.random.default_rng(0).random(90).astype(np.float32)
    scores = score_draws(draws, x, target, eras, ids, widest=6, progress=False)
    # the split's mean from the full outputs, scoring's from the mean folded into the last layer:
    # both within float32's bound of each draw's main mean from its definition (float64)
    means = main_mean_reference(draws, x)
    for ensemble in (split.mean, scores.ensemble):
        assert_within(ensemble, mean_over_draws(means), "predictive mean")
    std = variance_over_draws(means).sqrt()
    for spread in (np.sqrt(split.epistemic), scores.std):
        assert_within(spread, std, "std over draws")


def test_mc_dropout_splits_the_variance_of_the_draws_it_scores():
    """Same rows, eras and chunks as scoring: the same masks, hence the same predictive mean."""
    arch = Architecture(4, (8,), 1)
    theta = torch.randn(arch.n_params, generator=torch.Generator().manual_seed(0))
    source = DropoutDraws(theta, arch, 0.2, 15, seed=3)
    x = torch.rand(60, 4, generator=torch.Generator().manual_seed(1))
    eras, ids = eras_of(60, 3), pd.RangeIndex(60)
    split = split_variance(NoisyDraws(source, get_likelihood("single"), torch.tensor([0.3])), x, eras, ids, widest=8)
    target = np.random.default_rng(0).random(60).astype(np.float32)
    scores = score_draws(source, x, target, eras, ids, widest=8, progress=False)
    # the same float32 predictions, summed in float64 per chunk here and draw by draw in scoring:
    # a few eps64 per draw of the mean |prediction| (at most the root mean square, sqrt(mean^2 + var))
    rms = np.sqrt(split.mean**2 + split.epistemic)
    assert np.all(np.abs(split.mean - scores.ensemble) <= f64_tol(2 * source.n_draws) * rms)
    np.testing.assert_allclose(split.aleatoric, float(torch.tensor(0.3)) ** 2, rtol=f64_tol(source.n_draws + 1))


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_prior(prior: str, fan_in: torch.Tensor, theta: Bounded) -> Bounded:
    """The prior's log density per parameter: Normal(0, sqrt(2 / fan_in)) (wide: 10 times that),
    Laplace of the same variance, or 0 (flat)."""
    if prior == "flat":
        return Bounded(torch.zeros_like(theta.value))
    std = (2.0 / Bounded.of(fan_in)).sqrt() * (10.0 if prior == "wide" else 1.0)
    if prior in ("normal", "wide"):
        return -0.5 * (theta / std).square() - std.log() - LOG_SQRT_2PI
    b = std / math.sqrt(2.0)
    return -(2.0 * b).log() - theta.abs() / b


def reference_elbo_terms(likelihood, arch: Architecture, prior: str, loc, scale, sigma, x, y, n_rows: int,
                         estimator: str, seed: int) -> tuple[list[Bounded], Bounded]:
    """A mini-batch's -ELBO term by term, from the definitions (as they were before the
    heteroscedastic likelihood existed: each target Normal around its hypothesis's mean with its
    own sigma, a missing target dropping its own term; hetero: sigma times `noise_ratio` of the
    second output), in float64 from the estimator's own random draws (torch's generator seeded
    with `seed`), each with the bound on a float32 evaluation's error.

    loc, scale, sigma: the guide's means and stds and the noise scales, as the code holds them
    (float32). estimator: 'weights' (log q - log p at one draw of theta), 'output' or 'local'
    (the prior term in closed form; the local reparameterisation from the output layer or from
    the first). Returns (prior_parts, rows): -ELBO = sum of each part's sum - rows' sum, with
    rows each row's log-likelihood times n_rows / batch."""
    torch.manual_seed(seed)
    loc, scale = Bounded.of(loc), Bounded.of(scale)
    theta = loc + scale * torch.randn(loc.value.shape)  # the guide's draw (shared by the local estimators' other layers)
    p, last = arch.n_params, len(arch.layers) - 1
    local_from = {"weights": last + 1, "output": last, "local": 0}[estimator]
    h = Bounded.of(x)
    layers = zip(unflatten_bounded(theta[:p], arch), unflatten_bounded(loc[:p], arch),
                 unflatten_bounded((scale * scale)[:p], arch))
    for i, ((w, b), (w_mu, b_mu), (w_var, b_var)) in enumerate(layers):
        if i < local_from:
            a = h.linear(w, b)
        else:  # pre-activations drawn per row: Normal(h w_mu + b_mu, h^2 w_var + b_var)
            mean = h.linear(w_mu, b_mu)
            a = mean + (h.square().linear(w_var, b_var) + 1e-12).sqrt() * torch.randn(mean.value.shape)
        h = a.relu() if i < last else a
    out, head = h, theta[p:]
    if likelihood.name == "single":
        means = out
    elif likelihood.heteroscedastic:
        means = out[:, :1]
    elif likelihood.name == "h1":
        means = out.expand(len(x), len(likelihood.targets))
    elif likelihood.name in ("h2", "h3"):  # a_k z + c_k
        k = len(likelihood.targets)
        means = out * head[:k] + head[k:]
    else:  # h4: (u + beta v, v)
        means = Bounded.stack([out[:, 0] + head[0] * out[:, 1], out[:, 1]], -1)
    noise = Bounded.of(sigma)[list(likelihood.sigma_index)]
    if likelihood.heteroscedastic:
        noise = noise * ((out[:, -1:] + _UNIT_SHIFT).softplus() + NOISE_FLOOR)
    z = (Bounded.of(torch.nan_to_num(y)) - means) / noise
    log_density = (-0.5 * z.square() - noise.log() - LOG_SQRT_2PI).masked(~torch.isnan(y))
    rows = log_density.sum(-1) * (n_rows / len(x))
    fan_in = torch.cat([fan_in_per_param(arch), torch.ones(likelihood.n_head_params)])
    if estimator == "weights":
        log_q = -0.5 * ((theta - loc) / scale).square() - scale.log() - LOG_SQRT_2PI
        return [log_q, -_log_prior(prior, fan_in, theta)], rows
    if prior not in ("flat", "normal", "wide"):
        raise NotImplementedError(f"no closed-form reference for the {prior} prior")
    log_q = -0.5 * math.log(2 * math.pi * math.e) - scale.log()  # minus q's entropy
    if prior == "flat":
        return [log_q], rows
    std = (2.0 / Bounded.of(fan_in)).sqrt() * (10.0 if prior == "wide" else 1.0)
    log_p = -LOG_SQRT_2PI - std.log() - (scale.square() + loc.square()) / (2.0 * std.square())
    return [log_q - log_p], rows


def reference_negative_elbo(*args, **kwargs) -> Bounded:
    """`reference_elbo_terms` summed as the code sums them: each prior part, then the rows."""
    parts, rows = reference_elbo_terms(*args, **kwargs)
    total = parts[0].sum(0)
    for part in parts[1:]:
        total = total + part.sum(0)
    return total - rows.sum(0)


EXISTING = [("single", "output"), ("single", "weights"), ("h4", "output"), ("h2", "local")]


@pytest.mark.parametrize(("hypothesis", "estimator"), EXISTING)
def test_existing_likelihoods_fit_the_same_posterior_as_before(hypothesis, estimator):
    """The heteroscedastic likelihood must not change the others' fits. Their objective: a fit's
    first loss (lr 0, so the guide is its start; one batch of every row) is the ELBO of the
    likelihood's definition, recomputed here in float64 from the same draws, within float32's
    error bound. Their training: the rows whose every target is missing change no bit of a
    20-step fit when their features move (identical shapes, so identical bits)."""
    likelihood = get_likelihood(hypothesis)
    gen = torch.Generator().manual_seed(7)
    n, seed = 256, 3
    x, y = torch.rand(n, 4, generator=gen), torch.rand(n, len(likelihood.targets), generator=gen)
    y[:20, -1] = float("nan")
    arch = Architecture(4, (5,), likelihood.n_outputs)
    start = single_threaded(fit_bnn, x, y, arch, likelihood, "normal",
                            SVIConfig(batch_size=n, steps=1, lr=0.0, seed=seed, estimator=estimator), False)
    generator = torch.Generator().manual_seed(seed)  # the fit's: the network's initial means, then the batches
    he_init(arch, generator)
    rows = torch.randperm(n, generator=generator)
    reference = reference_negative_elbo(likelihood, arch, "normal", start.loc, start.scale, start.sigma, x[rows],
                                        y[rows], n, estimator, seed)
    loss = -start.history["elbo_per_row"][0] * n  # the ELBO per row of the one step's batch (exact: n = 2^8)
    assert_within(torch.tensor(loss), reference, "first loss")
    # the bound is about f32_tol(batch) of the loss (~1e-4): a likelihood term that changed is far outside it
    assert float(reference.error) < 1e-3 * abs(float(reference.value))

    missing = y.clone()
    missing[20:40] = float("nan")  # rows with no target at all
    moved = x.clone()
    moved[20:40] = 100.0
    config = SVIConfig(batch_size=64, steps=20, seed=seed, estimator=estimator)
    fits = [single_threaded(fit_bnn, features, missing, arch, likelihood, "normal", config, False)
            for features in (x, moved)]
    for name in ("loc", "scale", "sigma"):
        assert torch.equal(getattr(fits[0], name), getattr(fits[1], name)), name
    assert fits[0].history["elbo_per_row"] == fits[1].history["elbo_per_row"]
    assert not torch.equal(fits[0].loc, start.loc)  # the fit moved


def test_a_missing_target_masks_only_its_rows_term():
    mean, y = torch.zeros(5, 1), torch.tensor([[0.1], [float("nan")], [-0.2], [0.3], [0.0]])
    sigma = torch.tensor([[0.1], [0.2], [0.3], [0.4], [0.5]])
    log_prob = masked_normal_log_prob(y, mean, sigma)
    assert log_prob[1] == 0
    expected = torch.distributions.Normal(mean, sigma).log_prob(torch.nan_to_num(y))[:, 0]
    keep = torch.tensor([0, 2, 3, 4])
    # two float32 evaluations of z^2 / 2 + log sigma + log sqrt(2 pi), a few roundings each
    magnitude = 0.5 * (y / sigma) ** 2 + sigma.log().abs() + LOG_SQRT_2PI
    torch.testing.assert_close(log_prob[keep], expected[keep], rtol=0, atol=f32_tol(6) * float(magnitude[keep].max()))
    # in the ELBO, a row whose target is missing adds nothing whatever its features
    gen = torch.Generator().manual_seed(0)
    net = BayesianMLP(Architecture(3, (4,), 2), HETERO, "normal", 0.1, torch.tensor([0.3]), gen)
    x, y = torch.rand(32, 3, generator=gen), torch.rand(32, 1, generator=gen)
    y[5] = float("nan")
    moved = x.clone()
    moved[5] = 100.0
    for estimate in (net.negative_elbo, net.negative_elbo_local):
        losses = []
        for features in (x, moved):
            torch.manual_seed(1)
            losses.append(estimate(features, y, 1000))
        assert torch.equal(losses[0], losses[1])  # the same shapes and draws; row 5 adds an exact 0


@pytest.mark.parametrize("estimator", ["weights", "output", "local"])
def test_every_elbo_estimator_uses_each_rows_noise_with_the_minibatch_scaling(estimator):
    """Either estimator's loss is the -ELBO of the draws it makes: the prior term plus n / batch
    times each row's heteroscedastic log density (its own noise), recomputed in float64 from the
    same draws; for two n, the same draw with the likelihood weighted differently."""
    gen = torch.Generator().manual_seed(0)
    arch = Architecture(3, (4,), 2)
    net = BayesianMLP(arch, HETERO, "normal", 0.1, torch.tensor([0.3]), gen)
    x, y = torch.rand(16, 3, generator=gen), torch.rand(16, 1, generator=gen)
    y[2] = float("nan")
    estimate = {"weights": net.negative_elbo, "local": net.negative_elbo_local,
                "output": functools.partial(net.negative_elbo_local, local_from=1)}[estimator]
    scale, sigma = torch.exp(net.log_scale.detach()), torch.exp(net.log_sigma.detach())  # as the estimators compute them
    with torch.no_grad():
        for n in (16, 48):
            torch.manual_seed(1)
            loss = estimate(x, y, n)
            reference = reference_negative_elbo(HETERO, arch, "normal", net.loc.detach(), scale, sigma, x, y, n,
                                                estimator, seed=1)
            assert_within(loss, reference, f"loss at n = {n}")


def test_the_direct_heteroscedastic_elbo_equals_pyro_trace_elbo():
    from pyro.infer import Trace_ELBO

    gen = torch.Generator().manual_seed(0)
    n = 200
    x, y = torch.rand(n, 5, generator=gen), torch.rand(n, 1, generator=gen)
    y[:20] = float("nan")
    net = BayesianMLP(Architecture(5, (4,), 2), HETERO, "laplace", 0.1, torch.tensor([0.3]), gen)
    rows = torch.arange(64)
    torch.manual_seed(3)
    pyro_loss = Trace_ELBO().differentiable_loss(net.model, net.guide, x[rows], y[rows], rows, n)
    torch.manual_seed(3)
    ours = net.negative_elbo(x[rows], y[rows], n)
    # both within float32's bound of the ELBO of the same draw, recomputed in float64
    scale, sigma = torch.exp(net.log_scale.detach()), torch.exp(net.log_sigma.detach())
    reference = reference_negative_elbo(HETERO, net.arch, "laplace", net.loc.detach(), scale, sigma, x[rows], y[rows],
                                        n, "weights", seed=3)
    assert_within(ours.detach(), reference, "direct ELBO")
    assert_within(pyro_loss.detach(), reference, "Pyro's Trace_ELBO")


def test_noise_ratio_is_one_at_the_priors_centre_and_floored():
    # float32: the shift rounded, softplus (a few ulps) and the floor added
    assert float(noise_ratio(torch.tensor(0.0))) == pytest.approx(1.0, abs=f32_tol(4))
    assert float(noise_ratio(torch.tensor(-1e4))) == pytest.approx(NOISE_FLOOR, rel=f32_tol(1))  # softplus underflows to 0
    assert torch.isfinite(noise_ratio(torch.tensor(1e30)))
    assert HETERO.main_mean(torch.tensor([[[2.0, -5.0]]]), torch.zeros(1, 0)).item() == 2.0


def test_study_splits_the_variance_of_bnns_ensembles_and_dropout(tmp_path):
    from bnnlib.infra.cache import Cache
    from bnnlib.data import load_synthetic
    from bnnlib.evaluate.study import ModelSpec, evaluate_model, evaluate_variance_split, fit_model, noisy_draws

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    cache = Cache(tmp_path / "cache")
    common = dict(hidden=(8,), epochs=1, batch_size=256)
    specs = [ModelSpec("bnn", hypothesis="hetero", prior="normal", draws=6, **common),
             ModelSpec("ensemble", method="ensemble", hypothesis="hetero", members=3, **common),
             ModelSpec("dropout", method="dropout", hypothesis="hetero", draws=5, **common),
             ModelSpec("baseline", method="baseline", **common)]
    n_eras = dataset.validation["era"].nunique()
    splits, scored = {}, {}
    for spec in specs:
        split = splits[spec.name] = evaluate_variance_split(spec, dataset, cache)
        per_era = split.per_era()
        assert len(per_era) == n_eras and np.isfinite(per_era.to_numpy()).all()
        assert (split.aleatoric > 0).all() and (split.epistemic >= 0).all()
        scored[spec.name] = evaluate_model(spec, dataset, cache, progress=False)  # the fit is shared
    assert [e.kind for e in cache.events if e.hit] == ["fit"] * len(specs)
    again = evaluate_variance_split(specs[1], dataset, cache)
    assert cache.events[-1].hit and cache.events[-1].kind == "variance_split"
    for part in ("mean", "epistemic", "aleatoric"):  # the cache gives back the very split first computed
        np.testing.assert_array_equal(getattr(again, part), getattr(splits["ensemble"], part))
    assert again.ids.equals(splits["ensemble"].ids)
    x = torch.from_numpy(dataset.arrays("validation", [dataset.roles.main])[0])
    for spec in specs:  # the split's predictive mean is the mean its scores rank
        split, ensemble = splits[spec.name], scored[spec.name].scores.ensemble
        source = noisy_draws(spec, fit_model(spec, dataset, cache), x.shape[1]).source
        if isinstance(source, ThetaDraws):  # full outputs against the mean folded into the last layer
            reference = mean_over_draws(main_mean_reference(source, x))
            assert_within(split.mean, reference, spec.name)
            assert_within(ensemble, reference, spec.name)
        else:  # MC dropout: the same chunks of the same masks; float64 sums in another order
            rms = np.sqrt(split.mean**2 + split.epistemic)
            assert np.all(np.abs(split.mean - ensemble) <= f64_tol(2 * source.n_draws) * rms)
    with pytest.raises(BnnlibError, match="multi-target hypotheses are the BNN's"):
        ModelSpec("x", method="ensemble", hypothesis="h2")


def test_the_per_era_plot_draws_both_parts_and_shades_the_marked_eras():
    from bnnlib.report.plots import epistemic_aleatoric

    eras = [f"{e:04d}" for e in range(8)]
    frame = pd.DataFrame({"epistemic": np.linspace(1e-4, 2e-4, 8), "aleatoric": np.full(8, 0.05)},
                         index=pd.Index(eras, name="era"))
    marked = pd.Series([False, True, True, False, False, True, False, False], index=eras)
    figure = epistemic_aleatoric({"hetero BNN": frame, "ensemble": frame}, marked, title="variance by era")
    ax = figure.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["epistemic", "aleatoric"]
    assert len(ax.patches) == 2  # two runs of marked eras: 0001-0002 and 0005
    assert ax.get_yscale() == "log"
    with pytest.raises(BnnlibError, match="nothing to plot"):
        epistemic_aleatoric({}, title="empty")
