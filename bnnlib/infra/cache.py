"""The on-disk cache of expensive results (fitted models, posterior scores).

An entry lives in ``root/<kind>/<key>/``: the payload files plus ``meta.json``. The key hashes
the result's full specification, a fingerprint of the data, bnnlib's source and the versions
of the numerical libraries, so a change to any of them is a miss, never a stale hit. An entry
is written into a temporary directory beside its final place and renamed there only after the
computation and every write succeeded: an exception, a Ctrl-C or a second process writing the
same key never leaves a half-written entry. ``meta.json`` lists every file with its size and
sha256, checked on every read: a damaged entry (a truncated or overwritten file, same size or
not) is reported as such, removed and computed again, never loaded.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import enum
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from bnnlib.errors import BnnlibError

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The bnnlib package folder (ENGINE's paths are relative to it)."""
VERSIONED = ("torch", "pyro-ppl", "numpy", "pandas")
FORMAT = 1
MANIFEST = "manifest.json"
META = "meta.json"
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STALE_SECONDS = 24 * 3600


# --------------------------------------------------------------------------- keys


def hash_tree(root: Path) -> str:
    """sha256 over every ``*.py`` file under `root`: sorted relative paths and their bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


@functools.cache
def source_hash() -> str:
    """The hash of all of bnnlib's source, once per process (what produced a notebook)."""
    return hash_tree(PACKAGE_DIR)


ENGINE = ("models", "data/__init__.py", "data/dataset.py", "data/levels.py", "data/loader.py", "data/profiles.py",
          "data/roles.py", "data/sized.py", "data/synth.py", "data/world.py", "scoring/metrics.py",
          "scoring/draws.py", "evaluate/predictive.py", "evaluate/laplace.py", "evaluate/convergence.py", "evaluate/methods.py", "evaluate/study.py", "infra/cache.py",
          "infra/executor.py")
"""The code that computes a cached fit's or score's numbers (and how entries are stored).
Presentation code (plots, tables, chapters, the runner, the data chapter's facts and figures)
is not in it, so editing a
figure reuses every fit; a test fails when a module outside this list is imported by it. The
convergence verdict is in it: it decides where a BNN trajectory's continuation stops."""


def code_digest(source: str) -> bytes:
    """What a module computes, without what only documents it: its syntax tree with docstrings
    (and so comments, which the tree has not) left out, and its top-level imports in sorted
    order. Editing a docstring or a comment, or reordering imports, changes nothing here."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    imports = sorted(ast.dump(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    rest = [ast.dump(n) for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(imports + rest).encode()


def _code_tree_digest(root: Path) -> str:
    """`code_digest` of every ``*.py`` file under `root`, with their sorted relative paths."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(code_digest(path.read_text()) + b"\0")
    return digest.hexdigest()


def hash_paths(root: Path, names: tuple[str, ...]) -> str:
    """sha256 over what the ``*.py`` files of the named modules and packages under `root`
    compute (`code_digest`: docstrings, comments and the order of imports left out)."""
    digest = hashlib.sha256()
    for name in names:
        path = Path(root) / name
        digest.update(name.encode() + b"\0")
        digest.update(_code_tree_digest(path).encode() if path.is_dir() else code_digest(path.read_text()))
    return digest.hexdigest()


@functools.cache
def engine_hash() -> str:
    """The hash of the engine's source (`ENGINE`), once per process: part of every cache key."""
    return hash_paths(PACKAGE_DIR, ENGINE)


