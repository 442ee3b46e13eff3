"""Exported results: the files, their columns, and atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bnnlib import results
from bnnlib.errors import BnnlibError
from test_analysis import fake_result  # tests/ is on sys.path (pytest prepend mode)


def _models():
    rng = np.random.default_rng(1)
    bnn = fake_result(rng.normal(size=(5, 4)), rng.normal(0.01, 0.02, 4), rng.random(4), name="flat")
    baseline = fake_result(rng.normal(size=(1, 4)), rng.normal(0.01, 0.02, 4), method="baseline", name="baseline")
    return {"flat": bnn, "baseline": baseline}


def test_chapter_folder_accepts_the_root_or_the_chapters_folder():
    assert results.chapter_folder("_build/results", "ensembles") == Path("_build/results/ensembles")
    assert results.chapter_folder("_build/results/ensembles", "ensembles") == Path("_build/results/ensembles")
    with pytest.raises(BnnlibError, match="folder name"):
        results.chapter_folder("x", "../up")


def test_export_writes_predictions_per_era_and_summary(tmp_path):
    models = _models()
    summary = pd.DataFrame({"corr_mean": [0.1, 0.2]}, index=pd.Index(["flat", "baseline"], name="model"))
    written = results.export_results(tmp_path, models, summary)
    assert set(written) == {
        tmp_path / "flat" / "predictions.parquet", tmp_path / "flat" / "per_era.csv",
        tmp_path / "baseline" / "predictions.parquet", tmp_path / "baseline" / "per_era.csv",
        tmp_path / "summary.csv",
    }
    predictions = pd.read_parquet(tmp_path / "flat" / "predictions.parquet")
    assert predictions.index.name == "id" and list(predictions.columns) == ["era", "prediction"]
    pd.testing.assert_frame_equal(predictions, models["flat"].scores.predictions())
    per_era = pd.read_csv(tmp_path / "flat" / "per_era.csv", dtype={"era": str})
    assert list(per_era.columns) == ["era", "corr", "numerai_corr", "mean_std"]
    np.testing.assert_allclose(per_era["mean_std"], models["flat"].per_era["mean_std"])
    assert per_era["era"].iloc[0] == "0001"
    # one network has no predictive spread: no mean_std column
    assert list(pd.read_csv(tmp_path / "baseline" / "per_era.csv").columns) == ["era", "corr", "numerai_corr"]
    back = pd.read_csv(tmp_path / "summary.csv", index_col="model")
    assert back.loc["baseline", "corr_mean"] == 0.2
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_bad_name_writes_nothing(tmp_path):
    models = _models()
    models["bad/name"] = models.pop("baseline")
    with pytest.raises(BnnlibError, match="cannot be a folder name"):
        results.export_results(tmp_path, models, None)
    assert not any(tmp_path.iterdir())


def test_a_failing_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old\n")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        results.write_atomic(target, broken)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_figures_are_exported_as_png(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    path = results.export_figure(tmp_path, "roc", figure)
    assert path == tmp_path / "figures" / "roc.png" and path.read_bytes()[:4] == b"\x89PNG"
