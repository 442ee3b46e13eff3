"""The appendix "Are these posteriors?" (`book/diagnostics.py`): the checks that study 1's fits
are posteriors, gathered out of the studies that use them.

Study 1's BNNs (the same cache entries) and the controls beside them: the Normal BNN from a
narrower start and from the prior (does the start decide where the converged fit ends?), a wide
proper prior beside the improper flat one, and the Normal BNN in float32 beside bf16. Each check's
table, its named threshold and its sentence are here, and so are the linear model's check against
the exact posterior and the ELBO / evidence ladder (the closed forms' yardsticks, the Laplace
posteriors' log evidences and every fit's ELBO on one scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bnnlib.evaluate.convergence import ELBO_TOL
from bnnlib.evaluate.fits import LADDER_LABELS, diverging
from bnnlib.evaluate.study import ModelSpec
from bnnlib.models.bnn import initial_scale
from bnnlib.models.precision import resolve_precision
from bnnlib.models.priors import WIDE, canonical_prior
from bnnlib.studies.common import TALK_PROCEDURE, bnn_spec, converged_name, guide_start, snapshot_pair, training_fields
from bnnlib.studies.common import laplace_specs, scaled_budget, span
from bnnlib.studies.common import prior_label, prior_labels


# --------------------------------------------------------------------------- models


def init_check_name(prior: str) -> str:
    """Study 1's refit of a prior's BNN from initial guide stds `init_shrink` times smaller."""
    return f"{canonical_prior(prior)}_small_init"


INIT_CHECK_PRIOR = "normal"
"""The prior whose BNN is refitted from a narrower start (init-invariance): one prior answers
whether the start decides where the converged fit ends; each further one costs a whole trajectory."""


PRECISION_CHECK = "normal_float32"
"""Study 1's Normal-prior BNN fitted and scored in float32 under the talk's procedure (snapshot A),
beside the chapter's precision."""

FROM_PRIOR = "normal_from_prior"
"""Study 1's Normal-prior BNN with its guide started at the prior (zero means, the prior's stds),
when the chapter's BNNs start where the talk's do (`guide_init: he`)."""

TALK_START = "normal_talk_start"
"""Study 1's Normal-prior BNN started where the talk's guide starts (He means, std 0.01), when the
chapter's BNNs start at the prior: whether the talk's start reaches the same posterior."""


def check_snapshot(params: Mapping) -> str:
    """The snapshot the start checks compare: B (converged) where the chapter continues its fits,
    else A, the only one."""
    return "B" if params.get("continue_steps") else "A"


def start_comparison(params: Mapping) -> tuple[str, str]:
    """Study 1's two Normal BNNs from the two starts, at `check_snapshot`: (the one started at the
    prior, the one started at the talk's guide); one of them is the chapter's Normal BNN."""
    chapter_normal = converged_name("normal") if check_snapshot(params) == "B" else "normal"
    if params.get("guide_init", "he") == "prior":
        return chapter_normal, TALK_START
    return FROM_PRIOR, chapter_normal


def init_pair(params: Mapping) -> tuple[str, str]:
    """The init-invariance pair at `check_snapshot`: (the chapter's Normal BNN, its narrower refit)."""
    chapter_normal = converged_name(INIT_CHECK_PRIOR) if check_snapshot(params) == "B" else INIT_CHECK_PRIOR
    return chapter_normal, init_check_name(INIT_CHECK_PRIOR)


WIDE_CONTROL = "wide"
"""Study 1's BNN under a proper Normal prior ten times wider than He's, beside the improper flat
prior (`priors.WIDE`), from the same start and under the same procedure (the talk's: snapshot A):
as vague as the flat prior where the data decide, but with a posterior. Fitted once, to the
talk's budget: under the talk's procedure its layers' stds still moved 29% over the last fifth of
the 17,730 steps, and 10-12% with three to five times the steps, while its ELBO per row moved less
than 0.001 (measured on the default data). The ELBO is nearly flat along the stds of the weights
the data barely use, so where they end is the optimiser's, which `wide_vs_flat` says."""


def controls(params: Mapping) -> set[str]:
    """The appendix's fits that are checks on study 1's, not study 1's own."""
    return {PRECISION_CHECK, WIDE_CONTROL, *start_comparison(params), *init_pair(params)} - {
        "normal", converged_name("normal")}


