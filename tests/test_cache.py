"""The on-disk cache: keys, hits and misses, atomic writes, damaged entries, exact round-trips."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bnnlib.infra.cache as cache_module
from bnnlib.infra.cache import Cache, cache_key, canonical_json, hash_tree, load_value, save_value, source_hash
from bnnlib.errors import BnnlibError


@dataclasses.dataclass(frozen=True)
class FitSpec:
    prior: str
    hidden: tuple[int, ...]
    lr: float
    seed: int


SPEC = FitSpec(prior="normal", hidden=(64, 32), lr=1e-3, seed=0)


class Counter:
    """A compute function that counts its calls and returns a fresh value each time."""

    def __init__(self, value=None):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        if self.value is not None:
            return self.value
        return {"state_dict": {"w": torch.full((2, 3), float(self.calls))}, "calls": self.calls}


def entries(root: Path) -> list[Path]:
    """Every file and folder under `root` (empty when nothing was written)."""
    return sorted(root.rglob("*")) if root.exists() else []


# ----------------------------------------------------------------------------- keys


def test_key_is_stable_across_processes(monkeypatch):
    # the same source hash on both sides: the package may be edited while the tests run
    monkeypatch.setattr(cache_module, "engine_hash", lambda: "f" * 64)
    spec = {"model": SPEC, "path": Path("data/x.parquet"), "eras": (1, 2), "nan": float("nan")}
    here = cache_key(spec, "abc", "fit")
    code = (
        "import dataclasses, sys; from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_cache import SPEC\n"
        "import bnnlib.infra.cache\n"
        "bnnlib.infra.cache.engine_hash = lambda: 'f' * 64\n"
        "from bnnlib.infra.cache import cache_key\n"
        "spec = {'nan': float('nan'), 'eras': [1, 2], 'path': Path('data/x.parquet'), 'model': SPEC}\n"
        "print(cache_key(spec, 'abc', 'fit'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == here


def test_key_depends_on_every_part():
    base = cache_key(SPEC, "fp", "fit")
    assert len(base) == 64 and int(base, 16) >= 0
    assert cache_key(dataclasses.replace(SPEC, seed=1), "fp", "fit") != base
    assert cache_key(dataclasses.replace(SPEC, lr=1e-3 + 1e-12), "fp", "fit") != base
    assert cache_key(SPEC, "fp2", "fit") != base
    assert cache_key(SPEC, "fp", "scores") != base


def test_key_changes_with_source(monkeypatch):
    base = cache_key(SPEC, "fp", "fit")
    monkeypatch.setattr(cache_module, "engine_hash", lambda: "0" * 64)
    assert cache_key(SPEC, "fp", "fit") != base


def test_canonical_json_ignores_order_and_container_type():
    assert canonical_json({"b": (1, 2.5), "a": Path("x")}) == canonical_json({"a": "x", "b": [1, 2.5]})
    assert canonical_json({"x": np.float64(0.1)}) == canonical_json({"x": 0.1})
    assert canonical_json({"x": float("inf")}) != canonical_json({"x": "inf"})
    assert canonical_json(SPEC) == '{"hidden":[64,32],"lr":0.001,"prior":"normal","seed":0}'


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"model": {"act": lambda x: x}}, "spec['model']['act'] is a function"),
        ({"data": np.arange(3)}, "spec['data'] is a ndarray"),
        ({1: "a"}, "key 1 of type int"),
        ({"o": object()}, "spec['o'] is a object"),
    ],
)
def test_unserialisable_spec_is_refused(spec, fragment):
    with pytest.raises(BnnlibError, match="cache key") as info:
        cache_key(spec, "fp", "fit")
    assert fragment in str(info.value)


def test_source_hash_follows_file_contents(tmp_path):
    copy = tmp_path / "bnnlib"
    shutil.copytree(cache_module.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(copy, tmp_path / "elsewhere" / "pkg")
    assert hash_tree(copy) == hash_tree(tmp_path / "elsewhere" / "pkg")  # where it lives: no matter
    assert len(source_hash()) == 64 and source_hash() is source_hash()  # once per process
    before = hash_tree(copy)
    target = copy / "errors.py"
    target.write_text(target.read_text() + "\n# a change\n")
    assert hash_tree(copy) != before
    (copy / "new_module.py").write_text("")
    changed = hash_tree(copy)
    (copy / "new_module.py").rename(copy / "renamed.py")
    assert hash_tree(copy) != changed


def test_engine_hash_keys_the_computing_code_only(tmp_path):
    copy = tmp_path / "bnnlib"
    shutil.copytree(cache_module.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache_module.hash_paths(copy, cache_module.ENGINE)
    for presentation in ("report/plots.py", "report/chapter.py", "build/runner.py", "evaluate/fits.py"):
        (copy / presentation).write_text((copy / presentation).read_text() + "\n# a new title\n")
    assert cache_module.hash_paths(copy, cache_module.ENGINE) == before
    bnn = copy / "models" / "bnn.py"
    bnn.write_text(bnn.read_text() + "\n# a comment\n")  # documents, computes nothing new
    assert cache_module.hash_paths(copy, cache_module.ENGINE) == before
    bnn.write_text(bnn.read_text() + "\nSOMETHING_NEW = 1\n")
    assert cache_module.hash_paths(copy, cache_module.ENGINE) != before


def test_engine_imports_nothing_outside_the_engine():
    """A module the engine imports computes numbers too; it must be in ENGINE, or an edit to it
    would reuse stale fits."""
    import ast

    engine_files = []
    for name in cache_module.ENGINE:
        path = cache_module.PACKAGE_DIR / name
        engine_files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    allowed = {"bnnlib." + n.removesuffix("/__init__.py").removesuffix(".py").replace("/", ".")
               for n in cache_module.ENGINE} | {"bnnlib.errors"}
    for path in engine_files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for module in names:
                if module.startswith("bnnlib.") and not module.startswith("bnnlib.infra.__"):
                    assert any(module == a or module.startswith(a + ".") for a in allowed), \
                        f"{path.name} imports {module}, which is not in cache.ENGINE"


# ----------------------------------------------------------------------------- hits and misses


def test_second_call_is_a_hit(tmp_path):
    cache, compute = Cache(tmp_path / "c"), Counter()
    first, hit1 = cache.get_or_compute("fit", SPEC, "fp", compute)
    second, hit2 = cache.get_or_compute("fit", SPEC, "fp", compute)
    assert (hit1, hit2) == (False, True)
    assert compute.calls == 1
    for value in (first, second):  # the value computed by the one call, both times
        assert torch.equal(value["state_dict"]["w"], torch.full((2, 3), 1.0)) and value["calls"] == 1
    assert [e.hit for e in cache.events] == [False, True]
    assert len(cache.hits) == 1 and len(cache.misses) == 1
    table = cache.provenance()
    assert list(table["from_cache"]) == [False, True]
    assert "prior=\"normal\"" in table["spec"][0]
    meta = json.loads((cache.path("fit", cache.events[0].key) / "meta.json").read_text())
    assert meta["spec"]["hidden"] == [64, 32] and meta["data"] == "fp"
    assert meta["versions"]["torch"] == cache_module.library_versions()["torch"]


def test_a_new_cache_object_reads_the_same_entry(tmp_path):
    Cache(tmp_path).get_or_compute("fit", SPEC, "fp", Counter())
    compute = Counter()
    value, hit = Cache(tmp_path).get_or_compute("fit", SPEC, "fp", compute)
    assert hit and compute.calls == 0 and value["calls"] == 1


def test_force_recomputes_and_replaces(tmp_path):
    cache, compute = Cache(tmp_path), Counter()
    cache.get_or_compute("fit", SPEC, "fp", compute)
    value, hit = cache.get_or_compute("fit", SPEC, "fp", compute, force=True)
    assert not hit and compute.calls == 2 and value["calls"] == 2
    again, hit = cache.get_or_compute("fit", SPEC, "fp", compute)
    assert hit and again["calls"] == 2
    assert len(list((tmp_path / "fit").iterdir())) == 1


def test_other_spec_or_data_is_a_miss(tmp_path):
    cache, compute = Cache(tmp_path), Counter()
    cache.get_or_compute("fit", SPEC, "fp", compute)
    _, hit_spec = cache.get_or_compute("fit", dataclasses.replace(SPEC, prior="laplace"), "fp", compute)
    _, hit_data = cache.get_or_compute("fit", SPEC, "other", compute)
    _, hit_kind = cache.get_or_compute("scores", SPEC, "fp", compute)
    assert (hit_spec, hit_data, hit_kind) == (False, False, False)
    assert compute.calls == 4


# ----------------------------------------------------------------------------- nothing half-written


@pytest.mark.parametrize("error", [RuntimeError("diverged"), KeyboardInterrupt()])
def test_failed_compute_leaves_nothing(tmp_path, error):
    def compute():
        raise error

    cache = Cache(tmp_path / "c")
    with pytest.raises(type(error)):
        cache.get_or_compute("fit", SPEC, "fp", compute)
    assert entries(tmp_path) == []
    assert cache.events == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_crash_in_the_middle_of_writing_leaves_nothing(tmp_path, monkeypatch, error):
    def partial_write(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half a file")
        raise error

    monkeypatch.setattr(pd.DataFrame, "to_parquet", partial_write)
    cache = Cache(tmp_path / "c")
    value = {"w": torch.ones(2), "scores": pd.DataFrame({"corr": [0.1, 0.2]})}
    with pytest.raises(type(error)):
        cache.get_or_compute("scores", SPEC, "fp", lambda: value)
    assert entries(tmp_path) == []
    monkeypatch.undo()
    _, hit = cache.get_or_compute("scores", SPEC, "fp", lambda: value)
    assert not hit


def test_unstorable_value_is_refused_and_leaves_nothing(tmp_path):
    cache = Cache(tmp_path / "c")
    with pytest.raises(BnnlibError, match="cannot store"):
        cache.get_or_compute("fit", SPEC, "fp", lambda: {"fn": lambda x: x})
    with pytest.raises(BnnlibError, match="objects"):
        cache.get_or_compute("fit", SPEC, "fp", lambda: {"a": np.array([object()])})
    assert entries(tmp_path) == []


@pytest.mark.parametrize("damage", ["delete_payload", "truncate_payload", "delete_meta", "bad_manifest",
                                    "same_size_payload"])
def test_damaged_entry_is_recomputed(tmp_path, damage):
    cache, compute = Cache(tmp_path), Counter()
    cache.get_or_compute("fit", SPEC, "fp", compute)
    entry = cache.path("fit", cache.events[0].key)
    payload = next(entry.glob("*.pt"))
    if damage == "delete_payload":
        payload.unlink()
    elif damage == "truncate_payload":
        payload.write_bytes(payload.read_bytes()[:10])
    elif damage == "same_size_payload":  # sizes agree: only the content check can tell
        data = bytearray(payload.read_bytes())
        data[len(data) // 2] ^= 0xFF
        payload.write_bytes(bytes(data))
    elif damage == "delete_meta":
        (entry / "meta.json").unlink()
    else:
        (entry / "manifest.json").write_text("{not json")
        meta = json.loads((entry / "meta.json").read_text())
        meta["files"]["manifest.json"] = {"bytes": len("{not json"),
                                          "sha256": hashlib.sha256(b"{not json").hexdigest()}
        (entry / "meta.json").write_text(json.dumps(meta))
    if damage != "bad_manifest":  # its meta.json vouches for it: only loading tells
        assert not cache.contains("fit", SPEC, "fp")  # the warm-up does not skip a damaged entry
    with pytest.warns(UserWarning, match=r"damaged cache entry .*, recomputing"):
        value, hit = cache.get_or_compute("fit", SPEC, "fp", compute)
    assert not hit and compute.calls == 2 and value["calls"] == 2
    value, hit = cache.get_or_compute("fit", SPEC, "fp", compute)
    assert hit and value["calls"] == 2


def test_second_writer_loses_gracefully(tmp_path):
    """Another process stores the same key while we compute: its entry is kept, and returned."""
    ours, theirs = Cache(tmp_path), Cache(tmp_path)

    def slow_compute():
        theirs.get_or_compute("fit", SPEC, "fp", lambda: {"who": "first"})
        return {"who": "second"}

    value, hit = ours.get_or_compute("fit", SPEC, "fp", slow_compute)
    assert value == {"who": "first"} and not hit
    kind_dir = tmp_path / "fit"
    assert [p.name for p in kind_dir.iterdir()] == [ours.events[0].key]
    assert Cache(tmp_path).get_or_compute("fit", SPEC, "fp", Counter())[0] == {"who": "first"}


def test_bad_kind_is_refused(tmp_path):
    with pytest.raises(BnnlibError, match="simple name"):
        Cache(tmp_path).get_or_compute("../escape", SPEC, "fp", Counter())


# ----------------------------------------------------------------------------- exact round-trips


def sample_value():
    generator = torch.Generator().manual_seed(0)
    frame = pd.DataFrame(
        {
            "era": ["0001", "0001", "0002"],
            "corr": [0.01, -0.02, float("nan")],
            "n": np.array([1, 2, 3], dtype=np.int32),
            "regime": pd.Categorical(["a", "b", "a"]),
        },
        index=pd.Index(["id1", "id2", "id3"], name="id"),
    )
    return {
        "state_dict": OrderedDict(
            w=torch.randn(4, 3, generator=generator),
            b=torch.zeros(3, dtype=torch.float64),
            steps=torch.tensor(7),
        ),
        "history": {"loss": [1.5, 0.25, 1e-300], "elbo": [-3.0, float("nan")], "epochs": 2},
        "draws": np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32),
        "labels": np.array(["x", "y"]),
        "scores": frame,
        "wide": pd.DataFrame(np.eye(2), columns=[0, 1]),
        "per_era": pd.Series([0.1, 0.2], index=["0001", "0002"], name="corr"),
        "sharpe": np.float64(1.25),
        "flag": np.bool_(True),
        "shape": (5, 3),
        "by_seed": {0: torch.ones(2), 1: pd.DataFrame({"a": [1]})},
        "runs": [np.arange(3), {"x": 1}],
        "note": None,
    }


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_round_trip_is_exact(tmp_path):
    value = sample_value()
    save_value(value, tmp_path)
    assert_same(value, load_value(tmp_path))


def test_miss_and_hit_return_the_same_thing(tmp_path):
    cache = Cache(tmp_path)
    first, _ = cache.get_or_compute("scores", SPEC, "fp", sample_value)
    second, hit = cache.get_or_compute("scores", SPEC, "fp", sample_value)
    assert hit
    assert_same(sample_value(), first)
    assert_same(first, second)


def test_custom_save_and_load(tmp_path):
    cache = Cache(tmp_path)

    def save(value, directory):
        (directory / "value.txt").write_text(str(value))

    def load(directory):
        return int((directory / "value.txt").read_text())

    for expected_hit in (False, True):
        value, hit = cache.get_or_compute("n", {"a": 1}, "fp", lambda: 42, save=save, load=load)
        assert (value, hit) == (42, expected_hit)


def test_entries_get_the_usual_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        cache = Cache(tmp_path)
        cache.get_or_compute("fit", SPEC, "fp", Counter())
    finally:
        os.umask(old)
    entry = cache.path("fit", cache.events[0].key)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in entry.iterdir()} == {0o644}
