"""Per-era Numerai scores: the 2021 corr, today's numerai_corr, and their summaries.

Every score is computed era by era, because Numerai pays per era and the eras are the
independent units of the data. Two correlations exist:

- the 2021 corr (example-scripts `validation_metrics`, the one the talk reports): Pearson
  between the prediction's within-era rank ((rank(method="first") - 0.5) / n) and the target;
- numerai_corr (today's official score, as numerai-tools computes it; the tests check this
  module against numerai-tools, which is a test dependency only): ranks with ties averaged,
  gaussianised and raised to the power 1.5 keeping sign, against the era-centred target
  raised to the power 1.5.

Rows whose target is NaN are dropped for the score that uses that target (the 60-day
targets are NaN in the last eras). Inputs are aligned by position: pandas objects with
different indexes are refused rather than silently matched.

The same scores for many posterior draws at once (torch, vectorised) live in
`bnnlib.scoring.draws` and are re-exported here.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterator

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.errors import BnnlibError
from bnnlib.scoring.draws import (
    draws_era_corr,
    draws_era_numerai_corr,
    draws_era_scores,
)

__all__ = [
    "era_corr",
    "era_numerai_corr",
    "score_summary",
    "score_summaries",
    "draws_era_corr",
    "draws_era_numerai_corr",
    "draws_era_scores",
]


# ----------------------------------------------------------------------------- input checks


def _vector(name: str, values, index_from: list) -> np.ndarray:
    """`values` as a 1-D array; remembers a pandas index so that mismatches can be refused."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise BnnlibError(
                f"{name} must be one column, got a DataFrame with {values.shape[1]} columns; "
                f"pass a single column, e.g. {name}[column_name]"
            )
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series):
        index_from.append((name, values.index))
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise BnnlibError(f"{name} must be 1-dimensional, got shape {array.shape}; pass one value per row")
    return array


def _float_vector(name: str, values, index_from: list, allow_nan: bool) -> np.ndarray:
    array = _vector(name, values, index_from)
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise BnnlibError(f"{name} must be numbers: {error}; convert the column to float") from None
    if not allow_nan and np.isnan(array).any():
        first = int(np.flatnonzero(np.isnan(array))[0])
        raise BnnlibError(
            f"{name} contain {int(np.isnan(array).sum())} NaN value(s) (first at row {first}); "
            f"a model must predict every row: fix the model or fill them"
        )
    return array


def _check_rows(arrays: dict[str, np.ndarray], index_from: list) -> None:
    """One row count for all inputs, and one index for all pandas inputs."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise BnnlibError(f"inputs have different numbers of rows ({listed}); pass one value per row for each")
    for (name, index), (other, other_index) in zip(index_from, index_from[1:]):
        if not index.equals(other_index):
            raise BnnlibError(
                f"{name} and {other} have different indexes; align them first, "
                f"e.g. {other} = {other}.loc[{name}.index]"
            )


def _era_rows(eras: np.ndarray) -> Iterator[tuple[Hashable, np.ndarray]]:
    """(era, row positions) for each era, eras sorted (zero-padded strings sort in time order)."""
    if pd.isna(eras).any():
        raise BnnlibError("eras contain missing values; every row needs its era (check the era column)")
    groups = pd.Series(np.arange(len(eras))).groupby(eras, sort=True).indices
    for era in sorted(groups):
        yield era, groups[era]


def _scorable(era: Hashable, rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rows of an era whose target is known; refuses eras a correlation cannot use."""
    kept = rows[~np.isnan(target[rows])]
    if len(kept) < 2:
        raise BnnlibError(
            f"era {era!r} has {len(kept)} row(s) with a target ({len(rows)} in all); a correlation "
            f"needs at least 2: drop that era, or check that the era column is the right one"
        )
    if np.ptp(target[kept]) == 0:
        raise BnnlibError(
            f"the target is constant in era {era!r} ({len(kept)} rows), so its correlation is "
            f"undefined; drop that era or score against another target"
        )
    return kept


# ----------------------------------------------------------------------------- transforms


