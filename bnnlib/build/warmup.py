"""Fitting and scoring the models of every chapter about to run, in one pool, before any runs.

A chapter evaluates its models through its own executor, one chapter after another: study 1's
three BNNs on two workers leave one worker idle for a third of the chapter, and each chapter
starts its own workers. So before executing the chapters, the runner asks `bnnlib.project.book.CHAPTER_MODELS`
for the models of all of them, drops those already in the cache and the duplicates (study 2
reuses study 1's BNNs), and evaluates the rest in one pool of workers (or a Dask cluster's), in
three steps: every fit, longest first (with the longest started first, the workers finish within
about one short job of each other); then every model's draws, in ranges of
`bnnlib.evaluate.predictive.DRAW_RANGE` draws scored apart (1000 draws are 4 units of work, so many workers
share one model's scoring); then, here, each model's ranges combined into its scores (exactly the
numbers one process gets). The chapters then read every model from the cache, and their provenance
tables say when each was computed.

A model that fails here is reported and skipped: the chapter that needs it computes it again
and stops at its own cell, naming it, as it would without this step.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from bnnlib.build.estimate import FitCost, Rates, fit_kind, forward_macs, minutes, training_macs
from bnnlib.build.progress import CONSOLE, Monitor, WeightedBar, fit_line
from bnnlib.evaluate.convergence import judge
from bnnlib.infra.progress import channel, emit
from bnnlib.models.training import step_plan
from bnnlib.project.book import CHAPTER_MODELS
from bnnlib.infra.cache import Cache, canonical_json
from bnnlib.report.chapter import dataset_arguments
from bnnlib.data import Dataset, open_dataset
from bnnlib.errors import BnnlibError
from bnnlib.infra.cluster import DaskExecutor, WorkerLost, parse_executor
from bnnlib.infra.executor import ProcessExecutor
from bnnlib.models.bnn import SVIConfig
from bnnlib.models.device import device_environment, resolve_device
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture
from bnnlib.evaluate.predictive import draw_ranges
from bnnlib.evaluate.study import (ModelSpec, evaluate_model, fit_model, is_fitted, is_scored, range_spec,
                                   score_range)

PATH_PARAMETERS = ("data_dir", "data_root", "cache_dir")
"""Parameters that are paths, relative to the project folder the chapters run in."""


@dataclass
class Job:
    """Models sharing one fit, on one dataset, and the chapters that use them."""

    data: dict  # open_dataset's keyword arguments, paths absolute
    fingerprint: str
    cache_dir: str
    specs: list[ModelSpec]
    chapters: list[str] = field(default_factory=list)
    cost: float = 0.0
    device: str = "cpu"  # resolved (e.g. 'cuda:0'): where the job fits and scores
    macs: dict[str, float] = field(default_factory=dict)  # per model: scoring's multiply-adds per draw
    fitted: bool = False  # its fit is in the cache: only scoring is left
    fit_macs: float = 0.0  # the cost model's multiply-adds of its training steps (0 when fitted)
    trace_macs: float = 0.0  # ... of its trace records (forward passes over the validation rows)
    cap_macs: tuple[float, float] | None = None  # (fit, trace) with every trajectory run to its cap; None: the same
    n_inputs: int = 0  # the data's features (for timing its network, `bnnlib.build.calibrate`)
    n_validation: int = 0  # the data's validation rows

    @property
    def label(self) -> str:
        return f"{', '.join(s.name for s in self.specs)} ({', '.join(self.chapters)})"

    @property
    def name(self) -> str:
        return ", ".join(s.name for s in self.specs)

    def ranges(self) -> list[tuple[ModelSpec, tuple[int, int]]]:
        """Its models' ranges of draws, the warm-up's second step's units."""
        return [(spec, draws) for spec in self.specs for draws in draw_ranges(spec.n_draws)]

    def fit_cost(self, at_cap: bool = False) -> FitCost:
        """What the cost model prices (`bnnlib.build.estimate`): a trajectory stopping at its
        floor (the expected case), or with `at_cap` running to its cap (the most it can cost)."""
        ranges = tuple((b - a) * self.macs.get(spec.name, 0.0) for spec, (a, b) in self.ranges())
        fit, trace = self.cap_macs if at_cap and self.cap_macs is not None else (self.fit_macs, self.trace_macs)
        return FitCost(self.label, tuple(self.chapters), fit_kind(self.specs[0].method), fit, trace, ranges,
                       tuple(s.name for s in self.specs))


