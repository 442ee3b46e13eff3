"""The architecture appendix (the `architecture` chapter): how the network's depth changes its
scores and its posterior.

Everything the chapter (book/architecture.py) computes: its models (`models`: per depth the
baseline and a BNN per prior, and the linear Normal BNN checked against the exact posterior), its
tables (normal fits of the per-draw corr means, whose divergences compare the depths), its
findings (the values it glues into its markdown, under literal keys) and the talk's published
numbers with the talk's findings on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bnnlib.errors import BnnlibError
from bnnlib.evaluate.fits import LADDER_LABELS, diverging
from bnnlib.evaluate.study import ModelSpec
from bnnlib.models.priors import canonical_prior
from bnnlib.models.network import TALK_HIDDEN
from bnnlib.scoring.statistics import normal_fit, off_diagonal
from bnnlib.studies.common import Claim, draw_scores
from bnnlib.studies.common import CONVERGED_PRIOR, GLANCE_COLUMNS, TALK_PROCEDURE, bnn_spec, converged_name, joint_verdict
from bnnlib.studies.common import laplace_specs, scaled_budget, training_fields
from bnnlib.studies.common import agreement
from bnnlib.studies.common import PRIORS, SOURCE, talk_frame, prior_label


# --------------------------------------------------------------------------- models


def depth_models(params: Mapping) -> list[ModelSpec]:
    """The appendix: per depth, the baseline (`baseline_<depth>`) and a BNN per prior (`<prior>_<depth>`),
    at snapshot A (the talk's procedure); then, where the chapter continues its fits, the
    `CONVERGED_PRIOR`'s BNN of each depth at snapshot B (`<prior>_<depth>_converged`). The talk's
    depth is study 1's trajectories; at the other depths only the `CONVERGED_PRIOR`'s fit
    continues, the rest are fitted for the budget alone."""
    depths = [len(h) for h in params["architectures"]]
    if len(set(depths)) != len(depths):
        raise BnnlibError(f"architectures {params['architectures']} repeat a number of hidden layers; give one "
                          "per depth, e.g. [[], [128], [128, 64], [128, 64, 64]]")
    priors = [canonical_prior(p) for p in params["priors"]]
    specs, converged = [], []
    for hidden in params["architectures"]:
        depth, common = len(hidden), dict(hidden=tuple(hidden), **training_fields(params))
        specs.append(ModelSpec(f"baseline_{depth}", method="baseline", lr=params["lr_baseline"], **common))
        for p in priors:
            continued = tuple(hidden) == TALK_HIDDEN or p == CONVERGED_PRIOR  # study 1's network is its trajectory
            specs.append(bnn_spec(f"{p}_{depth}", p, {**params, "hidden": hidden},
                                  **({} if continued else TALK_PROCEDURE)))
        if CONVERGED_PRIOR in priors and params.get("continue_steps"):
            converged.append(bnn_spec(converged_name(f"{CONVERGED_PRIOR}_{depth}"), CONVERGED_PRIOR,
                                      {**params, "hidden": hidden}, snapshot="B"))
    return specs + converged


def grid(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The (depth, model) grid the talk's tables have: the models at snapshot A."""
    return [s for s in specs if s.snapshot == "A" or not s.has_posterior]


def converged_pairs(specs: Sequence[ModelSpec]) -> dict[int, tuple[str, str]]:
    """Per depth with a snapshot B: (its model at A, at B)."""
    names = {s.name for s in specs}
    return {len(s.hidden): (s.name, converged_name(s.name)) for s in grid(specs) if converged_name(s.name) in names}


def converged_findings(table: pd.DataFrame) -> dict:
    """What continuing the `CONVERGED_PRIOR`'s fits to snapshot B changes across depths (`table`: a
    `common.snapshots_table` per depth): the best depth at A and at B, and the verdicts at B
    (`converged_note`)."""
    if table.empty:
        return {"converged_note": "This run continues no fit to snapshot B (continue_steps 0, or no "
                                  f"{prior_label(CONVERGED_PRIOR)} prior)."}
    best = {snapshot: table[f"corr {snapshot}"].idxmax() for snapshot in ("A", "B")}
    unsettled = table.index[table["verdict B"] != "converged"].tolist()
    verdict = ("Every fit converged by B, so its row is a posterior's." if not unsettled else
               "Not converged at B: " + ", ".join(f"{d} hidden layers ({table.loc[d, 'verdict B']})" for d in unsettled) + "; "
               "their B scores are where the optimiser stood when the continuation's cap was reached.")
    return {"converged_note": (
        f"Under the {prior_label(CONVERGED_PRIOR)} prior the best depth is {best['A']} hidden layers at A "
        f"(corr {table.loc[best['A'], 'corr A']:.4f}) and {best['B']} at B (corr {table.loc[best['B'], 'corr B']:.4f}). "
        + verdict)}


EXACT_CHECK = "normal_linear_exact"
"""The linear Normal-prior BNN fitted for the check against the exact posterior."""

EXACT_CHECK_BUDGET = 2
"""The appendix checks SVI against the exact posterior on the linear Normal BNN fitted with this
many times the chapter's steps: at the talk's 17,730 steps its worst posterior mean was still
0.17 exact posterior stds from the exact one (its means still drifting from their He start,
below what the convergence verdict sees), at twice the steps 0.065 (measured on the default data)."""


def exact_models(params: Mapping) -> list[ModelSpec]:
    """The appendix's fit for the check against the exact posterior, when the chapter has a
    linear model and the Normal prior (else none)."""
    priors = [canonical_prior(p) for p in params["priors"]]
    if [] not in [list(h) for h in params["architectures"]] or "normal" not in priors:
        return []
    return [bnn_spec(EXACT_CHECK, "normal", {**params, "hidden": []}, continue_steps=0,
                     **scaled_budget(params, EXACT_CHECK_BUDGET))]


def laplace_models(params: Mapping) -> list[ModelSpec]:
    """The Laplace posteriors of the talk's network (study 1's, the same cache entries), whose log
    evidences the ladder sets beside the ELBOs, when the chapter has the talk's depth."""
    if list(TALK_HIDDEN) not in [list(h) for h in params["architectures"]]:
        return []
    return laplace_specs({**params, "hidden": list(TALK_HIDDEN)})


def laplace_evidences(fitted: Mapping[str, Any]) -> dict[str, float]:
    """Each Laplace posterior's log marginal likelihood per training row, by name."""
    return {name: float(result.extras["log_marginal_likelihood_per_row"]) for name, result in fitted.items()}


def models(params: Mapping) -> list[ModelSpec]:
    """Every fit of the architecture appendix: the depth study's, the exact check's and the
    Laplace posteriors for the evidence ladder."""
    return [*depth_models(params), *exact_models(params), *laplace_models(params)]


# --------------------------------------------------------------------------- tables


def depth_label(hidden: Sequence[int]) -> str:
    """'0 (linear)', '1 (128)', '3 (128, 64, 64)': the number of hidden layers and their sizes."""
    hidden = tuple(int(h) for h in hidden)
    return f"{len(hidden)} ({', '.join(map(str, hidden)) if hidden else 'linear'})"


def draw_mean_fits(results: Mapping[Any, Any], kind: str = "corr") -> pd.DataFrame:
    """Per model with several draws: the normal fit (mean, std) of its per-draw score means."""
    rows = {}
    for key, result in results.items():
        if result.scores.n_draws < 2:
            continue
        rows[key] = dict(zip(("mean", "std"), normal_fit(draw_scores(result, kind)["mean"])))
    if not rows:
        raise BnnlibError("draw_mean_fits found no model with more than one draw; pass Bayesian models")
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- findings (glue values)


def span(low: float, high: float, fmt: str) -> str:
    """'X to Y' in the format `fmt`, or one value where both read the same at that precision."""
    first, last = format(low, fmt), format(high, fmt)
    return first if first == last else f"{first} to {last}"


def corr_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings on the corr-by-depth table (a `check_claims` table of
    `corr_claims`) hold here too (`check_*`)."""
    found = agreement(check)
    return {"check_findings": found["findings"], "check_agreed": found["agreed"],
            "check_checkable": found["checkable"], "check_differ": found["differ"]}


def best_depths(corr: pd.DataFrame, talk_corr: pd.DataFrame) -> dict:
    """The depth with the best corr per model, here (`depth_ours`) and in the talk (`depth_talk`)."""
    def line(table: pd.DataFrame) -> str:
        return ", ".join(f"{prior_label(m)} {int(table[m].idxmax())}" for m in corr.columns if m in table)

    return {"depth_ours": line(corr), "depth_talk": line(talk_corr)}


def divergence_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings on its divergence matrix (a `check_claims` table of
    `divergence_claims`) hold here too (`div_*`)."""
    found = agreement(check)
    return {"div_findings": found["findings"], "div_agreed": found["agreed"],
            "div_checkable": found["checkable"], "div_differ": found["differ"]}


JS_BOUND_NATS = math.log(2)
"""The largest Jensen-Shannon divergence in nats (ln 2), whatever the two distributions: a value
above it cannot be a JS divergence in nats."""

JS_BOUND_BITS = 1.0
"""The largest Jensen-Shannon divergence in bits: a value above it cannot be a JS divergence in
either unit."""


def divergences(main_js: pd.DataFrame, jeffreys: pd.DataFrame, talk_div: pd.DataFrame) -> dict:
    """Whether the talk's divergence matrix can be a JS divergence (bounded by ln 2 nats, 1
    bit), and our JS and symmetrised KL ranges beside the talk's (`*_range`: "X to Y", or one
    value where both ends read the same)."""
    talk_values, ours = off_diagonal(talk_div), off_diagonal(main_js)
    return {"talk_above_ln2": int((talk_values > JS_BOUND_NATS).sum()), "talk_pairs": int(len(talk_values)),
            "ln2": JS_BOUND_NATS, "talk_above_1": int((talk_values > JS_BOUND_BITS).sum()),
            "js_low": ours.min(), "js_high": ours.max(),
            "jeffreys_low": off_diagonal(jeffreys).min(), "jeffreys_high": off_diagonal(jeffreys).max(),
            "talk_low": talk_values.min(), "talk_high": talk_values.max(),
            "js_range": span(ours.min(), ours.max(), ".4f"),
            "jeffreys_range": span(off_diagonal(jeffreys).min(), off_diagonal(jeffreys).max(), ".4f"),
            "talk_range": span(talk_values.min(), talk_values.max(), ".4f"),
            "closest": " and ".join(map(str, closest_pair(main_js))),
            "talk_closest": " and ".join(map(str, closest_pair(talk_div)))}


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
        budget = (f" This fit took {steps[0]:,.0f} steps. The depth study's linear fit, at the chapter's "
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
    errors of the depth study's linear fit against the exact answers, `exact.exact_check_summary`)
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


# --------------------------------------------------------------------------- the talk (real Numerai v3 data, 2021)
# Its published numbers, and its findings as tests on a table (checked on its numbers and ours by
# `common.check_claims`; a finding about every prior needs all three).


def talk_corr() -> pd.DataFrame:
    """The talk's validation corr by number of hidden layers (0-3) and model."""
    return talk_frame(
        {
            "baseline": [0.0156, 0.0164, 0.0169, 0.0145],
            "flat": [0.0134, 0.0199, 0.0175, 0.0199],
            "normal": [0.0093, 0.0174, 0.0147, 0.0167],
            "laplace": [0.0115, 0.0171, 0.0132, 0.0185],
        },
        [0, 1, 2, 3],
        "hidden_layers",
    )


def talk_sharpe() -> pd.DataFrame:
    """The talk's Sharpe ratios that go with `talk_corr`."""
    return talk_frame(
        {
            "baseline": [0.5838, 0.5481, 0.5948, 0.6422],
            "flat": [0.4077, 0.6599, 0.6086, 0.6454],
            "normal": [0.3236, 0.5152, 0.4641, 0.5038],
            "laplace": [0.3679, 0.5114, 0.4483, 0.5573],
        },
        [0, 1, 2, 3],
        "hidden_layers",
    )


def talk_divergence() -> pd.DataFrame:
    """The talk's "Jensen-Shannon divergence" between normal fits of the per-draw corr
    means, by number of hidden layers (the talk does not say which prior; values above ln 2 show
    these are not the bounded JS divergence, see `divergences`)."""
    values = [
        [0.0, 1.4725, 1.1164, 2.4232],
        [1.4725, 0.0, 1.9590, 0.0855],
        [1.1164, 1.9590, 0.0, 2.0222],
        [2.4232, 0.0855, 2.0222, 0.0],
    ]
    frame = pd.DataFrame(values, index=pd.Index([0, 1, 2, 3], name="hidden_layers"),
                         columns=pd.Index([0, 1, 2, 3], name="hidden_layers"))
    frame.attrs["source"] = SOURCE
    return frame


def closest_pair(matrix: pd.DataFrame) -> tuple[int, int]:
    """The pair of depths (shallower first) whose divergence is the smallest."""
    pairs = matrix.stack()
    a, b = pairs[[i < j for i, j in pairs.index]].idxmin()
    return int(a), int(b)


def corr_claims() -> list:
    """The talk's findings on the corr by (depth, model) table."""
    ALL = list(PRIORS)
    return [
        Claim("the flat-prior BNN beats the baseline at 1-3 hidden layers but not at 0",
              lambda t: bool((t.loc[[1, 2, 3], "flat"] > t.loc[[1, 2, 3], "baseline"]).all()
                             and t.loc[0, "flat"] < t.loc[0, "baseline"])),
        Claim("the baseline's corr is highest with 2 hidden layers", lambda t: t["baseline"].idxmax() == 2),
        Claim("the linear model (0 hidden layers) is the worst depth for every prior",
              lambda t: bool((t.loc[0, ALL] < t.drop(index=0)[ALL].min()).all())),
    ]


def divergence_claims() -> list:
    """The talk's findings on its divergence matrix between depths."""
    return [
        Claim("1 and 3 hidden layers give the closest distributions", lambda m: closest_pair(m) == (1, 3)),
        Claim("the distance from the linear model does not grow steadily with depth",
              lambda m: not (m.loc[0, 1] < m.loc[0, 2] < m.loc[0, 3])),
    ]


def laplace_glance(table: pd.DataFrame) -> pd.DataFrame:
    """The intro's glance row for the `CONVERGED_PRIOR`: the depth with the best corr in the talk,
    at A and at B (`table`: `converged_findings`' table), and whether it is the talk's."""
    talk = talk_corr()[CONVERGED_PRIOR]
    best_talk = talk.idxmax()

    def best(snapshot: str) -> tuple[Any, str]:
        if table.empty:
            return None, "–"
        corr = table[f"corr {snapshot}"]
        verdict = joint_verdict(table[f"verdict {snapshot}"])
        return corr.idxmax(), f"{corr.idxmax()} hidden layers ({corr.max():.4f})" + (
            f" ({verdict})" if verdict != "converged" else "")

    (a, a_cell), (b, b_cell) = best("A"), best("B")
    parts = [f"{'holds' if d == best_talk else 'differs'} at {label}" for label, d in (("A", a), ("B", b)) if d is not None]
    return pd.DataFrame([{"study": "4: architecture",
                          "finding": f"the best depth under the {prior_label(CONVERGED_PRIOR)} prior",
                          "talk": f"{best_talk} hidden layers ({talk.max():.4f})", GLANCE_COLUMNS[3]: a_cell,
                          GLANCE_COLUMNS[4]: b_cell, "Laplace": "–", "holds?": "; ".join(parts) or "–"}],
                        columns=list(GLANCE_COLUMNS))
