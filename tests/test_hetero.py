"""The heteroscedastic likelihood and the split of the predictive variance into an epistemic part
(the draws disagree) and an aleatoric part (the noise each draw expects)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.bnn import BayesianMLP, SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood, masked_normal_log_prob, noise_ratio
from bnnlib.models.network import Architecture, forward, unflatten
from bnnlib.evaluate.predictive import DropoutDraws, NoisyDraws, ThetaDraws, score_draws, split_variance
from bnnlib.evaluate.study import single_threaded

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


def test_the_split_is_the_law_of_total_variance_on_the_draws_whatever_the_chunking():
    draws = random_draws(HETERO, n_draws=9)
    sigma = torch.tensor([0.3])
    x = torch.rand(60, 4, generator=torch.Generator().manual_seed(2))
    eras, ids = eras_of(60, 3), pd.RangeIndex(60)
    means, noises = [], []
    for theta in draws.thetas:  # one network at a time, from the likelihood's definitions
        out = forward(x, unflatten(theta[: draws.arch.n_params], draws.arch))
        means.append(out[:, 0])
        noises.append(0.3 * noise_ratio(out[:, 1]))
    means, noises = torch.stack(means).double(), torch.stack(noises).double()
    split = split_variance(NoisyDraws(draws, HETERO, sigma), x, eras, ids, widest=6)
    np.testing.assert_allclose(split.mean, means.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(split.epistemic, means.var(0, unbiased=False), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(split.aleatoric, (noises**2).mean(0), rtol=1e-5)
    np.testing.assert_array_equal(split.total, split.epistemic + split.aleatoric)
    import bnnlib.evaluate.predictive as predictive

    with pytest.MonkeyPatch.context() as patch:  # two draws a chunk (the last chunk has one)
        patch.setattr(predictive, "CHUNK_BYTES_PER_THREAD", 20 * 6 * 4 * 2 // torch.get_num_threads())
        assert predictive.draw_chunk(20, 6) == 2
        chunked = split_variance(NoisyDraws(draws, HETERO, sigma), x, eras, ids, widest=6)
    for part in ("mean", "epistemic", "aleatoric"):
        np.testing.assert_allclose(getattr(chunked, part), getattr(split, part), rtol=1e-6, atol=1e-9)
    per_era = split.per_era()
    assert list(per_era.index) == ["0000", "0001", "0002"]
    np.testing.assert_allclose(per_era.loc["0001", "aleatoric"], split.aleatoric[20:40].mean())


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
    np.testing.assert_array_equal(split.aleatoric, np.full(90, float(sigma[0]) ** 2))
    target = np.random.default_rng(0).random(90).astype(np.float32)
    scores = score_draws(draws, x, target, eras, ids, widest=6, progress=False)
    np.testing.assert_allclose(split.mean, scores.ensemble, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(split.epistemic), scores.std, rtol=1e-4, atol=1e-6)


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
    np.testing.assert_allclose(split.mean, scores.ensemble, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(split.aleatoric, 0.3**2, rtol=1e-6)


# values of fits computed with the code before the heteroscedastic likelihood existed (commit
# 50196f5); h4's and h2's since their head parameters start at sigma / sqrt(n) (session 8)
BEFORE = {
    ("single", "output"): ([-0.06960785388946533, 0.26964786648750305, -0.5377580523490906],
                           [0.010158129967749119, 0.010185068473219872], [0.2966729998588562], -0.7851633131504059),
    ("single", "weights"): ([-0.06868044286966324, 0.2687196731567383, -0.538543701171875],
                            [0.01017470471560955, 0.010186666622757912], [0.2965969145298004], -0.7947537004947662),
    ("h4", "output"): ([-0.03583761304616928, 0.23626753687858582, -0.5346380472183228],
                       [0.010023974813520908, 0.010007555596530437], [0.30007830262184143, 0.2913386821746826],
                       -19.075209617614746),
    ("h2", "local"): ([-0.06964564323425293, 0.2698054313659668, -0.5363925695419312],
                      [0.01017589308321476, 0.01018591783940792],
                      [0.2940181493759155, 0.2943274676799774, 0.28046318888664246], -1.756746083498001),
}


@pytest.mark.parametrize(("hypothesis", "estimator"), list(BEFORE))
def test_existing_likelihoods_fit_the_same_posterior_as_before(hypothesis, estimator):
    likelihood = get_likelihood(hypothesis)
    gen = torch.Generator().manual_seed(7)
    x, y = torch.rand(256, 4, generator=gen), torch.rand(256, len(likelihood.targets), generator=gen)
    y[:20, -1] = float("nan")
    # on one thread, as the values were computed (a product split over threads rounds differently)
    post = single_threaded(fit_bnn, x, y, Architecture(4, (5,), likelihood.n_outputs), likelihood, "normal",
                           SVIConfig(batch_size=64, steps=20, seed=3, estimator=estimator), False)
    loc, scale, sigma, elbo = BEFORE[(hypothesis, estimator)]
    np.testing.assert_allclose(post.loc[:3], loc, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(post.scale[:2], scale, rtol=1e-6)
    np.testing.assert_allclose(post.sigma, sigma, rtol=1e-6)
    assert post.history["elbo_per_row"][-1] == pytest.approx(elbo, rel=1e-6)


def test_a_missing_target_masks_only_its_rows_term():
    mean, y = torch.zeros(5, 1), torch.tensor([[0.1], [float("nan")], [-0.2], [0.3], [0.0]])
    sigma = torch.tensor([[0.1], [0.2], [0.3], [0.4], [0.5]])
    log_prob = masked_normal_log_prob(y, mean, sigma)
    assert log_prob[1] == 0
    expected = torch.distributions.Normal(mean, sigma).log_prob(torch.nan_to_num(y))[:, 0]
    keep = torch.tensor([0, 2, 3, 4])
    torch.testing.assert_close(log_prob[keep], expected[keep])
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
        torch.testing.assert_close(losses[0], losses[1])


@pytest.mark.parametrize("estimator", ["weights", "output"])
def test_both_elbo_estimators_use_each_rows_noise_with_the_minibatch_scaling(estimator):
    """At a guide of (nearly) zero std, the likelihood term of the loss is n / batch times the
    heteroscedastic log density at the guide's mean."""
    gen = torch.Generator().manual_seed(0)
    arch = Architecture(3, (4,), 2)
    net = BayesianMLP(arch, HETERO, "normal", 1e-9, torch.tensor([0.3]), gen)
    x, y = torch.rand(16, 3, generator=gen), torch.rand(16, 1, generator=gen)
    y[2] = float("nan")
    estimate = net.negative_elbo if estimator == "weights" else net.negative_elbo_local
    with torch.no_grad():
        loss = []
        for n in (16, 48):  # the same draw for both: only the likelihood's weight differs
            torch.manual_seed(1)
            loss.append(estimate(x, y, n))
        out = forward(x, unflatten(net.loc, arch))
        log_lik = masked_normal_log_prob(y, out[:, :1], 0.3 * noise_ratio(out[:, 1:])).sum()
    torch.testing.assert_close(loss[0] - loss[1], 2 * log_lik, rtol=1e-4, atol=1e-3)


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
    torch.testing.assert_close(net.negative_elbo(x[rows], y[rows], n), pyro_loss, rtol=1e-5, atol=1e-4)


