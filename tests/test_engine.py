"""The Bayesian engine: posterior correctness, priors, vectorised draws, errors."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture, fan_in_per_param, forward, forward_draws, he_init, unflatten
from bnnlib.models.priors import make_prior
from bnnlib.evaluate.predictive import EraLayout, ThetaDraws, draw_chunk, score_draws
from bnnlib.evaluate.study import single_threaded
from test_hetero import main_mean_reference
from tolerances import (Bounded, assert_within, f32_tol, f64_tol, mean_over_draws, network,
                        variance_over_draws)


def test_svi_matches_analytic_bayesian_linear_regression():
    """No hidden layer, Normal prior, known noise: the mean-field optimum has the exact posterior
    mean and variances 1 / diag(precision); SVI must land there (tolerance: a quarter of a
    posterior std for the means, 15% for the stds)."""
    gen = torch.Generator().manual_seed(1)
    n, d, sigma = 500, 3, 0.3
    x = torch.randn(n, d, generator=gen)  # centred, so the posterior is well conditioned
    w_true = torch.tensor([0.5, -1.0, 2.0])
    y = (x @ w_true + 0.3 + sigma * torch.randn(n, generator=gen)).unsqueeze(1)
    arch = Architecture(d, (), 1)
    config = SVIConfig(epochs=1500, batch_size=n, lr=0.05, init_scale=0.02, sigma=sigma, seed=0, lr_final_ratio=0.003)
    post = fit_bnn(x, y, arch, get_likelihood("single"), "normal", config, progress=False)

    z = torch.cat([x, torch.ones(n, 1)], 1).double()  # theta layout: weights then bias
    prior_var = (2.0 / d) * torch.ones(d + 1, dtype=torch.double)
    precision = z.T @ z / sigma**2 + torch.diag(1 / prior_var)
    mean = torch.linalg.solve(precision, z.T @ y.double()[:, 0] / sigma**2)
    mf_std = 1 / torch.sqrt(torch.diag(precision))
    assert torch.all((post.loc.double() - mean).abs() < 0.25 * mf_std), (post.loc, mean, mf_std)
    assert torch.allclose(post.scale.double(), mf_std, rtol=0.15), (post.scale, mf_std)

    # the predictive mean of many draws is the analytic predictive mean
    draws = post.sample(4000, torch.Generator().manual_seed(0))
    preds = ThetaDraws(draws, arch, get_likelihood("single")).predict(x[:50], slice(None))
    assert torch.allclose(preds.mean(0).double(), (z[:50] @ mean), atol=0.02)


def test_prior_log_densities_match_torch_distributions():
    arch = Architecture(5, (4,), 1)
    fan_in = fan_in_per_param(arch)
    theta = torch.randn(3, arch.n_params)
    std = torch.sqrt(2 / fan_in)
    normal = torch.distributions.Normal(0, std).log_prob(theta)
    laplace = torch.distributions.Laplace(0, std / math.sqrt(2)).log_prob(theta)
    for prior, terms in (("normal", normal), ("laplace", laplace)):
        # two float32 sums of the same P terms (each a few roundings): f32_tol(P + 4) of their magnitudes apart
        tolerance = 2 * f32_tol(arch.n_params + 4) * terms.abs().sum(-1)
        assert torch.all((make_prior(prior, fan_in).log_prob(theta) - terms.sum(-1)).abs() <= tolerance)
    assert torch.all(make_prior("uniform", fan_in).log_prob(theta) == 0)
    # same variance for normal and laplace: 2 (std / sqrt 2)^2, four roundings from std^2
    torch.testing.assert_close(make_prior("laplace", fan_in).base_dist.variance, std**2, rtol=f32_tol(4), atol=0)


def test_unknown_prior_and_hypothesis_are_clear_errors():
    with pytest.raises(BnnlibError, match="unknown prior 'cauchy'.*laplace"):
        make_prior("cauchy", torch.ones(3))
    with pytest.raises(BnnlibError, match="unknown hypothesis 'h9'.*h4"):
        get_likelihood("h9")


@pytest.mark.parametrize("hidden", [(), (6,), (6, 5)])
def test_forward_draws_equals_one_network_at_a_time(hidden):
    arch = Architecture(7, hidden, 1)
    gen = torch.Generator().manual_seed(0)
    thetas = torch.stack([he_init(arch, gen) + 0.1 * torch.randn(arch.n_params, generator=gen) for _ in range(4)])
    x = torch.rand(9, 7, generator=gen)
    batched = forward_draws(x, unflatten(thetas, arch))
    exact = network(x, unflatten(thetas, arch))  # float64, with float32's error bound
    assert_within(batched, exact, "batched")
    for s in range(4):
        assert_within(forward(x, unflatten(thetas[s], arch)), exact[s], f"network {s}")


@pytest.mark.parametrize("hypothesis", ["single", "h1", "h2", "h3", "h4"])
def test_draws_predict_the_main_mean_of_every_hypothesis(hypothesis):
    """The main mean is folded into the last layer for speed; it must equal the mean of the main
    target that the likelihood gives the full outputs (column 0 of `means`)."""
    likelihood = get_likelihood(hypothesis)
    arch = Architecture(5, (6,), likelihood.n_outputs)
    gen = torch.Generator().manual_seed(4)
    thetas = torch.randn(3, arch.n_params + likelihood.n_head_params, generator=gen)
    x = torch.rand(11, 5, generator=gen)
    draws = ThetaDraws(thetas, arch, likelihood)
    predicted = draws.predict(x, slice(None))
    exact = main_mean_reference(draws, x)  # float64 from the likelihood's definition, with float32's bound
    assert_within(predicted, exact, "folded")
    for s in range(3):
        out = forward(x, unflatten(thetas[s, : arch.n_params], arch))
        assert_within(likelihood.means(out, thetas[s, arch.n_params :])[:, 0], exact[s], f"means of draw {s}")


def exact_scores(reference: Bounded, target: np.ndarray, eras: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each draw's per-era scores [S, E] of the float64 predictions, and where float32 cannot
    change them: where, within the era, neighbours in the sorted order are further apart than
    their two error bounds, any float32 evaluation ranks the rows as these do."""
    from bnnlib.scoring.metrics import draws_era_scores

    corr, numerai, determined = [], [], []
    for era in np.unique(eras):
        cols = torch.from_numpy(eras == era)
        value, error = reference.value[:, cols], reference.error[:, cols]
        order = value.argsort(1)
        value, error = value.gather(1, order), error.gather(1, order)
        determined.append(torch.all(value[:, 1:] - value[:, :-1] > error[:, 1:] + error[:, :-1], dim=1).numpy())
        era_corr, era_numerai = draws_era_scores(reference.value[:, cols], target[cols.numpy()], era)
        corr.append(era_corr.numpy())
        numerai.append(era_numerai.numpy())
    return np.stack(corr, 1), np.stack(numerai, 1), np.stack(determined, 1)


