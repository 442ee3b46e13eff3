"""The values a chapter's findings glue into its markdown, computed from its tables.

Each function takes the tables a chapter has already shown and returns {glue key: value}:
numbers (formatted by the markdown, e.g. ``{glue:text}`best_corr:.4f```) and, where a finding
depends on a comparison, its computed wording ("within" / "outside", which prior, what the
control says). The book's prose is written in the chapters' markdown; nothing here is typed
from a result, so a rerun with other data rewrites the findings consistently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bnnlib.studies.analysis import percent_range
from bnnlib.evaluate.fits import CONSTANT, LADDER_LABELS
from bnnlib.studies.talk import prior_label, prior_labels

FLAT_NOTE = (" (the improper flat prior has no proper posterior for weights the data do not pin down: the guide's "
             "entropy grows their scales without bound, so its spread is set by when the optimiser stopped)")


def span(low: float, high: float, fmt: str) -> str:
    """'X to Y' in the format `fmt`, or one value where both read the same at that precision."""
    first, last = format(low, fmt), format(high, fmt)
    return first if first == last else f"{first} to {last}"


def value_range(values, fmt: str, subject: str, plural: str | None = None) -> str:
    """'the AUCs range from X to Y', 'the AUCs are all X', or 'the AUC is X' (one value)."""
    values = pd.Series(values, dtype=float).dropna()
    if values.empty:
        return f"there is no {subject}"
    many = plural or f"{subject}s"
    if len(values) == 1:
        return f"the {subject} is {values.iloc[0]:{fmt}}"
    low, high = format(values.min(), fmt), format(values.max(), fmt)
    return f"the {many} are all {low}" if low == high else f"the {many} range from {low} to {high}"


def agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings (a `check_claims` table) were checkable and hold here too,
    and the wording of those that differ."""
    differ = "; ".join(check.loc[check["agree"].eq(False), "finding"]) or "none"
    return {"findings": int(len(check)), "agreed": int(check["agree"].eq(True).sum()),
            "checkable": int(check["agree"].notna().sum()), "differ": differ}


def prefixed(prefix: str, values: Mapping) -> dict:
    """`values` with every key prefixed (several tables' findings on one page)."""
    return {f"{prefix}_{k}": v for k, v in values.items()}


def unconverged_note(verdicts: Mapping[str, str], consequence: str) -> str:
    """One sentence per fit that did not converge: its verdict and what it means for the
    numbers computed from it (empty when every fit converged)."""
    return "".join(f"The {prior_label(name)} fit is {verdict}{FLAT_NOTE if name == 'flat' else ''}; {consequence} "
                   for name, verdict in verdicts.items() if verdict != "converged").strip()


def convergence(fit_table: pd.DataFrame, names: Sequence[str], consequence: str) -> dict:
    """Which of `names` converged (labels) and the note on the others."""
    verdicts = {n: fit_table.loc[n, "verdict"] for n in names}
    converged = [n for n, v in verdicts.items() if v == "converged"]
    return {"converged": prior_labels(converged),
            "unconverged_note": unconverged_note(verdicts, consequence) or "Every fit converged."}


# --------------------------------------------------------------------------- study 1


def _best_note(scores: pd.DataFrame, names: Sequence[str], converged: Sequence[str] | None, what: str,
               label) -> tuple[str | None, str]:
    """The highest corr among `names` (rows of `scores`, columns corr and sharpe), picked among
    the `converged` ones when verdicts are known (None: they are not), in words: (its name, a
    sentence). `what` names one of them ("BNN"), `label` says which one ("the Normal prior's")."""
    names = list(names)
    if not names:
        return None, f"This run has no {what} to compare."
    corr = scores.loc[names, "corr"]
    top = corr.idxmax()

    def score(name) -> str:
        return f"corr {scores.loc[name, 'corr']:.4f}, Sharpe {scores.loc[name, 'sharpe']:.3f}"

    if converged is None:
        return top, f"The best {what} here is {label(top)} ({score(top)})."
    pool = [n for n in names if n in converged]
    if not pool:
        return top, (f"No {what} converged, so none is a posterior to call the best; the highest corr, where the "
                     f"optimiser stopped, is {label(top)} ({score(top)}).")
    best = corr[pool].idxmax()
    note = f"The best converged {what} here is {label(best)} ({score(best)})"
    higher = [n for n in names if n not in pool and corr[n] > corr[best]]
    if higher:
        note += (f"; {', '.join(label(n) for n in higher)} {'scores' if len(higher) == 1 else 'score'} higher, "
                 f"but {'its fit' if len(higher) == 1 else 'their fits'} did not converge")
    return best, note + "."


