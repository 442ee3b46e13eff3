"""From a model's specification to its scored validation predictions, cached.

A chapter names the models it compares as `ModelSpec`s and calls `evaluate_models`; each model
is fitted (or read from the cache), its S draws are predicted and scored on the validation set
(or read from the cache), and a `ModelResult` comes back with everything the studies need. Fits
are independent jobs, run through an executor (in-process, or local processes with jobs > 1),
on a `device` (bnnlib.models.device) that keys the cache beside the specification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from bnnlib.infra.cache import Cache, canonical_json
from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.infra.executor import Executor, make_executor
from bnnlib.scoring.metrics import era_corr, era_numerai_corr, score_summary
from bnnlib.models.bnn import Posterior
from bnnlib.models.device import device_environment, resolve_device
from bnnlib.models.likelihoods import Likelihood, get_likelihood
from bnnlib.models.network import TALK_HIDDEN, Architecture, forward, unflatten
from bnnlib.models.precision import autocast, compute_dtype, resolve_precision
from bnnlib.evaluate.methods import METHODS, POINT_HYPOTHESES, Method  # noqa: F401 (POINT_HYPOTHESES: re-exported)
from bnnlib.evaluate.predictive import (DrawScores, NoisyDraws, PartialScores, VarianceSplit, combine_partials,
                                        draw_ranges, score_draw_range, split_variance)

_FIT_FIELDS = ("method", "hypothesis", "hidden", "epochs", "batch_size", "lr", "seed", "steps", "precision",
               "lr_final")
"""The fields every method's fit reads; each method adds its own (`Method.fit_fields`): a fit's
cache key holds no field its method ignores, so two specs that differ only there share one fit."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines one model of a study; equal specs share fits and scores."""

    name: str
    method: str = "bnn"  # a name of METHODS: baseline | bnn | dropout | ensemble | laplace
    prior: str | None = None  # bnn only: flat (the talk's uniform) | normal | laplace
    hypothesis: str = "single"  # single | h1 | h2 | h3 | h4 (bnn only) | hetero (noise depends on x; every method)
    hidden: tuple[int, ...] = TALK_HIDDEN
    epochs: int = 30
    batch_size: int = 4096
    lr: float | None = None  # None: 1e-2 for point networks, 1e-3 for SVI (the talk's)
    draws: int = 1000
    seed: int = 0
    init_scale: float | None = None  # bnn: the guide's starting std (bnnlib.models.bnn.initial_scale)
    dropout: float = 0.1  # dropout: the rate
    members: int = 10  # ensemble: networks of different seeds
    best_epoch: bool = False  # baseline: score the best-validation epoch (the talk's reference)
    steps: int | None = None  # the optimiser's budget in steps; None: `epochs` passes over the rows
    precision: str = "float32"  # the hidden layers' products in fits and scoring (float32 | bf16 | auto; MC dropout scores in float32)
    scale_lr: float | None = None  # bnn: Adam's lr for the guide's log-scales; None: the lr
    estimator: str = "output"  # bnn: the ELBO's gradient estimator (bnnlib.models.bnn.ESTIMATORS)
    guide_init: str = "he"  # bnn: where the guide starts (bnnlib.models.bnn.GUIDE_INITS)
    lr_final: float = 1.0  # the lr decays geometrically to lr * this by the last step (1: constant, the talk's)
    laplace_subset: str = "last_layer"  # laplace: the weights its posterior covers (last_layer | all)
    continue_steps: int = 0  # bnn: > 0 makes the fit a trajectory (models.bnn.TRAJECTORY), continued up to this many steps
    snapshot: str = "A"  # bnn: which snapshot of a trajectory is drawn and scored: A (the budget's end) | B (converged)
    average: float = 0.2  # bnn without a continuation: the posterior is the mean of the iterates over this last share (0: the last)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise unknown_name("method", self.method, METHODS)
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for name in ("epochs", "batch_size", "draws", "members"):
            if int(getattr(self, name)) < 1:
                raise BnnlibError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.lr_final <= 1:
            raise BnnlibError(f"lr_final must be in (0, 1] (1: a constant lr), got {self.lr_final!r}")
        if not 0 <= self.average < 1:
            raise BnnlibError(f"average must be in [0, 1) (0: the last iterate), got {self.average!r}")
        if int(self.continue_steps) != self.continue_steps or self.continue_steps < 0:
            raise BnnlibError(f"continue_steps must be a whole number of steps, 0 or more, got {self.continue_steps!r}")
        if self.steps is not None and (int(self.steps) != self.steps or self.steps < 1):
            raise BnnlibError(f"steps must be a positive integer or None (use epochs), got {self.steps!r}")
        object.__setattr__(self, "precision", resolve_precision(self.precision))  # a concrete one keys the cache
        for name, value in self.method_object.check(self).items():  # e.g. the canonical prior
            object.__setattr__(self, name, value)

    @property
    def method_object(self) -> Method:
        """What `method` names: how this model fits, draws and scores (`bnnlib.evaluate.methods`)."""
        return METHODS[self.method]

    @property
    def has_posterior(self) -> bool:
        """Whether its fit is a posterior over the weights (the BNN's)."""
        return self.method_object.has_posterior

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else self.method_object.default_lr

    def fit_spec(self) -> dict:
        """The fields that decide the fit: those its method reads (not how many draws are
        scored, nor the label)."""
        spec = {name: getattr(self, name) for name in (*_FIT_FIELDS, *self.method_object.fit_fields)}
        spec["lr"] = self.learning_rate
        return spec

    def score_spec(self) -> dict:
        """The fit's fields, the number of draws scored and what else its scoring reads (the
        baseline's epoch)."""
        spec = {**self.fit_spec(), "draws": self.n_draws}
        spec.update((name, getattr(self, name)) for name in self.method_object.score_fields)
        return spec

    @property
    def n_draws(self) -> int:
        return self.method_object.n_draws(self)


