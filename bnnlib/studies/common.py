"""What several studies share: the models every chapter builds its BNNs with, the tables of
scores, the talk's published numbers set beside ours (each study keeps its own tables as data;
the priors' names and the frame live here), the check of the talk's claims, the synthetic data's
ground truth, and the notes on convergence every chapter glues.

Each chapter's own models, tables, findings and talk comparison are in its study module
(`bnnlib.studies.<chapter>`, mirroring `book/<chapter>.py`); what is here is used by several.
Results are read through a small interface (duck-typed `ModelResult`): ``.summary(kind)``,
``.per_era`` (era, corr, numerai_corr, mean_std), ``.scores.draw_summary(kind)`` and
``.scores.n_draws``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.evaluate.fits import CONSTANT
from bnnlib.evaluate.study import ModelSpec
from bnnlib.models.bnn import initial_scale
from bnnlib.models.precision import resolve_precision
from bnnlib.models.priors import has_std
from bnnlib.scoring.metrics import era_corr, score_summary


# --------------------------------------------------------------------------- the models


def training_fields(params: Mapping) -> dict:
    """What every model of a chapter shares: the budget, the batch, the seed, the precision
    and the SVI settings (BNNs only)."""
    return dict(epochs=params["epochs"], batch_size=params["batch_size"], seed=params["seed"],
                steps=params.get("steps"),
                precision=resolve_precision(params.get("precision", "float32"), params.get("device", "cpu")),
                scale_lr=params.get("lr_bnn_scale"), estimator=params.get("estimator", "output"))


def guide_start(prior: str, params: Mapping, shrink: float = 1.0) -> dict:
    """Where a prior's guide starts: the chapter's `guide_init` and `init_scale` (divided by
    `shrink`). Under `guide_init: prior`, two guides start where the talk's does (He means, std
    0.01) instead: the improper flat prior's, which has no std to start from, and the linear
    model's (no hidden layer), whose every weight the data pin down: its posterior stds are ~1/1000
    of the prior's, further than the talk's budget of steps shrinks them from the prior (measured
    on the default data: 42% above the exact mean-field optimum after 17,730 steps, 7% from 0.01)."""
    chosen = params.get("guide_init", "he")
    start = chosen if has_std(prior) and len(params["hidden"]) > 0 else "he"
    scale = initial_scale(start, params.get("init_scale") if start == chosen else None)
    return dict(guide_init=start, init_scale=scale / shrink)


def bnn_spec(name: str, prior: str, params: Mapping, shrink: float = 1.0, **fields) -> ModelSpec:
    """One BNN of a chapter: its prior, the chapter's training and the prior's guide start; a
    trajectory (`models.bnn.TRAJECTORY`) continued up to the chapter's `continue_steps`, scored at
    snapshot A unless `fields` say `snapshot="B"` (or `continue_steps=0`: the budget alone)."""
    settings = dict(method="bnn", prior=prior, hidden=tuple(params["hidden"]), lr=params["lr_bnn"],
                    lr_final=params.get("lr_bnn_final", 1.0), draws=params["draws"],
                    continue_steps=int(params.get("continue_steps") or 0),
                    **training_fields(params), **guide_start(prior, params, shrink))
    return ModelSpec(name, **{**settings, **fields})


TALK_PROCEDURE = dict(continue_steps=0, lr_final=1.0, scale_lr=None, average=0.0)
"""A BNN fitted by the talk's procedure alone (a fit at snapshot A that is not continued): every
parameter at the constant lr, the last iterate kept; the same numbers, bit for bit, as snapshot A
of a trajectory with the same settings (`models.bnn.TRAJECTORY`, tests/test_trajectory.py)."""

CONVERGED = "_converged"
"""The suffix of a model scored at snapshot B (converged) of the trajectory whose snapshot A (the
talk's procedure) has the bare name: `normal` and `normal_converged` are one fit."""


def converged_name(name: str) -> str:
    """The name of `name`'s snapshot B."""
    return f"{name}{CONVERGED}"


def snapshot_pair(name: str, prior: str, params: Mapping, **fields) -> list[ModelSpec]:
    """A BNN at snapshot A under `name` and, where the chapter continues its fits
    (`continue_steps` > 0), at snapshot B under `converged_name(name)`: one fit, two scorings."""
    specs = [bnn_spec(name, prior, params, **fields)]
    if specs[0].continue_steps:
        specs.append(bnn_spec(converged_name(name), prior, params, snapshot="B", **fields))
    return specs


LAPLACE = {"laplace_approx_last_layer": "last_layer", "laplace_approx_all": "all"}
"""The Laplace posteriors of the baseline network (`bnnlib.evaluate.laplace`), by name: the last
layer (exact given the hidden layers) and all weights (Kronecker-factored). Both come from one
training of the baseline network and one pass over the training rows."""


def laplace_specs(params: Mapping) -> list[ModelSpec]:
    """The chapter's Laplace posteriors of its baseline network (lr `lr_baseline`), one per `LAPLACE`."""
    return [ModelSpec(name, method="laplace", laplace_subset=subset, lr=params["lr_baseline"], draws=params["draws"],
                      hidden=tuple(params["hidden"]), **training_fields(params)) for name, subset in LAPLACE.items()]


CONVERGED_PRIOR = "laplace"
"""The prior whose BNNs Studies 3 and 4 also continue to snapshot B: the talk's candidate prior.
Their other priors' fits run the talk's procedure alone (snapshot A), each continuation costing
about as much again as the budget."""


def snapshots_table(corr: Mapping[str, float], sharpe: Mapping[str, float], fit_table: pd.DataFrame,
                    pairs: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """Per label with both snapshots (`pairs`: label -> (model at A, model at B)): the ensemble's
    corr and Sharpe, the verdict and the steps at A (the talk's procedure) and at B (converged)."""
    rows = {}
    for label, (a, b) in pairs.items():
        if a not in fit_table.index or b not in fit_table.index:
            continue
        rows[label] = {"corr A": corr[a], "corr B": corr[b], "Sharpe A": sharpe[a], "Sharpe B": sharpe[b],
                       "verdict A": fit_table.loc[a, "verdict"], "verdict B": fit_table.loc[b, "verdict"],
                       "steps A": fit_table.loc[a, "steps"], "steps B": fit_table.loc[b, "steps"]}
    return pd.DataFrame.from_dict(rows, orient="index")


def snapshot_label(name: str) -> str:
    """'B' for a model scored at snapshot B (`converged_name`), else 'A'."""
    return "B" if name.endswith(CONVERGED) else "A"


def scaled_budget(params: Mapping, factor: int) -> dict:
    """The chapter's budget, `factor` times over: in steps where it is set, else in epochs."""
    if params.get("steps"):
        return {"steps": int(params["steps"]) * factor}
    return {"epochs": int(params["epochs"]) * factor}


# --------------------------------------------------------------------------- the talk


SOURCE = "the talk (Numerai Meetup Japan 2021, real Numerai v3 data)"

GLANCE_FILE = "glance.csv"
"""A study's rows of the intro's "findings at a glance" (`bnnlib.studies.intro`), in its results folder."""

GLANCE_COLUMNS = ("study", "finding", "talk", "A: the talk's procedure", "B: converged", "Laplace", "holds?")
"""The glance table's columns: the talk's value, ours under the talk's procedure (snapshot A), at
convergence (snapshot B) and with the Laplace posteriors, and whether the talk's finding holds."""
PRIORS = ("flat", "normal", "laplace")
PRIOR_LABELS = {"flat": "flat (talk: uniform)", "normal": "normal", "laplace": "Laplace"}


def prior_label(prior: str) -> str:
    """How the book names a prior (the talk's word beside ours); other names pass unchanged."""
    return PRIOR_LABELS.get(prior, prior)


def prior_labels(priors) -> str:
    """Several priors' labels, comma-separated ('none' for none)."""
    return ", ".join(prior_label(p) for p in priors) or "none"


def talk_frame(data: dict, index: list, name: str) -> pd.DataFrame:
    frame = pd.DataFrame(data, index=pd.Index(index, name=name))
    frame.attrs["source"] = SOURCE
    return frame


# --------------------------------------------------------------------------- tables


KINDS = ("corr", "numerai_corr")
"""The two per-era scores: the talk's 2021 corr and today's official numerai_corr."""

LN2 = math.log(2.0)


def check_kind(kind: str) -> str:
    """`kind` if it names a per-era score, else a BnnlibError listing them."""
    if kind not in KINDS:
        raise unknown_name("score kind", kind, KINDS)
    return kind


def need_results(results: Mapping, what: str) -> None:
    if not results:
        raise BnnlibError(f"{what} needs at least one scored model; pass the dict evaluate_models returned")


# --------------------------------------------------------------------------- study 1


def score_table(results: Mapping[str, Any], kinds: Sequence[str] = KINDS) -> pd.DataFrame:
    """One row per model: the mean, std, Sharpe and max drawdown of its per-era scores (the
    ensemble's, for Bayesian models), for each score kind, and its burn-era count."""
    need_results(results, "score_table")
    rows = {}
    for name, result in results.items():
        row: dict[str, float] = {}
        for kind in kinds:
            summary = result.summary(check_kind(kind))
            for stat in ("mean", "std", "sharpe", "max_drawdown"):
                row[f"{kind}_{stat}"] = summary[stat]
            row[f"{kind}_burn_eras"] = summary["n_negative"]
        row["n_eras"] = summary["n_eras"]
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def labelled_score_table(results: Mapping[str, Any], labels: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """`score_table` with label columns first (e.g. hypothesis and prior of each model name)."""
    table = score_table(results)
    columns = pd.DataFrame.from_dict({name: dict(labels[name]) for name in table.index}, orient="index")
    return pd.concat([columns, table], axis=1).rename_axis(table.index.name)


def draw_scores(result: Any, kind: str = "corr") -> pd.DataFrame:
    """Per posterior draw: the mean, std and Sharpe over eras of that draw's per-era score."""
    return result.scores.draw_summary(check_kind(kind))


def side_by_side(ours: pd.DataFrame, talk: pd.DataFrame, *, ours_label: str = "this run",
                 talk_label: str = "talk (2021)") -> pd.DataFrame:
    """Our table and the talk's under one two-level column header, on the union of their rows
    (in our order, then the talk's extra rows); a cell one of them lacks is NaN."""
    columns = [c for c in ours.columns if c in talk.columns]
    if not columns:
        raise BnnlibError(
            f"the two tables share no column (ours: {list(ours.columns)}, talk: {list(talk.columns)}); "
            "rename our columns to the talk's"
        )
    index = list(ours.index) + [i for i in talk.index if i not in set(ours.index)]
    return pd.concat(
        {ours_label: ours[columns].reindex(index), talk_label: talk[columns].reindex(index)}, axis=1
    )


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A finding of the talk as a test on a table, so it can be checked on the talk's numbers
    and on ours alike; `test` returns None where the table lacks what it needs."""

    text: str
    test: Callable[[pd.DataFrame], bool | None]


def check_claims(claims: Sequence[Claim], ours: pd.DataFrame, talk: pd.DataFrame) -> pd.DataFrame:
    """Each claim, whether it holds on the talk's table and on ours, and whether they agree
    (NaN/None where a table lacks the rows or columns a claim needs)."""
    rows = []
    for claim in claims:
        held = [_try(claim.test, table) for table in (talk, ours)]
        agree = None if None in held else held[0] == held[1]
        rows.append({"finding": claim.text, "talk": held[0], "this run": held[1], "agree": agree})
    return pd.DataFrame(rows, columns=["finding", "talk", "this run", "agree"])


def claims_glance(study: str, at_a: pd.DataFrame, at_b: pd.DataFrame | None = None, verdict_a: str = "",
                  verdict_b: str = "") -> pd.DataFrame:
    """A study's rows of the intro's findings at a glance from its `check_claims` tables at snapshot
    A and (where it has one) B: per finding, whether it holds on the talk's table (yes/no), on ours
    at A and at B, with the fits' joint verdict where it is not 'converged', and whether ours
    agrees with the talk at each (`GLANCE_COLUMNS`)."""
    def word(value, verdict: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        return ("yes" if value else "no") + (f" ({verdict})" if verdict and verdict != "converged" else "")

    b_rows = {} if at_b is None else at_b.set_index("finding").to_dict("index")
    rows = []
    for _, row in at_a.iterrows():
        b = b_rows.get(row["finding"], {})
        agree = {"A": row["agree"], "B": b.get("agree")}
        parts = [f"{'holds' if value else 'differs'} at {label}" for label, value in agree.items()
                 if value is not None and not (isinstance(value, float) and math.isnan(value))]
        rows.append({"study": study, "finding": row["finding"], "talk": word(row["talk"], ""),
                     GLANCE_COLUMNS[3]: word(row["this run"], verdict_a),
                     GLANCE_COLUMNS[4]: word(b.get("this run"), verdict_b), "Laplace": "–",
                     "holds?": "; ".join(parts) or "–"})
    return pd.DataFrame(rows, columns=list(GLANCE_COLUMNS))


def joint_verdict(verdicts: Sequence[str]) -> str:
    """One word for several fits' verdicts: the shared one, else 'mixed verdicts' ('' for none)."""
    distinct = list(dict.fromkeys(v for v in verdicts if v))
    return distinct[0] if len(distinct) == 1 else "mixed verdicts" if distinct else ""


def rows_at(table: pd.DataFrame, priors: Sequence[str], snapshot: str) -> pd.DataFrame:
    """The rows of a per-model table for `priors` at `snapshot` (B: `converged_name`), named by prior."""
    names = {(p if snapshot == "A" else converged_name(p)): p for p in priors}
    return table.loc[[n for n in names if n in table.index]].rename(index=names)


def _try(test: Callable[[pd.DataFrame], bool | None], table: pd.DataFrame) -> bool | None:
    try:
        value = test(table)
    except (KeyError, IndexError):
        return None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


# --------------------------------------------------------------------------- ground truth


def truth_eras(dataset: Any, split: str = "validation") -> pd.DataFrame | None:
    """The synthetic ground truth's per-era record (regime, drift, `shifted`, ...) for the eras
    of `split`, or None when the data has no ground truth (real data)."""
    truth = getattr(dataset, "truth", None)
    if truth is None:
        return None
    eras = set(dataset.frame(split)["era"].astype(str)) if hasattr(dataset, "frame") else None
    table = truth.eras.copy()
    table["era"] = table["era"].astype(str)
    return table[table["era"].isin(eras)].reset_index(drop=True) if eras is not None else table


def truth_signals(dataset: Any, split: str = "validation") -> pd.DataFrame | None:
    """The ground truth's noise-free signals of every row of `split`, in that split's row
    order, or None when the data has no ground truth."""
    truth = getattr(dataset, "truth", None)
    if truth is None:
        return None
    frame = dataset.frame(split)
    missing = frame.index.difference(truth.rows.index)
    if len(missing):
        raise BnnlibError(
            f"the ground truth lacks {len(missing)} rows of the {split} split (e.g. {missing[0]!r}); "
            "regenerate the synthetic data (bnnlib data synth)"
        )
    return truth.rows.loc[frame.index]


def signal_ceiling(signals: pd.DataFrame, target: Any, eras: Any, columns: Sequence[str]) -> pd.DataFrame:
    """What a model that predicted a noise-free signal exactly would score: per signal column,
    the summary (mean, std, Sharpe, ...) of its per-era 2021 corr with the target."""

    rows = {}
    for column in columns:
        if column not in signals.columns:
            raise unknown_name("signal column", column, signals.columns)
        per_era = era_corr(signals[column].to_numpy(), np.asarray(target), np.asarray(eras))
        rows[column] = score_summary(per_era)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("signal")


# --------------------------------------------------------------------------- study 3


def grid_table(results: Mapping[tuple[str, str], Any], stat: str = "mean", kind: str = "corr") -> pd.DataFrame:
    """A (row, column) -> statistic table from results keyed by pairs, e.g. (hypothesis, prior)
    or (hidden layers, model); `stat` is one of the summary's keys (mean, sharpe, ...)."""
    need_results(results, "grid_table")
    check_kind(kind)
    cells = {}
    for key, result in results.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise BnnlibError(f"grid_table needs results keyed by (row, column) pairs, got the key {key!r}")
        summary = result.summary(kind)
        if stat not in summary:
            raise unknown_name("summary statistic", stat, summary)
        cells[key] = summary[stat]
    series = pd.Series(cells)
    return series.unstack()[list(dict.fromkeys(k[1] for k in cells))].reindex(
        list(dict.fromkeys(k[0] for k in cells)))


# --------------------------------------------------------------------------- notes


FLAT_NOTE = (" (the improper flat prior has no proper posterior for weights the data do not pin down: the guide's "
             "entropy grows their scales without bound, so its spread is set by when the optimiser stopped)")


def agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings (a `check_claims` table) were checkable and hold here too,
    and the wording of those that differ."""
    differ = "; ".join(check.loc[check["agree"].eq(False), "finding"]) or "none"
    return {"findings": int(len(check)), "agreed": int(check["agree"].eq(True).sum()),
            "checkable": int(check["agree"].notna().sum()), "differ": differ}


def unconverged_note(verdicts: Mapping[str, str], consequence: str) -> str:
    """The fits that did not converge, one clause per verdict, and once what that means for the
    numbers computed from them (`consequence`, said of one fit); empty when every fit converged."""
    groups: dict[str, list[str]] = {}
    for name, verdict in verdicts.items():
        if verdict != "converged":
            groups.setdefault(verdict, []).append(name)
    if not groups:
        return ""
    clauses = [f"{and_list([prior_label(n) for n in names])} {'fit is' if len(names) == 1 else 'fits are'} {verdict}"
               + (FLAT_NOTE if "flat" in names else "") for verdict, names in groups.items()]
    several = sum(len(names) for names in groups.values()) > 1
    return f"The {'; the '.join(clauses)}{'. For each of these fits: ' if several else '; '}{consequence}".strip()


def and_list(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def convergence_note(fit_table: pd.DataFrame, names: Sequence[str], consequence: str) -> dict:
    """Which of `names` converged (labels) and the note on the others."""
    verdicts = {n: fit_table.loc[n, "verdict"] for n in names}
    converged = [n for n, v in verdicts.items() if v == "converged"]
    return {"converged": prior_labels(converged),
            "unconverged_note": unconverged_note(verdicts, consequence) or "Every fit converged."}


def best_among_converged(scores: pd.DataFrame, names: Sequence[str], converged: Sequence[str] | None, what: str,
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


MATCHED_CONTROL = "baseline_bnn_lr"
"""The baseline trained with SVI's optimiser settings (study 1's matched-budget control); the
uncertainty chapter's point network is that very fit at its default settings, under this name."""

REVERSED_AUC = 0.3
"""An AUC below this ranks the eras a detector should flag *below* most others: as far under chance
(0.5) as 0.7 is above it, beyond the ~0.1 that luck alone moves an AUC over ~100 eras. Every such
AUC on a page gets a sentence (`reversed_note`), so it does not read as a good detector upside down."""


def reversed_note(aucs: Mapping[str, float], what: str) -> str:
    """A sentence for the detectors whose AUC against `what` is below `REVERSED_AUC` ("" if none):
    their std is lower, not higher, in those eras; read the other way round it would look like a
    detector, but a sign chosen after seeing the result is not one."""
    low = {name: auc for name, auc in aucs.items() if np.isfinite(auc) and auc < REVERSED_AUC}
    if not low:
        return ""
    listed = ", ".join(f"{name} (AUC {auc:.3f})" for name, auc in low.items())
    many = len(low) > 1
    return (f" Below {REVERSED_AUC} against {what}: {listed}. {'Their' if many else 'Its'} std is lower, not higher, "
            f"in those eras than in most others: a detector with its sign reversed. Read the other way round it "
            f"would look like a good one, but a sign chosen after seeing the result is not a detector, and an "
            f"uncertainty that falls where the model fails is no alarm.")


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


def span(low: float, high: float, fmt: str) -> str:
    """'X to Y' in the format `fmt`, or one value where both read the same at that precision."""
    first, last = format(low, fmt), format(high, fmt)
    return first if first == last else f"{first} to {last}"
