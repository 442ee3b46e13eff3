"""How a chapter's numbers were produced: one table for the chapter's last cell.

It lists the chapter's parameters, a fingerprint of the data, the versions of the packages
that compute the numbers, bnnlib's source hash, the wall time, and which fits and scores came
from the cache (and what computing them cost), so a reader can tell what produced a page.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from bnnlib.errors import BnnlibError
from bnnlib.infra.cache import source_hash

PACKAGES = ("bnnlib", "torch", "pyro-ppl", "numpy", "pandas")


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Python's version and each package's installed version ('not installed' if absent)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cache_record(record: Any) -> dict:
    """One cache lookup as {kind, name, hit, seconds}, from a mapping, an object with those
    attributes (bnnlib.infra.cache.CacheEvent: `summary` serves as the name) or a 4-tuple."""
    fields = ("kind", "name", "hit", "seconds")
    if isinstance(record, Mapping):
        values = {f: record.get(f) for f in fields}
        if values["name"] is None:
            values["name"] = record.get("summary", record.get("key"))
    elif hasattr(record, "kind") and hasattr(record, "hit"):
        name = getattr(record, "name", None) or getattr(record, "summary", None) or getattr(record, "key", "")
        values = {"kind": record.kind, "name": name, "hit": record.hit,
                  "seconds": getattr(record, "seconds", None)}
    elif isinstance(record, (tuple, list)) and len(record) == 4:
        values = dict(zip(fields, record))
    else:
        raise BnnlibError(
            f"a cache record must be a dict or a (kind, name, hit, seconds) tuple, not {record!r}; "
            "pass cache.events from bnnlib.infra.cache.Cache"
        )
    if values["kind"] is None or values["hit"] is None:
        raise BnnlibError(f"the cache record {record!r} lacks 'kind' or 'hit'; give kind, name, hit, seconds")
    return values


def _text(value: Any) -> str:
    """A parameter value as it would be written in a profile (JSON-like, short)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def provenance(
    params: Mapping[str, Any],
    *,
    dataset_fingerprint: str | None,
    started: float,
    cache_records: Iterable[Any] = (),
    now: float | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """The provenance table of a chapter: rows (section, item) -> value, all text.

    `started` is `time.time()` taken in the chapter's first cell; `cache_records` are the
    chapter's cache lookups (e.g. `cache.events`); `device` is where its fits and scores ran
    (e.g. 'cpu' or 'cuda:0 (NVIDIA H200)'; numbers may differ by device, and it keys the cache).
    """

    now = time.time() if now is None else now
    rows: list[tuple[str, str, str]] = []
    rows += [("parameter", str(k), _text(v)) for k, v in params.items()]
    rows.append(("data", "fingerprint", dataset_fingerprint or "(none)"))
    rows += [("version", k, v) for k, v in package_versions().items()]
    rows.append(("version", "bnnlib source", source_hash()[:16]))
    records = [cache_record(r) for r in cache_records]
    hits = sum(bool(r["hit"]) for r in records)
    rows.append(("run", "wall time", f"{max(now - started, 0.0):.1f} s"))
    if device is not None:
        rows.append(("run", "device", device))
    rows.append(("run", "cache", f"{hits} of {len(records)} results read from the cache"))
    for r in records:
        cost = "" if r["seconds"] is None else f", {float(r['seconds']):.1f} s to compute"
        origin = "from cache" if r["hit"] else "computed"
        rows.append((f"cache: {r['kind']}", str(r["name"]), f"{origin}{cost}"))
    frame = pd.DataFrame(rows, columns=["section", "item", "value"])
    return frame.set_index(["section", "item"])
