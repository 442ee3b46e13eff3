"""What a chapter reports about its fits, before any of their numbers: did each converge, does
the spread of the draws depend on where the optimiser started, and does bf16 change them.

A variational posterior's spread is a finding only when the fit that produced it converged
(`bnnlib.evaluate.convergence`) and does not depend on the initial guide scale; these tables say both,
per model, so a chapter's text can qualify every Bayesian number it shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from bnnlib.evaluate.convergence import DIVERGING, judge
from bnnlib.evaluate.methods import METHODS
from bnnlib.scoring.metrics import era_corr
from bnnlib.models.priors import canonical_prior, prior_std

FITS_COLUMNS = ("model", "snapshot", "prior", "hypothesis", "hidden", "precision", "guide_init", "init_scale", "steps", "budget_steps",
                "epochs", "elbo_per_row_last", "elbo_change_window", "scale_p10_last", "scale_p50_last", "scale_p90_last",
                "scale_change_window", "scale_growth_window", "mean_net_corr_last", "layers_at_prior", "fit_seconds",
                "stopped_at_step", "verdict")

AT_PRIOR = 0.05
"""A hidden layer is *at its prior* when its median guide std is within this share of the std a
Normal guide takes for a weight the data say nothing about (`data_free_std`): in the median, its
weights are as uncertain as before the data was seen."""

LAPLACE_DATA_FREE = math.sqrt(math.pi) / 2
"""The Normal guide closest (in KL) to a Laplace prior of std s has std s * sqrt(pi) / 2: the KL
from Normal(0, t) to Laplace(0, b) is minimised at t = b sqrt(pi / 2), and b = s / sqrt(2)."""


def data_free_std(prior: str, fan_in: torch.Tensor) -> torch.Tensor | None:
    """Per parameter, the std the mean-field guide settles at where the likelihood is flat: the
    prior's own std for a Normal prior, sqrt(pi)/2 of it for the Laplace; None for the flat prior."""
    stds = prior_std(prior, fan_in)
    if stds is None:
        return None
    return stds * (LAPLACE_DATA_FREE if canonical_prior(prior) == "laplace" else 1.0)


def prior_std_ratios(result: Any, n_inputs: int) -> pd.Series:
    """Each layer's final median guide std over the std it would have if the data said nothing
    (`data_free_std`); NaN under the flat prior, which has none."""
    fan_ins = [n_inputs, *result.spec.hidden]
    medians = layer_medians(result)
    stds = data_free_std(result.spec.prior, torch.tensor([float(f) for f in fan_ins]))
    if stds is None:
        return pd.Series(np.nan, index=medians.index)
    return pd.Series({layer: median / float(std) for (layer, median), std in zip(medians.items(), stds)})


def layers_at_prior(result: Any, n_inputs: int) -> str:
    """'k/m': how many of a fit's m hidden layers sit at their prior (`AT_PRIOR`). Mean-field VI
    prunes: a layer whose weights the data cannot pay for in KL is set back to its prior, and a
    network whose hidden layers all are has stopped using its inputs (Trippe and Turner 2018)."""
    ratios = prior_std_ratios(result, n_inputs).iloc[:-1]  # the output layer is not hidden
    if ratios.empty or ratios.isna().all():
        return ""
    return f"{int((np.abs(ratios - 1.0) <= AT_PRIOR).sum())}/{len(ratios)}"


CONSTANT = 1e-5
"""A prediction whose std across the validation rows is below this (times its mean's size, at
least 1) is constant for scoring: measured on the default data, a network whose ReLUs all died
but a few spread its predictions by 2e-6; the flattest BNN ensemble by 2e-5, a live point
network by 2e-3 or more."""


def constant_predictors(results: Mapping[str, Any], tolerance: float = CONSTANT) -> list[str]:
    """The models whose ensemble prediction does not vary across the validation rows (`CONSTANT`):
    a point network whose ReLUs died. Their corr is an artefact of how near-ties are ranked, not
    a score, and a comparison with them says nothing."""
    return [name for name, result in results.items()
            if float(np.std(result.scores.ensemble)) <= tolerance * max(1.0, float(np.abs(result.scores.ensemble).mean()))]


def snapshot_label(spec: Any) -> str:
    """A fit's snapshot as the fits table names it: A or B of a trajectory; A for a BNN fitted by
    the talk's procedure alone (constant lr, one lr for means and scales, the last iterate: what a
    trajectory's A is); '' for any other fit without a continuation (its end is its only snapshot,
    e.g. a decaying lr with the iterates averaged)."""
    if spec.continue_steps:
        return spec.snapshot
    talk = (getattr(spec, "lr_final", 1.0) == 1.0 and getattr(spec, "scale_lr", None) is None
            and getattr(spec, "average", 0.2) == 0.0)
    return "A" if getattr(spec, "has_posterior", True) and talk else ""