EXACT_CHECK = "normal_linear_exact"
"""The linear Normal-prior BNN fitted for the check against the exact posterior."""

EXACT_CHECK_BUDGET = 2
"""The appendix checks SVI against the exact posterior on the linear Normal BNN fitted with this
many times the chapter's steps: at the talk's 17,730 steps its worst posterior mean was still
0.17 exact posterior stds from the exact one (its means still drifting from their He start,
below what the convergence verdict sees), at twice the steps 0.065 (measured on the default data)."""

LINEAR_AT_BUDGET = "normal_0"
"""The linear Normal-prior BNN under the talk's procedure: the architecture appendix's depth-0
Normal fit (the same spec, so the same cache entry), which says how far the chapter's budget gets."""


def exact_models(params: Mapping) -> list[ModelSpec]:
    """The linear Normal-prior BNN for the check against the exact posterior, fitted with
    `EXACT_CHECK_BUDGET` times the chapter's steps, and at its budget under the talk's procedure
    (`LINEAR_AT_BUDGET`); none when the chapter has no Normal prior."""
    if "normal" not in [canonical_prior(p) for p in params["priors"]]:
        return []
    linear = {**params, "hidden": []}
    return [bnn_spec(EXACT_CHECK, "normal", linear, continue_steps=0, **scaled_budget(params, EXACT_CHECK_BUDGET)),
            bnn_spec(LINEAR_AT_BUDGET, "normal", linear, **TALK_PROCEDURE)]


def laplace_models(params: Mapping) -> list[ModelSpec]:
    """The Laplace posteriors of the chapter's network (study 1's, the same cache entries), whose
    log evidences the ladder sets beside the ELBOs."""
    return laplace_specs(params)


def laplace_evidences(fitted: Mapping[str, Any], params: Mapping) -> dict[str, float]:
    """Each of `laplace_models`' posteriors' log marginal likelihood per training row, by name,
    for those in `fitted` (the chapter's scored models)."""
    names = [s.name for s in laplace_models(params)]
    return {name: float(fitted[name].extras["log_marginal_likelihood_per_row"]) for name in names if name in fitted}


def models(params: Mapping) -> list[ModelSpec]:
    """The appendix: study 1's BNN trajectories (snapshots A and B, the same fits); the Normal BNN
    again from initial guide stds `init_shrink` times smaller (init-invariance) and from the other
    start (`start_comparison`), both at `check_snapshot`; beside the flat prior, a wide proper
    prior; the Normal BNN in float32 when the chapter runs in bf16 (these two at A only); the linear
    Normal BNN for the exact check (`exact_models`) and the Laplace posteriors of the chapter's
    network, whose evidences the ELBO ladder sets beside the ELBOs (`laplace_models`)."""
    training = training_fields(params)
    priors = [canonical_prior(p) for p in params["priors"]]
    snapshot = check_snapshot(params)
    specs = [spec for p in priors for spec in snapshot_pair(p, p, params)]
    if INIT_CHECK_PRIOR in priors:
        specs.append(bnn_spec(init_check_name(INIT_CHECK_PRIOR), INIT_CHECK_PRIOR, params,
                              shrink=params.get("init_shrink", 10.0), snapshot=snapshot))
    if "flat" in priors:  # started as the flat prior is, so that only the prior differs
        specs.append(bnn_spec(WIDE_CONTROL, "wide", params, **TALK_PROCEDURE, **guide_start("flat", params)))
    if "normal" in priors:  # the Normal BNN from the start the chapter's BNNs do not use
        control, start = (TALK_START, "he") if params.get("guide_init", "he") == "prior" else (FROM_PRIOR, "prior")
        specs.append(bnn_spec(control, "normal", params, guide_init=start, init_scale=initial_scale(start, None),
                              snapshot=snapshot))
    if resolve_precision(training["precision"]) != "float32" and "normal" in priors:
        specs.append(bnn_spec(PRECISION_CHECK, "normal", params, precision="float32", **TALK_PROCEDURE))
    return specs + exact_models(params) + laplace_models(params)


# --------------------------------------------------------------------------- findings (glue values)


