"""Which uncertainty finds failing eras: per-era detectors, the plain controls beside them, and
how each is judged against what the synthetic data planted.

A method's uncertainty "detects" an era when its per-era mean predictive std ranks that era
above the others (the AUC of `bnnlib.analysis.mann_whitney_auc`). On data whose shifts move the
features themselves, a statistic of the inputs alone may rank the eras as well: so every method
stands beside controls that need no Bayesian model (`feature_correlation`,
`covariance_distance`, `prediction_dispersion`), and what a method adds is what it does beyond
them. Coverage asks the converse question: does the interval a method draws around its
prediction hold the noise-free truth as often as it claims?
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.analysis import mann_whitney_auc
from bnnlib.errors import BnnlibError


def _per_era(x: np.ndarray, eras) -> list[tuple[str, np.ndarray]]:
    eras = np.asarray(eras).astype(str)
    if len(eras) != len(x):
        raise BnnlibError(f"{len(x)} rows but {len(eras)} era labels; pass one era per row")
    order = np.argsort(eras, kind="stable")
    names, starts = np.unique(eras[order], return_index=True)
    bounds = list(starts) + [len(order)]
    return [(name, x[order[bounds[i] : bounds[i + 1]]]) for i, name in enumerate(names)]


def _correlation(block: np.ndarray) -> np.ndarray:
    """Feature correlations of one block of rows; a feature constant in the block correlates 0."""
    centred = block - block.mean(0)
    scale = np.sqrt((centred * centred).sum(0))
    scale[scale == 0] = np.inf
    unit = centred / scale
    return unit.T @ unit


def feature_correlation(x, eras) -> pd.Series:
    """Per era, the mean absolute correlation between distinct features: an input statistic that
    sees a shift which makes features move together (no model involved)."""
    x = np.asarray(x, dtype=np.float64)
    out = {}
    for name, block in _per_era(x, eras):
        corr = np.abs(_correlation(block))
        n = corr.shape[0]
        out[name] = float((corr.sum() - np.trace(corr)) / (n * (n - 1))) if n > 1 else float("nan")
    return pd.Series(out, name="feature_correlation").rename_axis("era")


def covariance_distance(x, eras, reference) -> pd.Series:
    """Per era, how far its feature correlation matrix lies from that of the `reference` rows
    (the training data): the Frobenius norm of the difference over the reference's norm."""
    base = _correlation(np.asarray(reference, dtype=np.float64))
    norm = np.linalg.norm(base)
    out = {name: float(np.linalg.norm(_correlation(block) - base) / norm)
           for name, block in _per_era(np.asarray(x, dtype=np.float64), eras)}
    return pd.Series(out, name="covariance_distance").rename_axis("era")


def prediction_dispersion(prediction, eras) -> pd.Series:
    """Per era, the std of one network's predictions across the era's rows: the plain model's
    own signal that an era looks unusual, with no draws at all."""
    prediction = np.asarray(prediction, dtype=np.float64)
    frame = pd.DataFrame({"era": np.asarray(eras).astype(str), "p": prediction})
    return frame.groupby("era")["p"].std(ddof=0).rename("prediction_dispersion")


def detection_aucs(detectors: Mapping[str, pd.Series], truths: Mapping[str, pd.Series]) -> pd.DataFrame:
    """The AUC of every per-era detector (higher flags) against every per-era truth (True =
    the era has it): one row per detector, one column per truth. Eras are matched by name; a
    detector missing an era of the truth is an error naming it."""
    rows = {}
    for name, detector in detectors.items():
        detector = detector.copy()
        detector.index = detector.index.astype(str)
        row = {}
        for truth_name, truth in truths.items():
            truth = truth.copy()
            truth.index = truth.index.astype(str)
            missing = truth.index.difference(detector.index)
            if len(missing):
                raise BnnlibError(f"detector {name!r} has no value for {len(missing)} eras of {truth_name!r} "
                                  f"(e.g. {missing[0]!r})")
            row[truth_name] = mann_whitney_auc(detector.loc[truth.index].to_numpy(), truth.to_numpy(dtype=bool))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("detector")


def signal_on_target_scale(signal, fit_signal, fit_target) -> np.ndarray:
    """The noise-free signal in the target's units: `signal` mapped by the least-squares line
    from the signal to the target on (`fit_signal`, `fit_target`) (the training rows). The
    synthetic signal lives on its own latent scale, a prediction on the target's; the line is the
    best a model of the target could express of it, so intervals can be checked against it."""
    fit_signal = np.asarray(fit_signal, dtype=np.float64)
    fit_target = np.asarray(fit_target, dtype=np.float64)
    keep = ~np.isnan(fit_target)
    slope, intercept = np.polyfit(fit_signal[keep], fit_target[keep], 1)
    return intercept + slope * np.asarray(signal, dtype=np.float64)


def interval_coverage(mean, std, truth, level: float) -> float:
    """The share of rows whose `truth` lies in the central `level` interval of a Normal with the
    row's predictive `mean` and `std`: `level` itself for calibrated intervals, less when they
    are too narrow (overconfident), more when too wide."""
    if not 0 < level < 1:
        raise BnnlibError(f"an interval's level lies in (0, 1), got {level!r}")
    mean, std, truth = (np.asarray(v, dtype=np.float64) for v in (mean, std, truth))
    half = stats.norm.ppf(0.5 + level / 2.0) * std
    return float(np.mean(np.abs(truth - mean) <= half))


def spread(draw_summary: pd.DataFrame) -> pd.Series:
    """How the per-draw (or per-seed) scores of one model spread: the std over draws of the
    validation corr and of the Sharpe, and their ranges, from `DrawScores.draw_summary()`."""
    return pd.Series({
        "corr_std": float(draw_summary["mean"].std(ddof=1)),
        "corr_min": float(draw_summary["mean"].min()),
        "corr_max": float(draw_summary["mean"].max()),
        "sharpe_std": float(draw_summary["sharpe"].std(ddof=1)),
        "n": int(len(draw_summary)),
    })
