"""`bnnlib bench --scale v5`: time and peak memory of each stage of a run at v5's size, FLOP
counts and measured rates, and what the default book and a v5 book would take.

Stages, on v5-size files written here (bnnlib.data.sized: 2.7M training rows, 42 int8 small
features, v5's targets): writing the parquet files, reading them with the loader (only the
needed columns), building the tensors, one full SVI epoch (float32, and bf16 where the CPU has
it natively), and 1000-draw scoring, timed on a few validation eras and extrapolated by rows to
all of them (the output says so). Peak memory is the resident set's high-water mark of each
stage (Linux's VmHWM, reset before the stage through /proc/self/clear_refs; where that is
refused, the process's peak so far). FLOPs: 2 per multiply-add; a training step is counted as
3 forward passes (forward, backward to the activations and to the weights). Projections for a
GPU use stated assumptions, since none was measured here.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import jupytext
import numpy as np
import pandas as pd
import torch

from bnnlib.data import open_dataset
from bnnlib.data.profiles import PROFILES
from bnnlib.data.roles import V5_ROLES
from bnnlib.data.sized import SIZED, write_sized
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture, he_init
from bnnlib.models.precision import cpu_has_native_bf16
from bnnlib.evaluate.predictive import ThetaDraws, score_draws
from bnnlib.infra.cache import canonical_json
from bnnlib.project import book as project
from bnnlib.project.book import CHAPTER_MODELS

SCORED_ERAS = 2
"""Validation eras scored with every draw; the time is extrapolated by rows to all eras."""

GPU_STEP_SECONDS = 1e-3
"""Assumed: one SVI or training step of the talk's network at batch 4096 on one data-centre GPU
(H100/H200 class). Such a step is a few dozen small kernels, bound by launch latency, not FLOPs."""

GPU_SCORING_FLOPS = 100e12
"""Assumed: the rate of 1000-draw scoring on such a GPU in bf16, about a tenth of its dense bf16
peak (~990 TFLOP/s), as batched products of widths 64-128 and the per-era sorts reach."""


# ----------------------------------------------------------------------------- memory


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """The resident set now."""
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset the resident set's high-water mark (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def stage(stages: dict, name: str):
    """Time a stage and record its resident set before, at its peak and after."""
    per_stage = reset_peak()
    record = {"rss_before_mb": rss_mb()}
    started = time.perf_counter()
    yield record
    record["seconds"] = time.perf_counter() - started
    record["peak_rss_mb"] = peak_mb()
    record["peak_is_per_stage"] = per_stage
    record["rss_after_mb"] = rss_mb()
    stages[name] = record
    print(f"[bench v5] {name}: {record['seconds']:.1f} s, peak resident set {record['peak_rss_mb']:.0f} MB",
          flush=True)


# ----------------------------------------------------------------------------- FLOPs


def train_flops(macs: int, steps: int, batch_size: int) -> float:
    return 6.0 * macs * steps * batch_size


def scoring_flops(macs: int, rows: int, draws: int) -> float:
    return 2.0 * macs * rows * draws


def book_workload(profile: str, train_rows: int, validation_rows: int, n_features: int,
                  root: Path | None = None) -> dict:
    """The distinct fits and scorings of every chapter of `profile` (as the runner plans them)
    on data of these sizes: steps, FLOPs, and the largest job."""
    root = project.find_root() if root is None else root
    settings = project.load_profile(profile, root)
    fits: dict[str, dict] = {}
    scores: set[str] = set()
    for chapter in project.list_chapters(root):
        models = CHAPTER_MODELS.get(chapter.name)
        if models is None:
            continue
        declared = project.declared_parameters(jupytext.read(chapter.source))
        params = project.chapter_parameters(chapter.name, settings, declared, runner={"device": "cpu"})
        for spec in models({**declared, **params}):
            arch = Architecture(n_features, spec.hidden, get_likelihood(spec.hypothesis).n_outputs)
            per_epoch = math.ceil(train_rows / spec.batch_size)
            steps = (spec.steps or spec.epochs * per_epoch) * spec.method_object.networks(spec)
            key = json_key(spec.fit_spec())
            job = fits.setdefault(key, {"steps": steps, "train_flops": train_flops(arch.macs_per_row, steps,
                                                                                  spec.batch_size),
                                        "scoring_flops": 0.0})
            if json_key(spec.score_spec()) not in scores:
                scores.add(json_key(spec.score_spec()))
                job["scoring_flops"] += scoring_flops(arch.macs_per_row, validation_rows, spec.n_draws)
    jobs = list(fits.values())
    return {"profile": profile, "train_rows": train_rows, "validation_rows": validation_rows,
            "features": n_features, "fits": len(jobs), "scorings": len(scores),
            "steps": sum(j["steps"] for j in jobs),
            "train_flops": sum(j["train_flops"] for j in jobs),
            "scoring_flops": sum(j["scoring_flops"] for j in jobs),
            "largest_job": max(jobs, key=lambda j: j["train_flops"] + j["scoring_flops"]) if jobs else {}}


def json_key(spec: Mapping) -> str:
    return canonical_json(spec)


def projection(work: dict, cpu_train_flops: float, cpu_scoring_flops: float, workers: tuple[int, ...]) -> dict:
    """Hours on this CPU at the measured rates, on one GPU at the assumed ones, and on N of
    either (jobs are independent: total / N, but never below the largest job)."""
    def hours(train_s: float, scoring_s: float) -> float:
        return (train_s + scoring_s) / 3600

    largest = work["largest_job"]
    cpu = hours(work["train_flops"] / cpu_train_flops, work["scoring_flops"] / cpu_scoring_flops)
    cpu_largest = hours(largest["train_flops"] / cpu_train_flops, largest["scoring_flops"] / cpu_scoring_flops)
    gpu = hours(work["steps"] * GPU_STEP_SECONDS, work["scoring_flops"] / GPU_SCORING_FLOPS)
    gpu_largest = hours(largest["steps"] * GPU_STEP_SECONDS, largest["scoring_flops"] / GPU_SCORING_FLOPS)
    return {
        "this_cpu_hours": cpu,
        "one_gpu_hours": gpu,
        "cpu_workers_hours": {str(n): max(cpu / n, cpu_largest) for n in workers},
        "gpu_workers_hours": {str(n): max(gpu / n, gpu_largest) for n in workers},
    }


# ----------------------------------------------------------------------------- the run


def _svi_epoch(x: torch.Tensor, y: torch.Tensor, arch: Architecture, precision: str) -> tuple[float, int]:
    """Seconds and steps of one full epoch of SVI (Normal prior, the talk's batch)."""
    steps = math.ceil(len(x) / SVIConfig.batch_size)
    fit = fit_bnn(x, y, arch, get_likelihood("single"), "normal", SVIConfig(steps=steps, precision=precision),
                  progress=False)
    return fit.history["seconds"][-1], steps


def run_v5(out: Path, draws: int = 1000, seed: int = 0, keep_data: bool = False) -> dict:
    """Measure every stage at v5's size; returns the figures (the caller writes them)."""
    stages: dict = {}
    load_before = os.getloadavg()
    folder = Path(out).parent / "bench-v5-data"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        with stage(stages, "write_parquet") as record:
            write_sized(SIZED["v5-size"], folder, seed=seed)
            record["megabytes"] = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        with stage(stages, "read_parquet") as record:
            dataset = open_dataset("numerai", data_dir=folder, feature_set="small", main_target=V5_ROLES.main,
                                   aux_targets=list(V5_ROLES.aux), long_target=V5_ROLES.long)
            record.update(train_rows=len(dataset.train), validation_rows=len(dataset.validation),
                          features=len(dataset.features))
        with stage(stages, "build_tensors") as record:
            x, y, _ = dataset.arrays("train", [V5_ROLES.main])
            x, y = (torch.from_numpy(a if a.flags.writeable else a.copy()) for a in (x, y))
            xv, yv, eras = dataset.arrays("validation", [V5_ROLES.main])
            record["megabytes"] = (x.nbytes + y.nbytes + xv.nbytes + yv.nbytes) / 2**20
    finally:
        if not keep_data:
            shutil.rmtree(folder, ignore_errors=True)
    n_train, n_valid = len(x), len(xv)
    arch = Architecture(x.shape[1])
    macs = arch.macs_per_row
    precisions = ["float32", *(["bf16"] if cpu_has_native_bf16() else [])]
    rates: dict[str, float] = {}
    for precision in precisions:
        with stage(stages, f"svi_epoch_{precision}") as record:
            seconds, steps = _svi_epoch(x, y, arch, precision)
            flops = train_flops(macs, steps, SVIConfig.batch_size)
            record.update(steps=steps, step_ms=1000 * seconds / steps, flops=flops, gflops_per_s=flops / seconds / 1e9,
                          how="one full epoch, measured (not extrapolated)")
            rates[f"train_{precision}"] = flops / seconds
    generator = torch.Generator().manual_seed(seed)  # He-initialised networks, jittered: continuous predictions
    thetas = he_init(arch, generator) + 0.01 * torch.randn(draws, arch.n_params, generator=generator)
    era_names = pd.unique(eras)
    chosen = np.isin(eras, era_names[:SCORED_ERAS])
    for precision in precisions:
        with stage(stages, f"scoring_{precision}") as record:
            source = ThetaDraws(thetas, arch, get_likelihood("single"), precision)
            started = time.perf_counter()
            score_draws(source, torch.from_numpy(xv[chosen]), yv[chosen, 0], eras[chosen],
                        pd.RangeIndex(int(chosen.sum())), max(arch.hidden), progress=False)
            timed = time.perf_counter() - started
            rows = int(chosen.sum())
            flops = scoring_flops(macs, n_valid, draws)
            seconds = timed * n_valid / rows
            record.update(draws=draws, rows_timed=rows, eras_timed=SCORED_ERAS, seconds_timed=timed,
                          extrapolated_seconds=seconds, flops=flops, gflops_per_s=flops / seconds / 1e9,
                          how=f"{draws} draws scored on {SCORED_ERAS} of {len(era_names)} validation eras "
                              f"({rows:,} of {n_valid:,} rows), time extrapolated by rows")
            rates[f"scoring_{precision}"] = flops / seconds
    best = {kind: max(precisions, key=lambda p: rates[f"{kind}_{p}"]) for kind in ("train", "scoring")}
    synthetic = PROFILES["default"]
    default_rows = synthetic.train_eras * synthetic.train_rows
    default_valid = (synthetic.validation_eras - synthetic.unresolved_eras) * synthetic.validation_rows
    workloads = {
        "default": book_workload("default", default_rows, default_valid, synthetic.n_small),
        "numerai-v5": book_workload("numerai-v5", n_train, n_valid, x.shape[1]),
    }
    workers = (1, 4, 16, 64)
    projections = {name: projection(work, rates[f"train_{best['train']}"], rates[f"scoring_{best['scoring']}"],
                                    workers)
                   for name, work in workloads.items()}
    return {
        "scale": "v5",
        "machine": f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
                   f"bf16 native: {cpu_has_native_bf16()}",
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0],
                         "note": "1-minute load; above the core count, other processes shared the cores and "
                                 "every time here is inflated"},
        "train_rows": n_train,
        "validation_rows": n_valid,
        "features": int(x.shape[1]),
        "network_macs_per_row": macs,
        "stages": stages,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rates_gflops_per_s": {k: v / 1e9 for k, v in rates.items()},
        "projection_precision": best,  # the faster measured precision of each kind of work
        "assumptions": {"gpu_step_seconds": GPU_STEP_SECONDS, "gpu_scoring_flops_per_s": GPU_SCORING_FLOPS,
                        "note": "no GPU was measured: GPU figures are these assumptions applied to the counted work"},
        "workloads": workloads,
        "projections": projections,
    }