ELBO_DECIMALS = 5
"""ELBOs per row are compared, and printed, to this many decimals: two that read alike there are
called equal, and the ELBO then does not say which of two fits is the better optimum."""

STD_TOLERANCE = 0.1
"""Two fits end at one optimum when every layer's median guide std agrees within this share: the
same 10% by which a converged fit's stds may still move over its last fifth
(`convergence.SCALE_TOL`), so a smaller difference cannot be told from one fit's own wandering."""


def init_invariance(check: pd.DataFrame, names: Sequence[str], tolerance: float = STD_TOLERANCE,
                    n_rows: int | None = None, verdicts: Mapping[str, str] | None = None) -> dict:
    """Which fits end at the same guide stds from two starting points, how far apart their
    ensembles' corrs are in Monte Carlo errors (a `fits.paired_comparison` table), and, where
    two converged fits (`verdicts`: fit name -> verdict) end apart, which reached the higher
    ELBO (`elbo_note`; in nats over the `n_rows` training rows when given): two ends are two
    optima, and only the higher one is the mean-field posterior."""
    same = [p for p in names if check.loc[p, "largest_std_change"] <= tolerance]
    apart = [p for p in names if p not in same]
    unsettled = [] if verdicts is None else [
        p for p in names if any(verdicts.get(check.loc[p, k]) != "converged" for k in ("first", "second"))]
    parts = []
    for p in apart:
        row = check.loc[p]
        if "elbo_per_row_first" not in row or not np.isfinite(row["elbo_per_row_first"] - row["elbo_per_row_second"]):
            continue
        if p in unsettled:
            continue
        gap = row["elbo_per_row_first"] - row["elbo_per_row_second"]
        nats = f" ({abs(gap) * n_rows:,.0f} nats over the training rows)" if n_rows else ""
        layer = max((c for c in row.index if c.startswith("std_ratio_")), key=lambda c: abs(np.log(row[c])))
        level = (f"equal to {ELBO_DECIMALS} decimals" if f"{abs(gap):.{ELBO_DECIMALS}f}" == f"{0:.{ELBO_DECIMALS}f}"
                 else f"{abs(gap):.{ELBO_DECIMALS}f} {'lower' if gap > 0 else 'higher'}{nats}")
        parts.append(
            f"{prior_label(p)}: the smaller start ends with {layer.removeprefix('std_ratio_')}'s median std "
            f"{row[layer]:.3g} times the first fit's, at an ELBO per row {level}, after "
            f"{row['steps_second']:,.0f} steps against "
            f"{row['steps_first']:,.0f}; its ensemble's corr is {row['corr_second']:.4f} against {row['corr_first']:.4f}")
    if not apart and not unsettled:
        note = "Both starts end at one optimum for every prior."
    elif not apart:
        note = (f"Both starts end at the same guide stds for every prior, but for {prior_labels(unsettled)} a fit "
                "did not converge, so the two ends are where the optimisers stopped, not one optimum.")
    elif parts:
        note = ("Where both fits converged and ended apart, they found two optima of the mean-field ELBO, and only "
                "the higher one is the variational posterior, whichever of the two predicts better: " + "; ".join(parts) + ".")
    else:
        note = ("No pair that ends apart has two converged fits with an ELBO to say which optimum is the better "
                "one.")
    apart_settled = [p for p in apart if p not in unsettled]
    apart_unsettled = [p for p in apart if p in unsettled]
    apart_note = ""
    if apart_settled:
        apart_note += (f"For {prior_labels(apart_settled)} the two fits end apart"
                       + (", both converged" if verdicts is not None else "")
                       + ": the spread of the draws is the initialisation's, not the data's alone.")
    if apart_unsettled:
        apart_note += (f" For {prior_labels(apart_unsettled)} the two fits end apart, but a fit did not converge, so "
                       "the difference is where the optimisers stopped and says nothing yet about the posterior.")
    return {"init_same": int(len(same)), "init_of": int(len(names)), "init_same_names": prior_labels(same),
            "init_tolerance": 100 * tolerance, "init_elbo_note": note, "init_apart_note": apart_note.strip(),
            "init_mc_errors": ", ".join(f"{prior_label(p)} {check.loc[p, 'difference_in_mc_errors']:.1f}" for p in names)}


