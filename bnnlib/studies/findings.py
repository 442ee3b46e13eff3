"""The values a chapter's findings glue into its markdown, computed from its tables.

Each function takes the tables a chapter has already shown and returns {glue key: value}:
numbers (formatted by the markdown, e.g. ``{glue:text}`best_corr:.4f```) and, where a finding
depends on a comparison, its computed wording ("within" / "outside", which prior, what the
control says). The book's prose is written in the chapters' markdown; nothing here is typed
from a result, so a rerun with other data rewrites the findings consistently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from bnnlib.evaluate.fits import CONSTANT
from bnnlib.studies.talk import prior_label, prior_labels

FLAT_NOTE = (" (the improper flat prior has no proper posterior for weights the data do not pin down: the guide's "
             "entropy grows their scales without bound, so its spread is set by when the optimiser stopped)")


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


NO_TRUTH = "This dataset has no ground truth (real data), so this check is skipped."


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
