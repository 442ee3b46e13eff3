"""The run registry: every fit the book made, one row each, gathered from the chapters.

Each chapter that fits models writes `runs.csv` into its results folder when it closes
(`run_rows`): per model, its specification, the data's fingerprint, the device, the cache key
of its scores, its corr mean and Sharpe, what fitting and scoring it cost, its precision, the
convergence verdict of a Bayesian fit, and whether this chapter read it from the cache. The
book's last page concatenates the chapters' files (`collect`) into `_build/results/registry.csv`.
A row is read from the cache's own records (its lookups and their meta data), not measured
here, so a cached model shows what computing it cost when it was computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jupytext
import numpy as np
import pandas as pd

from bnnlib.evaluate.convergence import judge
from bnnlib.evaluate.fits import snapshot_label
from bnnlib.evaluate.predictive import draw_ranges
from bnnlib.evaluate.study import range_spec
from bnnlib.infra.cache import cache_key, canonical_json
from bnnlib.models.device import device_environment
from bnnlib.project import book as project

RUNS_FILE = "runs.csv"
REGISTRY_FILE = "registry.csv"
RUNS_OF = "runs_of"
"""The parameter that marks a page reading the other chapters' runs (the runner executes it last)."""

COLUMNS = ("chapter", "model", "method", "prior", "hypothesis", "hidden", "epochs", "steps", "draws", "seed",
           "precision", "guide_init", "spec", "data_fingerprint", "device", "cache_key", "fit_key", "snapshot", "corr_mean",
           "corr_sharpe", "numerai_corr_mean", "numerai_corr_sharpe", "elbo_per_row_last", "verdict",
           "converged", "fit_seconds", "score_seconds", "cached", "created")


def _first_events(events: Iterable[Any]) -> dict[str, Any]:
    """The first lookup of each cache key: it says whether the result was computed (a later
    lookup of a shared fit, e.g. a baseline's best-epoch reference, is always a hit)."""
    first: dict[str, Any] = {}
    for event in events:
        first.setdefault(event.key, event)
    return first


def model_keys(spec: Any, fingerprint: str, device: str) -> tuple[str, str]:
    """The cache keys of a model's fit and of its scores, as `bnnlib.evaluate.study` stores them."""

    environment = device_environment(device)
    return (cache_key(spec.fit_spec(), fingerprint, "fit", environment),
            cache_key(spec.score_spec(), fingerprint, "scores", environment))


def _verdict(result: Any) -> tuple[str, Any, float]:
    """A Bayesian fit's verdict, whether it converged and its last ELBO per row; blanks for a
    point network, which has no posterior to judge."""
    if not result.spec.has_posterior:
        return "", pd.NA, np.nan

    verdict = judge(result.history).verdict
    return verdict, verdict == "converged", float(result.history["elbo_per_row"][-1])


def _steps(result: Any) -> Any:
    """The optimiser steps a fit took (its trace's last record), else the spec's budget."""
    steps = result.history.get("step")
    return int(steps[-1]) if steps else result.spec.steps


def range_seconds(cache: Any, spec: Any, fingerprint: str, device: str) -> float:
    """What scoring a model's ranges of draws cost where they were scored apart (the warm-up's
    workers): the sum of the compute time their cache entries recorded; 0 when none is stored
    (the model was scored whole, and its scores' own entry holds the time)."""


    environment = device_environment(device)
    total = 0.0
    for draws in draw_ranges(spec.n_draws):
        key = cache_key(range_spec(spec, draws), fingerprint, "score_range", environment)
        try:
            total += float(json.loads((cache.path("score_range", key) / "meta.json").read_text())["compute_seconds"])
        except (OSError, ValueError, KeyError):
            continue
    return total


def run_rows(chapter: str, fitted: Mapping[str, Any], events: Iterable[Any], fingerprint: str,
             device: str, cache: Any = None) -> pd.DataFrame:
    """One row per model of `fitted` (name -> `bnnlib.evaluate.study.ModelResult`), with what the cache
    recorded of it in `events` (the chapter's lookups); the columns of `COLUMNS`. With `cache`,
    a model's scoring time includes its ranges of draws scored apart."""

    first = _first_events(events)
    rows = []
    for name, result in fitted.items():
        spec = result.spec
        fit_key, score_key = model_keys(spec, fingerprint, device)
        fit_event, score_event = first.get(fit_key), first.get(score_key)
        corr, numerai = result.summary("corr"), result.summary("numerai_corr")
        verdict, converged, elbo = _verdict(result)
        looked_up = [e for e in (fit_event, score_event) if e is not None]
        rows.append({
            "chapter": chapter, "model": name, "method": spec.method, "prior": spec.prior or "",
            "hypothesis": spec.hypothesis, "hidden": "-".join(map(str, spec.hidden)) or "linear",
            "epochs": spec.epochs, "steps": _steps(result), "draws": spec.n_draws, "seed": spec.seed, "precision": spec.precision,
            "guide_init": spec.guide_init if spec.has_posterior else "", "spec": canonical_json(spec),
            "data_fingerprint": fingerprint, "device": device, "cache_key": score_key, "fit_key": fit_key,
            "snapshot": snapshot_label(spec),
            "corr_mean": corr["mean"], "corr_sharpe": corr["sharpe"],
            "numerai_corr_mean": numerai["mean"], "numerai_corr_sharpe": numerai["sharpe"],
            "elbo_per_row_last": elbo, "verdict": verdict, "converged": converged,
            "fit_seconds": fit_event.seconds if fit_event is not None else np.nan,
            "score_seconds": (score_event.seconds + (range_seconds(cache, spec, fingerprint, device) if cache else 0.0)
                              if score_event is not None else np.nan),
            "cached": bool(looked_up) and all(e.hit for e in looked_up),
            "created": fit_event.created if fit_event is not None else "",
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def book_chapters(page: str, root: Path | str = ".") -> list[str]:
    """The chapters whose runs a page collects: every chapter of the table of contents that is
    not itself a page reading runs (the page, and any other like it)."""


    chapters = []
    for chapter in project.list_chapters(root):
        if chapter.name != page and RUNS_OF not in project.declared_parameters(jupytext.read(chapter.source)):
            chapters.append(chapter.name)
    return chapters


def runs_files(results_root: Path | str, chapters: Sequence[str]) -> list[Path]:
    """The chapters' `runs.csv` files that exist under the book's results folder, in order."""
    paths = [Path(results_root) / name / RUNS_FILE for name in chapters]
    return [path for path in paths if path.is_file()]


def inputs_digest(results_root: Path | str, chapters: Sequence[str]) -> str:
    """sha256 over the chapters' `runs.csv` (names and bytes): what a registry page read, so the
    runner executes it again when a chapter's runs changed."""
    digest = hashlib.sha256()
    for path in runs_files(results_root, chapters):
        digest.update(path.parent.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def collect(results_root: Path | str, chapters: Sequence[str]) -> pd.DataFrame:
    """Every chapter's runs in one table (chapter order), the registry; empty with `COLUMNS`
    when no chapter has written its runs yet."""
    frames = [pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"cache_key": str, "fit_key": str, "snapshot": str,
                                                                              "data_fingerprint": str})
              for path in runs_files(results_root, chapters)]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)
