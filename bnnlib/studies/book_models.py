"""The models each chapter of the book compares, as a function of the chapter's parameters.

A chapter builds its `ModelSpec`s with its study module's `models` (`bnnlib.studies.<chapter>`),
and the runner calls the same function before executing any chapter, to fit and score the models
of every chapter in one pool of workers (`bnnlib.build.warmup`); the chapters then read them from
the cache. One definition serves both, so the runner warms exactly the models a chapter will ask for.

Each `models` takes the chapter's parameters (a mapping of the names its parameters cell
declares) and returns its specs in the order the chapter shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bnnlib.evaluate.study import ModelSpec
from bnnlib.studies import architecture, burn_eras, ensembles, target_hypotheses, uncertainty


CHAPTER_MODELS: dict[str, Callable[[Mapping], list[ModelSpec]]] = {
    "ensembles": ensembles.models,
    "burn_eras": burn_eras.models,
    "target_hypotheses": target_hypotheses.models,
    "architecture": architecture.models,
    "uncertainty": uncertainty.models,
}
"""Chapter name -> its models. A chapter not listed (the data chapter) fits nothing."""
