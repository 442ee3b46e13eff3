"""Per-era Numerai scores: the 2021 corr, today's numerai_corr, and their summaries.

Every score is computed era by era, because Numerai pays per era and the eras are the
independent units of the data. Two correlations exist:

- the 2021 corr (example-scripts `validation_metrics`, the one the talk reports): Pearson
  between the prediction's within-era rank ((rank(method="first") - 0.5) / n) and the target;
- numerai_corr (numerai-tools, today's official score): ranks with ties averaged,
  gaussianised and raised to the power 1.5 keeping sign, against the era-centred target
  raised to the power 1.5.

Rows whose target is NaN are dropped for the score that uses that target (the 60-day
targets are NaN in the last eras). Inputs are aligned by position: pandas objects with
different indexes are refused rather than silently matched.

The same scores for many posterior draws at once (torch, vectorised) live in
`bnnlib.metrics_draws` and are re-exported here.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterator

import numpy as np
import pandas as pd
import scipy.linalg
from scipy import stats

from bnnlib.errors import BnnlibError
from bnnlib.metrics_draws import (
    draws_era_corr,
    draws_era_numerai_corr,
    draws_era_scores,
)

__all__ = [
    "era_corr",
    "era_numerai_corr",
    "score_summary",
    "score_summaries",
    "feature_exposure",
    "neutralize",
    "feature_neutral_corr",
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


def _matrix(name: str, values, index_from: list) -> np.ndarray:
    """`values` (one column per feature) as a 2-D float array without NaN."""
    if isinstance(values, pd.DataFrame):
        index_from.append((name, values.index))
        values = values.to_numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise BnnlibError(f"{name} must be numbers: {error}; pass only the feature columns") from None
    if array.ndim != 2:
        raise BnnlibError(f"{name} must be 2-dimensional (rows x features), got shape {array.shape}")
    if array.shape[1] == 0:
        raise BnnlibError(f"{name} has no columns; pass at least one feature column")
    if np.isnan(array).any():
        raise BnnlibError(f"{name} contain NaN; fill them (Numerai's convention is the middle value) first")
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


def feature_exposure(predictions, features, eras) -> float:
    """Mean over eras of the largest |Pearson corr(feature, prediction)| within the era.

    As in the 2021 example scripts (raw predictions, not ranked). Features constant within
    an era are skipped there (their corr is undefined); a prediction constant within an era
    has exposure 0 there.
    """
    index_from: list = []
    p = _float_vector("predictions", predictions, index_from, allow_nan=False)
    x = _matrix("features", features, index_from)
    e = _vector("eras", eras, index_from)
    _check_rows({"predictions": p, "features": x, "eras": e}, index_from)
    per_era = []
    for era, rows in _era_rows(e):
        if len(rows) < 2:
            raise BnnlibError(
                f"era {era!r} has {len(rows)} row; an exposure needs at least 2: drop that era, "
                f"or check that the era column is the right one"
            )
        pc = p[rows] - p[rows].mean()
        xc = x[rows] - x[rows].mean(axis=0)
        scale = np.sqrt((xc * xc).sum(axis=0) * float(pc @ pc))
        usable = scale > 0
        corr = np.abs(pc @ xc[:, usable]) / scale[usable]
        per_era.append(float(corr.max()) if corr.size else 0.0)
    return float(np.mean(per_era))


def _neutral_era(p: np.ndarray, x: np.ndarray, proportion: float, era: Hashable) -> np.ndarray:
    """One era of the 2021 neutralisation: rank, gaussianise, remove the least-squares fit."""
    scores = stats.norm.ppf(_rank_first(p))
    fit = x @ scipy.linalg.lstsq(x, scores, lapack_driver="gelsy", check_finite=False)[0]
    neutral = scores - proportion * fit
    std = neutral.std()
    if std <= 1e-9 * scores.std():
        raise BnnlibError(
            f"neutralising era {era!r} ({len(p)} rows) against {x.shape[1]} features removes the "
            f"whole prediction (too few rows for that many features); neutralise against fewer "
            f"features, lower the proportion, or drop that era"
        )
    return neutral / std


def _proportion(proportion: float) -> float:
    if not isinstance(proportion, (int, float)) or not 0.0 <= float(proportion) <= 1.0:
        raise BnnlibError(f"proportion must be a number from 0 to 1, got {proportion!r}")
    return float(proportion)


def neutralize(predictions, features, eras, proportion: float = 1.0) -> pd.Series:
    """Predictions neutralised against the features within each era (2021 convention).

    Per era: the predictions are ranked (ties by row order) and gaussianised; `proportion`
    of their least-squares fit on the features (no intercept, as in the 2021 scripts; the
    gaussianised ranks have mean 0 anyway) is subtracted; the result is scaled to std 1.
    Returns one value per row, in the input's row order and index.
    """
    share = _proportion(proportion)
    index_from: list = []
    p = _float_vector("predictions", predictions, index_from, allow_nan=False)
    x = _matrix("features", features, index_from)
    e = _vector("eras", eras, index_from)
    _check_rows({"predictions": p, "features": x, "eras": e}, index_from)
    neutral = np.empty(len(p), dtype=np.float64)
    for era, rows in _era_rows(e):
        if len(rows) < 2:
            raise BnnlibError(f"era {era!r} has 1 row; neutralising needs at least 2: drop that era")
        neutral[rows] = _neutral_era(p[rows], x[rows], share, era)
    index = index_from[0][1] if index_from else None
    return pd.Series(neutral, index=index, name="neutral")


def feature_neutral_corr(predictions, features, targets, eras) -> pd.Series:
    """The 2021 corr of each era after neutralising the predictions against all features.

    Rows with a NaN target are dropped first; then, per era, the predictions are neutralised
    as in `neutralize` (ranked, gaussianised, least-squares fit on the features removed) and
    scored with the 2021 corr, as the example scripts' feature-neutral mean does.
    """
    index_from: list = []
    p = _float_vector("predictions", predictions, index_from, allow_nan=False)
    x = _matrix("features", features, index_from)
    t = _float_vector("targets", targets, index_from, allow_nan=True)
    e = _vector("eras", eras, index_from)
    _check_rows({"predictions": p, "features": x, "targets": t, "eras": e}, index_from)
    values = {}
    for era, rows in _era_rows(e):
        kept = _scorable(era, rows, t)
        neutral = _neutral_era(p[kept], x[kept], 1.0, era)
        values[era] = _pearson(_rank_first(neutral), t[kept])
    return pd.Series(values, name="fn_corr", dtype=np.float64).rename_axis("era")
