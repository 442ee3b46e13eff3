"""One object per way of fitting a model: the baseline MLP, the BNN, MC dropout, a deep ensemble,
a Laplace posterior of the baseline's network.

Every model runs through one pipeline (`bnnlib.evaluate.study`): fit (cached), draws, scores
(cached). What differs by method is asked of the spec's `Method` (`ModelSpec.method_object`,
an entry of `METHODS`): the fields its fit reads (its cache key), its default lr, how many draws
it scores, how it fits and what the cache stores of the fit, its draws, its noise, the extra
numbers a result carries, and for the cost counts how many networks it trains. A new method is
one more class registered in `METHODS`; the pipeline does not change.

`spec` below is a `study.ModelSpec` and `fitted` what the method's own `fit` returned (as the
cache gives it back); this module does not import study.py, which imports it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch

from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.models.baseline import PointFit, TrainConfig, train_mlp
from bnnlib.models.bnn import ESTIMATORS, Posterior, SVIConfig, fit_bnn, initial_scale
from bnnlib.models.likelihoods import Likelihood, get_likelihood
from bnnlib.models.network import Architecture
from bnnlib.models.priors import canonical_prior
from bnnlib.evaluate.convergence import judge
from bnnlib.evaluate.laplace import SUBSETS as LAPLACE_SUBSETS, fit_laplace, laplace_draws
from bnnlib.evaluate.predictive import DropoutDraws, ThetaDraws

POINT_HYPOTHESES = ("single", "hetero")
"""The likelihoods a point network (baseline, dropout, ensemble) trains with: MSE, or the
heteroscedastic Gaussian NLL; the multi-target hypotheses are the BNN's."""
GUIDE_FIELDS = ("init_scale", "scale_lr", "estimator", "guide_init", "continue_steps", "snapshot", "average")
"""The BNN guide's settings: a point network has no guide, so they are reset to their defaults
there and do not split its cache entries."""


class Method:
    """What the pipeline asks of a method; a subclass overrides `fit`, `draws` and `noise`."""

    name: str = ""
    fit_fields: tuple[str, ...] = ()
    """The spec's fields its fit reads beyond the common ones: its fit key holds no other, so two
    specs that differ only in a field it ignores share one fit."""
    score_fields: tuple[str, ...] = ()
    """The spec's fields its scoring reads beyond the fit's and the number of draws."""
    default_lr: float = 1e-2
    """The lr when the spec gives none."""
    has_posterior: bool = False
    """Whether the fit is a posterior over the weights (`study.fitted_posterior`, ELBO traces)."""

    def check(self, spec: Any) -> dict[str, Any]:
        """Raise on a field of the spec this method refuses; return the fields it normalises."""
        return {}

    def n_draws(self, spec: Any) -> int:
        """The draws its predictive scores."""
        return spec.draws

    def networks(self, spec: Any) -> int:
        """The networks its fit trains (a cost count)."""
        return 1

    def fit(self, spec: Any, x: torch.Tensor, y: torch.Tensor, arch: Architecture, likelihood: Likelihood,
            validation_corr: Callable[[torch.Tensor], float], progress: bool | None, device: str) -> dict:
        """Fit on the training rows x [n, features], y [n, targets]: what the cache stores (CPU
        tensors and a JSON-able "history")."""
        raise NotImplementedError(f"the {self.name} method does not fit")

    def draws(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood):
        """The source of its predictive draws (`bnnlib.evaluate.predictive`)."""
        raise NotImplementedError(f"the {self.name} method has no draws")

    def noise(self, spec: Any, stored_fit: dict) -> torch.Tensor:
        """Its noise scale sigma, for the variance split (`study.noisy_draws`)."""
        raise NotImplementedError(f"the {self.name} method has no noise scale")

    def extras(self, spec: Any, stored_fit: dict, arch: Architecture) -> dict:
        """The numbers a result carries beyond its scores (`ModelResult.extras`)."""
        return {}

    def posterior(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood) -> Posterior:
        """The fitted posterior over the weights, where `has_posterior`."""
        raise NotImplementedError(f"the {self.name} method has no posterior")

    def history(self, spec: Any, stored_fit: dict) -> dict:
        """The trace a result carries (a copy: what the cache gave back is not changed)."""
        return dict(stored_fit["history"])


