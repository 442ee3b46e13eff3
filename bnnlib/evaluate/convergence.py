"""Did a fit converge? A verdict read from its trace, by a stated criterion.

A mean-field posterior is only a posterior once SVI has reached the ELBO's maximum; a fit
stopped on the way reports its initialisation (an init_scale of 0.01 stays ~0.01), and under
the improper flat prior the maximum may not exist at all: the guide's entropy pushes the
scales of weights the likelihood does not pin down up without bound. So every fit is judged
on the last `WINDOW` share of its optimiser steps (at least `MIN_POINTS` trace records),
comparing the mean of the window's first `SMOOTH` records with that of its last `SMOOTH`
(each record is itself a mean over the steps since the previous one: Adam's last iterate
jitters, by several percent for the smallest stds):

- **diverging**: the ELBO is not finite, or it fell by more than `COLLAPSE` nats per row from
  its best value in the window, or some layer's 90th-percentile guide std grew by more than
  `RUNAWAY` (as a ratio) across the window to above `SCALE_CAP` (4x the largest He prior std
  of the book's networks: no proper prior of the book lets a scale get there, so growth past
  it is the improper prior's runaway, not a slow approach to the prior);
- **converged**: the ELBO per row changed by at most `ELBO_TOL` nats per row across the window,
  and every layer's median and 90th-percentile guide std by at most `SCALE_TOL` (as a ratio);
- **still moving**: anything else (or a trace too short to judge).

The ELBO per row and the scales are averaged over the steps between records, so their noise is
small next to these tolerances at the book's sizes; a fit judged *still moving* needs more steps (or a
larger learning rate), a *diverging* one a proper prior or a smaller learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW = 0.2
MIN_POINTS = 3
ELBO_TOL = 0.002
SCALE_TOL = 0.10
SMOOTH = 3
COLLAPSE = 0.05
RUNAWAY = 0.5
SCALE_CAP = 1.0

DIVERGING = "diverging"
"""The verdict of a fit that ran away (every check of a verdict compares with this name)."""

CRITERION = (
    f"over the last {WINDOW:.0%} of the optimiser steps (the mean of its first {SMOOTH} trace records against "
    f"that of its last {SMOOTH}): converged when the ELBO per row moved by at most "
    f"{ELBO_TOL} nats and every layer's median and 90th-percentile guide std by at most {SCALE_TOL:.0%}; "
    f"diverging when the ELBO is not finite or fell by more than {COLLAPSE} nats per row, or a layer's "
    f"90th-percentile std grew by more than {RUNAWAY:.0%} to above {SCALE_CAP}; still moving otherwise"
)
"""The criterion in words, as the book states it."""


@dataclass(frozen=True)
class Verdict:
    verdict: str
    elbo_change: float  # ELBO per row, last record minus the window's first
    scale_change: float  # the largest |ratio - 1| of a layer's median or p90 std across the window
    scale_growth: float  # the largest ratio - 1 of a layer's p90 std across the window
    window_steps: int

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "elbo_change_window": self.elbo_change,
                "scale_change_window": self.scale_change, "scale_growth_window": self.scale_growth,
                "window_steps": self.window_steps}


def window_start(steps: list[int]) -> int:
    """Index of the first trace record of the judged window: the last record at or before
    (1 - WINDOW) of the steps, so the window spans at least WINDOW of them."""
    cut = (1.0 - WINDOW) * steps[-1]
    candidates = [i for i, s in enumerate(steps) if s <= cut]
    start = candidates[-1] if candidates else 0
    return min(start, max(0, len(steps) - MIN_POINTS))


def _ends(values: list, start: int) -> tuple[float, float]:
    """The mean of the first and of the last `SMOOTH` records of the window (fewer in a short
    window, never overlapping): single records jitter with the optimiser's noise."""
    k = max(1, min(SMOOTH, (len(values) - start) // 2))
    return sum(values[start : start + k]) / k, sum(values[-k:]) / k


def judge(history: dict) -> Verdict:
    """The verdict of one BNN fit from its history (`bnnlib.models.bnn.fit_bnn`)."""
    steps, elbo = history.get("step", []), history.get("elbo_per_row", [])
    quantiles = history.get("scale_quantiles", {})
    if elbo and not all(math.isfinite(v) for v in elbo):
        return Verdict("diverging", math.nan, math.nan, math.nan, 0)
    if len(steps) < 2 or len(elbo) != len(steps):
        return Verdict("still moving", math.nan, math.nan, math.nan, 0)
    start = window_start(steps)
    window = elbo[start:]
    first, last = _ends(elbo, start)
    elbo_change = last - first
    changes, growth, runaway = [0.0], [0.0], False
    for trace in quantiles.values():
        ratios = []
        for level in (1, 2):  # median, 90th percentile
            before, after = _ends([q[level] for q in trace], start)
            ratios.append(after / before if before > 0 else math.inf)
            changes.append(abs(ratios[-1] - 1.0))
        growth.append(ratios[1] - 1.0)
        runaway |= growth[-1] > RUNAWAY and trace[-1][2] > SCALE_CAP
    scale_change, scale_growth = max(changes), max(growth)
    if max(window) - window[-1] > COLLAPSE or runaway:
        verdict = "diverging"
    elif len(steps) - start >= MIN_POINTS and abs(elbo_change) <= ELBO_TOL and scale_change <= SCALE_TOL:
        verdict = "converged"
    else:
        verdict = "still moving"
    return Verdict(verdict, elbo_change, scale_change, scale_growth, steps[-1] - steps[start])
