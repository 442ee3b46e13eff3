"""Which uncertainty finds failing eras (the chapter `book/uncertainty.py`): per-era detectors,
the plain controls beside them, and how each is judged against what the synthetic data planted;
the chapter's models, and the values its page glues.

A method's uncertainty "detects" an era when its per-era mean predictive std ranks that era
above the others (the AUC of `bnnlib.scoring.statistics.mann_whitney_auc`). On data whose shifts move the
features themselves, a statistic of the inputs alone may rank the eras as well: so every method
stands beside controls that need no Bayesian model (`feature_correlation`,
`covariance_distance`, `prediction_dispersion`), and what a method adds is what it does beyond
them. Coverage asks the converse question: does the interval a method draws around its
prediction hold the noise-free truth as often as it claims?
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.errors import BnnlibError
from bnnlib.models.priors import canonical_prior
from bnnlib.evaluate.study import ModelSpec
from bnnlib.scoring.statistics import mann_whitney_auc
from bnnlib.studies.common import signal_ceiling, truth_eras, truth_signals
from bnnlib.studies.burn_eras import burn_eras
from bnnlib.studies.common import MATCHED_CONTROL, REVERSED_AUC, TALK_PROCEDURE, bnn_spec, snapshot_pair, training_fields

# --------------------------------------------------------------------------- models

HETERO = "hetero"
"""The uncertainty chapter's BNN whose noise depends on the row (the heteroscedastic likelihood),
whose predictive variance splits into epistemic and aleatoric parts."""


def point_name(params: Mapping) -> str:
    """The name of the chapter's point network, the same across the book for the same fit: study
    1's `MATCHED_CONTROL` when it trains as SVI does to snapshot A (SVI's lr, constant: the
    defaults), else its lr in its name (never plain "baseline", which is study 1's lr-1e-2 network)."""
    lr, final = params["lr_baseline"], params.get("lr_baseline_final", 1.0)
    if lr == params["lr_bnn"] and final == 1.0:
        return MATCHED_CONTROL
    return f"baseline_lr{lr:g}" + ("" if final == 1.0 else f"_to{final:g}")


def precision_check_name(params: Mapping) -> str:
    """The point network trained and scored in float32, beside the chapter's precision."""
    return f"{point_name(params)}_float32"


def models(params: Mapping) -> list[ModelSpec]:
    """The uncertainty chapter: the baseline and study 1's BNNs (the same cache entries), MC
    dropout (the baseline network trained with dropout, `draws` masks), a deep ensemble (`members`
    seeds of the baseline) and a heteroscedastic BNN under `hetero_prior`. The point networks
    train at `lr_baseline`, decaying to `lr_baseline_final` of it (at lr 1e-3 and 0.1, the
    baseline is study 1's matched-budget control, baseline_bnn_lr). When they train in bf16, the
    baseline is trained in float32 too (the point networks' precision check)."""
    training = training_fields(params)
    common = dict(hidden=tuple(params["hidden"]), lr=params["lr_baseline"],
                  lr_final=params.get("lr_baseline_final", 1.0), **training)
    specs = [
        ModelSpec(point_name(params), method="baseline", **common),
        *[spec for p in params["priors"] for spec in snapshot_pair(canonical_prior(p), canonical_prior(p), params)],
        ModelSpec("mc_dropout", method="dropout", dropout=params["dropout"], draws=params["draws"], **common),
        ModelSpec("deep_ensemble", method="ensemble", members=params["members"], **common),
    ]
    if params.get("hetero_prior"):
        prior = canonical_prior(params["hetero_prior"])
        specs.append(bnn_spec(HETERO, prior, params, hypothesis="hetero", **TALK_PROCEDURE))
    if training["precision"] != "float32":
        specs.append(ModelSpec(precision_check_name(params), method="baseline", **{**common, "precision": "float32"}))
    return specs


# --------------------------------------------------------------------------- detectors and controls


def _per_era(x: np.ndarray, eras) -> list[tuple[str, np.ndarray]]:
    eras = np.asarray(eras).astype(str)
    if len(eras) != len(x):
        raise BnnlibError(f"{len(x)} rows but {len(eras)} era labels; pass one era per row")
    order = np.argsort(eras, kind="stable")
    names, starts = np.unique(eras[order], return_index=True)
    bounds = list(starts) + [len(order)]
    return [(name, x[order[bounds[i] : bounds[i + 1]]]) for i, name in enumerate(names)]


def _correlation(block: np.ndarray) -> np.ndarray:
    """Feature correlations of one block of rows; a feature constant in the block correlates 0."""
    centred = block - block.mean(0)
    scale = np.sqrt((centred * centred).sum(0))
    scale[scale == 0] = np.inf
    unit = centred / scale
    return unit.T @ unit


def _by_era_name(series: pd.Series) -> pd.Series:
    """`series` indexed by era names as strings (eras come as strings or numbers by source)."""
    return series.set_axis(series.index.astype(str))


def feature_correlation(x, eras) -> pd.Series:
    """Per era, the mean absolute correlation between distinct features: an input statistic that
    sees a shift which makes features move together (no model involved)."""
    x = np.asarray(x, dtype=np.float64)
    out = {}
    for name, block in _per_era(x, eras):
        corr = np.abs(_correlation(block))
        n = corr.shape[0]
        out[name] = float((corr.sum() - np.trace(corr)) / (n * (n - 1))) if n > 1 else float("nan")
    return pd.Series(out, name="feature_correlation").rename_axis("era")


def covariance_distance(x, eras, reference) -> pd.Series:
    """Per era, how far its feature correlation matrix lies from that of the `reference` rows
    (the training data): the Frobenius norm of the difference over the reference's norm."""
    base = _correlation(np.asarray(reference, dtype=np.float64))
    norm = np.linalg.norm(base)
    out = {name: float(np.linalg.norm(_correlation(block) - base) / norm)
           for name, block in _per_era(np.asarray(x, dtype=np.float64), eras)}
    return pd.Series(out, name="covariance_distance").rename_axis("era")


def prediction_dispersion(prediction, eras) -> pd.Series:
    """Per era, the std of one network's predictions across the era's rows: the plain model's
    own signal that an era looks unusual, with no draws at all."""
    prediction = np.asarray(prediction, dtype=np.float64)
    frame = pd.DataFrame({"era": np.asarray(eras).astype(str), "p": prediction})
    return frame.groupby("era")["p"].std(ddof=0).rename("prediction_dispersion")


def detection_aucs(detectors: Mapping[str, pd.Series], truths: Mapping[str, pd.Series]) -> pd.DataFrame:
    """The AUC of every per-era detector (higher flags) against every per-era truth (True =
    the era has it): one row per detector, one column per truth. Eras are matched by name; a
    detector missing an era of the truth is an error naming it."""
    rows = {}
    for name, detector in detectors.items():
        detector = _by_era_name(detector)
        row = {}
        for truth_name, truth in truths.items():
            truth = _by_era_name(truth)
            missing = truth.index.difference(detector.index)
            if len(missing):
                raise BnnlibError(f"detector {name!r} has no value for {len(missing)} eras of {truth_name!r} "
                                  f"(e.g. {missing[0]!r})")
            row[truth_name] = mann_whitney_auc(detector.loc[truth.index].to_numpy(), truth.to_numpy(dtype=bool))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("detector")


def std_shift(detector: pd.Series, truth: pd.Series) -> dict[str, float]:
    """How far a per-era std moves in the eras of a change, against how much it varies anyway:
    the ratio of its mean in the changed eras to its mean in the others, and its relative spread
    (std over mean) among the others. An AUC says only which way and how cleanly the two sets of
    eras separate; a ratio of 0.98 against a spread of 0.006 is a clean but tiny move."""
    detector, truth = _by_era_name(detector), _by_era_name(truth)
    flagged = truth.astype(bool)
    changed, others = detector.loc[truth.index[flagged]], detector.loc[truth.index[~flagged]]
    if changed.empty or others.empty or not others.mean() > 0:
        return {"ratio": float("nan"), "spread_others": float("nan")}
    return {"ratio": float(changed.mean() / others.mean()), "spread_others": float(others.std() / others.mean())}


def std_shifts(detectors: Mapping[str, pd.Series], truth: pd.Series | None) -> pd.DataFrame:
    """`std_shift` of every per-era std against one change, a row per method (empty when the
    data plant no such change: real data)."""
    if truth is None:
        return pd.DataFrame(columns=["ratio", "spread_others"], dtype=float)
    return pd.DataFrame({name: std_shift(std, truth) for name, std in detectors.items()}).T


def signal_on_target_scale(signal, fit_signal, fit_target) -> np.ndarray:
    """The noise-free signal in the target's units: `signal` mapped by the least-squares line
    from the signal to the target on (`fit_signal`, `fit_target`) (the training rows). The
    synthetic signal lives on its own latent scale, a prediction on the target's; the line is the
    best a model of the target could express of it, so intervals can be checked against it."""
    fit_signal = np.asarray(fit_signal, dtype=np.float64)
    fit_target = np.asarray(fit_target, dtype=np.float64)
    keep = ~np.isnan(fit_target)
    slope, intercept = np.polyfit(fit_signal[keep], fit_target[keep], 1)
    return intercept + slope * np.asarray(signal, dtype=np.float64)


def interval_coverage(mean, std, truth, level: float) -> float:
    """The share of rows whose `truth` lies in the central `level` interval of a Normal with the
    row's predictive `mean` and `std`: `level` itself for calibrated intervals, less when they
    are too narrow (overconfident), more when too wide."""
    if not 0 < level < 1:
        raise BnnlibError(f"an interval's level lies in (0, 1), got {level!r}")
    mean, std, truth = (np.asarray(v, dtype=np.float64) for v in (mean, std, truth))
    half = stats.norm.ppf(0.5 + level / 2.0) * std
    return float(np.mean(np.abs(truth - mean) <= half))


def spread(draw_summary: pd.DataFrame) -> pd.Series:
    """How the per-draw (or per-seed) scores of one model spread: the std over draws of the
    validation corr and of the Sharpe, and their ranges, from `DrawScores.draw_summary()`."""
    return pd.Series({
        "corr_std": float(draw_summary["mean"].std(ddof=1)),
        "corr_min": float(draw_summary["mean"].min()),
        "corr_max": float(draw_summary["mean"].max()),
        "sharpe_std": float(draw_summary["sharpe"].std(ddof=1)),
        "n": int(len(draw_summary)),
    })


def precision_pair(bf16, float32) -> pd.DataFrame:
    """One point network trained in bf16 and in float32 (two `ModelResult`s): its validation
    corr and its training seconds, per precision."""
    rows = {label: {"corr": float(r.summary()["mean"]), "fit_seconds": float(sum(r.history["epoch_seconds"]))}
            for label, r in (("bf16", bf16), ("float32", float32))}
    return pd.DataFrame(rows).T.rename_axis("precision")


# --------------------------------------------------------------------------- the chapter's tables

CONCEPT_DRIFT_SHARE = 0.25
"""The validation eras whose linear weights drifted furthest from the training eras' (this top
share of the truth's `drift_distance`, sudden shifts apart) count as concept-drift eras."""


def planted_changes(truth_eras: pd.DataFrame) -> dict[str, pd.Series]:
    """The synthetic data's planted changes, per validation era (True = the era has it):
    `covariate_shift`, the sudden shifts, which raise the features' common loading (visible in
    the inputs; the generator also flips some weights in those eras); `concept_drift`, changes
    of the relation that leave the features' distribution alone: the eras of a concept shift
    where the profile plants them (the `-drift` profiles), else the eras whose weights drifted
    furthest (`CONCEPT_DRIFT_SHARE`) without a sudden shift.

    `concept_drift` covers only the eras without a sudden shift: its negatives are the calm
    eras. Against every other era, a detector that rises in the shifted eras (the input
    statistics do, perfectly) would score below 0.5 for concept drift by that alone."""
    table = truth_eras.assign(era=truth_eras["era"].astype(str)).set_index("era")
    shifted = table["shifted"].astype(bool)
    if "concept_shift" in table.columns and table["concept_shift"].astype(bool).any():
        drifted = table["concept_shift"].astype(bool)
    else:
        calm = table.loc[~shifted, "drift_distance"]
        drifted = table["drift_distance"] >= calm.quantile(1.0 - CONCEPT_DRIFT_SHARE)
    return {"covariate_shift": shifted.rename("covariate_shift"),
            "concept_drift": drifted[~shifted].rename("concept_drift")}


def method_rows(fitted: Mapping, changes: Mapping[str, pd.Series], signal, signal_target, runs: pd.DataFrame
                ) -> pd.DataFrame:
    """One row per model of `fitted` (`bnnlib.evaluate.study.ModelResult`s): its ensemble's corr and
    Sharpe; the AUC of its per-era mean predictive std against its own burn eras and against each
    planted change; its ensemble's correlation with the noise-free signal; how often the central
    50% and 90% intervals of its draws hold the noise-free target (`signal_target`, in the
    target's units); what fitting and scoring it cost (`runs`, the chapter's registry rows).
    A one-draw model has no spread: its uncertainty columns are NaN."""
    seconds = runs.set_index("model")[["fit_seconds", "score_seconds"]] if len(runs) else None
    rows = {}
    for name, result in fitted.items():
        corr = result.summary("corr")
        many = result.spec.n_draws > 1 and float(np.max(result.scores.std)) > 0
        era_std = result.scores.era_std()
        era_std.index = era_std.index.astype(str)
        burn = burn_flags(result)
        aucs = detection_aucs({name: era_std}, {"burn": burn, **changes}).loc[name] if many else {}
        prediction = np.asarray(result.scores.ensemble, dtype=np.float64)
        rows[name] = {
            "corr_mean": corr["mean"], "corr_sharpe": corr["sharpe"],
            "burn_eras": int(burn.sum()),
            "burn_auc": aucs.get("burn", np.nan),
            "covariate_shift_auc": aucs.get("covariate_shift", np.nan),
            "concept_drift_auc": aucs.get("concept_drift", np.nan),
            "signal_corr": float(np.corrcoef(prediction, signal)[0, 1]) if prediction.std() > 0 else np.nan,
            "coverage_50": interval_coverage(prediction, result.scores.std, signal_target, 0.5) if many else np.nan,
            "coverage_90": interval_coverage(prediction, result.scores.std, signal_target, 0.9) if many else np.nan,
            "fit_seconds": float(seconds.loc[name, "fit_seconds"]) if seconds is not None else np.nan,
            "score_seconds": float(seconds.loc[name, "score_seconds"]) if seconds is not None else np.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def burn_flags(result) -> pd.Series:
    """A model's burn eras (its ensemble's corr < 0, `burn_eras.burn_eras`), per era name."""
    eras = burn_eras(result.per_era)
    return pd.Series(eras["burn"].to_numpy(), index=eras["era"].astype(str), name="burn")


def ground_truth(dataset) -> tuple[dict[str, pd.Series], np.ndarray | None, np.ndarray | None]:
    """What the synthetic data knows of its validation eras and rows: the planted changes, the
    noise-free signal, and that signal in the target's units; empty and None on real data."""
    eras, signals = truth_eras(dataset), truth_signals(dataset)
    if eras is None or signals is None:
        return {}, None, None
    _, y_train, _ = dataset.arrays("train", [dataset.roles.main])
    train_signal = truth_signals(dataset, "train")["signal"].to_numpy()
    signal = signals["signal"].to_numpy()
    return planted_changes(eras), signal, signal_on_target_scale(signal, train_signal, y_train[:, 0])


def controls(dataset, baseline) -> dict[str, pd.Series]:
    """The per-era controls that need no model of uncertainty, on the validation eras: the
    inputs' own statistics (against the training rows, every tenth) and the plain network's
    prediction dispersion (`baseline`, a `ModelResult`)."""
    x_valid, _, eras = dataset.arrays("validation", [dataset.roles.main])
    x_train, _, _ = dataset.arrays("train", [dataset.roles.main])
    return {"feature_correlation": feature_correlation(x_valid, eras),
            "covariance_distance": covariance_distance(x_valid, eras, reference=x_train[::10]),
            "baseline_dispersion": prediction_dispersion(baseline.scores.ensemble, eras)}


def control_rows(controls: Mapping[str, pd.Series], burn: pd.Series, changes: Mapping[str, pd.Series]
                 ) -> pd.DataFrame:
    """The AUCs of the controls (per-era statistics that need no Bayesian model) against `burn`
    (the plain network's burn eras) and each planted change, as rows beside the methods'."""
    aucs = detection_aucs(controls, {"burn": burn, **changes})
    return aucs.rename(columns={"burn": "burn_auc", **{k: f"{k}_auc" for k in changes}})


BOOTSTRAP_RESAMPLES = 2000
"""How many resamplings of the eras `auc_difference` draws: enough that the 2.5% and 97.5%
quantiles of the difference of two AUCs move by far less than the third decimal the page prints."""

INTERVAL_QUANTILES = (0.025, 0.975)
"""The ends of the interval of an AUC difference (a central 95% interval): a method adds to a
control only when this interval excludes 0."""


def auc_difference(first: pd.Series, second: pd.Series, labels: pd.Series, n_boot: int = BOOTSTRAP_RESAMPLES,
                   seed: int = 0) -> tuple[float, float, float]:
    """AUC(first) - AUC(second) as detectors of the same per-era `labels`, with a 95% interval
    from resampling the eras (both detectors on the same resampled eras, so their shared
    luck cancels): (difference, low, high). With ~100 eras and a few flagged, single AUCs move by
    0.1 from luck alone, so a method "adds" to a control only when the interval excludes 0."""
    eras = labels.index.astype(str)
    a = _by_era_name(first).loc[eras].to_numpy(dtype=float)
    b = _by_era_name(second).loc[eras].to_numpy(dtype=float)
    flags = labels.to_numpy(dtype=bool)
    difference = mann_whitney_auc(a, flags) - mann_whitney_auc(b, flags)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(eras), len(eras))
        if flags[pick].all() or not flags[pick].any():
            continue
        samples.append(mann_whitney_auc(a[pick], flags[pick]) - mann_whitney_auc(b[pick], flags[pick]))
    if not samples:
        return difference, float("nan"), float("nan")
    low, high = np.quantile(samples, list(INTERVAL_QUANTILES))
    return float(difference), float(low), float(high)


def best_against_control(detectors: Mapping[str, pd.Series], controls: Mapping[str, pd.Series],
                         truths: Mapping[str, pd.Series | Mapping[str, pd.Series]]) -> pd.DataFrame:
    """Per question (a truth: one per-era flag, or one per method such as each model's own burn
    eras, keyed like `detectors`): the method with the highest AUC, the control with the highest
    AUC against the same flags, and `auc_difference` of the two. One row per question."""
    rows = {}
    for question, truth in truths.items():
        def flags_for(name: str) -> pd.Series:
            return truth[name] if isinstance(truth, Mapping) else truth

        method_aucs = {n: detection_aucs({n: s}, {"q": flags_for(n)}).iloc[0, 0]
                       for n, s in detectors.items() if not isinstance(truth, Mapping) or n in truth}
        method_aucs = {n: a for n, a in method_aucs.items() if np.isfinite(a)}
        if not method_aucs:
            rows[question] = {"method": None, "method_auc": np.nan, "control": None, "control_auc": np.nan,
                              "difference": np.nan, "low": np.nan, "high": np.nan}
            continue
        method = max(method_aucs, key=method_aucs.get)
        flags = flags_for(method)
        control_aucs = detection_aucs(controls, {"q": flags})["q"].dropna() if controls else pd.Series(dtype=float)
        row = {"method": method, "method_auc": method_aucs[method], "control": None, "control_auc": np.nan,
               "difference": np.nan, "low": np.nan, "high": np.nan}
        if len(control_aucs):
            control = str(control_aucs.idxmax())
            difference, low, high = auc_difference(detectors[method], controls[control], flags)
            row.update(control=control, control_auc=float(control_aucs.max()), difference=difference, low=low,
                       high=high)
        rows[question] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("question")


# --------------------------------------------------------------------------- the chapter's other tables


def draw_spreads(fitted: Mapping) -> pd.DataFrame:
    """`spread` of every model with more than one draw (a posterior's draws, MC dropout's masks,
    the deep ensemble's seeds), a row per method."""
    return pd.DataFrame({name: spread(r.scores.draw_summary()) for name, r in fitted.items()
                         if r.spec.n_draws > 1}).T.rename_axis("method")


def truth_ceiling(dataset) -> float:
    """The validation corr of the noise-free signal with the main target: what no model can beat
    on average (synthetic data only)."""
    _, y_valid, valid_eras = dataset.arrays("validation", [dataset.roles.main])
    return signal_ceiling(truth_signals(dataset), y_valid[:, 0], valid_eras, ["signal"]).loc["signal", "mean"]


# --------------------------------------------------------------------------- findings


def _best(table: pd.DataFrame, column: str) -> tuple[str, float] | None:
    values = table[column].dropna()
    return (str(values.idxmax()), float(values.max())) if len(values) else None


DETECT_NOTES = {
    "burn": ("detect_burn", "the eras where each model burns"),
    "covariate_shift": ("detect_covariate_shift", "the eras of covariate shift"),
    "concept_drift": ("detect_concept_drift", "the eras of concept drift"),
}
"""Per question `best_against_control` answers (a row of its table): the glue key of its note
and the eras it asks about, in words."""


def uncertainty_detection(detections: pd.DataFrame, left_out: Sequence[str] = ()) -> dict:
    """Per question (burn eras, each planted change): the best method against the best control,
    by the difference of their AUCs and its 95% interval over resampled eras
    (`best_against_control`), as `detect_<question>` notes (`DETECT_NOTES`). `left_out`: the
    methods not in the running because their fit did not converge (their spread is the
    optimiser's state: the best of them would be the luckiest stop, not a method)."""
    out = {}
    excluded = ("" if not left_out else
                f" Left out: {left_out[0]}, whose fit did not converge (its AUC is in the table above)."
                if len(left_out) == 1 else
                f" Left out: {', '.join(left_out)}, whose fits did not converge (their AUCs are in the table above).")
    for question, row in detections.iterrows():
        if question not in DETECT_NOTES:
            raise BnnlibError(f"no note for the question {question!r}; known: {', '.join(DETECT_NOTES)}")
        key, what = DETECT_NOTES[question]
        if pd.isna(row["method"]):
            out[key] = f"No method with a spread of draws was scored for {what}."
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
        out[key] = text + excluded
    return out




def std_direction(shifts: pd.DataFrame, aucs: pd.Series, what: str = "covariate shift") -> dict:
    """For the converged methods whose std separates the eras of a change in the wrong direction
    (AUC below `REVERSED_AUC`: lower where the data changed), how far that std moves against how
    much it varies from era to era anyway (`direction_note`; `shifts`: per method, `std_shift`'s
    ratio of means and `spread_others`, the std over the mean among the other eras)."""
    low = [m for m in shifts.index
           if m in aucs.index and aucs[m] < REVERSED_AUC and np.isfinite(shifts.loc[m, "ratio"])]
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


NARROW_COVERAGE_90 = 0.8
"""A central 90% interval that holds the noise-free target in fewer than this share of rows (it
misses more than one time in five, twice the 10% it allows) is far too narrow."""

WIDE_COVERAGE_50 = 0.75
"""A central 50% interval that holds the noise-free target in more than this share of rows
(three times in four, half as often again as it claims) is far too wide."""


def uncertainty_truth(methods: pd.DataFrame, ceiling: float) -> dict:
    """How much of the noise-free signal each method found, and whether its intervals hold the
    noise-free target as often as they claim (`truth_signal`, `truth_coverage`; far off by
    `NARROW_COVERAGE_90` and `WIDE_COVERAGE_50`)."""
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
        narrow = [n for n, row in covered.iterrows() if row.coverage_90 < NARROW_COVERAGE_90]
        wide = [n for n, row in covered.iterrows() if row.coverage_50 > WIDE_COVERAGE_50]
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

    same = lr == lr_bnn and lr_final == 1.0
    return {"point_lr_note": (
        f"Adam at {schedule(lr, lr_final)}: " + (
            "SVI's optimiser to snapshot A, so the baseline is study 1's matched-budget control (baseline_bnn_lr)"
            if same else f"not SVI's to snapshot A ({schedule(lr_bnn, 1.0)}), so the baseline is not study 1's "
            "matched-budget control"))}


SEED_SPREAD_SHARE = 0.5
"""A posterior's draws stand for retraining when their corr spreads at least this share of the
seeds' std: half as much, not equal, since a few seeds estimate a std only roughly."""


def seed_spread(spreads: pd.DataFrame, left_out: Sequence[str] = ()) -> dict:
    """The spread over seeds of the point network beside the spread over draws of each
    posterior (`spread_note`): does the posterior vary as much as retraining does (at least
    `SEED_SPREAD_SHARE` of it)? The methods `left_out` (fits that did not converge) are listed
    but not judged: their spread is where the optimiser stopped."""
    if "deep_ensemble" not in spreads.index:
        return {"spread_note": "This run has no deep ensemble, so there is no seed spread to compare."}
    seeds = spreads.loc["deep_ensemble"]
    others = spreads.drop(index="deep_ensemble")
    parts = [f"{name} {row.corr_std:.4f}" for name, row in others.iterrows()]
    excluded = [n for n in left_out if n in others.index]
    judged = others.drop(index=excluded)
    wider = [name for name, row in judged.iterrows() if row.corr_std >= SEED_SPREAD_SHARE * seeds.corr_std]
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


PRECISION_SEED_STDS = 1.0
"""bf16 moves a point network's corr no further than retraining does when the difference of the
two precisions is below this many seed stds (one: what one other seed moves it by, typically)."""


def point_precision(check: pd.DataFrame | None, spreads: pd.DataFrame, precision: str) -> dict:
    """bf16 against float32 for a point network (`point_note`): the baseline's corr both ways
    against the spread over the deep ensemble's seeds, the yardstick of a network without draws
    (below `PRECISION_SEED_STDS` of it: less than a seed does)."""
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
                    if ratio < PRECISION_SEED_STDS else
                    "as much as a seed does or more; compare the two precisions over several seeds before trusting "
                    "bf16 here."))
    return {"point_note": note}
