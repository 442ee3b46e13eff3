"""Study 1, the `ensembles` chapter: many posterior draws, one ensemble.

Everything the chapter (book/ensembles.py) computes, in the order the page shows it: its models
(`models`: the baseline, its matched control, the BNNs at snapshots A and B, the Laplace
posteriors), its tables (the draws against
their ensemble, the ground truth), its findings (the values it glues into its markdown, under
literal keys) and the talk's published numbers with the talk's findings on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bnnlib.errors import BnnlibError
from bnnlib.evaluate.study import ModelSpec
from bnnlib.models.bnn import DEFAULT_INIT_SCALE
from bnnlib.models.priors import canonical_prior
from bnnlib.studies.common import Claim, check_kind, draw_scores, signal_ceiling, truth_signals
from bnnlib.studies.common import training_fields, converged_name, snapshot_pair
from bnnlib.studies.common import agreement, best_among_converged, snapshots_table
from bnnlib.studies.common import LAPLACE, joint_verdict, laplace_specs, rows_at
from bnnlib.studies.common import MATCHED_CONTROL, PRIORS, talk_frame, prior_label, prior_labels


# --------------------------------------------------------------------------- models


LAPLACE_HEADERS = {"log_marginal_likelihood": "log evidence (nats)", "log_marginal_likelihood_per_row": "per row",
                   "prior_precision": "prior precision", "sigma_noise": "noise sigma", "burn_auc": "burn AUC"}
"""`laplace_table`'s columns as the page heads them (laplace.csv keeps the names)."""


