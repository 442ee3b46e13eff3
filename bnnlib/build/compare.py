"""Are two builds' exported results the same numbers? `bnnlib compare BEFORE AFTER`.

A change that should not move a number (a refactoring, a new page, a presentation edit) is
checked by building the book before and after it and comparing every CSV under the two results
folders (`_build/results`): the same files, the same columns, the same values, exactly. What a
build measures about itself is left out: its timings, the cache keys (they hash the engine's
code, which a refactoring changes by design) and when an entry was created; the provenance
tables (machine, versions, times) are skipped whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bnnlib.errors import BnnlibError

VOLATILE_COLUMNS = ("fit_seconds", "score_seconds", "seconds", "cache_key", "fit_key", "created", "cached")
"""Columns that describe the build, not its results: compared nowhere."""

SKIPPED_FILES = ("provenance.csv",)
"""Files that describe the machine and the run (versions, times, cache lookups): not compared."""


@dataclass(frozen=True)
class Difference:
    """One way the two results folders differ: the file (relative path) and what differs."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def result_files(folder: Path) -> set[str]:
    """The CSV files under `folder` that are compared, as paths relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")
            if p.is_file() and p.name not in SKIPPED_FILES}


def frame_difference(before: pd.DataFrame, after: pd.DataFrame, ignore: Iterable[str] = ()) -> str | None:
    """The first difference between two tables, in words, or None when they are equal (values
    exactly, NaN equal to NaN), the `VOLATILE_COLUMNS` and `ignore` left out."""
    dropped = {*VOLATILE_COLUMNS, *ignore}
    before = before.drop(columns=[c for c in before.columns if c in dropped])
    after = after.drop(columns=[c for c in after.columns if c in dropped])
    if list(before.columns) != list(after.columns):
        gone = [c for c in before.columns if c not in after.columns]
        new = [c for c in after.columns if c not in before.columns]
        return f"columns differ (only before: {gone or '-'}; only after: {new or '-'}; or their order)"
    if len(before) != len(after):
        return f"{len(before)} rows before, {len(after)} after"
    for column in before.columns:
        a, b = before[column], after[column]
        same = (a == b) | (a.isna() & b.isna())
        if not same.all():
            row = int((~same).to_numpy().nonzero()[0][0])
            return (f"column {column!r} differs in {int((~same).sum())} of {len(same)} rows; first at row {row}: "
                    f"{a.iloc[row]!r} before, {b.iloc[row]!r} after")
    return None


def compare_results(before: Path | str, after: Path | str, ignore: Iterable[str] = ()) -> list[Difference]:
    """Every difference between two results folders (`frame_difference` per CSV file present in
    either); an empty list means the same results."""
    before, after = Path(before), Path(after)
    for folder in (before, after):
        if not folder.is_dir():
            raise BnnlibError(f"{folder} is not a folder of results; give two builds' _build/results folders")
    ignore = tuple(ignore)
    files_before, files_after = result_files(before), result_files(after)
    differences = [Difference(p, "only in the first folder") for p in sorted(files_before - files_after)]
    differences += [Difference(p, "only in the second folder") for p in sorted(files_after - files_before)]
    for path in sorted(files_before & files_after):
        what = frame_difference(_read(before / path), _read(after / path), ignore)
        if what is not None:
            differences.append(Difference(path, what))
    return differences


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
