"""The hidden structure behind a synthetic dataset: which features matter, how, and how it drifts.

`make_world` draws the fixed part (feature names and sets, the base linear weights, the feature
interactions, the regimes) from the seed alone, so every profile with the same seed shares it;
`make_era_path` draws the era-by-era part (the regime sequence, the drift state, the sudden
shifts, the swinging factor relations). Both are plain arrays that `synth` turns into rows and
into the ground-truth tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnlib.data.levels import FEATURE_SHARES, bin_within_eras
from bnnlib.data.profiles import FEATURE_GROUPS, SynthProfile

REFERENCE_ROWS = 20_000


@dataclass(frozen=True)
class Structure:
    """One unit-variance signal: linear weights plus interaction terms (pairs of feature indices;
    a pair (i, i) is the centred square x_i^2 - 1)."""

    weights: np.ndarray  # [F]
    terms: np.ndarray  # [M, 2] feature indices
    coefs: np.ndarray  # [M]

    def linear(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights.astype(x.dtype)  # in x's precision: a mixed product is slow

    def interaction(self, x: np.ndarray) -> np.ndarray:
        return interaction_basis(x, self.terms) @ self.coefs.astype(x.dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.linear(x) + self.interaction(x)


@dataclass(frozen=True)
class World:
    """The seed's fixed structure (see the module docstring)."""

    features: list[str]
    groups: np.ndarray  # [F] group index of each feature (in its name)
    latent_groups: np.ndarray  # [F] the group whose factor it shares (-1: none, the factor features)
    small: list[int]  # feature indices of the sets, in column order
    medium: list[int]
    main: Structure  # the main target's stationary signal (base weights)
    aux: list[Structure]  # each other target's own signal, mixed with main's
    regimes: np.ndarray  # [K, F] perturbation of the linear weights in each regime
    factor_index: np.ndarray  # [R] features whose relation to the targets swings
    factor_regimes: np.ndarray  # [K, R] their relation in each regime

    @property
    def steady(self) -> list[int]:
        """Small-set features with a lasting relation to the targets."""
        return [j for j in self.small if j not in set(self.factor_index.tolist())]


@dataclass(frozen=True)
class EraPath:
    """Era-by-era state over all simulated eras (train, gap, validation)."""

    regime: np.ndarray  # [T] int
    mix: np.ndarray  # [T, K] drift state: the regimes' weights, moving slowly to the current one
    shifted: np.ndarray  # [T] bool
    flipped: np.ndarray  # [T, F] bool: linear weights whose sign a shift (or a concept shift) flipped
    loading: np.ndarray  # [T] within-group feature loading (raised in shifted eras)
    linear: np.ndarray  # [T, F] the era's linear weights of the main signal
    factor: np.ndarray  # [T, F] the era's factor relation (latent scale; zero off factor features)
    concept_shifted: np.ndarray | None = None  # [T] bool: weights flipped, features left alone


