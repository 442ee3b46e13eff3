"""`bnnlib bench`: how fast the engine trains, draws and scores, against the machine's ceiling.

It measures, side by side in one run on random Numerai-shaped data (38 features on 5 levels,
eras of equal size): an epoch of the baseline MLP and of the BNN's SVI (same rows, batches and
architecture; the SVI in float32 and in bf16); S posterior draws over the validation rows, in
float32 and bf16, predictions alone and with scoring;
the same draws through `pyro.infer.Predictive`; and a large matrix product, in float32 and in
bf16, as the practical ceiling of each precision. Nothing here is a test: tests never time anything.

Efficiency is achieved GFLOP/s over that ceiling, measured in the same run (so a machine that is
busy with something else lowers both): FLOPs are 2 per multiply-add; an epoch of training is
counted as three forward passes over its rows (the forward pass, and a backward pass of about
twice its products), `3 * 2 * macs_per_row * train_rows`, which ignores the SVI's sampling of the
weights and its KL (so a BNN's efficiency is a lower bound of its products' speed); the
1000-draw forward pass is `2 * macs_per_row * validation_rows * draws`. The bf16 figures are
over the bf16 ceiling: where the CPU has no native bf16 that ceiling is itself emulated.
"""

from __future__ import annotations

import json
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyro
import torch

from bnnlib.errors import unknown_name
from bnnlib.models.baseline import TrainConfig, train_mlp
from bnnlib.models.bnn import BayesianMLP, SVIConfig, fit_bnn
from bnnlib.models.likelihoods import get_likelihood
from bnnlib.models.network import Architecture, forward
from bnnlib.models.precision import PRECISIONS
from bnnlib.models.training import seed_everything
from bnnlib.evaluate.predictive import EraLayout, ThetaDraws, draw_chunk, input_dtype, score_draws
from bnnlib.bench.scale import run_v5


@dataclass(frozen=True)
class Scale:
    train_rows: int
    validation_rows: int
    eras: int
    pyro_draws: int  # draws timed through pyro's Predictive (extrapolated linearly to all draws)


SCALES = {
    "small": Scale(200_000, 105 * 1_000, 105, 1000),
    "v3": Scale(2_412_105, 539_658, 105, 50),
}
N_FEATURES = 38