@dataclass
class Survey:
    """What a build will compute: the jobs (fits to run, or only scorings when `fitted`), and
    the models every chapter will find scored in the cache, as (chapter, model name)."""

    jobs: list[Job]
    cached: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fits(self) -> list[Job]:
        return [j for j in self.jobs if not j.fitted]

    @property
    def scorings(self) -> list[str]:
        return [s.name for j in self.jobs for s in j.specs]


@dataclass
class WarmUp:
    """The warm-up's failures: what failed, and the chapters some of whose models failed."""

    failed: dict[str, str]  # job label -> error message
    failed_chapters: set[str]


def absolute_paths(params: Mapping, root: Path) -> dict:
    """The chapter's parameters with its relative paths made absolute against `root`."""
    out = dict(params)
    for name in PATH_PARAMETERS:
        value = out.get(name)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            out[name] = str(root / value)
    return out


def scoring_cost(spec: ModelSpec, dataset: Dataset) -> float:
    """Multiply-adds of scoring one draw on the validation rows."""
    macs = Architecture(len(dataset.features), spec.hidden, get_likelihood(spec.hypothesis).n_outputs).macs_per_row
    return float(macs * len(dataset.validation))


def estimated_cost(spec: ModelSpec, dataset: Dataset) -> float:
    """Multiply-adds of the fit and of scoring the draws: only their order matters (scheduling)."""
    # forward and backward over every network's training rows (its budget: steps, else epochs), per
    # validation row's cost
    steps = planned_steps(spec, dataset, at_cap=False)[1]
    train = 3 * steps * spec.batch_size * spec.method_object.networks(spec)
    return scoring_cost(spec, dataset) * (train / len(dataset.validation) + spec.n_draws)


def planned_steps(spec: ModelSpec, dataset: Dataset, at_cap: bool = True):
    """The fit's step plan (its budget) and the optimiser steps it takes: the budget, plus for a
    BNN trajectory its continuation, at its cap (`at_cap`: the most it can take) or at its floor
    (the fewest: a trajectory stops at the first verdict after it, where the default book's
    Normal trajectories stopped; Laplace ones ran about a quarter longer)."""
    plan = step_plan(len(dataset.train), spec.batch_size, spec.epochs, spec.steps)
    if not (spec.has_posterior and spec.continue_steps):
        return plan, plan.total_steps
    return plan, plan.total_steps + (spec.continue_steps if at_cap else continuation_floor(plan.total_steps, spec))


def continuation_floor(budget: int, spec: ModelSpec) -> int:
    """The steps a trajectory's continuation runs at least: the budget's, and at least
    `SVIConfig.min_continue_steps`, but no more than its cap (`bnnlib.models.bnn.TRAJECTORY`;
    `fit_bnn` applies the same rule)."""
    return min(spec.continue_steps, max(budget, SVIConfig.min_continue_steps))


def training_cost(spec: ModelSpec, dataset: Dataset, at_cap: bool = True) -> tuple[float, float]:
    """The cost model's multiply-adds of the spec's fit: its training steps (`step_plan`: the
    budget in steps, else epochs of the training rows; for a BNN trajectory, plus its
    continuation at its cap, or with `at_cap` False at its floor: `planned_steps`), and its
    trace records (a forward pass over the validation rows each, for a method that records a
    trace)."""
    likelihood = get_likelihood(spec.hypothesis)
    macs = Architecture(len(dataset.features), spec.hidden, likelihood.n_outputs).macs_per_row
    steps, total = planned_steps(spec, dataset, at_cap)
    method = spec.method_object
    train = training_macs(total, spec.batch_size, macs, method.networks(spec))
    traces = method.has_posterior or getattr(method, "traces", False)
    records = round(len(steps.checkpoints) * total / steps.total_steps)
    return train, forward_macs(records, len(dataset.validation), macs) if traces else 0.0


