"""Per-era scores of many posterior draws at once, vectorised over draws.

The posterior engine draws S predictions per row and streams the rows era by era, so each
call here scores one era's block `preds` [S, n] against its `target` [n] and returns one
score per draw [S]; the per-era scores of all eras then summarise per draw with
`bnnlib.scoring.metrics.score_summaries` into a distribution of corr mean, Sharpe and drawdown.

The results equal bnnlib.scoring.metrics.era_corr / era_numerai_corr applied draw by draw:
- corr (2021): ranks with ties broken by order of appearance (pandas method="first");
  a draw constant within the era therefore still gets the corr of the row order with the
  target, exactly as the pandas score does.
- numerai_corr: ties averaged, gaussianised, power 1.5; a draw constant within the era has
  all its gaussianised ranks equal to 0 and scores 0 (no ranking, nothing earned).
Rows whose target is NaN are dropped before ranking. Scores are float64, on preds' device.

Speed: one sort per draw is the whole cost. On the CPU the float32 values and their row
numbers are packed into one int64 key (order-preserving bits above, row below) and sorted
by NumPy's vectorised sort, several times faster than torch's argsort there and stable by
construction; elsewhere (a GPU) torch.sort(stable=True) is used. For numerai_corr the
transformed value of every possible average rank is tabulated once per call (no ndtri on
the [S, n] block); draws are scored as if untied, then corrected at tied positions only
(a tie group starts where the sorted value changes, its size is the gap to the next start,
its average rank start + (size + 1) / 2), because continuous float32 draws have a few ties
per era, not none.
"""

from __future__ import annotations

import functools
from typing import Hashable

import numpy as np
import torch
from scipy import special

from bnnlib.errors import BnnlibError

__all__ = ["draws_era_corr", "draws_era_numerai_corr", "draws_era_scores"]


# ----------------------------------------------------------------------------- checks


def _where(era: Hashable | None) -> str:
    return "" if era is None else f" in era {era!r}"


def _prepare(preds: torch.Tensor, target, era: Hashable | None) -> tuple[torch.Tensor, np.ndarray]:
    """The draws restricted to rows with a target, and that target (float64, NumPy)."""
    if not isinstance(preds, torch.Tensor) or preds.ndim != 2 or not preds.is_floating_point():
        shape = tuple(preds.shape) if hasattr(preds, "shape") else type(preds).__name__
        raise BnnlibError(
            f"preds must be a floating torch tensor [draws, rows], got {shape}; "
            f"for one prediction per row use bnnlib.scoring.metrics.era_corr"
        )
    if isinstance(target, torch.Tensor):
        target = target.detach().cpu().numpy()
    t = np.asarray(target, dtype=np.float64)
    if t.ndim != 1 or len(t) != preds.shape[1]:
        raise BnnlibError(
            f"target has shape {t.shape} but preds has {preds.shape[1]} rows{_where(era)}; "
            f"pass the target of the same rows, one value per row"
        )
    known = ~np.isnan(t)
    if int(known.sum()) < 2:
        raise BnnlibError(
            f"{int(known.sum())} row(s) with a target{_where(era)} ({len(t)} in all); a correlation "
            f"needs at least 2: drop that era, or check that the era column is the right one"
        )
    if not known.all():
        preds = preds[:, torch.from_numpy(known).to(preds.device)]
        t = t[known]
    if np.ptp(t) == 0:
        raise BnnlibError(
            f"the target is constant{_where(era)} ({len(t)} rows), so its correlation is undefined; "
            f"drop that era or score against another target"
        )
    if torch.isnan(preds).any():
        raise BnnlibError(
            f"preds contain NaN{_where(era)}; a model must predict every row: fix the model "
            f"(e.g. a diverged fit) before scoring its draws"
        )
    if preds.dtype not in (torch.float32, torch.float64):
        preds = preds.float()  # half precision widens exactly: same order, same ties
    return preds.detach(), t


