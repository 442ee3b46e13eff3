"""This machine's throughput for the cost model (`bnnlib.build.estimate.Rates`), measured in a
second or two on the book's own networks.

A FLOP count alone misprices a fit: an SVI step samples every weight and adds the KL besides
its products, and a 128-64-64 network's step is short enough for per-step overheads to count.
So the rates come from the actual code: a few optimiser steps of the largest planned fit of
each kind (`estimate.FIT_KINDS`), through its method's own `fit`, on random rows of its data's
width, and a few draws scored through `score_draw_range`. Each is timed twice, at two lengths,
and the difference is used, so that setting up (building the optimiser, the first call's
allocations) is not priced as work. Everything runs on one torch thread, as the warm-up's
workers do. The fixed costs of a fit, a range of draws and a worker's start are the constants of
`bnnlib.build.estimate`, measured once. Timings on a loaded machine are noisy; the build's
summary says how close the estimate came.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from bnnlib.build.estimate import (FIT_OVERHEAD, RANGE_OVERHEAD, WORKER_START, Rates, fit_kind, forward_macs,
                                   training_macs)
from bnnlib.evaluate.predictive import ThetaDraws, score_draw_range
from bnnlib.evaluate.study import ModelSpec, single_threaded
from bnnlib.models.bnn import BayesianMLP
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture

SHORT, LONG = 2, 6
"""Optimiser steps of the two timed fits (their difference is priced)."""
FEW, MORE = 2, 10
"""Draws of the two timed scorings."""
SCORE_ROWS = 20_000
"""Validation rows of the timed scorings (at most)."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """A planned fit to time: its spec and its data's width and validation rows."""

    spec: ModelSpec
    n_inputs: int
    n_validation: int


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _fit_seconds_per_mac(sample: Sample) -> float:
    """Seconds per training multiply-add of the sample's fit: (LONG - SHORT) steps' time over
    their multiply-adds (one network: an ensemble's members train one after another)."""
    spec = sample.spec
    if spec.method == "ensemble":
        spec = dataclasses.replace(spec, members=1)
    likelihood = get_likelihood(spec.hypothesis)
    arch = Architecture(sample.n_inputs, spec.hidden, likelihood.n_outputs)
    generator = torch.Generator().manual_seed(0)
    rows = spec.batch_size * LONG
    x = torch.rand(rows, sample.n_inputs, generator=generator)
    y = torch.rand(rows, len(likelihood.targets), generator=generator)

    def fit(steps: int) -> float:  # the budget alone: a trajectory's continuation runs at least 2,000 steps
        short = dataclasses.replace(spec, steps=steps, continue_steps=0, snapshot="A")
        return _timed(lambda: short.method_object.fit(short, x, y, arch, likelihood, lambda theta: 0.0, False, "cpu"))

    fit(1)  # first-call allocations
    seconds = max(fit(LONG) - fit(SHORT), 1e-9)
    return seconds / training_macs(LONG - SHORT, spec.batch_size, arch.macs_per_row)


def _forward_seconds_per_mac(sample: Sample) -> float:
    """Seconds per multiply-add of scoring draws of the sample's network ((MORE - FEW) draws)."""
    spec = sample.spec
    likelihood = get_likelihood("single")
    arch = Architecture(sample.n_inputs, spec.hidden, likelihood.n_outputs)
    generator = torch.Generator().manual_seed(0)
    net = BayesianMLP(arch, likelihood, "normal", 1e-2, torch.tensor([0.22]), generator)
    thetas = net.posterior().sample(MORE, generator)
    rows = min(SCORE_ROWS, max(sample.n_validation, 1))
    x = torch.rand(rows, sample.n_inputs, generator=generator)
    target = np.random.default_rng(0).random(rows).astype(np.float32)
    eras = np.repeat(np.arange(20), -(-rows // 20))[:rows].astype(str)
    widest = max(spec.hidden, default=1)

    def score(draws: int) -> float:
        source = ThetaDraws(thetas[:draws], arch, likelihood, spec.precision)
        return _timed(lambda: score_draw_range(source, x, target, eras, (0, draws), widest, False))

    score(FEW)
    seconds = max(score(MORE) - score(FEW), 1e-9)
    return seconds / forward_macs(MORE - FEW, rows, arch.macs_per_row)


def measure_rates(samples: Sequence[Sample]) -> Rates | None:
    """Rates from the largest sample of each kind of fit (the first of each kind: pass them
    largest first), on one torch thread; None when there is nothing to time."""
    if not samples:
        return None
    chosen: dict[str, Sample] = {}
    for sample in samples:
        chosen.setdefault(fit_kind(sample.spec.method), sample)
    fit = {kind: single_threaded(_fit_seconds_per_mac, sample) for kind, sample in chosen.items()}
    forward = single_threaded(_forward_seconds_per_mac, samples[0])
    return Rates(fit, forward, "measured just now on this machine", FIT_OVERHEAD, RANGE_OVERHEAD, WORKER_START)