def fits_table(results: Mapping[str, Any], n_inputs: int | None = None) -> pd.DataFrame:
    """One row per Bayesian fit: its snapshot (A, B or '': `snapshot_label`), its budget
    (`budget_steps`: for B the budget plus the continuation's cap; `steps` is where it ended,
    earlier for a fit that stopped diverging or converged), where its trace ended, and its verdict
    (what `_build/results/<chapter>/fits.csv` holds); with `n_inputs` (the number of
    features), also how many hidden layers sit at their prior."""
    rows = []
    for name, result in results.items():
        if not METHODS[result.spec.method].has_posterior:
            continue
        history, spec = result.history, result.spec
        verdict = judge(history)
        corr = history.get("validation_corr") or [np.nan]
        steps = history["step"][-1]
        budget = spec.steps or spec.epochs * history["steps_per_epoch"]
        rows.append({
            "model": name, "snapshot": snapshot_label(spec), "prior": spec.prior, "hypothesis": spec.hypothesis,
            "hidden": "-".join(map(str, spec.hidden)) or "linear", "precision": spec.precision,
            "guide_init": spec.guide_init, "init_scale": spec.init_scale,
            "steps": steps, "budget_steps": budget + (spec.continue_steps if spec.snapshot == "B" else 0),
            "epochs": steps / history["steps_per_epoch"],
            "elbo_per_row_last": history["elbo_per_row"][-1],
            "scale_p10_last": result.extras["scale_p10"], "scale_p50_last": result.extras["scale_p50"],
            "scale_p90_last": result.extras["scale_p90"], "mean_net_corr_last": corr[-1],
            "layers_at_prior": layers_at_prior(result, n_inputs) if n_inputs else "",
            "fit_seconds": history["seconds"][-1], "stopped_at_step": history.get("stopped_at_step"),
            **verdict.as_dict(),
        })
    return pd.DataFrame(rows, columns=list(FITS_COLUMNS)).set_index("model")