def plan(chapters: Sequence[tuple[str, Mapping]], root: Path, force: bool = False) -> list[Job]:
    """The jobs that warm the cache for these (chapter, parameters), longest first.

    Parameters are the chapter's as it will run (its defaults, then what the runner injects).
    A bad parameter (an unknown prior, a target not in the data) is raised here, naming the
    chapter, before anything is computed."""
    return survey(chapters, root, force).jobs


def survey(chapters: Sequence[tuple[str, Mapping]], root: Path, force: bool = False) -> Survey:
    """`plan`'s jobs, each priced by the cost model and marked `fitted` when only its scoring is
    left, and the models already scored in the cache: what the build's plan prints. Reads the
    cache, writes nothing to it (opening synthetic data generates it if it is missing)."""
    jobs: dict[tuple[str, str], Job] = {}
    cached: list[tuple[str, str]] = []
    datasets: dict[str, Dataset] = {}
    for chapter, raw in chapters:
        models = CHAPTER_MODELS.get(chapter)
        if models is None:
            continue
        params = absolute_paths(raw, root)
        try:
            specs = models(params)
            data = dataset_arguments(params)
            key = _data_key(data)
            device = str(resolve_device(params.get("device", "cpu")))
            if key not in datasets:
                datasets[key] = open_dataset(**data)
        except BnnlibError as error:
            raise BnnlibError(f"chapter {chapter!r}: {error}") from None
        except KeyError as error:
            raise BnnlibError(f"chapter {chapter!r} does not declare the parameter {error}, which its "
                              "models need; add it to its parameters cell") from None
        dataset = datasets[key]
        cache = Cache(params["cache_dir"])
        for spec in specs:
            if not force and is_scored(spec, dataset.fingerprint, cache, device):
                cached.append((chapter, spec.name))
                continue
            job_key = (key, str(cache.root), canonical_json(spec.fit_spec()), device)  # one job per fit
            job = jobs.get(job_key)
            if job is None:
                fitted = not force and is_fitted(spec, dataset.fingerprint, cache, device)
                train, trace = (0.0, 0.0) if fitted else training_cost(spec, dataset, at_cap=False)
                cap = None if fitted else training_cost(spec, dataset, at_cap=True)
                job = jobs[job_key] = Job(data, dataset.fingerprint, str(cache.root), [], device=device,
                                          fitted=fitted, fit_macs=train, trace_macs=trace, cap_macs=cap,
                                          n_inputs=len(dataset.features), n_validation=len(dataset.validation))
            if all(s.score_spec() != spec.score_spec() for s in job.specs):
                job.specs.append(spec)
                job.cost += estimated_cost(spec, dataset)
                job.macs[spec.name] = scoring_cost(spec, dataset)
            if chapter not in job.chapters:
                job.chapters.append(chapter)
    return Survey(sorted(jobs.values(), key=lambda j: j.cost, reverse=True), cached)


def _data_key(data: dict) -> str:
    """open_dataset's arguments as one string: a dictionary key, and what travels to a worker."""
    return json.dumps(data, sort_keys=True, default=str)


@functools.lru_cache(maxsize=2)
def _open(data_json: str) -> Dataset:
    """A worker opens each dataset once, whatever the number of its jobs."""
    return open_dataset(**json.loads(data_json))


def _in_worker(item: tuple, work) -> str | None:
    """work(dataset, cache) in a worker; None, or the error's message (a failure is not fatal here)."""
    data_json, fingerprint, cache_dir = item
    try:
        dataset = _open(data_json)
        if dataset.fingerprint != fingerprint:
            return "the data changed since the warm-up was planned"
        work(dataset, Cache(cache_dir))
        return None
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def _run_job(item: tuple) -> str | None:
    """Fit one job's model (the first step); emit a "fit" progress event (`bnnlib.infra.progress`)
    with the unit's number, its seconds and its convergence verdict."""
    where, spec, force, device, unit = item
    done: dict = {}

    def work(dataset, cache):
        started = time.perf_counter()
        stored_fit = fit_model(spec, dataset, cache, force, False, device)
        done.update(seconds=time.perf_counter() - started,
                    verdict=judge(stored_fit["history"]).verdict if spec.has_posterior else "")

    error = _in_worker(where, work)
    emit("fit", unit=unit, error=error, **done)
    return error


