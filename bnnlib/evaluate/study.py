"""From a model's specification to its scored validation predictions, cached.

A chapter names the models it compares as `ModelSpec`s and calls `evaluate_models`; each model
is fitted (or read from the cache), its S draws are predicted and scored on the validation set
(or read from the cache), and a `ModelResult` comes back with everything the studies need. Fits
are independent jobs, run through an executor (in-process, or local processes with jobs > 1),
on a `device` (bnnlib.models.device) that keys the cache beside the specification.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bnnlib.infra.cache import Cache, canonical_json
from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.infra.executor import Executor, make_executor
from bnnlib.scoring.metrics import era_corr, era_numerai_corr, score_summary
from bnnlib.models.baseline import PointFit, TrainConfig, train_mlp
from bnnlib.models.bnn import ESTIMATORS, Posterior, SVIConfig, fit_bnn, initial_scale
from bnnlib.models.device import device_environment, resolve_device
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import TALK_HIDDEN, Architecture, forward, unflatten
from bnnlib.models.precision import autocast, compute_dtype, resolve_precision
from bnnlib.models.priors import canonical_prior
from bnnlib.evaluate.predictive import (DrawScores, DropoutDraws, NoisyDraws, PartialScores, ThetaDraws, VarianceSplit,
                               combine_partials, draw_ranges, score_draw_range, split_variance)

METHODS = ("baseline", "bnn", "dropout", "ensemble")
POINT_HYPOTHESES = ("single", "hetero")
"""The likelihoods a point network (baseline, dropout, ensemble) trains with: MSE, or the
heteroscedastic Gaussian NLL; the multi-target hypotheses are the BNN's."""
_FIT_FIELDS = ("method", "hypothesis", "hidden", "epochs", "batch_size", "lr", "seed", "steps", "precision",
               "lr_final")
"""The fields every method's fit reads."""
_METHOD_FIT_FIELDS = {"baseline": (), "bnn": ("prior", "init_scale", "scale_lr", "estimator", "guide_init"),
                      "dropout": ("dropout",), "ensemble": ("members",)}
"""The fields only one method's fit reads: a fit's cache key holds no field its method ignores,
so two specs that differ only there share one fit."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines one model of a study; equal specs share fits and scores."""

    name: str
    method: str = "bnn"  # baseline | bnn | dropout | ensemble
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

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise unknown_name("method", self.method, METHODS)
        if self.method == "bnn":
            object.__setattr__(self, "prior", canonical_prior(self.prior or "flat"))
            get_likelihood(self.hypothesis)
        elif self.hypothesis not in POINT_HYPOTHESES:
            raise BnnlibError(f"model {self.name!r}: a {self.method} network trains with hypothesis "
                              f"{' or '.join(map(repr, POINT_HYPOTHESES))}, not {self.hypothesis!r}; "
                              "the multi-target hypotheses are the BNN's")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for name in ("epochs", "batch_size", "draws", "members"):
            if int(getattr(self, name)) < 1:
                raise BnnlibError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.method == "dropout" and not 0 < self.dropout < 1:
            raise BnnlibError(f"model {self.name!r}: the dropout rate must lie strictly between 0 and 1, "
                              f"got {self.dropout!r}")
        if not 0 < self.lr_final <= 1:
            raise BnnlibError(f"lr_final must be in (0, 1] (1: a constant lr), got {self.lr_final!r}")
        if self.steps is not None and (int(self.steps) != self.steps or self.steps < 1):
            raise BnnlibError(f"steps must be a positive integer or None (use epochs), got {self.steps!r}")
        # a concrete precision keys the cache; point networks have no guide, so the guide's
        # settings do not split their cache entries
        object.__setattr__(self, "precision", resolve_precision(self.precision))
        if self.method == "bnn":
            if self.estimator not in ESTIMATORS:
                raise unknown_name("ELBO estimator", self.estimator, ESTIMATORS)
            object.__setattr__(self, "init_scale", initial_scale(self.guide_init, self.init_scale))
            if self.guide_init == "prior" and self.prior == "flat":
                raise BnnlibError(f"model {self.name!r}: the flat prior has no std to start the guide from; "
                                  "use guide_init 'he'")
        else:
            for name in ("init_scale", "scale_lr", "estimator", "guide_init"):
                object.__setattr__(self, name, ModelSpec.__dataclass_fields__[name].default)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.method == "bnn" else 1e-2)

    def fit_spec(self) -> dict:
        """The fields that decide the fit: those its method reads (not how many draws are
        scored, nor the label)."""
        spec = {name: getattr(self, name) for name in (*_FIT_FIELDS, *_METHOD_FIT_FIELDS[self.method])}
        spec["lr"] = self.learning_rate
        return spec

    def score_spec(self) -> dict:
        """The fit's fields, the number of draws scored and, for the baseline, which epoch."""
        spec = {**self.fit_spec(), "draws": self.n_draws}
        if self.method == "baseline":
            spec["best_epoch"] = self.best_epoch
        return spec

    @property
    def n_draws(self) -> int:
        return {"baseline": 1, "ensemble": self.members}.get(self.method, self.draws)


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