def laplace_table(results: Mapping[str, Any], detection: pd.DataFrame) -> pd.DataFrame:
    """Per Laplace posterior: its ensemble's corr and Sharpe, the burn-era AUC of its draws'
    spread (`detection`, a `burn_eras.burn_detection` table), its log marginal likelihood (nats in
    all and per training row) and the prior precision and noise that maximise it."""
    rows = {}
    for name in (n for n in LAPLACE if n in results):
        result, summary = results[name], results[name].summary()
        extras = result.extras
        rows[name] = {"subset": extras["subset"], "corr": summary["mean"], "sharpe": summary["sharpe"],
                      "burn_auc": detection.loc[name, "auc"] if name in detection.index else np.nan,
                      "log_marginal_likelihood": extras["log_marginal_likelihood"],
                      "log_marginal_likelihood_per_row": extras["log_marginal_likelihood_per_row"],
                      "prior_precision": extras["prior_precision"], "sigma_noise": extras["sigma_noise"]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def laplace_note(table: pd.DataFrame, ours: pd.DataFrame, bnn_names: Sequence[str],
                 verdicts: Mapping[str, str]) -> dict:
    """What the Laplace posteriors score against the baseline they are built on and the converged
    mean-field BNNs (`laplace_note`), worded from the table; nothing about evidence across model
    families, which the diagnostics appendix weighs."""
    if table.empty:
        return {"laplace_note": "This run fits no Laplace posterior."}
    baseline = ours.loc["baseline", "corr"]
    parts = [f"{name} scores {row['corr']:.4f} (Sharpe {row['sharpe']:.3f}), "
             + ("above" if row["corr"] > baseline else "not above") + f" the baseline it is built on ({baseline:.4f})"
             for name, row in table.iterrows()]
    converged = [n for n in bnn_names if verdicts.get(n) == "converged"]
    against = ("No mean-field BNN converged here, so none is set beside them." if not converged else
               "The converged mean-field BNNs: " + ", ".join(f"{prior_label(n)} {ours.loc[n, 'corr']:.4f}"
                                                           for n in converged) + ".")
    sampled = ""
    if "laplace_approx_all" in table.index and table.loc["laplace_approx_all", "corr"] < SAMPLED_LOSS * baseline:
        sampled = (" The all-weights posterior's ensemble keeps less than half of the trained network's corr: its "
                   "draws perturb every weight along the Kronecker-factored curvature, and the average of such "
                   "networks is not the network. Sampling the network's weights is known to underfit this way; "
                   "the linearised (GLM) predictive is the usual remedy (Immer et al. 2021, Daxberger et al. 2021), "
                   "which this book does not compute yet, so this row measures the sampled predictive, not the "
                   "posterior's best use.")
    return {"laplace_note": "; ".join(parts) + ". " + against + sampled}


SAMPLED_LOSS = 0.5
"""Below this share of the baseline's corr, the all-weights Laplace ensemble gets the sentence on
the sampled predictive (`laplace_note`): well beyond the Monte Carlo error of 1000 draws."""


def models(params: Mapping) -> list[ModelSpec]:
    """Study 1: the baseline; the baseline with the BNN's optimiser settings (a matched-budget
    control); one BNN per prior, each one trajectory scored at snapshot A (the talk's procedure)
    and at snapshot B (converged); the Laplace posteriors of the baseline network; and the
    baseline scored at its best epoch. The checks that these fits are posteriors are the
    diagnostics appendix's (`bnnlib.studies.diagnostics`)."""
    training = training_fields(params)
    common = dict(hidden=tuple(params["hidden"]), **training)
    priors = [canonical_prior(p) for p in params["priors"]]
    specs = [
        ModelSpec("baseline", method="baseline", lr=params["lr_baseline"], **common),
        ModelSpec(MATCHED_CONTROL, method="baseline", lr=params["lr_bnn"], **common),
        *[spec for p in priors for spec in snapshot_pair(p, p, params)],
    ]
    specs += laplace_specs(params)
    specs.append(ModelSpec("baseline_best_epoch", method="baseline", lr=params["lr_baseline"], best_epoch=True,
                           **common))
    return specs


# --------------------------------------------------------------------------- tables


def draws_vs_ensemble(results: Mapping[str, Any], kind: str = "corr") -> pd.DataFrame:
    """Per model with more than one draw: the per-draw corr mean and Sharpe (mean and std over
    draws) beside the ensemble's, the share of draws the ensemble beats, and whether the
    ensemble beats the average draw (the talk's "ensembling helps")."""
    check_kind(kind)
    rows = {}
    for name, result in results.items():
        if result.scores.n_draws < 2:
            continue
        draws = draw_scores(result, kind)
        ensemble = result.summary(kind)
        sharpe = draws["sharpe"].dropna()
        rows[name] = {
            "draws": int(len(draws)),
            "draw_corr_mean": float(draws["mean"].mean()),
            "draw_corr_std": float(draws["mean"].std(ddof=1)),
            "ensemble_corr": ensemble["mean"],
            "draw_sharpe_mean": float(sharpe.mean()) if len(sharpe) else float("nan"),
            "draw_sharpe_std": float(sharpe.std(ddof=1)) if len(sharpe) > 1 else float("nan"),
            "ensemble_sharpe": ensemble["sharpe"],
            "share_below_ensemble_corr": float((draws["mean"] < ensemble["mean"]).mean()),
            "share_below_ensemble_sharpe": float((draws["sharpe"] < ensemble["sharpe"]).mean()),
        }
    if not rows:
        raise BnnlibError("draws_vs_ensemble found no model with more than one draw; pass Bayesian models")
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    table["ensemble_beats_draws_corr"] = table["ensemble_corr"] > table["draw_corr_mean"]
    table["ensemble_beats_draws_sharpe"] = table["ensemble_sharpe"] > table["draw_sharpe_mean"]
    return table


def draws_cells(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A `draws_vs_ensemble` table (or the talk's) laid out as the talk prints it: rows
    "corr, draws (mean +- std)", "corr, ensemble", the same for Sharpe; one column per model."""
    def pm(mean: float, std: float) -> str:
        return "" if pd.isna(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    rows = {
        "corr, draws (mean ± std)": [pm(m, s) for m, s in zip(table["draw_corr_mean"], table["draw_corr_std"])],
        "corr, ensemble": [f"{v:.{digits}f}" for v in table["ensemble_corr"]],
        "Sharpe, draws (mean ± std)": [pm(m, s) for m, s in zip(table["draw_sharpe_mean"], table["draw_sharpe_std"])],
        "Sharpe, ensemble": [f"{v:.{digits}f}" for v in table["ensemble_sharpe"]],
    }
    return pd.DataFrame(rows, index=table.index).T


def draws_side_by_side(ours: pd.DataFrame, talk: pd.DataFrame, *, ours_label: str = "this run",
                       talk_label: str = "talk (2021)") -> pd.DataFrame:
    """Our `draws_vs_ensemble` table and the talk's, each laid out by `draws_cells`, side by side."""
    return pd.concat({ours_label: draws_cells(ours), talk_label: draws_cells(talk)}, axis=1)


def signal_capture(predictions: Mapping[str, Any], signal: Any) -> pd.Series:
    """Per model, the Pearson correlation of its predictions with the true signal (over all
    rows): how much of what is learnable the model found."""
    signal = np.asarray(signal, dtype=np.float64)
    out = {}
    for name, prediction in predictions.items():
        prediction = np.asarray(prediction, dtype=np.float64)
        if prediction.shape != signal.shape:
            raise BnnlibError(f"{name}: {prediction.shape[0]} predictions for {signal.shape[0]} signal rows; align them")
        out[name] = float(np.corrcoef(prediction, signal)[0, 1]) if prediction.std() > 0 else float("nan")
    return pd.Series(out, name="corr_with_signal")


def ground_truth_tables(dataset: Any, results: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.Series] | None:
    """The validation ceiling of the noise-free signals (`signal_ceiling` of signal and
    signal_stable) and each model's correlation with the true signal (`signal_capture`), or
    None when the data has no ground truth (real data)."""
    signals = truth_signals(dataset)
    if signals is None:
        return None
    _, target, eras = dataset.arrays("validation", [dataset.roles.main])
    ceiling = signal_ceiling(signals, target[:, 0], eras, ["signal", "signal_stable"])
    capture = signal_capture(
        {n: r.scores.predictions()["prediction"].reindex(signals.index) for n, r in results.items()},
        signals["signal"])
    return ceiling, capture


# --------------------------------------------------------------------------- findings (glue values)


def start_note(guide_init: str) -> dict:
    """Where this run's guides start (`start_note`), in words."""
    talk = f"He-initialised means, stds {DEFAULT_INIT_SCALE['he']:g}"
    if guide_init == "prior":
        note = ("Each guide starts at its prior (zero means, the prior's stds): it first says only what the prior "
                "says, and moves a weight away from it only as far as the data pay for; under the flat prior, which "
                "has no std, it "
                f"starts where the talk's does ({talk}), as does a linear model's (no hidden layer: see the "
                "architecture appendix). The talk's start is compared below.")
    else:
        note = f"Each guide starts where the talk's does ({talk}); a guide started at the prior is compared below."
    return {"start_note": note}


def lr_schedule(lr_final: float, verdicts: Mapping[str, str] | None = None, continue_steps: int = 0) -> dict:
    """How SVI's learning rates move over the steps (`schedule_note`), in words; with `verdicts`
    (fit name -> verdict of the fits that use the schedule), whether the fits settled with it."""
    if continue_steps:
        return _continuation_schedule(lr_final, verdicts, continue_steps)
    if lr_final >= 1:
        return {"schedule_note": "Its learning rates stay constant, as the talk's did."}
    if verdicts is None:
        settled = "Whether the fits settle with the decay, their verdicts below say."
    else:
        converged = [n for n, v in verdicts.items() if v == "converged"]
        moving = [n for n, v in verdicts.items() if v == "still moving"]
        diverging = [n for n, v in verdicts.items() if v == "diverging"]
        if len(converged) == len(verdicts):
            settled = "With the decay every fit here settles (the verdicts below)."
        else:
            why = "; ".join(part for part in (
                f"{prior_labels(moving)} still moving, which more steps may settle" if moving else "",
                f"{prior_labels(diverging)} diverging, which the decay does not prevent" if diverging else "")
                if part)
            settled = ("Even with the decay, no fit here settles" if not converged else
                       f"With the decay {len(converged)} of the {len(verdicts)} fits here settle "
                       f"({prior_labels(converged)})") + f" (the verdicts below: {why})."
    return {"schedule_note": (
        f"Its learning rates decay geometrically to {lr_final:g} of their start by the last step (the talk's "
        "stayed constant): Adam at a constant rate never settles, its iterates wander wherever the ELBO is "
        "nearly flat (the output-layer stds of a network the prior pruned), so a fit that had reached its "
        f"optimum could not be told apart from one still on its way. {settled} Setting -p lr_bnn_final 1 restores "
        "the constant rate. The baseline_bnn_lr control below decays the same way.")}


def _continuation_schedule(lr_final: float, verdicts: Mapping[str, str] | None, cap: int) -> dict:
    """`lr_schedule` for trajectories: constant rates to A, a decaying continuation to B;
    `verdicts` are those at B."""
    note = (f"To snapshot A every learning rate stays constant, as the talk's did. The continuation to B then runs "
            f"the guide's scales at their own rate, and decays both rates geometrically to {lr_final:g} of their "
            f"start over its cap of {cap:,} steps: Adam at a constant rate never settles (its iterates wander "
            "wherever the ELBO is nearly flat), so a fit that had reached its optimum could not be told from one "
            "still on its way. The continuation stops at the first trace record where the verdict is no longer "
            "'still moving', after at least as many steps as the budget; B is the average of the iterates over the "
            "last fifth of all the steps run.")
    if verdicts:
        unsettled = {n: v for n, v in verdicts.items() if v != "converged"}
        note += (" Every fit here converged by B." if not unsettled else
                 " Not converged at B: " + ", ".join(f"{n} ({v})" for n, v in unsettled.items())
                 + ("; the cap was reached first, so more steps may settle it." if "still moving" in unsettled.values()
                    else "."))
    return {"schedule_note": note}


def score_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings on the scores table (a `check_claims` table of
    `score_claims`) hold here too (`check1_*`)."""
    found = agreement(check)
    return {"check1_findings": found["findings"], "check1_agreed": found["agreed"],
            "check1_checkable": found["checkable"], "check1_differ": found["differ"]}


def score_findings(ours: pd.DataFrame, bnn_names: Sequence[str], best_epoch: int | None, epochs: int,
                   talk_best_epoch: int, talk_epochs: int, verdicts: Mapping[str, str] | None = None) -> dict:
    """The best BNN (among the converged ones when `verdicts`, fit name -> verdict, are given),
    the baseline, the best epoch, and the matched-budget control's verdict on each of the BNNs
    `bnn_names` (`ours`: corr and sharpe per model, with rows baseline and baseline_bnn_lr)."""
    names = list(bnn_names)
    converged = None if verdicts is None else [n for n in names if verdicts.get(n) == "converged"]
    best, best_note = best_among_converged(ours, names, converged, "BNN", lambda n: f"the {prior_label(n)} prior's")
    baseline, control_corr = ours.loc["baseline", "corr"], ours.loc["baseline_bnn_lr", "corr"]
    above = [p for p in names if ours.loc[p, "corr"] > baseline]
    above_control = [p for p in above if ours.loc[p, "corr"] > control_corr]
    below_control = [p for p in above if p not in above_control]
    if not above:
        control = (f"The BNN ({prior_labels(names)}) is not above the baseline." if len(names) == 1 else
                   f"None of the {len(names)} BNNs ({prior_labels(names)}) is above the baseline.")
    else:
        control = (f"The BNN ({prior_labels(above)}) is above the baseline." if len(names) == 1 else
                   f"{len(above)} of the {len(names)} BNNs ({prior_labels(above)}) "
                   f"{'is' if len(above) == 1 else 'are'} above the baseline.")
        if above_control:
            control += (f" Above this control too: {prior_labels(above_control)}, an edge that is not the smaller "
                        "step size alone.")
        if below_control:
            control += (f" Not above this control: {prior_labels(below_control)}, an edge over the baseline no larger "
                        "than the smaller step size alone gives.")
    epoch = ("" if best_epoch is None else
             f"The baseline's best validation epoch is epoch {best_epoch} of {epochs} (the talk's was epoch "
             f"{talk_best_epoch} of {talk_epochs}).")
    return {"best_bnn": None if best is None else prior_label(best),
            "best_corr": np.nan if best is None else ours.loc[best, "corr"],
            "best_sharpe": np.nan if best is None else ours.loc[best, "sharpe"], "best_note": best_note,
            "baseline_corr": baseline,
            "baseline_sharpe": ours.loc["baseline", "sharpe"], "control_corr": control_corr,
            "control_sharpe": ours.loc["baseline_bnn_lr", "sharpe"], "control_verdict": control,
            "best_epoch_note": epoch}


LAPLACE_LABELS = {"laplace_approx_last_layer": "last layer", "laplace_approx_all": "all weights"}
"""How the glance table names the Laplace posteriors (of the baseline network's last layer, of all its weights)."""

HEADLINE_PRIORS = ("normal", "laplace")
"""The BNNs of the talk's headline "a BNN ensemble scores above the baseline" as the book checks it
at each snapshot: the proper priors (the flat prior's fit has no posterior to converge to)."""

SNAPSHOT_WORDS = {"A": "Under the talk's procedure (snapshot A)", "B": "At convergence (snapshot B)"}


def snapshot_name(prior: str, snapshot: str) -> str:
    """The model scored at `snapshot` of a prior's trajectory in this chapter."""
    return prior if snapshot == "A" else converged_name(prior)


def above_baseline(ours: pd.DataFrame, verdicts: Mapping[str, str], snapshot: str,
                   priors: Sequence[str] = HEADLINE_PRIORS) -> dict:
    """Whether the talk's "a BNN ensemble scores above the baseline" holds at `snapshot` for the
    Normal and Laplace BNNs (`ours`: corr per model, with row baseline), each with its verdict
    (`verdicts`: model name -> verdict), and what the verdicts make of it (`above_a_note` /
    `above_b_note`, `above_a_holds` / `above_b_holds`)."""
    key = f"above_{snapshot.lower()}"
    names = {p: snapshot_name(p, snapshot) for p in priors if snapshot_name(p, snapshot) in ours.index}
    if not names:
        return {f"{key}_note": f"{SNAPSHOT_WORDS[snapshot]}: this run has no Normal or Laplace BNN to compare.",
                f"{key}_holds": "–"}
    baseline = ours.loc["baseline", "corr"]
    cells = ", ".join(f"{prior_label(p)} {ours.loc[n, 'corr']:.4f} ({verdicts.get(n, 'no verdict')})"
                      for p, n in names.items())
    above = [p for p, n in names.items() if ours.loc[n, "corr"] > baseline]
    holds = "holds" if len(above) == len(names) else "does not hold" if not above else "holds in part"
    every = "both" if len(names) == 2 else f"all {len(names)}"
    which = ("" if len(names) == 1 else
             f" (for {every if len(above) == len(names) else 'neither' if not above and len(names) == 2 else 'none' if not above else prior_labels(above) + ' only'})")
    unsettled = [p for p, n in names.items() if verdicts.get(n) != "converged"]
    if not unsettled:
        qualifier = ("Both fits converged, so these are scores of posteriors." if len(names) > 1 else
                     "The fit converged, so this is a posterior's score.")
    else:
        listed = ", ".join(f"{prior_label(p)} {verdicts.get(names[p], 'no verdict')}" for p in unsettled)
        qualifier = (f"Not converged: {listed}. {'Its score is' if len(unsettled) == 1 else 'Their scores are'} those "
                     "of the network where the optimiser stood, not of a posterior.")
    return {f"{key}_note": (f"{SNAPSHOT_WORDS[snapshot]}, the ensembles score {cells} against the baseline's "
                            f"{baseline:.4f}: the talk's finding that a BNN ensemble scores above the baseline "
                            f"{holds}{which}. {qualifier}"),
            f"{key}_holds": holds}


def snapshot_table(ours: pd.DataFrame, fit_table: pd.DataFrame, priors: Sequence[str]) -> pd.DataFrame:
    """Per prior with both snapshots: the ensemble's corr and Sharpe, the verdict and the steps at
    A (the talk's procedure) and at B (converged), side by side."""
    pairs = {p: (p, converged_name(p)) for p in priors if p in ours.index and converged_name(p) in ours.index}
    return snapshots_table(ours["corr"], ours["sharpe"], fit_table, pairs).rename_axis("prior")


def at_snapshot(table: pd.DataFrame, priors: Sequence[str], snapshot: str) -> pd.DataFrame:
    """The rows of a per-model table the talk's claims read (baseline, the matched control, the
    best-epoch reference, one row per prior), with each prior's row taken at `snapshot` and named
    by the prior, so the talk's findings can be checked on it as on the talk's own table."""
    head = [n for n in ("baseline", MATCHED_CONTROL) if n in table.index]
    tail = [n for n in ("baseline_best_epoch",) if n in table.index]
    return pd.concat([table.loc[head], rows_at(table, priors, snapshot), table.loc[tail]])


def draw_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings on the draws table (a `check_claims` table of
    `draw_claims`) hold here too (`check2_*`)."""
    found = agreement(check)
    return {"check2_findings": found["findings"], "check2_agreed": found["agreed"],
            "check2_checkable": found["checkable"], "check2_differ": found["differ"]}


def draw_findings(draw_table: pd.DataFrame, talk_draws: pd.DataFrame, converged: Sequence[str],
                  names: Sequence[str]) -> dict:
    """The ensemble against its draws, and whose draws vary most, beside the talk; which
    spreads are a posterior's (only converged fits')."""
    widest = draw_table["draw_corr_std"].idxmax()
    talk_widest = talk_draws["draw_corr_std"].idxmax()
    spreads = ("Every fit converged, so these spreads are the posteriors'." if len(converged) == len(names) else
               "No fit converged, so none of these spreads is a property of a posterior." if not converged else
               f"Only the spreads of converged fits ({prior_labels(converged)}) are properties of a posterior.")
    return {"draws_beats_corr": int(draw_table["ensemble_beats_draws_corr"].sum()),
            "draws_beats_sharpe": int(draw_table["ensemble_beats_draws_sharpe"].sum()),
            "draws_priors": int(len(draw_table)),
            "draws_talk_beats": int((talk_draws["ensemble_corr"] > talk_draws["draw_corr_mean"]).sum()),
            "draws_talk_priors": int(len(talk_draws)),
            "draws_share_below": 100 * float(draw_table["share_below_ensemble_corr"].mean()),
            "draws_widest": prior_label(widest), "draws_widest_std": draw_table.loc[widest, "draw_corr_std"],
            "draws_talk_widest": prior_label(talk_widest),
            "draws_talk_widest_std": talk_draws.loc[talk_widest, "draw_corr_std"],
            "draws_spreads": spreads}


def ground_truth(ceiling: pd.DataFrame, capture: pd.Series, corr: pd.Series) -> dict:
    """How close the best of the models `corr` (validation corr per model: the chapter leaves out
    the best-epoch reference, chosen on the validation eras) comes to the noise-free signal's
    score, and whose predictions follow the signal most closely."""
    top = capture.idxmax()
    best = corr.idxmax()
    signal = ceiling.loc["signal", "mean"]
    share = (f", or {100 * corr[best] / signal:.0f}% of the ceiling" if signal > 0 else
             ", while the signal itself does not score above 0 here")
    return {"truth_note": (
        f"Predicting the noise-free signal would give a validation corr of {signal:.4f} (its stable part "
        f"{ceiling.loc['signal_stable', 'mean']:.4f}); the best model here, {prior_label(best)}, reaches "
        f"{corr[best]:.4f}{share}. The predictions closest to the true signal are "
        f"{prior_label(top)}'s (correlation {capture[top]:.3f}).")}


# --------------------------------------------------------------------------- the talk (real Numerai v3 data, 2021)
# Its published numbers, and its findings as tests on a table (checked on its numbers and ours by
# `common.check_claims`; a finding about every prior needs all three).


TALK_BEST_EPOCH = 5
"""The baseline's epoch with the highest validation corr, in the common."""

TALK_EPOCHS = 30
"""The talk's training epochs (baseline and BNNs)."""


def talk_scores() -> pd.DataFrame:
    """The talk's validation corr (mean of the 2021 per-era corr) and Sharpe of each model."""
    return talk_frame(
        {
            "corr": [0.0145, 0.0199, 0.0167, 0.0185, 0.0191, 0.0153],
            "sharpe": [0.6422, 0.6454, 0.5038, 0.5573, 0.6489, 0.5035],
        },
        ["baseline", "flat", "normal", "laplace", "baseline_best_epoch", "nn_starter"],
        "model",
    )


def talk_draws() -> pd.DataFrame:
    """The talk's per-draw corr mean and Sharpe (mean and std over 1000 draws) vs the ensemble."""
    return talk_frame(
        {
            "draw_corr_mean": [0.0142, 0.0049, 0.0123],
            "draw_corr_std": [0.0023, 0.0072, 0.0020],
            "ensemble_corr": [0.0199, 0.0167, 0.0185],
            "draw_sharpe_mean": [0.5764, 0.2107, 0.4989],
            "draw_sharpe_std": [0.0908, 0.3021, 0.0673],
            "ensemble_sharpe": [0.6454, 0.5038, 0.5573],
        },
        list(PRIORS),
        "prior",
    )


def score_claims() -> list:
    """The talk's findings on the table of validation corr and Sharpe per model."""
    ALL = list(PRIORS)
    return [
        Claim("every BNN ensemble's corr is above the baseline's",
              lambda t: all(t.loc[p, "corr"] > t.loc["baseline", "corr"] for p in ALL)),
        Claim("the flat prior has the best Sharpe of the baseline and the BNNs",
              lambda t: t.loc[["baseline", *ALL], "sharpe"].idxmax() == "flat"),
        Claim("the baseline has the second-best Sharpe",
              lambda t: t.loc[["baseline", *ALL], "sharpe"].sort_values().index[-2] == "baseline"),
        Claim("the Laplace prior's corr is above the Normal prior's",
              lambda t: t.loc["laplace", "corr"] > t.loc["normal", "corr"]),
        Claim("the best-epoch baseline's corr is above the 30-epoch baseline's",
              lambda t: t.loc["baseline_best_epoch", "corr"] > t.loc["baseline", "corr"]),
    ]


def draw_claims() -> list:
    """The talk's findings on the draws-versus-ensemble table."""
    ALL = list(PRIORS)
    return [
        Claim("for every prior, the ensemble's corr is above the mean of its draws' corr",
              lambda t: bool((t.loc[ALL, "ensemble_corr"] > t.loc[ALL, "draw_corr_mean"]).all())),
        Claim("for every prior, the ensemble's Sharpe is above the mean of its draws' Sharpe",
              lambda t: bool((t.loc[ALL, "ensemble_sharpe"] > t.loc[ALL, "draw_sharpe_mean"]).all())),
        Claim("the Normal prior's draws vary the most (largest std of per-draw corr)",
              lambda t: t.loc[ALL, "draw_corr_std"].idxmax() == "normal"),
    ]


# --------------------------------------------------------------------------- the findings at a glance (the intro's table)


def _cell(values: Mapping[str, float], baseline: float | None = None, verdict: str | None = None) -> str:
    """A glance cell: named corrs (and the baseline's), with the fits' verdict where it is not
    'converged'; '–' when there is nothing."""
    if not values:
        return "–"
    text = ", ".join(f"{prior_label(n)} {v:.4f}" for n, v in values.items())
    if baseline is not None:
        text += f" vs baseline {baseline:.4f}"
    return text + (f" ({verdict})" if verdict and verdict != "converged" else "")


def _holds(talk: bool | None, ours: Mapping[str, bool | None]) -> str:
    """'holds' / 'differs' per column of ours where the talk's finding is known (e.g. 'holds at A,
    differs at B')."""
    if talk is None:
        return "–"
    parts = [f"{'holds' if held == talk else 'differs'} at {label}" for label, held in ours.items() if held is not None]
    if parts and all(p.startswith("holds") for p in parts):
        return "holds" if len(parts) == len(ours) else "; ".join(parts)
    return "; ".join(parts) or "–"


def glance(ours: pd.DataFrame, verdicts: Mapping[str, str], draws_a: pd.DataFrame, draws_b: pd.DataFrame | None,
           laplace: pd.DataFrame, priors: Sequence[str]) -> pd.DataFrame:
    """Study 1's rows of the intro's "findings at a glance": per talk finding, the talk's value,
    ours under the talk's procedure (A), at convergence (B) and with the Laplace posteriors of the
    baseline network, and whether the talk's finding holds on ours (`ours`: corr per model;
    `draws_a`/`draws_b`: `draws_vs_ensemble` at A and B; `laplace`: `laplace_table`)."""
    talk, talk_draw = talk_scores(), talk_draws()
    proper = [p for p in HEADLINE_PRIORS if p in priors]
    baseline = ours.loc["baseline", "corr"]
    rows = []

    def at(snapshot: str) -> dict[str, float]:
        return {p: ours.loc[snapshot_name(p, snapshot), "corr"] for p in proper
                if snapshot_name(p, snapshot) in ours.index}

    def verdict(snapshot: str) -> str:
        return joint_verdict([verdicts.get(snapshot_name(p, snapshot), "") for p in proper
                               if snapshot_name(p, snapshot) in ours.index])

    a, b = at("A"), at("B")
    approx = {LAPLACE_LABELS.get(n, n): row["corr"] for n, row in laplace.iterrows()}
    rows.append({"finding": "a BNN ensemble's corr is above the baseline's",
                 "talk": _cell({p: talk.loc[p, "corr"] for p in proper}, talk.loc["baseline", "corr"]),
                 "A: the talk's procedure": _cell(a, baseline, verdict("A")),
                 "B: converged": _cell(b, baseline, verdict("B")),
                 "Laplace": _cell(approx, baseline),
                 "holds?": _holds(all(talk.loc[p, "corr"] > talk.loc["baseline", "corr"] for p in proper) if proper else None,
                                  {"A": all(v > baseline for v in a.values()) if a else None,
                                   "B": all(v > baseline for v in b.values()) if b else None,
                                   "Laplace": all(v > baseline for v in approx.values()) if approx else None})})
    if {"normal", "laplace"} <= set(proper):
        def order(values: dict) -> bool | None:
            return values["laplace"] > values["normal"] if {"normal", "laplace"} <= set(values) else None
        rows.append({"finding": "the Laplace prior's corr is above the Normal prior's",
                     "talk": _cell({p: talk.loc[p, "corr"] for p in ("laplace", "normal")}),
                     "A: the talk's procedure": _cell({p: a[p] for p in ("laplace", "normal") if p in a}, None, verdict("A")),
                     "B: converged": _cell({p: b[p] for p in ("laplace", "normal") if p in b}, None, verdict("B")),
                     "Laplace": "–",
                     "holds?": _holds(order({p: talk.loc[p, "corr"] for p in proper}), {"A": order(a), "B": order(b)})})

    def beats(table: pd.DataFrame | None) -> tuple[int, int] | None:
        return None if table is None or table.empty else (int(table["ensemble_beats_draws_corr"].sum()), len(table))

    counts = {"A": beats(draws_a), "B": beats(draws_b)}
    talk_beats = int((talk_draw["ensemble_corr"] > talk_draw["draw_corr_mean"]).sum()), len(talk_draw)
    rows.append({"finding": "every prior's ensemble corr is above the mean of its draws' corr",
                 "talk": f"{talk_beats[0]} of {talk_beats[1]} priors",
                 "A: the talk's procedure": "–" if counts["A"] is None else f"{counts['A'][0]} of {counts['A'][1]} priors",
                 "B: converged": "–" if counts["B"] is None else f"{counts['B'][0]} of {counts['B'][1]} priors",
                 "Laplace": "–",
                 "holds?": _holds(talk_beats[0] == talk_beats[1],
                                  {k: (None if v is None else v[0] == v[1]) for k, v in counts.items()})})
    if "baseline_best_epoch" in ours.index:
        best = ours.loc["baseline_best_epoch", "corr"]
        rows.append({"finding": "the best-epoch baseline's corr is above the 30-epoch baseline's",
                     "talk": _cell({"best epoch": talk.loc["baseline_best_epoch", "corr"]}, talk.loc["baseline", "corr"]),
                     "A: the talk's procedure": _cell({"best epoch": best}, baseline),
                     "B: converged": "–", "Laplace": "–",
                     "holds?": _holds(bool(talk.loc["baseline_best_epoch", "corr"] > talk.loc["baseline", "corr"]),
                                      {"A": bool(best > baseline)})})
    frame = pd.DataFrame(rows)
    frame.insert(0, "study", "1: ensembles")
    return frame