def study1_scores(ours: pd.DataFrame, bnn_names: Sequence[str], best_epoch: int | None, epochs: int,
                  talk_best_epoch: int, talk_epochs: int, verdicts: Mapping[str, str] | None = None) -> dict:
    """The best BNN (among the converged ones when `verdicts`, fit name -> verdict, are given),
    the baseline, the best epoch, and the matched-budget control's verdict on each of the BNNs
    `bnn_names` (`ours`: corr and sharpe per model, with rows baseline and baseline_bnn_lr)."""
    names = list(bnn_names)
    converged = None if verdicts is None else [n for n in names if verdicts.get(n) == "converged"]
    best, best_note = _best_note(ours, names, converged, "BNN", lambda n: f"the {prior_label(n)} prior's")
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


def study1_draws(draw_table: pd.DataFrame, talk_draws: pd.DataFrame, converged: Sequence[str],
                 names: Sequence[str]) -> dict:
    """The ensemble against its draws, and whose draws vary most, beside the talk; which
    spreads are a posterior's (only converged fits')."""
    widest = draw_table["draw_corr_std"].idxmax()
    talk_widest = talk_draws["draw_corr_std"].idxmax()
    spreads = ("Every fit converged, so these spreads are the posteriors'." if len(converged) == len(names) else
               "No fit converged, so none of these spreads is a property of a posterior." if not converged else
               f"Only the spreads of converged fits ({prior_labels(converged)}) are properties of a posterior.")
    return {"beats_corr": int(draw_table["ensemble_beats_draws_corr"].sum()),
            "beats_sharpe": int(draw_table["ensemble_beats_draws_sharpe"].sum()), "priors": int(len(draw_table)),
            "talk_beats": int((talk_draws["ensemble_corr"] > talk_draws["draw_corr_mean"]).sum()),
            "talk_priors": int(len(talk_draws)),
            "share_below": 100 * float(draw_table["share_below_ensemble_corr"].mean()),
            "widest": prior_label(widest), "widest_std": draw_table.loc[widest, "draw_corr_std"],
            "talk_widest": prior_label(talk_widest), "talk_widest_std": talk_draws.loc[talk_widest, "draw_corr_std"],
            "spreads": spreads}


