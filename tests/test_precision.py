"""bf16 products: where they are used, predictions and fits stay close to float32's."""

import numpy as np
import pytest
import torch

from bnnlib.errors import BnnlibError
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.bnn import SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture, forward_draws, he_init, unflatten
from bnnlib.models.precision import resolve_precision
from bnnlib.evaluate.study import ModelSpec


def test_auto_resolves_to_a_concrete_precision_and_bad_names_are_refused():
    assert resolve_precision("auto") in ("float32", "bf16")
    assert resolve_precision("BF16") == "bf16"
    with pytest.raises(BnnlibError, match="unknown precision 'fp8'.*'bf16'.*'float32'"):
        resolve_precision("fp8")
    assert ModelSpec("x", precision="auto").precision in ("float32", "bf16")  # the cache key is concrete
    assert ModelSpec("b", method="baseline", precision="bf16").precision == "bf16"  # point nets too
    assert ModelSpec("b", method="baseline", precision="auto").precision in ("float32", "bf16")


def test_bf16_hidden_layers_keep_float32_outputs_and_predictions():
    gen = torch.Generator().manual_seed(0)
    arch = Architecture(38, (128, 64, 64), 1)
    thetas = torch.stack([he_init(arch, gen) for _ in range(4)])
    x = torch.randint(0, 5, (500, 38), generator=gen).float() / 4
    exact = forward_draws(x, unflatten(thetas, arch))
    reduced = forward_draws(x, unflatten(thetas, arch), torch.bfloat16)
    assert reduced.dtype == torch.float32
    for a, b in zip(exact[..., 0], reduced[..., 0]):
        assert np.corrcoef(a.numpy(), b.numpy())[0, 1] > 0.9999
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
    assert torch.allclose(fused, plain, atol=2e-2 * float(plain.abs().max()))
