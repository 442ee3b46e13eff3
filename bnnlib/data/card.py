"""Small tables that describe a Dataset (the book's data card): schema, era sizes, level shares,
target correlations. Pure functions of the data; the facts check (bnnlib.data.facts) uses them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bnnlib.data.dataset import SPLITS, Dataset
from bnnlib.data.levels import LEVELS


def schema_table(dataset: Dataset) -> pd.DataFrame:
    """One row per kind of column: name pattern, count, dtype, example."""
    frame = dataset.train
    rows = [
        {"column": "id (index)", "count": 1, "dtype": str(frame.index.dtype), "example": str(frame.index[0])},
        {"column": "era", "count": 1, "dtype": str(frame["era"].dtype), "example": str(frame["era"].iloc[0])},
        {"column": "feature_*", "count": len(dataset.features),
         "dtype": ", ".join(sorted({str(frame[f].dtype) for f in dataset.features})), "example": dataset.features[0]},
    ]
    for role, name in _role_names(dataset):
        rows.append({"column": f"{name} ({role})", "count": 1, "dtype": str(frame[name].dtype), "example": name})
    return pd.DataFrame(rows).set_index("column")


def _role_names(dataset: Dataset) -> list[tuple[str, str]]:
    roles = dataset.roles
    named = [("main", roles.main)] + [(f"aux {i + 1}", a) for i, a in enumerate(roles.aux)]
    return named + ([("long", roles.long)] if roles.long is not None else [])


def era_sizes(dataset: Dataset) -> pd.DataFrame:
    """Rows per era with the split, eras in file order."""
    parts = []
    for split in SPLITS:
        sizes = dataset.frame(split).groupby("era", sort=False).size()
        parts.append(pd.DataFrame({"era": sizes.index, "rows": sizes.to_numpy(), "split": split}))
    return pd.concat(parts, ignore_index=True)


def level_shares(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Share of each of the 5 levels per era, pooled over `columns` (rows: era, columns: level).

    Values off the 5 levels (some auxiliary targets have 7 bins) count in none of the columns.
    """
    values = frame[columns].to_numpy(np.float32)
    eras = frame["era"].to_numpy()
    out = {}
    for level in LEVELS:
        hit = np.isclose(values, level, atol=1e-6)
        known = ~np.isnan(values)
        per_era = pd.DataFrame({"hit": hit.sum(axis=1), "known": known.sum(axis=1), "era": eras})
        sums = per_era.groupby("era", sort=False)[["hit", "known"]].sum()
        out[level] = sums["hit"] / sums["known"]
    return pd.DataFrame(out).rename_axis(columns="level")


def target_correlations(dataset: Dataset, split: str = "validation") -> pd.DataFrame:
    """Pearson correlations between the role targets over the rows of `split` (pairwise complete)."""
    return dataset.frame(split)[dataset.targets].corr()