def no_init_check() -> dict:
    """The init-invariance glue keys when the run has no Normal prior to refit."""
    return {"init_same": 0, "init_of": 0, "init_same_names": "none", "init_tolerance": 100 * STD_TOLERANCE,
            "init_elbo_note": "", "init_apart_note": "This run has no Normal prior, so no refit from a narrower start.",
            "init_mc_errors": "none"}


def precision_note(check: pd.DataFrame | None, init_check: pd.DataFrame | None, fit_table: pd.DataFrame,
                   precision: str) -> dict:
    """bf16 against float32 for the Normal posterior, beside the difference two starting points
    make and the fits' times; or that the run used one precision throughout."""
    if check is None:
        return {"precision_note": f"This run uses precision {precision} throughout; there is nothing to compare."}
    row = check.iloc[0]
    return {"precision_note": (
        f"In bf16 the Normal BNN's ensemble corr is {row['corr_second']:.4f} against {row['corr_first']:.4f} in "
        f"float32: a difference of {abs(row['corr_difference']):.5f}, {row['difference_in_mc_errors']:.2f} times "
        "the Monte Carlo error of the draws"
        + ("" if init_check is None or "normal" not in init_check.index else
           f"; refitting from another initial std moved the converged fit's by "
           f"{abs(init_check.loc['normal', 'corr_difference']):.5f}") + ". The layers' median guide std changed by at most "
        f"{row['largest_std_change']:.1%}. A step took {_ms_a_step(fit_table, PRECISION_CHECK):.1f} ms in float32 "
        f"against {_ms_a_step(fit_table, 'normal'):.1f} ms in bf16.")}


def _ms_a_step(fit_table: pd.DataFrame, name: str) -> float:
    """A fit's milliseconds an optimiser step, from its row (a trajectory's A row records the
    seconds and steps to A)."""
    return 1000 * fit_table.loc[name, "fit_seconds"] / fit_table.loc[name, "steps"]


def wide_vs_flat(fit_table: pd.DataFrame, fitted: Mapping, wide: str, flat: str = "flat") -> dict:
    """The flat prior's fit beside the wide proper prior's: verdicts, where the flat fit stopped,
    the largest guide stds and the ensembles' corr (`wide_note`; says so when either is absent)."""
    if wide not in fit_table.index or flat not in fit_table.index:
        return {"wide_factor": WIDE, "wide_note": "This run has no flat prior, so no wide prior beside it."}
    f, w = fit_table.loc[flat], fit_table.loc[wide]
    stopped = f.get("stopped_at_step")
    where = (f" (its loss stopped being finite at step {int(stopped):,} of its {int(f.budget_steps):,})"
             if stopped is not None and pd.notna(stopped) else "")
    corr = {name: fitted[name].summary()["mean"] for name in (flat, wide)}
    return {"wide_factor": WIDE, "wide_note": (
        f"Under the flat prior the fit is {f.verdict}{where}; its guide's 90th-percentile std ended at "
        f"{f.scale_p90_last:.3g}, its ensemble's validation corr is {corr[flat]:.4f}. Under the wide prior the "
        f"fit is {w.verdict} after {int(w.steps):,} steps: 90th-percentile std {w.scale_p90_last:.3g}, ensemble "
        f"corr {corr[wide]:.4f}. "
        + ("The wide prior's fit converged, so its numbers are a posterior's, which the flat prior's cannot be."
           if w.verdict == "converged" else _wide_unsettled(w)))}


def _wide_unsettled(w: pd.Series) -> str:
    """Why the wide prior's fit is not a posterior yet, from its verdict's window."""
    flat_elbo = ""
    if pd.notna(w.get("elbo_change_window")) and abs(w.elbo_change_window) <= ELBO_TOL:
        flat_elbo = (f"Its ELBO per row has settled (it moved {abs(w.elbo_change_window):.4f} over the last fifth of "
                     f"the steps) while a layer's stds still moved {w.scale_change_window:.0%}: the ELBO is nearly "
                     "flat along the stds of the weights the data barely use, so where they stop is the optimiser's "
                     "doing, bounded by the prior where the flat prior's are not. ")
    return flat_elbo + "Neither is a converged posterior, so neither ensemble's corr is a property of a posterior."


