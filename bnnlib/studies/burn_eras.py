"""Study 2: can uncertainty detect burn eras? (the chapter `book/burn_eras.py`)

A burn era is a validation era whose corr is negative. Per era, the mean over its rows of the
predictive std across posterior draws is scored as a detector of the burn eras by its AUC
(Mann-Whitney, higher std flags burn) with a one-sided p-value, beside the talk's AUCs; on
synthetic data, against the eras of a sudden shift. This module holds the study's models, the
talk's published table and findings, the study's tables and the values its page glues.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.errors import BnnlibError
from bnnlib.models.priors import canonical_prior
from bnnlib.evaluate.study import ModelSpec
from bnnlib.scoring.statistics import auc_p_value, auc_p_value_from_counts, mann_whitney_auc
from bnnlib.studies.common import Claim, need_results, check_kind
from bnnlib.studies.common import snapshot_pair
from bnnlib.studies.common import agreement
from bnnlib.studies.common import PRIORS, talk_frame, prior_label, reversed_note

CHANCE_AUC = 0.5
"""The AUC of a detector that ranks burn eras no better than a coin: above it, burn eras tend to
have the higher mean std."""

SIGNIFICANCE = 0.05
"""The one-sided level at which an AUC above chance counts as significant (the talk's 5%)."""


# --------------------------------------------------------------------------- models


def models(params: Mapping) -> list[ModelSpec]:
    """Study 2: study 1's BNNs (the same settings give the same cache entries)."""
    return [spec for p in params["priors"] for spec in snapshot_pair(canonical_prior(p), canonical_prior(p), params)]


# --------------------------------------------------------------------------- the talk's numbers

TALK_BURN_ERAS_OF = 105  # validation eras of Numerai v3


def talk_burn() -> pd.DataFrame:
    """Study 2: AUC of the era's mean predictive std as a burn-era detector, and burn-era counts."""
    return talk_frame(
        {"auc": [0.4679, 0.6010, 0.6245], "burn_eras": [28, 33, 31],
         "n_eras": [TALK_BURN_ERAS_OF] * 3},
        list(PRIORS),
        "prior",
    )


def talk_claims() -> list[Claim]:
    """Study 2's findings on the burn-era detection table."""
    return [
        Claim("the flat prior's AUC is below chance (0.5)", lambda t: t.loc["flat", "auc"] < CHANCE_AUC),
        Claim("the Normal prior's AUC is above chance", lambda t: t.loc["normal", "auc"] > CHANCE_AUC),
        Claim("the Laplace prior's AUC is above chance", lambda t: t.loc["laplace", "auc"] > CHANCE_AUC),
        Claim("the Laplace prior has the highest AUC", lambda t: t.loc[list(PRIORS), "auc"].idxmax() == "laplace"),
        Claim("some AUC above 0.5 is significant at the 5% level (one-sided)",
              lambda t: bool(((t["auc"] > CHANCE_AUC) & (t["p_value"] < SIGNIFICANCE)).any())),
    ]


# --------------------------------------------------------------------------- tables


def percent_range(shares: Any) -> str:
    """'27-31%' for shares 0.27 and 0.31 (or '40%' when they round to one value)."""
    values = np.asarray(shares, dtype=np.float64)
    low, high = round(100 * float(values.min())), round(100 * float(values.max()))
    return f"{low}%" if low == high else f"{low}-{high}%"


def with_p_values(burn: pd.DataFrame) -> pd.DataFrame:
    """A burn table known only by its AUCs and counts (the talk's: auc, burn_eras, n_eras) with
    the one-sided p-value of each AUC (`auc_p_value_from_counts`)."""
    table = burn.copy()
    table["p_value"] = [auc_p_value_from_counts(a, b, n - b)
                        for a, b, n in zip(table["auc"], table["burn_eras"], table["n_eras"])]
    return table


def burn_eras(per_era: pd.DataFrame, kind: str = "corr") -> pd.DataFrame:
    """Per era: its score, its mean predictive std, and whether it burned (score < 0)."""
    check_kind(kind)
    missing = {"era", kind, "mean_std"} - set(per_era.columns)
    if missing:
        raise BnnlibError(f"per-era table lacks {sorted(missing)}; pass ModelResult.per_era of a Bayesian model")
    frame = per_era[["era", kind, "mean_std"]].copy()
    frame["burn"] = frame[kind] < 0
    return frame.reset_index(drop=True)


def shift_table(eras: Mapping[str, pd.DataFrame], truth: pd.DataFrame) -> pd.DataFrame:
    """Per model: how many validation eras had a sudden shift (the synthetic ground truth's
    `shifted`), the burn rate in them and in the others, and the AUC of the era's mean
    predictive std as a detector of the shifted eras. `eras` are `burn_eras` tables."""
    shifted = truth.set_index("era")["shifted"].astype(bool)
    rows = {}
    for name, table in eras.items():
        frame = table.assign(era=table["era"].astype(str)).set_index("era").join(shifted, how="inner")
        flag = frame["shifted"]
        rows[name] = {
            "shifted_eras": int(flag.sum()),
            "burn_rate_shifted": float(frame.loc[flag, "burn"].mean()) if flag.any() else float("nan"),
            "burn_rate_other": float(frame.loc[~flag, "burn"].mean()) if (~flag).any() else float("nan"),
            "auc_std_for_shifted": mann_whitney_auc(frame["mean_std"], flag),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("prior")


def burn_detection(results: Mapping[str, Any], kind: str = "corr") -> pd.DataFrame:
    """Per model: eras, burn eras, the AUC of the era's mean predictive std as a burn-era
    detector (higher std flags burn), its one-sided p-value, the mean std in burn and other
    eras, and the Spearman correlation of the std with the era's score."""
    need_results(results, "burn_detection")
    rows = {}
    for name, result in results.items():
        eras = burn_eras(result.per_era, kind)
        std, burn = eras["mean_std"].to_numpy(), eras["burn"].to_numpy()
        rows[name] = {
            "n_eras": int(len(eras)),
            "burn_eras": int(burn.sum()),
            "auc": mann_whitney_auc(std, burn),
            "p_value": auc_p_value(std, burn),
            "mean_std_burn": float(std[burn].mean()) if burn.any() else float("nan"),
            "mean_std_other": float(std[~burn].mean()) if (~burn).any() else float("nan"),
            "spearman_std_score": float(stats.spearmanr(std, eras[kind]).statistic)
            if len(eras) > 2 and np.ptp(std) > 0 else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


# --------------------------------------------------------------------------- findings


def talk_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings (a `check_claims` table) were checkable and hold here too,
    and the wording of those that differ (`common.agreement`)."""
    found = agreement(check)
    return {"check_findings": found["findings"], "check_agreed": found["agreed"],
            "check_checkable": found["checkable"], "check_differ": found["differ"]}


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


def detection_findings(detection: pd.DataFrame, talk_burn: pd.DataFrame,
                       verdicts: Mapping[str, str] | None = None) -> dict:
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
    above = detection["auc"] > CHANCE_AUC
    return {"burn_share": percent_range(detection["burn_eras"] / detection["n_eras"]),
            "talk_burn_share": percent_range(talk_burn["burn_eras"] / talk_burn["n_eras"]),
            "above": int(above.sum()), "priors": int(len(detection)),
            "significant": int((above & (detection["p_value"] < SIGNIFICANCE)).sum()),
            "best": prior_label(best), "best_auc": detection.loc[best, "auc"],
            "talk_best": prior_label(talk_best), "talk_best_auc": talk_burn.loc[talk_best, "auc"],
            "talk_best_p": talk_burn.loc[talk_best, "p_value"], "talk_best_burn": int(talk_burn.loc[talk_best, "burn_eras"]),
            "talk_eras": int(talk_burn.loc[talk_best, "n_eras"]),
            "talk_worst": prior_label(talk_worst), "talk_worst_auc": talk_burn.loc[talk_worst, "auc"],
            "talk_worst_p2": 2 * min(worst_p, 1 - worst_p), "best_caveat": caveat,
            "burn_reversed": reversed_note({prior_label(p): a for p, a in detection["auc"].items()}, "the burn eras")}


def numerai_corr_agreement(eras: Mapping[str, pd.DataFrame], per_era: Mapping[str, pd.DataFrame],
                           detection_nc: pd.DataFrame) -> dict:
    """On how many (prior, era) pairs the two scores agree that the era burned, and the range
    of the AUCs with numerai_corr (`nc_auc_note`, one value where they read the same)."""
    same = sum(int((eras[p]["burn"].to_numpy() == (per_era[p]["numerai_corr"] < 0).to_numpy()).sum()) for p in eras)
    return {"nc_same": same, "nc_pairs": sum(len(e) for e in eras.values()),
            "nc_auc_low": detection_nc["auc"].min(), "nc_auc_high": detection_nc["auc"].max(),
            "nc_auc_note": value_range(detection_nc["auc"], ".3f", "AUC with numerai_corr", "AUCs with numerai_corr")}


def shifted_eras_note(table: pd.DataFrame, n_eras: int) -> dict:
    """Burn rates in the shifted eras against the others, and the std's AUC as a detector of the
    shifted eras (a `shift_table`), as the section's `truth_note`."""
    shifted = int(table["shifted_eras"].iloc[0])
    note = f"{shifted} of the {n_eras} validation eras had a sudden shift. "
    if not shifted:
        return {"truth_note": note + "There is nothing to detect."}
    rates = "; ".join(f"{prior_label(p)} {r['burn_rate_shifted']:.0%} vs {r['burn_rate_other']:.0%}"
                      for p, r in table.iterrows())
    aucs = ", ".join(f"{prior_label(p)} {r['auc_std_for_shifted']:.3f}" for p, r in table.iterrows())
    reversed_ = reversed_note({prior_label(p): r["auc_std_for_shifted"] for p, r in table.iterrows()},
                              "the shifted eras")
    return {"truth_note": note + f"Burn rates there vs elsewhere: {rates}. AUC of the std as a detector of the "
                                 f"shifted eras: {aucs}." + reversed_}
