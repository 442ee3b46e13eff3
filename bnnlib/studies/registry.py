"""The run registry page (the page `book/registry.py`): what it says of the registry and the
table it shows.

The registry itself, every fit the book made one row each, is gathered by the run registry's
plumbing (`bnnlib.report.registry`: each chapter's `runs.csv`, collected into one DataFrame). This
module holds only what the page computes from that DataFrame: the counts and compute time its
text glues (`summary`) and the columns of the table it shows (`fits_table`). It needs nothing
but pandas, so it sits with the other studies, below the plumbing that feeds it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

TABLE_COLUMNS = {"chapter": "chapter", "model": "model", "method": "method", "prior": "prior", "hidden": "hidden",
                 "snapshot": "snapshot",
                 "precision": "precision", "corr_mean": "corr", "corr_sharpe": "Sharpe", "verdict": "verdict",
                 "fit_seconds": "fit s", "cached": "cached"}
"""The registry's columns the page shows, and their headers there."""


def distinct_fits(registry: pd.DataFrame) -> pd.DataFrame:
    """The registry with one row per distinct fit (one cache key): a model that several chapters
    use was fitted once, and its row lists those chapters. Every count the page gives comes from
    this table."""
    if registry.empty:
        return registry
    chapters = registry.groupby("cache_key", sort=False)["chapter"].agg(lambda c: ", ".join(dict.fromkeys(c)))
    distinct = registry.drop_duplicates("cache_key").set_index("cache_key")
    distinct["chapter"] = chapters
    return distinct.reset_index()


def fit_seconds(distinct: pd.DataFrame) -> float:
    """The fitting seconds of distinct fits: the two snapshots of a trajectory (one `fit_key`, two
    scorings) were one fit, so its seconds count once."""
    if distinct.empty:
        return 0.0
    key = distinct["fit_key"].fillna(distinct["cache_key"]) if "fit_key" in distinct else distinct["cache_key"]
    return float(distinct.assign(_fit=key).drop_duplicates("_fit")["fit_seconds"].astype(float).sum())


def fits_table(registry: pd.DataFrame) -> pd.DataFrame:
    """The page's table: one row per distinct fit (`distinct_fits`), the columns of
    `TABLE_COLUMNS` under their headers (the book's formatting layer prints the numbers)."""
    return distinct_fits(registry).reindex(columns=list(TABLE_COLUMNS)).rename(columns=TABLE_COLUMNS)


def summary(registry: pd.DataFrame) -> dict[str, Any]:
    """What the registry page says in its text, all counted on `distinct_fits`: distinct fits,
    the chapters, how many a chapter read from the cache, the Bayesian fits and how many
    converged, and the compute time of fitting and scoring them."""
    distinct = distinct_fits(registry)
    bnn = distinct[distinct["method"] == "bnn"] if len(distinct) else distinct
    converged = bnn["converged"].map(lambda v: str(v).lower() == "true").sum() if len(bnn) else 0
    seconds = fit_seconds(distinct) + (float(distinct["score_seconds"].astype(float).sum()) if len(distinct) else 0.0)
    shared = int((distinct["chapter"].str.contains(",")).sum()) if len(distinct) else 0
    return {"registry_models": int(len(distinct)),
            "registry_chapters": int(registry["chapter"].nunique()) if len(registry) else 0,
            "registry_shared": shared,
            "registry_cached": int(distinct["cached"].map(lambda v: str(v).lower() == "true").sum())
            if len(distinct) else 0,
            "registry_bnn": int(len(bnn)), "registry_converged": int(converged),
            "registry_compute_minutes": round(seconds / 60.0, 1)}


SUMMARY_FILE = "build_summary.json"
"""The last build's summary (`bnnlib.build.summary`), in the book's results folder beside the
registry; the page shows it when it is there."""


def summary_stamp(path) -> str:
    """What of the summary file a page's stamp holds: the start of the build it describes (the
    build adds its whole wall time to the file after the page ran, which must not make the page
    look changed); '' without one."""
    import json
    from pathlib import Path

    try:
        return str(json.loads(Path(path).read_text()).get("started", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def build_summary_tables(summary: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The page's view of the last build's summary: its figures (measured, estimated, their
    ratio), and its most expensive fits; two empty tables without a summary."""
    if not summary:
        return pd.DataFrame(columns=["measured", "estimated", "estimate / measured"]), pd.DataFrame()
    rows = {
        "wall time, warm-up and chapters (s)": (summary.get("wall_s"), summary.get("estimated_wall_s"),
                                               summary.get("wall_ratio")),
        "wall time, whole build (s)": (summary.get("total_wall_s"), summary.get("total_estimated_wall_s"),
                                       summary.get("total_wall_ratio")),
        "CPU, fits (s)": (summary.get("fit_cpu_s"), (summary.get("estimate") or {}).get("fit_cpu_s"), None),
        "CPU, scoring (s)": (summary.get("score_cpu_s"), (summary.get("estimate") or {}).get("score_cpu_s"), None),
        "CPU, all (s)": ((summary.get("fit_cpu_s") or 0) + (summary.get("score_cpu_s") or 0),
                         summary.get("estimated_cpu_s"), summary.get("cpu_ratio")),
    }
    figures = pd.DataFrame.from_dict(rows, orient="index", columns=["measured", "estimated", "estimate / measured"])
    figures = figures.dropna(how="all")
    top = pd.DataFrame(summary.get("top_fits") or [], columns=["fit", "chapters", "seconds", "estimated_seconds"])
    return figures, top.rename(columns={"seconds": "fit s", "estimated_seconds": "estimated fit s"})