def _rank_first(x: np.ndarray) -> np.ndarray:
    """(rank - 0.5) / n with ties broken by order of appearance (pandas method="first")."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    return (ranks - 0.5) / len(x)


def _signed_pow15(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** 1.5


def _gauss_pow15(x: np.ndarray) -> np.ndarray:
    """numerai_corr's prediction transform: tie-averaged rank, gaussianise, power 1.5."""
    uniform = (stats.rankdata(x, method="average") - 0.5) / len(x)
    return _signed_pow15(stats.norm.ppf(uniform))


def _target_pow15(t: np.ndarray) -> np.ndarray:
    """numerai_corr's target transform: centre on the era mean, then power 1.5."""
    return _signed_pow15(t - t.mean())


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when `a` is constant (a constant prediction ranks nothing)."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


# ----------------------------------------------------------------------------- scores


def _per_era(predictions, targets, eras, score, name: str) -> pd.Series:
    index_from: list = []
    p = _float_vector("predictions", predictions, index_from, allow_nan=False)
    t = _float_vector("targets", targets, index_from, allow_nan=True)
    e = _vector("eras", eras, index_from)
    _check_rows({"predictions": p, "targets": t, "eras": e}, index_from)
    values = {}
    for era, rows in _era_rows(e):
        kept = _scorable(era, rows, t)
        values[era] = score(p[kept], t[kept])
    return pd.Series(values, name=name, dtype=np.float64).rename_axis("era")


def era_corr(predictions, targets, eras) -> pd.Series:
    """The 2021 corr of each era (index: era, sorted).

    Pearson between (rank(method="first") - 0.5) / n of the predictions and the target, as in
    the 2021 example scripts; ties are broken by row order, so even a constant prediction has
    a (meaningless) corr, exactly as there.
    """
    return _per_era(predictions, targets, eras, lambda p, t: _pearson(_rank_first(p), t), "corr")


def era_numerai_corr(predictions, targets, eras) -> pd.Series:
    """Today's official numerai_corr of each era (index: era, sorted).

    Equal to numerai_tools.scoring.numerai_corr applied era by era, except that a prediction
    constant within an era scores 0 there (numerai-tools gives NaN): its gaussianised ranks
    are all 0, so it carries no ranking and earns nothing.
    """
    return _per_era(
        predictions,
        targets,
        eras,
        lambda p, t: _pearson(_gauss_pow15(p), _target_pow15(t)),
        "numerai_corr",
    )


def score_summaries(per_era) -> pd.DataFrame:
    """The summary of per-era scores, one row per series: `per_era` is [series, eras] (e.g.
    one row per posterior draw), eras in time order. The one definition every table uses.

    Columns: mean, std (ddof=0), sharpe (NaN where std is 0, e.g. a single era), max_drawdown
    (the worst fall of the compounded (1 + score) curve below its running maximum, as in the
    2021 example scripts: <= 0, and a loss in the first era alone counts as no drawdown),
    n_eras, n_negative (burn eras: a negative score). Computed in the values' float dtype.
    """
    values = np.asarray(per_era)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise BnnlibError("score_summaries needs a 2-D array [series, eras] with at least one era")
    if np.isnan(values).any():
        raise BnnlibError("per-era scores contain NaN; drop those eras before summarising")
    mean = values.mean(axis=1)
    std = values.std(axis=1)
    curve = np.cumprod(1.0 + values, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 0, mean / std, np.nan)
    return pd.DataFrame({
        "mean": mean,
        "std": std,
        "sharpe": sharpe,
        "max_drawdown": np.min(curve / np.maximum.accumulate(curve, axis=1) - 1.0, axis=1),
        "n_eras": values.shape[1],
        "n_negative": (values < 0).sum(axis=1),
    })


def score_summary(per_era: pd.Series) -> dict:
    """`score_summaries` of one series of per-era scores (in float64), as a dict of floats."""
    values = np.asarray(per_era, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise BnnlibError("score_summary needs a non-empty 1-D series of per-era scores (from era_corr)")
    row = score_summaries(values[None, :]).iloc[0]
    return {"mean": float(row["mean"]), "std": float(row["std"]), "sharpe": float(row["sharpe"]),
            "max_drawdown": float(row["max_drawdown"]), "n_eras": int(row["n_eras"]),
            "n_negative": int(row["n_negative"])}
