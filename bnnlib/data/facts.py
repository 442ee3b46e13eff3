"""Does a dataset show Numerai's statistical facts? One row per fact the data chapter shows.

Each fact is measured on the data alone (so it works on real files too); where the data carries
its ground truth (synthetic), the nonlinearity fact also reads it. The simple model is a linear
regression (ridge with a tiny penalty) on the loaded features, fit on train and scored on
validation with the 2021 per-era corr of bnnlib.scoring.metrics.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.data.card import level_shares, target_correlations
from bnnlib.data.dataset import Dataset
from bnnlib.data.levels import LEVELS, TARGET_SHARES
from bnnlib.scoring.metrics import era_corr

CHUNK = 200_000
V3_TARGET_CORRS = {"aux 1": 0.66, "aux 2": 0.72, "long": 0.50}  # janet_20, george_20, nomi_60 vs nomi_20


# --------------------------------------------------------------------------- linear models


def one_blas_thread(function):
    """Run `function` with one BLAS thread. Its products are small (features x features), and
    OpenBLAS's spinning threads make them up to 100x slower on a busy two-core machine.
    threadpoolctl is a dependency of bnnlib; an environment without it runs unlimited."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - depends on the environment
            limit = contextlib.nullcontext()
        else:
            limit = threadpool_limits(1, user_api="blas")
        with limit:
            return function(*args, **kwargs)

    return wrapper


def _normal_equations(blocks) -> tuple[np.ndarray, np.ndarray]:
    """Sums of [x, 1]'[x, 1] and [x, 1]'y over row blocks (memory stays one block)."""
    gram, moment = None, None
    for x, y in blocks:
        a = np.column_stack([x, np.ones(len(x))])
        # np.dot, not a.T @ a: numpy 2.4's matmul takes a path that is ~100x slower for A'A here
        gram = np.dot(a.T, a) if gram is None else gram + np.dot(a.T, a)
        moment = np.dot(a.T, y) if moment is None else moment + np.dot(a.T, y)
    return gram, moment


def _chunks(x: np.ndarray, y: np.ndarray | None = None):
    for start in range(0, len(x), CHUNK):
        stop = start + CHUNK
        yield np.asarray(x[start:stop], dtype=np.float64), (None if y is None else np.asarray(y[start:stop], np.float64))


