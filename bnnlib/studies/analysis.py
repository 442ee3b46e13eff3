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
from scipy import stats

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


def percent_range(shares: Any) -> str:
    """'27-31%' for shares 0.27 and 0.31 (or '40%' when they round to one value)."""
    values = np.asarray(shares, dtype=np.float64)
    low, high = round(100 * float(values.min())), round(100 * float(values.max()))
    return f"{low}%" if low == high else f"{low}-{high}%"


# --------------------------------------------------------------------------- study 2


def _binary(labels: Any) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise BnnlibError(f"labels must be 1-dimensional, got shape {labels.shape}; pass one flag per era")
    if labels.dtype != bool:
        values = set(np.unique(labels).tolist())
        if not values <= {0, 1}:
            raise BnnlibError(f"labels must be booleans or 0/1, got values {sorted(values)[:5]}")
        labels = labels.astype(bool)
    return labels


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = _binary(labels)
    if scores.shape != labels.shape:
        raise BnnlibError(f"scores ({scores.shape}) and labels ({labels.shape}) must have one value per era each")
    if np.isnan(scores).any():
        raise BnnlibError("scores contain NaN; drop those eras first")
    return scores, labels


def mann_whitney_auc(scores: Any, labels: Any) -> float:
    """The area under the ROC curve of `scores` as a detector of `labels` (True = positive),
    by the Mann-Whitney statistic: the probability that a random positive scores higher than a
    random negative, ties counting one half. Higher scores are taken to flag positives, so an
    AUC above 0.5 means positives score higher. NaN when either class is empty."""
    scores, labels = _scores_labels(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)  # ties get their average rank
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auc_p_value(scores: Any, labels: Any) -> float:
    """One-sided p-value of the Mann-Whitney test that positives score higher than negatives
    (how often chance alone gives an AUC at least this high). NaN when a class is empty."""
    scores, labels = _scores_labels(scores, labels)
    if labels.all() or not labels.any():
        return float("nan")
    return float(stats.mannwhitneyu(scores[labels], scores[~labels], alternative="greater").pvalue)


def auc_p_value_from_counts(auc: float, n_pos: int, n_neg: int) -> float:
    """One-sided p-value of an AUC known only with its class sizes (e.g. the talk's), by the
    normal approximation to the Mann-Whitney statistic without ties: how likely chance alone
    gives an AUC at least this high."""
    if n_pos < 1 or n_neg < 1:
        raise BnnlibError(f"need at least one era in each class, got {n_pos} and {n_neg}")
    if not 0.0 <= auc <= 1.0:
        raise BnnlibError(f"an AUC lies in [0, 1], got {auc!r}")
    sd = math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return float(stats.norm.sf((auc - 0.5) / sd))


def with_p_values(burn: pd.DataFrame) -> pd.DataFrame:
    """A burn table known only by its AUCs and counts (the talk's: auc, burn_eras, n_eras) with
    the one-sided p-value of each AUC (`auc_p_value_from_counts`)."""
    table = burn.copy()
    table["p_value"] = [auc_p_value_from_counts(a, b, n - b)
                        for a, b, n in zip(table["auc"], table["burn_eras"], table["n_eras"])]
    return table