def trace_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """The traces of the Bayesian fits in long form: model, step, ELBO per row, the network's
    median of the layers' median guide std and largest 90th percentile, the mean net's corr."""
    frames = []
    continued = {_fit_id(r.spec) for r in results.values() if r.spec.has_posterior and snapshot_label(r.spec) == "B"}
    for name, result in results.items():
        if not METHODS[result.spec.method].has_posterior:
            continue
        if snapshot_label(result.spec) == "A" and _fit_id(result.spec) in continued:
            continue  # its trace is the first part of its snapshot B's: drawn once, under B's name
        h = result.history
        layers = [np.asarray(v) for k, v in h["scale_quantiles"].items() if k != "head"]
        frames.append(pd.DataFrame({
            "model": name, "step": h["step"], "elbo_per_row": h["elbo_per_row"],
            "scale_median": np.median(np.stack([q[:, 1] for q in layers]), axis=0),
            "scale_p90_max": np.max(np.stack([q[:, 2] for q in layers]), axis=0),
            "mean_net_corr": h.get("validation_corr") or np.nan,
            "snapshot_a_step": _snapshot_a_step(h) if snapshot_label(result.spec) == "B" else np.nan,
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _snapshot_a_step(history: dict) -> float:
    """The step of a trajectory's snapshot A (its last record at A), or NaN."""
    records = history.get("snapshot_a_records")
    return float(history["step"][records - 1]) if records else np.nan


def _fit_id(spec: Any) -> str:
    """What identifies one fit: its fit fields (the two snapshots of a trajectory share them)."""
    return json.dumps(spec.fit_spec(), sort_keys=True, default=str)


def layer_medians(result: Any) -> pd.Series:
    """The final median guide std of each layer of one fit."""
    return pd.Series({k: v[-1][1] for k, v in result.history["scale_quantiles"].items() if k != "head"})


def ensemble_corr_mc_error(result: Any, target: Any, eras: Any, replicates: int = 20, seed: int = 0) -> float:
    """The Monte Carlo error of an ensemble's validation corr: the ensemble averages S draws, so
    each row's prediction carries noise of std (draw std) / sqrt(S); re-scoring the ensemble with
    that noise added, `replicates` times, gives the std of the corr that the finite S causes."""
    scores = result.scores
    rng = np.random.default_rng(seed)
    noise_std = scores.std / np.sqrt(scores.n_draws)
    frame = scores.predictions()
    corrs = [era_corr(frame["prediction"].to_numpy() + rng.standard_normal(len(frame)) * noise_std,
                      target, eras).mean() for _ in range(replicates)]
    return float(np.std(corrs, ddof=1))


def _last(history: Mapping, key: str) -> float:
    """The last record of a fit's trace, NaN where it has none."""
    values = history.get(key) or []
    return float(values[-1]) if len(values) else np.nan


def paired_comparison(results: Mapping[str, Any], pairs: Mapping[str, tuple[str, str]], target: Any,
                      eras: Any) -> pd.DataFrame:
    """Two fits of one model side by side (e.g. from two initial scales, or in two precisions):
    per pair, each fit's ensemble corr and its Monte Carlo error, their difference in units of
    the difference's MC error, each fit's steps and last ELBO per row (which optimum is the
    better one, where two starts end apart), and each layer's median guide std as a ratio
    second / first."""
    rows = []
    for label, (first, second) in pairs.items():
        a, b = results[first], results[second]
        corr_a, corr_b = a.summary()["mean"], b.summary()["mean"]
        error = float(np.hypot(ensemble_corr_mc_error(a, target, eras), ensemble_corr_mc_error(b, target, eras)))
        ratios = layer_medians(b) / layer_medians(a)
        rows.append({"pair": label, "first": first, "second": second, "corr_first": corr_a, "corr_second": corr_b,
                     "corr_difference": corr_b - corr_a, "mc_error": error,
                     "steps_first": _last(a.history, "step"), "steps_second": _last(b.history, "step"),
                     "elbo_per_row_first": _last(a.history, "elbo_per_row"),
                     "elbo_per_row_second": _last(b.history, "elbo_per_row"),
                     "difference_in_mc_errors": abs(corr_b - corr_a) / error if error > 0 else np.inf,
                     **{f"std_ratio_{k}": v for k, v in ratios.items()},
                     "largest_std_change": float(np.max(np.abs(ratios.to_numpy() - 1.0)))})
    return pd.DataFrame(rows).set_index("pair")


def diverging(table: pd.DataFrame) -> list[str]:
    """The fits of a `fits_table` whose verdict is diverging: drawn apart in a trace figure, named
    rather than measured in a comparison."""
    if "verdict" not in table:
        return []
    return list(table.index[table["verdict"] == DIVERGING])


def verdict_counts(table: pd.DataFrame, priors: Sequence[str] | None = None) -> dict[str, int]:
    """How many fits got each verdict (among `priors` only, when given)."""
    if priors is not None:
        table = table[table["prior"].isin(priors)]
    return table["verdict"].value_counts().to_dict()


LADDER_LABELS = {"log_evidence": "linear model, log evidence (exact)",
                 "meanfield_elbo": "linear model, mean-field optimum (exact)",
                 "constant_loglik": "best constant prediction (exact)"}
"""The rows of an `elbo_ladder` that hold `bnnlib.evaluate.exact.elbo_references`, by its keys."""


def elbo_ladder(references: Mapping[str, float], table: pd.DataFrame, n_rows: int,
                evidences: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The fits' last ELBO per row beside the exact yardsticks (`bnnlib.evaluate.exact.elbo_references`)
    and the Laplace posteriors' log evidences per row (`evidences`, by name), each as its margin
    over the best constant prediction, per row and in nats over all `n_rows` training rows: how
    much a model's inputs are worth, on one scale with what the data holds. An ELBO is a lower
    bound on its own model's log evidence; a Laplace evidence is its model's (prior precision and
    noise chosen by it) under a Gaussian approximation. Each SVI row carries its fit's verdict
    (the table's `verdict`), so that no ELBO is read without it."""
    rows = [{"model": label, "elbo_per_row": references[key]} for key, label in LADDER_LABELS.items()]
    rows += [{"model": f"{name} (Laplace, log evidence)", "elbo_per_row": value}
             for name, value in (evidences or {}).items() if np.isfinite(value)]
    verdicts = table["verdict"] if "verdict" in table else pd.Series(dtype=object)
    rows += [{"model": f"{name} (SVI, last record)", "elbo_per_row": value, "verdict": verdicts.get(name, "–")}
             for name, value in table["elbo_per_row_last"].items() if np.isfinite(value)]
    frame = pd.DataFrame(rows).set_index("model")
    frame["over_constant_per_row"] = frame["elbo_per_row"] - references["constant_loglik"]
    frame["over_constant_nats"] = frame["over_constant_per_row"] * n_rows
    frame["verdict"] = frame["verdict"].fillna("–")  # the yardsticks and evidences are not fits
    return frame[["elbo_per_row", "over_constant_per_row", "over_constant_nats", "verdict"]]
