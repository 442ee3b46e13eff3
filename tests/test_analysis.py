"""The studies' analysis functions and figure builders, on small hand-made arrays (no fitting)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from bnnlib.studies import common
from bnnlib.studies import burn_eras, target_hypotheses
from bnnlib.studies import architecture, ensembles
from bnnlib.studies import data as data_study
from bnnlib.scoring import statistics
from bnnlib.scoring.statistics import auc_p_value_from_counts

from bnnlib.report import plots, tables
from bnnlib.errors import BnnlibError
from bnnlib.scoring.metrics import score_summary
from bnnlib.evaluate.predictive import DrawScores
from bnnlib.evaluate.study import ModelResult, ModelSpec
from tolerances import f32_tol


def fake_result(draw_corr: np.ndarray, ensemble_corr: np.ndarray, mean_std: np.ndarray | None = None,
                method: str = "bnn", name: str = "m") -> ModelResult:
    """A scored model made of given per-era scores (numerai_corr = corr / 2 to tell them apart)."""
    draw_corr = np.atleast_2d(np.asarray(draw_corr, dtype=np.float32))
    n_eras = len(ensemble_corr)
    eras = [f"{e + 1:04d}" for e in range(n_eras)]
    rows_era = np.repeat(eras, 3)
    scores = DrawScores(
        pd.Index([f"id{i}" for i in range(len(rows_era))], name="id"), rows_era,
        np.linspace(0, 1, len(rows_era)), np.full(len(rows_era), 0.1), eras, draw_corr, draw_corr / 2,
    )
    per_era = pd.DataFrame({
        "era": eras,
        "corr": np.asarray(ensemble_corr, dtype=float),
        "numerai_corr": np.asarray(ensemble_corr, dtype=float) / 2,
        "mean_std": np.zeros(n_eras) if mean_std is None else np.asarray(mean_std, dtype=float),
    })
    spec = ModelSpec(name, method=method, prior="flat" if method == "bnn" else None, draws=len(draw_corr))
    return ModelResult(spec, scores, per_era)


RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- study 1


def test_score_table_is_the_per_era_summary_of_each_model():
    corr = RNG.normal(0.01, 0.02, 20)
    result = fake_result(RNG.normal(0.01, 0.02, (5, 20)), corr)
    table = common.score_table({"a": result})
    expected = score_summary(pd.Series(corr))
    assert table.loc["a", "corr_mean"] == pytest.approx(expected["mean"])
    assert table.loc["a", "corr_sharpe"] == pytest.approx(expected["sharpe"])
    assert table.loc["a", "numerai_corr_mean"] == pytest.approx(expected["mean"] / 2)
    assert table.loc["a", "corr_burn_eras"] == (corr < 0).sum()
    with pytest.raises(BnnlibError, match="score kind"):
        common.score_table({"a": result}, kinds=["spearman"])


def test_draws_vs_ensemble_compares_the_mean_draw_with_the_ensemble():
    draws = np.array([[0.01, 0.03, 0.02], [0.00, 0.01, 0.02], [0.02, 0.02, 0.05]])
    good = fake_result(draws, np.array([0.03, 0.04, 0.05]))  # ensemble beats every draw
    bad = fake_result(draws, np.array([-0.01, 0.0, 0.01]))
    baseline = fake_result(draws[:1], np.array([0.01, 0.02, 0.03]), method="baseline")
    table = ensembles.draws_vs_ensemble({"good": good, "bad": bad, "baseline": baseline})
    assert list(table.index) == ["good", "bad"]  # one draw: no distribution
    means = draws.mean(1)
    # fake_result stores the scores in float32 (one rounding each); the mean and std of per-draw
    # means of 3 eras add a few more, relative to the values' size, which centring enlarges by
    # size / spread
    rel = f32_tol(8) * np.abs(draws).max() / means.std(ddof=1)
    assert table.loc["good", "draw_corr_mean"] == pytest.approx(means.mean(), rel=rel)
    assert table.loc["good", "draw_corr_std"] == pytest.approx(means.std(ddof=1), rel=rel)
    assert table.loc["good", "ensemble_corr"] == pytest.approx(0.04)
    assert bool(table.loc["good", "ensemble_beats_draws_corr"]) and not bool(table.loc["bad", "ensemble_beats_draws_corr"])
    assert table.loc["good", "share_below_ensemble_corr"] == 1.0
    sharpes = means / draws.std(1)
    assert table.loc["good", "draw_sharpe_mean"] == pytest.approx(sharpes.mean(), rel=f32_tol(8) * np.abs(draws).max()
                                                                                  / draws.std(1).min())
    with pytest.raises(BnnlibError, match="more than one draw"):
        ensembles.draws_vs_ensemble({"baseline": baseline})


def test_draws_cells_print_like_the_talk():
    cells = ensembles.draws_cells(ensembles.talk_draws())
    assert cells.loc["corr, draws (mean ± std)", "flat"] == "0.0142 ± 0.0023"
    assert cells.loc["Sharpe, ensemble", "laplace"] == "0.5573"
    assert list(cells.columns) == ["flat", "normal", "laplace"]


def test_side_by_side_aligns_rows_and_keeps_only_shared_columns():
    ours = pd.DataFrame({"corr": [0.1, 0.2], "extra": [1, 2]}, index=["baseline", "flat"])
    both = common.side_by_side(ours, ensembles.talk_scores())
    assert list(both.columns.get_level_values(1)) == ["corr", "corr"]
    assert list(both.index[:2]) == ["baseline", "flat"] and "nn_starter" in both.index
    assert both.loc["flat", ("talk (2021)", "corr")] == 0.0199
    assert np.isnan(both.loc["nn_starter", ("this run", "corr")])
    with pytest.raises(BnnlibError, match="share no column"):
        common.side_by_side(ours[["extra"]], ensembles.talk_scores())


def test_claims_are_checked_on_both_tables_and_missing_rows_give_none():
    claims = [
        common.Claim("flat beats baseline", lambda t: t.loc["flat", "corr"] > t.loc["baseline", "corr"]),
        common.Claim("nn starter is worst", lambda t: t.loc["nn_starter", "corr"] == t["corr"].min()),
    ]
    ours = pd.DataFrame({"corr": [0.02, 0.01]}, index=["baseline", "flat"])
    table = common.check_claims(claims, ours, ensembles.talk_scores())
    assert table["talk"].tolist() == [True, False]  # the talk's NN Starter (0.0153) is not its worst
    assert table["this run"].tolist() == [False, None] and table["agree"].tolist() == [False, None]


# --------------------------------------------------------------------------- ground truth


class _Truth:
    def __init__(self, rows, eras):
        self.rows, self.eras = rows, eras


class _Data:
    """The parts of bnnlib.data.Dataset the truth helpers read."""

    def __init__(self, validation, truth):
        self.validation, self.truth = validation, truth

    def frame(self, split):
        return self.validation


def test_truth_helpers_align_to_the_split_and_score_the_signal():
    eras = np.repeat(["0003", "0004"], 50)
    ids = pd.Index([f"v{i}" for i in range(100)], name="id")
    signal = RNG.normal(size=100)
    target = signal + RNG.normal(size=100)
    rows = pd.DataFrame({"signal": signal, "noise": RNG.normal(size=100)}, index=ids)[::-1]  # other order
    truth_eras = pd.DataFrame({"era": ["0001", "0003", "0004"], "shifted": [False, True, False]})
    data = _Data(pd.DataFrame({"era": eras}, index=ids), _Truth(rows, truth_eras))
    assert common.truth_eras(data)["era"].tolist() == ["0003", "0004"]
    aligned = common.truth_signals(data)
    assert aligned.index.equals(ids) and np.allclose(aligned["signal"], signal)
    ceiling = common.signal_ceiling(aligned, target, eras, ["signal", "noise"])
    assert ceiling.loc["signal", "mean"] > 0.3 > abs(ceiling.loc["noise", "mean"])
    # signal + noise of variance 3 correlates 1 / sqrt(1 + 3) = 1/2 with the signal; the sample
    # corr of 100 rows has standard error (1 - 1/4) / sqrt(100): within 4 of them
    half = signal + RNG.normal(size=100) * math.sqrt(3)
    capture = ensembles.signal_capture({"exact": signal, "half": half, "flat": np.ones(100)}, signal)
    assert capture["exact"] == pytest.approx(1.0, rel=1e-12) and np.isnan(capture["flat"])
    assert abs(capture["half"] - 0.5) < 4 * (1 - 0.5**2) / math.sqrt(100)
    assert capture["half"] == pytest.approx(np.corrcoef(half, signal)[0, 1], rel=1e-12)
    assert common.truth_eras(_Data(data.validation, None)) is None
    assert common.truth_signals(_Data(data.validation, None)) is None
    with pytest.raises(BnnlibError, match="lacks 1 rows"):
        common.truth_signals(_Data(data.validation, _Truth(rows.iloc[1:], truth_eras)))


# --------------------------------------------------------------------------- study 2


def test_mann_whitney_auc_matches_a_hand_computed_case():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of the 4 pairs are ordered
    assert statistics.mann_whitney_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tie counts one half: positive 1 vs negatives 1 (tie) and 2 (lower) -> 0.5 / 2
    assert statistics.mann_whitney_auc([1.0, 1.0, 2.0], [True, False, False]) == pytest.approx(0.25)
    assert statistics.mann_whitney_auc([3, 2, 1], [1, 0, 0]) == 1.0
    assert math.isnan(statistics.mann_whitney_auc([1, 2], [0, 0]))


def test_auc_agrees_with_scipy_and_the_roc_area_and_flips_with_the_score():
    scores = RNG.integers(0, 6, 60).astype(float)  # many ties
    labels = RNG.random(60) < 0.3
    auc = statistics.mann_whitney_auc(scores, labels)
    u = stats.mannwhitneyu(scores[labels], scores[~labels]).statistic
    assert auc == pytest.approx(u / (labels.sum() * (~labels).sum()))
    roc = statistics.roc_curve(scores, labels)
    assert float(np.trapezoid(roc["tpr"], roc["fpr"])) == pytest.approx(auc)  # the area under the curve
    assert (roc.iloc[0][["fpr", "tpr"]] == 0).all() and (roc.iloc[-1][["fpr", "tpr"]] == 1).all()
    assert roc["fpr"].is_monotonic_increasing and roc["tpr"].is_monotonic_increasing
    assert statistics.mann_whitney_auc(-scores, labels) == pytest.approx(1 - auc)
    # the one-sided Mann-Whitney p-value: U's normal approximation with its tie correction and a
    # continuity correction of one half
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    n, ties = n_pos + n_neg, np.unique(scores, return_counts=True)[1]
    sd = math.sqrt(n_pos * n_neg / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1))))
    expected = stats.norm.sf((auc * n_pos * n_neg - n_pos * n_neg / 2 - 0.5) / sd)
    assert statistics.auc_p_value(scores, labels) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(BnnlibError, match="both classes"):
        statistics.roc_curve(scores, np.zeros(60, dtype=bool))
    with pytest.raises(BnnlibError, match="booleans or 0/1"):
        statistics.mann_whitney_auc(scores, np.full(60, 2))


def test_p_value_from_counts_is_the_asymptotic_mann_whitney_test():
    scores = RNG.normal(size=80)  # continuous: no ties
    labels = RNG.random(80) < 0.3
    auc = statistics.mann_whitney_auc(scores, labels)
    expected = stats.mannwhitneyu(scores[labels], scores[~labels], alternative="greater",
                                  method="asymptotic", use_continuity=False).pvalue
    got = statistics.auc_p_value_from_counts(auc, int(labels.sum()), int((~labels).sum()))
    assert got == pytest.approx(expected, rel=1e-9)
    assert statistics.auc_p_value_from_counts(0.5, 30, 75) == pytest.approx(0.5)
    with pytest.raises(BnnlibError, match="AUC lies"):
        statistics.auc_p_value_from_counts(1.5, 3, 3)


def test_percent_range():
    assert burn_eras.percent_range([0.267, 0.314, 0.30]) == "27-31%"
    assert burn_eras.percent_range([0.4, 0.4]) == "40%"


def test_burn_detection_counts_burn_eras_and_scores_the_std():
    corr = np.array([0.02, -0.01, 0.03, -0.02, 0.01, 0.0])
    std = np.array([0.1, 0.5, 0.2, 0.4, 0.15, 0.3])  # burn eras have the highest std
    result = fake_result(RNG.normal(size=(4, 6)), corr, std)
    table = burn_eras.burn_detection({"flat": result})
    assert table.loc["flat", "burn_eras"] == 2 and table.loc["flat", "n_eras"] == 6
    assert table.loc["flat", "auc"] == 1.0
    assert table.loc["flat", "mean_std_burn"] == pytest.approx(0.45)
    assert table.loc["flat", "spearman_std_score"] < 0
    frame = burn_eras.burn_eras(result.per_era)
    assert list(frame.columns) == ["era", "corr", "mean_std", "burn"] and frame["burn"].sum() == 2


# --------------------------------------------------------------------------- study 3


def test_grid_table_and_talk_style_cells():
    results = {
        (h, p): fake_result(RNG.normal(size=(3, 8)), RNG.normal(0.01 * (i + 1), 0.02, 8))
        for i, h in enumerate(["h1", "h2"]) for p in ["flat", "laplace"]
    }
    corr = common.grid_table(results, "mean")
    assert list(corr.index) == ["h1", "h2"] and list(corr.columns) == ["flat", "laplace"]
    assert corr.loc["h2", "laplace"] == pytest.approx(results[("h2", "laplace")].summary()["mean"])
    sharpe = common.grid_table(results, "sharpe")
    cells = tables.corr_sharpe(corr, sharpe)
    assert cells.loc["h1", "flat"] == f"{corr.loc['h1', 'flat']:.4f} ({sharpe.loc['h1', 'flat']:.3f})"
    with pytest.raises(BnnlibError, match="summary statistic"):
        common.grid_table(results, "median")


def test_normal_posterior_probability_of_a_positive_weight():
    post = statistics.normal_posterior(0.0, 2.0)
    assert post["p_positive"] == pytest.approx(0.5)
    assert statistics.normal_posterior(1.0, 1.0)["p_positive"] == pytest.approx(stats.norm.cdf(1.0), rel=1e-12)
    assert post["ci95_high"] == pytest.approx(-stats.norm.ppf(0.025) * 2.0, rel=1e-12)
    assert post["ci95_low"] == pytest.approx(-post["ci95_high"], rel=1e-12)
    density = statistics.normal_density(1.0, 0.5)
    assert integrate.trapezoid(density["density"], density["x"]) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(BnnlibError, match="positive std"):
        statistics.normal_posterior(0.0, 0.0)


# --------------------------------------------------------------------------- divergences


def _js_by_quad(m1, s1, m2, s2):
    p = stats.norm(m1, s1).pdf
    q = stats.norm(m2, s2).pdf

    def term(x, own):
        mix = 0.5 * (p(x) + q(x))
        return own(x) * np.log(own(x) / mix) if own(x) > 0 else 0.0

    low, high = min(m1 - 15 * s1, m2 - 15 * s2), max(m1 + 15 * s1, m2 + 15 * s2)
    return 0.5 * sum(integrate.quad(term, low, high, args=(own,), limit=200, points=[m1, m2])[0] for own in (p, q))


def test_js_between_normals_is_zero_symmetric_bounded_and_matches_quadrature():
    assert statistics.js_normal(0.01, 0.002, 0.01, 0.002) == pytest.approx(0.0, abs=1e-12)
    a, b = (0.0, 1.0), (1.0, 2.0)
    assert statistics.js_normal(*a, *b) == pytest.approx(statistics.js_normal(*b, *a), rel=1e-10)
    assert statistics.js_normal(*a, *b) == pytest.approx(_js_by_quad(*a, *b), rel=1e-6)
    # far apart (even when narrow): the bound ln 2 nats, 1 bit
    assert statistics.js_normal(0.0, 1e-4, 1.0, 1e-4) == pytest.approx(math.log(2), rel=1e-9)
    assert statistics.js_normal(0.0, 1e-4, 1.0, 1e-4, base=2) == pytest.approx(1.0, rel=1e-9)
    assert statistics.js_normal(*a, *b, base=2) == pytest.approx(statistics.js_normal(*a, *b) / math.log(2))
    # close normals: JS is a quarter of the KL divergence
    assert statistics.js_normal(0, 1, 0.01, 1) == pytest.approx(statistics.kl_normal(0, 1, 0.01, 1) / 4, rel=1e-3)
    with pytest.raises(BnnlibError, match="log base"):
        statistics.js_normal(*a, *b, base=1)


def test_kl_and_jeffreys_between_normals():
    kl = statistics.kl_normal(0.0, 1.0, 1.0, 2.0)
    p, q = stats.norm(0, 1), stats.norm(1, 2)
    by_quad = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -20, 20)[0]
    assert kl == pytest.approx(by_quad, rel=1e-8)
    assert statistics.jeffreys_normal(0, 1, 1, 2) == pytest.approx(kl + statistics.kl_normal(1, 2, 0, 1))
    assert statistics.kl_normal(0, 1, 3, 1) == pytest.approx(4.5)  # (delta / sigma)^2 / 2
    assert statistics.kl_normal(0, 1e-3, 1, 1e-3) > math.log(2)  # unbounded, unlike JS


def test_divergence_matrix_and_normal_fits():
    fits = {0: (0.010, 0.002), 1: (0.015, 0.003), 2: (0.012, 0.002)}
    js = statistics.divergence_matrix(fits, "js")
    values = js.to_numpy()
    assert np.allclose(values, values.T) and np.allclose(np.diag(values), 0)
    assert (statistics.off_diagonal(js) > 0).all() and (statistics.off_diagonal(js) <= math.log(2)).all()
    assert len(statistics.off_diagonal(js)) == 3
    kl = statistics.divergence_matrix(fits, "kl")
    assert kl.loc[0, 1] == pytest.approx(statistics.kl_normal(*fits[0], *fits[1]))
    with pytest.raises(BnnlibError, match="unknown divergence"):
        statistics.divergence_matrix(fits, "wasserstein")
    mean, std = statistics.normal_fit([1.0, 2.0, 3.0])
    assert (mean, std) == pytest.approx((2.0, np.std([1, 2, 3])))
    with pytest.raises(BnnlibError, match="no spread"):
        statistics.normal_fit([1.0, 1.0])
    draws = RNG.normal(0.01, 0.01, (50, 10))
    table = architecture.draw_mean_fits({3: fake_result(draws, np.zeros(10))})
    # float32 scores (fake_result), averaged over 10 eras and 50 draws
    assert table.loc[3, "mean"] == pytest.approx(draws.mean(1).mean(), rel=f32_tol(61) * np.abs(draws).mean()
                                                 / abs(draws.mean()))


def test_the_talks_divergences_exceed_the_bound_of_a_js_divergence():
    talks = architecture.talk_divergence()
    assert np.allclose(talks.to_numpy(), talks.to_numpy().T)
    assert (statistics.off_diagonal(talks) > math.log(2)).sum() == 5
    assert architecture.depth_label(()) == "0 (linear)" and architecture.depth_label([128, 64]) == "2 (128, 64)"


def test_talk_tables_are_labelled_and_fresh():
    table = ensembles.talk_draws()
    assert table.attrs["source"].startswith("the talk") and list(table.index) == ["flat", "normal", "laplace"]
    table.loc["flat", "ensemble_corr"] = 1.0
    assert ensembles.talk_draws().loc["flat", "ensemble_corr"] == 0.0199
    assert (target_hypotheses.talk_corr().loc["single"] == ensembles.talk_scores().loc[["flat", "normal", "laplace"], "corr"]).all()
    assert (architecture.talk_corr().loc[3, "flat"], architecture.talk_sharpe().loc[3, "baseline"]) == (0.0199, 0.6422)


# --------------------------------------------------------------------------- figures


def _labelled(figure) -> bool:
    axes = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    titled = bool(figure._suptitle is not None and figure._suptitle.get_text()) or all(ax.get_title() for ax in axes)
    return titled and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)


def test_every_figure_has_a_title_and_axis_labels():
    draws = RNG.normal(0.01, 0.02, (30, 12))
    result = fake_result(draws, RNG.normal(0.01, 0.02, 12), RNG.random(12))
    frame = burn_eras.burn_eras(result.per_era)
    roc = statistics.roc_curve(frame["mean_std"], frame["burn"])
    matrix = statistics.divergence_matrix({0: (0.0, 1.0), 1: (0.5, 1.0)})
    figures = [
        plots.draws_against_ensemble({"flat": result}, ensembles.draws_vs_ensemble({"flat": result}), "sharpe",
                                     title="t", xlabel="Sharpe"),
        plots.grouped_bar_panels({"this run": target_hypotheses.talk_corr(), "talk": target_hypotheses.talk_corr()},
                                 title="t",
                                 ylabel="corr", xlabel="hypothesis"),
        plots.ours_vs_talk_panels(target_hypotheses.talk_corr(), target_hypotheses.talk_corr(), ours_label="ours",
                                  title="t",
                                  ylabel="corr", xlabel="hypothesis"),
        plots.ours_vs_talk_bars(pd.DataFrame({"corr": [0.01]}, index=["flat"]), ensembles.talk_scores(),
                                {"corr": "validation corr"}, title="t"),
        plots.draw_histograms({"flat": draws.mean(1)}, {"flat": 0.01}, title="t", xlabel="corr"),
        plots.std_vs_score({"flat": frame}, title="t"),
        plots.roc_curves({"flat": roc}, {"flat": 0.5}, title="t"),
        plots.burn_rocs({"flat": frame}, title="t"),
        plots.posterior_densities({"flat": statistics.normal_density(0.1, 0.2)}, title="t", xlabel="beta"),
        plots.normal_fits(pd.DataFrame({"mean": [0.0, 1.0], "std": [1.0, 2.0]}), title="t", xlabel="corr"),
        plots.heatmaps({"flat": matrix}, title="t", axis_label="layers", colorbar="JS (nats)"),
    ]
    for figure in figures:
        assert _labelled(figure), figure
    with pytest.raises(BnnlibError, match="empty"):
        plots.grouped_bar_panels({"": pd.DataFrame()}, title="t", ylabel="y", xlabel="x")


# --------------------------------------------------------------------------- helpers the chapters call


def test_shift_table_burn_rates_and_auc_of_the_std_for_shifted_eras():
    eras = {"normal": pd.DataFrame({"era": ["0001", "0002", "0003", "0004"], "corr": [-0.1, 0.1, -0.2, 0.2],
                                    "mean_std": [0.9, 0.1, 0.8, 0.2], "burn": [True, False, True, False]})}
    truth = pd.DataFrame({"era": ["0001", "0002", "0003", "0004", "0005"], "shifted": [1, 0, 0, 0, 1]})
    row = burn_eras.shift_table(eras, truth).loc["normal"]
    assert row["shifted_eras"] == 1
    assert row["burn_rate_shifted"] == 1.0 and row["burn_rate_other"] == pytest.approx(1 / 3)
    assert row["auc_std_for_shifted"] == 1.0  # the shifted era has the highest std


def test_with_p_values_matches_the_count_formula():
    table = burn_eras.with_p_values(burn_eras.talk_burn())
    first = table.iloc[0]
    assert first["p_value"] == auc_p_value_from_counts(
        first["auc"], first["burn_eras"], first["n_eras"] - first["burn_eras"])


def test_labelled_score_table_puts_labels_first():
    results = {"h1_flat": fake_result(np.array([[0.1, 0.2]]), np.array([0.1, 0.2]))}
    table = common.labelled_score_table(results, {"h1_flat": {"hypothesis": "h1", "prior": "flat"}})
    assert list(table.columns[:2]) == ["hypothesis", "prior"]
    assert table.loc["h1_flat", "corr_mean"] == pytest.approx(0.15)


def test_corr_sharpe_side_by_side_prints_cells_as_the_talk_does():
    corr, sharpe = target_hypotheses.talk_corr(), target_hypotheses.talk_sharpe()
    table = tables.corr_sharpe_side_by_side(corr, sharpe, corr, sharpe, ours_label="ours")
    cell = table[("ours", "flat")].iloc[0]
    assert cell == f"{corr['flat'].iloc[0]:.4f} ({sharpe['flat'].iloc[0]:.3f})"


def test_draws_side_by_side_lays_out_both_tables():
    table = ensembles.draws_side_by_side(ensembles.talk_draws(), ensembles.talk_draws(), ours_label="ours")
    assert list(table.columns.get_level_values(0).unique()) == ["ours", "talk (2021)"]
    assert "corr, draws (mean ± std)" in table.index


def test_every_talk_finding_holds_on_the_talks_own_numbers():
    for claims, table in ((ensembles.score_claims(), ensembles.talk_scores()),
                          (ensembles.draw_claims(), ensembles.talk_draws()),
                          (burn_eras.talk_claims(), burn_eras.with_p_values(burn_eras.talk_burn())),
                          (target_hypotheses.talk_claims(), pd.concat({"corr": target_hypotheses.talk_corr(),
                                                                       "sharpe": target_hypotheses.talk_sharpe()},
                                                                      axis=1)),
                          (architecture.corr_claims(), architecture.talk_corr()),
                          (architecture.divergence_claims(), architecture.talk_divergence())):
        check = common.check_claims(claims, table, table)
        assert check["talk"].tolist() == [True] * len(claims), check


def test_closest_pair_is_shallower_first():
    """The smallest divergence off the diagonal, named by depths, the shallower first, whatever
    order the matrix lists the depths in."""
    matrix = pd.DataFrame([[0, 3, 1], [3, 0, 2], [1, 2, 0]], index=[0, 1, 2], columns=[0, 1, 2])
    assert architecture.closest_pair(matrix) == (0, 2)
    depths = [3, 1, 2]  # rows not in depth order: the pair (3, 1) is the closest
    matrix = pd.DataFrame([[0, 0.5, 4], [0.5, 0, 2], [4, 2, 0]], index=depths, columns=depths)
    assert architecture.closest_pair(matrix) == (1, 3)
    matrix = pd.DataFrame([[0, 5, 4], [5, 0, 2], [4, 2, 0]], index=depths, columns=depths)
    assert architecture.closest_pair(matrix) == (1, 2)


def test_data_chapter_helpers_summarise_sizes_shares_drift_and_shifts():
    sizes = pd.DataFrame({"split": ["train", "train", "validation"], "rows": [10, 20, 30]})
    summary = data_study.era_size_summary(sizes)
    assert summary.loc["train", "count"] == 2 and summary.loc["train", "mean"] == 15 and summary.loc["validation", "max"] == 30
    features = pd.DataFrame({0.0: [0.2, 0.2], 1.0: [0.8, 0.8]})
    target = pd.DataFrame({0.0: [0.5], 1.0: [0.5]})
    shares = data_study.level_share_summary(features, target, "target")
    assert shares.loc["features", 1.0] == 0.8 and shares.loc["target", 0.0] == 0.5
    drift = pd.DataFrame({"p_value": [0.001, 0.0001, 0.5], "dispersion": [2.0, 3.0, 1.0]}, index=["a", "b", "c"])
    threshold, drifting = data_study.drifting_features(drift)
    assert threshold == pytest.approx(0.01 / 3) and list(drifting.index) == ["b", "a"]
    truth = pd.DataFrame({"era": ["e1", "e2", "e3"], "shifted": [0, 1, 0]})
    assert data_study.shifted_eras_mask(truth, pd.Index(["e3", "e2"])).tolist() == [False, True]