def init_invariance(check: pd.DataFrame, names: Sequence[str], tolerance: float = 0.1,
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
        level = ("equal to 5 decimals" if f"{abs(gap):.5f}" == "0.00000" else
                 f"{abs(gap):.5f} {'lower' if gap > 0 else 'higher'}{nats}")
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
    return {"same": int(len(same)), "of": int(len(names)), "same_names": prior_labels(same),
            "tolerance": 100 * tolerance, "elbo_note": note, "apart_note": apart_note.strip(),
            "mc_errors": ", ".join(f"{prior_label(p)} {check.loc[p, 'difference_in_mc_errors']:.1f}" for p in names)}


NO_TRUTH = "This dataset has no ground truth (real data), so this check is skipped."
NO_H4 = "H4 is not among this run's hypotheses, so there is no beta to show."
NO_EXACT = "This run has no linear model with the Normal prior, so there is no exact check."


def precision_note(check: pd.DataFrame | None, init_check: pd.DataFrame, fit_table: pd.DataFrame,
                   precision: str) -> dict:
    """bf16 against float32 for the Normal posterior, beside the difference two starting points
    make and the fits' times; or that the run used one precision throughout."""
    if check is None:
        return {"precision_note": f"This run uses precision {precision} throughout; there is nothing to compare."}
    row = check.iloc[0]
    from bnnlib.studies.book_models import PRECISION_CHECK

    return {"precision_note": (
        f"In bf16 the Normal BNN's ensemble corr is {row['corr_second']:.4f} against {row['corr_first']:.4f} in "
        f"float32: a difference of {abs(row['corr_difference']):.5f}, {row['difference_in_mc_errors']:.2f} times "
        "the Monte Carlo error of the draws; refitting from another initial std moved it by "
        f"{abs(init_check.loc['normal', 'corr_difference']):.5f}. The layers' median guide std changed by at most "
        f"{row['largest_std_change']:.1%}. Fits: {fit_table.loc[PRECISION_CHECK, 'fit_seconds']:.0f} s in float32 "
        f"against {fit_table.loc['normal', 'fit_seconds']:.0f} s in bf16.")}


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


# --------------------------------------------------------------------------- study 2


def burn_detection(detection: pd.DataFrame, talk_burn: pd.DataFrame, verdicts: Mapping[str, str] | None = None) -> dict:
    """The burn-era shares, how many priors' std beats chance (and significantly), the best
    AUC, and how strong the talk's own evidence is; with `verdicts` (fit name -> verdict),
    `best_caveat` says when the best AUC's fit did not converge."""
    best = detection["auc"].idxmax()
    caveat = ""
    if verdicts is not None and verdicts.get(best) != "converged":
        caveat = (f" That fit is {verdicts.get(best, 'not judged')}, so its AUC describes where the optimiser stopped, "
                  "not a posterior's uncertainty.")
    talk_best, talk_worst = talk_burn["auc"].idxmax(), talk_burn["auc"].idxmin()
    worst_p = talk_burn.loc[talk_worst, "p_value"]
    return {"burn_share": percent_range(detection["burn_eras"] / detection["n_eras"]),
            "talk_burn_share": percent_range(talk_burn["burn_eras"] / talk_burn["n_eras"]),
            "above": int((detection["auc"] > 0.5).sum()), "priors": int(len(detection)),
            "significant": int(((detection["auc"] > 0.5) & (detection["p_value"] < 0.05)).sum()),
            "best": prior_label(best), "best_auc": detection.loc[best, "auc"],
            "talk_best": prior_label(talk_best), "talk_best_auc": talk_burn.loc[talk_best, "auc"],
            "talk_best_p": talk_burn.loc[talk_best, "p_value"], "talk_best_burn": int(talk_burn.loc[talk_best, "burn_eras"]),
            "talk_eras": int(talk_burn.loc[talk_best, "n_eras"]),
            "talk_worst": prior_label(talk_worst), "talk_worst_auc": talk_burn.loc[talk_worst, "auc"],
            "talk_worst_p2": 2 * min(worst_p, 1 - worst_p), "best_caveat": caveat}


def burn_agreement(eras: Mapping[str, pd.DataFrame], per_era: Mapping[str, pd.DataFrame],
                   detection_nc: pd.DataFrame) -> dict:
    """On how many (prior, era) pairs the two scores agree that the era burned, and the range
    of the AUCs with numerai_corr (`auc_note`, one value where they read the same)."""
    same = sum(int((eras[p]["burn"].to_numpy() == (per_era[p]["numerai_corr"] < 0).to_numpy()).sum()) for p in eras)
    return {"same": same, "pairs": sum(len(e) for e in eras.values()),
            "auc_low": detection_nc["auc"].min(), "auc_high": detection_nc["auc"].max(),
            "auc_note": value_range(detection_nc["auc"], ".3f", "AUC with numerai_corr", "AUCs with numerai_corr")}


def shifted_eras(table: pd.DataFrame, n_eras: int) -> dict:
    """Burn rates in the shifted eras against the others, and the std's AUC as a detector of the
    shifted eras (an `analysis.shift_table`), as the section's `truth_note`."""
    shifted = int(table["shifted_eras"].iloc[0])
    note = f"{shifted} of the {n_eras} validation eras had a sudden shift. "
    if not shifted:
        return {"truth_note": note + "There is nothing to detect."}
    rates = "; ".join(f"{prior_label(p)} {r['burn_rate_shifted']:.0%} vs {r['burn_rate_other']:.0%}"
                      for p, r in table.iterrows())
    aucs = ", ".join(f"{prior_label(p)} {r['auc_std_for_shifted']:.3f}" for p, r in table.iterrows())
    return {"truth_note": note + f"Burn rates there vs elsewhere: {rates}. AUC of the std as a detector of the "
                                 f"shifted eras: {aucs}."}


# --------------------------------------------------------------------------- study 3


def unconverged_cells(verdicts: pd.Series, consequence: str) -> dict:
    """The (row, prior) cells of a verdict series keyed by pairs whose fit did not converge."""
    cells = [f"{a}/{prior_label(p)}" for (a, p), v in verdicts.items() if v != "converged"]
    return {"unconverged_note": "Every fit converged." if not cells else f"Not converged: {', '.join(cells)}. {consequence}"}


def study3_scores(corr: pd.DataFrame, sharpe: pd.DataFrame, verdicts: pd.Series | None = None) -> dict:
    """The best (hypothesis, prior) cell (among the converged fits when `verdicts`, keyed by
    (hypothesis, prior), are given: `best_note`), and in how many cells a multi-target model
    beats the one-target BNN of the same prior."""
    cells = pd.DataFrame({"corr": corr.stack(), "sharpe": sharpe.stack()})
    converged = None if verdicts is None else [k for k in cells.index if verdicts.get(k) == "converged"]
    best, best_note = _best_note(cells, list(cells.index), converged, "model",
                                 lambda k: f"{k[0]} with the {prior_label(k[1])} prior")
    others = corr.drop(index="single") if "single" in corr.index else corr.iloc[0:0]
    beats = int((others > corr.loc["single"]).sum().sum()) if len(others) else 0
    return {"best_hypothesis": str(best[0]), "best_prior": prior_label(best[1]), "best_corr": corr.loc[best],
            "best_sharpe": sharpe.loc[best], "best_note": best_note, "beats": beats, "cells": int(others.size)}


def h4_beta(beta: pd.DataFrame, target_corr: float | None) -> dict:
    """Whether H4's beta posterior settles beta's sign (does its 95% interval cover 0?), for
    each prior, as the section's `beta_note`; fits that did not converge are named."""
    covering = (beta["ci95_low"] < 0) & (beta["ci95_high"] > 0)
    covers, n = int(covering.sum()), len(beta)
    settled = [p for p in beta.index if not covering[p]]
    signs = "; ".join(f"beta {'>' if beta.loc[p, 'ci95_low'] >= 0 else '<'} 0 under the {prior_label(p)} prior"
                      for p in settled)
    if not settled:
        verdict = ("As in the talk, the posterior does not settle the sign of beta"
                   + (" under any prior." if n > 1 else "."))
    elif len(settled) == n:
        verdict = ("Unlike the talk, the posterior settles the sign of beta" + (" under every prior" if n > 1 else "")
                   + f" ({signs}).")
    else:
        verdict = (f"Unlike the talk, the posterior settles the sign of beta under {len(settled)} of the {n} priors "
                   f"({signs}); under the others its interval covers 0.")
    caveats = "".join(f" Under the {prior_label(p)} prior the fit is {v}, so its beta interval is not a posterior's."
                      for p, v in beta["verdict"].items() if v != "converged")
    corr = "" if target_corr is None else f"The training targets correlate at {target_corr:.2f}. "
    low, high = f"{beta['p_positive'].min():.2f}", f"{beta['p_positive'].max():.2f}"
    p_positive = (f"P(beta > 0) is {low}" if n == 1 else f"P(beta > 0) is {low} under every prior" if low == high
                  else f"P(beta > 0) ranges from {low} to {high}")
    return {"beta_note": (f"{corr}Beta's 95% interval covers 0 for {covers} of {n} "
                          f"{'prior' if n == 1 else 'priors'}; {p_positive}. " + verdict + caveats)}


# --------------------------------------------------------------------------- architecture


def best_depths(corr: pd.DataFrame, talk_corr: pd.DataFrame) -> dict:
    """The depth with the best corr per model, here and in the talk."""
    def line(table: pd.DataFrame) -> str:
        return ", ".join(f"{prior_label(m)} {int(table[m].idxmax())}" for m in corr.columns if m in table)

    return {"ours": line(corr), "talk": line(talk_corr)}


def divergences(main_js: pd.DataFrame, jeffreys: pd.DataFrame, talk_div: pd.DataFrame) -> dict:
    """Whether the talk's divergence matrix can be a JS divergence (bounded by ln 2 nats, 1
    bit), and our JS and symmetrised KL ranges beside the talk's (`*_range`: "X to Y", or one
    value where both ends read the same)."""
    from bnnlib.studies.analysis import off_diagonal
    from bnnlib.studies.talk import closest_pair

    talk_values, ours = off_diagonal(talk_div), off_diagonal(main_js)
    return {"talk_above_ln2": int((talk_values > math.log(2)).sum()), "talk_pairs": int(len(talk_values)),
            "ln2": math.log(2), "talk_above_1": int((talk_values > 1).sum()),
            "js_low": ours.min(), "js_high": ours.max(),
            "jeffreys_low": off_diagonal(jeffreys).min(), "jeffreys_high": off_diagonal(jeffreys).max(),
            "talk_low": talk_values.min(), "talk_high": talk_values.max(),
            "js_range": span(ours.min(), ours.max(), ".4f"),
            "jeffreys_range": span(off_diagonal(jeffreys).min(), off_diagonal(jeffreys).max(), ".4f"),
            "talk_range": span(talk_values.min(), talk_values.max(), ".4f"),
            "closest": " and ".join(map(str, closest_pair(main_js))),
            "talk_closest": " and ".join(map(str, closest_pair(talk_div)))}


def exact_check(table: pd.DataFrame, worst: Mapping[str, float], tolerance: float = 0.1,
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
               linear_check: Mapping[str, float] | None = None, tolerance: float = 0.1) -> dict:
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
        deep_note = "This run has no deep fit under a proper prior."
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
    if evidence > 0:
        ratio = elbo_tolerance / (evidence / n_rows)
        scale = (f"The convergence criterion's ELBO tolerance ({elbo_tolerance:g} nats per row) is "
                 + (f"{ratio:,.0f}" if ratio >= 1.5 else f"{ratio:.2g}") + " times the linear model's whole margin "
                 f"per row ({evidence / n_rows:.1e}): ")
        scale += ("on data this noisy the ELBO alone cannot tell a network that uses its inputs from one that does "
                  "not; the guide's scales and the posterior-mean network's corr can." if ratio >= 1 else
                  "the whole margin is larger than the tolerance, so the criterion's ELBO test sees a fit still "
                  "moving by what the inputs are worth.")
    else:
        scale = ("The linear model has no margin over the best constant prediction here, so no ELBO tolerance can "
                 "tell a network that uses its inputs from one that does not.")
    return {"worth_note": (
        f"Over all {n_rows:,} training rows, the inputs are {_nats_over(evidence, 'the exact linear model')}"
        + (f" ({evidence / n_rows:.1e} per row)" if evidence > 0 else "")
        + f", and {_nats_over(meanfield, 'its mean-field optimum').removeprefix('worth ')}.{jitter} {deep_note} "
        f"Hidden layers at their prior: {at_prior or 'none'}. {scale}")}


def wide_vs_flat(fit_table: pd.DataFrame, fitted: Mapping, wide: str, flat: str = "flat") -> dict:
    """The flat prior's fit beside the wide proper prior's: verdicts, where the flat fit stopped,
    the largest guide stds and the ensembles' corr (`wide_note`; says so when either is absent)."""
    from bnnlib.models.priors import WIDE

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
    from bnnlib.evaluate.convergence import ELBO_TOL

    flat_elbo = ""
    if pd.notna(w.get("elbo_change_window")) and abs(w.elbo_change_window) <= ELBO_TOL:
        flat_elbo = (f"Its ELBO per row has settled (it moved {abs(w.elbo_change_window):.4f} over the last fifth of "
                     f"the steps) while a layer's stds still moved {w.scale_change_window:.0%}: the ELBO is nearly "
                     "flat along the stds of the weights the data barely use, so where they stop is the optimiser's "
                     "doing, bounded by the prior where the flat prior's are not. ")
    return flat_elbo + "Neither is a converged posterior, so neither ensemble's corr is a property of a posterior."


def guide_start(guide_init: str) -> dict:
    """Where this run's guides start (`start_note`), in words."""
    from bnnlib.models.bnn import DEFAULT_INIT_SCALE

    talk = f"He-initialised means, stds {DEFAULT_INIT_SCALE['he']:g}"
    if guide_init == "prior":
        note = ("Each guide starts at its prior (zero means, the prior's stds: KL 0), where the weights the data "
                "cannot pay for end, and keeps what the data pay for; under the flat prior, which has no std, it "
                f"starts where the talk's does ({talk}). The talk's start is compared below.")
    else:
        note = f"Each guide starts where the talk's does ({talk}); a guide started at the prior is compared below."
    return {"start_note": note}


def lr_schedule(lr_final: float, verdicts: Mapping[str, str] | None = None) -> dict:
    """How SVI's learning rates move over the steps (`schedule_note`), in words; with `verdicts`
    (fit name -> verdict of the fits that use the schedule), whether the fits settled with it."""
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


def from_prior(fit_table: pd.DataFrame, fitted: Mapping, started_at_prior: str, talk_start: str,
               pair: pd.Series | None = None, tolerance: float = 0.1, n_rows: int | None = None) -> dict:
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
    elif f"{a.elbo_per_row_last:.5f}" == f"{b.elbo_per_row_last:.5f}":
        compared = "equal, to 5 decimals, to the one"
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
        ending = ("Both converged, but to different ends: two optima of the mean-field ELBO, at ELBOs equal to 5 "
                  "decimals, so the ELBO does not say which is the better variational posterior.")
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
        f"{b.verdict} after {int(b.steps):,}. Its last ELBO per row, {a.elbo_per_row_last:.5f}, is {compared} "
        f"from the talk's start ({b.elbo_per_row_last:.5f}); hidden layers at their prior: "
        f"{a.layers_at_prior or 'n/a'} (talk's start: {b.layers_at_prior or 'n/a'}); the posterior-mean network's "
        f"validation corr {a.mean_net_corr_last:.4f} (talk's start: {b.mean_net_corr_last:.4f}); the ensemble's corr "
        f"{corr[started_at_prior]:.4f} (talk's start: {corr[talk_start]:.4f}){apart}. {ending}")}


