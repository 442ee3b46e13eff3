"""The provenance table a chapter shows in its last cell."""

from __future__ import annotations

import pytest

from bnnlib.infra.cache import CacheEvent
from bnnlib.errors import BnnlibError
from bnnlib.infra.provenance import cache_record, package_versions, provenance


def test_table_lists_parameters_data_versions_time_and_cache():
    records = [
        CacheEvent("fit", "a" * 64, "prior=laplace", True, 12.0),
        {"kind": "scores", "name": "draws=50", "hit": False, "seconds": 3.25},
        ("fit", "prior=normal", False, None),
    ]
    table = provenance(
        {"epochs": 2, "priors": ["flat", "laplace"], "data_dir": None},
        dataset_fingerprint="abc123", started=100.0, cache_records=records, now=142.5,
    )
    value = table["value"]
    assert value[("parameter", "epochs")] == "2"
    assert value[("parameter", "priors")] == '["flat", "laplace"]'
    assert value[("parameter", "data_dir")] == "null"
    assert value[("data", "fingerprint")] == "abc123"
    assert value[("run", "wall time")] == "42.5 s"
    assert value[("run", "cache")] == "1 of 3 results read from the cache"
    assert value[("cache: fit", "prior=laplace")] == "from cache, 12.0 s to compute"
    assert value[("cache: scores", "draws=50")] == "computed, 3.2 s to compute"
    assert value[("cache: fit", "prior=normal")] == "computed"
    versions = table.loc["version"]["value"]
    for name in ("python", "bnnlib", "torch", "pyro-ppl", "numpy", "pandas"):
        assert versions[name] and versions[name] != "not installed"
    assert len(versions["bnnlib source"]) == 16


def test_no_data_and_no_cache():
    table = provenance({}, dataset_fingerprint=None, started=0.0, now=1.0)
    assert table["value"][("data", "fingerprint")] == "(none)"
    assert table["value"][("run", "cache")] == "0 of 0 results read from the cache"


def test_missing_package_is_reported_not_raised():
    assert package_versions(["surely-not-a-package-xyz"])["surely-not-a-package-xyz"] == "not installed"


def test_bad_cache_record_is_a_clear_error():
    with pytest.raises(BnnlibError, match="kind, name, hit, seconds"):
        cache_record(42)
    with pytest.raises(BnnlibError, match="lacks"):
        cache_record({"name": "x"})