def test_scored_ensemble_is_mean_of_draws_and_chunking_changes_nothing():
    """The scores of every chunking are those of the exact predictions: the ensemble and std the
    mean and std over draws (within float32's bound), each draw's per-era scores those of its
    ranks wherever float32 cannot change them (`exact_scores`), stored as float32."""
    arch = Architecture(4, (8,), 1)
    gen = torch.Generator().manual_seed(3)
    thetas = torch.randn(37, arch.n_params, generator=gen) * 0.5
    x = torch.rand(120, 4, generator=gen)
    eras = np.repeat(["0001", "0002", "0003"], 40)
    target = np.random.default_rng(0).choice([0, 0.25, 0.5, 0.75, 1.0], 120).astype(np.float32)
    source = ThetaDraws(thetas, arch, get_likelihood("single"))
    ids = pd.Index([f"id{i}" for i in range(120)], name="id")
    reference = main_mean_reference(source, x)
    corr, numerai, determined = exact_scores(reference, target, eras)
    assert determined.mean() > 0.9  # the few draws with near-ties in an era are left out below
    scores = score_draws(source, x, target, eras, ids, widest=8, progress=False)
    import bnnlib.evaluate.predictive as predictive

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:  # three draws a chunk, six a scoring batch (the 120 rows are one group)
        patch.setattr(predictive, "CHUNK_BYTES_PER_THREAD", -(-120 * 8 * 4 * 3 // threads))
        patch.setattr(predictive, "SCORE_BYTES", 120 * 4 * 6)
        assert predictive.draw_chunk(120, 8) == 3 and predictive.score_batch(120, 3) == 6
        chunked = score_draws(source, x, target, eras, ids, widest=8, progress=False)
    with pytest.MonkeyPatch.context() as patch:  # one era a group: the same scores as three eras in one
        patch.setattr(predictive, "ROW_GROUP", 1)
        per_era = score_draws(source, x, target, eras, ids, widest=8, progress=False)
    for name, result in (("whole", scores), ("chunked", chunked), ("per era", per_era)):
        assert_within(result.ensemble, mean_over_draws(reference), f"{name}: ensemble")
        assert_within(result.std, variance_over_draws(reference).sqrt(), f"{name}: std")
        # float64 scores of 40 rows (a few roundings each), then rounded to float32
        for got, exact in ((result.draw_corr, corr), (result.draw_numerai_corr, numerai)):
            np.testing.assert_allclose(got[determined], exact[determined], rtol=f32_tol(1), atol=f64_tol(4 * 40))


def test_eras_group_until_a_group_holds_enough_rows():
    layout = EraLayout.of(np.array(["b"] * 3 + ["a"] * 5 + ["c"] * 2 + ["d"] * 4))
    assert layout.groups(6) == [range(0, 2), range(2, 4)]  # a+b: 8 rows; c+d: 6
    assert layout.groups(1) == [range(e, e + 1) for e in range(4)]
    assert layout.groups(100) == [range(0, 4)]
    assert list(layout.rows(range(1, 2))) == [0, 1, 2]  # era "b", the second in sorted order


def test_draw_chunk_bounds_memory():
    assert draw_chunk(1500, 128, 48 * 2**20) * 1500 * 128 * 4 <= 48 * 2**20
    assert draw_chunk(10**7, 128, 2**20) == 1


def test_missing_target_masks_only_its_term_and_fits_are_seeded():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 4, generator=gen)
    y = torch.rand(300, 2, generator=gen)
    y[:100, 1] = float("nan")
    arch = Architecture(4, (3,), 2)
    config = SVIConfig(epochs=2, batch_size=64, seed=5)
    a = fit_bnn(x, y, arch, get_likelihood("h4"), "laplace", config, progress=False)
    b = fit_bnn(x, y, arch, get_likelihood("h4"), "laplace", config, progress=False)
    assert torch.isfinite(a.loc).all() and a.history["elbo_per_row"][-1] == b.history["elbo_per_row"][-1]
    assert torch.equal(a.loc, b.loc)


def test_study_caches_fits_and_scores_and_rejects_bad_specs(tmp_path):
    from bnnlib.infra.cache import Cache
    from bnnlib.data import load_synthetic
    from bnnlib.evaluate.study import ModelSpec, evaluate_model

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    spec = ModelSpec("bnn", method="bnn", prior="uniform", hidden=(8,), epochs=1, batch_size=256, draws=5)
    assert spec.prior == "flat"
    cache = Cache(tmp_path / "cache")
    first = evaluate_model(spec, dataset, cache, progress=False)
    again = evaluate_model(spec, dataset, cache, progress=False)
    assert [e.hit for e in cache.events] == [False, False, True, True]
    np.testing.assert_array_equal(first.scores.ensemble, again.scores.ensemble)
    assert first.scores.draw_corr.shape == (5, dataset.validation["era"].nunique())
    evaluate_model(spec, dataset, cache, force=True, progress=False)
    assert [e.hit for e in cache.events[-2:]] == [False, False]
    with pytest.raises(BnnlibError, match="unknown method"):
        ModelSpec("x", method="svm")
    with pytest.raises(BnnlibError, match="unknown prior"):
        ModelSpec("x", prior="cauchy")


def test_models_in_worker_processes_match_in_process(tmp_path):
    """--jobs only decides where models are fitted and scored, never their numbers."""
    from bnnlib.infra.cache import Cache
    from bnnlib.data import load_synthetic
    from bnnlib.evaluate.study import ModelSpec, evaluate_models

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    specs = [ModelSpec("baseline", method="baseline", hidden=(8,), epochs=2, batch_size=256),
             ModelSpec("flat", prior="flat", hidden=(8,), epochs=2, batch_size=256, draws=7)]
    here = evaluate_models(specs, dataset, Cache(tmp_path / "here"), jobs=1)
    workers_cache = Cache(tmp_path / "workers")
    workers = evaluate_models(specs, dataset, workers_cache, jobs=2)
    assert [e.hit for e in workers_cache.events] == [False] * 4  # fits and scores, reported back
    for name in ("baseline", "flat"):  # one torch thread each (study.single_threaded), the same shapes: the same bits
        for part in ("ensemble", "std", "draw_corr", "draw_numerai_corr"):
            np.testing.assert_array_equal(getattr(workers[name].scores, part), getattr(here[name].scores, part))


def _score_range_alone(job: tuple) -> "PartialScores":  # noqa: F821
    """One range of draws scored in a worker process, on one torch thread as the whole is."""
    from bnnlib.evaluate.predictive import score_draw_range

    source, x, target, eras, draws = job
    return single_threaded(score_draw_range, source, x, target, eras, draws, 8, False)


@pytest.fixture(scope="module")
def two_workers():
    from bnnlib.infra.executor import ProcessExecutor

    with ProcessExecutor(2) as executor:
        yield executor


@pytest.mark.parametrize("kind", ["posterior", "dropout"])
def test_draw_ranges_scored_apart_combine_to_the_same_bits(kind, two_workers):
    """A cluster scores one model's draw ranges on separate workers: combined, they must be the
    very numbers one process gets, in any order the ranges come back. Here the ranges are scored
    in two spawned processes; each range has the shapes it has in the whole run and runs on one
    thread there, as the whole does here, so the bits must agree."""
    import bnnlib.evaluate.predictive as predictive
    from bnnlib.evaluate.predictive import DropoutDraws, PartialScores, combine_partials, draw_ranges

    arch = Architecture(4, (8,), 1)
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(90, 4, generator=gen)
    eras = np.repeat(["0001", "0002", "0003"], 30)
    target = np.random.default_rng(1).choice([0, 0.25, 0.5, 0.75, 1.0], 90).astype(np.float32)
    ids = pd.RangeIndex(90)
    if kind == "posterior":
        source = ThetaDraws(torch.randn(23, arch.n_params, generator=gen) * 0.5, arch, get_likelihood("single"))
    else:
        source = DropoutDraws(torch.randn(arch.n_params, generator=gen) * 0.5, arch, 0.3, 23, seed=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predictive, "DRAW_RANGE", 5)
        ranges = draw_ranges(23)
        assert ranges == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
        whole = single_threaded(score_draws, source, x, target, eras, ids, 8, False)
    partials = two_workers.map(_score_range_alone, [(source, x, target, eras, r) for r in ranges])
    assert [p.draws for p in partials] == ranges
    stored = [PartialScores.from_dict(p.as_dict()) for p in reversed(partials)]  # as a cache returns them
    combined = combine_partials(stored, ids, eras)
    for name in ("ensemble", "std", "draw_corr", "draw_numerai_corr"):
        np.testing.assert_array_equal(getattr(combined, name), getattr(whole, name))
    if kind == "posterior":
        assert_within(whole.ensemble, mean_over_draws(main_mean_reference(source, x)), "ensemble")
    with pytest.raises(ValueError, match="consecutive draw ranges"):
        combine_partials(stored[:2] + stored[3:], ids, eras)  # a range missing in the middle
