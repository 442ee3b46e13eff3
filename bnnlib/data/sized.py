"""Files in Numerai's v5 layout at Numerai's size, with random values: for measuring.

The statistical generator (bnnlib.data.synth) writes v3's schema at v3's size; what a v5 run
costs in time and memory (reading 2.7M rows of int8 features, building tensors, an SVI epoch,
scoring the validation eras) needs files of v5's size and schema, not its statistics. So
here: train.parquet, validation.parquet (data_type column, trailing eras whose targets are not
resolved yet) and features.json (feature_sets small/medium/all, targets), int8 features 0..4
at about 20% a level, targets on 5 levels (5/20/50/20/5 %) under v5's names, auxiliary targets
sometimes missing, and more columns than the small set reads, so that column selection matters.
Files are written a row group at a time, so writing never holds a whole file in memory.
`bnnlib data synth --profile v5-size` writes one; `bnnlib bench --scale v5` measures on it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bnnlib.data.roles import V5_ROLES
from bnnlib.errors import unknown_name

V5_TARGETS = ("target", *V5_ROLES.columns, "target_cyrus_20", "target_cyrus_60")
"""v5's target columns written: `target` (a copy of the main target, as Numerai's files hold
it), the roles of the numerai-v5 profile, and one more pair a run does not read."""

TARGET_LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32)
TARGET_SHARES = (0.05, 0.2, 0.5, 0.2, 0.05)
ROWS_PER_GROUP = 200_000


@dataclass(frozen=True)
class SizedProfile:
    """Sizes of a v5-shaped dataset (rows spread evenly over eras)."""

    name: str
    train_rows: int
    train_eras: int
    validation_rows: int
    validation_eras: int
    unresolved_eras: int = 4  # trailing validation eras whose targets are NaN (not resolved yet)
    n_small: int = 42  # v5's small feature set
    n_features: int = 84  # columns written; the rest of "small" make up "medium" and "all"
    aux_missing: float = 0.01  # share of rows whose auxiliary targets are NaN
    seed: int = 0

    def scaled(self, factor: float) -> "SizedProfile":
        """The same layout with `factor` times the rows (tests use a tiny one)."""
        return dataclasses.replace(self, name=f"{self.name}-x{factor:g}",
                                   train_rows=max(self.train_eras * 5, int(self.train_rows * factor)),
                                   validation_rows=max(self.validation_eras * 5, int(self.validation_rows * factor)))


SIZED: dict[str, SizedProfile] = {
    # v5.x train: about 2.7M rows over 574 weekly eras. Validation: v5 publishes several hundred
    # eras after the train eras; 300 eras of 5,000 rows is our assumption for the bench's scoring.
    "v5-size": SizedProfile("v5-size", train_rows=2_700_000, train_eras=574, validation_rows=1_500_000,
                            validation_eras=300),
}


def get_sized(name: str | SizedProfile) -> SizedProfile:
    if isinstance(name, SizedProfile):
        return name
    if name not in SIZED:
        raise unknown_name("sized profile", name, SIZED)
    return SIZED[name]


def feature_names(profile: SizedProfile) -> list[str]:
    return [f"feature_v5_{i:04d}" for i in range(profile.n_features)]


def features_json(profile: SizedProfile) -> dict:
    """features.json as Numerai writes it: feature sets and the list of targets."""
    names = feature_names(profile)
    return {"feature_sets": {"small": names[: profile.n_small], "medium": names, "all": names},
            "targets": list(V5_TARGETS)}


def _era_bounds(rows: int, eras: int) -> np.ndarray:
    return np.linspace(0, rows, eras + 1).round().astype(np.int64)


def _chunk_table(rng: np.random.Generator, profile: SizedProfile, first_row: int, era_of_row: np.ndarray,
                 split: str, unresolved_from: int | None) -> pa.Table:
    """One row group: ids, eras, data_type, int8 features, float32 targets."""
    n = len(era_of_row)
    first_era = int(era_of_row[0])
    labels = np.array([f"{e:04d}" for e in range(first_era, int(era_of_row[-1]) + 1)], dtype=object)
    columns = {
        "id": pa.array([f"n{i:012d}" for i in range(first_row, first_row + n)], pa.string()),
        "era": pa.array(labels[era_of_row - first_era], pa.string()),
        "data_type": pa.array(np.full(n, split, dtype=object), pa.string()),
    }
    levels = rng.integers(0, 5, (profile.n_features, n), dtype=np.int8)
    for name, column in zip(feature_names(profile), levels):
        columns[name] = pa.array(column, pa.int8())
    cumulative = np.cumsum(TARGET_SHARES)[:-1]

    def levels_of(size: int) -> np.ndarray:
        return TARGET_LEVELS[np.searchsorted(cumulative, rng.random(size), side="right")]

    main = levels_of(n)
    unresolved = np.zeros(n, dtype=bool) if unresolved_from is None else era_of_row >= unresolved_from
    for target in V5_TARGETS:
        values = main.copy() if target in ("target", V5_ROLES.main) else levels_of(n)
        if target not in ("target", V5_ROLES.main):
            values[rng.random(n) < profile.aux_missing] = np.nan
        values[unresolved] = np.nan
        columns[target] = pa.array(values, pa.float32())
    return pa.table(columns)


def _write_split(path: Path, rng: np.random.Generator, profile: SizedProfile, split: str, rows: int, eras: int,
                 first_era: int, unresolved: int) -> None:
    bounds = _era_bounds(rows, eras)
    era_of_row = np.repeat(np.arange(first_era, first_era + eras), np.diff(bounds))
    unresolved_from = first_era + eras - unresolved if unresolved else None
    writer = None
    try:
        for start in range(0, rows, ROWS_PER_GROUP):
            stop = min(start + ROWS_PER_GROUP, rows)
            offset = 0 if split == "train" else 10**11
            table = _chunk_table(rng, profile, offset + start, era_of_row[start:stop], split, unresolved_from)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=ROWS_PER_GROUP)
    finally:
        if writer is not None:
            writer.close()


def write_sized(profile: str | SizedProfile, out: str | Path, seed: int | None = None) -> Path:
    """Write train.parquet, validation.parquet and features.json of `profile` into `out`
    (complete files only: written in a temporary folder beside it, then moved in)."""
    profile = get_sized(profile)
    if seed is not None:
        profile = dataclasses.replace(profile, seed=int(seed))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sized-", dir=out))
    try:
        rng = np.random.default_rng(profile.seed)
        _write_split(tmp / "train.parquet", rng, profile, "train", profile.train_rows, profile.train_eras, 1, 0)
        _write_split(tmp / "validation.parquet", rng, profile, "validation", profile.validation_rows,
                     profile.validation_eras, profile.train_eras + 1, profile.unresolved_eras)
        (tmp / "features.json").write_text(json.dumps(features_json(profile), indent=1))
        for name in ("train.parquet", "validation.parquet", "features.json"):
            (tmp / name).replace(out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