@dataclass
class ModelResult:
    """A scored model: ensemble predictions, per-era scores and the distribution over draws."""

    spec: ModelSpec
    scores: DrawScores
    per_era: pd.DataFrame  # era, corr, numerai_corr, mean_std
    history: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)  # best_epoch, h4's beta posterior, ...

    def summary(self, kind: str = "corr") -> dict:
        return score_summary(self.per_era.set_index("era")[kind])


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A torch tensor of a dataset array (a copy when pandas handed out a read-only view)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _targets(dataset, likelihood) -> list[str]:
    roles = dataset.roles
    columns = {"main": roles.main, "aux0": roles.aux[0], "aux1": roles.aux[1], "long": roles.long}
    return [columns[t] for t in likelihood.targets]


def _validation_corr(dataset, arch: Architecture, likelihood, precision: str = "float32",
                     device: str = "cpu") -> Callable[[torch.Tensor], float]:
    """theta -> the validation corr of that one network's main-target mean (a trace's score).
    The hidden layers run at the fit's precision (a trace record costs one pass over the
    validation rows, about a tenth of a float32 fit at the talk's scale); the output layer
    stays float32, as in scoring, so the predictions' ranks are not tied by rounding."""
    xv, yv, eras_v = dataset.arrays("validation", [dataset.roles.main])
    xv = _tensor(xv).to(device, compute_dtype(precision))

    def validation_corr(theta: torch.Tensor) -> float:
        with torch.inference_mode():
            theta = theta.to(xv.device)
            layers = unflatten(theta[: arch.n_params], arch)
            with autocast(precision, xv.device.type):
                hidden = forward(xv, layers[:-1], last_relu=True) if len(layers) > 1 else xv
            out = forward(hidden.float(), layers[-1:])
            pred = likelihood.main_mean(out, theta[arch.n_params:]).cpu().numpy()
        return float(era_corr(pred, yv[:, 0], eras_v).mean())

    return validation_corr


def _architecture(spec: ModelSpec, n_inputs: int) -> tuple[Architecture, Likelihood]:
    likelihood = get_likelihood(spec.hypothesis)
    return Architecture(n_inputs, spec.hidden, likelihood.n_outputs), likelihood


