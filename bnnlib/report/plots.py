"""Figure builders for the book: each takes tables from the study modules (`bnnlib.studies`) and returns a titled,
labelled matplotlib Figure (not attached to pyplot, so nothing is shown twice; a chapter shows
it with IPython's display and writes it with `bnnlib.infra.results.export_figure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from scipy import stats

from bnnlib.errors import BnnlibError
from bnnlib.scoring.statistics import mann_whitney_auc, roc_curve
from bnnlib.studies.common import draw_scores, prior_label

OURS = "#1f77b4"
TALK = "#ff7f0e"
BURN = "#d62728"


BOOK_STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
              "ytick.labelsize": 10, "legend.fontsize": 9, "figure.titlesize": 13,
              "axes.formatter.useoffset": False, "axes.formatter.limits": (-6, 7)}
"""Font sizes that stay readable when a figure is scaled down to the page's text column, and tick
labels written out (no "1e14" offset above an axis) for any value a sane fit produces."""

MAX_WIDTH = 10.0
"""Inches: the widest figure; wider ones would be shrunk (fonts with them) to the text column."""


def use_book_style() -> None:
    """Set the book's font sizes for every figure made afterwards."""

    matplotlib.rcParams.update(BOOK_STYLE)


def _figure(n_panels: int = 1, width: float = 5.0, height: float = 3.6, share_y: bool = False):
    if n_panels < 1:
        raise BnnlibError("a figure needs at least one panel; pass at least one model")
    figure = Figure(figsize=(min(width * n_panels, MAX_WIDTH), height), layout="constrained")
    axes = figure.subplots(1, n_panels, sharey=share_y, squeeze=False)[0]
    return figure, list(axes)


def legend_below(figure: Figure, ax, ncol: int, fontsize="small") -> None:
    """One legend for all panels, from `ax`'s labelled artists, under the panels: inside a panel
    it hides the tallest bars or the ends of the traces."""
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol, frameon=False,
                  fontsize=fontsize)


def grouped_bar_panels(tables: Mapping[str, pd.DataFrame], *, title: str, ylabel: str, xlabel: str,
                       colors: Sequence[str] | None = None) -> Figure:
    """One panel of grouped bars per table ({panel title: table}), on a shared y axis, e.g.
    this run's table beside the talk's."""
    if not tables or any(t.empty for t in tables.values()):
        raise BnnlibError(f"nothing to plot for {title!r}: a table is empty")
    rows = max(len(t) for t in tables.values())
    figure, axes = _figure(len(tables), width=max(5.0, 1.1 * rows + 2), share_y=True)
    for ax, (name, table) in zip(axes, tables.items()):
        n = len(table.columns)
        width = 0.8 / n
        x = np.arange(len(table))
        for i, column in enumerate(table.columns):
            color = None if colors is None else colors[i % len(colors)]
            ax.bar(x + (i - (n - 1) / 2) * width, table[column].to_numpy(dtype=float), width,
                   label=str(column), color=color)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, [str(i) for i in table.index], rotation=20 if len(table) > 4 else 0)
        ax.set_title(name or title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    columns = [list(t.columns) for t in tables.values()]
    if all(c == columns[0] for c in columns):
        legend_below(figure, axes[0], ncol=min(len(columns[0]), 4))
    else:
        for ax in axes:
            ax.legend(fontsize="small")
    if len(tables) > 1 or next(iter(tables)):
        figure.suptitle(title)
    return figure


def ours_vs_talk_panels(ours: pd.DataFrame, talk: pd.DataFrame, *, ours_label: str, title: str, ylabel: str,
                        xlabel: str) -> Figure:
    """Grouped bars of our (row x prior) table beside the talk's on the same rows and columns,
    priors named as the book names them."""

    return grouped_bar_panels(
        {ours_label: ours.rename(columns=prior_label),
         "talk (2021, real data)": talk.reindex(index=ours.index, columns=ours.columns).rename(columns=prior_label)},
        title=title, ylabel=ylabel, xlabel=xlabel)


def ours_vs_talk_bars(ours: pd.DataFrame, talk: pd.DataFrame, columns: Mapping[str, str], *,
                      title: str) -> Figure:
    """One panel per column ({column: axis label}): our value beside the talk's, per row."""
    figure, axes = _figure(len(columns), width=max(4.5, 0.9 * len(ours) + 1.5))
    for ax, (column, label) in zip(axes, columns.items()):
        both = pd.DataFrame({"this run": ours[column], "talk (2021)": talk[column].reindex(ours.index)})
        x = np.arange(len(both))
        ax.bar(x - 0.2, both["this run"], 0.4, label="this run", color=OURS)
        ax.bar(x + 0.2, both["talk (2021)"], 0.4, label="talk (2021)", color=TALK)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, [str(i) for i in both.index], rotation=40, ha="right", rotation_mode="anchor")  # long names: no overlap
        ax.set_xlabel(str(ours.index.name or "model"))
        ax.set_ylabel(label)
        ax.set_title(label)
    legend_below(figure, axes[0], ncol=2)
    figure.suptitle(title)
    return figure


