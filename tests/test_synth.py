"""The synthetic generator: schema, levels, determinism, ground truth, atomic writing, and the
statistical properties that need the generator's own structure (the interaction terms)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnnlib.build import cli
from bnnlib.data import levels, synth
from bnnlib.data.profiles import TARGETS
from bnnlib.data.world import interaction_basis, standardize
from bnnlib.errors import BnnlibError
from tolerances import f32_tol, f64_tol

LEVELS = [0.0, 0.25, 0.5, 0.75, 1.0]


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
def tiny() -> synth.SyntheticData:
    return synth.generate("tiny")


DEFAULT = synth.PROFILES["default"]
# The statistical tests run on a copy of the default profile with 250 instead of ~4,200 rows per
# training era (143k training rows instead of 2.41M; validation unchanged): the same seed, eras
# and knobs, hence the same hidden world and era path (test_reduced_copy_shares_the_world_and_path),
# generated in about a second instead of ~20 s and 2 GB.
REDUCED = dataclasses.replace(DEFAULT, name="default-reduced", train_rows=250)


@pytest.fixture(scope="module")
def reduced() -> synth.SyntheticData:
    return synth.generate(REDUCED)


# --------------------------------------------------------------------------- levels


def test_binning_fills_each_era_exactly_with_ragged_eras():
    rng = np.random.default_rng(1)
    sizes = np.array([100, 37, 250, 20])
    values = rng.standard_normal((sizes.sum(), 3))
    binned = levels.bin_within_eras(values, sizes, levels.TARGET_SHARES)
    starts = levels.era_starts(sizes)
    for start, size in zip(starts, sizes):
        for column in range(3):
            counts = np.bincount(binned[start:start + size, column], minlength=5)
            expected = np.array(levels.TARGET_SHARES) * size
            assert np.all(np.abs(counts - expected) <= 1)
            # the ranking keeps order within the era
            block = values[start:start + size, column]
            assert np.all(np.diff(binned[start:start + size, column][np.argsort(block)]) >= 0)


def test_binned_corr_matches_simulation_and_inverts():
    rng = np.random.default_rng(2)
    n = 200_000
    for rho in (0.3, 0.7):
        x = rng.standard_normal(n)
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
        sizes = np.array([n])
        bx = levels.bin_within_eras(x, sizes, levels.TARGET_SHARES)
        by = levels.bin_within_eras(y, sizes, levels.TARGET_SHARES)
        # the sample corr of n pairs has standard error about (1 - r^2) / sqrt(n): within 5 of them
        r = levels.binned_corr(rho)
        assert r == pytest.approx(np.corrcoef(bx, by)[0, 1], abs=5 * (1 - r**2) / np.sqrt(n))
        assert levels.binned_corr(rho) < rho
    assert levels.latent_corr_for(levels.binned_corr(0.55)) == pytest.approx(0.55, abs=1e-8)


# --------------------------------------------------------------------------- profiles and schema


def test_unknown_profile_lists_the_names():
    with pytest.raises(BnnlibError, match="'default'.*'quick'.*'tiny'"):
        synth.get_profile("huge")


def test_bad_profile_is_refused():
    with pytest.raises(BnnlibError, match="n_small"):
        dataclasses.replace(synth.PROFILES["tiny"], n_small=70)


def test_schema_of_tiny(tiny):
    profile = synth.PROFILES["tiny"]
    for frame, split in ((tiny.train, "train"), (tiny.validation, "validation")):
        assert frame.index.name == "id"
        assert set(frame["data_type"]) == {split}
        assert all(isinstance(e, str) and len(e) == 4 and e.isdigit() for e in frame["era"])
        features = [c for c in frame.columns if c.startswith("feature_")]
        assert len(features) == profile.n_features
        assert all(frame[f].dtype == np.float32 for f in features)
        assert np.isin(frame[features].to_numpy(), LEVELS).all()
        assert [c for c in frame.columns if c.startswith("target")] == list(TARGETS)
    ids = tiny.train.index.append(tiny.validation.index)
    assert ids.is_unique
    train_eras, valid_eras = tiny.train["era"].unique(), tiny.validation["era"].unique()
    assert list(train_eras) == [f"{e:04d}" for e in range(1, profile.train_eras + 1)]
    first_valid = profile.train_eras + profile.gap_eras + 1
    assert list(valid_eras) == [f"{e:04d}" for e in range(first_valid, first_valid + profile.validation_eras)]


def test_levels_per_era(tiny):
    frame = tiny.train
    features = tiny.features_json["feature_sets"]["all"]
    for _, era in frame.groupby("era"):
        n = len(era)
        for level in LEVELS:
            shares = (era[features] == level).mean()
            assert (abs(shares - 0.2) <= 1 / n + 1e-9).all()
        target_shares = era["target_nomi_20"].value_counts(normalize=True).reindex(LEVELS)
        assert np.allclose(target_shares, levels.TARGET_SHARES, atol=1 / n + 1e-9)


def test_long_target_unresolved_only_in_the_last_validation_eras(tiny):
    profile = synth.PROFILES["tiny"]
    valid = tiny.validation
    missing = valid.groupby("era")["target_nomi_60"].apply(lambda s: s.isna().all())
    eras = list(missing.index)
    assert missing[eras[-profile.unresolved_eras:]].all()
    assert not valid.loc[~valid["era"].isin(eras[-profile.unresolved_eras:]), "target_nomi_60"].isna().any()
    assert not tiny.train[list(TARGETS)].isna().any().any()


def test_feature_sets(tiny):
    sets = tiny.features_json["feature_sets"]
    assert (len(sets["small"]), len(sets["medium"]), len(sets["all"])) == (38, 50, 60)
    assert set(sets["small"]) <= set(sets["medium"]) <= set(sets["all"])
    assert tiny.features_json["targets"] == list(TARGETS)
    assert sets["all"] == [c for c in tiny.train.columns if c.startswith("feature_")]


def test_same_seed_same_data_other_seed_other_data(tiny):
    again = synth.generate("tiny")
    pd.testing.assert_frame_equal(tiny.train, again.train)
    pd.testing.assert_frame_equal(tiny.truth_rows, again.truth_rows)
    other = synth.generate("tiny", seed=7)
    assert not np.array_equal(other.train["target_nomi_20"].to_numpy(), tiny.train["target_nomi_20"].to_numpy())
    assert other.profile.seed == 7


def test_truth_tables(tiny):
    rows, eras = tiny.truth_rows, tiny.truth_eras
    assert rows.index.equals(tiny.train.index.append(tiny.validation.index))
    assert {"signal", "signal_stable", "signal_linear", "signal_interaction", "signal_factor"} <= set(rows.columns)
    names = ["signal_linear", "signal_interaction", "signal_factor"]
    parts = rows[names].sum(axis=1)
    # float32 columns: each part and the signal rounded once, and two additions here
    assert (np.abs(parts - rows["signal"]) <= f32_tol(4) * rows[names].abs().sum(axis=1)).all()
    assert list(eras["era"]) == list(tiny.train["era"].unique()) + list(tiny.validation["era"].unique())
    assert eras["shifted"].dtype == bool
    assert (eras.loc[~eras["shifted"], "shift_flipped"] == 0).all()
    drift = eras[[c for c in eras.columns if c.startswith("drift_") and c[6:].isdigit()]]
    np.testing.assert_allclose(drift.sum(axis=1), 1.0, rtol=0, atol=f64_tol(drift.shape[1] + 1))  # float64 shares


# --------------------------------------------------------------------------- writing


def test_write_profile_writes_readable_files(tmp_path):
    out = synth.write_profile("tiny", tmp_path / "data")
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "features.json", "meta.json", "train.parquet",
                                                     "truth", "validation.parquet"]
    train = pd.read_parquet(out / "train.parquet")
    assert train.index.name == "id" and train["era"].iloc[0] == "0001"
    assert json.loads((out / "features.json").read_text())["feature_sets"]["small"]
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["profile"], meta["seed"]) == ("tiny", 2021)
    assert len(pd.read_parquet(out / "truth" / "rows.parquet")) == meta["train_rows"] + meta["validation_rows"]
    # a previous synthetic output is replaced, and nothing temporary stays behind
    synth.write_profile("tiny", out, seed=5)
    assert json.loads((out / "meta.json").read_text())["seed"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_write_profile_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(BnnlibError, match="not empty"):
        synth.write_profile("tiny", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_write_profile_leaves_nothing_when_interrupted(tmp_path, monkeypatch):
    def broken(self, path, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        synth.write_profile("tiny", tmp_path / "data")
    assert list(tmp_path.iterdir()) == []


def test_cli_synth(tmp_path, capsys):
    assert cli.main(["data", "synth", "--profile", "tiny", "--out", str(tmp_path / "d"), "--seed", "3"]) == 0
    assert (tmp_path / "d" / "train.parquet").is_file()
    assert cli.main(["data", "synth", "--profile", "nope", "--out", str(tmp_path / "e")]) == 2
    assert "unknown synthetic profile 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- the default profile and its reduced copy


def test_default_profile_has_numerai_v3_sizes():
    """Sizes from the profile and from the generator's own era sizes (no rows are generated)."""
    assert (DEFAULT.train_eras, DEFAULT.validation_eras, DEFAULT.unresolved_eras) == (574, 105, 4)
    rows_rng = np.random.default_rng(np.random.SeedSequence(DEFAULT.seed).spawn(3)[2])  # as in generate
    train, valid = synth._era_sizes(DEFAULT, rows_rng)
    assert (len(train), len(valid)) == (574, 105)
    assert 2_380_000 <= train.sum() <= 2_440_000  # v3: about 2.41M training rows
    assert 17_400 <= 30 * np.ceil(train.sum() / 4096) <= 18_000  # the talk's ~17,700 steps: 30 epochs, batch 4096
    assert train[:50].mean() < 0.85 * DEFAULT.train_rows and train[-50:].mean() > 1.15 * DEFAULT.train_rows
    assert ((valid >= 1400) & (valid <= 1600)).all()