def numerai_like(rows: int, eras: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Random features and a target on Numerai's 5 levels, rows split evenly into eras."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.integers(0, 5, (rows, N_FEATURES), dtype=np.int8).astype(np.float32) / 4)
    levels = np.array([0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32)
    y = torch.from_numpy(rng.choice(levels, rows, p=[0.05, 0.2, 0.5, 0.2, 0.05]).astype(np.float32))
    era = (np.arange(rows) * eras // rows).astype(np.int32)
    return x, y, np.char.zfill(era.astype(str), 4)


def matmul_gflops(size: int = 4096, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a square matrix product (2 size^3 FLOPs) in `dtype`: the practical ceiling."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def epoch_seconds(x: torch.Tensor, y: torch.Tensor, arch: Architecture, epochs: int = 3) -> tuple[float, float, float]:
    """Median epoch time of the baseline, and of the BNN (normal prior) in float32 and in bf16,
    on the same data and batches."""
    mlp = train_mlp(x, y, arch, TrainConfig(epochs=epochs), progress=False)
    bnn = {precision: fit_bnn(x, y.unsqueeze(1), arch, get_likelihood("single"), "normal",
                              SVIConfig(epochs=epochs, precision=precision), progress=False)
           for precision in PRECISIONS}
    return (float(np.median(mlp.history["epoch_seconds"])),
            *(float(np.median(np.diff([0.0, *bnn[p].history["seconds"]]))) for p in PRECISIONS))


def predict_all(source: ThetaDraws, x: torch.Tensor, eras: np.ndarray, widest: int) -> float:
    """Seconds to push every draw through every row, a group of eras at a time as scoring does
    (`bnnlib.evaluate.predictive.ROW_GROUP`), keeping only a running sum."""
    layout = EraLayout.of(eras)
    x = x.to(input_dtype(source))
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    started = time.perf_counter()
    with torch.inference_mode():
        for group in layout.groups():
            rows = torch.from_numpy(layout.rows(group))
            x_group = x[rows]
            step = draw_chunk(len(rows), widest)
            for start in range(0, source.n_draws, step):
                total[rows] += source.predict(x_group, slice(start, start + step)).sum(0)
    return time.perf_counter() - started


def pyro_predictive_seconds(net: BayesianMLP, x: torch.Tensor, draws: int) -> float:
    """The same draws through pyro.infer.Predictive (a Python loop over draws)."""

    def model(x):
        theta = pyro.sample("theta", net.prior)
        layers, head = net.split(theta)
        pyro.deterministic("mean", net.likelihood.main_mean(forward(x, layers), head))

    def guide(x):
        net.guide(x, None, None, None)

    predictive = pyro.infer.Predictive(model, guide=guide, num_samples=draws, return_sites=("mean",))
    started = time.perf_counter()
    with torch.no_grad():
        predictive(x)
    return time.perf_counter() - started


def run_benchmark(scale: str = "small", out: Path = Path("_build/bench.json"), draws: int = 1000,
                  seed: int = 0) -> dict:
    """Measure, print a table, write JSON; returns the figures. Scale v5 measures the stages of
    a run at v5's size instead (bnnlib.bench.scale)."""
    if scale == "v5":

        return _write(run_v5(Path(out), draws, seed), Path(out))
    if scale not in SCALES:
        raise unknown_name("scale", scale, [*SCALES, "v5"])
    size = SCALES[scale]
    seed_everything(seed)
    arch = Architecture(N_FEATURES)
    x, y, _ = numerai_like(size.train_rows, 574, seed)
    mlp_epoch, bnn_epoch, bnn_epoch_bf16 = epoch_seconds(x, y, arch)
    del x, y

    xv, yv, eras = numerai_like(size.validation_rows, size.eras, seed + 1)
    generator = torch.Generator().manual_seed(seed)
    likelihood = get_likelihood("single")
    net = BayesianMLP(arch, likelihood, "normal", 1e-2, torch.tensor([0.22]), generator)
    posterior = net.posterior()
    source = ThetaDraws(posterior.sample(draws, generator), arch, likelihood)
    widest = max(arch.hidden)
    predictive_s = predict_all(source, xv, eras, widest)
    source_bf16 = ThetaDraws(source.thetas, arch, likelihood, "bf16")
    predictive_bf16_s = predict_all(source_bf16, xv, eras, widest)
    with torch.inference_mode():
        block = slice(0, min(len(xv), 5_000))
        agreement = float(np.corrcoef(source.predict(xv[block], slice(0, 8)).flatten().numpy(),
                                      source_bf16.predict(xv[block], slice(0, 8)).flatten().numpy())[0, 1])
    started = time.perf_counter()
    score_draws(source, xv, yv.numpy(), eras, pd.RangeIndex(len(yv)), widest, progress=False)
    scoring_s = time.perf_counter() - started
    pyro_draws = min(draws, size.pyro_draws)
    pyro_s = pyro_predictive_seconds(net, xv, pyro_draws) * draws / pyro_draws
    ceiling = matmul_gflops()
    ceiling_bf16 = matmul_gflops(dtype=torch.bfloat16)
    flops = 2.0 * arch.macs_per_row * size.validation_rows * draws
    epoch_flops = 3 * 2.0 * arch.macs_per_row * size.train_rows
    efficiency = {
        "matmul_float32_gflops": ceiling,
        "matmul_bf16_gflops": ceiling_bf16,
        "fit_float32_gflops": epoch_flops / bnn_epoch / 1e9,
        "fit_float32_over_peak": epoch_flops / bnn_epoch / 1e9 / ceiling,
        "fit_bf16_gflops": epoch_flops / bnn_epoch_bf16 / 1e9,
        "fit_bf16_over_peak": epoch_flops / bnn_epoch_bf16 / 1e9 / ceiling_bf16,
        "baseline_fit_float32_over_peak": epoch_flops / mlp_epoch / 1e9 / ceiling,
        "draws_float32_gflops": flops / predictive_s / 1e9,
        "draws_float32_over_peak": flops / predictive_s / 1e9 / ceiling,
        "draws_bf16_gflops": flops / predictive_bf16_s / 1e9,
        "draws_bf16_over_peak": flops / predictive_bf16_s / 1e9 / ceiling_bf16,
    }
    figures = {
        "scale": scale,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "mlp_epoch_s": mlp_epoch,
        "bnn_epoch_s": bnn_epoch,
        "epoch_ratio": bnn_epoch / mlp_epoch,
        "bnn_epoch_bf16_s": bnn_epoch_bf16,
        "bf16_epoch_speedup": bnn_epoch / bnn_epoch_bf16,
        "train_rows": size.train_rows,
        "draws": draws,
        "rows": size.validation_rows,
        "predictive_s": predictive_s,
        "predictive_gflops": flops / predictive_s / 1e9,
        "matmul_gflops": ceiling,
        "predictive_efficiency": flops / predictive_s / 1e9 / ceiling,
        "predictive_bf16_s": predictive_bf16_s,
        "predictive_bf16_gflops": flops / predictive_bf16_s / 1e9,
        "bf16_predictive_speedup": predictive_s / predictive_bf16_s,
        "bf16_float32_prediction_corr": agreement,
        "scoring_s": scoring_s,
        "scoring_overhead": scoring_s / predictive_s,
        "pyro_predictive_s": pyro_s,
        "pyro_predictive_draws_timed": pyro_draws,
        "predictive_speedup_vs_pyro": pyro_s / predictive_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "efficiency": efficiency,
    }
    return _write(figures, Path(out))


def _write(figures: dict, out: Path) -> dict:
    """Write the figures as JSON (atomically) and print them, one per line."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_suffix(".json.tmp")
    temp.write_text(json.dumps(figures, indent=2) + "\n")
    temp.replace(out)
    flat = dict(_flatten(figures))
    width = max(map(len, flat))
    for key, value in flat.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(f"wrote {out}")
    return figures


def _flatten(figures: dict, prefix: str = ""):
    """(dotted key, value) of nested figures, for printing."""
    for key, value in figures.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