class PointNetwork(Method):
    """Networks fitted to a point by Adam (MSE, or the heteroscedastic NLL), one per seed
    spec.seed, spec.seed + 1, ... (`networks`)."""

    traces: bool = False
    """Whether its fit records the validation corr per epoch (and keeps the best epoch's weights)."""

    def check(self, spec: Any) -> dict[str, Any]:
        if spec.hypothesis not in POINT_HYPOTHESES:
            raise BnnlibError(f"model {spec.name!r}: a {self.name} network trains with hypothesis "
                              f"{' or '.join(map(repr, POINT_HYPOTHESES))}, not {spec.hypothesis!r}; "
                              "the multi-target hypotheses are the BNN's")
        defaults = {f.name: f.default for f in dataclasses.fields(spec)}
        return {name: defaults[name] for name in GUIDE_FIELDS}

    def rate(self, spec: Any) -> float:
        """The dropout rate it trains with."""
        return 0.0

    def fit(self, spec: Any, x: torch.Tensor, y: torch.Tensor, arch: Architecture, likelihood: Likelihood,
            validation_corr: Callable[[torch.Tensor], float], progress: bool | None, device: str) -> dict:
        fits: list[PointFit] = []
        for member in range(self.networks(spec)):
            config = TrainConfig(spec.epochs, spec.batch_size, spec.learning_rate, self.rate(spec), spec.seed + member,
                                 steps=spec.steps, lr_final_ratio=spec.lr_final,
                                 heteroscedastic=likelihood.heteroscedastic, precision=spec.precision)
            evaluate = validation_corr if self.traces else None
            fits.append(train_mlp(x, y[:, 0], arch, config, evaluate, progress, device=device))
        best = fits[0].best_theta if fits[0].best_theta is not None else fits[0].theta
        stored_fit = {
            "thetas": torch.stack([f.theta for f in fits]),
            "best_theta": best,
            "history": {**fits[0].history, "best_epoch": fits[0].best_epoch},
        }
        if likelihood.heteroscedastic:  # each network's learned noise scale [members, 1]
            stored_fit["sigmas"] = torch.stack([f.sigma for f in fits])
        return stored_fit

    def draws(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood):
        return ThetaDraws(stored_fit["thetas"], arch, likelihood, spec.precision)

    def noise(self, spec: Any, stored_fit: dict) -> torch.Tensor:
        """A heteroscedastic network's own scale. An MSE-trained network learns no noise: its
        last epoch's training MSE stands for sigma^2 (the Gaussian maximum-likelihood noise of
        its mean)."""
        if "sigmas" in stored_fit:
            return stored_fit["sigmas"][0]
        return torch.tensor([math.sqrt(stored_fit["history"]["train_mse"][-1])])


class Baseline(PointNetwork):
    """The Numerai starter's MLP: one network, one draw; `best_epoch` scores its best-validation
    epoch (the talk's reference) from the same fit."""

    name = "baseline"
    score_fields = ("best_epoch",)
    traces = True

    def n_draws(self, spec: Any) -> int:
        return 1

    def draws(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood):
        if spec.best_epoch:
            return ThetaDraws(stored_fit["best_theta"].unsqueeze(0), arch, likelihood, spec.precision)
        return super().draws(spec, stored_fit, arch, likelihood)

    def extras(self, spec: Any, stored_fit: dict, arch: Architecture) -> dict:
        return {"best_epoch": stored_fit["history"].get("best_epoch")}


class MCDropout(PointNetwork):
    """One network trained with dropout at `spec.dropout`; its draws keep dropout on."""

    name = "dropout"
    fit_fields = ("dropout",)

    def check(self, spec: Any) -> dict[str, Any]:
        fields = super().check(spec)
        if not 0 < spec.dropout < 1:
            raise BnnlibError(f"model {spec.name!r}: the dropout rate must lie strictly between 0 and 1, "
                              f"got {spec.dropout!r}")
        return fields

    def rate(self, spec: Any) -> float:
        return spec.dropout

    def draws(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood):
        return DropoutDraws(stored_fit["thetas"][0], arch, spec.dropout, spec.draws, spec.seed)


class DeepEnsemble(PointNetwork):
    """`spec.members` networks of consecutive seeds, one draw each."""

    name = "ensemble"
    fit_fields = ("members",)

    def n_draws(self, spec: Any) -> int:
        return spec.members

    def networks(self, spec: Any) -> int:
        return spec.members

    def noise(self, spec: Any, stored_fit: dict) -> torch.Tensor:
        """Each member's own scale where it learned one; else its first member's MSE noise."""
        return stored_fit["sigmas"] if "sigmas" in stored_fit else super().noise(spec, stored_fit)


SNAPSHOTS = {"A": "the end of the budget (for the book's trajectories: the talk's procedure, as the talk did it)",
             "B": "the end of the continuation: converged, or the cap reached (models.bnn.TRAJECTORY)"}