def test_reduced_copy_shares_the_world_and_path():
    from bnnlib.data.world import make_era_path, make_world

    def hidden(profile):
        world_seq, path_seq, _ = np.random.SeedSequence(profile.seed).spawn(3)
        world = make_world(profile, np.random.default_rng(world_seq))
        return world, make_era_path(profile, world, np.random.default_rng(path_seq))

    (world, path), (world_r, path_r) = hidden(DEFAULT), hidden(REDUCED)
    assert np.array_equal(world.main.weights, world_r.main.weights) and world.small == world_r.small
    for name in ("regime", "shifted", "linear", "factor"):
        assert np.array_equal(getattr(path, name), getattr(path_r, name))


def test_reduced_copy_sizes(reduced):
    assert reduced.validation["era"].nunique() == 105
    assert reduced.validation.groupby("era").size().between(1400, 1600).all()
    assert reduced.train["era"].nunique() == 574 and 130_000 <= len(reduced.train) <= 160_000


def test_nonlinearity_linear_part_explains_at_most_60_percent(reduced):
    features = reduced.features_json["feature_sets"]["all"]
    x = reduced.train[features].to_numpy(np.float64)
    signal = reduced.truth_rows.loc[reduced.train.index, "signal_stable"].to_numpy(np.float64)
    design = np.column_stack([x, np.ones(len(x))])
    residual = signal - design @ np.linalg.lstsq(design, signal, rcond=None)[0]
    r2 = 1 - residual.var() / signal.var()
    assert 0.25 < r2 <= 0.6