def wide_start(fit_table: pd.DataFrame) -> dict:
    """Where the wide prior's guide started (`wide_start`), or that this run has no wide prior."""
    return {"wide_start": f"stds {fit_table.loc[WIDE_CONTROL, 'init_scale']:g}"
            if WIDE_CONTROL in fit_table.index else "no wide prior in this run"}


def from_prior(fit_table: pd.DataFrame, fitted: Mapping, started_at_prior: str, talk_start: str,
               pair: pd.Series | None = None, tolerance: float = STD_TOLERANCE, n_rows: int | None = None) -> dict:
    """The Normal BNN from the prior beside the same model from the talk's start: verdicts and
    steps, last ELBO per row (higher is closer to the optimum), hidden layers at the prior, the
    posterior-mean network's corr and the ensembles' corr, and whether both reach one posterior
    (`from_prior_note`). `pair` is the two fits' row of a `fits.paired_comparison` (first: the
    prior's start): with it, the corrs' distance in Monte Carlo errors and the largest change of a
    layer's median std, which decide "one posterior" when both converged (within `tolerance`);
    where they end apart, the ELBO gap in nats over the `n_rows` training rows when given."""
    if started_at_prior not in fit_table.index or talk_start not in fit_table.index:
        return {"from_prior_note": "This run has no Normal prior, so there is no second start to compare."}
    a, b = fit_table.loc[started_at_prior], fit_table.loc[talk_start]
    corr = {name: fitted[name].summary()["mean"] for name in (started_at_prior, talk_start)}
    finite = np.isfinite(a.elbo_per_row_last) and np.isfinite(b.elbo_per_row_last)
    prior_higher = finite and a.elbo_per_row_last > b.elbo_per_row_last
    if not finite:
        compared = "cannot be compared with the one"
    elif f"{a.elbo_per_row_last:.{ELBO_DECIMALS}f}" == f"{b.elbo_per_row_last:.{ELBO_DECIMALS}f}":
        compared = f"equal, to {ELBO_DECIMALS} decimals, to the one"
    else:
        compared = f"{'higher' if prior_higher else 'lower'} than the one"
    apart = ""
    if pair is not None:
        apart = (f", {pair['difference_in_mc_errors']:.1f} times their Monte Carlo error apart; the largest change "
                 f"of a layer's median std between the two is {pair['largest_std_change']:.0%}")

    def unsettled(row: pd.Series) -> str:
        """Where a fit that did not converge is, by its verdict."""
        if row.verdict == "diverging":
            return (f"diverged after {int(row.steps):,} steps: it is on its way to no posterior, and more steps "
                    "do not mend that, so its scores describe where the optimiser stopped")
        return (f"is {row.verdict} after {int(row.steps):,} steps: still on its way, so its scores describe where "
                "the optimiser stopped")

    if a.verdict == "converged" and b.verdict != "converged":
        ending = f"Only the fit from the prior is a posterior; the talk's start {unsettled(b)}."
    elif b.verdict == "converged" and a.verdict != "converged":
        ending = f"Only the fit from the talk's start is a posterior; the prior's start {unsettled(a)}."
    elif a.verdict == "converged" and pair is None:
        ending = "Both converged; a higher ELBO marks the better of the two optima the starts reached."
    elif a.verdict == "converged" and pair["largest_std_change"] <= tolerance:
        ending = (f"Both converged, to one posterior (every layer's median std within {tolerance:.0%}): the talk's "
                  "start is not a different model, only a longer road to the same one.")
    elif a.verdict == "converged" and compared.startswith("equal"):
        ending = (f"Both converged, but to different ends: two optima of the mean-field ELBO, at ELBOs equal to "
                  f"{ELBO_DECIMALS} decimals, so the ELBO does not say which is the better variational posterior.")
    elif a.verdict == "converged":
        gap = abs(a.elbo_per_row_last - b.elbo_per_row_last)
        nats = f", by {gap * n_rows:,.0f} nats over the training rows" if n_rows else ""
        better, other = ("the prior's start", "the talk's") if prior_higher else ("the talk's start", "the prior's")
        ending = (f"Both converged, but to different ends: two optima of the mean-field ELBO. The one from {better} "
                  f"has the higher ELBO{nats}, so it is the better variational posterior of the two; the one from "
                  f"{other} is a local optimum, whichever of the two predicts better.")
    else:
        diverged = [name for name, row in (("the fit from the prior", a), ("the fit from the talk's start", b))
                    if row.verdict == "diverging"]
        ending = "Neither fit converged, so neither end is a posterior"
        ending += (f"; {' and '.join(diverged)} diverged, which more steps do not mend." if diverged else
                   ", and which end is the posterior stays open at this budget.")
    return {"from_prior_note": (
        f"Started at the prior, the fit is {a.verdict} after {int(a.steps):,} steps; from the talk's start, "
        f"{b.verdict} after {int(b.steps):,}. Its last ELBO per row, {a.elbo_per_row_last:.{ELBO_DECIMALS}f}, is "
        f"{compared} from the talk's start ({b.elbo_per_row_last:.{ELBO_DECIMALS}f}); hidden layers at their prior: "
        f"{a.layers_at_prior or 'n/a'} (talk's start: {b.layers_at_prior or 'n/a'}); the posterior-mean network's "
        f"validation corr {a.mean_net_corr_last:.4f} (talk's start: {b.mean_net_corr_last:.4f}); the ensemble's corr "
        f"{corr[started_at_prior]:.4f} (talk's start: {corr[talk_start]:.4f}){apart}. {ending}")}


