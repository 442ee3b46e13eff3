"""Exported results: the files, their columns, and atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bnnlib.infra import results
from bnnlib.studies import burn_eras
from bnnlib.studies import ensembles
from bnnlib.errors import BnnlibError
from test_analysis import fake_result  # tests/ is on sys.path (pytest prepend mode)


def _models():
    rng = np.random.default_rng(1)
    bnn = fake_result(rng.normal(size=(5, 4)), rng.normal(0.01, 0.02, 4), rng.random(4), name="flat")
    baseline = fake_result(rng.normal(size=(1, 4)), rng.normal(0.01, 0.02, 4), method="baseline", name="baseline")
    return {"flat": bnn, "baseline": baseline}


def test_book_folder_accepts_the_root_or_the_chapters_folder():
    assert results.book_folder("_build/results", "ensembles") == Path("_build/results/ensembles")
    assert results.book_folder("_build/results/ensembles", "ensembles") == Path("_build/results/ensembles")


def test_outside_the_runner_a_chapter_does_not_write_into_the_books_results(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(results.STAGING_ENV, raising=False)
    monkeypatch.delenv(results.BOOK_RESULTS_ENV, raising=False)
    assert results.chapter_folder("_build/results", "ensembles") == Path("_build/papermill/ensembles")
    assert "_build/papermill/ensembles" in capsys.readouterr().out  # says where they went, and why
    own = tmp_path / "mine"
    assert results.chapter_folder(own, "ensembles") == own / "ensembles"  # another folder: as given
    monkeypatch.setenv(results.BOOK_RESULTS_ENV, "1")  # pointed at the book's explicitly
    assert results.chapter_folder("_build/results/ensembles", "ensembles") == Path("_build/results/ensembles")
    monkeypatch.setenv(results.STAGING_ENV, str(tmp_path / "stage"))  # the runner's staging folder
    assert results.chapter_folder("_build/results", "ensembles") == tmp_path / "stage"


def test_exported_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = results.write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
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


def test_two_tiny_fits_flow_through_analysis_and_export(tmp_path):
    """A baseline and a BNN fitted for 2 epochs on the tiny profile: the chapters' path end to end."""
    from bnnlib.studies import common
    from bnnlib.infra.cache import Cache
    from bnnlib.data import open_dataset
    from bnnlib.evaluate.study import ModelSpec, evaluate_models

    dataset = open_dataset("synthetic", synthetic_profile="tiny", data_root=tmp_path / "data")
    specs = [ModelSpec("baseline", method="baseline", hidden=(8,), epochs=2, batch_size=256),
             ModelSpec("flat", prior="flat", hidden=(8,), epochs=2, batch_size=256, draws=6)]
    fitted = evaluate_models(specs, dataset, Cache(tmp_path / "cache"))
    table = common.score_table(fitted)
    draws = ensembles.draws_vs_ensemble(fitted)
    assert list(draws.index) == ["flat"] and draws.loc["flat", "draws"] == 6
    assert burn_eras.burn_detection({"flat": fitted["flat"]}).loc["flat", "n_eras"] == dataset.validation["era"].nunique()
    written = results.export_results(tmp_path / "out", fitted, table)
    assert len(written) == 5
    predictions = pd.read_parquet(tmp_path / "out" / "flat" / "predictions.parquet")
    assert predictions.index.equals(dataset.validation.index)
    per_era = pd.read_csv(tmp_path / "out" / "flat" / "per_era.csv")
    assert per_era["mean_std"].gt(0).all()
    assert per_era["corr"].mean() == pytest.approx(table.loc["flat", "corr_mean"])