def _era_corr(prediction: np.ndarray, target: np.ndarray, eras: np.ndarray) -> pd.Series:
    frame = pd.DataFrame({"p": prediction, "t": target, "era": eras})
    frame["r"] = frame.groupby("era")["p"].rank(method="first")
    return frame.groupby("era")[["r", "t"]].apply(lambda g: np.corrcoef(g["r"], g["t"])[0, 1])


def test_a_model_that_knows_the_interactions_beats_linear(reduced):
    world = reduced.world
    features = reduced.features_json["feature_sets"]["all"]

    def design(frame: pd.DataFrame, with_terms: bool) -> np.ndarray:
        x = standardize(np.rint(frame[features].to_numpy(np.float64) * 4))
        parts = [x, np.ones((len(x), 1))] + ([interaction_basis(x, world.main.terms)] if with_terms else [])
        return np.column_stack(parts)

    y = reduced.train["target_nomi_20"].to_numpy(np.float64)
    truth = reduced.truth_rows.loc[reduced.validation.index, "signal"].to_numpy()
    eras = reduced.validation["era"].to_numpy()
    scores = {}
    for with_terms in (False, True):
        weights = np.linalg.lstsq(design(reduced.train, with_terms), y, rcond=None)[0]
        scores[with_terms] = _era_corr(design(reduced.validation, with_terms) @ weights, truth, eras).mean()
    assert scores[True] > scores[False] + 0.05


