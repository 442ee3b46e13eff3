"""Numerai's discrete levels: ranking within eras into bins, and what binning does to correlation.

Numerai's features sit on 5 equally filled levels and its targets on 5 levels filled
5/20/50/20/5 % in every era. The generator makes both by ranking a continuous latent within each
era; `binned_corr` says how much correlation survives that binning, so the generator can pick the
latent correlation that gives a wanted correlation between binned targets.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, stats

LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
FEATURE_SHARES = (0.2, 0.2, 0.2, 0.2, 0.2)
TARGET_SHARES = (0.05, 0.2, 0.5, 0.2, 0.05)


def era_starts(sizes: np.ndarray) -> np.ndarray:
    """First row of each era, for rows stored era by era."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _position_levels(sizes: np.ndarray, width: int, shares) -> np.ndarray:
    """[eras, width]: the level of the p-th smallest row of each era (p >= size: unused)."""
    position = np.arange(width)[None, :]
    quantile = (position + 0.5) / sizes[:, None]
    return np.searchsorted(np.cumsum(shares)[:-1], quantile, side="right").astype(np.int8)


def bin_within_eras(values: np.ndarray, sizes: np.ndarray, shares) -> np.ndarray:
    """Level index (0..len(shares)-1) of each row, by its rank within its era; rows stored era by era.

    `values` is [n] or [n, columns]. The rows are laid out as [columns, eras, longest era] (the
    gaps filled with +inf, which sorts last), so one argsort along the last axis ranks every era
    of every column at once, with no Python loop over eras.
    """
    flat = values.ndim == 1
    columns = values[:, None] if flat else values
    era = np.repeat(np.arange(len(sizes)), sizes)
    position = np.arange(len(era)) - np.repeat(era_starts(sizes), sizes)
    width = int(sizes.max())
    padded = np.full((columns.shape[1], len(sizes), width), np.inf, dtype=columns.dtype)
    padded[:, era, position] = columns.T
    order = np.argsort(padded, axis=2)
    levels = np.empty(order.shape, dtype=np.int8)
    np.put_along_axis(levels, order, _position_levels(sizes, width, shares)[None], axis=2)
    out = levels[:, era, position]
    return out[0] if flat else out.T


@functools.lru_cache(maxsize=8)
def _hermite_moments(shares: tuple, order: int) -> tuple[np.ndarray, float]:
    """E[Q(X) He_k(X)] for k = 0..order and Var Q(X), X standard normal, Q the binning to LEVELS."""
    cuts = stats.norm.ppf(np.cumsum(shares)[:-1])
    jumps = np.diff(LEVELS)
    moments = np.zeros(order + 1)
    # E[1{X > c} He_k(X)] = phi(c) He_{k-1}(c) for k >= 1.
    he_km2, he_km1 = np.zeros_like(cuts), np.ones_like(cuts)  # He_{k-2}, He_{k-1} at k = 1
    for k in range(1, order + 1):
        moments[k] = float(np.sum(jumps * stats.norm.pdf(cuts) * he_km1))
        he_km2, he_km1 = he_km1, cuts * he_km1 - (k - 1) * he_km2
    probs = np.asarray(shares)
    mean = float(np.sum(probs * LEVELS))
    variance = float(np.sum(probs * (LEVELS - mean) ** 2))
    return moments, variance


def binned_corr(rho: float, shares=TARGET_SHARES, order: int = 80) -> float:
    """Pearson correlation of two binned standard normals whose latent correlation is `rho`.

    Mehler's formula: corr(Q(X), Q(Y)) = sum_k E[Q He_k]^2 rho^k / k! / Var Q.
    """
    moments, variance = _hermite_moments(tuple(shares), order)
    total = 0.0
    for k in range(1, order + 1):
        total += moments[k] ** 2 * rho**k / math.factorial(k)
    return total / variance


def latent_corr_for(binned: float, shares=TARGET_SHARES) -> float:
    """The latent correlation whose binned version is `binned` (inverse of `binned_corr`)."""
    return float(optimize.brentq(lambda r: binned_corr(r, shares) - binned, -0.999, 0.999, xtol=1e-10))