def standardize(levels: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Feature levels 0..4 to mean 0, variance 1 (uniform levels have variance 2)."""
    out = levels.astype(dtype)
    out -= 2.0
    out /= out.dtype.type(np.sqrt(2.0))
    return out


def interaction_basis(x: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """Columns x_i * x_j, minus 1 when i == j so every column has mean zero."""
    return x[:, terms[:, 0]] * x[:, terms[:, 1]] - (terms[:, 0] == terms[:, 1])


def feature_levels(rng: np.random.Generator, sizes: np.ndarray, loading: np.ndarray,
                   groups: np.ndarray) -> np.ndarray:
    """Feature levels 0..4 (int8), 20% each per era; features of a group share a factor.

    `loading` is per row: the latent of feature j is loading * group factor + noise, so a higher
    loading makes the features of a group move together. Group -1 shares no factor.
    """
    n = int(sizes.sum())
    levels = np.empty((n, len(groups)), dtype=np.int8)
    for g in np.unique(groups):
        lam = loading[:, None].astype(np.float32) * (g >= 0)
        rest = np.sqrt(1 - lam**2)
        columns = np.flatnonzero(groups == g)
        factor = rng.standard_normal((n, 1), dtype=np.float32)
        latent = lam * factor + rest * rng.standard_normal((n, len(columns)), dtype=np.float32)
        levels[:, columns] = bin_within_eras(latent, sizes, FEATURE_SHARES)
    return levels


def _feature_names(n_features: int) -> tuple[list[str], np.ndarray]:
    groups = np.arange(n_features) * len(FEATURE_GROUPS) // n_features
    counters = {g: 0 for g in range(len(FEATURE_GROUPS))}
    names = []
    for g in groups:
        counters[g] += 1
        names.append(f"feature_{FEATURE_GROUPS[g]}{counters[g]}")
    return names, groups


def _terms(rng: np.random.Generator, candidates: np.ndarray, groups: np.ndarray, n_pairs: int,
           n_squares: int) -> np.ndarray:
    """Interaction terms among `candidates`: pairs from different groups (independent features,
    so the product has mean 0 and no linear part) and squares."""
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n_pairs:
        i, j = sorted(rng.choice(candidates, 2, replace=False).tolist())
        if groups[i] != groups[j] and (i, j) not in pairs:
            pairs.append((i, j))
    squares = [(i, i) for i in rng.choice(candidates, n_squares, replace=False).tolist()]
    return np.array(pairs + squares, dtype=np.int64).reshape(-1, 2)


def _normalized(weights: np.ndarray, terms: np.ndarray, coefs: np.ndarray, linear_share: float,
                x_ref: np.ndarray) -> Structure:
    """Scale the two parts so the linear part has variance `linear_share` and the whole 1."""
    lin = x_ref @ weights
    inter = interaction_basis(x_ref, terms) @ coefs
    weights = weights * np.sqrt(linear_share / lin.var())
    coefs = coefs * np.sqrt((1 - linear_share) / inter.var()) if len(coefs) else coefs
    return Structure(weights, terms, coefs)


def make_world(profile: SynthProfile, rng: np.random.Generator) -> World:
    """Draw the fixed structure; normalised on a reference sample drawn from the same rng."""
    n = profile.n_features
    names, groups = _feature_names(n)
    order = rng.permutation(n)
    small = sorted(order[: profile.n_small].tolist())
    medium = sorted(order[: profile.n_medium].tolist())
    medium_only = sorted(set(medium) - set(small))
    # "Risky" features: no lasting relation to the targets, only one that swings between eras
    # (so a model fit on many eras leaves them alone, while each era is moved by them). They
    # share no group factor, so the swings do not leak into the other features.
    factor_index = np.sort(rng.choice(small, profile.factor_features, replace=False))
    steady = np.array(sorted(set(small) - set(factor_index.tolist())))
    latent_groups = groups.copy()
    latent_groups[factor_index] = -1
    x_ref = standardize(feature_levels(rng, np.array([REFERENCE_ROWS]),
                                       np.full(REFERENCE_ROWS, profile.feature_loading), latent_groups))

    def structure(share: float) -> Structure:
        weights = np.zeros(n)
        weights[steady] = rng.standard_normal(len(steady))
        weights[medium_only] = 0.3 * rng.standard_normal(len(medium_only))
        terms = _terms(rng, steady, groups, profile.n_pairs, profile.n_squares)
        coefs = rng.choice([-1.0, 1.0], len(terms)) * rng.uniform(0.5, 1.5, len(terms))
        return _normalized(weights, terms, coefs, share, x_ref)

    main = structure(profile.linear_share)
    aux = [structure(profile.linear_share) for _ in profile.target_corrs]
    scale = np.sqrt(np.mean(main.weights[steady] ** 2))
    drifting = np.concatenate([steady, medium_only]).astype(np.int64)
    regimes = np.zeros((profile.n_regimes, n))
    regimes[:, drifting] = profile.regime_scale * scale * rng.standard_normal((profile.n_regimes, len(drifting)))
    regimes -= regimes.mean(axis=0)  # the regimes balance out: the long-run weights are the base
    factor_regimes = profile.factor_regime_scale * rng.standard_normal((profile.n_regimes, profile.factor_features))
    return World(names, groups, latent_groups, small, medium, main, aux, regimes, factor_index, factor_regimes)


def make_era_path(profile: SynthProfile, world: World, rng: np.random.Generator) -> EraPath:
    """Draw the regime sequence, the slow drift, the sudden shifts and the factor swings."""
    total, k = profile.total_eras, profile.n_regimes
    n_features = len(world.features)
    regime = np.empty(total, dtype=np.int64)
    regime[0] = rng.integers(k)
    stay = 1.0 - 1.0 / profile.regime_length
    for e in range(1, total):
        moves = k > 1 and rng.random() > stay
        regime[e] = (regime[e - 1] + rng.integers(1, k)) % k if moves else regime[e - 1]
    mix = np.empty((total, k))
    mix[0] = np.eye(k)[regime[0]]
    for e in range(1, total):
        mix[e] = (1 - profile.drift_rate) * mix[e - 1] + profile.drift_rate * np.eye(k)[regime[e]]

    shifted = rng.random(total) < profile.shift_rate
    flipped = np.zeros((total, n_features), dtype=bool)
    n_flip = max(1, round(profile.shift_flip * len(world.steady)))
    for e in np.flatnonzero(shifted):
        flipped[e, rng.choice(world.steady, n_flip, replace=False)] = True
    concept = np.zeros(total, dtype=bool)
    if profile.concept_shift_rate > 0:  # a stream of its own: the rest of the data stays as without it
        own = np.random.default_rng([profile.seed, 1])
        concept = (own.random(total) < profile.concept_shift_rate) & ~shifted
        for e in np.flatnonzero(concept):
            flipped[e, own.choice(world.steady, n_flip, replace=False)] = True
    linear = world.main.weights + mix @ world.regimes
    linear = np.where(flipped, -linear, linear)
    loading = np.where(shifted, profile.shift_loading, profile.feature_loading)

    swings = mix @ world.factor_regimes + profile.factor_scale * rng.standard_normal((total, len(world.factor_index)))
    swings -= swings[: profile.train_eras].mean(axis=0)  # no factor relation on average over train
    jumps = 2 * profile.factor_scale * rng.standard_normal(swings.shape)
    swings = np.where(shifted[:, None], swings + jumps, swings)
    factor = np.zeros((total, n_features))
    factor[:, world.factor_index] = swings
    return EraPath(regime, mix, shifted, flipped, loading, linear, factor, concept)