def draw_histograms(draws: Mapping[str, pd.Series], ensemble: Mapping[str, float], *, title: str,
                    xlabel: str, bins: int = 30) -> Figure:
    """One panel per model: the histogram of a per-draw statistic, the mean over draws (dashed)
    and the ensemble's value (solid), so one sees where the ensemble falls among its draws."""
    figure, axes = _figure(len(draws), width=4.2, share_y=False)
    for ax, (name, values) in zip(axes, draws.items()):
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        ax.hist(values, bins=bins, color=OURS, alpha=0.7, label="draws")
        ax.axvline(values.mean(), color="black", linestyle="--", label=f"mean of draws {values.mean():.4f}")
        ax.axvline(ensemble[name], color=BURN, label=f"ensemble {ensemble[name]:.4f}")
        ax.set_title(str(name))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("number of draws")
        ax.legend(fontsize="x-small")
    figure.suptitle(title)
    return figure


def draws_against_ensemble(results: Mapping[str, object], draw_table: pd.DataFrame, stat: str = "mean", *,
                           title: str, xlabel: str) -> Figure:
    """`draw_histograms` of one per-draw statistic ("mean": the draw's corr, or "sharpe") of
    each Bayesian model, with its ensemble's value from a `draws_vs_ensemble` table."""

    column = {"mean": "ensemble_corr", "sharpe": "ensemble_sharpe"}
    if stat not in column:
        raise BnnlibError(f"stat must be one of {sorted(column)}, got {stat!r}")
    return draw_histograms({prior_label(n): draw_scores(r)[stat] for n, r in results.items()},
                           {prior_label(n): draw_table.loc[n, column[stat]] for n in results},
                           title=title, xlabel=xlabel)


BLOWN_UP_STD = 1.0
"""A predictive std of a target on [0, 1] cannot exceed 0.5 for a sane model; draws whose std is
above 1 come from a fit that diverged."""


def std_vs_score(frames: Mapping[str, pd.DataFrame], *, kind: str = "corr", title: str) -> Figure:
    """One panel per model: each era's mean predictive std against its score; burn eras in red."""
    figure, axes = _figure(len(frames), width=4.2)
    for ax, (name, frame) in zip(axes, frames.items()):
        burn = frame["burn"].to_numpy(dtype=bool)
        ax.scatter(frame["mean_std"][~burn], frame[kind][~burn], s=14, color=OURS, label="other eras")
        ax.scatter(frame["mean_std"][burn], frame[kind][burn], s=14, color=BURN, label="burn eras")
        ax.axhline(0.0, color="black", linewidth=0.8)
        blown_up = float(frame["mean_std"].max()) >= BLOWN_UP_STD
        if blown_up:  # a diverged fit's draws: a log axis keeps its labels readable, and the title says why
            ax.set_xscale("log")
        ax.set_title(f"{name} (std blown up)" if blown_up else str(name))
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel("era's mean predictive std")
        ax.set_ylabel(f"era's {kind}")
        ax.legend(fontsize="x-small")
    figure.suptitle(title)
    return figure