# --------------------------------------------------------------------------- the exact check and the ELBO ladder


NO_EXACT = "This run has no linear model with the Normal prior, so there is no exact check."
"""`exact_note` and `worth_note` when the run has no linear Normal-prior model to check."""

EXACT_TOLERANCE = 0.1
"""SVI's answer is close enough to the exact one when its worst mean is within this many exact
posterior stds of the exact mean and its worst std within this share of the mean-field optimum: a
tenth of a posterior std, small beside the spread of the draws themselves."""


def exact_note(table: pd.DataFrame, worst: Mapping[str, float], tolerance: float = EXACT_TOLERANCE,
               at_budget: Mapping[str, float] | None = None, steps: tuple[int, int] | None = None,
               figure: int | str | None = None, at_budget_verdict: str | None = None) -> dict:
    """How far SVI's linear model is from the exact posterior mean and the mean-field optimum,
    each against the tolerance we ask for, and what the mean-field family itself gives up, as
    the section's `exact_note` (describing the chapter's figure number `figure`); with
    `at_budget` (the worst errors of the same model fitted with the chapter's budget, whose
    convergence verdict is `at_budget_verdict`) and `steps` (this fit's and that one's), how far
    the chapter's budget gets."""
    ratio = table["meanfield_std"] / table["exact_std"]
    mean_error, std_error = worst["max_mean_error_in_std"], worst["max_std_ratio_error"]
    budget = ""
    if at_budget is not None and steps is not None:
        budget_mean = at_budget["max_mean_error_in_std"]
        budget = (f" This fit took {steps[0]:,.0f} steps. The linear fit under the talk's procedure, at the chapter's "
                  f"{steps[1]:,.0f}, ends with its worst mean {budget_mean:.3f} exact posterior stds from the exact "
                  f"mean ({'within' if budget_mean <= tolerance else 'outside'} {tolerance:g}) and its worst std "
                  f"{at_budget['max_std_ratio_error']:.1%} from the optimum")
        if budget_mean <= tolerance:
            budget += "."
        elif budget_mean > mean_error:
            seen = ("more slowly than its convergence verdict (converged) can see" if at_budget_verdict == "converged"
                    else f"as its verdict ({at_budget_verdict}) says" if at_budget_verdict else "")
            budget += (f": with {steps[0] / steps[1]:.3g} times the steps the worst mean came to {mean_error:.3f}, "
                       "so at the chapter's budget its means were still drifting from their start"
                       + (f", {seen}." if seen else "."))
        else:
            budget += (f": with {steps[0] / steps[1]:.3g} times the steps it came no closer ({mean_error:.3f}), so "
                       "the chapter's budget is not what keeps it from the exact mean.")
    low, high = f"{ratio.min():.0%}", f"{ratio.max():.0%}"
    if low == high == "100%":
        family = ("The mean-field stds are 100% of the exact marginal stds: here the mean-field family gives up "
                  "less than half a percent of them.")
    else:
        family = (f"The mean-field stds are {span(ratio.min(), ratio.max(), '.0%')} of the exact marginal stds: what "
                  "the mean-field family itself gives up, whatever the optimiser does.")
    shows = "The figure" if figure is None else f"Figure {figure}"
    return {"exact_note": (
        f"{shows} shows one point per parameter of the linear BNN: SVI's mean against the exact posterior mean "
        "(left); SVI's std against the mean-field optimum (dots) and the exact marginal std (crosses; right). "
        f"The worst parameter's SVI mean is {mean_error:.3f} exact posterior stds from the exact mean "
        f"({'within' if mean_error <= tolerance else 'outside'} the {tolerance:g} we ask for), and the worst SVI std "
        f"is {std_error:.1%} from the mean-field optimum ({'within' if std_error <= tolerance else 'outside'} "
        f"{tolerance:.0%}). " + family + budget)}


