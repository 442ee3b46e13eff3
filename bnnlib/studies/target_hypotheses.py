"""Study 3: probabilistic models of several targets (the chapter `book/target_hypotheses.py`).

Four generative stories (H1-H4) for how a BNN's outputs become several Numerai targets, each
fitted under every prior and scored on the main target beside study 1's one-target BNN
(`single`); under H4, the posterior of beta, the weight of the 60-day mean in the 20-day mean.
This module holds the study's models, the talk's published tables and findings, the study's
tables and the values its page glues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.priors import canonical_prior
from bnnlib.evaluate.study import ModelSpec
from bnnlib.scoring.statistics import normal_posterior
from bnnlib.studies.common import Claim, check_claims
from bnnlib.studies.common import CONVERGED_PRIOR, GLANCE_COLUMNS, TALK_PROCEDURE, bnn_spec, converged_name, joint_verdict
from bnnlib.studies.common import agreement, best_among_converged
from bnnlib.studies.common import PRIORS, talk_frame, prior_label

# --------------------------------------------------------------------------- models


def models(params: Mapping) -> list[ModelSpec]:
    """Study 3: H1-H4 under each prior, then study 1's one-target BNNs (named `single_<prior>`), at
    snapshot A (the talk's procedure); then, where the chapter continues its fits, the
    `CONVERGED_PRIOR`'s BNNs at snapshot B (`<name>_converged`). The one-target BNNs are study 1's
    trajectories; of the others only the `CONVERGED_PRIOR`'s continue, the rest are fitted for
    the budget alone."""
    priors = [canonical_prior(p) for p in params["priors"]]
    hypotheses = [*params["hypotheses"], "single"]
    specs = [bnn_spec(f"{h}_{p}", p, params, hypothesis=h,
                      **({} if h == "single" or p == CONVERGED_PRIOR else TALK_PROCEDURE))
             for h in hypotheses for p in priors]
    if CONVERGED_PRIOR in priors and params.get("continue_steps"):
        specs += [bnn_spec(converged_name(f"{h}_{CONVERGED_PRIOR}"), CONVERGED_PRIOR, params, hypothesis=h,
                           snapshot="B") for h in hypotheses]
    return specs


def grid(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The (hypothesis, prior) grid the talk's tables have: the models at snapshot A."""
    return [s for s in specs if s.snapshot == "A"]


def converged_pairs(specs: Sequence[ModelSpec]) -> dict[str, tuple[str, str]]:
    """Per hypothesis with a snapshot B: (its model at A, at B)."""
    names = {s.name for s in specs}
    return {s.hypothesis: (s.name, converged_name(s.name)) for s in grid(specs) if converged_name(s.name) in names}


def by_cell(specs: Sequence[ModelSpec], values: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """`values` (keyed by model name, e.g. the fitted results) keyed by (hypothesis, prior) instead."""
    return {(s.hypothesis, s.prior): values[s.name] for s in specs}


def labels(specs: Sequence[ModelSpec]) -> dict[str, dict[str, str]]:
    """Each model's hypothesis and prior, the label columns of the exported score table."""
    return {s.name: {"hypothesis": s.hypothesis, "prior": s.prior, "snapshot": s.snapshot} for s in specs}


# --------------------------------------------------------------------------- the talk's numbers

TALK_ROWS = ("h1", "h2", "h3", "h4", "single")
"""The rows of the talk's tables: H1-H4, then study 1's one-target BNN."""


def talk_corr() -> pd.DataFrame:
    """Study 3: validation corr on the main target, hypothesis x prior ('single' = study 1's BNN)."""
    return talk_frame(
        {
            "flat": [0.0151, 0.0171, 0.0130, 0.0146, 0.0199],
            "normal": [0.0110, 0.0080, 0.0136, 0.0144, 0.0167],
            "laplace": [0.0122, 0.0075, 0.0136, 0.0139, 0.0185],
        },
        list(TALK_ROWS),
        "hypothesis",
    )


def talk_sharpe() -> pd.DataFrame:
    """Study 3: the Sharpe ratios that go with `talk_corr`."""
    return talk_frame(
        {
            "flat": [0.5794, 0.5891, 0.5458, 0.6991, 0.6454],
            "normal": [0.3735, 0.3236, 0.6621, 0.7036, 0.5038],
            "laplace": [0.4161, 0.3040, 0.5867, 0.6379, 0.5573],
        },
        list(TALK_ROWS),
        "hypothesis",
    )


def _drop_20d(t: pd.DataFrame) -> pd.Series:
    """How much corr the one-target BNN loses under H1 and H2 (mean of the two), per prior."""
    return t["corr"].loc["single"] - t["corr"].loc[["h1", "h2"]].mean()


def talk_claims() -> list[Claim]:
    """Study 3's findings on the (hypothesis, prior) corr and Sharpe tables (columns corr, sharpe)."""
    ALL = list(PRIORS)
    return [
        Claim("with the three 20-day targets (H1, H2) the corr is below the one-target BNN's for every prior",
              lambda t: bool((t["corr"].loc[["h1", "h2"], ALL] < t["corr"].loc["single", ALL]).all().all())),
        Claim("the Normal and Laplace priors lose more corr under H1 and H2 than the flat prior",
              lambda t: bool(_drop_20d(t)["normal"] > _drop_20d(t)["flat"]
                             and _drop_20d(t)["laplace"] > _drop_20d(t)["flat"])),
        Claim("with the 60-day target (H3, H4) the mean Sharpe is above that of H1, H2",
              lambda t: bool(t["sharpe"].loc[["h3", "h4"], ALL].mean().mean()
                             > t["sharpe"].loc[["h1", "h2"], ALL].mean().mean())),
        Claim("H4's Sharpe is above the one-target BNN's for every prior",
              lambda t: bool((t["sharpe"].loc["h4", ALL] > t["sharpe"].loc["single", ALL]).all())),
    ]


def talk_check(corr: pd.DataFrame, sharpe: pd.DataFrame) -> pd.DataFrame:
    """The talk's findings (`talk_claims`) checked on its tables and on ours (`corr`, `sharpe`:
    hypothesis x prior)."""
    return check_claims(talk_claims(), pd.concat({"corr": corr, "sharpe": sharpe}, axis=1),
                        pd.concat({"corr": talk_corr(), "sharpe": talk_sharpe()}, axis=1))


# --------------------------------------------------------------------------- tables


def hypotheses_table(hypotheses: Sequence[str]) -> pd.DataFrame:
    """Each target hypothesis with the one-line description of its likelihood."""
    return pd.DataFrame({"model": [get_likelihood(h).description for h in hypotheses]},
                        index=pd.Index(list(hypotheses), name="hypothesis"))


def correlations_with_main(dataset: Any) -> pd.DataFrame:
    """Each role target (aux, long) with its role and its Pearson correlation with the main
    target on the training rows (rows where either is missing left out)."""
    roles = dataset.roles
    rows = [("other 20-day", t) for t in roles.aux] + ([("60-day", roles.long)] if roles.long else [])
    corr = dataset.train[[roles.main, *(t for _, t in rows)]].corr()
    return pd.DataFrame({"role": [r for r, _ in rows], f"corr with {roles.main}": [corr.loc[roles.main, t] for _, t in rows]},
                        index=pd.Index([t for _, t in rows], name="target"))


def beta_posteriors(betas: Mapping[str, tuple[float, float]], verdicts: Mapping[str, str]) -> pd.DataFrame:
    """H4's beta per prior: the normal posterior {prior: (mean, std)} summarised (`normal_posterior`)
    with its fit's convergence verdict."""
    table = pd.DataFrame.from_dict({p: normal_posterior(m, s) for p, (m, s) in betas.items()},
                                   orient="index").rename_axis("prior")
    table["verdict"] = [verdicts[p] for p in table.index]
    return table


def h4_betas(by_key: Mapping[tuple[str, str], Any], verdicts: pd.Series, priors: Sequence[str]) -> pd.DataFrame:
    """`beta_posteriors` of the H4 fits (`by_key`: (hypothesis, prior) -> result, whose extras
    hold beta's posterior mean and std) under each of `priors`."""
    return beta_posteriors(
        {p: (by_key[("h4", p)].extras["beta_mean"], by_key[("h4", p)].extras["beta_std"]) for p in priors},
        {p: verdicts[("h4", p)] for p in priors})


# --------------------------------------------------------------------------- findings

NO_H4 = "H4 is not among this run's hypotheses, so there is no beta to show."


def talk_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings (a `check_claims` table) were checkable and hold here too,
    and the wording of those that differ (`common.agreement`)."""
    found = agreement(check)
    return {"check_findings": found["findings"], "check_agreed": found["agreed"],
            "check_checkable": found["checkable"], "check_differ": found["differ"]}


def unconverged_cells(verdicts: pd.Series, consequence: str) -> dict:
    """The (row, prior) cells of a verdict series keyed by pairs whose fit did not converge."""
    cells = [f"{a}/{prior_label(p)}" for (a, p), v in verdicts.items() if v != "converged"]
    return {"unconverged_note": "Every fit converged." if not cells else f"Not converged: {', '.join(cells)}. {consequence}"}


def score_findings(corr: pd.DataFrame, sharpe: pd.DataFrame, verdicts: pd.Series | None = None) -> dict:
    """The best (hypothesis, prior) cell (among the converged fits when `verdicts`, keyed by
    (hypothesis, prior), are given: `best_note`), and in how many cells a multi-target model
    beats the one-target BNN of the same prior."""
    cells = pd.DataFrame({"corr": corr.stack(), "sharpe": sharpe.stack()})
    converged = None if verdicts is None else [k for k in cells.index if verdicts.get(k) == "converged"]
    best, best_note = best_among_converged(cells, list(cells.index), converged, "model",
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


# --------------------------------------------------------------------------- snapshot B


def converged_findings(table: pd.DataFrame) -> dict:
    """What continuing the `CONVERGED_PRIOR`'s fits to snapshot B changes (`table`: a
    `common.snapshots_table` per hypothesis, with the one-target row `single`): the best hypothesis
    at A and at B, whether the multi-target models still beat the one-target one, and the
    verdicts at B (`converged_note`)."""
    if table.empty:
        return {"converged_note": "This run continues no fit to snapshot B (continue_steps 0, or no "
                                  f"{prior_label(CONVERGED_PRIOR)} prior)."}
    multi = [h for h in table.index if h != "single"]
    parts = []
    for snapshot in ("A", "B"):
        corr = table[f"corr {snapshot}"]
        best = corr[multi].idxmax() if multi else None
        beats = [h for h in multi if "single" in corr.index and corr[h] > corr["single"]]
        parts.append(f"at {snapshot} the best hypothesis is {best} (corr {corr[best]:.4f})"
                     + (f", and {len(beats)} of {len(multi)} beat the one-target BNN ({corr['single']:.4f})"
                        if "single" in corr.index else ""))
    unsettled = table.index[table["verdict B"] != "converged"].tolist()
    verdict = ("Every fit converged by B, so its row is a posterior's." if not unsettled else
               "Not converged at B: " + ", ".join(f"{h} ({table.loc[h, 'verdict B']})" for h in unsettled) + "; "
               "their B scores are where the optimiser stood when the continuation's cap was reached.")
    return {"converged_note": f"Under the {prior_label(CONVERGED_PRIOR)} prior, " + "; ".join(parts) + ". " + verdict}


def laplace_glance(table: pd.DataFrame) -> pd.DataFrame:
    """The intro's glance row for the `CONVERGED_PRIOR`: the best multi-target hypothesis in the
    talk, at A and at B (`table`: `converged_findings`' table), and whether it is the talk's."""
    talk = talk_corr()[CONVERGED_PRIOR].drop("single")
    best_talk = talk.idxmax()
    multi = [h for h in table.index if h != "single"]

    def best(snapshot: str) -> tuple[str, str]:
        if not multi:
            return "–", ""
        corr = table.loc[multi, f"corr {snapshot}"]
        verdict = joint_verdict(table.loc[multi, f"verdict {snapshot}"])
        return corr.idxmax(), f"{corr.idxmax()} ({corr.max():.4f})" + (f" ({verdict})" if verdict != "converged" else "")

    (a, a_cell), (b, b_cell) = best("A"), best("B")
    parts = [f"{'holds' if h == best_talk else 'differs'} at {label}" for label, h in (("A", a), ("B", b)) if h != "–"]
    return pd.DataFrame([{"study": "3: target hypotheses",
                          "finding": f"the best multi-target hypothesis under the {prior_label(CONVERGED_PRIOR)} prior",
                          "talk": f"{best_talk} ({talk.max():.4f})", GLANCE_COLUMNS[3]: a_cell, GLANCE_COLUMNS[4]: b_cell,
                          "Laplace": "–", "holds?": "; ".join(parts) or "–"}], columns=list(GLANCE_COLUMNS))