def constant_predictors(names: Sequence[str]) -> dict:
    """The note on models whose ensemble prediction is one value for every row (`fits.constant_predictors`)."""
    if not names:
        return {"constant_note": "Every model's ensemble prediction varies across the validation rows."}
    listed = ", ".join(names)
    return {"constant_note": (
        f"{listed} {'predicts' if len(names) == 1 else 'predict'} one value for every validation row, to within "
        f"{CONSTANT:g} (a point network whose ReLUs died in training, or a posterior pruned to its prior): "
        f"{'its' if len(names) == 1 else 'their'} corr and Sharpe above are an artefact of how ties are ranked, "
        "not a score, and a comparison with a constant shows nothing.")}


# --------------------------------------------------------------------------- the data


def data_source(dataset) -> dict:
    """Where the data comes from, whether it is synthetic, and the loader's notes."""
    synthetic = getattr(dataset, "truth", None) is not None
    note = f"Source: {dataset.source}."
    if synthetic:
        note += (" This is synthetic data, generated by bnnlib.data.synth in Numerai's schema; it is not Numerai's "
                 "data, and its numbers stand in for Numerai's only as far as the facts below hold.")
    note += "".join(f" Note: {n}." for n in dataset.notes)
    return {"source_note": note}


def facts_held(fact_table: pd.DataFrame, synthetic_profile: str | None) -> dict:
    """How many stylized facts hold, which do not, and whether a small synthetic profile is
    expected to miss some (`synthetic_profile` None for real data)."""
    held = int(fact_table["ok"].sum())
    note = f"{held} of {len(fact_table)} facts hold on this data"
    missed = list(fact_table.loc[~fact_table["ok"].astype(bool), "fact"])
    note += "." if not missed else ": the others are " + ", ".join(missed) + "."
    if synthetic_profile is not None and synthetic_profile.split("-")[0] != "default":
        note += (f" The {synthetic_profile} profile is smaller than the default, so its sizes (and the statistics "
                 "that need many rows) are not expected to match.")
    return {"facts_note": note}


