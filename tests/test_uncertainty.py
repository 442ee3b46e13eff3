"""The uncertainty chapter's measures: controls that need no model, AUCs against planted truth,
interval coverage, and the spread of draws or seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bnnlib.studies import uncertainty
from bnnlib.errors import BnnlibError
from bnnlib.studies.uncertainty import (covariance_distance, detection_aucs, feature_correlation, interval_coverage,
                                prediction_dispersion, signal_on_target_scale, spread)


def eras_with_a_shift(n_eras=12, rows=200, shifted=(3, 7, 10), seed=0):
    """Features independent in ordinary eras, driven by one common factor in `shifted` ones."""
    rng = np.random.default_rng(seed)
    blocks, eras = [], []
    for e in range(n_eras):
        x = rng.normal(size=(rows, 6))
        if e in shifted:
            x += 1.5 * rng.normal(size=(rows, 1))
        blocks.append(x)
        eras += [f"{e:04d}"] * rows
    truth = pd.Series([e in shifted for e in range(n_eras)], index=[f"{e:04d}" for e in range(n_eras)])
    return np.vstack(blocks), np.array(eras), truth


def test_input_statistics_flag_eras_whose_features_move_together():
    x, eras, truth = eras_with_a_shift()
    corr = feature_correlation(x, eras)
    distance = covariance_distance(x, eras, reference=x[eras == "0000"])
    assert corr[truth].min() > 0.4 > 0.1 > corr[~truth].max()
    aucs = detection_aucs({"corr": corr, "distance": distance}, {"shift": truth})
    assert aucs.loc["corr", "shift"] == 1.0 and aucs.loc["distance", "shift"] == 1.0


def test_a_detector_blind_to_the_change_scores_about_one_half_and_a_missing_era_is_named():
    """Over 2,000 eras, a quarter of them flagged, a detector independent of the flags has an AUC
    whose standard error under that null is sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.015: within 4 of
    them of one half, where a detector that read the flags (AUC near 1, or 0 inverted) is not."""
    rng = np.random.default_rng(3)
    eras = [f"{e:04d}" for e in range(2000)]
    truth = pd.Series(rng.random(2000) < 0.25, index=eras)
    noise = pd.Series(rng.random(2000), index=eras)
    aucs = detection_aucs({"noise": noise, "reader": truth + 0.1 * noise}, {"shift": truth, "nothing": truth & False})
    n1, n2 = int(truth.sum()), int((~truth).sum())
    standard_error = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert abs(aucs.loc["noise", "shift"] - 0.5) < 4 * standard_error
    assert aucs.loc["reader", "shift"] == 1.0 and np.isnan(aucs.loc["noise", "nothing"])
    _, _, truth = eras_with_a_shift()
    noise = pd.Series(np.random.default_rng(3).random(len(truth)), index=truth.index)
    with pytest.raises(BnnlibError, match="no value for 1 eras of 'shift'"):
        detection_aucs({"short": noise.iloc[1:]}, {"shift": truth})


def test_prediction_dispersion_is_the_within_era_std():
    eras = np.array(["a", "a", "b", "b", "b"])
    got = prediction_dispersion([0.0, 2.0, 1.0, 1.0, 1.0], eras)
    assert got.to_dict() == {"a": 1.0, "b": 0.0}


def test_calibrated_intervals_cover_their_level_and_narrow_ones_less():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200_000)
    mean, std = np.zeros_like(truth), np.ones_like(truth)
    for level in (0.5, 0.9):  # a binomial share of 200,000 rows: within 5 standard errors
        standard_error = np.sqrt(level * (1 - level) / len(truth))
        assert interval_coverage(mean, std, truth, level) == pytest.approx(level, abs=5 * standard_error)
    assert interval_coverage(mean, std / 3, truth, 0.9) < 0.5
    with pytest.raises(BnnlibError, match="lies in"):
        interval_coverage(mean, std, truth, 90)


def test_the_signal_is_mapped_to_the_targets_units_by_the_training_rows_line():
    rng = np.random.default_rng(1)
    signal = rng.normal(scale=0.05, size=50_000)
    target = 0.5 + 2.0 * signal + rng.normal(scale=0.2, size=signal.size)
    target[::100] = np.nan  # missing targets are left out of the fit
    mapped = signal_on_target_scale([0.0, 0.1], signal, target)
    assert mapped == pytest.approx([0.5, 0.7], abs=0.01)


def test_spread_of_draws():
    summary = pd.DataFrame({"mean": [0.01, 0.02, 0.03], "sharpe": [0.5, 0.6, 0.7]})
    got = spread(summary)
    assert got["corr_std"] == pytest.approx(0.01) and got["n"] == 3 and got["corr_max"] == 0.03


def test_a_method_adds_to_a_control_only_when_the_resampled_interval_excludes_zero():
    from bnnlib.studies.uncertainty import auc_difference, best_against_control

    rng = np.random.default_rng(0)
    eras = [f"{e:04d}" for e in range(100)]
    flags = pd.Series(rng.random(100) < 0.2, index=eras)
    perfect = pd.Series(flags.to_numpy(dtype=float) + 0.01 * rng.random(100), index=eras)
    blind = pd.Series(rng.random(100), index=eras)
    difference, low, high = auc_difference(perfect, blind, flags)
    assert difference > 0.2 and 0 < low < difference < high
    same = auc_difference(blind, blind, flags)
    assert same == (0.0, 0.0, 0.0)
    table = best_against_control({"blind": blind, "perfect": perfect}, {"control": blind},
                                 {"shift": flags, "own": {"blind": flags, "perfect": ~flags}})
    assert table.loc["shift", "method"] == "perfect" and table.loc["shift", "low"] > 0
    assert table.loc["own", "method"] == "blind"  # against its own flags `perfect` is inverted


def test_std_shift_measures_the_move_against_the_spread_elsewhere():
    truth = pd.Series([True, True, False, False, False, False], index=[f"e{i}" for i in range(6)])
    std = pd.Series([0.98, 0.98, 1.0, 1.01, 0.99, 1.0], index=truth.index)
    out = uncertainty.std_shift(std, truth)
    assert out["ratio"] == pytest.approx(0.98) and out["spread_others"] == pytest.approx(np.std([1, 1.01, 0.99, 1], ddof=1))
    assert np.isnan(uncertainty.std_shift(std, truth & False)["ratio"])
    table = uncertainty.std_shifts({"a": std, "b": std * 2}, truth)
    assert list(table.index) == ["a", "b"] and table.loc["b", "ratio"] == pytest.approx(0.98)
    assert uncertainty.std_shifts({"a": std}, None).empty


def test_std_direction_names_only_stds_that_fall_where_the_data_changed():
    shifts = pd.DataFrame({"ratio": [0.98, 1.5], "spread_others": [0.006, 0.1]}, index=["normal", "flat"])
    note = uncertainty.std_direction(shifts, pd.Series({"normal": 0.006, "flat": 0.84}))["direction_note"]
    assert "normal 2.0% lower (AUC 0.006" in note and "flat" not in note
    assert uncertainty.std_direction(shifts, pd.Series({"normal": 0.5, "flat": 0.84}))["direction_note"] == ""