def snapshot_history(history: dict, snapshot: str) -> dict:
    """A trajectory's trace up to its snapshot: all of it for B; for A the records up to A
    (every per-record list cut there), and no averaging (A is the last iterate)."""
    records = history.get("snapshot_a_records")
    if snapshot == "B" or records is None:
        return dict(history)
    cut = {k: (v[:records] if isinstance(v, list) else v) for k, v in history.items()}
    cut["scale_quantiles"] = {k: v[:records] for k, v in history["scale_quantiles"].items()}
    cut["averaged_steps"], cut["stopped_at_step"] = 0, history.get("snapshot_a_stopped_at_step")
    return cut


def stop_continuation(history: dict) -> bool:
    """A trajectory's continuation ends once the convergence verdict is no longer 'still moving'."""
    return judge(history).verdict != "still moving"


class BNN(Method):
    """The Bayesian MLP: a mean-field Normal posterior fitted by SVI under `spec.prior`. With
    `continue_steps` > 0 the fit is a trajectory with two snapshots (`SNAPSHOTS`); `snapshot` picks
    the one drawn and scored, so it keys the scores, not the fit: A and B come from one fit."""

    name = "bnn"
    fit_fields = ("prior", "init_scale", "scale_lr", "estimator", "guide_init", "continue_steps", "average")
    score_fields = ("snapshot",)
    default_lr = 1e-3
    has_posterior = True

    def check(self, spec: Any) -> dict[str, Any]:
        prior = canonical_prior(spec.prior or "flat")
        get_likelihood(spec.hypothesis)
        if spec.estimator not in ESTIMATORS:
            raise unknown_name("ELBO estimator", spec.estimator, ESTIMATORS)
        scale = initial_scale(spec.guide_init, spec.init_scale)
        if spec.guide_init == "prior" and prior == "flat":
            raise BnnlibError(f"model {spec.name!r}: the flat prior has no std to start the guide from; "
                              "use guide_init 'he'")
        if spec.snapshot not in SNAPSHOTS:
            raise unknown_name("snapshot", spec.snapshot, SNAPSHOTS)
        if spec.snapshot == "B" and not spec.continue_steps:
            raise BnnlibError(f"model {spec.name!r}: snapshot B is the end of a continuation; give continue_steps > 0 "
                              "(the cap of steps after the budget) or score snapshot A")
        return {"prior": prior, "init_scale": scale}

    def fit(self, spec: Any, x: torch.Tensor, y: torch.Tensor, arch: Architecture, likelihood: Likelihood,
            validation_corr: Callable[[torch.Tensor], float], progress: bool | None, device: str) -> dict:
        config = SVIConfig(spec.epochs, spec.batch_size, spec.learning_rate, spec.init_scale, None, spec.seed,
                           steps=spec.steps, precision=spec.precision, scale_lr=spec.scale_lr,
                           estimator=spec.estimator, guide_init=spec.guide_init, lr_final_ratio=spec.lr_final,
                           continue_steps=spec.continue_steps, average=spec.average)
        post = fit_bnn(x, y, arch, likelihood, spec.prior, config, progress, evaluate=validation_corr, device=device,
                       stop=stop_continuation)
        stored_fit = {"loc": post.loc, "scale": post.scale, "sigma": post.sigma, "history": post.history}
        if post.snapshot_a is not None:
            a = post.snapshot_a
            stored_fit["snapshot_a"] = {"loc": a.loc, "scale": a.scale, "sigma": a.sigma}
        return stored_fit

    @staticmethod
    def guide(spec: Any, stored_fit: dict) -> dict:
        """The guide's loc, scale and sigma at the spec's snapshot (a fit without a continuation
        has one: its end, A)."""
        if spec.snapshot == "A" and "snapshot_a" in stored_fit:
            return stored_fit["snapshot_a"]
        return stored_fit

    def posterior(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood) -> Posterior:
        """The fitted mean-field posterior at the spec's snapshot."""
        guide = self.guide(spec, stored_fit)
        return Posterior(guide["loc"], guide["scale"], guide["sigma"], arch, likelihood,
                         self.history(spec, stored_fit))

    def history(self, spec: Any, stored_fit: dict) -> dict:
        return snapshot_history(stored_fit["history"], spec.snapshot)

    def draws(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood):
        generator = torch.Generator().manual_seed(spec.seed + 10_000)
        return ThetaDraws(self.posterior(spec, stored_fit, arch, likelihood).sample(spec.draws, generator), arch,
                          likelihood, spec.precision)

    def noise(self, spec: Any, stored_fit: dict) -> torch.Tensor:
        return self.guide(spec, stored_fit)["sigma"]

    def extras(self, spec: Any, stored_fit: dict, arch: Architecture) -> dict:
        """The guide's std over the network's parameters at the snapshot; h4's beta."""
        guide = self.guide(spec, stored_fit)
        p10, p50, p90 = torch.quantile(guide["scale"][: arch.n_params], torch.tensor([0.1, 0.5, 0.9])).tolist()
        extras = {"scale_p10": p10, "scale_p50": p50, "scale_p90": p90}
        if spec.hypothesis == "h4":
            extras.update(beta_mean=float(guide["loc"][arch.n_params]), beta_std=float(guide["scale"][arch.n_params]))
        return extras


