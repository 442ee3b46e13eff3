"""The studies' tables and figure data, computed from scored models (pure functions).

Each chapter of the book fits its models through `bnnlib.evaluate.study` and hands the results here:
score tables (study 1), the draws-versus-ensemble comparison (study 1), burn eras and the
predictive std as a burn-era detector with its ROC curve and Mann-Whitney AUC (study 2), the
hypotheses' table and H4's beta posterior (study 3), and divergences between normal fits of
per-draw score distributions (the architecture appendix). Nothing here fits, draws or plots,
so everything is quick to test on small arrays.

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

KINDS = ("corr", "numerai_corr")
"""The two per-era scores: the talk's 2021 corr and today's official numerai_corr."""

LN2 = math.log(2.0)


def check_kind(kind: str) -> str:
    """`kind` if it names a per-era score, else a BnnlibError listing them."""
    if kind not in KINDS:
        raise unknown_name("score kind", kind, KINDS)
    return kind


def _need(results: Mapping, what: str) -> None:
    if not results:
        raise BnnlibError(f"{what} needs at least one scored model; pass the dict evaluate_models returned")


# --------------------------------------------------------------------------- study 1


def score_table(results: Mapping[str, Any], kinds: Sequence[str] = KINDS) -> pd.DataFrame:
    """One row per model: the mean, std, Sharpe and max drawdown of its per-era scores (the
    ensemble's, for Bayesian models), for each score kind, and its burn-era count."""
    _need(results, "score_table")
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
    from bnnlib.scoring.metrics import era_corr, score_summary

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
    _need(results, "grid_table")
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


def format_corr_sharpe(corr: pd.DataFrame, sharpe: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Cells "corr (Sharpe)" as the talk prints them; blank where a value is missing."""
    def cell(c: float, s: float) -> str:
        if pd.isna(c) or pd.isna(s):
            return ""
        return f"{c:.{digits}f} ({s:.{digits}f})"

    sharpe = sharpe.reindex(index=corr.index, columns=corr.columns)
    return pd.DataFrame(
        [[cell(c, s) for c, s in zip(crow, srow)] for crow, srow in zip(corr.to_numpy(), sharpe.to_numpy())],
        index=corr.index, columns=corr.columns,
    )


def corr_sharpe_side_by_side(corr: pd.DataFrame, sharpe: pd.DataFrame, talk_corr: pd.DataFrame,
                             talk_sharpe: pd.DataFrame, *, ours_label: str = "this run") -> pd.DataFrame:
    """Our "corr (Sharpe)" cells beside the talk's, as the talk prints its grids."""
    return side_by_side(format_corr_sharpe(corr, sharpe), format_corr_sharpe(talk_corr, talk_sharpe),
                        ours_label=ours_label)
