"""The loader on small hand-made files of each Numerai layout, its errors, and the entry point."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnnlib.data import (
    V5_ROLES,
    Dataset,
    TargetRoles,
    load_dataset,
    load_synthetic,
    open_dataset,
    write_profile,
)
from bnnlib.data import loader
from bnnlib.data.download import download_dataset
from bnnlib.errors import BnnlibError

LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
TARGET_P = [0.05, 0.2, 0.5, 0.2, 0.05]
V3_TARGETS = ["target_nomi_20", "target_janet_20", "target_george_20", "target_nomi_60"]


def numerai_frame(seed: int, eras: list, rows: int = 30, features: int = 5, targets=V3_TARGETS,
                  int8: bool = False, data_type: str | None = "train") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(eras) * rows
    frame = pd.DataFrame({"era": np.repeat(eras, rows)})
    if data_type is not None:
        frame["data_type"] = data_type
    for j in range(features):
        levels = rng.integers(0, 5, n)
        frame[f"feature_f{j}"] = levels.astype(np.int8) if int8 else (levels / 4).astype(np.float32)
    for t in targets:
        frame[t] = rng.choice(LEVELS, n, p=TARGET_P).astype(np.float32)
    frame.index = pd.Index([f"n{seed}_{i:06d}" for i in range(n)], name="id")
    return frame


def features_json(features: int = 5, targets=V3_TARGETS) -> dict:
    names = [f"feature_f{j}" for j in range(features)]
    return {"feature_sets": {"small": names[:3], "medium": names}, "targets": list(targets)}


def write_v3(folder: Path, int8: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "_int8" if int8 else ""
    numerai_frame(1, ["0001", "0002", "0003"], int8=int8).to_parquet(folder / f"numerai_training_data{suffix}.parquet")
    numerai_frame(2, ["0008", "0009"], int8=int8, data_type="validation").to_parquet(
        folder / f"numerai_validation_data{suffix}.parquet")
    (folder / "features.json").write_text(json.dumps(features_json()))
    return folder


def write_v5(folder: Path, valid: pd.DataFrame | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    targets = V5_ROLES.columns + ["target_other_20"]
    numerai_frame(3, [1, 2, 3], int8=True, targets=targets).to_parquet(folder / "train.parquet")
    if valid is None:
        valid = pd.concat([numerai_frame(4, [10, 11], int8=True, targets=targets, data_type="validation"),
                           numerai_frame(5, [12], int8=True, targets=targets, data_type="test")])
    valid.to_parquet(folder / "validation.parquet")
    (folder / "features.json").write_text(json.dumps(features_json(targets=targets)))
    return folder


# --------------------------------------------------------------------------- roles


def test_target_roles():
    roles = TargetRoles()
    assert roles.columns == V3_TARGETS
    assert TargetRoles("a", "b", None).columns == ["a", "b"]
    assert TargetRoles("a", ["b", "c"], "d").aux == ("b", "c")
    with pytest.raises(BnnlibError, match="repeat"):
        TargetRoles("a", ("a",), "d")


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("int8", [False, True])
def test_v3_float_and_int8(tmp_path, int8):
    ds = load_dataset(write_v3(tmp_path, int8=int8))
    assert isinstance(ds, Dataset) and ds.source.startswith("v3 files")
    assert ds.features == ["feature_f0", "feature_f1", "feature_f2"]
    assert list(ds.train.columns) == ["era", *ds.features, *V3_TARGETS]
    assert ds.train.index.name == "id"
    assert all(ds.train[f].dtype == np.float32 for f in ds.features)
    raw = pd.read_parquet(next(tmp_path.glob("numerai_training_data*.parquet")))
    expected = raw["feature_f0"].to_numpy(np.float32) / (4 if int8 else 1)
    assert np.array_equal(ds.train["feature_f0"].to_numpy(), expected)
    assert ds.eras("validation") == ["0008", "0009"]


def test_float_and_int8_files_load_to_the_same_values(tmp_path):
    a = load_dataset(write_v3(tmp_path / "a", int8=False))
    b = load_dataset(write_v3(tmp_path / "b", int8=True))
    assert np.array_equal(a.arrays("train")[0], b.arrays("train")[0])


def test_v5_int8_integer_eras_and_validation_filter(tmp_path):
    ds = load_dataset(write_v5(tmp_path), roles=V5_ROLES, feature_set="medium")
    assert ds.eras("train") == ["0001", "0002", "0003"]
    assert ds.eras("validation") == ["0010", "0011"]  # the 'test' rows are dropped
    assert len(ds.features) == 5 and ds.train[ds.features].to_numpy().max() == 1.0
    assert "data_type" not in ds.validation.columns
    assert ds.targets == V5_ROLES.columns


def test_only_the_needed_columns_are_read(tmp_path, monkeypatch):
    folder = write_v5(tmp_path)
    asked = []
    original = pd.read_parquet

    def spy(path, columns=None, **kwargs):
        asked.append(list(columns))
        return original(path, columns=columns, **kwargs)

    monkeypatch.setattr(loader.pd, "read_parquet", spy)
    load_dataset(folder, roles=V5_ROLES)
    assert asked and all("target_other_20" not in c and "feature_f4" not in c for c in asked)


def test_arrays_and_fingerprint(tmp_path):
    folder = write_v3(tmp_path)
    ds = load_dataset(folder)
    x, y, eras = ds.arrays("validation")
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.shape == (60, 3) and y.shape == (60, 4) and eras.shape == (60,)
    assert ds.arrays("train", ["target_janet_20"])[1].shape == (90, 1)
    assert ds.fingerprint == load_dataset(folder).fingerprint
    assert ds.fingerprint != load_dataset(folder, feature_set="medium").fingerprint
    frame = pd.read_parquet(folder / "numerai_training_data.parquet")
    frame.iloc[0, frame.columns.get_loc("target_nomi_20")] = 0.0 if frame.iloc[0]["target_nomi_20"] else 1.0
    frame.to_parquet(folder / "numerai_training_data.parquet")
    assert load_dataset(folder).fingerprint != ds.fingerprint
    with pytest.raises(BnnlibError, match="unknown split"):
        ds.arrays("test")


def test_trailing_unresolved_validation_eras_are_dropped_with_a_note(tmp_path):
    targets = V5_ROLES.columns
    valid = numerai_frame(4, [10, 11, 12], int8=True, targets=targets, data_type="validation")
    valid.loc[valid["era"] == 12, "target_ender_20"] = np.nan
    ds = load_dataset(write_v5(tmp_path, valid), roles=V5_ROLES)
    assert ds.eras("validation") == ["0010", "0011"]
    assert "0012" in ds.notes[0]


# --------------------------------------------------------------------------- errors


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(BnnlibError, match="does not exist.*bnnlib data synth"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(BnnlibError, match="numerai_training_data.parquet.*train.parquet.*bnnlib data download"):
        load_dataset(tmp_path)
    with pytest.raises(BnnlibError, match="unknown data layout 'v9'"):
        load_dataset(tmp_path, layout="v9")


def test_missing_features_json(tmp_path):
    folder = write_v3(tmp_path)
    (folder / "features.json").unlink()
    with pytest.raises(BnnlibError, match="no features.json"):
        load_dataset(folder)


def test_unknown_feature_set_and_missing_features(tmp_path):
    folder = write_v3(tmp_path)
    with pytest.raises(BnnlibError, match="unknown feature set.*'all', 'medium', 'small'"):
        load_dataset(folder, feature_set="large")
    with pytest.raises(BnnlibError, match="not columns of the data"):
        load_dataset(folder, feature_set=["feature_f0", "feature_nope"])


def test_missing_target_lists_targets_and_suggests_v5(tmp_path):
    with pytest.raises(BnnlibError, match="target_nomi_20.*target_ender_20.*looks like Numerai v5"):
        load_dataset(write_v5(tmp_path))


def test_feature_values_off_the_levels_and_nan(tmp_path):
    folder = write_v3(tmp_path)
    frame = pd.read_parquet(folder / "numerai_training_data.parquet")
    frame.loc[frame.index[3], "feature_f1"] = 0.3
    frame.to_parquet(folder / "numerai_training_data.parquet")
    with pytest.raises(BnnlibError, match="feature_f1.*outside Numerai's 5 levels"):
        load_dataset(folder)
    frame.loc[frame.index[3], "feature_f1"] = np.nan
    frame.to_parquet(folder / "numerai_training_data.parquet")
    with pytest.raises(BnnlibError, match="feature_f1.*missing values"):
        load_dataset(folder)


def test_an_int8_value_is_reported_as_the_file_holds_it(tmp_path):
    folder = write_v5(tmp_path)
    frame = pd.read_parquet(folder / "train.parquet")
    frame.loc[frame.index[3], "feature_f1"] = 7
    frame.to_parquet(folder / "train.parquet")
    with pytest.raises(BnnlibError) as caught:
        load_dataset(folder, roles=V5_ROLES)
    message = str(caught.value)
    assert "feature_f1" in message and "[7]" in message and "1.75" not in message and "0..4" in message


def test_one_float_column_among_int8_features_is_the_one_blamed(tmp_path):
    folder = write_v5(tmp_path)
    frame = pd.read_parquet(folder / "train.parquet")
    frame["feature_f2"] = frame["feature_f2"].astype(np.float32)  # 0..4 as floats: off the 0..1 levels
    frame.to_parquet(folder / "train.parquet")
    with pytest.raises(BnnlibError) as caught:
        load_dataset(folder, roles=V5_ROLES)
    message = str(caught.value)
    assert "['feature_f2']" in message and "float32" in message and "feature_f0" not in message


def test_an_era_of_one_row_is_refused_before_any_fit(tmp_path):
    folder = write_v3(tmp_path)
    valid = pd.read_parquet(folder / "numerai_validation_data.parquet")
    lonely = valid.iloc[:1].copy()
    lonely["era"] = "0010"
    pd.concat([valid, lonely.rename(index=lambda i: i + "x")]).to_parquet(folder / "numerai_validation_data.parquet")
    with pytest.raises(BnnlibError) as caught:
        load_dataset(folder)
    message = str(caught.value)
    assert "era 0010 has 1 row" in message and "at least 2 rows" in message
    assert "\n" not in message and "ModelSpec" not in message


def test_a_missing_data_type_column_gets_a_note(tmp_path):
    folder = write_v3(tmp_path)
    frame = pd.read_parquet(folder / "numerai_training_data.parquet").drop(columns="data_type")
    frame.to_parquet(folder / "numerai_training_data.parquet")
    notes = load_dataset(folder).notes
    assert any("numerai_training_data.parquet has no data_type column" in n and "train rows" in n for n in notes)
    assert not any("validation" in n for n in notes)


def test_main_target_nan_in_train_and_missing_era(tmp_path):
    folder = write_v3(tmp_path)
    frame = pd.read_parquet(folder / "numerai_training_data.parquet")
    frame.loc[frame.index[5], "target_nomi_20"] = np.nan
    frame.to_parquet(folder / "numerai_training_data.parquet")
    with pytest.raises(BnnlibError, match="main target 'target_nomi_20' is missing"):
        load_dataset(folder)
    frame.drop(columns="era").to_parquet(folder / "numerai_training_data.parquet")
    with pytest.raises(BnnlibError, match="no 'era' column"):
        load_dataset(folder)


# --------------------------------------------------------------------------- synthetic and the entry point


def test_load_synthetic_generates_once_then_reuses(tmp_path):
    ds = load_synthetic("tiny", tmp_path)
    folder = tmp_path / "synthetic-tiny-seed2021"
    assert ds.truth is not None and "shifted" in ds.truth.eras.columns
    assert ds.truth.rows.index.equals(ds.train.index.append(ds.validation.index))
    assert "synthetic" in ds.source and len(ds.features) == 38
    stamp = (folder / "train.parquet").stat().st_mtime_ns
    again = load_synthetic("tiny", tmp_path)
    assert (folder / "train.parquet").stat().st_mtime_ns == stamp
    assert again.fingerprint == ds.fingerprint
    # a folder written by other generator code is regenerated
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "generator_hash": "old"}))
    assert load_synthetic("tiny", tmp_path).fingerprint == ds.fingerprint
    assert json.loads((folder / "meta.json").read_text())["generator_hash"] != "old"
    assert load_synthetic("tiny", tmp_path, seed=4).fingerprint != ds.fingerprint


def test_synthetic_files_load_with_load_dataset(tmp_path):
    write_profile("tiny", tmp_path / "d")
    ds = load_dataset(tmp_path / "d", feature_set="all")
    assert len(ds.features) == 60 and ds.truth is not None


def test_open_dataset(tmp_path):
    ds = open_dataset("synthetic", synthetic_profile="tiny", data_root=tmp_path, aux_targets=["target_janet_20"],
                      long_target=None)
    assert ds.targets == ["target_nomi_20", "target_janet_20"]
    with pytest.raises(BnnlibError, match="--data-dir"):
        open_dataset("numerai")
    with pytest.raises(BnnlibError, match="unknown data source 'kaggle'"):
        open_dataset("kaggle")
    real = open_dataset("numerai", data_dir=write_v3(tmp_path / "v3"), feature_set="medium")
    assert real.truth is None and len(real.features) == 5


# --------------------------------------------------------------------------- download (a fake numerapi)


class FakeNumerAPI:
    datasets = ["v5.2/train.parquet", "v5.2/validation.parquet", "v5.2/features.json", "v4.3/train.parquet"]
    fail_on: str | None = None

    def list_datasets(self):
        return list(self.datasets)

    def download_dataset(self, filename, dest_path=None):
        if filename == self.fail_on:
            Path(dest_path).write_text("half")
            raise ConnectionError("connection reset")
        Path(dest_path).write_text(f"content of {filename}")


@pytest.fixture
def fake_numerapi(monkeypatch):
    module = types.ModuleType("numerapi")
    module.NumerAPI = FakeNumerAPI
    monkeypatch.setitem(sys.modules, "numerapi", module)
    yield FakeNumerAPI
    FakeNumerAPI.fail_on = None


def test_download_writes_the_three_files(tmp_path, fake_numerapi):
    paths = download_dataset("v5.2", tmp_path / "v5")
    assert [p.name for p in paths] == ["train.parquet", "validation.parquet", "features.json"]
    assert (tmp_path / "v5" / "features.json").read_text() == "content of v5.2/features.json"
    assert sorted(p.name for p in (tmp_path / "v5").iterdir()) == ["features.json", "train.parquet",
                                                                  "validation.parquet"]


def test_download_unknown_version_lists_versions(tmp_path, fake_numerapi):
    with pytest.raises(BnnlibError, match="v9/train.parquet.*available versions: v4.3, v5.2"):
        download_dataset("v9", tmp_path)


def test_download_failure_leaves_no_partial_file(tmp_path, fake_numerapi):
    fake_numerapi.fail_on = "v5.2/validation.parquet"
    with pytest.raises(BnnlibError, match="validation.parquet failed.*connection reset"):
        download_dataset("v5.2", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["train.parquet"]


def test_download_without_numerapi(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "numerapi", None)  # import fails
    with pytest.raises(BnnlibError, match=r"pip install 'bnnlib\[download\]'"):
        download_dataset("v5.2", tmp_path)