@functools.cache
def library_versions() -> dict[str, str]:
    """Versions of the libraries whose numbers end up in cached results."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def canonical(value: Any, where: str = "spec") -> Any:
    """`value` as plain JSON data that means the same thing in every process.

    Dataclasses become dicts of their fields, tuples and lists become lists, paths strings,
    enums their value, numpy scalars Python numbers, non-finite floats tagged strings. Anything
    else (objects whose repr may hold a memory address, functions, arrays) is refused.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_, np.void)):
        value = value.item()
        if isinstance(value, (bool, str)):
            return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return canonical(value.value, where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {k: canonical(v, f"{where}.{k}") for k, v in fields.items()}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise BnnlibError(
                    f"{where} has the key {k!r} of type {type(k).__name__}; a cache key needs "
                    "string keys in every mapping: convert the key to a string"
                )
            out[k] = canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [canonical(v, f"{where}{{}}") for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    raise BnnlibError(
        f"{where} is a {type(value).__name__}, which cannot be part of a cache key; use only "
        "numbers, strings, booleans, None, paths, lists, dicts and dataclasses of these"
    )


def canonical_json(value: Any) -> str:
    """The one JSON text of `value` (sorted keys, no spaces) that the key is the hash of."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def cache_key(spec: Any, data_fingerprint: str, kind: str, environment: Mapping | None = None) -> str:
    """A stable hex digest of a result's kind, specification, data, code, library versions and
    `environment` (where it was computed, e.g. {"device": "cuda:0", "gpu": ...}: numbers may
    differ by device)."""
    if not isinstance(data_fingerprint, str):
        raise BnnlibError(
            f"the data fingerprint must be a string, not {type(data_fingerprint).__name__}; "
            "pass the dataset's fingerprint (e.g. ds.fingerprint)"
        )
    payload = {
        "kind": kind,
        "spec": canonical(spec),
        "data": data_fingerprint,
        "source": engine_hash(),
        "versions": library_versions(),
        "environment": canonical(dict(environment or {}), "environment"),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def summarize(spec: Any, width: int = 160) -> str:
    """A one-line ``name=value, ...`` summary of a specification, for provenance tables."""
    data = canonical(spec)
    if isinstance(data, dict):
        text = ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in data.items())
    else:
        text = json.dumps(data, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------- payloads


def _is_plain_json(value: Any) -> bool:
    """Whether `value` comes back from JSON exactly as it went in (same types, same numbers)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(_is_plain_json(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain_json(v) for k, v in value.items())
    return False


def _is_tensor_tree(value: Any) -> bool:
    """Whether `value` is a tensor, or a dict of tensors, that torch can load weights-only."""
    import torch

    if isinstance(value, torch.Tensor):
        return True
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _torch_loaded() -> bool:
    import sys

    return "torch" in sys.modules


def _save_entry(value: Any, directory: Path, counter: list[int], where: str) -> dict:
    """Write `value`'s files into `directory`; return its manifest entry (recursive)."""

    def name(suffix: str) -> str:
        counter[0] += 1
        return f"{counter[0]:04d}{suffix}"

    if _torch_loaded() and _is_tensor_tree(value):
        import torch

        file = name(".pt")
        torch.save(value, directory / file)
        return {"type": "torch", "file": file}
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise BnnlibError(
                f"{where} is a numpy array of Python objects, which the cache cannot store "
                "exactly; convert it to a numeric or string dtype, or to a DataFrame"
            )
        file = name(".npy")
        np.save(directory / file, array, allow_pickle=False)
        return {"type": "numpy", "file": file, "scalar": isinstance(value, np.generic)}
    if isinstance(value, pd.DataFrame):
        file = name(".parquet")
        value.to_parquet(directory / file)
        return {"type": "frame", "file": file}
    if isinstance(value, pd.Series) and _is_plain_json(value.name):
        file = name(".parquet")
        value.to_frame(name="values").to_parquet(directory / file)
        return {"type": "series", "file": file, "name": value.name}
    if _is_plain_json(value):
        return {"type": "json", "value": value}
    if type(value) in (dict, list, tuple):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        items = []
        for k, v in pairs:
            if isinstance(value, dict) and not (k is None or type(k) in (bool, int, float, str)):
                raise BnnlibError(
                    f"{where} has the key {k!r} of type {type(k).__name__}; the cache stores "
                    "dicts keyed by strings or numbers: convert the key"
                )
            items.append([k, _save_entry(v, directory, counter, f"{where}[{k!r}]")])
        if isinstance(value, dict):
            return {"type": "dict", "items": items}
        return {"type": type(value).__name__, "items": [entry for _, entry in items]}
    import torch

    file = name(".pkl.pt")
    try:
        torch.save(value, directory / file)
    except Exception as error:
        raise BnnlibError(
            f"{where} is a {type(value).__name__}, which the cache cannot store ({error}); "
            "return tensors, numpy arrays, pandas DataFrames/Series, JSON-able values, or "
            "dicts and lists of these"
        ) from error
    return {"type": "pickle", "file": file}


def _load_entry(entry: dict, directory: Path) -> Any:
    kind = entry["type"]
    if kind == "json":
        return entry["value"]
    if kind == "torch":
        import torch

        return torch.load(directory / entry["file"], map_location="cpu", weights_only=True)
    if kind == "pickle":
        import torch

        return torch.load(directory / entry["file"], map_location="cpu", weights_only=False)
    if kind == "numpy":
        array = np.load(directory / entry["file"], allow_pickle=False)
        return array[()] if entry["scalar"] else array
    if kind == "frame":
        return pd.read_parquet(directory / entry["file"])
    if kind == "series":
        return pd.read_parquet(directory / entry["file"])["values"].rename(entry["name"])
    if kind == "dict":
        return {k: _load_entry(v, directory) for k, v in entry["items"]}
    if kind in ("list", "tuple"):
        items = [_load_entry(v, directory) for v in entry["items"]]
        return items if kind == "list" else tuple(items)
    raise ValueError(f"unknown entry type {kind!r}")


def save_value(value: Any, directory: Path) -> None:
    """Write `value` into `directory` (which exists): tensors as weights-only torch files,
    arrays as .npy, DataFrames and Series as parquet, JSON-able values inline in the manifest,
    and dicts, lists and tuples of these (at any depth); other objects torch can pickle go to a
    pickle file. Everything comes back from `load_value` equal, with the same types."""
    directory = Path(directory)
    root = _save_entry(value, directory, [0], "the cached value")
    text = json.dumps({"format": FORMAT, "root": root}, allow_nan=True)
    (directory / MANIFEST).write_text(text, encoding="utf-8")


def load_value(directory: Path) -> Any:
    """Read back what `save_value` wrote into `directory`."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"unknown cache format {manifest.get('format')!r}")
    return _load_entry(manifest["root"], directory)


# --------------------------------------------------------------------------- the cache


class CacheEvent(NamedTuple):
    """One lookup: which result, whether it came from disk, and what computing it cost."""

    kind: str
    key: str
    summary: str
    hit: bool
    seconds: float  # the compute time, measured when the entry was first computed
    created: str = ""  # when the entry was computed (UTC, ISO 8601): by this run, or before it


def _remove_tree(path: Path) -> None:
    """Delete a directory without racing readers: rename it aside first, then remove it."""
    if not path.exists():
        return
    trash = path.parent / f".trash-{path.name[:16]}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


class Cache:
    """Results on disk under ``root/<kind>/<key>/``, computed once, kept across runs.

    `events` records every lookup (see `provenance`), so a chapter can show which of its fits
    came from the cache and what they cost when they were computed.
    """

    def __init__(self, root: Path | str = Path("_build/cache")):
        self.root = Path(root)
        self.events: list[CacheEvent] = []

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    @property
    def hits(self) -> list[CacheEvent]:
        return [e for e in self.events if e.hit]

    @property
    def misses(self) -> list[CacheEvent]:
        return [e for e in self.events if not e.hit]

    def provenance(self) -> pd.DataFrame:
        """The lookups of this cache object as a table: kind, key, spec, from_cache, seconds, created."""
        rows = [
            {"kind": e.kind, "key": e.key[:12], "spec": e.summary, "from_cache": e.hit,
             "seconds": e.seconds, "created": e.created}
            for e in self.events
        ]
        return pd.DataFrame(rows, columns=["kind", "key", "spec", "from_cache", "seconds", "created"])

    def contains(self, kind: str, spec: Any, data_fingerprint: str, environment: Mapping | None = None) -> bool:
        """Whether a whole entry for this spec, data and environment is stored (reads nothing,
        records nothing)."""
        return _is_complete(self.path(kind, cache_key(spec, data_fingerprint, kind, environment)))

    def stored(self, kind: str, spec: Any, data_fingerprint: str, environment: Mapping | None = None) -> Any:
        """The stored value of an entry, or None, without recording a lookup: for the parts of
        a result (a range of a model's draws), which the provenance table does not list."""
        found = self._read(self.path(kind, cache_key(spec, data_fingerprint, kind, environment)), load_value)
        return None if found is None else found[0]

    def path(self, kind: str, key: str) -> Path:
        """Where the entry of `key` lives."""
        return self.root / _check_kind(kind) / key

    def get_or_compute(
        self,
        kind: str,
        spec: Any,
        data_fingerprint: str,
        compute: Callable[[], T],
        *,
        force: bool = False,
        save: Callable[[T, Path], None] = save_value,
        load: Callable[[Path], T] = load_value,
        environment: Mapping | None = None,
    ) -> tuple[T, bool]:
        """The cached result of `compute()` for this spec and data, and whether it was a hit.

        On a miss (or with `force`) the result is computed, written atomically, and read back,
        so a first run and a cached rerun return exactly the same thing. A damaged entry is a
        miss. If another process stores the same key first, its entry is kept. `environment`
        (the device) keys the entry beside the spec and is recorded in its meta.json.
        """
        _check_kind(kind)
        key = cache_key(spec, data_fingerprint, kind, environment)
        final = self.root / kind / key
        summary = summarize(spec)
        if not force:
            found = self._read(final, load)
            if found is not None:
                value, meta = found
                self.events.append(CacheEvent(kind, key, summary, True, meta["compute_seconds"], meta["created"]))
                return value, True
        start = time.perf_counter()
        value = compute()
        seconds = time.perf_counter() - start
        meta = {
            "format": FORMAT,
            "kind": kind,
            "key": key,
            "spec": canonical(spec),
            "data": data_fingerprint,
            "source": engine_hash(),
            "versions": library_versions(),
            "environment": canonical(dict(environment or {}), "environment"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "compute_seconds": seconds,
        }
        self._write(final, value, meta, save, replace=force)
        found = self._read(final, load)
        if found is None:  # removed under our feet by another process: keep what we computed
            loaded = value
        else:
            loaded, meta = found
            seconds = meta["compute_seconds"]
        self.events.append(CacheEvent(kind, key, summary, False, seconds, meta["created"]))
        return loaded, False

    def _read(self, final: Path, load: Callable[[Path], T]) -> tuple[T, dict] | None:
        """The entry's value and metadata, or None when it is absent or damaged."""
        if not final.exists():
            return None
        try:
            meta = _check_entry(final)
            return load(final), meta
        except Exception as error:  # a damaged entry: forget it and compute again
            warnings.warn(f"damaged cache entry {final} ({error}), recomputing", stacklevel=3)
            _remove_tree(final)
            return None

    def _write(self, final: Path, value: T, meta: dict, save, *, replace: bool) -> None:
        """Write into a temporary sibling, then rename into place; on any failure, nothing."""
        tmp = _make_temp_dir(final)
        try:
            save(value, tmp)
            files = {
                p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": _file_sha256(p)}
                for p in sorted(tmp.rglob("*")) if p.is_file()
            }
            meta = {**meta, "files": files}
            (tmp / META).write_text(json.dumps(meta, indent=1, allow_nan=True), encoding="utf-8")
            if replace:
                _remove_tree(final)
            for attempt in range(3):
                try:
                    os.rename(tmp, final)
                    break
                except OSError:
                    if attempt == 2:
                        raise
                    if _is_complete(final):
                        shutil.rmtree(tmp, ignore_errors=True)  # another writer won: keep it
                        break
                    _remove_tree(final)  # damaged leftovers in the way
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_empty(final.parent, self.root)
            raise


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise BnnlibError(
            f"cache kind {kind!r} is not a simple name; use letters, digits, '_', '-' or '.', "
            "e.g. 'fit' or 'scores'"
        )
    return kind


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_entry(final: Path) -> dict:
    """The entry's metadata, after checking that every file it lists is there with the size and
    content (sha256) it was written with."""
    meta = json.loads((final / META).read_text(encoding="utf-8"))
    for file, expected in meta["files"].items():
        path = final / file
        if path.stat().st_size != expected["bytes"]:
            raise ValueError(f"{file} has {path.stat().st_size} bytes, not {expected['bytes']}")
        if _file_sha256(path) != expected["sha256"]:
            raise ValueError(f"{file} does not have the content it was written with (sha256 differs)")
    return meta


def _is_complete(final: Path) -> bool:
    try:
        _check_entry(final)
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _make_temp_dir(final: Path) -> Path:
    """A fresh temporary directory beside `final`, so that renaming it there is atomic."""
    for attempt in range(3):
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(final.parent)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name[:16]}-", dir=final.parent))
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o777 & ~mask)  # mkdtemp's 0700 would make a shared cache unreadable to others
            return tmp
        except FileNotFoundError:  # the folder was removed by a failing writer: make it again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sweep_stale(parent: Path) -> None:
    """Remove temporary directories left by processes killed outright (older than a day)."""
    now = time.time()
    for path in parent.glob(".t*-*"):
        if path.name.startswith((".tmp-", ".trash-")):
            try:
                if now - path.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            except FileNotFoundError:
                pass


def _remove_empty(directory: Path, root: Path) -> None:
    """Remove `directory` and its parents up to and including `root` while they are empty."""
    root = root.resolve()
    current = directory.resolve()
    while True:
        try:
            current.rmdir()
        except OSError:
            return
        if current == root or root not in current.parents:
            return
        current = current.parent