def data_truth(shifted: pd.Series, truth_eras: pd.DataFrame, summary: pd.DataFrame, check) -> dict:
    """The synthetic ground truth in words: shifted eras and regimes, how the linear model does
    in shifted eras, and how much of the signal is linear (a `facts.nonlinearity_check`)."""
    note = (f"{int(shifted.sum())} of {len(shifted)} validation eras were shifted ({int(truth_eras['shifted'].sum())} "
            f"of all {len(truth_eras)} eras) and the data visits {truth_eras['regime'].nunique()} regimes. ")
    if "shifted" in summary.index:
        note += (f"The linear model's mean corr is {summary.loc['shifted', 'mean_corr']:.4f} in shifted eras against "
                 f"{summary.loc['not shifted', 'mean_corr']:.4f} elsewhere, and "
                 f"{summary.loc['shifted', 'burn_share']:.0%} of the shifted eras are burn eras "
                 f"({summary.loc['not shifted', 'burn_share']:.0%} elsewhere). ")
    note += (f"A linear fit explains {check.linear_share:.0%} of the stable true signal's variance; the rest are "
             "feature interactions. Scored against the true signal, the linear model reaches a corr of "
             f"{check.truth_linear:.3f}, a linear model that is also given the interaction signal "
             f"{check.truth_knowing:.3f}.")
    return {"truth_note": note}


