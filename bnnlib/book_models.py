"""The models each chapter of the book compares, as a function of the chapter's parameters.

A chapter builds its `ModelSpec`s here, and the runner calls the same function before executing
any chapter, to fit and score the models of every chapter in one pool of workers
(`bnnlib.prefit`); the chapters then read them from the cache. One definition serves both, so
the runner warms exactly the models a chapter will ask for.

Each function takes the chapter's parameters (a mapping of the names its parameters cell
declares) and returns its specs in the order the chapter shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bnnlib.errors import BnnlibError
from bnnlib.models.precision import resolve_precision
from bnnlib.models.priors import canonical_prior
from bnnlib.study import ModelSpec


def _training(params: Mapping) -> dict:
    """What every model of a chapter shares: the budget, the batch, the seed, the precision
    (point networks ignore it) and the guide's initial scale (BNNs only)."""
    return dict(epochs=params["epochs"], batch_size=params["batch_size"], seed=params["seed"],
                steps=params.get("steps"),
                precision=resolve_precision(params.get("precision", "float32"), params.get("device", "cpu")),
                init_scale=params.get("init_scale", 1e-2), scale_lr=params.get("lr_bnn_scale"),
                estimator=params.get("estimator", "output"))


def init_check_name(prior: str) -> str:
    """Study 1's refit of a prior's BNN from a smaller initial guide scale."""
    return f"{canonical_prior(prior)}_small_init"


PRECISION_CHECK = "normal_float32"
"""Study 1's Normal-prior BNN fitted and scored in float32, beside the chapter's precision."""

FROM_PRIOR = "normal_from_prior"
"""Study 1's Normal-prior BNN with its guide started at the prior (zero means, the prior's stds),
where the weights the data cannot pay for end: the other end of the road from the talk's start."""

WIDE_CONTROL = "wide"
"""Study 1's BNN under a proper Normal prior ten times wider than He's, beside the improper flat
prior (`priors.WIDE`): as vague as the flat prior where the data decide, but with a posterior."""


def ensembles(params: Mapping) -> list[ModelSpec]:
    """Study 1: the baseline; the baseline with the BNN's optimiser settings (a matched-budget
    control); one BNN per prior; each BNN again from a ten times smaller initial guide scale
    (init-invariance); beside the flat prior, a wide proper prior; the Normal BNN from a guide
    started at the prior; the Normal BNN in float32 when the chapter runs in bf16 (the precision
    check); and the baseline scored at its best epoch."""
    training = _training(params)
    common = dict(hidden=tuple(params["hidden"]), **training)
    bnn = dict(method="bnn", lr=params["lr_bnn"], draws=params["draws"], **common)
    specs = [
        ModelSpec("baseline", method="baseline", lr=params["lr_baseline"], **common),
        ModelSpec("baseline_bnn_lr", method="baseline", lr=params["lr_bnn"], **common),
        *[ModelSpec(canonical_prior(p), prior=p, **bnn) for p in params["priors"]],
        *[ModelSpec(init_check_name(p), prior=p, **{**bnn, "init_scale": params["small_init_scale"]})
          for p in params["priors"]],
    ]
    if "flat" in map(canonical_prior, params["priors"]):
        specs.append(ModelSpec(WIDE_CONTROL, prior="wide", **bnn))
    if "normal" in map(canonical_prior, params["priors"]):
        specs.append(ModelSpec(FROM_PRIOR, prior="normal", guide_init="prior", **bnn))
    if resolve_precision(training["precision"]) != "float32" and "normal" in map(canonical_prior, params["priors"]):
        specs.append(ModelSpec(PRECISION_CHECK, prior="normal", **{**bnn, "precision": "float32"}))
    specs.append(ModelSpec("baseline_best_epoch", method="baseline", lr=params["lr_baseline"], best_epoch=True,
                           **common))
    return specs


def burn_eras(params: Mapping) -> list[ModelSpec]:
    """Study 2: study 1's BNNs (the same settings give the same cache entries)."""
    return [ModelSpec(canonical_prior(p), method="bnn", prior=p, hidden=tuple(params["hidden"]),
                      lr=params["lr_bnn"], draws=params["draws"], **_training(params))
            for p in params["priors"]]


def target_hypotheses(params: Mapping) -> list[ModelSpec]:
    """Study 3: H1-H4 under each prior, then study 1's one-target BNNs (named `single_<prior>`)."""
    common = dict(method="bnn", hidden=tuple(params["hidden"]), lr=params["lr_bnn"], draws=params["draws"],
                  **_training(params))
    priors = [canonical_prior(p) for p in params["priors"]]
    return [ModelSpec(f"{h}_{p}", prior=p, hypothesis=h, **common)
            for h in [*params["hypotheses"], "single"] for p in priors]


def architecture(params: Mapping) -> list[ModelSpec]:
    """The appendix: per depth, the baseline (`baseline_<depth>`) and a BNN per prior (`<prior>_<depth>`)."""
    depths = [len(h) for h in params["architectures"]]
    if len(set(depths)) != len(depths):
        raise BnnlibError(f"architectures {params['architectures']} repeat a number of hidden layers; give one "
                          "per depth, e.g. [[], [128], [128, 64], [128, 64, 64]]")
    priors = [canonical_prior(p) for p in params["priors"]]
    specs = []
    for hidden in params["architectures"]:
        depth, common = len(hidden), dict(hidden=tuple(hidden), **_training(params))
        specs.append(ModelSpec(f"baseline_{depth}", method="baseline", lr=params["lr_baseline"], **common))
        specs += [ModelSpec(f"{p}_{depth}", method="bnn", prior=p, lr=params["lr_bnn"], draws=params["draws"], **common)
                  for p in priors]
    return specs


CHAPTER_MODELS: dict[str, Callable[[Mapping], list[ModelSpec]]] = {
    "ensembles": ensembles,
    "burn_eras": burn_eras,
    "target_hypotheses": target_hypotheses,
    "architecture": architecture,
}
"""Chapter name -> its models. A chapter not listed (the data chapter) fits nothing."""
