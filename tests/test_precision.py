"""bf16 products: where they are used, predictions and fits stay close to float32's."""

import numpy as np
import pytest
import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture, forward_draws, he_init, unflatten
from bnnlib.models import precision
from bnnlib.models.precision import resolve_precision
from bnnlib.evaluate.study import ModelSpec


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_multiplies_bf16_natively(monkeypatch, native):
    """The capability probe decides, both ways: bf16 on a CPU with native bf16, else float32; and
    a model's spec holds the concrete precision (it keys the cache)."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    expected = "bf16" if native else "float32"
    assert resolve_precision("auto") == resolve_precision("AUTO", "cpu") == expected
    assert ModelSpec("x", precision="auto").precision == expected
    assert ModelSpec("b", method="baseline", precision="auto").precision == expected  # point nets too
    assert ModelSpec("b", method="baseline", precision="bf16").precision == "bf16"
    assert resolve_precision("BF16") == "bf16" and resolve_precision("float32") == "float32"  # asked for: as asked
    with pytest.raises(BnnlibError, match="unknown precision 'fp8'.*'bf16'.*'float32'"):
        resolve_precision("fp8")


@pytest.mark.parametrize("gpu_bf16", [True, False])
def test_auto_on_a_gpu_follows_the_gpu_not_the_cpu(monkeypatch, gpu_bf16):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: not gpu_bf16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: gpu_bf16)
    expected = "bf16" if gpu_bf16 else "float32"
    assert resolve_precision("auto", "cuda:0") == resolve_precision("auto", "auto") == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no GPU: 'auto' is the CPU's answer
    assert resolve_precision("auto", "auto") == ("float32" if gpu_bf16 else "bf16")
    assert resolve_precision("auto", "cuda") == "float32"


@pytest.mark.parametrize(("flags", "native"), [("fpu sse avx2 fma", False), ("avx512f avx512bw", False),
                                               ("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True)])
def test_native_bf16_is_read_from_the_cpus_flags(monkeypatch, flags, native):
    from types import SimpleNamespace

    monkeypatch.setattr(precision, "Path", lambda path: SimpleNamespace(read_text=lambda: f"flags\t\t: {flags}\n"))
    assert precision.cpu_has_native_bf16.__wrapped__() is native  # the cached function's own body


def test_bf16_hidden_layers_keep_float32_outputs_and_predictions():
    gen = torch.Generator().manual_seed(0)
    arch = Architecture(38, (128, 64, 64), 1)
    thetas = torch.stack([he_init(arch, gen) for _ in range(4)])
    x = torch.randint(0, 5, (500, 38), generator=gen).float() / 4
    exact = forward_draws(x, unflatten(thetas, arch))
    reduced = forward_draws(x, unflatten(thetas, arch), torch.bfloat16)
    assert reduced.dtype == torch.float32
    # bf16 rounds each hidden layer's weights and the activations it passes on: 2 x 3 roundings of
    # at most u = eps_bf16 / 2 of an output's scale, so its relative error r <= 3 eps_bf16 and,
    # the error being unrelated to the output, 1 - corr ~ r^2 / 2 (2.7e-4; measured 3-6e-5)
    r = 3 * torch.finfo(torch.bfloat16).eps
    for a, b in zip(exact[..., 0], reduced[..., 0]):
        assert 1 - np.corrcoef(a.numpy(), b.numpy())[0, 1] < r**2 / 2
    assert len(torch.unique(reduced[0])) > 490  # float32 resolution: ranks are not tied by rounding
    linear = Architecture(38, (), 1)  # no hidden layer: all float32
    theta = he_init(linear, gen).unsqueeze(0)
    assert torch.equal(forward_draws(x, unflatten(theta, linear)), forward_draws(x, unflatten(theta, linear), torch.bfloat16))


def test_a_bf16_fit_lands_near_the_float32_fit():
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 5, (4000, 8), generator=gen).float() / 4
    y = (x[:, :1] - 0.5) * 0.3 + 0.2 * torch.randn(4000, 1, generator=gen) + 0.5
    arch = Architecture(8, (16,), 1)
    fits = {p: fit_bnn(x, y, arch, get_likelihood("single"), "normal",
                       SVIConfig(epochs=30, batch_size=256, lr=1e-2, seed=0, precision=p), progress=False)
            for p in ("float32", "bf16")}
    a, b = fits["float32"], fits["bf16"]
    assert abs(a.history["elbo_per_row"][-1] - b.history["elbo_per_row"][-1]) < 0.01
    assert abs(float(a.scale.median()) / float(b.scale.median()) - 1) < 0.1


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_bf16_point_network_trains_like_the_float32_one(dropout):
    """The same seed and batches in both precisions: the fits end close, and both learn."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 5, (4000, 8), generator=gen).float() / 4
    y = (x[:, 0] - 0.5) * 0.6 + 0.2 * torch.randn(4000, generator=gen) + 0.5
    arch = Architecture(8, (16, 8), 1)
    fits = {p: train_mlp(x, y, arch, TrainConfig(epochs=10, batch_size=256, lr=1e-2, dropout=dropout, precision=p),
                         progress=False) for p in ("float32", "bf16")}
    a, b = fits["float32"], fits["bf16"]
    assert not torch.equal(a.theta, b.theta)  # bf16 did run
    start = float(torch.var(y))
    for fit in (a, b):
        assert fit.history["train_mse"][-1] < 0.7 * start
    assert abs(a.history["train_mse"][-1] / b.history["train_mse"][-1] - 1) < 0.02


def test_fused_and_plain_bf16_paths_agree(monkeypatch):
    """Where oneDNN's fused linear + ReLU is missing, the batched bf16 path gives the same draws."""
    from bnnlib.models import network

    gen = torch.Generator().manual_seed(2)
    arch = Architecture(38, (16, 8), 1)
    thetas = torch.stack([he_init(arch, gen) for _ in range(3)])
    x = torch.randint(0, 5, (200, 38), generator=gen).float() / 4
    fused = forward_draws(x, unflatten(thetas, arch), torch.bfloat16)
    monkeypatch.setattr(network, "fused_linear_relu_available", lambda: False)
    plain = forward_draws(x, unflatten(thetas, arch), torch.bfloat16)
    assert fused.shape == plain.shape == (3, 200, 1)
    # each path is within 4 roundings of u = eps_bf16 / 2 (two hidden layers' weights and the
    # activations they pass on), 2 eps_bf16, of the output's scale from the exact outputs: the two
    # paths are at most 4 eps_bf16 apart
    tolerance = 2 * 2 * torch.finfo(torch.bfloat16).eps * float(plain.abs().max())
    assert torch.allclose(fused, plain, rtol=0, atol=tolerance)