# ----------------------------------------------------------------------------- backends


class _NumpyOps:
    """CPU: NumPy's sort, gathers and bincounts are several times faster than torch's there."""

    @staticmethod
    def sort_rows(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Stable ascending order of each row, and whether each sorted value (but the first) is new."""
        values = x.numpy()
        n = values.shape[1]
        if values.dtype != np.float32:
            order = np.argsort(values, axis=1, kind="stable")
            ordered = np.take_along_axis(values, order, axis=1)
            return order, ordered[:, 1:] != ordered[:, :-1]
        values = np.ascontiguousarray(values)  # row-major, so the int32 views below split each int64
        bits = (values + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into 0.0 (they are equal)
        flip = bits >> 31  # negative floats: flip all but the sign bit, so int order == float order
        flip &= 0x7FFFFFFF
        bits ^= flip
        key = bits.astype(np.int64)
        key <<= 32
        key |= np.arange(n, dtype=np.int64)  # row number below: ties keep their row order
        key.sort(axis=1)
        order = key & 0xFFFFFFFF
        high = key.view(np.int32)[:, 1::2] if np.little_endian else key >> 32  # the value's bits
        return order, high[:, 1:] != high[:, :-1]

    @staticmethod
    def array(values: np.ndarray, like) -> np.ndarray:
        return values

    @staticmethod
    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values)

    @staticmethod
    def zeros_bool(shape: tuple[int, int], like) -> np.ndarray:
        return np.zeros(shape, dtype=bool)

    flatnonzero = staticmethod(np.flatnonzero)
    repeat = staticmethod(np.repeat)

    @staticmethod
    def diff_to(starts: np.ndarray, end: int) -> np.ndarray:
        return np.diff(starts, append=end)

    @staticmethod
    def bincount(index: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=length)


class _TorchOps:
    """Any other device (a GPU): the same steps in torch, on the device."""

    @staticmethod
    def sort_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ordered, order = torch.sort(x, dim=1, stable=True)
        return order, ordered[:, 1:] != ordered[:, :-1]

    @staticmethod
    def array(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        # a copy: the rank tables are read-only, and torch warns (on the chapter's page) at a view of one
        return torch.tensor(values, device=like.device)

    @staticmethod
    def tensor(values: torch.Tensor) -> torch.Tensor:
        return values

    @staticmethod
    def zeros_bool(shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        return torch.zeros(shape, dtype=torch.bool, device=like.device)

    @staticmethod
    def flatnonzero(mask: torch.Tensor) -> torch.Tensor:
        return mask.reshape(-1).nonzero().squeeze(1)

    @staticmethod
    def repeat(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return torch.repeat_interleave(values, counts)

    @staticmethod
    def diff_to(starts: torch.Tensor, end: int) -> torch.Tensor:
        return torch.diff(starts, append=torch.tensor([end], device=starts.device))

    @staticmethod
    def bincount(index: torch.Tensor, weights: torch.Tensor, length: int) -> torch.Tensor:
        return torch.bincount(index, weights=weights, minlength=length)


def _numpy_backend(x: torch.Tensor) -> bool:
    """Whether to work in NumPy: CPU tensors share their memory with it, and it is faster there."""
    return x.device.type == "cpu"


# ----------------------------------------------------------------------------- scores


def _signed_pow15(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** 1.5


@functools.lru_cache(maxsize=16)
def _rank_table(n: int) -> np.ndarray:
    """Gaussianised, power-1.5 value of every possible average rank r (1-based) of n values, at
    index 2 r - 2; one per era size, shared by every chunk of draws of that era."""
    table = _signed_pow15(special.ndtri((np.arange(2 * n - 1) + 1.0) / (2 * n)))
    table.setflags(write=False)
    return table


def _tie_corrections(ops, new, gauss, t_sorted):
    """Per draw, what ties change in sum(p t), sum(p) and sum(p^2), p the transformed ranks.

    Without ties the k-th sorted value has the table's value at 2k; a tie group of `size`
    values starting at sorted position `start` has, for each member, the value at
    start + end = 2 start + size - 1. Only tied positions are visited, so the few ties of
    continuous predictions cost little.
    """
    draws, n = new.shape[0], new.shape[1] + 1
    same = ~new
    joined = ops.zeros_bool((draws, n), new)  # equal to the value before it
    joined[:, 1:] = same
    tied = ops.zeros_bool((draws, n), new)  # in a group of two or more
    tied[:, 1:] = same
    tied[:, :-1] |= same
    position = ops.flatnonzero(tied)
    draw, column = position // n, position % n
    starts = ops.flatnonzero(~joined.reshape(-1)[position])
    sizes = ops.diff_to(starts, position.shape[0])
    index = ops.repeat(2 * column[starts] + sizes - 1, sizes)
    plain = gauss[2 * column]
    change = gauss[index] - plain
    return (
        ops.bincount(draw, change * t_sorted.reshape(-1)[position], draws),
        ops.bincount(draw, change, draws),
        ops.bincount(draw, change * (2 * plain + change), draws),
    )


def _scores(preds, target, era, want_corr: bool, want_numerai: bool):
    x, t = _prepare(preds, target, era)
    n = t.shape[0]
    ops = _NumpyOps if _numpy_backend(x) else _TorchOps
    order, new = ops.sort_rows(x)

    corr = numerai = None
    if want_corr:
        weights = (np.arange(n) + 0.5) / n - 0.5  # centred (rank - 0.5) / n at each sorted position
        centred = t - t.mean()
        scale = float(np.sqrt((weights @ weights) * (centred @ centred)))
        gathered = ops.array(centred, x)[order]
        corr = ops.tensor((gathered * ops.array(weights, x)).sum(1) / scale)  # no BLAS threads
    if want_numerai:
        transformed = _signed_pow15(t - t.mean())
        transformed = transformed - transformed.mean()  # so sum(p t) is the covariance's numerator
        t_ss = float(transformed @ transformed)
        table = _rank_table(n)
        plain = table[0::2]  # no ties: rank k + 1 at sorted position k
        t_sorted = ops.array(transformed, x)[order]
        sum_pt = (t_sorted * ops.array(plain, x)).sum(1)
        sum_p = ops.array(np.full(len(sum_pt), plain.sum()), x)  # float64 arrays, as sum_pt
        sum_pp = ops.array(np.full(len(sum_pt), plain @ plain), x)
        if not bool(new.all()):
            d_pt, d_p, d_pp = _tie_corrections(ops, new, ops.array(table, x), t_sorted)
            sum_pt, sum_p, sum_pp = sum_pt + d_pt, sum_p + d_p, sum_pp + d_pp
        spread = (sum_pp - sum_p * sum_p / n) * t_ss
        varies = new.any(1)  # a constant draw: every p is 0, its score is 0
        numerai = ops.tensor(varies * sum_pt / (spread * varies + ~varies) ** 0.5)
    return corr, numerai


def draws_era_scores(
    preds: torch.Tensor, target, era: Hashable | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(2021 corr, numerai_corr) of each draw within one era, sharing one sort: two [S] tensors.

    preds: [S, n] predictions of S draws for the era's n rows; target: [n] (NaN rows dropped);
    era: only named in error messages.
    """
    return _scores(preds, target, era, True, True)


def draws_era_corr(preds: torch.Tensor, target, era: Hashable | None = None) -> torch.Tensor:
    """The 2021 corr of each draw within one era: [S]. Ties ranked by order of appearance."""
    return _scores(preds, target, era, True, False)[0]


def draws_era_numerai_corr(preds: torch.Tensor, target, era: Hashable | None = None) -> torch.Tensor:
    """numerai_corr of each draw within one era: [S]. Ties averaged; a constant draw scores 0."""
    return _scores(preds, target, era, False, True)[1]
