"""What a build will cost, before it runs: a cost model in multiply-adds, and the schedule.

A fit costs its optimiser steps times the batch times three passes of the network (forward,
and a backward of about twice that) times the networks it trains (a deep ensemble's members),
plus a forward pass over the validation rows at each trace record; scoring costs one forward
pass of every draw over every validation row. Multiply-adds become seconds through rates
measured on this machine (`bnnlib.build.calibrate`: a second or two of the actual networks'
steps and draws), one rate per kind of fit, since an SVI step does more than its products (it
samples the weights and adds the KL) and a small network's step is dominated by overheads.

Seconds become wall time by the warm-up's own scheduling: every fit, longest first, each to
the worker that frees up first (list scheduling, `makespan`); then every range of draws the
same way; then the chapters, `jobs` at a time, each reading the cache (a fixed overhead per
chapter), and the HTML build. With `jobs` 1 there is no warm-up: each chapter fits and scores
its own models in turn, so the wall time is the sum.

Everything here is a pure function of the plan and the rates, so that it can be tested
against hand-computed schedules; nothing here measures anything.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CHAPTER_SECONDS = 20.0
"""A chapter's own execution when every model it needs is in the cache: starting its kernel,
opening the data, its tables and figures (the default book's seven pages took 84-100 s)."""

HTML_SECONDS = 15.0
"""The Jupyter Book build of the executed notebooks (5.7 s for the quick book on the loaded 2-core
machine: it renders, it executes nothing)."""

FIT_OVERHEAD = 0.5
"""Seconds a fit costs beyond its steps: its data as tensors, the model's set-up, the cache's
write (the quick book's fits, ~0.1 s of steps each, took a median 0.5 s on the 2-core machine)."""
RANGE_OVERHEAD = 0.5
"""Seconds a range of draws costs beyond its forward passes: drawing the parameters, ranking
each era, the cache's write (the quick book's ranges took a median 0.8 s for ~0.2 s of products)."""
WORKER_START = 10.0
"""Seconds before a warm-up worker does useful work: spawning it, importing torch and pyro,
opening the data, the first fit's one-off costs (the quick book's first fit in each of its two
workers took 9-10 s, the others about 1 s)."""

FIT_KINDS = ("bnn", "point")


def fit_kind(method: str) -> str:
    """The rate a fit is priced at: SVI ('bnn') or a point network's Adam ('point')."""
    return "bnn" if method == "bnn" else "point"


@dataclass(frozen=True)
class Rates:
    """Seconds per multiply-add on one single-threaded worker: of a fit's training, per kind of
    fit (`FIT_KINDS`), and of a forward pass of draws (scoring, and a fit's trace records)."""

    fit: Mapping[str, float]
    forward: float
    source: str = "calibrated"  # how they were obtained, for the plan's text
    fit_overhead: float = 0.0  # seconds per fit beyond its steps (`FIT_OVERHEAD`)
    range_overhead: float = 0.0  # seconds per range of draws beyond its products (`RANGE_OVERHEAD`)
    worker_start: float = 0.0  # seconds before a warm-up worker starts its first job (`WORKER_START`)

    def fit_rate(self, method: str) -> float:
        kind = fit_kind(method)
        return self.fit.get(kind, max(self.fit.values(), default=self.forward))


@dataclass(frozen=True)
class FitCost:
    """One planned fit: its label, chapters, multiply-adds of the fit and of each range of its
    models' draws; `kind` prices the fit (`fit_kind`)."""

    label: str
    chapters: tuple[str, ...]
    kind: str
    fit_macs: float  # training steps (0 when the fit is cached and only scoring is left)
    trace_macs: float  # the fit's trace records: forward passes over the validation rows
    range_macs: tuple[float, ...]  # one entry per range of draws to score
    scorings: tuple[str, ...] = ()  # the names of the models scored (one fit may serve several)

    def fit_seconds(self, rates: Rates) -> float:
        """Its fit's seconds (nothing when it is cached: only its scoring is left)."""
        if not self.fit_macs:
            return 0.0
        return self.fit_macs * rates.fit_rate(self.kind) + self.trace_macs * rates.forward + rates.fit_overhead

    def range_seconds(self, rates: Rates) -> list[float]:
        return [macs * rates.forward + rates.range_overhead for macs in self.range_macs]

    def seconds(self, rates: Rates) -> float:
        return self.fit_seconds(rates) + sum(self.range_seconds(rates))


def training_macs(steps: int, batch_size: int, macs_per_row: float, networks: int = 1) -> float:
    """Multiply-adds of `steps` optimiser steps: forward and backward (counted as three forward
    passes) over a batch, for each network trained."""
    return 3.0 * steps * batch_size * macs_per_row * networks


def forward_macs(passes: int, rows: int, macs_per_row: float) -> float:
    """Multiply-adds of `passes` forward passes (draws, or trace records) over `rows` rows."""
    return float(passes) * rows * macs_per_row


def makespan(durations: Iterable[float], workers: int) -> float:
    """The finish time of list scheduling, longest first: each duration, from the longest, goes
    to the worker that is free first (what the warm-up's pool does with its queue of jobs).
    Within 4/3 of the best possible schedule, and exact for the single-worker case (the sum)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    loads = [0.0] * workers
    for duration in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + duration)
    return max(loads)


@dataclass(frozen=True)
class Estimate:
    """A build's predicted cost: CPU seconds (fits, scoring) and wall seconds by stage."""

    fit_cpu: float
    score_cpu: float
    warmup_fits: float  # wall seconds of the warm-up's fits (0 without a warm-up)
    warmup_ranges: float  # ... of its ranges of draws
    chapters: float  # wall seconds of executing the chapters (with their own fits when jobs is 1)
    html: float
    workers: int
    pages: float = 0.0  # wall seconds of the pages that read the chapters' runs, one after another, last
    per_fit: dict[str, float] = field(default_factory=dict)  # label -> the fit's CPU seconds (without scoring)

    @property
    def cpu(self) -> float:
        return self.fit_cpu + self.score_cpu

    @property
    def wall(self) -> float:
        return self.warmup_fits + self.warmup_ranges + self.chapters + self.pages + self.html

    def as_dict(self) -> dict:
        return {"fit_cpu_s": self.fit_cpu, "score_cpu_s": self.score_cpu, "cpu_s": self.cpu,
                "warmup_fits_s": self.warmup_fits, "warmup_ranges_s": self.warmup_ranges,
                "chapters_s": self.chapters, "pages_s": self.pages, "html_s": self.html, "wall_s": self.wall,
                "workers": self.workers}


def estimate(fits: Sequence[FitCost], rates: Rates, workers: int, chapters: int, *, warm_up: bool = True,
             html: bool = True, pages: int = 0, chapter_seconds: float = CHAPTER_SECONDS,
             html_seconds: float = HTML_SECONDS) -> Estimate:
    """The cost of computing `fits` on `workers` single-threaded workers, then executing
    `chapters` chapters and `pages` pages: with `warm_up`, the fits are list-scheduled first, then
    the ranges of draws, and the chapters run `workers` at a time on a warm cache; without it
    (--jobs 1), each chapter computes its own models in turn. The pages (the run registry) run
    one after another after the chapters, then the HTML is built (with `html`)."""
    fit_s = [f.fit_seconds(rates) for f in fits]
    range_s = [s for f in fits for s in f.range_seconds(rates)]
    html_s = html_seconds if html else 0.0
    per_fit = {f.label: f.fit_seconds(rates) for f in fits}
    if warm_up and fits:
        fits_wall, ranges_wall = rates.worker_start + makespan(fit_s, workers), makespan(range_s, workers)
        chapters_wall = makespan([chapter_seconds] * chapters, workers)
    else:
        fits_wall = ranges_wall = 0.0
        chapters_wall = sum(fit_s) + sum(range_s) + chapter_seconds * chapters
    return Estimate(sum(fit_s), sum(range_s), fits_wall, ranges_wall, chapters_wall, html_s, workers,
                    chapter_seconds * pages, per_fit)


def minutes(seconds: float) -> str:
    """A duration for a person: '45 s', '12.5 min', '2.1 h'."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def ratio(estimated: float, measured: float) -> float:
    """Estimate over measurement (1: exact; 1.3: 30% too long); NaN when nothing was measured."""
    return estimated / measured if measured > 0 else math.nan
