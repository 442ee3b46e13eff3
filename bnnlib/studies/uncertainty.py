"""Which uncertainty finds failing eras: per-era detectors, the plain controls beside them, and
how each is judged against what the synthetic data planted.

A method's uncertainty "detects" an era when its per-era mean predictive std ranks that era
above the others (the AUC of `bnnlib.studies.analysis.mann_whitney_auc`). On data whose shifts move the
features themselves, a statistic of the inputs alone may rank the eras as well: so every method
stands beside controls that need no Bayesian model (`feature_correlation`,
`covariance_distance`, `prediction_dispersion`), and what a method adds is what it does beyond
them. Coverage asks the converse question: does the interval a method draws around its
prediction hold the noise-free truth as often as it claims?
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.studies.analysis import mann_whitney_auc
from bnnlib.errors import BnnlibError


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
    """A model's burn eras (its ensemble's corr < 0, `analysis.burn_eras`), per era name."""
    from bnnlib.studies.analysis import burn_eras

    eras = burn_eras(result.per_era)
    return pd.Series(eras["burn"].to_numpy(), index=eras["era"].astype(str), name="burn")


def ground_truth(dataset) -> tuple[dict[str, pd.Series], np.ndarray | None, np.ndarray | None]:
    """What the synthetic data knows of its validation eras and rows: the planted changes, the
    noise-free signal, and that signal in the target's units; empty and None on real data."""
    from bnnlib.studies.analysis import truth_eras, truth_signals

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


def auc_difference(first: pd.Series, second: pd.Series, labels: pd.Series, n_boot: int = 2000,
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
    low, high = np.quantile(samples, [0.025, 0.975])
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