def roc_curves(rocs: Mapping[str, pd.DataFrame], aucs: Mapping[str, float], *, title: str) -> Figure:
    """ROC curves (fpr, tpr) of several detectors on one panel, with the chance diagonal."""
    figure, (ax,) = _figure(width=4.8, height=4.4)
    for name, roc in rocs.items():
        ax.step(roc["fpr"], roc["tpr"], where="post", label=f"{name} (AUC {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUC 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.set_xlabel("false positive rate (other eras flagged)")
    ax.set_ylabel("true positive rate (burn eras flagged)")
    ax.legend(fontsize="small", loc="lower right")
    return figure


def burn_rocs(eras: Mapping[str, pd.DataFrame], *, title: str) -> Figure | None:
    """`roc_curves` of each model's mean std as a detector of its burn eras (`burn_eras.burn_eras`
    tables); models without both burn and other eras have no curve; None when none has one."""

    usable = {n: e for n, e in eras.items() if 0 < int(e["burn"].sum()) < len(e)}
    if not usable:
        return None
    return roc_curves({n: roc_curve(e["mean_std"], e["burn"]) for n, e in usable.items()},
                      {n: mann_whitney_auc(e["mean_std"], e["burn"]) for n, e in usable.items()}, title=title)


def posterior_densities(densities: Mapping[str, pd.DataFrame], *, title: str, xlabel: str,
                        mark_zero: bool = True) -> Figure:
    """Densities (x, density) on one panel, e.g. the normal posterior of H4's beta per prior."""
    figure, (ax,) = _figure(width=5.6)
    for name, frame in densities.items():
        ax.plot(frame["x"], frame["density"], label=str(name))
        ax.fill_between(frame["x"], frame["density"], where=frame["x"] > 0, alpha=0.15)
    if mark_zero:
        ax.axvline(0.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("posterior density")
    ax.legend(fontsize="small")
    return figure


def normal_fits(fits: pd.DataFrame, *, title: str, xlabel: str, points: int = 400) -> Figure:
    """The normal densities fitted to per-draw scores (rows: label; columns mean, std)."""

    figure, (ax,) = _figure(width=5.6)
    low = float((fits["mean"] - 4 * fits["std"]).min())
    high = float((fits["mean"] + 4 * fits["std"]).max())
    x = np.linspace(low, high, points)
    for label, row in fits.iterrows():
        ax.plot(x, stats.norm.pdf(x, row["mean"], row["std"]), label=str(label))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density of the normal fit")
    ax.legend(fontsize="small")
    return figure


def heatmaps(matrices: Mapping[str, pd.DataFrame], *, title: str, axis_label: str, colorbar: str,
             vmax: float | None = None) -> Figure:
    """One annotated heat map per square matrix, on a common colour scale."""
    if not matrices:
        raise BnnlibError(f"nothing to plot for {title!r}: no matrices")
    top = vmax if vmax is not None else max(float(np.nanmax(m.to_numpy(dtype=float))) for m in matrices.values())
    figure, axes = _figure(len(matrices), width=4.2, height=3.8)
    image = None
    for ax, (name, matrix) in zip(axes, matrices.items()):
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=top or 1.0)
        ticks = np.arange(len(matrix))
        ax.set_xticks(ticks, [str(c) for c in matrix.columns])
        ax.set_yticks(ticks, [str(i) for i in matrix.index])
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                color = "white" if values[i, j] < 0.6 * (top or 1.0) else "black"
                ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize="x-small", color=color)
        ax.set_title(str(name))
        ax.set_xlabel(axis_label)
        ax.set_ylabel(axis_label)
    figure.colorbar(image, ax=axes, label=colorbar, shrink=0.8)
    figure.suptitle(title)
    return figure


