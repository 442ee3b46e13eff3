"""What a build cost, measured, beside what its plan estimated.

What was computed is read from the cache's own records: every entry a build writes (a fit, a
range of draws, a model's scores) has a meta.json with its compute seconds and the time it was
created (`bnnlib.infra.cache`), so the entries created since the build started are exactly its
work, whichever process did it (the warm-up's workers, a Dask cluster's, a chapter's kernel). A
fit's name and chapters come from the build's plan (`bnnlib.build.warmup.Survey`), which knows
each fit's cache key. The summary is printed, written to `_build/results/build_summary.json`
(`bnnlib.studies.registry.SUMMARY_FILE`) and shown on the run registry page.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from bnnlib.build.estimate import Estimate, minutes, ratio
from bnnlib.infra.cache import cache_key
from bnnlib.models.device import device_environment

FIT_KINDS = ("fit",)
SCORE_KINDS = ("score_range", "scores", "variance_split")
TOP = 10


def now_iso() -> str:
    """The time as the cache records it (UTC, whole seconds), to compare with `created`."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def created_since(cache_dirs: Iterable[str | Path], started: str) -> list[dict]:
    """The meta records of the cache entries created at or after `started` (ISO, UTC), each with
    its `key`, `kind` and `compute_seconds`."""
    since = _dt.datetime.fromisoformat(started)
    found: dict[str, dict] = {}
    for folder in {str(Path(d)) for d in cache_dirs}:
        for meta_path in Path(folder).glob("*/*/meta.json"):
            try:
                meta = json.loads(meta_path.read_text())
                if _dt.datetime.fromisoformat(meta["created"]) >= since:
                    found[f"{folder}/{meta['kind']}/{meta['key']}"] = meta
            except (OSError, ValueError, KeyError):
                continue
    return list(found.values())


def fit_names(jobs: Iterable) -> dict[str, tuple[str, list[str]]]:
    """Each planned job's fit cache key -> (its models' names, its chapters)."""
    names = {}
    for job in jobs:
        spec = job.specs[0]
        key = cache_key(spec.fit_spec(), job.fingerprint, "fit", device_environment(job.device))
        names[key] = (job.name, list(job.chapters))
    return names


def _describe(meta: Mapping) -> str:
    """A fit the plan did not name: its method, prior and hidden layers, from its spec."""
    spec = meta.get("spec") or {}
    parts = [str(spec.get("method", "fit")), str(spec.get("prior") or ""),
             "-".join(map(str, spec.get("hidden") or [])) or ""]
    return " ".join(p for p in parts if p)


def build_summary(started: str, wall: float, estimate: Estimate | None, records: list[dict],
                  names: Mapping[str, tuple[str, list[str]]], chapters: list[str], settings: Mapping) -> dict:
    """The summary of a build: its wall time and its estimate, the CPU seconds of the fits and
    of scoring it computed (from their cache `records`) and their estimates, and its ten most
    expensive fits. `wall` and the estimate's `compared_wall_s` cover the same part: the warm-up
    and the chapters (the run registry page and the HTML come after the summary is written)."""
    fits = [r for r in records if r.get("kind") in FIT_KINDS]
    scores = [r for r in records if r.get("kind") in SCORE_KINDS]
    fit_cpu = sum(float(r.get("compute_seconds", 0.0)) for r in fits)
    score_cpu = sum(float(r.get("compute_seconds", 0.0)) for r in scores)
    top = sorted(fits, key=lambda r: float(r.get("compute_seconds", 0.0)), reverse=True)[:TOP]
    per_fit = estimate.per_fit if estimate is not None else {}
    top_rows = []
    for record in top:
        name, where = names.get(record.get("key"), (_describe(record), []))
        label = f"{name} ({', '.join(where)})" if where else name
        top_rows.append({"fit": name, "chapters": ", ".join(where), "seconds": round(float(record["compute_seconds"]), 1),
                         "estimated_seconds": round(per_fit[label], 1) if label in per_fit else None})
    summary = {
        "started": started, **dict(settings), "chapters_executed": chapters,
        "wall_s": round(wall, 1), "fits_computed": len(fits), "scorings_computed": len(scores),
        "fit_cpu_s": round(fit_cpu, 1), "score_cpu_s": round(score_cpu, 1), "top_fits": top_rows,
    }
    if estimate is not None:
        compared = estimate.warmup_fits + estimate.warmup_ranges + estimate.chapters
        summary.update({
            "estimate": {k: round(v, 1) if isinstance(v, float) else v for k, v in estimate.as_dict().items()},
            "estimated_wall_s": round(compared, 1), "wall_ratio": round(ratio(compared, wall), 3),
            "estimated_cpu_s": round(estimate.cpu, 1),
            "cpu_ratio": round(ratio(estimate.cpu, fit_cpu + score_cpu), 3),
        })
    return summary


def finish(summary: dict, total_wall: float, estimate: Estimate | None) -> dict:
    """The summary with the whole build's wall time (pages and HTML included) and its estimate."""
    done = {**summary, "total_wall_s": round(total_wall, 1)}
    if estimate is not None:
        done.update(total_estimated_wall_s=round(estimate.wall, 1),
                    total_wall_ratio=round(ratio(estimate.wall, total_wall), 3))
    return done


def summary_lines(summary: Mapping) -> list[str]:
    """The summary as the build prints it."""
    lines = [f"[summary] wall time {minutes(summary.get('total_wall_s', summary['wall_s']))}"
             + (f" (estimated {minutes(summary['total_estimated_wall_s'])}, ratio "
                f"{summary['total_wall_ratio']:.2f})" if "total_estimated_wall_s" in summary else ""),
             f"[summary] warm-up and chapters: {minutes(summary['wall_s'])}"
             + (f" (estimated {minutes(summary['estimated_wall_s'])}, ratio {summary['wall_ratio']:.2f})"
                if "estimated_wall_s" in summary else ""),
             f"[summary] CPU: fits {minutes(summary['fit_cpu_s'])} ({summary['fits_computed']} computed), scoring "
             f"{minutes(summary['score_cpu_s'])} ({summary['scorings_computed']} cache entries)"
             + (f"; estimated {minutes(summary['estimated_cpu_s'])} in all, ratio {summary['cpu_ratio']:.2f}"
                if "estimated_cpu_s" in summary else "")]
    if summary["top_fits"]:
        lines.append(f"[summary] the {len(summary['top_fits'])} most expensive fits:")
        for row in summary["top_fits"]:
            where = f" ({row['chapters']})" if row["chapters"] else ""
            estimated = (f", estimated {_seconds(row['estimated_seconds'])}" if row.get("estimated_seconds") is not None
                         else "")
            lines.append(f"[summary]   {row['fit']}{where}: {_seconds(row['seconds'])}{estimated}")
    return lines


def _seconds(value: float) -> str:
    """Seconds with a decimal below ten (a quick book's fits take less than one)."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def write_summary(path: Path, summary: Mapping) -> Path:
    """Write the summary as JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    os.replace(temp, path)
    return path
