"""What a cache key holds: the fields a method reads, and what decides the bits on the machine.

Two specs that differ only in a field their method ignores are one fit (one key); two machines
whose CPUs run different kernels never share a key, so a mixed cluster cannot mix their results.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bnnlib.infra.cache import cache_key
from bnnlib.errors import BnnlibError
from bnnlib.models import device as devices
from bnnlib.project.parameters import checked_parameters
from bnnlib.evaluate.study import ModelSpec


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# which fields each method's fit reads, written out here apart from bnnlib.evaluate.study
READS = {"baseline": set(), "bnn": {"prior", "init_scale", "scale_lr", "estimator", "guide_init"},
         "dropout": {"dropout"}, "ensemble": {"members"}, "laplace": set()}
CHANGED = {"prior": "laplace", "init_scale": 0.05, "scale_lr": 0.02, "estimator": "weights", "guide_init": "prior",
           "dropout": 0.3, "members": 4, "laplace_subset": "all"}


@pytest.mark.parametrize("method", list(READS))
@pytest.mark.parametrize("field", list(CHANGED))
def test_a_field_enters_the_fit_key_only_for_the_methods_that_read_it(method, field):
    base = ModelSpec("a", method=method, prior="normal" if method == "bnn" else None)
    other = dataclasses.replace(base, **{field: CHANGED[field]}, name="b")
    if field in READS[method]:
        assert other.fit_spec() != base.fit_spec()
        assert other.fit_spec()[field] == CHANGED[field]
    else:
        assert other.fit_spec() == base.fit_spec() and field not in base.fit_spec()
        assert cache_key(other.fit_spec(), "fp", "fit") == cache_key(base.fit_spec(), "fp", "fit")


def test_the_score_key_adds_the_draws_and_what_picks_the_scored_part_only():
    bnn = ModelSpec("a", prior="normal", draws=50)
    assert bnn.score_spec() == {**bnn.fit_spec(), "draws": 50, "snapshot": "A"}
    a, b = (ModelSpec("t", prior="normal", continue_steps=100, snapshot=s) for s in ("A", "B"))
    assert a.fit_spec() == b.fit_spec() and a.score_spec() != b.score_spec()  # one trajectory, two scorings
    assert ModelSpec("e", method="ensemble", members=3, draws=99).score_spec()["draws"] == 3  # one per member
    best = ModelSpec("b", method="baseline", best_epoch=True)
    assert best.fit_spec() == ModelSpec("c", method="baseline").fit_spec()  # one fit, two scorings
    assert best.score_spec()["best_epoch"] is True
    assert best.score_spec() != ModelSpec("c", method="baseline").score_spec()
    assert "best_epoch" not in ModelSpec("d", method="dropout", best_epoch=True).score_spec()


@pytest.mark.parametrize("rate", [0.0, 1.0, 1.5, -0.1])
def test_a_dropout_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(BnnlibError, match="strictly between 0 and 1"):
        ModelSpec("d", method="dropout", dropout=rate)
    with pytest.raises(BnnlibError, match=r"parameter dropout = .* strictly between 0 and 1"):
        checked_parameters({"dropout": rate})
    assert checked_parameters({"dropout": "0.2"})["dropout"] == 0.2


@pytest.mark.parametrize("value", [None, "None", "null", "~"])
def test_hetero_prior_null_means_no_heteroscedastic_bnn(value):
    assert checked_parameters({"hetero_prior": value})["hetero_prior"] is None
    assert checked_parameters({"hetero_prior": "laplace"})["hetero_prior"] == "laplace"
    with pytest.raises(BnnlibError, match=r"choose one of: .* \(or null\)"):
        checked_parameters({"hetero_prior": "cauchy"})


def test_the_cpu_key_records_torchs_kernels_and_native_bf16(no_cuda, monkeypatch):
    environment = devices.device_environment("cpu")
    assert environment["device"] == "cpu"
    assert environment["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    keys = {}
    for capability in ("AVX2", "AVX512"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        for native in (True, False):
            monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda n=native: n)
            environment = devices.device_environment("auto")
            assert environment == {"device": "cpu", "cpu_capability": capability,
                                   "native_bf16": "yes" if native else "no"}
            keys[capability, native] = cache_key({"model": "m"}, "fp", "fit", environment)
    assert len(set(keys.values())) == 4  # four kinds of machine, four keys


def test_a_gpu_key_records_its_model_and_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    assert devices.device_environment("cuda") == {"device": "cuda:0", "gpu": "Some GPU", "cuda": "12.8"}


def test_the_engines_code_digest_ignores_documentation_and_import_order():
    from bnnlib.infra.cache import code_digest

    source = '"""Module doc."""\nimport os\nimport math\n\n\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n'
    same = 'import math\nimport os\n"""Not a docstring: after the imports."""\n\n\ndef f(x):\n    return x + 1\n'
    assert code_digest(source) == code_digest('"""Another doc."""\nimport math\nimport os\n\ndef f(x):\n    return x + 1\n')
    assert code_digest(source) != code_digest(same)  # a string statement in the body computes (nothing, but stays)
    assert code_digest(source) != code_digest(source.replace("x + 1", "x + 2"))
    assert code_digest("class A:\n    'doc'\n") == code_digest("class A:\n    pass\n")
