"""bnnlib.scoring.metrics against independent computations whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from numerai_tools.scoring import numerai_corr
from scipy import stats

from bnnlib.scoring import metrics, draws as metrics_draws
from bnnlib.errors import BnnlibError

BINS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
BIN_P = [0.05, 0.2, 0.5, 0.2, 0.05]


def numerai_like(seed: int, sizes=(40, 55, 31, 70), n_features: int = 6):
    """Eras of uneven size, five-bin target, float16-rounded predictions (many ties)."""
    rng = np.random.default_rng(seed)
    eras = np.concatenate([[f"{i + 1:04d}"] * size for i, size in enumerate(sizes)])
    n = len(eras)
    features = pd.DataFrame(rng.choice(BINS, size=(n, n_features)), columns=[f"feature_{i}" for i in range(n_features)])
    target = rng.choice(BINS, size=n, p=BIN_P)
    predictions = (0.3 * target + rng.normal(size=n)).astype(np.float16).astype(np.float64)
    order = rng.permutation(n)  # eras interleaved, not sorted
    return (
        pd.Series(predictions[order], name="prediction"),
        pd.Series(target[order], name="target"),
        pd.Series(eras[order], name="era"),
        features.iloc[order].reset_index(drop=True),
    )


# ----------------------------------------------------------------------------- 2021 corr


def test_era_corr_equals_pearson_of_pandas_first_ranks_with_target():
    p, t, e, _ = numerai_like(0)
    got = metrics.era_corr(p, t, e)
    assert list(got.index) == sorted(set(e)) and got.index.name == "era"
    for era, value in got.items():
        rows = e == era
        ranked = (p[rows].rank(method="first") - 0.5) / rows.sum()
        assert value == pytest.approx(stats.pearsonr(ranked, t[rows])[0], abs=1e-12)


def test_era_corr_constructed_eras_have_known_values():
    # distinct predictions: their rank is linear in them, so corr is their Pearson with the target
    p = [1, 2, 3, 4, 4, 3, 2, 1, 7, 7, 7, 7]
    t = [0, 1, 0, 1, 1, 2, 3, 4, 0, 0, 1, 1]
    e = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    got = metrics.era_corr(p, t, e)
    assert got["a"] == pytest.approx(1 / math.sqrt(5))
    assert got["b"] == pytest.approx(-1.0)
    # all tied: ranked by order of appearance 1..4, so corr((1,2,3,4), (0,0,1,1)) = 2 / sqrt(5)
    assert got["c"] == pytest.approx(2 / math.sqrt(5))


def test_era_corr_is_spearman_when_the_target_is_a_ranking():
    rng = np.random.default_rng(1)
    p = rng.normal(size=200)
    t = rng.permutation(200).astype(float)
    got = metrics.era_corr(p, t, np.zeros(200, dtype=int))
    assert got.iloc[0] == pytest.approx(stats.spearmanr(p, t)[0], abs=1e-12)


def test_predictions_equal_to_the_target_rank_score_the_rank_target_corr():
    p, t, e, _ = numerai_like(2)
    ranks = t.groupby(e).rank(method="first")
    got = metrics.era_corr(ranks, t, e)
    for era, value in got.items():
        assert value == pytest.approx(np.corrcoef(ranks[e == era], t[e == era])[0, 1], abs=1e-12)
        assert value > 0.8


# ----------------------------------------------------------------------------- numerai_corr


def test_era_numerai_corr_matches_numerai_tools_era_by_era():
    p, t, e, _ = numerai_like(3)
    got = metrics.era_numerai_corr(p, t, e)
    assert len(got) == 4
    for era, value in got.items():
        rows = (e == era).to_numpy()
        reference = numerai_corr(pd.DataFrame({"p": p[rows].to_numpy()}), pd.Series(t[rows].to_numpy(), name="t"))
        assert value == pytest.approx(reference["p"], abs=1e-12)


def test_era_numerai_corr_of_a_constant_prediction_is_zero():
    got = metrics.era_numerai_corr([0.5] * 5, [0, 0.25, 0.5, 1, 1], ["x"] * 5)
    assert got["x"] == 0.0


def test_numerai_corr_differs_from_the_2021_corr():
    p, t, e, _ = numerai_like(4)
    assert not np.allclose(metrics.era_numerai_corr(p, t, e), metrics.era_corr(p, t, e))


# ----------------------------------------------------------------------------- NaN targets and bad input


def test_rows_with_nan_target_are_dropped():
    p, t, e, _ = numerai_like(5)
    t_nan = t.copy()
    t_nan.iloc[::7] = np.nan
    keep = t_nan.notna()
    for score in (metrics.era_corr, metrics.era_numerai_corr):
        pd.testing.assert_series_equal(score(p, t_nan, e), score(p[keep], t[keep], e[keep]))


def test_an_era_without_two_scorable_rows_is_refused_with_its_name():
    t = [0.1, np.nan, 0.5, 0.3, 0.7]
    with pytest.raises(BnnlibError, match=r"era '0002' has 1 row.*2 in all.*drop that era"):
        metrics.era_corr([1, 2, 3, 4, 5], t, ["0002", "0002", "0003", "0003", "0003"])


def test_length_mismatch_index_mismatch_nan_predictions_and_constant_target_are_refused():
    with pytest.raises(BnnlibError, match="different numbers of rows"):
        metrics.era_corr([1, 2, 3], [1, 2], ["a", "a", "a"])
    with pytest.raises(BnnlibError, match="different indexes"):
        metrics.era_corr(pd.Series([1, 2, 3]), pd.Series([1, 2, 3], index=[2, 1, 0]), ["a"] * 3)
    with pytest.raises(BnnlibError, match="NaN"):
        metrics.era_numerai_corr([1, np.nan, 3], [1, 2, 3], ["a"] * 3)
    with pytest.raises(BnnlibError, match="constant in era 'a'"):
        metrics.era_corr([1, 2, 3], [1, 1, 1], ["a"] * 3)


# ----------------------------------------------------------------------------- summary


def test_score_summary_worked_by_hand():
    scores = pd.Series([0.1, -0.05, 0.02, -0.1, 0.03])
    got = metrics.score_summary(scores)
    mean = 0.0 / 5 + (0.1 - 0.05 + 0.02 - 0.1 + 0.03) / 5
    std = math.sqrt(sum((x - mean) ** 2 for x in scores) / 5)
    assert got["mean"] == pytest.approx(mean)
    assert got["std"] == pytest.approx(std)
    assert got["sharpe"] == pytest.approx(mean / std)
    # compounded: 1.1, 1.045, 1.0659, 0.95931, ... ; the peak is 1.1, the trough 1.1 * 0.95 * 1.02 * 0.9
    assert got["max_drawdown"] == pytest.approx(0.95 * 1.02 * 0.9 - 1)
    assert (got["n_eras"], got["n_negative"]) == (5, 2)


def test_score_summary_without_losses_has_no_drawdown_and_one_era_has_no_sharpe():
    assert metrics.score_summary(pd.Series([0.01, 0.02, 0.0]))["max_drawdown"] == 0.0
    assert math.isnan(metrics.score_summary(pd.Series([0.01]))["sharpe"])
    with pytest.raises(BnnlibError, match="non-empty"):
        metrics.score_summary(pd.Series([], dtype=float))


# ----------------------------------------------------------------------------- draws (torch)


def random_draws(seed: int, draws: int, rows: int):
    rng = np.random.default_rng(seed)
    preds = rng.normal(size=(draws, rows)).astype(np.float16).astype(np.float32)  # forces ties
    if draws > 1:
        preds[0] = preds[0, 0]  # one constant draw
    if draws > 2 and rows > 2:
        preds[1, : rows // 2] = -0.0  # negative and positive zero tie
        preds[1, rows // 2 :] = 0.0
    target = rng.choice(BINS, size=rows, p=BIN_P)
    target[:2] = [0.0, 1.0]  # never constant
    return preds, target


def assert_draws_match_pandas(preds: np.ndarray, target: np.ndarray, corr, numerai) -> None:
    eras = np.zeros(len(target), dtype=int)
    assert corr.dtype == numerai.dtype == torch.float64 and corr.shape == (len(preds),)
    for draw in range(len(preds)):
        assert corr[draw].item() == pytest.approx(metrics.era_corr(preds[draw], target, eras).iloc[0], abs=1e-9)
        expected = metrics.era_numerai_corr(preds[draw], target, eras).iloc[0]
        assert numerai[draw].item() == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("numpy_backend", [True, False])
@pytest.mark.parametrize("draws,rows", [(12, 400), (1, 50), (5, 2), (3, 3)])
def test_draws_scores_equal_the_pandas_scores_draw_by_draw(monkeypatch, numpy_backend, draws, rows):
    monkeypatch.setattr(metrics_draws, "_numpy_backend", lambda x: numpy_backend)
    preds, target = random_draws(draws * rows, draws, rows)
    corr, numerai = metrics.draws_era_scores(torch.from_numpy(preds), torch.from_numpy(target))
    assert_draws_match_pandas(preds, target, corr, numerai)
    if draws > 1:
        assert numerai[0].item() == 0.0  # the constant draw: exactly 0, not rounding noise
    torch.testing.assert_close(metrics.draws_era_corr(torch.from_numpy(preds), target), corr)
    torch.testing.assert_close(metrics.draws_era_numerai_corr(torch.from_numpy(preds), target), numerai)


def test_draws_without_ties_float64_and_half_precision():
    rng = np.random.default_rng(10)
    target = rng.choice(BINS, size=300, p=BIN_P)
    continuous = rng.normal(size=(4, 300))
    assert_draws_match_pandas(continuous, target, *metrics.draws_era_scores(torch.from_numpy(continuous), target))
    half = torch.from_numpy(continuous).half()
    assert_draws_match_pandas(half.double().numpy(), target, *metrics.draws_era_scores(half, target))


def test_draws_of_a_strided_view_score_like_a_copy():
    preds, target = random_draws(13, 40, 9)
    strided = torch.from_numpy(np.ascontiguousarray(preds.T)).T  # column-major [40, 9]
    assert not strided.is_contiguous()
    assert_draws_match_pandas(preds, target, *metrics.draws_era_scores(strided, target))


def test_draws_drop_rows_with_nan_target():
    preds, target = random_draws(11, 6, 120)
    target[5::4] = np.nan
    keep = ~np.isnan(target)
    corr, numerai = metrics.draws_era_scores(torch.from_numpy(preds), target)
    assert_draws_match_pandas(preds[:, keep], target[keep], corr, numerai)


def test_draws_bad_input_is_refused():
    preds = torch.zeros(3, 4)
    with pytest.raises(BnnlibError, match="same rows"):
        metrics.draws_era_corr(preds, np.zeros(5))
    with pytest.raises(BnnlibError, match="era '0007'.*at least 2"):
        metrics.draws_era_numerai_corr(preds, [np.nan, 1.0, np.nan, np.nan], era="0007")
    with pytest.raises(BnnlibError, match="NaN"):
        metrics.draws_era_corr(torch.full((3, 4), float("nan")), [0.0, 1.0, 0.0, 1.0])
    with pytest.raises(BnnlibError, match="torch tensor"):
        metrics.draws_era_corr(np.zeros((3, 4)), [0.0, 1.0, 0.0, 1.0])


def test_score_summaries_equal_score_summary_row_by_row():
    per_era = np.random.default_rng(12).normal(0.01, 0.03, size=(5, 30))
    per_era[2, 0] = -0.5  # a first-era loss alone is no drawdown
    got = metrics.score_summaries(per_era)
    assert list(got.columns) == ["mean", "std", "sharpe", "max_drawdown", "n_eras", "n_negative"]
    for draw in range(5):
        expected = metrics.score_summary(pd.Series(per_era[draw]))
        for key, value in expected.items():
            assert got.loc[draw, key] == pytest.approx(value, abs=1e-12)


def test_score_summaries_keep_float32_and_mark_a_constant_series():
    per_era = np.array([[0.1, 0.1, 0.1], [0.2, -0.1, 0.3]], dtype=np.float32)
    got = metrics.score_summaries(per_era)
    assert got["mean"].dtype == np.float32
    assert np.isnan(got.loc[0, "sharpe"]) and got.loc[1, "n_negative"] == 1
    with pytest.raises(BnnlibError, match="NaN"):
        metrics.score_summaries(np.array([[0.1, np.nan]]))