# --------------------------------------------------------------------------- which uncertainty


def _best(table: pd.DataFrame, column: str) -> tuple[str, float] | None:
    values = table[column].dropna()
    return (str(values.idxmax()), float(values.max())) if len(values) else None


def uncertainty_detection(detections: pd.DataFrame, left_out: Sequence[str] = ()) -> dict:
    """Per question (burn eras, each planted change): the best method against the best control,
    by the difference of their AUCs and its 95% interval over resampled eras
    (`uncertainty.best_against_control`), as `detect_<question>` notes. `left_out`: the
    methods not in the running because their fit did not converge (their spread is the
    optimiser's state: the best of them would be the luckiest stop, not a method)."""
    out = {}
    excluded = ("" if not left_out else
                f" Left out: {left_out[0]}, whose fit did not converge (its AUC is in the table above)."
                if len(left_out) == 1 else
                f" Left out: {', '.join(left_out)}, whose fits did not converge (their AUCs are in the table above).")
    for question, row in detections.iterrows():
        what = {"burn": "the eras where each model burns", "covariate_shift": "the eras of covariate shift",
                "concept_drift": "the eras of concept drift"}.get(question, question)
        if pd.isna(row["method"]):
            out[f"detect_{question}"] = f"No method with a spread of draws was scored for {what}."
            continue
        text = f"For {what}, the best method is {row['method']} (AUC {row['method_auc']:.3f})"
        if pd.notna(row["control"]):
            text += (f"; the best control, {row['control']}, reaches {row['control_auc']:.3f}: a difference of "
                     f"{row['difference']:+.3f}")
            if pd.isna(row["low"]) or pd.isna(row["high"]):
                text += (", with no interval: no resampling of the eras kept both flagged and other eras, so the "
                         "data cannot say whether the uncertainty adds to the control.")
            else:
                text += (f" (95% interval over resampled eras {row['low']:+.3f} to {row['high']:+.3f}), so the "
                         "uncertainty ")
                text += ("adds something the control does not see." if row["low"] > 0 else
                         "does worse than a plain statistic." if row["high"] < 0 else
                         "adds nothing that chance could not give (the interval holds 0).")
        else:
            text += "."
        out[f"detect_{question}"] = text + excluded
    return out