def test_noise_ratio_is_one_at_the_priors_centre_and_floored():
    assert float(noise_ratio(torch.tensor(0.0))) == pytest.approx(1.0, abs=1e-6)
    assert float(noise_ratio(torch.tensor(-1e4))) == pytest.approx(0.01)
    assert torch.isfinite(noise_ratio(torch.tensor(1e30)))
    assert HETERO.main_mean(torch.tensor([[[2.0, -5.0]]]), torch.zeros(1, 0)).item() == 2.0


def test_study_splits_the_variance_of_bnns_ensembles_and_dropout(tmp_path):
    from bnnlib.infra.cache import Cache
    from bnnlib.data import load_synthetic
    from bnnlib.evaluate.study import ModelSpec, evaluate_model, evaluate_variance_split

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    cache = Cache(tmp_path / "cache")
    common = dict(hidden=(8,), epochs=1, batch_size=256)
    specs = [ModelSpec("bnn", hypothesis="hetero", prior="normal", draws=6, **common),
             ModelSpec("ensemble", method="ensemble", hypothesis="hetero", members=3, **common),
             ModelSpec("dropout", method="dropout", hypothesis="hetero", draws=5, **common),
             ModelSpec("baseline", method="baseline", **common)]
    n_eras = dataset.validation["era"].nunique()
    for spec in specs:
        split = evaluate_variance_split(spec, dataset, cache)
        per_era = split.per_era()
        assert len(per_era) == n_eras and np.isfinite(per_era.to_numpy()).all()
        assert (split.aleatoric > 0).all() and (split.epistemic >= 0).all()
        scored = evaluate_model(spec, dataset, cache, progress=False)  # the fit is shared
        np.testing.assert_allclose(split.mean, scored.scores.ensemble, rtol=1e-5, atol=1e-6)
    assert [e.kind for e in cache.events if e.hit] == ["fit"] * len(specs)
    again = evaluate_variance_split(specs[1], dataset, cache)
    assert cache.events[-1].hit and cache.events[-1].kind == "variance_split"
    np.testing.assert_array_equal(again.aleatoric, evaluate_variance_split(specs[1], dataset, cache).aleatoric)
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