def _fit(spec: ModelSpec, dataset, progress: bool | None, device: str = "cpu") -> dict:
    """Fit one model on `device`; returns what the cache stores (CPU tensors and a JSON history)."""
    likelihood = get_likelihood(spec.hypothesis)
    x, y, _ = dataset.arrays("train", _targets(dataset, likelihood))
    x, y = _tensor(x), _tensor(y)
    arch = Architecture(x.shape[1], spec.hidden, likelihood.n_outputs)
    validation_corr = _validation_corr(dataset, arch, likelihood, spec.precision, device)
    return spec.method_object.fit(spec, x, y, arch, likelihood, validation_corr, progress, device)


def _draw_source(spec: ModelSpec, stored_fit: dict, n_inputs: int):
    arch, likelihood = _architecture(spec, n_inputs)
    return spec.method_object.draws(spec, stored_fit, arch, likelihood)


def range_spec(spec: ModelSpec, draws: tuple[int, int]) -> dict:
    """The cache spec of one range of a model's draws (`bnnlib.evaluate.predictive.DRAW_RANGE`)."""
    return {**spec.score_spec(), "draw_range": list(draws)}


def _score_range(spec: ModelSpec, stored_fit: dict, dataset, draws: tuple[int, int], progress: bool | None,
                 device: str) -> PartialScores:
    x, y, eras = dataset.arrays("validation", [dataset.roles.main])
    source = _draw_source(spec, stored_fit, x.shape[1])
    return score_draw_range(source, _tensor(x), y[:, 0], eras, draws, max(spec.hidden, default=1), progress, device)


def score_range(spec: ModelSpec, draws: tuple[int, int], dataset, cache: Cache, device: str = "cpu",
                force: bool = False) -> None:
    """Score one range of a model's draws into the cache, from its cached fit: a unit of work a
    cluster's worker can take (the fit must be cached first: this never fits)."""
    environment = device_environment(device)
    stored_fit = cache.stored("fit", spec.fit_spec(), dataset.fingerprint, environment)
    if stored_fit is None:
        raise BnnlibError(f"{spec.name!r} is not fitted in {cache.root}; fit it before scoring its draws {draws}")
    cache.get_or_compute("score_range", range_spec(spec, draws), dataset.fingerprint,
                         lambda: single_threaded(_score_range, spec, stored_fit, dataset, draws, False, device).as_dict(),
                         force=force, environment=environment)


def _score(spec: ModelSpec, stored_fit: dict, dataset, progress: bool | None, device: str = "cpu",
           cache: Cache | None = None) -> dict:
    """Score every draw: ranges a cluster already scored come from the cache, the rest here."""
    x, y, eras = dataset.arrays("validation", [dataset.roles.main])
    environment = device_environment(device)
    partials = []
    for draws in draw_ranges(spec.n_draws):
        stored = None if cache is None else cache.stored("score_range", range_spec(spec, draws),
                                                         dataset.fingerprint, environment)
        partials.append(PartialScores.from_dict(stored) if stored is not None
                        else _score_range(spec, stored_fit, dataset, draws, progress, device))
    scores = combine_partials(partials, dataset.validation.index, eras)
    per_era = pd.DataFrame({
        "corr": era_corr(scores.ensemble, y[:, 0], eras),
        "numerai_corr": era_numerai_corr(scores.ensemble, y[:, 0], eras),
        "mean_std": scores.era_std(),
    }).rename_axis("era").reset_index()
    per_era["era"] = per_era["era"].astype(str)
    return {
        "ids": np.asarray(scores.ids, dtype=str),
        "eras": np.asarray(scores.eras, dtype=str),
        "ensemble": scores.ensemble,
        "std": scores.std,
        "era_names": list(scores.era_names),
        "draw_corr": scores.draw_corr,
        "draw_numerai_corr": scores.draw_numerai_corr,
        "per_era": per_era,
    }