def std_direction(shifts: pd.DataFrame, aucs: pd.Series, what: str = "covariate shift") -> dict:
    """For the converged methods whose std separates the eras of a change in the wrong direction
    (AUC below 0.2: lower where the data changed), how far that std moves against how much it
    varies from era to era anyway (`direction_note`; `shifts`: per method, `uncertainty.std_shift`'s
    ratio of means and `spread_others`, the std over the mean among the other eras)."""
    low = [m for m in shifts.index if m in aucs.index and aucs[m] < 0.2 and np.isfinite(shifts.loc[m, "ratio"])]
    if not low:
        return {"direction_note": ""}

    def move(m) -> str:
        change = 1 - shifts.loc[m, "ratio"]
        return (f"{change:.1%} lower" if change > 0 else
                f"{-change:.1%} higher on average, though ranked lower in most eras")

    parts = [f"{m} {move(m)} (AUC {aucs[m]:.3f}; era-to-era spread elsewhere {shifts.loc[m, 'spread_others']:.1%})"
             for m in low]
    quiet = [m for m in low if abs(1 - shifts.loc[m, "ratio"]) > shifts.loc[m, "spread_others"]]
    loud = [m for m in low if m not in quiet]
    reading = ("The AUC says how cleanly the eras separate, not how far the std moves. ")
    if quiet:
        times = ", ".join((f"{m} " if len(quiet) > 1 else "")
                          + (f"{abs(1 - shifts.loc[m, 'ratio']) / shifts.loc[m, 'spread_others']:.1f} times"
                             if shifts.loc[m, "spread_others"] > 0 else "infinitely many times") for m in quiet)
        reading += (f"For {', '.join(quiet)} the move is larger than the std's era-to-era spread elsewhere ({times}"
                    " that spread): these stds vary so little from era to era that a move this size separates the "
                    "eras. ")
    if loud:
        reading += (f"For {', '.join(loud)} the move is no larger than the std's era-to-era spread elsewhere, yet the "
                    "eras of the change rank below most others: they sit at the low end of that spread. ")
    return {"direction_note": (
        f"Some stds are lower, not higher, in the eras of {what}: " + "; ".join(parts) + ". " + reading
        + "Read with the sign reversed the AUC would look like a detector, but a sign chosen after seeing the "
        "result is not one, and a std that falls where the data changed is not an alarm.")}


def uncertainty_truth(methods: pd.DataFrame, ceiling: float) -> dict:
    """How much of the noise-free signal each method found, and whether its intervals hold the
    noise-free target as often as they claim (`truth_signal`, `truth_coverage`)."""
    best = _best(methods, "signal_corr")
    signal = (f"The noise-free signal itself scores a validation corr of {ceiling:.4f} with the target: no model "
              "can do better on average. ")
    if best is not None:
        signal += f"The predictions closest to the signal are {best[0]}'s (correlation {best[1]:.3f} with it)."
    covered = methods.dropna(subset=["coverage_90"])
    if covered.empty:
        coverage = "No method has a spread of draws, so there is no interval to check."
    else:
        parts = [f"{name} {row.coverage_50:.0%} / {row.coverage_90:.0%}" for name, row in covered.iterrows()]
        narrow = [n for n, row in covered.iterrows() if row.coverage_90 < 0.8]
        wide = [n for n, row in covered.iterrows() if row.coverage_50 > 0.75]
        coverage = ("The central 50% / 90% intervals of the draws hold the noise-free target in: "
                    + "; ".join(parts) + ". ")
        if narrow:
            coverage += (f"Far too narrow (the 90% interval misses the truth more than one time in five): "
                         f"{', '.join(narrow)}. ")
        if wide:
            coverage += f"Far too wide (the 50% interval holds it more than three times in four): {', '.join(wide)}. "
        if not narrow and not wide:
            coverage += ("None is that far off: every 90% interval holds the truth at least four times in five, and "
                         "no 50% interval more than three times in four.")
    return {"truth_signal": signal, "truth_coverage": coverage}


