"""General statistics the studies use: the AUC of a detector and its p-value, Normal posteriors
and densities, divergences between Normal fits. Pure functions of arrays, no models."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.errors import BnnlibError, unknown_name

LN2 = math.log(2.0)


def _binary(labels: Any) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise BnnlibError(f"labels must be 1-dimensional, got shape {labels.shape}; pass one flag per era")
    if labels.dtype != bool:
        values = set(np.unique(labels).tolist())
        if not values <= {0, 1}:
            raise BnnlibError(f"labels must be booleans or 0/1, got values {sorted(values)[:5]}")
        labels = labels.astype(bool)
    return labels


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = _binary(labels)
    if scores.shape != labels.shape:
        raise BnnlibError(f"scores ({scores.shape}) and labels ({labels.shape}) must have one value per era each")
    if np.isnan(scores).any():
        raise BnnlibError("scores contain NaN; drop those eras first")
    return scores, labels


def mann_whitney_auc(scores: Any, labels: Any) -> float:
    """The area under the ROC curve of `scores` as a detector of `labels` (True = positive),
    by the Mann-Whitney statistic: the probability that a random positive scores higher than a
    random negative, ties counting one half. Higher scores are taken to flag positives, so an
    AUC above 0.5 means positives score higher. NaN when either class is empty."""
    scores, labels = _scores_labels(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)  # ties get their average rank
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auc_p_value(scores: Any, labels: Any) -> float:
    """One-sided p-value of the Mann-Whitney test that positives score higher than negatives
    (how often chance alone gives an AUC at least this high). NaN when a class is empty."""
    scores, labels = _scores_labels(scores, labels)
    if labels.all() or not labels.any():
        return float("nan")
    return float(stats.mannwhitneyu(scores[labels], scores[~labels], alternative="greater").pvalue)


def auc_p_value_from_counts(auc: float, n_pos: int, n_neg: int) -> float:
    """One-sided p-value of an AUC known only with its class sizes (e.g. the talk's), by the
    normal approximation to the Mann-Whitney statistic without ties: how likely chance alone
    gives an AUC at least this high."""
    if n_pos < 1 or n_neg < 1:
        raise BnnlibError(f"need at least one era in each class, got {n_pos} and {n_neg}")
    if not 0.0 <= auc <= 1.0:
        raise BnnlibError(f"an AUC lies in [0, 1], got {auc!r}")
    sd = math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return float(stats.norm.sf((auc - 0.5) / sd))


def roc_curve(scores: Any, labels: Any) -> pd.DataFrame:
    """The ROC curve of the rule "flag when score >= threshold", from flagging nothing (0, 0)
    to flagging everything (1, 1): columns threshold, fpr, tpr. Tied scores move together, so
    the trapezoidal area under it equals `mann_whitney_auc`."""
    scores, labels = _scores_labels(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise BnnlibError(
            f"a ROC curve needs both classes, got {n_pos} positive and {n_neg} negative eras; "
            "use more eras or a model whose scores vary"
        )
    thresholds = np.unique(scores)[::-1]
    tp = np.array([(labels & (scores >= t)).sum() for t in thresholds])
    fp = np.array([((~labels) & (scores >= t)).sum() for t in thresholds])
    return pd.DataFrame({
        "threshold": np.concatenate([[np.inf], thresholds]),
        "fpr": np.concatenate([[0.0], fp / n_neg]),
        "tpr": np.concatenate([[0.0], tp / n_pos]),
    })


def normal_posterior(mean: float, std: float) -> dict[str, float]:
    """A normal posterior N(mean, std^2) summarised: mean, std, P(> 0), central 95% interval."""
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 0:
        raise BnnlibError(f"a normal posterior needs a finite mean and a positive std, got {mean!r}, {std!r}")
    half = stats.norm.ppf(0.975) * std
    return {
        "mean": float(mean),
        "std": float(std),
        "p_positive": float(stats.norm.sf(0.0, loc=mean, scale=std)),
        "ci95_low": float(mean - half),
        "ci95_high": float(mean + half),
    }


def normal_density(mean: float, std: float, points: int = 401, width: float = 4.0) -> pd.DataFrame:
    """The density of N(mean, std^2) on mean +- width std (for a plot): columns x, density."""
    normal_posterior(mean, std)  # validates
    x = np.linspace(mean - width * std, mean + width * std, points)
    return pd.DataFrame({"x": x, "density": stats.norm.pdf(x, loc=mean, scale=std)})


def normal_fit(values: Any) -> tuple[float, float]:
    """The maximum-likelihood normal fit (mean, std with ddof=0) of a sample."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        raise BnnlibError(f"a normal fit needs at least 2 finite values, got {len(values)}; use more draws")
    std = float(values.std(ddof=0))
    if std <= 0:
        raise BnnlibError("the values are all equal, so their normal fit has no spread; use a model with several draws")
    return float(values.mean()), std


def _check_normal(mean: float, std: float) -> None:
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 0:
        raise BnnlibError(f"a normal distribution needs a finite mean and a positive std, got {mean!r}, {std!r}")


def _log_base(base: float) -> float:
    if not base > 1:
        raise BnnlibError(f"the log base must be greater than 1 (e.g. math.e for nats, 2 for bits), got {base!r}")
    return math.log(base)


def kl_normal(m1: float, s1: float, m2: float, s2: float, base: float = math.e) -> float:
    """KL(N(m1, s1^2) || N(m2, s2^2)) in closed form (nats by default; unbounded)."""
    _check_normal(m1, s1)
    _check_normal(m2, s2)
    nats = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    return max(nats, 0.0) / _log_base(base)


def jeffreys_normal(m1: float, s1: float, m2: float, s2: float, base: float = math.e) -> float:
    """The symmetrised KL divergence KL(p||q) + KL(q||p) between two normals (unbounded)."""
    return kl_normal(m1, s1, m2, s2, base) + kl_normal(m2, s2, m1, s1, base)


def js_normal(m1: float, s1: float, m2: float, s2: float, base: float = math.e, points: int = 4001) -> float:
    """The Jensen-Shannon divergence between N(m1, s1^2) and N(m2, s2^2), by numerical
    integration (it has no closed form): JS = (KL(p||m) + KL(q||m)) / 2 with m = (p + q) / 2.

    Each KL is an expectation under its own normal, integrated by Simpson's rule on a grid of
    `points` over its mean +- 12 std, so a narrow distribution far from the other is resolved.
    In nats (base e) JS lies in [0, ln 2]; in bits (base 2) in [0, 1].
    """
    _check_normal(m1, s1)
    _check_normal(m2, s2)
    from scipy.integrate import simpson

    def half(m: float, s: float) -> float:
        x = np.linspace(m - 12 * s, m + 12 * s, points)
        log_p = stats.norm.logpdf(x, m1, s1)
        log_q = stats.norm.logpdf(x, m2, s2)
        log_own = log_p if (m, s) == (m1, s1) else log_q
        log_mix = np.logaddexp(log_p, log_q) - LN2
        return float(simpson(np.exp(log_own) * (log_own - log_mix), x=x))

    nats = 0.5 * (half(m1, s1) + half(m2, s2))
    return float(min(max(nats, 0.0), LN2)) / _log_base(base)


DIVERGENCES: dict[str, Callable[..., float]] = {
    "js": js_normal,
    "kl": kl_normal,
    "jeffreys": jeffreys_normal,
}
"""Divergences between two normal fits: JS (bounded by ln 2 in nats), KL(row || column), and
the symmetrised KL (Jeffreys)."""


def divergence_matrix(fits: Mapping[Any, tuple[float, float]], divergence: str = "js",
                      base: float = math.e) -> pd.DataFrame:
    """The matrix of `divergence` between every pair of normal fits {label: (mean, std)}
    (row = first argument)."""
    if divergence not in DIVERGENCES:
        raise unknown_name("divergence", divergence, DIVERGENCES)
    if not fits:
        raise BnnlibError("divergence_matrix needs at least one normal fit {label: (mean, std)}")
    function = DIVERGENCES[divergence]
    labels = list(fits)
    values = [[0.0 if a == b else function(*fits[a], *fits[b], base=base) for b in labels] for a in labels]
    return pd.DataFrame(values, index=pd.Index(labels), columns=pd.Index(labels))


def off_diagonal(matrix: pd.DataFrame) -> np.ndarray:
    """The values above the diagonal of a square matrix (each pair once)."""
    values = matrix.to_numpy(dtype=np.float64)
    return values[np.triu_indices_from(values, k=1)]
