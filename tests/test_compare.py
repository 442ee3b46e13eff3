"""`bnnlib compare`: two results folders are the same results when every CSV has the same
columns and values, whatever the builds' timings, cache keys and provenance."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.build import cli
from bnnlib.build.compare import compare_results, frame_difference
from bnnlib.errors import BnnlibError


def write(folder: Path, path: str, frame: pd.DataFrame) -> None:
    target = folder / path
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target, index=False)


def fits(corr: float = 0.0123456789, seconds: float = 1.5, key: str = "abc") -> pd.DataFrame:
    return pd.DataFrame({"model": ["normal", "flat"], "corr": [corr, math.nan], "verdict": ["converged", "diverging"],
                         "fit_seconds": [seconds, 2.0], "cache_key": [key, key]})


@pytest.fixture
def builds(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    for folder, seconds, key in ((before, 1.5, "abc"), (after, 99.0, "xyz")):
        write(folder, "ensembles/fits.csv", fits(seconds=seconds, key=key))
        write(folder, "ensembles/provenance.csv", pd.DataFrame({"item": ["machine"], "value": [str(folder)]}))
    return before, after


def test_timings_keys_and_provenance_do_not_count(builds):
    assert compare_results(*builds) == []
    assert cli.main(["compare", *map(str, builds)]) == 0


def test_a_changed_value_names_the_file_the_column_and_the_row(builds, capsys):
    before, after = builds
    write(after, "ensembles/fits.csv", fits(corr=0.0123456788))  # one unit in the last place shown
    [difference] = compare_results(before, after)
    assert difference.path == "ensembles/fits.csv"
    assert "column 'corr' differs in 1 of 2 rows; first at row 0" in difference.what
    assert cli.main(["compare", str(before), str(after)]) == 1
    assert "1 difference between" in capsys.readouterr().out
    assert compare_results(before, after, ignore=["corr"]) == []


def test_files_and_columns_on_one_side_only_are_differences(builds):
    before, after = builds
    write(after, "diagnostics/elbo_ladder.csv", pd.DataFrame({"model": ["a"], "elbo_per_row": [0.1]}))
    write(after, "ensembles/fits.csv", fits().assign(extra=1))
    found = {d.path: d.what for d in compare_results(before, after)}
    assert found["diagnostics/elbo_ladder.csv"] == "only in the second folder"
    assert "only after: ['extra']" in found["ensembles/fits.csv"]


def test_nan_equals_nan_and_row_counts_are_compared():
    frame = fits()
    assert frame_difference(frame, frame.copy()) is None
    assert frame_difference(frame, frame.iloc[:1]) == "2 rows before, 1 after"


def test_a_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(BnnlibError, match="is not a folder of results"):
        compare_results(tmp_path / "nope", tmp_path)
    assert cli.main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == 2
