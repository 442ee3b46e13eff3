"""Figures of the data card: each takes a table from bnnlib.data.card / facts and returns a
titled, labelled matplotlib Figure (not attached to pyplot; a chapter displays and exports it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bnnlib.data.levels import FEATURE_SHARES, LEVELS, TARGET_SHARES

SPLIT_COLORS = {"train": "#1f77b4", "validation": "#ff7f0e"}
SHIFTED = "#d62728"


def _figure(panels: int = 1, width: float = 5.5, height: float = 3.6):
    figure = Figure(figsize=(width * panels, height), layout="constrained")
    return figure, list(figure.subplots(1, panels, squeeze=False)[0])


def era_sizes(sizes: pd.DataFrame) -> Figure:
    """Rows per era over time, coloured by split (table from card.era_sizes)."""
    figure, (ax,) = _figure(width=9)
    position = np.arange(len(sizes))
    for split, rows in sizes.groupby("split", sort=False):
        ax.bar(position[rows.index], rows["rows"], width=1.0, color=SPLIT_COLORS.get(split), label=split)
    step = max(1, len(sizes) // 8)
    ax.set_xticks(position[::step], sizes["era"].iloc[::step])
    ax.set_xlabel("era (file order; the gap between the splits is not shown)")
    ax.set_ylabel("rows")
    ax.set_title("Rows per era")
    ax.legend()
    return figure


def level_shares(features: pd.DataFrame, target: pd.DataFrame, target_name: str) -> Figure:
    """Per-era share of each level (box over eras) for the features and the main target, with
    Numerai's shares as markers (tables from card.level_shares)."""
    figure, axes = _figure(2, width=4.8)
    for ax, table, expected, name in ((axes[0], features, FEATURE_SHARES, "features (all chosen)"),
                                      (axes[1], target, TARGET_SHARES, target_name)):
        ax.boxplot([table[level].dropna().to_numpy() for level in LEVELS], positions=np.arange(5), widths=0.5)
        ax.scatter(np.arange(5), expected, marker="_", s=400, color=SHIFTED, label="Numerai's share", zorder=3)
        ax.set_xticks(np.arange(5), [f"{v:g}" for v in LEVELS])
        ax.set_xlabel("value")
        ax.set_ylabel("share of the era's rows")
        ax.set_title(name)
        ax.legend(fontsize="small")
    figure.suptitle("Level shares per era")
    return figure


def target_correlation_heatmap(corr: pd.DataFrame) -> Figure:
    """Heat map of the correlations between the role targets."""
    figure, (ax,) = _figure(width=5.2, height=4.4)
    values = corr.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
    labels = [c.removeprefix("target_") for c in corr.columns]
    ax.set_xticks(np.arange(len(labels)), labels, rotation=30)
    ax.set_yticks(np.arange(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize="small",
                    color="white" if values[i, j] < 0.6 else "black")
    ax.set_xlabel("target")
    ax.set_ylabel("target")
    ax.set_title("Correlation between targets (validation rows)")
    figure.colorbar(image, ax=ax, label="Pearson correlation", shrink=0.8)
    return figure


def feature_drift(drift: pd.DataFrame, threshold: float) -> Figure:
    """Per feature: the dispersion of its per-era corr with the target (1 = sampling noise),
    features whose drift is significant at `threshold` highlighted (table from facts.feature_drift)."""
    figure, (ax,) = _figure(width=9)
    ordered = drift.sort_values("dispersion", ascending=False)
    colors = [SHIFTED if p < threshold else "#7f7f7f" for p in ordered["p_value"]]
    ax.bar(np.arange(len(ordered)), ordered["dispersion"], color=colors)
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="sampling noise alone")
    ax.set_xticks(np.arange(len(ordered)), [f.removeprefix("feature_") for f in ordered.index], rotation=90,
                  fontsize="x-small")
    ax.set_xlabel("feature (red: drifts beyond sampling noise)")
    ax.set_ylabel("dispersion of per-era corr")
    ax.set_title("How much each feature's relation to the target moves between eras")
    ax.legend()
    return figure


def per_era_with_shifts(per_era: pd.Series, shifted: pd.Series) -> Figure:
    """The simple model's per-era validation corr, eras that the generator shifted in red."""
    figure, (ax,) = _figure(width=9)
    flags = shifted.reindex(per_era.index).fillna(False).astype(bool)
    position = np.arange(len(per_era))
    ax.bar(position, per_era.to_numpy(), width=0.9, color=np.where(flags, SHIFTED, "#1f77b4"))
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axhline(per_era.mean(), color="#2ca02c", linewidth=1, linestyle="--", label=f"mean {per_era.mean():.4f}")
    step = max(1, len(per_era) // 8)
    ax.set_xticks(position[::step], per_era.index[::step])
    ax.set_xlabel("validation era (red: a sudden shift in the ground truth)")
    ax.set_ylabel("corr (2021)")
    ax.set_title("Linear model: per-era validation corr and the shifted eras")
    ax.legend()
    return figure