def _nats_over(nats: float, what: str) -> str:
    """'worth 30.0 nats to X', or how far below the constant X ends."""
    if nats > 0:
        return f"worth {nats:.1f} nats to {what}"
    return f"worth nothing to {what}, which ends {-nats:.1f} nats below the best constant prediction"


def data_worth(ladder: pd.DataFrame, fit_table: pd.DataFrame, n_rows: int, elbo_tolerance: float,
               linear_check: Mapping[str, float] | None = None, tolerance: float = EXACT_TOLERANCE) -> dict:
    """What the inputs are worth in nats (an `elbo_ladder`), which deep fits under a proper prior
    end below the best constant prediction, and how the convergence criterion's ELBO tolerance
    compares with the linear model's whole margin (`worth_note`).

    The linear Normal-prior fits' last records are set against the exact mean-field optimum (the
    ladder's reference is that model's): below it, their shortfall is what the live optimiser's
    ELBO costs, and the deep fits' deficits are weighed against it. `linear_check` (the worst
    errors of the linear fit under the talk's procedure against the exact answers, `exact.exact_check_summary`)
    says whether its averaged posterior is at the optimum (within `tolerance`), so that the
    shortfall is Adam's jitter, not a distance still to go."""
    evidence = ladder.loc[LADDER_LABELS["log_evidence"], "over_constant_nats"]
    meanfield = ladder.loc[LADDER_LABELS["meanfield_elbo"], "over_constant_nats"]
    constant = ladder.loc[LADDER_LABELS["constant_loglik"], "elbo_per_row"]
    proper = fit_table[fit_table["prior"].isin(["normal", "laplace"])]
    deep = proper[proper["hidden"] != "linear"]
    diverged = diverging(deep)
    deep = deep.drop(index=diverged)  # a run-away ELBO is no deficit: it is named, not measured
    linear = fit_table[(fit_table["prior"] == "normal") & (fit_table["hidden"] == "linear")]
    below = (deep["elbo_per_row_last"] - constant)[lambda m: m < 0] * n_rows
    at_prior = "; ".join(f"{name}: {row.layers_at_prior}" for name, row in deep.iterrows() if row.layers_at_prior)
    jitter, shortfall = "", None
    gaps = ((ladder.loc[LADDER_LABELS["meanfield_elbo"], "elbo_per_row"] - linear["elbo_per_row_last"]) * n_rows
            ).dropna()
    one = len(gaps) == 1
    lin = "the linear fit's" if one else "the linear fits' largest"
    if not gaps.empty:  # the live optimiser's ELBO, beside the exact optimum of the same model
        at_optimum = None
        jitter = (" The SVI rows are each fit's last trace record, the live optimiser's ELBO, not that of its "
                  f"averaged posterior. The linear Normal {'fit' if one else 'fits'}")
        if linear_check is not None:
            mean_error, std_error = linear_check["max_mean_error_in_std"], linear_check["max_std_ratio_error"]
            at_optimum = mean_error <= tolerance and std_error <= tolerance
            jitter += (f", whose averaged posterior {'lies close to' if at_optimum else 'is not yet at'} the exact "
                       f"optimum (the check above: worst mean {mean_error:.3f} exact posterior stds, worst std "
                       f"{std_error:.1%} from it),")
        records = "records" if one else "record"
        if (gaps > 0).all():
            shortfall = float(gaps.max())
            within_words = ("within what Adam's jitter costs" if at_optimum else
                            "within a shortfall that is partly the linear fit's distance still to go, not jitter "
                            "alone" if at_optimum is False else
                            "within what the live optimiser's ELBO gives up")
            cost = ("what Adam's jitter costs" if at_optimum else
                    "Adam's jitter and the distance still to go together" if at_optimum is False else
                    "what the live iterate gives up against the optimum")
            jitter += f" {records} {span(gaps.min(), gaps.max(), ',.0f')} nats below the mean-field optimum: {cost}."
        elif (gaps < 0).all():
            jitter += (f" {records} {span(-gaps.max(), -gaps.min(), ',.0f')} nats above the mean-field optimum, so the "
                       "last records show no cost of Adam's jitter at this size.")
        else:
            jitter += (f" record from {-gaps.min():,.0f} nats above the mean-field optimum to {gaps.max():,.0f} below "
                       "it: on both sides of it, so the records show no consistent cost of Adam's jitter.")
    if deep.empty:
        deep_note = ("This run has no deep fit under a proper prior" + (" that did not diverge." if diverged else "."))
    elif below.empty:
        deep_note = f"None of the {len(deep)} deep fits under a proper prior ends below the best constant prediction."
    else:
        deficits = -below
        deep_note = (f"{len(below)} of the {len(deep)} deep fits under a proper prior end below the best constant "
                     f"prediction, by {span(deficits.min(), deficits.max(), ',.0f')} nats")
        if shortfall is None:
            deep_note += (": as their last records stand, their guides pay more in prior cost and prediction noise "
                          "than their inputs return.")
        else:
            beyond = deficits[deficits > shortfall]
            if len(beyond) == len(deficits):
                deep_note += (f", {'more' if len(deficits) == 1 else 'each more'} than {lin} shortfall "
                              f"({shortfall:,.0f} nats): beyond that, their guides pay more in prior cost and "
                              "prediction noise than their inputs return.")
            elif beyond.empty:
                deep_note += (f", {'no more' if len(deficits) == 1 else 'none more'} than {lin} shortfall "
                              f"({shortfall:,.0f} nats): {within_words}, so these records do not show that their "
                              "guides pay more than their inputs return.")
            else:
                within = [n for n in deficits.index if n not in beyond.index]
                deep_note += (f"; {', '.join(beyond.index)} by more than {lin} shortfall ({shortfall:,.0f} nats): "
                              "beyond that, their guides pay more in prior cost and prediction noise than their "
                              f"inputs return; {', '.join(within)} by no more than it: {within_words}.")
    if diverged:
        deep_note += (f" {', '.join(diverged)} diverged (its ELBO ran away), so it is not counted here."
                      if len(diverged) == 1 else f" {', '.join(diverged)} diverged (their ELBOs ran away), so they "
                      "are not counted here.")
    if evidence > 0:
        ratio = elbo_tolerance / (evidence / n_rows)
        scale = (f"The convergence criterion's ELBO tolerance ({elbo_tolerance:g} nats per row) is "
                 + (f"{ratio:,.0f}" if ratio >= 1.5 else f"{ratio:.2g}") + " times the linear model's whole margin "
                 f"per row ({evidence / n_rows:.6f}): ")
        scale += ("on data this noisy the ELBO alone cannot tell a network that uses its inputs from one that does "
                  "not; the guide's scales and the posterior-mean network's corr can." if ratio >= 1 else
                  "the whole margin is larger than the tolerance, so the criterion's ELBO test sees a fit still "
                  "moving by what the inputs are worth.")
    else:
        scale = ("The linear model has no margin over the best constant prediction here, so no ELBO tolerance can "
                 "tell a network that uses its inputs from one that does not.")
    return {"worth_note": (
        f"Over all {n_rows:,} training rows, the inputs are {_nats_over(evidence, 'the exact linear model')}"
        + (f" ({evidence / n_rows:.6f} per row)" if evidence > 0 else "")
        + f", and {_nats_over(meanfield, 'its mean-field optimum').removeprefix('worth ')}.{jitter} {deep_note} "
        f"Hidden layers at their prior: {at_prior or 'none'}. {scale}")}