def fit_traces(traces: pd.DataFrame, *, title: str, diverged: Sequence[str] = ()) -> Figure:
    """Small multiples of the fits' traces (`bnnlib.evaluate.fits.trace_frame`): the ELBO per row, the
    guide's median std (solid) and largest layer 90th percentile (dotted), and the validation
    corr of the network at the posterior mean, against the optimiser step. One colour and one
    legend entry per fit, named as in the registry; the `diverged` fits are dashed, and the y
    ranges are those of the other fits, so a run-away trace leaves the panel instead of flattening
    every other one (its legend entry says so)."""
    if traces.empty:
        raise BnnlibError("no Bayesian fit to trace; pass at least one BNN")
    figure, axes = _figure(3, width=4.2, height=3.4)
    models = list(dict.fromkeys(traces["model"]))
    colors = dict(zip(models, _cycle_colors()))
    columns = (("elbo_per_row",), ("scale_median", "scale_p90_max"), ("mean_net_corr",))
    for model in models:
        t = traces[traces["model"] == model]
        dashes = "--" if model in diverged else "-"
        axes[0].plot(t["step"], t["elbo_per_row"], color=colors[model], lw=1.2, ls=dashes)
        axes[1].plot(t["step"], t["scale_median"], color=colors[model], lw=1.2, ls=dashes)
        axes[1].plot(t["step"], t["scale_p90_max"], color=colors[model], lw=0.9, ls=":")
        axes[2].plot(t["step"], t["mean_net_corr"], color=colors[model], lw=1.2, ls=dashes)
    marks = sorted(traces["snapshot_a_step"].dropna().unique()) if "snapshot_a_step" in traces else []
    for step in marks:  # where the talk's budget ends and the trajectories continue to B
        for ax in axes:
            ax.axvline(step, color="0.5", lw=0.8, ls=":", zorder=0)
        axes[0].annotate("A", (step, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                         textcoords="offset points", fontsize=8, color="0.4")
    kept = traces[~traces["model"].isin(list(diverged))]
    if not kept.empty and len(kept) < len(traces):
        for ax, names in zip(axes, columns):
            values = kept[list(names)].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if values.size:
                low, high = float(values.min()), float(values.max())
                pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.01
                ax.set_ylim(low - pad if ax is not axes[1] else max(low / 1.5, 1e-12),
                            high + pad if ax is not axes[1] else high * 1.5)
    axes[0].set_yscale("symlog", linthresh=0.1)
    axes[1].set_yscale("log")
    for ax, label in zip(axes, ["ELBO per row (symlog)", "guide std (log)", "validation corr of the mean net"]):
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
    for model in models:
        label = f"{model} (diverged: off the scale)" if model in diverged and len(kept) < len(traces) else model
        axes[2].plot([], [], color=colors[model], lw=1.5, ls="--" if model in diverged else "-", label=label)
    legend_below(figure, axes[2], ncol=min(len(models), 4), fontsize=9)
    figure.suptitle(title)
    return figure


def _steps_label(value: float, _position: float) -> str:
    """A step count as a short tick label: 500, 10k, 1.5M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _cycle_colors() -> list[str]:
    """Twenty distinguishable colours (matplotlib's tab10, then tab20's light shades), then again."""
    return ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
            "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"] * 3


def exact_check_figure(table: pd.DataFrame, *, title: str) -> Figure:
    """SVI's means against the exact posterior means (left) and SVI's stds against the mean-field
    optimum's and the exact marginal stds (right), one point per parameter (`bnnlib.evaluate.exact`)."""
    figure, axes = _figure(2, width=4.4, height=3.8)
    axes[0].scatter(table["exact_mean"], table["svi_mean"], s=14, color=OURS)
    axes[0].set_xlabel("exact posterior mean")
    axes[0].set_ylabel("SVI mean")
    axes[1].scatter(table["meanfield_std"], table["svi_std"], s=14, color=OURS, label="mean-field optimum")
    axes[1].scatter(table["exact_std"], table["svi_std"], s=14, color=TALK, marker="x", label="exact marginal")
    axes[1].set_xlabel("std")
    axes[1].set_ylabel("SVI std")
    axes[1].legend(fontsize=8, frameon=False)
    for ax in axes:
        low, high = ax.get_xlim()
        ax.plot([low, high], [low, high], color="black", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    return figure


EPISTEMIC = OURS
ALEATORIC = "#2ca02c"


def _marked_runs(marked: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each run of consecutive True values."""
    edges = np.diff(np.concatenate([[0], marked.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def epistemic_aleatoric(per_era: Mapping[str, pd.DataFrame], marked: pd.Series | None = None, *, title: str,
                        marked_label: str = "marked eras", log: bool = True) -> Figure:
    """One panel per model: each era's mean epistemic and aleatoric variance (columns of
    `VarianceSplit.per_era`, index era) in era order, the eras where `marked` (a boolean per era,
    e.g. burn or shifted eras) is true shaded, so one sees which part rises where. The y axis is
    logarithmic by default: the parts can differ by orders of magnitude."""
    if not per_era or any(f.empty for f in per_era.values()):
        raise BnnlibError(f"nothing to plot for {title!r}: pass at least one model's per-era variances")
    figure, axes = _figure(len(per_era), width=5.0, share_y=True)
    for ax, (name, frame) in zip(axes, per_era.items()):
        frame = frame.sort_index()
        x = np.arange(len(frame))
        ax.plot(x, frame["epistemic"].to_numpy(dtype=float), color=EPISTEMIC, lw=1.2, label="epistemic")
        ax.plot(x, frame["aleatoric"].to_numpy(dtype=float), color=ALEATORIC, lw=1.2, label="aleatoric")
        if marked is not None:
            flags = marked.reindex(frame.index.astype(marked.index.dtype), fill_value=False).to_numpy(dtype=bool)
            for i, (first, last) in enumerate(_marked_runs(flags)):
                ax.axvspan(first - 0.5, last + 0.5, color=BURN, alpha=0.15, lw=0,
                           label=marked_label if i == 0 else None)
        if log:
            ax.set_yscale("log")
        ticks = np.unique(np.linspace(0, len(frame) - 1, min(6, len(frame))).round().astype(int))
        ax.set_xticks(ticks, [str(frame.index[t]) for t in ticks])
        ax.set_title(str(name))
        ax.set_xlabel("era")
        ax.set_ylabel("mean predictive variance")
        ax.legend(fontsize="x-small")
    figure.suptitle(title)
    return figure