def _fit(spec: ModelSpec, dataset, progress: bool | None, device: str = "cpu") -> dict:
    """Fit one model on `device`; returns what the cache stores (CPU tensors and a JSON history)."""
    likelihood = get_likelihood(spec.hypothesis)
    x, y, _ = dataset.arrays("train", _targets(dataset, likelihood))
    x, y = _tensor(x), _tensor(y)
    arch = Architecture(x.shape[1], spec.hidden, likelihood.n_outputs)
    validation_corr = _validation_corr(dataset, arch, likelihood, spec.precision, device)
    if spec.method == "bnn":
        config = SVIConfig(spec.epochs, spec.batch_size, spec.learning_rate, spec.init_scale, None, spec.seed,
                           steps=spec.steps, precision=spec.precision, scale_lr=spec.scale_lr,
                           estimator=spec.estimator, guide_init=spec.guide_init, lr_final_ratio=spec.lr_final)
        post = fit_bnn(x, y, arch, likelihood, spec.prior, config, progress, evaluate=validation_corr, device=device)
        return {"loc": post.loc, "scale": post.scale, "sigma": post.sigma, "history": post.history}

    seeds = [spec.seed + m for m in range(spec.members)] if spec.method == "ensemble" else [spec.seed]
    dropout = spec.dropout if spec.method == "dropout" else 0.0
    fits: list[PointFit] = []
    for seed in seeds:
        config = TrainConfig(spec.epochs, spec.batch_size, spec.learning_rate, dropout, seed, steps=spec.steps,
                             lr_final_ratio=spec.lr_final, heteroscedastic=likelihood.heteroscedastic,
                             precision=spec.precision)
        evaluate = validation_corr if spec.method == "baseline" else None
        fits.append(train_mlp(x, y[:, 0], arch, config, evaluate, progress, device=device))
    best = fits[0].best_theta if fits[0].best_theta is not None else fits[0].theta
    fitted = {
        "thetas": torch.stack([f.theta for f in fits]),
        "best_theta": best,
        "history": {**fits[0].history, "best_epoch": fits[0].best_epoch},
    }
    if likelihood.heteroscedastic:  # each network's learned noise scale [members, 1]
        fitted["sigmas"] = torch.stack([f.sigma for f in fits])
    return fitted


