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
import time
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from bnnlib.project.book import CHAPTER_MODELS
from bnnlib.infra.cache import Cache, canonical_json
from bnnlib.report.chapter import dataset_arguments
from bnnlib.data import Dataset, open_dataset
from bnnlib.errors import BnnlibError
from bnnlib.infra.cluster import DaskExecutor, WorkerLost, parse_executor
from bnnlib.infra.executor import ProcessExecutor
from bnnlib.models.device import resolve_device
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture
from bnnlib.evaluate.predictive import draw_ranges
from bnnlib.evaluate.study import ModelSpec, evaluate_model, fit_model, is_fitted, is_scored, score_range

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

    @property
    def label(self) -> str:
        return f"{', '.join(s.name for s in self.specs)} ({', '.join(self.chapters)})"


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
    # forward and backward over every network's training rows, per validation row's cost
    train = 3 * spec.epochs * len(dataset.train) * spec.method_object.networks(spec)
    return scoring_cost(spec, dataset) * (train / len(dataset.validation) + spec.n_draws)


def plan(chapters: Sequence[tuple[str, Mapping]], root: Path, force: bool = False) -> list[Job]:
    """The jobs that warm the cache for these (chapter, parameters), longest first.

    Parameters are the chapter's as it will run (its defaults, then what the runner injects).
    A bad parameter (an unknown prior, a target not in the data) is raised here, naming the
    chapter, before anything is computed."""
    jobs: dict[tuple[str, str], Job] = {}
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
                continue
            job_key = (key, str(cache.root), canonical_json(spec.fit_spec()), device)  # one job per fit
            job = jobs.setdefault(job_key, Job(data, dataset.fingerprint, str(cache.root), [], device=device))
            if all(s.score_spec() != spec.score_spec() for s in job.specs):
                job.specs.append(spec)
                job.cost += estimated_cost(spec, dataset)
                job.macs[spec.name] = scoring_cost(spec, dataset)
            if chapter not in job.chapters:
                job.chapters.append(chapter)
    return sorted(jobs.values(), key=lambda j: j.cost, reverse=True)


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
    """Fit one job's model (the first step)."""
    where, spec, force, device = item
    return _in_worker(where, lambda dataset, cache: fit_model(spec, dataset, cache, force, False, device))


def _run_range(item: tuple) -> str | None:
    """Score one range of one model's draws from its cached fit (the second step)."""
    where, spec, draws, force, device = item
    return _in_worker(where, lambda dataset, cache: score_range(spec, draws, dataset, cache, device, force))


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


def warm(jobs: list[Job], workers: int, force: bool = False, executor: str = "local") -> WarmUp:
    """Run the jobs in `workers` local processes, or on the `executor`'s Dask cluster: every fit,
    then every range of draws, then (here) each model's scores from its ranges; print a line
    per finished unit of work."""
    start = time.perf_counter()
    if not jobs:
        return WarmUp({}, set())
    chapters = {c for j in jobs for c in j.chapters}
    choice = parse_executor(executor)
    units = max(len(jobs), sum(len(draw_ranges(s.n_draws)) for j in jobs for s in j.specs))
    workers = min(workers, units)  # (an existing cluster has its own workers)
    where = (f"on the Dask scheduler at {choice.address}" if choice.address else
             f"on a local Dask cluster of {_count(workers, 'worker')}" if choice.kind == "dask" else
             f"in {_count(workers, 'process', 'processes')}")
    print(f"[warm-up] {_count(len(jobs), 'fit')} to run and score for {_count(len(chapters), 'chapter')}, "
          f"{where}, longest first", flush=True)

    def report(step: str):
        def line(done: int, total: int) -> None:
            print(f"[warm-up] {step} {done}/{total} done, {time.perf_counter() - start:.0f} s", flush=True)
        return line

    def place(job: Job) -> tuple:
        return _data_key(job.data), job.fingerprint, job.cache_dir

    failed: dict[str, str] = {}
    pool = (ProcessExecutor(workers, desc="warm-up") if choice.kind == "local"
            else DaskExecutor(choice.address, workers, desc="warm-up"))
    try:
        with pool:  # one pool (one cluster) for the fits and the ranges
            pool.progress = report("fits")
            items = [(place(j), j.specs[0], force, j.device) for j in jobs]
            for job, error in zip(jobs, pool.map(_run_job, items)):
                error = error or _missing(job, "fit")
                if error:
                    failed[job.label] = error
            fitted = [j for j in jobs if j.label not in failed]
            ranges = sorted(((job, spec, draws) for job in fitted for spec in job.specs
                             for draws in draw_ranges(spec.n_draws)),
                            key=lambda r: (r[2][1] - r[2][0]) * r[0].macs.get(r[1].name, 1.0), reverse=True)
            if ranges:
                print(f"[warm-up] {_count(len(ranges), 'range')} of draws to score (up to "
                      f"{max(r[2][1] - r[2][0] for r in ranges)} draws each)", flush=True)
                pool.progress = report("draw ranges")
                items = [(place(j), spec, draws, force, j.device) for j, spec, draws in ranges]
                for (job, spec, draws), error in zip(ranges, pool.map(_run_range, items)):
                    if error and job.label not in failed:
                        failed[job.label] = f"{spec.name}, draws {draws[0]}-{draws[1]}: {error}"
        for job in fitted:
            if job.label not in failed:
                error = _combine(job, force) or _missing(job)
                if error:
                    failed[job.label] = error
        failed_chapters = {c for j in jobs if j.label in failed for c in j.chapters}
    except (BrokenProcessPool, WorkerLost) as error:  # a worker died (out of memory?): the chapters do the rest
        failed, failed_chapters = {"a worker process": f"died ({error})"}, chapters
    for label, error in failed.items():
        print(f"[warm-up] {label} failed: {error}; the chapter will report it", flush=True)
    return WarmUp(failed, failed_chapters)