def noisy_draws(spec: ModelSpec, stored_fit: dict, n_inputs: int) -> NoisyDraws:
    """The model's draws with their noise (`Method.noise`), for `predictive.split_variance`: a
    BNN's learned sigma; a heteroscedastic point network's own scale (one per ensemble member). An
    MSE-trained network learns no noise: its last epoch's training MSE stands for sigma^2 (the
    Gaussian maximum-likelihood noise of its mean; for an ensemble, its first member's)."""
    source = _draw_source(spec, stored_fit, n_inputs)
    return NoisyDraws(source, get_likelihood(spec.hypothesis), spec.method_object.noise(spec, stored_fit))


def _split(spec: ModelSpec, stored_fit: dict, dataset, device: str = "cpu") -> dict:
    x, _, eras = dataset.arrays("validation", [dataset.roles.main])
    split = split_variance(noisy_draws(spec, stored_fit, x.shape[1]), _tensor(x), eras, dataset.validation.index,
                           max(spec.hidden, default=1), device)
    return {"ids": np.asarray(split.ids, dtype=str), "eras": np.asarray(split.eras, dtype=str), "mean": split.mean,
            "epistemic": split.epistemic, "aleatoric": split.aleatoric}


def evaluate_variance_split(spec: ModelSpec, dataset, cache: Cache, force: bool = False,
                            device: str = "cpu") -> VarianceSplit:
    """The model's predictive variance on the validation rows split into epistemic and aleatoric
    parts (`predictive.split_variance`), from its cached fit (fitted first if missing), cached
    under the key of its scores."""
    environment = device_environment(device)
    stored_fit = fit_model(spec, dataset, cache, progress=False, device=device)
    value, _ = cache.get_or_compute("variance_split", spec.score_spec(), dataset.fingerprint,
                                    lambda: single_threaded(_split, spec, stored_fit, dataset, device), force=force,
                                    environment=environment)
    return VarianceSplit(pd.Index(value["ids"], name="id"), value["eras"], value["mean"], value["epistemic"],
                         value["aleatoric"])


T = TypeVar("T")


def is_scored(spec: ModelSpec, fingerprint: str, cache: Cache, device: str = "cpu") -> bool:
    """Whether `evaluate_model` would find this model's scores in the cache: the one place that
    keys them (spec, data and device) for a lookup without reading."""
    return cache.contains("scores", spec.score_spec(), fingerprint, device_environment(device))


def single_threaded(fn: Callable[..., T], *args) -> T:
    """fn(*args) on one torch thread. A matrix product whose sums are split over threads rounds
    differently, and over thousands of SVI steps that moved the scores by ~1e-4: with one thread
    per fit and scoring, the numbers do not depend on --jobs, the executor or the machine's cores.
    Parallelism comes from running jobs side by side (one 1-thread worker per core,
    `executor.default_jobs`, was the faster use of the 2-core machine anyway)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def is_fitted(spec: ModelSpec, fingerprint: str, cache: Cache, device: str = "cpu") -> bool:
    """Whether this model's fit is in the cache (keyed like `is_scored`)."""
    return cache.contains("fit", spec.fit_spec(), fingerprint, device_environment(device))


def fit_model(spec: ModelSpec, dataset, cache: Cache, force: bool = False, progress: bool | None = None,
              device: str = "cpu") -> dict:
    """Fit (or load) one model on `device`: what the cache stores for it."""
    stored_fit, _ = cache.get_or_compute("fit", spec.fit_spec(), dataset.fingerprint,
                                     lambda: single_threaded(_fit, spec, dataset, progress, device), force=force,
                                     environment=device_environment(device))
    return stored_fit