@one_blas_thread
def fit_linear(x: np.ndarray, y: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """Ridge regression weights [w..., intercept] (the intercept unpenalised); `ridge` is tiny
    next to the rows, so this is OLS that never fails on collinear features."""
    gram, moment = _normal_equations(_chunks(x, y))
    penalty = np.full(len(gram), ridge)
    penalty[-1] = 0.0
    return np.linalg.solve(gram + np.diag(penalty), moment)


def predict_linear(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.concatenate([xb @ weights[:-1] + weights[-1] for xb, _ in _chunks(x)]) if len(x) else np.empty(0)


@one_blas_thread
def simple_model_scores(dataset: Dataset) -> pd.Series:
    """Per-era 2021 corr on validation of a linear regression fit on train (main target)."""
    x, y, _ = dataset.arrays("train", [dataset.roles.main])
    weights = fit_linear(x, y[:, 0])
    xv, yv, eras = dataset.arrays("validation", [dataset.roles.main])
    return era_corr(predict_linear(xv, weights), yv[:, 0], eras)


# --------------------------------------------------------------------------- non-stationarity


@one_blas_thread
def feature_drift(dataset: Dataset) -> pd.DataFrame:
    """Per feature: how much its per-era Pearson corr with the main target varies across eras
    (train and validation), against sampling noise alone.

    Under a stationary relation the per-era corr has variance 1 / (n_e - 1) (exactly, under
    permutation), so Q = sum_e (n_e - 1)(c_e - c_bar)^2 is about chi-square with E - 1 degrees
    of freedom; `dispersion` = Q / (E - 1) is 1 for a stable feature and larger for a drifting one.
    """
    frames = [dataset.train, dataset.validation]
    x = np.concatenate([f[dataset.features].to_numpy(np.float64) for f in frames])
    y = np.concatenate([f[dataset.roles.main].to_numpy(np.float64) for f in frames])
    codes, _ = pd.factorize(np.concatenate([f["era"].to_numpy(dtype=object) for f in frames]))
    n_eras = codes.max() + 1
    count = np.bincount(codes, minlength=n_eras).astype(np.float64)

    def era_sum(values: np.ndarray) -> np.ndarray:
        if values.ndim == 1:
            return np.bincount(codes, weights=values, minlength=n_eras)
        return np.column_stack([np.bincount(codes, weights=v, minlength=n_eras) for v in values.T])

    mx, my = era_sum(x) / count[:, None], era_sum(y) / count
    xc, yc = x - mx[codes], y - my[codes]
    cov = era_sum(xc * yc[:, None])
    sx, sy = np.sqrt(era_sum(xc**2)), np.sqrt(era_sum(yc**2))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / (sx * sy[:, None])
    usable = np.isfinite(corr)
    weight = np.where(usable, count[:, None] - 1, 0.0)
    corr = np.where(usable, corr, 0.0)
    mean = (weight * corr).sum(axis=0) / weight.sum(axis=0)
    q = (weight * (corr - mean) ** 2).sum(axis=0)
    dof = usable.sum(axis=0) - 1
    return pd.DataFrame({"mean_corr": mean, "era_corr_std": np.sqrt(q / weight.sum(axis=0)),
                         "dispersion": q / dof, "p_value": stats.chi2.sf(q, dof)},
                        index=pd.Index(dataset.features, name="feature"))


# --------------------------------------------------------------------------- nonlinearity


def _centred(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) - 0.5) * 2.0


@one_blas_thread
def screen_pairs(x: np.ndarray, y: np.ndarray, n_pairs: int) -> list[tuple[int, int]]:
    """The `n_pairs` feature products (squares included) most correlated with y on these rows,
    found from three F x F moment matrices (no product column is ever built)."""
    n_features = x.shape[1]
    s1 = np.zeros((n_features, n_features)); s2 = np.zeros_like(s1); sy = np.zeros_like(s1)
    y_mean, n = float(np.mean(y)), len(y)
    for xb, yb in _chunks(x, y):
        z = _centred(xb)
        s1 += np.dot(z.T, z)
        s2 += np.dot((z**2).T, z**2)
        sy += np.dot(z.T, z * (yb - y_mean)[:, None])
    mean = s1 / n
    variance = np.maximum(s2 / n - mean**2, 1e-12)
    score = np.abs(sy / n) / np.sqrt(variance)
    i, j = np.triu_indices(n_features)
    best = np.argsort(score[i, j])[::-1][:n_pairs]
    return [(int(i[b]), int(j[b])) for b in best]


def _with_pairs(x: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    z = _centred(x)
    products = np.column_stack([z[:, i] * z[:, j] for i, j in pairs]) if pairs else np.empty((len(z), 0))
    return np.column_stack([z, products])


@dataclass
class NonlinearityCheck:
    linear_corr: float  # validation corr mean of the linear model
    interaction_corr: float  # ... of linear + screened feature products
    pairs: list[tuple[str, str]]
    linear_share: float | None = None  # truth: R^2 of a linear fit of the stable true signal
    truth_linear: float | None = None  # truth: validation corr with the true signal, linear model
    truth_knowing: float | None = None  # ... model that is given the true interaction signal

    @property
    def gain(self) -> float:
        return self.interaction_corr - self.linear_corr


@one_blas_thread
def nonlinearity_check(dataset: Dataset, n_pairs: int = 10) -> NonlinearityCheck:
    """Linear vs linear + the `n_pairs` products screened on train, scored on validation; with a
    ground truth also the linear share of the true signal and a model that knows the interactions."""
    main = dataset.roles.main
    x, y, _ = dataset.arrays("train", [main])
    xv, yv, eras = dataset.arrays("validation", [main])
    pairs = screen_pairs(x, y[:, 0], n_pairs)
    linear = era_corr(predict_linear(xv, fit_linear(x, y[:, 0])), yv[:, 0], eras).mean()
    weights = fit_linear(_with_pairs(x, pairs), y[:, 0])
    inter = era_corr(predict_linear(_with_pairs(xv, pairs), weights), yv[:, 0], eras).mean()
    names = [(dataset.features[i], dataset.features[j]) for i, j in pairs]
    check = NonlinearityCheck(float(linear), float(inter), names)
    truth = dataset.truth
    if truth is not None and {"signal", "signal_stable", "signal_interaction"} <= set(truth.rows.columns):
        rows_t = truth.rows.loc[dataset.train.index]
        rows_v = truth.rows.loc[dataset.validation.index]
        stable = rows_t["signal_stable"].to_numpy(np.float64)
        fitted = predict_linear(x, fit_linear(x, stable, ridge=0.0))
        check.linear_share = float(1 - np.var(stable - fitted) / np.var(stable))
        signal_v = rows_v["signal"].to_numpy(np.float64)
        lin_pred = predict_linear(xv, fit_linear(x, y[:, 0]))
        knowing_x = np.column_stack([x, rows_t["signal_interaction"].to_numpy(np.float64)])
        knowing_xv = np.column_stack([xv, rows_v["signal_interaction"].to_numpy(np.float64)])
        knowing = predict_linear(knowing_xv, fit_linear(knowing_x, y[:, 0]))
        check.truth_linear = float(era_corr(lin_pred, signal_v, eras).mean())
        check.truth_knowing = float(era_corr(knowing, signal_v, eras).mean())
    return check


# --------------------------------------------------------------------------- the facts table


def _fact(fact: str, numerai: str, expected: str, measured, ok: bool) -> dict:
    return {"fact": fact, "numerai_v3": numerai, "expected": expected, "measured": measured, "ok": bool(ok)}


def _schema_fact(dataset: Dataset) -> dict:
    ids = dataset.train.index.append(dataset.validation.index)
    eras = pd.unique(np.concatenate([dataset.train["era"].to_numpy(dtype=object),
                                     dataset.validation["era"].to_numpy(dtype=object)]))
    padded = all(isinstance(e, str) and len(e) == 4 and e.isdigit() for e in eras)
    float_features = all(dataset.train[f].dtype == np.float32 for f in dataset.features)
    names_ok = all(f.startswith("feature_") for f in dataset.features) and all(
        t.startswith("target") for t in dataset.targets)
    ok = dataset.train.index.name == "id" and ids.is_unique and padded and float_features and names_ok
    measured = (f"index {dataset.train.index.name!r} ({'unique' if ids.is_unique else 'NOT unique'}), eras "
                f"{eras[0]!r}..{eras[-1]!r} ({'zero-padded' if padded else 'NOT zero-padded'}), "
                f"{len(dataset.features)} feature_* ({'float32' if float_features else 'not float32'}), "
                f"{len(dataset.targets)} target_*")
    return _fact("schema", "id index, era '0001', data_type, feature_*, target_*",
                 "same (data_type used to filter validation rows)", measured, ok)


def _levels_fact(dataset: Dataset) -> dict:
    frame = pd.concat([dataset.train[["era", *dataset.features]], dataset.validation[["era", *dataset.features]]])
    values = frame[dataset.features].to_numpy(np.float32)
    on_levels = bool(np.isin(values, LEVELS.astype(np.float32)).all())
    shares = level_shares(frame, dataset.features)
    low, high = float(shares.min().min()), float(shares.max().max())
    return _fact("feature values", "5 levels {0, .25, .5, .75, 1}, about 20% each per era",
                 "5 levels, each 15-25% of an era",
                 f"{'all on the 5 levels' if on_levels else 'values off the 5 levels'}; per-era share "
                 f"{low:.1%}-{high:.1%}", on_levels and low >= 0.15 and high <= 0.25)


def _target_levels_fact(dataset: Dataset) -> dict:
    frame = pd.concat([dataset.train, dataset.validation])
    shares = level_shares(frame, [dataset.roles.main])
    deviation = (shares - np.array(TARGET_SHARES)).abs().max()
    text = ", ".join(f"{lvl:g}: {shares[lvl].min():.1%}-{shares[lvl].max():.1%}" for lvl in LEVELS)
    on_levels = bool(np.isclose(shares.sum(axis=1), 1.0).all())
    return _fact("main target levels", "5 levels, 5/20/50/20/5 % per era",
                 "5/20/50/20/5 % per era (within 2 points)", text, on_levels and float(deviation.max()) <= 0.02)


def _target_corr_facts(dataset: Dataset) -> list[dict]:
    corr = target_correlations(dataset)
    roles, main = dataset.roles, dataset.roles.main
    named = [(f"aux {i + 1}", a) for i, a in enumerate(roles.aux)] + ([("long", roles.long)] if roles.long else [])
    rows = []
    for role, name in named:
        reference = V3_TARGET_CORRS.get(role)
        value = float(corr.loc[main, name])
        if reference is None:
            rows.append(_fact(f"corr({main}, {name})", "-", "-", round(value, 3), True))
            continue
        v3_name = {"aux 1": "janet_20", "aux 2": "george_20", "long": "nomi_60"}[role]
        rows.append(_fact(f"corr({main}, {name})", f"~{reference:.2f} (nomi_20 vs {v3_name})",
                          f"{reference - 0.05:.2f}-{reference + 0.05:.2f}", round(value, 3),
                          abs(value - reference) <= 0.05))
    return rows


def _simple_model_facts(dataset: Dataset, per_era: pd.Series) -> list[dict]:
    mean, std = float(per_era.mean()), float(per_era.std(ddof=0))
    burn = int((per_era < 0).sum())
    share = burn / len(per_era)
    return [
        _fact("simple model, validation corr mean", "0.0145-0.0199 (the talk's models, 2021)",
              "0.01-0.02", round(mean, 4), 0.01 <= mean <= 0.02),
        _fact("simple model, per-era corr std", "0.022-0.040 (the talk's corr over its Sharpe, 2021)", "0.015-0.04",
              round(std, 4), 0.015 <= std <= 0.04),
        _fact("burn eras (negative corr)", "~20-33 of 105", "15-40% of eras",
              f"{burn} of {len(per_era)} ({share:.0%})", 0.15 <= share <= 0.40),
    ]


def _drift_fact(dataset: Dataset) -> dict:
    drift = feature_drift(dataset)
    threshold = 0.01 / len(drift)  # Bonferroni over the features
    drifting = int((drift["p_value"] < threshold).sum())
    return _fact("non-stationarity", "feature-target relations drift between eras",
                 "some features' per-era corr varies beyond sampling noise (chi-square, p < 0.01 / features)",
                 f"{drifting} of {len(drift)} features drift; dispersion mean {drift['dispersion'].mean():.2f}, "
                 f"max {drift['dispersion'].max():.2f} (1 = sampling noise)", drifting >= 1)


def _nonlinearity_fact(dataset: Dataset) -> dict:
    check = nonlinearity_check(dataset)
    gain = f"linear + {len(check.pairs)} screened products vs linear: {check.gain:+.4f} corr"
    if check.linear_share is None:
        return _fact("nonlinearity", "NNs find signal that linear models miss",
                     "feature products add validation corr to a linear model", gain, check.gain > 0)
    measured = (f"linear share of the true signal R2 = {check.linear_share:.2f}; corr with the truth: linear "
                f"{check.truth_linear:.3f}, knowing the interactions {check.truth_knowing:.3f}; {gain}")
    ok = check.linear_share <= 0.6 and check.truth_knowing > check.truth_linear
    return _fact("nonlinearity", "NNs find signal that linear models miss",
                 "truth: linear part <= 60% of the signal, and knowing the interactions beats linear", measured, ok)


@one_blas_thread
def measure_facts(dataset: Dataset) -> pd.DataFrame:
    """The facts table: fact, numerai_v3 (the real figure), expected, measured, ok."""
    eras = dataset.validation["era"].nunique()
    rows = [
        _schema_fact(dataset),
        _levels_fact(dataset),
        _target_levels_fact(dataset),
        _fact("validation eras", "105", "105", eras, eras == 105),
        *_target_corr_facts(dataset),
        *_simple_model_facts(dataset, simple_model_scores(dataset)),
        _drift_fact(dataset),
        _nonlinearity_fact(dataset),
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- against the ground truth


def shift_summary(per_era: pd.Series, truth_eras: pd.DataFrame) -> pd.DataFrame:
    """Per-era corr of a model in the eras the generator shifted vs the others: eras, mean corr,
    share of burn eras, mean alignment of the era's true weights with the base weights."""
    table = truth_eras.set_index("era").reindex(per_era.index)
    groups = table["shifted"].astype(bool).map({True: "shifted", False: "not shifted"})
    frame = pd.DataFrame({"corr": per_era.to_numpy(), "group": groups.to_numpy(),
                          "alignment": table["alignment"].to_numpy()})
    summary = frame.groupby("group").agg(eras=("corr", "size"), mean_corr=("corr", "mean"),
                                         burn_share=("corr", lambda c: float((c < 0).mean())),
                                         mean_alignment=("alignment", "mean"))
    return summary.reindex([g for g in ("not shifted", "shifted") if g in summary.index])