def roc_curve(scores: Any, labels: Any) -> pd.DataFrame:
    """The ROC curve of the rule "flag when score >= threshold", from flagging nothing (0, 0)
    to flagging everything (1, 1): columns threshold, fpr, tpr. Tied scores move together, so
    the trapezoidal area under it equals `mann_whitney_auc`."""
    scores, labels = _scores_labels(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise BnnlibError(
            f"a ROC curve needs both classes, got {n_pos} positive and {n_neg} negative eras; "
            "use more eras or a model whose scores vary"
        )
    thresholds = np.unique(scores)[::-1]
    tp = np.array([(labels & (scores >= t)).sum() for t in thresholds])
    fp = np.array([((~labels) & (scores >= t)).sum() for t in thresholds])
    return pd.DataFrame({
        "threshold": np.concatenate([[np.inf], thresholds]),
        "fpr": np.concatenate([[0.0], fp / n_neg]),
        "tpr": np.concatenate([[0.0], tp / n_pos]),
    })


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
    _need(results, "burn_detection")
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


def normal_posterior(mean: float, std: float) -> dict[str, float]:
    """A normal posterior N(mean, std^2) summarised: mean, std, P(> 0), central 95% interval."""
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 0:
        raise BnnlibError(f"a normal posterior needs a finite mean and a positive std, got {mean!r}, {std!r}")
    half = stats.norm.ppf(0.975) * std
    return {
        "mean": float(mean),
        "std": float(std),
        "p_positive": float(stats.norm.sf(0.0, loc=mean, scale=std)),
        "ci95_low": float(mean - half),
        "ci95_high": float(mean + half),
    }


def beta_posteriors(betas: Mapping[str, tuple[float, float]], verdicts: Mapping[str, str]) -> pd.DataFrame:
    """H4's beta per prior: the normal posterior {prior: (mean, std)} summarised (`normal_posterior`)
    with its fit's convergence verdict."""
    table = pd.DataFrame.from_dict({p: normal_posterior(m, s) for p, (m, s) in betas.items()},
                                   orient="index").rename_axis("prior")
    table["verdict"] = [verdicts[p] for p in table.index]
    return table


def hypotheses_table(hypotheses: Sequence[str]) -> pd.DataFrame:
    """Each target hypothesis with the one-line description of its likelihood."""
    from bnnlib.models.likelihoods import get_likelihood

    return pd.DataFrame({"model": [get_likelihood(h).description for h in hypotheses]},
                        index=pd.Index(list(hypotheses), name="hypothesis"))


def target_correlations(dataset: Any) -> pd.DataFrame:
    """Each role target (aux, long) with its role and its Pearson correlation with the main
    target on the training rows (rows where either is missing left out)."""
    roles = dataset.roles
    rows = [("other 20-day", t) for t in roles.aux] + ([("60-day", roles.long)] if roles.long else [])
    corr = dataset.train[[roles.main, *(t for _, t in rows)]].corr()
    return pd.DataFrame({"role": [r for r, _ in rows], f"corr with {roles.main}": [corr.loc[roles.main, t] for _, t in rows]},
                        index=pd.Index([t for _, t in rows], name="target"))


def normal_density(mean: float, std: float, points: int = 401, width: float = 4.0) -> pd.DataFrame:
    """The density of N(mean, std^2) on mean +- width std (for a plot): columns x, density."""
    normal_posterior(mean, std)  # validates
    x = np.linspace(mean - width * std, mean + width * std, points)
    return pd.DataFrame({"x": x, "density": stats.norm.pdf(x, loc=mean, scale=std)})


# --------------------------------------------------------------------------- architecture


def normal_fit(values: Any) -> tuple[float, float]:
    """The maximum-likelihood normal fit (mean, std with ddof=0) of a sample."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        raise BnnlibError(f"a normal fit needs at least 2 finite values, got {len(values)}; use more draws")
    std = float(values.std(ddof=0))
    if std <= 0:
        raise BnnlibError("the values are all equal, so their normal fit has no spread; use a model with several draws")
    return float(values.mean()), std


def _check_normal(mean: float, std: float) -> None:
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 0:
        raise BnnlibError(f"a normal distribution needs a finite mean and a positive std, got {mean!r}, {std!r}")


def _log_base(base: float) -> float:
    if not base > 1:
        raise BnnlibError(f"the log base must be greater than 1 (e.g. math.e for nats, 2 for bits), got {base!r}")
    return math.log(base)


def kl_normal(m1: float, s1: float, m2: float, s2: float, base: float = math.e) -> float:
    """KL(N(m1, s1^2) || N(m2, s2^2)) in closed form (nats by default; unbounded)."""
    _check_normal(m1, s1)
    _check_normal(m2, s2)
    nats = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    return max(nats, 0.0) / _log_base(base)


def jeffreys_normal(m1: float, s1: float, m2: float, s2: float, base: float = math.e) -> float:
    """The symmetrised KL divergence KL(p||q) + KL(q||p) between two normals (unbounded)."""
    return kl_normal(m1, s1, m2, s2, base) + kl_normal(m2, s2, m1, s1, base)


def js_normal(m1: float, s1: float, m2: float, s2: float, base: float = math.e, points: int = 4001) -> float:
    """The Jensen-Shannon divergence between N(m1, s1^2) and N(m2, s2^2), by numerical
    integration (it has no closed form): JS = (KL(p||m) + KL(q||m)) / 2 with m = (p + q) / 2.

    Each KL is an expectation under its own normal, integrated by Simpson's rule on a grid of
    `points` over its mean +- 12 std, so a narrow distribution far from the other is resolved.
    In nats (base e) JS lies in [0, ln 2]; in bits (base 2) in [0, 1].
    """
    _check_normal(m1, s1)
    _check_normal(m2, s2)
    from scipy.integrate import simpson

    def half(m: float, s: float) -> float:
        x = np.linspace(m - 12 * s, m + 12 * s, points)
        log_p = stats.norm.logpdf(x, m1, s1)
        log_q = stats.norm.logpdf(x, m2, s2)
        log_own = log_p if (m, s) == (m1, s1) else log_q
        log_mix = np.logaddexp(log_p, log_q) - LN2
        return float(simpson(np.exp(log_own) * (log_own - log_mix), x=x))

    nats = 0.5 * (half(m1, s1) + half(m2, s2))
    return float(min(max(nats, 0.0), LN2)) / _log_base(base)


DIVERGENCES: dict[str, Callable[..., float]] = {
    "js": js_normal,
    "kl": kl_normal,
    "jeffreys": jeffreys_normal,
}
"""Divergences between two normal fits: JS (bounded by ln 2 in nats), KL(row || column), and
the symmetrised KL (Jeffreys)."""


def divergence_matrix(fits: Mapping[Any, tuple[float, float]], divergence: str = "js",
                      base: float = math.e) -> pd.DataFrame:
    """The matrix of `divergence` between every pair of normal fits {label: (mean, std)}
    (row = first argument)."""
    if divergence not in DIVERGENCES:
        raise unknown_name("divergence", divergence, DIVERGENCES)
    if not fits:
        raise BnnlibError("divergence_matrix needs at least one normal fit {label: (mean, std)}")
    function = DIVERGENCES[divergence]
    labels = list(fits)
    values = [[0.0 if a == b else function(*fits[a], *fits[b], base=base) for b in labels] for a in labels]
    return pd.DataFrame(values, index=pd.Index(labels), columns=pd.Index(labels))


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


def off_diagonal(matrix: pd.DataFrame) -> np.ndarray:
    """The values above the diagonal of a square matrix (each pair once)."""
    values = matrix.to_numpy(dtype=np.float64)
    return values[np.triu_indices_from(values, k=1)]


def depth_label(hidden: Sequence[int]) -> str:
    """'0 (linear)', '1 (128)', '3 (128, 64, 64)': the number of hidden layers and their sizes."""
    hidden = tuple(int(h) for h in hidden)
    return f"{len(hidden)} ({', '.join(map(str, hidden)) if hidden else 'linear'})"



# --------------------------------------------------------------------------- the data chapter


def era_size_summary(sizes: pd.DataFrame) -> pd.DataFrame:
    """Per split (a `card.era_sizes` table): how many eras, and their mean, smallest and largest
    number of rows."""
    return sizes.groupby("split")["rows"].describe()[["count", "mean", "min", "max"]].round(0)


def level_share_summary(feature_shares: pd.DataFrame, target_shares: pd.DataFrame, target: str) -> pd.DataFrame:
    """The mean share of each value over the features and over the main target
    (`card.level_shares` tables), one row each."""
    shares = {"features": feature_shares.mean(), target: target_shares.mean()}
    return pd.DataFrame(shares).T.round(3).rename_axis("mean share of each value")


def drifting_features(drift: pd.DataFrame, alpha: float = 0.01) -> tuple[float, pd.DataFrame]:
    """The Bonferroni threshold (`alpha` over the number of features) and the features whose
    per-era correlation drifts beyond sampling noise at it (`facts.feature_drift`), most
    dispersed first."""
    threshold = alpha / len(drift)
    return threshold, drift[drift["p_value"] < threshold].sort_values("dispersion", ascending=False)


def shifted_eras_mask(truth_eras: pd.DataFrame, eras: pd.Index) -> pd.Series:
    """Whether each of `eras` was planted as shifted (the synthetic data's truth), in their order."""
    return truth_eras.set_index("era")["shifted"].astype(bool).reindex(eras)