def evaluate_model(spec: ModelSpec, dataset, cache: Cache, force: bool = False,
                   progress: bool | None = None, refit: bool | None = None, device: str = "cpu",
                   read_ranges: bool | None = None) -> ModelResult:
    """Fit (or load) and score (or load) one model on `device`; `force` recomputes both, `refit`
    (default: `force`) says whether that includes the fit, which models sharing one fit redo once.
    Ranges of draws a cluster scored into the cache are combined, not rescored, unless `force`
    (`read_ranges` overrides: the warm-up reads the ranges it has just forced)."""
    refit = force if refit is None else refit
    read_ranges = not force if read_ranges is None else read_ranges
    environment = device_environment(device)
    stored_fit = fit_model(spec, dataset, cache, refit, progress, device)
    scored, _ = cache.get_or_compute("scores", spec.score_spec(), dataset.fingerprint,
                                     lambda: single_threaded(_score, spec, stored_fit, dataset, progress, device,
                                                             cache if read_ranges else None),
                                     force=force,
                                     environment=environment)
    scores = DrawScores(pd.Index(scored["ids"], name="id"), scored["eras"], scored["ensemble"], scored["std"],
                        list(scored["era_names"]), scored["draw_corr"], scored["draw_numerai_corr"])
    history = spec.method_object.history(spec, stored_fit)
    arch, _ = _architecture(spec, len(dataset.features))
    return ModelResult(spec, scores, scored["per_era"], history, spec.method_object.extras(spec, stored_fit, arch))


def fitted_posterior(spec: ModelSpec, dataset, cache: Cache, device: str = "cpu") -> Posterior:
    """A BNN's fitted mean-field posterior on `device`'s key, from the cache (fitted first if missing)."""
    if not spec.has_posterior:
        raise BnnlibError(f"{spec.name!r} is a {spec.method} model; only a BNN has a posterior")
    stored_fit, _ = cache.get_or_compute("fit", spec.fit_spec(), dataset.fingerprint,
                                     lambda: single_threaded(_fit, spec, dataset, False, device),
                                     environment=device_environment(device))
    return spec.method_object.posterior(spec, stored_fit, *_architecture(spec, len(dataset.features)))


def fit_groups(specs: list[ModelSpec]) -> list[list[ModelSpec]]:
    """The specs grouped by the fit they share (a baseline and its best-epoch reference), in
    order: one job per group fits once, so two workers never compute the same fit."""
    groups: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        groups.setdefault(canonical_json(spec.fit_spec()), []).append(spec)
    return list(groups.values())


def evaluate_group(group: list[ModelSpec], dataset, cache: Cache, force: bool = False,
                   progress: bool | None = None, device: str = "cpu") -> list[ModelResult]:
    """Models that share one fit: fitted (with `force`, refitted) once, each scored."""
    return [evaluate_model(spec, dataset, cache, force, progress, refit=force and i == 0, device=device)
            for i, spec in enumerate(group)]


def _evaluate_job(job: tuple) -> tuple[list[ModelResult], list]:
    group, dataset, cache_root, force, device = job
    cache = Cache(cache_root)
    return evaluate_group(group, dataset, cache, force, progress=False, device=device), cache.events


def evaluate_models(specs: list[ModelSpec], dataset, cache: Cache, force: bool = False,
                    jobs: int = 1, executor: Executor | None = None, device: str = "cpu") -> dict[str, ModelResult]:
    """Evaluate several models, in-process, in `jobs` local processes, or through `executor`
    (e.g. a Dask cluster's), on `device` (auto | cpu | cuda | cuda:N, resolved once here); keyed
    by spec name. Groups whose scores are all cached are read here: starting workers only to
    read the cache would cost more than reading it."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise BnnlibError(f"model names must be unique, got {names}")
    device = str(resolve_device(device))
    groups = fit_groups(specs)
    if jobs <= 1 and executor is None:
        outputs = [(evaluate_group(group, dataset, cache, force, device=device), []) for group in groups]
    else:
        outputs = [None if force or not all(is_scored(s, dataset.fingerprint, cache, device) for s in g)
                   else (evaluate_group(g, dataset, cache, device=device), []) for g in groups]
        todo = [i for i, output in enumerate(outputs) if output is None]
        if todo:
            remote = (executor or make_executor(jobs)).map(
                _evaluate_job, [(groups[i], dataset, cache.root, force, device) for i in todo])
            for i, output in zip(todo, remote):
                outputs[i] = output
    results = {}
    for group, (group_results, events) in zip(groups, outputs):
        cache.events.extend(events)
        results.update((spec.name, result) for spec, result in zip(group, group_results))
    return {name: results[name] for name in names}
