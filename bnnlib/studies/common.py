"""What several studies share when they build their models: the training every model of a
chapter gets, where a BNN's guide starts, and one BNN of a chapter.

Each study module (`bnnlib.studies.<chapter>`) builds its `ModelSpec`s with these, and
`bnnlib.studies.book_models.CHAPTER_MODELS` points at the study modules, so they live below
both (a study module importing `book_models` back would be an import cycle).
"""

from __future__ import annotations

from collections.abc import Mapping

from bnnlib.models.bnn import initial_scale
from bnnlib.models.precision import resolve_precision
from bnnlib.models.priors import has_std
from bnnlib.evaluate.study import ModelSpec


def _training(params: Mapping) -> dict:
    """What every model of a chapter shares: the budget, the batch, the seed, the precision
    and the SVI settings (BNNs only)."""
    return dict(epochs=params["epochs"], batch_size=params["batch_size"], seed=params["seed"],
                steps=params.get("steps"),
                precision=resolve_precision(params.get("precision", "float32"), params.get("device", "cpu")),
                scale_lr=params.get("lr_bnn_scale"), estimator=params.get("estimator", "output"))


def guide_start(prior: str, params: Mapping, shrink: float = 1.0) -> dict:
    """Where a prior's guide starts: the chapter's `guide_init` and `init_scale` (divided by
    `shrink`). Under `guide_init: prior`, two guides start where the talk's does (He means, std
    0.01) instead: the improper flat prior's, which has no std to start from, and the linear
    model's (no hidden layer), whose every weight the data pin down: its posterior stds are ~1/1000
    of the prior's, further than the talk's budget of steps shrinks them from the prior (measured
    on the default data: 42% above the exact mean-field optimum after 17,730 steps, 7% from 0.01)."""
    chosen = params.get("guide_init", "he")
    start = chosen if has_std(prior) and len(params["hidden"]) > 0 else "he"
    scale = initial_scale(start, params.get("init_scale") if start == chosen else None)
    return dict(guide_init=start, init_scale=scale / shrink)


def _bnn(name: str, prior: str, params: Mapping, shrink: float = 1.0, **fields) -> ModelSpec:
    """One BNN of a chapter: its prior, the chapter's training and the prior's guide start."""
    settings = dict(method="bnn", prior=prior, hidden=tuple(params["hidden"]), lr=params["lr_bnn"],
                    lr_final=params.get("lr_bnn_final", 1.0), draws=params["draws"], **_training(params), **guide_start(prior, params, shrink))
    return ModelSpec(name, **{**settings, **fields})


def _budget(params: Mapping, factor: int) -> dict:
    """The chapter's budget, `factor` times over: in steps where it is set, else in epochs."""
    if params.get("steps"):
        return {"steps": int(params["steps"]) * factor}
    return {"epochs": int(params["epochs"]) * factor}