def test_shifted_eras_are_recorded_and_hurt_a_linear_model(reduced):
    eras = reduced.truth_eras.set_index("era")
    assert eras["shifted"].sum() >= 5
    assert (eras.loc[eras["shifted"], "alignment"] < eras.loc[~eras["shifted"], "alignment"].median()).all()
    assert eras["regime"].nunique() > 1
    assert (eras.loc[eras["shifted"], "feature_loading"] > eras.loc[~eras["shifted"], "feature_loading"].max()).all()


def test_write_profile_keeps_a_copy_another_process_published_first(tmp_path, monkeypatch):
    out = tmp_path / "data"
    real_replace = synth.os.replace
    raced = []

    def racing(src, dst):
        if Path(dst) == out and not raced:
            raced.append(True)
            synth.write_profile("tiny", out)  # the other process wins the race
        return real_replace(src, dst)

    monkeypatch.setattr(synth.os, "replace", racing)
    assert synth.write_profile("tiny", out) == out
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
    assert json.loads((out / "meta.json").read_text())["profile"] == "tiny"


def test_write_profile_to_a_place_that_cannot_be_written_is_a_bnnlib_error(tmp_path):
    (tmp_path / "a-file").write_text("x")
    for out in (Path("/proc/bnnlib-test/data"), tmp_path / "a-file" / "below" / "data"):
        with pytest.raises(BnnlibError, match="cannot write the synthetic data to"):
            synth.write_profile("tiny", out)


def test_a_concept_shift_flips_weights_leaves_the_features_and_changes_nothing_else(tiny):
    """The `-drift` profiles plant concept drift the inputs cannot show: eras whose weights flip
    as in a shift while the features keep their loading. Drawn from a stream of its own, so the
    features, and every era without it, are the data the profile makes without it."""
    from bnnlib.data.profiles import PROFILES
    from bnnlib.studies.uncertainty import planted_changes

    drifting = synth.generate(dataclasses.replace(PROFILES["tiny"], concept_shift_rate=0.5))
    eras = drifting.truth_eras
    concept = eras["concept_shift"].astype(bool)
    assert concept.any() and not (concept & eras["shifted"]).any()
    assert (eras.loc[concept, "shift_flipped"] > 0).all()
    assert (eras.loc[concept, "feature_loading"] == eras.loc[~eras["shifted"], "feature_loading"].iloc[0]).all()
    assert not tiny.truth_eras["concept_shift"].any()  # the book's profiles plant none
    features = [c for c in tiny.train.columns if c.startswith("feature_")]
    pd.testing.assert_frame_equal(drifting.train[features], tiny.train[features])
    pd.testing.assert_frame_equal(drifting.truth_eras.drop(columns=["concept_shift", "shift_flipped", "shift_features",
                                                                    "drift_distance", "alignment", "signal_sd"]),
                                  tiny.truth_eras.drop(columns=["concept_shift", "shift_flipped", "shift_features",
                                                                "drift_distance", "alignment", "signal_sd"]))
    validation = eras[eras["data_type"] == "validation"]
    changes = planted_changes(validation)
    calm = ~validation["shifted"].astype(bool)  # concept drift is judged against the calm eras only
    assert changes["concept_drift"].equals(concept[eras["data_type"] == "validation"][calm].set_axis(
        validation.loc[calm, "era"].astype(str)).rename("concept_drift"))
    assert len(changes["covariate_shift"]) == len(validation) > len(changes["concept_drift"])
    assert {"quick-drift", "default-drift"} <= set(PROFILES)
    assert PROFILES["default-drift"].train_rows == PROFILES["default"].train_rows
