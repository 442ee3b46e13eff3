"""Named sizes and settings of the synthetic Numerai-like dataset.

`default` is the book's dataset, sized like Numerai's v3 data that the study we reproduce used:
574 training eras of about 4,200 rows (2.41M rows; era sizes ramp up over time), so an epoch
and a batch size mean what they meant in the talk (30 epochs at batch 4096 are its ~17,700
optimiser steps), and 105 validation eras of about 1,500 rows, so the per-era corr of a simple
model has Numerai's spread (its sampling std is about 1 / sqrt(rows per era)). Its
`signal_corr` is set so that a linear model fit on all those rows scores Numerai's 0.01-0.02 on
validation (about 0.015 on average over seeds; 105 eras of 1,500 rows leave a sampling std of
about 0.003 on that mean). Fit on fewer rows, the same signal scores less: the weights are
noisier (at 144k rows, about two thirds as much). `quick` is for testing the book, `tiny` for
unit tests; they share the other statistical settings and are far too small for the facts that
need many rows (bnnlib.data.facts).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bnnlib.errors import BnnlibError, unknown_name

MAIN_TARGET = "target_nomi_20"
AUX_TARGETS = ("target_janet_20", "target_george_20")
LONG_TARGET = "target_nomi_60"
TARGETS = (MAIN_TARGET, *AUX_TARGETS, LONG_TARGET)
FEATURE_GROUPS = ("intelligence", "charisma", "strength", "dexterity", "constitution", "wisdom")


@dataclass(frozen=True)
class SynthProfile:
    """Sizes, seed and the statistical knobs of one synthetic dataset.

    Signal: the main target's latent is `signal_corr` * s + (drifting factor part) + noise, where
    s is a unit-variance function of the features whose `linear_share` of variance is linear
    and the rest feature interactions. Non-stationarity: `n_regimes` sticky regimes (mean length
    `regime_length` eras) that the linear weights drift towards at `drift_rate` per era, a set
    of `factor_features` whose relation to the target swings from era to era (std
    `factor_scale`, plus a part that follows the regimes, std `factor_regime_scale`) with mean
    zero over the train eras, and sudden shifts (probability `shift_rate` per
    era) that flip a fraction `shift_flip` of the linear weights and raise the feature
    correlations. With `concept_shift_rate` > 0, other eras flip weights the same way but leave
    the features alone: concept drift that no statistic of the inputs can see (0 in the book's
    own profiles, so their data stay as they were; the `-drift` profiles set it). The other targets share part of the signal (`signal_overlap`) and of the
    noise, tuned so their binned correlations with the main target equal `target_corrs`.
    """

    name: str
    train_eras: int
    train_rows: int
    validation_eras: int
    validation_rows: int
    gap_eras: int
    unresolved_eras: int
    seed: int = 2021
    n_features: int = 60
    n_small: int = 38
    n_medium: int = 50
    signal_corr: float = 0.033
    linear_share: float = 0.45
    n_pairs: int = 3
    n_squares: int = 2
    factor_features: int = 6
    factor_scale: float = 0.02
    factor_regime_scale: float = 0.005
    n_regimes: int = 3
    regime_length: float = 40.0
    drift_rate: float = 0.1
    regime_scale: float = 0.5
    shift_rate: float = 0.08
    shift_flip: float = 0.5
    feature_loading: float = 0.5
    shift_loading: float = 0.8
    concept_shift_rate: float = 0.0
    target_corrs: tuple[float, float, float] = (0.66, 0.72, 0.50)
    signal_overlap: tuple[float, float, float] = (0.8, 0.8, 0.6)

    def __post_init__(self) -> None:
        problems = []
        for field in ("train_eras", "train_rows", "validation_eras", "validation_rows"):
            if getattr(self, field) < 1:
                problems.append(f"{field} must be at least 1")
        if self.train_rows < 20 or self.validation_rows < 20:
            problems.append("rows per era must be at least 20 (5 feature levels need room)")
        if not 0 <= self.unresolved_eras < self.validation_eras:
            problems.append("unresolved_eras must be between 0 and validation_eras - 1")
        if not 0 < self.n_small <= self.n_medium <= self.n_features:
            problems.append("need 0 < n_small <= n_medium <= n_features")
        if self.n_features < len(FEATURE_GROUPS):
            problems.append(f"n_features must be at least {len(FEATURE_GROUPS)} (one per feature group)")
        if self.factor_features > self.n_small:
            problems.append("factor_features cannot exceed n_small")
        if not 0 < self.linear_share < 1:
            problems.append("linear_share must lie strictly between 0 and 1")
        if not 0 <= self.concept_shift_rate < 1:
            problems.append("concept_shift_rate must lie in [0, 1)")
        if self.gap_eras < 0:
            problems.append("gap_eras cannot be negative")
        if problems:
            raise BnnlibError(f"bad synthetic profile {self.name!r}: " + "; ".join(problems))

    @property
    def total_eras(self) -> int:
        """Eras simulated, the unpublished gap between train and validation included."""
        return self.train_eras + self.gap_eras + self.validation_eras

    def with_seed(self, seed: int | None) -> "SynthProfile":
        """The same profile with another seed (None keeps the profile's own)."""
        return self if seed is None else dataclasses.replace(self, seed=int(seed))


PROFILES: dict[str, SynthProfile] = {
    "tiny": SynthProfile("tiny", train_eras=12, train_rows=100, validation_eras=8, validation_rows=100,
                         gap_eras=2, unresolved_eras=2),
    "quick": SynthProfile("quick", train_eras=60, train_rows=200, validation_eras=30, validation_rows=300,
                          gap_eras=10, unresolved_eras=4),
    "default": SynthProfile("default", train_eras=574, train_rows=4200, validation_eras=105,
                            validation_rows=1500, gap_eras=30, unresolved_eras=4, signal_corr=0.027),
}
for _name in ("quick", "default"):  # the same data with eras of concept drift alone planted beside the shifts
    PROFILES[f"{_name}-drift"] = dataclasses.replace(PROFILES[_name], name=f"{_name}-drift", concept_shift_rate=0.08)


def get_profile(name: str | SynthProfile) -> SynthProfile:
    """The profile called `name` (a SynthProfile passes through)."""
    if isinstance(name, SynthProfile):
        return name
    if name not in PROFILES:
        raise unknown_name("synthetic profile", name, PROFILES)
    return PROFILES[name]