def range_is_cached(job: Job, spec: ModelSpec, draws: tuple[int, int]) -> bool:
    """Whether this range of the model's draws is scored in the job's cache already (as seen from
    here): a build that resumes counts only the ranges it has left in its progress and pace."""
    return Cache(job.cache_dir).contains("score_range", range_spec(spec, draws), job.fingerprint,
                                         device_environment(job.device))


def _run_range(item: tuple) -> str | None:
    """Score one range of one model's draws from its cached fit (the second step); emit a
    "range" progress event."""
    where, spec, draws, force, device, unit = item
    started = time.perf_counter()
    error = _in_worker(where, lambda dataset, cache: score_range(spec, draws, dataset, cache, device, force))
    emit("range", unit=unit, error=error, seconds=time.perf_counter() - started)
    return error


def _missing(job: Job, what: str = "scores") -> str | None:
    """None when the job's fit (`what`="fit") or scores are in the cache as seen from here; else
    why not (a cluster whose workers do not share the cache folder wrote them where this machine
    cannot read)."""
    cache = Cache(job.cache_dir)
    check = is_fitted if what == "fit" else is_scored
    if all(check(spec, job.fingerprint, cache, job.device) for spec in job.specs):
        return None
    return (f"the worker finished but its results are not in {job.cache_dir}: the cluster's workers "
            "must share that cache folder with this machine (or use --executor local)")


def _combine(job: Job, force: bool) -> str | None:
    """Each of the job's models scored from its fit and its scored ranges (the third step, here)."""
    def work(dataset, cache):
        for spec in job.specs:
            evaluate_model(spec, dataset, cache, force=force, refit=False, device=job.device, read_ranges=True)
    return _in_worker((_data_key(job.data), job.fingerprint, job.cache_dir), work)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def warm(jobs: list[Job], workers: int, force: bool = False, executor: str = "local",
         rates: Rates | None = None) -> WarmUp:
    """Run the jobs in `workers` local processes, or on the `executor`'s Dask cluster: every fit,
    then every range of draws, then (here) each model's scores from its ranges; print a line
    per finished fit (its name, chapters, seconds and verdict), a bar weighted by the cost
    model's seconds (`rates`; else by multiply-adds) in a terminal, and a heartbeat in a log."""
    if not jobs:
        return WarmUp({}, set())
    with tempfile.TemporaryDirectory(prefix="bnnlib-progress-") as folder, channel(Path(folder) / "warm-up.jsonl") as path:
        return _warm(jobs, workers, force, executor, rates, path)


