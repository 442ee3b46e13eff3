"""A chapter's own fits, reported as each finishes (when it fits outside the warm-up: --jobs 1).

`evaluate_models` returns when every model is done, and a chapter's kernel prints into its
notebook, not to the terminal. `evaluate_reported` evaluates the models one fit group at a time
(in this process, as `evaluate_models` does with one job anyway) and, after each, emits a
"chapter_fit" event (`bnnlib.infra.progress`) with the model's name, what its fit cost when it
was computed, whether it came from the cache, and its convergence verdict; the runner prints it.
With several jobs or a cluster the models are evaluated together as before (the runner's
warm-up has computed them: the chapter reads the cache) and reported when they return.
"""

from __future__ import annotations

from bnnlib.errors import BnnlibError
from bnnlib.evaluate.convergence import judge
from bnnlib.evaluate.study import evaluate_models, fit_groups
from bnnlib.infra.cache import Cache, cache_key
from bnnlib.infra.executor import Executor
from bnnlib.infra.progress import emit
from bnnlib.models.device import device_environment, resolve_device


def _report(chapter: str, results: dict, events: list, done: int, total: int, fingerprint: str,
            device: str) -> None:
    """Emit one event per model of a finished group, with its fit's first lookup in `events`."""
    fits: dict = {}
    for event in events:
        if event.kind == "fit":
            fits.setdefault(event.key, event)
    environment = device_environment(device)
    for name, result in results.items():
        fit = fits.get(cache_key(result.spec.fit_spec(), fingerprint, "fit", environment))
        verdict = judge(result.history).verdict if result.spec.has_posterior else ""
        emit("chapter_fit", chapter=chapter, name=name, done=done, total=total, verdict=verdict,
             seconds=fit.seconds if fit is not None else None, cached=bool(fit.hit) if fit is not None else None)


def evaluate_reported(chapter: str, specs: list, dataset, cache: Cache, force: bool = False, jobs: int = 1,
                      executor: Executor | None = None, device: str = "cpu") -> dict:
    """`evaluate_models` with a progress event per finished fit group (see the module's text)."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise BnnlibError(f"model names must be unique, got {names}")
    device = str(resolve_device(device))
    groups = fit_groups(specs)
    fingerprint = dataset.fingerprint
    if jobs > 1 or executor is not None:
        before = len(cache.events)
        fitted = evaluate_models(specs, dataset, cache, force, jobs, executor, device)
        for done, group in enumerate(groups, 1):
            _report(chapter, {s.name: fitted[s.name] for s in group}, cache.events[before:], done, len(groups),
                    fingerprint, device)
        return fitted
    fitted = {}
    for done, group in enumerate(groups, 1):
        before = len(cache.events)
        results = evaluate_models(group, dataset, cache, force, 1, None, device)
        _report(chapter, results, cache.events[before:], done, len(groups), fingerprint, device)
        fitted.update(results)
    return {s.name: fitted[s.name] for s in specs}