def _draw_source(spec: ModelSpec, fitted: dict, n_inputs: int):
    likelihood = get_likelihood(spec.hypothesis)
    arch = Architecture(n_inputs, spec.hidden, likelihood.n_outputs)
    if spec.method == "bnn":
        posterior = Posterior(fitted["loc"], fitted["scale"], fitted["sigma"], arch, likelihood)
        generator = torch.Generator().manual_seed(spec.seed + 10_000)
        return ThetaDraws(posterior.sample(spec.draws, generator), arch, likelihood, spec.precision)
    if spec.method == "dropout":
        return DropoutDraws(fitted["thetas"][0], arch, spec.dropout, spec.draws, spec.seed)
    if spec.best_epoch:
        return ThetaDraws(fitted["best_theta"].unsqueeze(0), arch, likelihood, spec.precision)
    return ThetaDraws(fitted["thetas"], arch, likelihood, spec.precision)


def range_spec(spec: ModelSpec, draws: tuple[int, int]) -> dict:
    """The cache spec of one range of a model's draws (`bnnlib.evaluate.predictive.DRAW_RANGE`)."""
    return {**spec.score_spec(), "draw_range": list(draws)}


def _score_range(spec: ModelSpec, fitted: dict, dataset, draws: tuple[int, int], progress: bool | None,
                 device: str) -> PartialScores:
    x, y, eras = dataset.arrays("validation", [dataset.roles.main])
    source = _draw_source(spec, fitted, x.shape[1])
    return score_draw_range(source, _tensor(x), y[:, 0], eras, draws, max(spec.hidden, default=1), progress, device)


def score_range(spec: ModelSpec, draws: tuple[int, int], dataset, cache: Cache, device: str = "cpu",
                force: bool = False) -> None:
    """Score one range of a model's draws into the cache, from its cached fit: a unit of work a
    cluster's worker can take (the fit must be cached first: this never fits)."""
    environment = device_environment(device)
    fitted = cache.stored("fit", spec.fit_spec(), dataset.fingerprint, environment)
    if fitted is None:
        raise BnnlibError(f"{spec.name!r} is not fitted in {cache.root}; fit it before scoring its draws {draws}")
    cache.get_or_compute("score_range", range_spec(spec, draws), dataset.fingerprint,
                         lambda: single_threaded(_score_range, spec, fitted, dataset, draws, False, device).as_dict(),
                         force=force, environment=environment)


def _score(spec: ModelSpec, fitted: dict, dataset, progress: bool | None, device: str = "cpu",
           cache: Cache | None = None) -> dict:
    """Score every draw: ranges a cluster already scored come from the cache, the rest here."""
    x, y, eras = dataset.arrays("validation", [dataset.roles.main])
    environment = device_environment(device)
    partials = []
    for draws in draw_ranges(spec.n_draws):
        stored = None if cache is None else cache.stored("score_range", range_spec(spec, draws),
                                                         dataset.fingerprint, environment)
        partials.append(PartialScores.from_dict(stored) if stored is not None
                        else _score_range(spec, fitted, dataset, draws, progress, device))
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


def noisy_draws(spec: ModelSpec, fitted: dict, n_inputs: int) -> NoisyDraws:
    """The model's draws with their noise, for `predictive.split_variance`: a BNN's learned sigma;
    a heteroscedastic point network's own scale (one per ensemble member). An MSE-trained network
    learns no noise: its last epoch's training MSE stands for sigma^2 (the Gaussian maximum-
    likelihood noise of its mean; for an ensemble, its first member's)."""
    source = _draw_source(spec, fitted, n_inputs)
    if spec.method == "bnn":
        sigma = fitted["sigma"]
    elif "sigmas" in fitted:
        sigma = fitted["sigmas"] if spec.method == "ensemble" else fitted["sigmas"][0]
    else:
        sigma = torch.tensor([math.sqrt(fitted["history"]["train_mse"][-1])])
    return NoisyDraws(source, get_likelihood(spec.hypothesis), sigma)


def _split(spec: ModelSpec, fitted: dict, dataset, device: str = "cpu") -> dict:
    x, _, eras = dataset.arrays("validation", [dataset.roles.main])
    split = split_variance(noisy_draws(spec, fitted, x.shape[1]), _tensor(x), eras, dataset.validation.index,
                           max(spec.hidden, default=1), device)
    return {"ids": np.asarray(split.ids, dtype=str), "eras": np.asarray(split.eras, dtype=str), "mean": split.mean,
            "epistemic": split.epistemic, "aleatoric": split.aleatoric}