def _warm(jobs: list[Job], workers: int, force: bool, executor: str, rates: Rates | None, path: Path) -> WarmUp:
    start = time.perf_counter()
    chapters = {c for j in jobs for c in j.chapters}
    choice = parse_executor(executor)
    units = max(len(jobs), sum(len(draw_ranges(s.n_draws)) for j in jobs for s in j.specs))
    workers = min(workers, units)  # (an existing cluster has its own workers)
    where = (f"on the Dask scheduler at {choice.address}" if choice.address else
             f"on a local Dask cluster of {_count(workers, 'worker')}" if choice.kind == "dask" else
             f"in {_count(workers, 'process', 'processes')}")
    fits = [j for j in jobs if not j.fitted]
    print(f"[warm-up] {_count(len(fits), 'fit')} to run and {_count(sum(len(j.specs) for j in jobs), 'model')} to "
          f"score for {_count(len(chapters), 'chapter')}, {where}, longest first", flush=True)
    costs = [j.fit_cost() for j in jobs]
    # work found in the cache weighs nothing: the bar's share and its pace count only what runs here
    fit_weight = [c.fit_seconds(rates) if rates else c.fit_macs + c.trace_macs for c in costs]
    fit_weight = [0.0 if job.fitted and not force else weight for job, weight in zip(jobs, fit_weight)]
    ranges = sorted(((job, spec, draws, 0.0 if not force and range_is_cached(job, spec, draws) else weight)
                     for job, cost in zip(jobs, costs)
                     for (spec, draws), weight in zip(job.ranges(), cost.range_seconds(rates) if rates
                                                      else cost.range_macs)),
                    key=lambda r: r[3], reverse=True)
    state = {"fits": 0, "ranges": 0, "step": "fits"}
    bar = WeightedBar(sum(fit_weight) + sum(r[3] for r in ranges), "warm-up")

    def on_event(event: dict) -> None:
        unit, kind = event.get("unit"), event.get("event")
        if kind == "fit" and isinstance(unit, int) and 0 <= unit < len(jobs):
            state["fits"] += 1
            bar.advance(fit_weight[unit])
            job = jobs[unit]
            if job.fitted and not event.get("error"):  # its fit was in the cache: only its scoring is left
                verdict = event.get("verdict") or "no verdict (a point network)"
                CONSOLE.line(f"[warm-up] fit {state['fits']}/{len(jobs)} {job.label}: from the cache, {verdict}")
            else:
                CONSOLE.line(f"[warm-up] fit {state['fits']}/{len(jobs)} "
                             + fit_line(job.name, job.chapters, event.get("seconds"), event.get("verdict", ""),
                                        event.get("error")))
        elif kind == "range" and isinstance(unit, int) and 0 <= unit < len(ranges):
            state["ranges"] += 1
            bar.advance(ranges[unit][3])

    def status() -> str:
        done = bar.share
        elapsed = time.perf_counter() - start
        left = f"; about {minutes(elapsed * (1 - done) / done)} left at this pace" if done > 0 else ""
        return (f"warm-up {state['step']}: fits {state['fits']}/{len(jobs)}, draw ranges "
                f"{state['ranges']}/{len(ranges)} done ({done:.0%} of the estimated work){left}")

    failed: dict[str, str] = {}
    monitor = Monitor(path)
    monitor.handlers.append(on_event)
    monitor.status = status
    pool = (ProcessExecutor(workers, desc="warm-up") if choice.kind == "local"
            else DaskExecutor(choice.address, workers, desc="warm-up"))
    pool.desc = "warm-up units"  # its own bar (a terminal's) counts units; ours weighs them
    if choice.address:  # a remote cluster's workers cannot append to our progress file: count here

        def counted(done: int, total: int) -> None:
            CONSOLE.line(f"[warm-up] {state['step']} {done}/{total} done, {time.perf_counter() - start:.0f} s")
        pool.progress = counted
    try:
        with monitor, pool:  # one pool (one cluster) for the fits and the ranges
            items = [(place(j), j.specs[0], force, j.device, unit) for unit, j in enumerate(jobs)]
            for job, error in zip(jobs, pool.map(_run_job, items)):
                error = error or _missing(job, "fit")
                if error:
                    failed[job.label] = error
            monitor.poll()
            state["step"] = "draws"
            if ranges:
                CONSOLE.line(f"[warm-up] {_count(len(ranges), 'range')} of draws to score (up to "
                             f"{max(r[2][1] - r[2][0] for r in ranges)} draws each)")
                items = [(place(j), spec, draws, force, j.device, unit) if j.label not in failed else None
                         for unit, (j, spec, draws, _) in enumerate(ranges)]
                todo = [i for i, item in enumerate(items) if item is not None]
                for i, error in zip(todo, pool.map(_run_range, [items[i] for i in todo])):
                    job, spec, draws, _ = ranges[i]
                    if error and job.label not in failed:
                        failed[job.label] = f"{spec.name}, draws {draws[0]}-{draws[1]}: {error}"
            state["step"] = "combining"
            for job in jobs:
                if job.label not in failed:
                    error = _combine(job, force) or _missing(job)
                    if error:
                        failed[job.label] = error
        failed_chapters = {c for j in jobs if j.label in failed for c in j.chapters}
    except (BrokenProcessPool, WorkerLost) as error:  # a worker died (out of memory?): the chapters do the rest
        failed, failed_chapters = {"a worker process": f"died ({error})"}, chapters
    finally:
        bar.close()
    for label, error in failed.items():
        print(f"[warm-up] {label} failed: {error}; the chapter will report it", flush=True)
    print(f"[warm-up] done in {minutes(time.perf_counter() - start)}", flush=True)
    return WarmUp(failed, failed_chapters)


def place(job: Job) -> tuple:
    """Where a job's work runs: its data's arguments, fingerprint and cache folder."""
    return _data_key(job.data), job.fingerprint, job.cache_dir
