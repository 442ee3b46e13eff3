"""Drawing S predictions per row and scoring them, vectorised over draws and streamed over rows.

`pyro.infer.Predictive` loops over draws in Python and would hold draws x rows x hidden units at
once; here every model, Bayesian or not, is a `DrawSource` that predicts a chunk of draws for a
block of rows in batched matrix products, and `score_draws` walks the validation set one era at a
time, a chunk of draws at a time, keeping only running sums per row and one score per draw and era.
Memory is bounded by the chunk, whatever the number of draws and rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from bnnlib.scoring.metrics import draws_era_scores, score_summaries
from bnnlib.models.baseline import dropout_mask_
from bnnlib.models.device import resolve_device
from bnnlib.models.likelihoods import Likelihood
from bnnlib.models.network import Architecture, forward_draws, unflatten
from bnnlib.models.precision import compute_dtype

CHUNK_BYTES_PER_THREAD = 2**20
"""Activation memory a chunk of draws x rows may use, per torch thread. Batched products run
fastest when a chunk's activations stay near the cores' caches. On the 2-core machine (512 KiB
of L2 a core), one 1-thread worker ran the 128-64-64 network at ~60 GFLOP/s with one draw
of 1,500 rows a chunk (0.75 MiB) against ~45 with five (3.8 MiB); with 2 threads, 48 MiB
chunks had run at 34 GFLOP/s against ~90 for 2-4 MiB."""

GPU_CHUNK_BYTES = 256 * 2**20
"""Activation memory a chunk may use on a GPU, where large batched products run best (an
assumption: no GPU was measured here; CPU sizes would leave a GPU mostly idle)."""

SCORE_BYTES = 8 * 2**20
"""Predictions ranked together: the few draws of one prediction chunk are gathered into
batches of about this size before scoring, so the per-call cost of ranking is paid per
batch, not per chunk (at Numerai's ~5,000 rows an era a chunk holds one or two draws)."""


class DrawSource(Protocol):
    """Anything that gives S predictions of the main target per row."""

    n_draws: int

    def predict(self, x: torch.Tensor, draws: slice, block: int = 0) -> torch.Tensor:
        """Predictions [len(draws), n] of draws `draws` for the rows x [n, features]; `block`
        numbers the row block, for sources whose draws are random per row (MC dropout)."""


@dataclass
class ThetaDraws:
    """Draws given as a stack of parameter vectors: posterior samples, ensemble members, or one net."""

    thetas: torch.Tensor  # [S, P]
    arch: Architecture
    likelihood: Likelihood
    precision: str = "float32"  # the hidden layers' products (bnnlib.models.precision)

    @property
    def n_draws(self) -> int:
        return self.thetas.shape[0]

    def predict(self, x: torch.Tensor, draws: slice, block: int = 0) -> torch.Tensor:
        theta = self.thetas[draws]
        p = self.arch.n_params
        layers = unflatten(theta[:, :p], self.arch)
        a, c = self.likelihood.main_weights(theta[:, p:])  # the main mean, folded into the last layer
        weight, bias = layers[-1]
        layers[-1] = (weight @ a.unsqueeze(-1), (bias * a).sum(-1, keepdim=True) + c.unsqueeze(-1))
        return forward_draws(x, layers, compute_dtype(self.precision))[..., 0]

    def outputs(self, x: torch.Tensor, draws: slice, block: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Every output of the draws' networks [len(draws), n, n_outputs] and their head
        parameters [len(draws), H]: what the means and the noise are computed from."""
        theta = self.thetas[draws]
        p = self.arch.n_params
        return forward_draws(x, unflatten(theta[:, :p], self.arch), compute_dtype(self.precision)), theta[:, p:]

    def to(self, device: torch.device) -> "ThetaDraws":
        """The same draws with their parameters on `device` (moved once, not per chunk)."""
        return dataclasses.replace(self, thetas=self.thetas.to(device))


@dataclass
class DropoutDraws:
    """MC dropout: each draw is one stochastic forward pass of a network trained with dropout.

    Each draw's masks come from a CPU generator seeded by (seed, block, draw), moved to the rows'
    device, so a draw is the same on every device and however the draws are chunked or split
    over workers."""

    theta: torch.Tensor
    arch: Architecture
    p: float
    n_draws: int
    seed: int = 0

    def predict(self, x: torch.Tensor, draws: slice, block: int = 0) -> torch.Tensor:
        return self.outputs(x, draws, block)[0][..., 0]

    def outputs(self, x: torch.Tensor, draws: slice, block: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Every output of the draws' passes [len(draws), n, n_outputs], and no head parameters."""
        start, stop, _ = draws.indices(self.n_draws)
        generators = [torch.Generator().manual_seed(hash((self.seed, block, d)) % 2**63) for d in range(start, stop)]
        h = x.unsqueeze(0).expand(stop - start, -1, -1)
        layers = unflatten(self.theta, self.arch)
        for i, (weight, bias) in enumerate(layers):
            h = torch.matmul(h, weight) + bias
            if i < len(layers) - 1:
                keep = torch.empty(h.shape)
                for uniform, generator in zip(keep, generators):
                    uniform.uniform_(generator=generator)
                h = h.clamp_(min=0.0).mul_(dropout_mask_(keep.to(h.device), self.p))
        return h, h.new_zeros(stop - start, 0)

    def to(self, device: torch.device) -> "DropoutDraws":
        return dataclasses.replace(self, theta=self.theta.to(device))


@dataclass
class DrawScores:
    """What scoring S draws on a validation set leaves: enough for every study of the book."""

    ids: pd.Index
    eras: np.ndarray  # era of each row, in `ids` order
    ensemble: np.ndarray  # mean prediction over draws, per row
    std: np.ndarray  # standard deviation of the predictions over draws, per row
    era_names: list[str]
    draw_corr: np.ndarray  # [S, E] 2021 corr of each draw in each era
    draw_numerai_corr: np.ndarray  # [S, E] numerai_corr of each draw in each era

    @property
    def n_draws(self) -> int:
        return self.draw_corr.shape[0]

    def predictions(self) -> pd.DataFrame:
        """The ensemble's predictions as a Numerai user reads them: index id, era, prediction."""
        return pd.DataFrame({"era": self.eras, "prediction": self.ensemble}, index=self.ids)

    def era_std(self) -> pd.Series:
        """Mean predictive std within each era: the talk's burn-era detector."""
        return pd.Series(self.std).groupby(self.eras).mean()

    def draw_summary(self, kind: str = "corr") -> pd.DataFrame:
        """Per draw: the summary (mean, std, Sharpe, drawdown, ...) of its per-era score."""
        return score_summaries(self.draw_corr if kind == "corr" else self.draw_numerai_corr)


def input_dtype(source) -> torch.dtype:
    """The dtype a source's rows are cast to once, not per chunk: bf16 for draws whose hidden
    layers run in bf16 (the 5-level features are exact in it), else float32."""
    return compute_dtype(getattr(source, "precision", "float32"))


def draw_chunk(n_rows: int, widest: int, chunk_bytes: int | None = None, device: str = "cpu") -> int:
    """How many draws to push through together for a block of n_rows rows."""
    if chunk_bytes is None:
        gpu = torch.device(device).type == "cuda"
        chunk_bytes = GPU_CHUNK_BYTES if gpu else CHUNK_BYTES_PER_THREAD * torch.get_num_threads()
    return max(1, chunk_bytes // max(1, n_rows * widest * 4))


def score_batch(n_rows: int, step: int, score_bytes: int | None = None, device: str = "cpu") -> int:
    """How many draws to rank together: a whole number of prediction chunks of `step` draws."""
    if score_bytes is None:
        score_bytes = GPU_CHUNK_BYTES if torch.device(device).type == "cuda" else SCORE_BYTES
    return step * max(1, score_bytes // max(1, n_rows * step * 4))


ROW_GROUP = 16_384
"""Validation rows predicted together: whole eras, grouped until a group holds this many rows,
then scored era by era. A product's throughput grows with its rows: oneDNN's fused bf16 layers
of the 128-64-64 network ran at 233 GFLOP/s on one core for one era of 1,500 rows against 398
for 16,384 rows (float32: ~100 either way). Grouping changes which rows share a block, hence MC
dropout's masks, so `split_variance` groups the same way."""


DRAW_RANGE = 250
"""Draws scored as one unit of work. Scoring splits into ranges of this many draws whose partial
sums combine exactly (`combine_partials`), so a cluster can score one model's ranges on many
workers and get the very bits one process gets: a draw's scores depend on that draw alone, and
the per-row sums are accumulated draw by draw within a range, then range by range in order.
It is a constant, not a setting: a different size sums in another order."""


def draw_ranges(n_draws: int) -> list[tuple[int, int]]:
    """The [start, stop) ranges that scoring `n_draws` draws splits into."""
    size = DRAW_RANGE
    return [(start, min(start + size, n_draws)) for start in range(0, n_draws, size)]


@dataclass
class PartialScores:
    """What scoring one range of draws leaves: per-row sums and per-draw scores of those draws."""

    draws: tuple[int, int]  # [start, stop)
    total: np.ndarray  # float64 sum over the range's draws of each row's prediction
    total_sq: np.ndarray  # float64 sum of the squared predictions
    draw_corr: np.ndarray  # [stop - start, E]
    draw_numerai_corr: np.ndarray  # [stop - start, E]

    def as_dict(self) -> dict:
        """The arrays the cache stores."""
        return {"draws": np.asarray(self.draws), "total": self.total, "total_sq": self.total_sq,
                "draw_corr": self.draw_corr, "draw_numerai_corr": self.draw_numerai_corr}

    @classmethod
    def from_dict(cls, stored: dict) -> "PartialScores":
        start, stop = (int(v) for v in stored["draws"])
        return cls((start, stop), stored["total"], stored["total_sq"], stored["draw_corr"],
                   stored["draw_numerai_corr"])


@dataclass(frozen=True)
class EraLayout:
    """The validation rows grouped by era: scoring walks one era at a time."""

    names: np.ndarray
    order: np.ndarray  # row indices sorted by era
    bounds: np.ndarray  # era e's rows are order[bounds[e]:bounds[e + 1]]

    @classmethod
    def of(cls, eras: np.ndarray) -> "EraLayout":
        names, era_of_row = np.unique(np.asarray(eras), return_inverse=True)
        order = np.argsort(era_of_row, kind="stable")
        return cls(names, order, np.searchsorted(era_of_row[order], np.arange(len(names) + 1)))

    def groups(self, min_rows: int = ROW_GROUP) -> list[range]:
        """Consecutive eras, grouped until each group holds at least `min_rows` rows (the last
        group may hold fewer): the units that are predicted together."""
        groups, first = [], 0
        for e in range(len(self.names)):
            if self.bounds[e + 1] - self.bounds[first] >= min_rows:
                groups.append(range(first, e + 1))
                first = e + 1
        if first < len(self.names):
            groups.append(range(first, len(self.names)))
        return groups

    def rows(self, group: range) -> np.ndarray:
        """The row indices of a group of eras, era by era."""
        return self.order[self.bounds[group.start] : self.bounds[group.stop]]


def score_draw_range(source: DrawSource, x: torch.Tensor, target: np.ndarray, eras: np.ndarray,
                     draws: tuple[int, int], widest: int = 128, progress: bool | None = None,
                     device: str | torch.device = "cpu") -> PartialScores:
    """Predict draws [start, stop) on every row, a group of eras at a time (`ROW_GROUP`), and
    score each draw per era.

    The rows and the draws' parameters move once to `device`; predictions, ranks and per-era
    scores stay there, and only per-era scores and per-row sums come back to the CPU. The per-row
    sums add one draw at a time, in draw order, so they do not depend on how draws are chunked."""
    device = resolve_device(device)
    x = x.to(device, input_dtype(source))
    if device.type != "cpu" and hasattr(source, "to"):
        source = source.to(device)
    target = np.asarray(target, dtype=np.float32)
    layout = EraLayout.of(eras)
    start, stop = draws
    if not 0 <= start < stop <= source.n_draws:
        raise ValueError(f"draws {draws} are not a range of the source's {source.n_draws} draws")
    total = np.zeros(len(target))
    total_sq = np.zeros(len(target))
    corr = np.zeros((stop - start, len(layout.names)), dtype=np.float32)
    ncorr = np.zeros_like(corr)
    groups = layout.groups()
    bar = tqdm(groups, desc="scoring eras", unit="group",
               disable=None if progress is None else not progress, leave=False)
    with torch.inference_mode():
        for g, group in enumerate(bar):
            rows = layout.rows(group)
            offset = layout.bounds[group.start]
            x_group = x[torch.from_numpy(rows).to(device)]
            t_group = torch.from_numpy(target[rows])
            step = draw_chunk(len(rows), widest, device=device)
            batch = score_batch(len(rows), step, device=device)
            preds = torch.empty(min(batch, stop - start), len(rows), device=device)
            group_total = torch.zeros(len(rows), dtype=torch.float64, device=device)
            group_total_sq = torch.zeros_like(group_total)
            for first in range(start, stop, batch):
                last = min(first + batch, stop)
                for chunk in range(first, last, step):
                    end = min(chunk + step, last)
                    preds[chunk - first : end - first] = source.predict(x_group, slice(chunk, end), block=g)
                block = preds[: last - first]
                for e in group:
                    cols = slice(layout.bounds[e] - offset, layout.bounds[e + 1] - offset)
                    draw_corr, draw_ncorr = draws_era_scores(block[:, cols], t_group[cols], layout.names[e])
                    corr[first - start : last - start, e] = draw_corr.cpu().numpy()
                    ncorr[first - start : last - start, e] = draw_ncorr.cpu().numpy()
                for prediction in block.double():  # draw by draw: the same sums however draws are batched
                    group_total += prediction
                    group_total_sq += prediction * prediction
            total[rows], total_sq[rows] = group_total.cpu().numpy(), group_total_sq.cpu().numpy()
    return PartialScores((start, stop), total, total_sq, corr, ncorr)


def combine_partials(partials: list[PartialScores], ids: pd.Index, eras: np.ndarray) -> DrawScores:
    """The scores of all draws from the partial scores of consecutive ranges covering them:
    the per-row sums added range after range, in draw order, the per-draw scores stacked."""
    partials = sorted(partials, key=lambda p: p.draws)
    covered = [p.draws for p in partials]
    if not covered or covered[0][0] != 0 or any(a[1] != b[0] for a, b in zip(covered, covered[1:])):
        raise ValueError(f"partial scores must cover consecutive draw ranges from 0, got {covered}")
    n_draws = covered[-1][1]
    total, total_sq = np.zeros_like(partials[0].total), np.zeros_like(partials[0].total_sq)
    for partial in partials:
        total += partial.total
        total_sq += partial.total_sq
    mean = total / n_draws
    std = np.sqrt(np.maximum(total_sq / n_draws - mean * mean, 0.0))
    era_names = [str(e) for e in EraLayout.of(eras).names]
    return DrawScores(ids, np.asarray(eras), mean, std, era_names,
                      np.concatenate([p.draw_corr for p in partials]),
                      np.concatenate([p.draw_numerai_corr for p in partials]))


def score_draws(source: DrawSource, x: torch.Tensor, target: np.ndarray, eras: np.ndarray, ids: pd.Index,
                widest: int = 128, progress: bool | None = None, device: str | torch.device = "cpu") -> DrawScores:
    """Every draw scored, range after range (`DRAW_RANGE`): the same numbers as scoring the
    ranges on separate workers and combining them."""
    partials = [score_draw_range(source, x, target, eras, draws, widest, progress, device)
                for draws in draw_ranges(source.n_draws)]
    return combine_partials(partials, ids, eras)


# --------------------------------------------------------------------------- epistemic and aleatoric


@dataclass
class NoisyDraws:
    """Draws with their noise: each draw's main mean and noise std per row.

    `sigma` is the fit's learned noise scales [n_sigmas], or one row of them per draw [S, n_sigmas]
    (an ensemble's members): the noise std itself for a homoscedastic likelihood, the scale of
    the per-row noise for a heteroscedastic one."""

    source: ThetaDraws | DropoutDraws
    likelihood: Likelihood
    sigma: torch.Tensor

    @property
    def n_draws(self) -> int:
        return self.source.n_draws

    def mean_and_noise(self, x: torch.Tensor, draws: slice, block: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The main target's mean and noise std, each [len(draws), n]."""
        out, head = self.source.outputs(x, draws, block)
        mean = self.likelihood.main_mean(out, head)
        sigma = self.sigma.to(out.device)
        sigma = sigma[draws] if sigma.dim() == 2 else sigma.unsqueeze(0)
        scales = sigma[:, list(self.likelihood.sigma_index)].unsqueeze(-2)  # [S or 1, 1, T]
        return mean, self.likelihood.noise_scales(out, scales)[..., 0].expand_as(mean)

    def to(self, device: torch.device) -> "NoisyDraws":
        return dataclasses.replace(self, source=self.source.to(device), sigma=self.sigma.to(device))


@dataclass
class VarianceSplit:
    """The predictive variance of the main target per row, split by the law of total variance:
    Var(y) = Var_draws(mean) (epistemic: the draws disagree) + E_draws(sigma(x)^2) (aleatoric:
    the noise each draw expects)."""

    ids: pd.Index
    eras: np.ndarray
    mean: np.ndarray  # the predictive mean (the mean over draws of the main mean)
    epistemic: np.ndarray  # variance over draws of the main mean (over S, not S - 1)
    aleatoric: np.ndarray  # mean over draws of the noise variance

    @property
    def total(self) -> np.ndarray:
        return self.epistemic + self.aleatoric

    def frame(self) -> pd.DataFrame:
        """Per row: era, mean, epistemic, aleatoric, total; index id."""
        return pd.DataFrame({"era": self.eras, "mean": self.mean, "epistemic": self.epistemic,
                             "aleatoric": self.aleatoric, "total": self.total}, index=self.ids)

    def per_era(self) -> pd.DataFrame:
        """Per era (index era): the mean over its rows of the epistemic, aleatoric and total variance."""
        return self.frame().drop(columns="mean").groupby("era").mean()


def split_variance(source: NoisyDraws, x: torch.Tensor, eras: np.ndarray, ids: pd.Index, widest: int = 128,
                   device: str | torch.device = "cpu") -> VarianceSplit:
    """Every draw's mean and noise on every row, one group of eras and one chunk of draws at a
    time (the groups `score_draws` uses, so MC dropout draws the same masks), keeping running sums per row:
    memory is bounded by the chunk whatever the number of draws and rows."""
    device = resolve_device(device)
    x = x.to(device, input_dtype(source.source))
    if device.type != "cpu":
        source = source.to(device)
    eras = np.asarray(eras)
    layout = EraLayout.of(eras)
    sums = np.zeros((3, len(eras)))  # sum of means, of squared means, of noise variances
    with torch.inference_mode():
        for g, group in enumerate(layout.groups()):
            rows = layout.rows(group)
            x_group = x[torch.from_numpy(rows).to(device)]
            step = draw_chunk(len(rows), widest, device=device)
            for start in range(0, source.n_draws, step):
                mean, noise = source.mean_and_noise(x_group, slice(start, min(start + step, source.n_draws)), block=g)
                mean, noise = mean.double(), noise.double()
                sums[:, rows] += torch.stack([mean.sum(0), (mean * mean).sum(0), (noise * noise).sum(0)]).cpu().numpy()
    mean, mean_sq, noise_var = sums / source.n_draws
    return VarianceSplit(ids, eras, mean, np.maximum(mean_sq - mean * mean, 0.0), noise_var)