def evaluate_variance_split(spec: ModelSpec, dataset, cache: Cache, force: bool = False,
                            device: str = "cpu") -> VarianceSplit:
    """The model's predictive variance on the validation rows split into epistemic and aleatoric
    parts (`predictive.split_variance`), from its cached fit (fitted first if missing), cached
    under the key of its scores."""
    environment = device_environment(device)
    fitted = fit_model(spec, dataset, cache, progress=False, device=device)
    value, _ = cache.get_or_compute("variance_split", spec.score_spec(), dataset.fingerprint,
                                    lambda: single_threaded(_split, spec, fitted, dataset, device), force=force,
                                    environment=environment)
    return VarianceSplit(pd.Index(value["ids"], name="id"), value["eras"], value["mean"], value["epistemic"],
                         value["aleatoric"])


def _extras(spec: ModelSpec, fitted: dict, n_inputs: int) -> dict:
    extras: dict = {}
    if spec.method == "baseline":
        extras["best_epoch"] = fitted["history"].get("best_epoch")
    if spec.method == "bnn":  # the guide's std over the network's parameters, at the end of the fit
        arch = Architecture(n_inputs, spec.hidden, get_likelihood(spec.hypothesis).n_outputs)
        levels = torch.tensor([0.1, 0.5, 0.9])
        p10, p50, p90 = torch.quantile(fitted["scale"][: arch.n_params], levels).tolist()
        extras.update(scale_p10=p10, scale_p50=p50, scale_p90=p90)
    if spec.method == "bnn" and spec.hypothesis == "h4":
        arch = Architecture(n_inputs, spec.hidden, 2)
        i = arch.n_params
        extras["beta_mean"] = float(fitted["loc"][i])
        extras["beta_std"] = float(fitted["scale"][i])
    return extras


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
    fitted, _ = cache.get_or_compute("fit", spec.fit_spec(), dataset.fingerprint,
                                     lambda: single_threaded(_fit, spec, dataset, progress, device), force=force,
                                     environment=device_environment(device))
    return fitted


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
    fitted = fit_model(spec, dataset, cache, refit, progress, device)
    scored, _ = cache.get_or_compute("scores", spec.score_spec(), dataset.fingerprint,
                                     lambda: single_threaded(_score, spec, fitted, dataset, progress, device,
                                                             cache if read_ranges else None),
                                     force=force,
                                     environment=environment)
    scores = DrawScores(pd.Index(scored["ids"], name="id"), scored["eras"], scored["ensemble"], scored["std"],
                        list(scored["era_names"]), scored["draw_corr"], scored["draw_numerai_corr"])
    history = {k: v for k, v in fitted["history"].items()}
    return ModelResult(spec, scores, scored["per_era"], history, _extras(spec, fitted, len(dataset.features)))


def fitted_posterior(spec: ModelSpec, dataset, cache: Cache, device: str = "cpu") -> Posterior:
    """A BNN's fitted mean-field posterior on `device`'s key, from the cache (fitted first if missing)."""
    if spec.method != "bnn":
        raise BnnlibError(f"{spec.name!r} is a {spec.method} model; only a BNN has a posterior")
    fitted, _ = cache.get_or_compute("fit", spec.fit_spec(), dataset.fingerprint,
                                     lambda: single_threaded(_fit, spec, dataset, False, device),
                                     environment=device_environment(device))
    likelihood = get_likelihood(spec.hypothesis)
    arch = Architecture(len(dataset.features), spec.hidden, likelihood.n_outputs)
    return Posterior(fitted["loc"], fitted["scale"], fitted["sigma"], arch, likelihood, fitted["history"])


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