def point_schedule(lr: float, lr_final: float, lr_bnn: float, lr_bnn_final: float) -> dict:
    """How the point networks' Adam runs (`point_lr_note`), and whether that is SVI's schedule,
    which makes the baseline study 1's matched-budget control (baseline_bnn_lr)."""
    def schedule(rate: float, final: float) -> str:
        return f"lr {rate:g}, " + (f"decaying to {final:g} of it by the last step" if final < 1 else "constant")

    same = lr == lr_bnn and lr_final == lr_bnn_final
    return {"point_lr_note": (
        f"Adam at {schedule(lr, lr_final)}: " + (
            "SVI's optimiser, so the baseline is study 1's matched-budget control (baseline_bnn_lr)" if same else
            f"not SVI's ({schedule(lr_bnn, lr_bnn_final)}), so the baseline is not study 1's matched-budget control"))}


def seed_spread(spreads: pd.DataFrame, left_out: Sequence[str] = ()) -> dict:
    """The spread over seeds of the point network beside the spread over draws of each
    posterior (`spread_note`): does the posterior vary as much as retraining does? The methods
    `left_out` (fits that did not converge) are listed but not judged: their spread is where
    the optimiser stopped."""
    if "deep_ensemble" not in spreads.index:
        return {"spread_note": "This run has no deep ensemble, so there is no seed spread to compare."}
    seeds = spreads.loc["deep_ensemble"]
    others = spreads.drop(index="deep_ensemble")
    parts = [f"{name} {row.corr_std:.4f}" for name, row in others.iterrows()]
    excluded = [n for n in left_out if n in others.index]
    judged = others.drop(index=excluded)
    wider = [name for name, row in judged.iterrows() if row.corr_std >= 0.5 * seeds.corr_std]
    if judged.empty:
        verdict = "No method's spread can be judged."
    elif len(wider) == len(judged):
        verdict = ("Every method's draws spread at least half as much as the seeds do." if len(judged) > 1 else
                   f"{judged.index[0]}'s draws spread at least half as much as the seeds do.")
    elif wider:
        verdict = f"Only {', '.join(wider)} spread at least half as much as the seeds do."
    else:
        verdict = "No method's draws spread even half as much as the seeds do: they do not stand for retraining."
    if excluded:
        verdict += (f" Not judged: {excluded[0]}, whose fit did not converge, so its spread is where the optimiser "
                    "stopped." if len(excluded) == 1 else
                    f" Not judged: {', '.join(excluded)}, whose fits did not converge, so their spreads are where the "
                    "optimisers stopped.")
    return {"spread_note": (
        f"Retraining the network with {int(seeds.n)} seeds moves its validation corr by a std of {seeds.corr_std:.4f} "
        + (f"(from {seeds.corr_min:.4f} to {seeds.corr_max:.4f})"
           if f"{seeds.corr_min:.4f}" != f"{seeds.corr_max:.4f}" else f"({seeds.corr_min:.4f} for every seed)")
        + ("; over draws the std is " + "; ".join(parts) if parts else "; no other method has draws") + ". "
        + verdict)}


def point_precision(check: pd.DataFrame | None, spreads: pd.DataFrame, precision: str) -> dict:
    """bf16 against float32 for a point network (`point_note`): the baseline's corr both ways
    against the spread over the deep ensemble's seeds, the yardstick of a network without draws."""
    if check is None:
        return {"point_note": f"This run trains its point networks in {precision} throughout; there is nothing to compare."}
    bf16, float32 = check.loc["bf16"], check.loc["float32"]
    difference = abs(bf16["corr"] - float32["corr"])
    note = (f"Trained in bf16 the baseline's validation corr is {bf16['corr']:.4f}, in float32 {float32['corr']:.4f}: "
            f"a difference of {difference:.5f}. Training took {bf16['fit_seconds']:.0f} s in bf16 against "
            f"{float32['fit_seconds']:.0f} s in float32.")
    if "deep_ensemble" in spreads.index:
        seeds = spreads.loc["deep_ensemble"]
        ratio = difference / seeds.corr_std
        note += (f" Retraining with another seed moves the corr by a std of {seeds.corr_std:.4f}, so the precision "
                 f"moved it by {ratio:.2f} of that std: "
                 + ("less than a seed does. One pair of networks is one draw of that spread, so this shows bf16 "
                    "does not move the score beyond what retraining does; it is no precise measure of bf16's effect."
                    if ratio < 1 else
                    "as much as a seed does or more; compare the two precisions over several seeds before trusting "
                    "bf16 here."))
    return {"point_note": note}
