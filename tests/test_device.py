"""The device setting: how it resolves, how it fails, and that the CPU path is what it was.

No GPU is needed: CUDA's absence (or a fake presence) is monkeypatched, and the device code
paths (data moved once, CPU generators moved to the device, results back on the CPU) run on
the CPU, where they must give exactly the default's numbers.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib.build import cli
from bnnlib.infra.cache import Cache, cache_key
from bnnlib.errors import BnnlibError
from bnnlib.models import device as devices
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture
from bnnlib.models.precision import resolve_precision
from bnnlib.project.parameters import checked_parameters
from bnnlib.evaluate.predictive import DropoutDraws, ThetaDraws, score_draws
from bnnlib.infra.provenance import provenance


@pytest.fixture
def no_cuda(monkeypatch):
    """torch sees no GPU, whether or not the machine has one: for the tests that mean "on the CPU"."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_the_cpu_when_torch_sees_no_gpu(no_cuda):
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device("CPU") == torch.device("cpu")
    assert resolve_precision("auto", "auto") == resolve_precision("auto", "cpu")


def test_auto_is_the_first_gpu_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve_device("auto") == torch.device("cuda", 0)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(BnnlibError, match=r"'cuda:2' does not exist: torch sees 2 GPU\(s\), cuda:0..cuda:1"):
        devices.resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"])
def test_a_gpu_torch_does_not_see_is_one_clear_error(no_cuda, name):
    with pytest.raises(BnnlibError, match="torch sees no CUDA GPU here.*use --device cpu or auto") as error:
        devices.resolve_device(name)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["cuda:x", "gpu", "cpu:0", "cuda:", "", None, 1, "auto:0"])
def test_a_malformed_device_is_refused_naming_the_choices(name):
    with pytest.raises(BnnlibError, match="is not a device setting; use one of: auto, cpu, cuda, cuda:N"):
        devices.resolve_device(name)


def test_the_cpu_environment_and_label():
    """The CPU's key records what decides its bits (tests/test_cache_keys.py checks each value)."""
    assert set(devices.device_environment("cpu")) == {"device", "cpu_capability", "native_bf16"}
    assert devices.device_label(torch.device("cpu")) == "cpu"


def test_the_device_keys_the_cache_and_is_recorded(tmp_path):
    spec = {"model": "m"}
    cpu, gpu = {"device": "cpu"}, {"device": "cuda:0", "gpu": "Some GPU"}
    assert cache_key(spec, "fp", "fit", cpu) != cache_key(spec, "fp", "fit", gpu)
    cache = Cache(tmp_path)
    cache.get_or_compute("fit", spec, "fp", lambda: 1, environment=cpu)
    assert cache.contains("fit", spec, "fp", cpu) and not cache.contains("fit", spec, "fp", gpu)
    _, hit = cache.get_or_compute("fit", spec, "fp", lambda: 2, environment=gpu)
    assert not hit


def _data(rows=1200, features=6, targets=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 5, (rows, features), generator=gen).float() / 4
    y = (x[:, :targets] - 0.5) * 0.3 + 0.2 * torch.randn(rows, targets, generator=gen) + 0.5
    return x, y


@pytest.mark.parametrize("estimator", ["output", "weights"])
def test_a_fit_on_the_cpu_device_is_the_default_fit_bit_for_bit(no_cuda, estimator):
    """On the CPU (CUDA hidden, so 'auto' is the CPU wherever the test runs): the device code
    path gives the default's very bits (one process, the same shapes)."""
    x, y = _data()
    arch = Architecture(6, (8,), 1)
    config = SVIConfig(epochs=2, batch_size=128, estimator=estimator)
    default = fit_bnn(x, y, arch, get_likelihood("single"), "normal", config, progress=False)
    on_cpu = fit_bnn(x, y, arch, get_likelihood("single"), "normal", config, progress=False, device="cpu")
    auto = fit_bnn(x, y, arch, get_likelihood("single"), "normal", config, progress=False, device="auto")
    for other in (on_cpu, auto):
        for a, b in ((default.loc, other.loc), (default.scale, other.scale), (default.sigma, other.sigma)):
            assert torch.equal(a, b) and b.device.type == "cpu"


def test_point_networks_and_scoring_on_the_cpu_device_match_the_default(no_cuda):
    x, y = _data(seed=1)
    arch = Architecture(6, (8,), 1)
    config = TrainConfig(epochs=2, batch_size=128, dropout=0.2)
    default = train_mlp(x, y[:, 0], arch, config, progress=False)
    on_cpu = train_mlp(x, y[:, 0], arch, config, progress=False, device="cpu")
    assert torch.equal(default.theta, on_cpu.theta)
    eras = np.repeat([f"{e:04d}" for e in range(6)], 200)
    thetas = torch.stack([default.theta, on_cpu.theta * 1.1, on_cpu.theta * 0.9])
    for source in (ThetaDraws(thetas, arch, get_likelihood("single")), DropoutDraws(default.theta, arch, 0.2, 5)):
        a = score_draws(source, x, y[:, 0].numpy(), eras, pd.RangeIndex(len(x)), progress=False)
        b = score_draws(source, x, y[:, 0].numpy(), eras, pd.RangeIndex(len(x)), progress=False, device="cpu")
        for name in ("ensemble", "std", "draw_corr", "draw_numerai_corr"):
            assert np.array_equal(getattr(a, name), getattr(b, name))


def test_draw_sources_move_to_a_device():
    arch = Architecture(6, (8,), 1)
    source = ThetaDraws(torch.zeros(2, arch.n_params), arch, get_likelihood("single"))
    assert source.to(torch.device("cpu")).thetas.device.type == "cpu"


def test_the_device_parameter_is_checked_as_written():
    assert checked_parameters({"device": "CUDA:1"})["device"] == "cuda:1"
    with pytest.raises(BnnlibError, match=r"parameter device = 'gpu' is not a device; use auto, cpu, cuda or cuda:N"):
        checked_parameters({"device": "gpu"})


def test_provenance_shows_the_device():
    table = provenance({}, dataset_fingerprint="f", started=0.0, now=1.0, device="cuda:0 (Some GPU)")
    assert table.loc[("run", "device"), "value"] == "cuda:0 (Some GPU)"


@pytest.mark.parametrize("command", [["run", "data", "--profile", "quick", "--no-build"], ["book", "--profile", "quick"]])
def test_the_command_line_refuses_a_gpu_it_cannot_see_in_one_line(no_cuda, capsys, command):
    assert cli.main([*command, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bnnlib: error: device 'cuda' was asked for, but torch sees no CUDA GPU")
    assert "\n" not in err
    assert cli.main([*command, "--device", "cuda:x"]) == 2
    assert "is not a device setting" in capsys.readouterr().err