class Laplace(PointNetwork):
    """A Laplace posterior of the baseline's network (`bnnlib.evaluate.laplace`): trained exactly
    as the baseline is (same fields, same code, so the same numbers), then one pass over the
    training rows gives the last-layer (exact, full covariance) and the all-weights (KFAC GGN)
    posteriors, each with its prior precision and noise at the evidence's maximum. Both live in
    one fit: `laplace_subset` picks which one is drawn and scored, so it keys the scores, not the
    fit (as the baseline's `best_epoch` does), and the two subsets train the network once.

    `spec.draws` parameter samples are scored (`ThetaDraws`), by the same code as every method;
    for the last layer the GLM predictive would be exact (the network is linear in those
    weights) and the samples' mean converges to it; for all weights the sampled network
    predictive is scored. It is not a `has_posterior` method: that flag means a mean-field SVI
    posterior with an ELBO trace (`study.fitted_posterior`, the fits table); its evidence is in
    `extras`."""

    name = "laplace"
    score_fields = ("laplace_subset",)
    traces = True

    def check(self, spec: Any) -> dict[str, Any]:
        fields = super().check(spec)
        if spec.hypothesis != "single":
            raise BnnlibError(f"model {spec.name!r}: a Laplace posterior is fitted for the 'single' hypothesis "
                              f"(one target, Gaussian noise), not {spec.hypothesis!r}")
        if spec.laplace_subset not in LAPLACE_SUBSETS:
            raise unknown_name("laplace_subset", spec.laplace_subset, LAPLACE_SUBSETS)
        return fields

    def fit(self, spec: Any, x: torch.Tensor, y: torch.Tensor, arch: Architecture, likelihood: Likelihood,
            validation_corr: Callable[[torch.Tensor], float], progress: bool | None, device: str) -> dict:
        stored_fit = super().fit(spec, x, y, arch, likelihood, validation_corr, progress, device)
        posteriors = fit_laplace(stored_fit["thetas"][0], arch, x, y, device)
        stored_fit["laplace"] = {subset: {k: v for k, v in part.items() if k != "summary"}
                                 for subset, part in posteriors.items()}
        stored_fit["history"]["laplace"] = {subset: part["summary"] for subset, part in posteriors.items()}
        return stored_fit

    def draws(self, spec: Any, stored_fit: dict, arch: Architecture, likelihood: Likelihood):
        stored = {subset: {**part, "summary": stored_fit["history"]["laplace"][subset]}
                  for subset, part in stored_fit["laplace"].items()}
        thetas = laplace_draws(stored_fit["thetas"][0], arch, stored, spec.laplace_subset, spec.draws,
                                       spec.seed + 10_000)
        return ThetaDraws(thetas, arch, likelihood, spec.precision)

    def noise(self, spec: Any, stored_fit: dict) -> torch.Tensor:
        """The noise scale at the evidence's maximum."""
        return torch.tensor([stored_fit["history"]["laplace"][spec.laplace_subset]["sigma_noise"]])

    def extras(self, spec: Any, stored_fit: dict, arch: Architecture) -> dict:
        """The subset's log marginal likelihood (nats, summed over the training rows, and per
        row for the ELBO ladder), its prior precision and noise."""
        summary = stored_fit["history"]["laplace"][spec.laplace_subset]
        return {"subset": spec.laplace_subset,
                "log_marginal_likelihood": summary["log_marginal_likelihood"],
                "log_marginal_likelihood_per_row": summary["log_marginal_likelihood"] / summary["rows"],
                "prior_precision": summary["prior_precision"], "sigma_noise": summary["sigma_noise"],
                "laplace_parameters": summary["parameters"]}


METHODS: dict[str, Method] = {m.name: m for m in (Baseline(), BNN(), MCDropout(), DeepEnsemble(), Laplace())}
"""The methods a `ModelSpec` can name, by name."""
