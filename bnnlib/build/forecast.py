"""A build's plan before the work: what it will compute and what that will cost.

`forecast` asks the warm-up's planner (`bnnlib.build.warmup.survey`) which fits and scorings the
chapters about to execute need and which the cache already holds, times this machine on the
largest of them (`bnnlib.build.calibrate`, a second or two) and prices them with the cost model
(`bnnlib.build.estimate`) for the chosen --jobs and executor. `bnnlib book` and `bnnlib run`
print it first; with --dry-run they print it and stop, having computed nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bnnlib.build import warmup
from bnnlib.build.calibrate import Sample, measure_rates
from bnnlib.build.estimate import Estimate, Rates, estimate, minutes
from bnnlib.evaluate.predictive import draw_ranges
from bnnlib.infra.cluster import parse_executor

LISTED = 12
"""Fits and scorings listed by name; more are counted."""


@dataclass
class Forecast:
    survey: warmup.Survey
    rates: Rates | None
    estimate: Estimate | None  # every BNN trajectory stopping at its floor: the expected cost
    workers: int
    warm_up: bool
    lines: list[str]
    upper: Estimate | None = None  # every trajectory running to its cap: the most the build can cost


def warm_up_workers(jobs: Sequence[warmup.Job], workers: int) -> int:
    """The warm-up's workers: `workers`, but no more than its units of work (`warmup.warm`)."""
    units = max(len(jobs), sum(len(draw_ranges(s.n_draws)) for j in jobs for s in j.specs))
    return max(1, min(workers, units))


def forecast(chapters: Sequence[tuple[str, Mapping]], root: Path, force: bool, jobs: int, executor: str,
             executing: Sequence[str], kept: Sequence[str], pages: int = 0, html: bool = True) -> Forecast:
    """The plan of a build that executes `executing` (their (name, parameters) in `chapters`;
    `pages` more pages read their runs after them) and keeps `kept`, with `jobs` workers on
    `executor`; its lines say what it will compute and what it will cost."""
    survey = warmup.survey(chapters, root, force)
    warm_up = jobs > 1 or executor != "local"
    workers = warm_up_workers(survey.jobs, jobs) if warm_up else 1
    samples = [Sample(j.specs[0], j.n_inputs, j.n_validation)
               for j in sorted(survey.jobs, key=lambda j: j.fit_macs, reverse=True)]
    rates = measure_rates(samples) if survey.jobs else None
    costs = [j.fit_cost() for j in survey.jobs]
    capped = [j.fit_cost(at_cap=True) for j in survey.jobs]
    priced, upper = ((estimate(c, rates, workers, len(executing), warm_up=warm_up, html=html, pages=pages)
                      for c in (costs, capped)) if rates is not None else (None, None))
    lines = plan_lines(survey, priced, rates, workers, warm_up, executor, executing, kept, html, upper)
    return Forecast(survey, rates, priced, workers, warm_up, lines, upper)


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def plan_lines(survey: warmup.Survey, priced: Estimate | None, rates: Rates | None, workers: int, warm_up: bool,
               executor: str, executing: Sequence[str], kept: Sequence[str], html: bool,
               upper: Estimate | None = None) -> list[str]:
    """The plan as printed: chapters, fits and scorings to compute and found in the cache, and the
    estimate in CPU and wall minutes: with every BNN trajectory stopping at the first verdict
    after its floor, and (`upper`, when it differs) the most the build can cost, every trajectory
    running to its cap."""
    if not executing:
        return [f"[plan] nothing to execute: every chapter is as its last run left it ({len(kept)})"]
    lines = [f"[plan] chapters to execute: {_names(list(executing))}"
             + (f"; not changed since their last run: {_names(list(kept))}" if kept else "")]
    fits = survey.fits
    scored_only = [j for j in survey.jobs if j.fitted]
    lines.append(f"[plan] fits to run: {len(fits)}" + (f": {_names([j.label for j in fits])}" if fits else ""))
    scorings = [f"{s.name} ({s.n_draws} draws)" for j in survey.jobs for s in j.specs]
    lines.append(f"[plan] scorings to run: {len(scorings)}" + (f": {_names(scorings)}" if scorings else ""))
    if scored_only:
        lines.append(f"[plan] fits found in the cache, only scored again: {_names([j.name for j in scored_only])}")
    lines.append(f"[plan] found scored in the cache: {len(survey.cached)} models")
    if priced is None:
        lines.append("[plan] nothing to fit or score: the chapters read every model from the cache")
        return lines
    choice = parse_executor(executor)
    where = ("each chapter fitting its own models in turn (--jobs 1: no warm-up)" if not warm_up else
             f"a warm-up on {workers} {'Dask ' if choice.kind == 'dask' else ''}"
             f"worker{'s' if workers != 1 else ''}" + (f" at {choice.address}" if choice.address else ""))
    lines.append(f"[plan] estimate: {minutes(priced.cpu)} of CPU (fits {minutes(priced.fit_cpu)}, scoring "
                 f"{minutes(priced.score_cpu)}); {minutes(priced.wall)} of wall time with {where}"
                 + (f"; at most {minutes(upper.wall)} ({minutes(upper.cpu)} of CPU) if every trajectory runs "
                    "to its cap without converging" if upper is not None and upper.cpu > priced.cpu * 1.001 else ""))
    start = f" (starting the workers {minutes(rates.worker_start)})" if rates.worker_start else ""
    parts = [f"warm-up fits {minutes(priced.warmup_fits)}{start}", f"draws {minutes(priced.warmup_ranges)}"] \
        if warm_up else []
    parts.append(f"chapters {minutes(priced.chapters + priced.pages)}")
    if html:
        parts.append(f"HTML {minutes(priced.html)}")
    lines.append(f"[plan] wall time by stage: {', '.join(parts)} (rates {rates.source}: SVI "
                 f"{_gmacs(rates.fit.get('bnn'))}, point networks {_gmacs(rates.fit.get('point'))}, "
                 f"draws {_gmacs(rates.forward)})")
    return lines


def _gmacs(seconds_per_mac: float | None) -> str:
    """A rate as multiply-adds per second, for the plan's text."""
    return "-" if not seconds_per_mac else f"{1e-9 / seconds_per_mac:.2g} GMAC/s"
