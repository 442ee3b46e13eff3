"""v5 at small scale: the v5-size files' layout, the loader reading only what it needs, and the
numerai-v5 profile running a chapter end to end on such a folder (tiny rows, so it is quick)."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bnnlib.build import cli, runner
from bnnlib.data import open_dataset
from bnnlib.data.loader import _read_split
from bnnlib.data.roles import V5_ROLES
from bnnlib.data.sized import SIZED, V5_TARGETS, write_sized
from bnnlib.errors import BnnlibError
from bnnlib.project import book as project

REPO = Path(__file__).resolve().parents[1]
TINY = SIZED["v5-size"].scaled(0.002)  # 5,400 train rows over 574 eras, 3,000 validation rows


@pytest.fixture(scope="module")
def v5_folder(tmp_path_factory) -> Path:
    return write_sized(TINY, tmp_path_factory.mktemp("v5"))


def v5_dataset(folder: Path):
    settings = project.load_profile("numerai-v5", REPO)["common"]
    return open_dataset("numerai", data_dir=folder, feature_set=settings["feature_set"],
                        main_target=settings["main_target"], aux_targets=settings["aux_targets"],
                        long_target=settings["long_target"])


def test_v5_size_files_have_v5s_layout(v5_folder):
    features = json.loads((v5_folder / "features.json").read_text())
    assert len(features["feature_sets"]["small"]) == 42 and features["targets"] == list(V5_TARGETS)
    schema = pq.read_schema(v5_folder / "train.parquet")
    small = features["feature_sets"]["small"]
    assert all(str(schema.field(f).type) == "int8" for f in small)
    assert len([n for n in schema.names if n.startswith("feature_")]) > len(small)  # more than a run reads
    train = pq.read_table(v5_folder / "train.parquet", columns=["era", "target", V5_ROLES.main]).to_pandas()
    assert train["era"].nunique() == 574 and train["era"].iloc[0] == "0001"
    assert np.array_equal(train["target"], train[V5_ROLES.main])  # `target` is the payout target
    levels = pq.read_table(v5_folder / "train.parquet", columns=small[:1]).column(0).to_numpy()
    assert set(np.unique(levels)) == {0, 1, 2, 3, 4}


def test_the_numerai_v5_profile_loads_v5_files_reading_only_its_columns(v5_folder, monkeypatch):
    import pandas as pd

    read = []
    original = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path, columns=None, **kw: read.append(columns) or
                        original(path, columns=columns, **kw))
    dataset = v5_dataset(v5_folder)
    assert dataset.roles == V5_ROLES and len(dataset.features) == 42
    assert len(dataset.train) == TINY.train_rows
    # the 4 unresolved trailing validation eras are dropped, with a note
    assert dataset.validation["era"].nunique() == TINY.validation_eras - TINY.unresolved_eras
    assert any("trailing validation eras" in note for note in dataset.notes)
    assert all(len(columns) == 2 + 42 + len(V5_ROLES.columns) + 1 for columns in read)  # era, data_type, id
    x, y, _ = dataset.arrays("train")
    assert x.dtype == np.float32 and set(np.unique(x)) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert np.isnan(y[:, 1]).any() and not np.isnan(y[:, 0]).any()  # aux targets have gaps, the main none


def test_the_loaders_result_frame_holds_the_features_in_one_float32_block(v5_folder):
    features = json.loads((v5_folder / "features.json").read_text())["feature_sets"]["small"]
    columns = pq.read_schema(v5_folder / "train.parquet").names
    frame = _read_split(v5_folder / "train.parquet", features, V5_ROLES, columns, "train", [])
    assert list(frame.columns) == ["era", *features, *V5_ROLES.columns]
    assert (frame[features].dtypes == np.float32).all()


def test_the_v5_profile_names_a_missing_target_and_suggests_the_v5_roles(v5_folder):
    with pytest.raises(BnnlibError, match="target_nomi_20.*looks like Numerai v5"):
        open_dataset("numerai", data_dir=v5_folder)


def test_data_synth_writes_v5_size_files_and_lists_it_among_the_profiles(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(SIZED, "v5-size", TINY)
    assert cli.main(["data", "synth", "--profile", "v5-size", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["features.json", "train.parquet",
                                                                  "validation.parquet"]
    assert cli.main(["data", "synth", "--profile", "v9", "--out", str(tmp_path / "e")]) == 2
    assert "'v5-size'" in capsys.readouterr().err


def test_a_chapter_runs_end_to_end_on_the_numerai_v5_profile(v5_folder, tmp_path):
    from tests.test_book import copy_project

    root = copy_project(tmp_path / "project")
    notebook = runner.run_chapter(
        "burn_eras", "numerai-v5", data_dir=v5_folder, build=False, device="cpu", root=root,
        overrides={"priors": ["normal"], "epochs": 1, "draws": 8, "batch_size": 1024},
    )
    text = Path(notebook).read_text()
    assert "target_ender_20" in text and "cpu" in text
    assert (root / "_build" / "results" / "burn_eras").is_dir()


def test_bench_v5_measures_every_stage_and_projects_the_books(tmp_path, monkeypatch, capsys):
    from bnnlib.bench import scale as bench_v5
    from bnnlib.bench.engine import run_benchmark

    monkeypatch.setitem(SIZED, "v5-size", TINY)
    monkeypatch.setattr(bench_v5, "SCORED_ERAS", 2)
    out = tmp_path / "bench.json"
    figures = run_benchmark(scale="v5", out=out, draws=20)
    assert json.loads(out.read_text())["scale"] == "v5"
    stages = figures["stages"]
    assert {"write_parquet", "read_parquet", "build_tensors", "svi_epoch_float32", "scoring_float32"} <= set(stages)
    assert all(s["seconds"] > 0 and s["peak_rss_mb"] > 0 for s in stages.values())
    assert stages["read_parquet"]["train_rows"] == TINY.train_rows
    assert "extrapolated by rows" in stages["scoring_float32"]["how"]
    assert not (tmp_path / "bench-v5-data").exists()  # the files are removed
    for name in ("default", "numerai-v5"):
        work, plan = figures["workloads"][name], figures["projections"][name]
        assert work["fits"] > 10 and work["train_flops"] > 0 and work["scoring_flops"] > 0
        assert plan["one_gpu_hours"] > 0 and plan["cpu_workers_hours"]["64"] <= plan["this_cpu_hours"]
    assert "extrapolated" in capsys.readouterr().out
