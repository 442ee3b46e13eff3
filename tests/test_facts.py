"""The facts table on the default synthetic profile: every fact holds, a few are recomputed
independently, and the checks can fail (on data built to break them)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bnnlib.data import load_synthetic, write_profile
from bnnlib.data.facts import feature_drift, measure_facts, nonlinearity_check
from bnnlib.data.profiles import PROFILES


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small least-squares problems: one BLAS thread is fast and immune to a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it, no limit
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return load_synthetic("default", tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def facts(default) -> pd.DataFrame:
    return measure_facts(default)


def _measured(facts: pd.DataFrame, name: str):
    return facts.set_index("fact").loc[name, "measured"]


def test_every_fact_holds_on_the_default_profile(facts):
    assert list(facts.columns) == ["fact", "numerai_v3", "expected", "measured", "ok"]
    assert len(facts) == 12
    failed = facts.loc[~facts["ok"], ["fact", "expected", "measured"]]
    assert failed.empty, failed.to_string()


def test_target_correlations_recomputed(default, facts):
    valid = default.validation
    for other, reference in (("target_janet_20", 0.66), ("target_george_20", 0.72), ("target_nomi_60", 0.50)):
        both = valid[["target_nomi_20", other]].dropna().to_numpy(np.float64)
        value = np.corrcoef(both[:, 0], both[:, 1])[0, 1]
        assert _measured(facts, f"corr(target_nomi_20, {other})") == pytest.approx(value, abs=5e-4)
        assert abs(value - reference) <= 0.05


def test_simple_model_recomputed(default, facts):
    features = default.features
    x = default.train[features].to_numpy(np.float64)
    design = np.column_stack([x, np.ones(len(x))])
    weights = np.linalg.lstsq(design, default.train["target_nomi_20"].to_numpy(np.float64), rcond=None)[0]
    valid = default.validation
    frame = pd.DataFrame({"p": valid[features].to_numpy(np.float64) @ weights[:-1], "t": valid["target_nomi_20"],
                          "era": valid["era"]})
    group = frame.groupby("era")["p"]
    frame["rank"] = (group.rank(method="first") - 0.5) / group.transform("size")
    per_era = frame.groupby("era")[["rank", "t"]].apply(lambda g: np.corrcoef(g["rank"], g["t"])[0, 1])
    assert _measured(facts, "simple model, validation corr mean") == pytest.approx(per_era.mean(), abs=2e-4)
    assert _measured(facts, "simple model, per-era corr std") == pytest.approx(per_era.std(ddof=0), abs=2e-4)
    assert _measured(facts, "burn eras (negative corr)").startswith(f"{(per_era < 0).sum()} of 105")


def test_feature_drift_matches_a_direct_computation(default):
    drift = feature_drift(default)
    feature = drift["dispersion"].idxmax()
    frame = pd.concat([default.train, default.validation])
    per_era = frame.groupby("era").apply(lambda g: np.corrcoef(g[feature], g["target_nomi_20"])[0, 1])
    sizes = frame.groupby("era").size()
    mean = np.average(per_era, weights=sizes - 1)
    q = ((sizes - 1) * (per_era - mean) ** 2).sum()
    assert drift.loc[feature, "dispersion"] == pytest.approx(q / (len(per_era) - 1), rel=1e-6)


def test_a_stationary_linear_dataset_fails_the_drift_and_nonlinearity_facts(tmp_path):
    flat = dataclasses.replace(PROFILES["quick"], name="stationary", factor_scale=0.0, factor_regime_scale=0.0,
                               regime_scale=0.0, shift_rate=0.0, linear_share=0.99, signal_corr=0.1)
    folder = write_profile(flat, tmp_path / "flat")
    from bnnlib.data import load_dataset

    data = load_dataset(folder)
    drift = feature_drift(data)
    assert (drift["p_value"] > 0.01 / len(drift)).all()
    assert drift["dispersion"].mean() == pytest.approx(1.0, abs=0.1)
    check = nonlinearity_check(data)
    assert check.linear_share > 0.9
    facts = measure_facts(data).set_index("fact")
    assert not facts.loc["non-stationarity", "ok"]
    assert not facts.loc["nonlinearity", "ok"]
    assert not facts.loc["validation eras", "ok"]  # 30, not 105
