"""Tolerances derived from what a test compares, so that a comparison holds on any CPU (Intel or
AMD, AVX2 or AVX-512), any thread count, BLAS or torch build.

The rule behind them: a float32 sum of n terms, in any order (sequential, pairwise, blocked,
split over threads, with fused multiply-adds or not), is within gamma_n * sum |terms| of the
exact sum, gamma_n = n u / (1 - n u), u = eps / 2 the unit roundoff (Higham, Accuracy and
Stability of Numerical Algorithms, 2nd ed., section 3.1); one operation (or a library function
such as exp, log or softplus, accurate to a few ulps) is within a few u of its exact result.
`f32_tol(n)` = 4 n eps = 8 n u: that bound with a factor of 8 to spare. A number that a float32
computation produced is therefore compared with an independent float64 computation (the
"exact" value, up to float64's 2^-53) within a bound derived from the operations between them,
never with a number written down on one machine.

`Bounded` carries such a bound through a computation: a float64 value and a bound on how far a
float32 evaluation of the same expression can be from it (running error analysis).
"""

from __future__ import annotations

import numpy as np
import torch

EPS32 = torch.finfo(torch.float32).eps  # 2^-23
EPS64 = torch.finfo(torch.float64).eps  # 2^-52


def f32_tol(n_terms: int) -> float:
    """Relative error bound, with respect to the sum of the terms' magnitudes, of a float32 sum
    or dot product of `n_terms` terms in any order: 8 times the worst case n u."""
    return 4 * n_terms * EPS32


def f64_tol(n_terms: int) -> float:
    """The same for a float64 sum of `n_terms` terms."""
    return 4 * n_terms * EPS64


ROUND = f32_tol(1)
"""One float32 operation's rounding, relative to its result: 8 u (one u, or a few ulps for a
library function, with room for a different but equivalent order of operations)."""


def _exact_in_float32(value: float) -> bool:
    return float(np.float32(value)) == value


class Bounded:
    """A float64 value and a bound on the distance of a float32 evaluation of the same expression
    from it: `error` >= |computed - value|, elementwise.

    Inputs given as float32 tensors are exact (error 0): the float32 code and the float64
    reference start from the same numbers. Each operation propagates its inputs' errors through
    its Lipschitz bound and adds its own rounding (`ROUND`, or `f32_tol(n)` for a sum of n)."""

    def __init__(self, value, error=None):
        self.value = torch.as_tensor(value, dtype=torch.float64)
        error = torch.zeros((), dtype=torch.float64) if error is None else torch.as_tensor(error, dtype=torch.float64)
        self.error = error.expand_as(self.value).clone() if error.shape != self.value.shape else error

    # ------------------------------------------------------------------ construction and views

    @classmethod
    def of(cls, x) -> "Bounded":
        """`x` as an operand: a Bounded as is, a tensor as exact, a Python number as exact when
        float32 holds it, else rounded once (a constant such as log sqrt(2 pi))."""
        if isinstance(x, Bounded):
            return x
        if isinstance(x, torch.Tensor):
            return cls(x.double())
        x = float(x)
        return cls(torch.tensor(x, dtype=torch.float64), 0.0 if _exact_in_float32(x) else ROUND * abs(x))

    @property
    def size(self) -> torch.Tensor:
        """A bound on |the float32 value|."""
        return self.value.abs() + self.error

    def __getitem__(self, index) -> "Bounded":
        return Bounded(self.value[index], self.error[index])

    def unsqueeze(self, dim: int) -> "Bounded":
        return Bounded(self.value.unsqueeze(dim), self.error.unsqueeze(dim))

    def reshape(self, *shape) -> "Bounded":
        return Bounded(self.value.reshape(*shape), self.error.reshape(*shape))

    def expand(self, *shape) -> "Bounded":
        return Bounded(self.value.expand(*shape), self.error.expand(*shape))

    def dim(self) -> int:
        return self.value.dim()

    @staticmethod
    def stack(parts: list["Bounded"], dim: int = 0) -> "Bounded":
        return Bounded(torch.stack([p.value for p in parts], dim), torch.stack([p.error for p in parts], dim))

    @staticmethod
    def cat(parts: list["Bounded"], dim: int = 0) -> "Bounded":
        return Bounded(torch.cat([p.value for p in parts], dim), torch.cat([p.error for p in parts], dim))

    def masked(self, keep: torch.Tensor) -> "Bounded":
        """Multiplied by a 0/1 mask: exact."""
        keep = keep.double()
        return Bounded(self.value * keep, self.error * keep)

    @staticmethod
    def _rounded(value: torch.Tensor, error: torch.Tensor, rounding: float = ROUND) -> "Bounded":
        return Bounded(value, error + rounding * (value.abs() + error))

    # ------------------------------------------------------------------ arithmetic

    def __add__(self, other) -> "Bounded":
        other = Bounded.of(other)
        return Bounded._rounded(self.value + other.value, self.error + other.error)

    __radd__ = __add__

    def __neg__(self) -> "Bounded":
        return Bounded(-self.value, self.error)

    def __sub__(self, other) -> "Bounded":
        return self + (-Bounded.of(other))

    def __rsub__(self, other) -> "Bounded":
        return Bounded.of(other) + (-self)

    def __mul__(self, other) -> "Bounded":
        other = Bounded.of(other)
        error = self.error * other.size + self.value.abs() * other.error
        return Bounded._rounded(self.value * other.value, error)

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Bounded":
        other = Bounded.of(other)
        room = other.value.abs() - other.error
        assert bool((room > 0).all()), "a divisor's error bound reaches zero"
        value = self.value / other.value
        return Bounded._rounded(value, (self.error + value.abs() * other.error) / room)

    def __rtruediv__(self, other) -> "Bounded":
        return Bounded.of(other) / self

    def square(self) -> "Bounded":
        return self * self

    def relu(self) -> "Bounded":
        return Bounded(self.value.clamp(min=0.0), self.error)  # 1-Lipschitz, exact

    def abs(self) -> "Bounded":
        return Bounded(self.value.abs(), self.error)  # 1-Lipschitz, exact

    def exp(self) -> "Bounded":
        value = self.value.exp()
        return Bounded._rounded(value, value * torch.expm1(self.error))

    def log(self) -> "Bounded":
        assert bool((self.value > self.error).all()), "log of a value whose error bound reaches zero"
        return Bounded._rounded(self.value.log(), -torch.log1p(-self.error / self.value))

    def sqrt(self) -> "Bounded":
        value = self.value.clamp(min=0.0).sqrt()
        error = torch.minimum(self.error.sqrt(), self.error / value.clamp(min=1e-300))
        return Bounded._rounded(value, error)

    def softplus(self) -> "Bounded":
        """log(1 + exp(x)): 1-Lipschitz; three roundings (exp, log1p, the threshold's branch)."""
        return Bounded._rounded(torch.nn.functional.softplus(self.value), self.error, f32_tol(3))

    def sum(self, dim: int) -> "Bounded":
        n = self.value.shape[dim]
        error = self.error.sum(dim) + f32_tol(n) * self.size.sum(dim)
        return Bounded(self.value.sum(dim), error)

    def linear(self, weight, bias) -> "Bounded":
        """self @ weight + bias (a layer; batched over leading draw dimensions like torch.matmul):
        fan_in products and the bias, one sum of fan_in + 1 terms."""
        weight, bias = Bounded.of(weight), Bounded.of(bias)
        value = self.value @ weight.value + bias.value
        propagated = self.error @ weight.size + self.value.abs() @ weight.error + bias.error
        magnitude = self.size @ weight.size + bias.size
        return Bounded(value, propagated + f32_tol(weight.value.shape[-2] + 1) * magnitude)


def unflatten(theta: Bounded, arch) -> list[tuple[Bounded, Bounded]]:
    """`bnnlib.models.network.unflatten` of a Bounded parameter vector ([..., P])."""
    from bnnlib.models.network import unflatten as views

    return [(Bounded(w, ew), Bounded(b, eb))
            for (w, b), (ew, eb) in zip(views(theta.value, arch), views(theta.error, arch))]


def network(x, layers, last_relu: bool = False) -> Bounded:
    """The float64 outputs of a ReLU network (one, or a stack of draws: weights [..., in, out])
    on rows x, with the bound on any float32 evaluation's distance from them."""
    h = Bounded.of(x)
    last = len(layers) - 1 + int(last_relu)
    for i, (weight, bias) in enumerate(layers):
        h = h.linear(weight, bias.unsqueeze(-2) if bias.dim() > 1 else bias)
        if i < last:
            h = h.relu()
    return h


# --------------------------------------------------------------------------- float64 reductions of float32 values


def mean_over_draws(x: Bounded) -> Bounded:
    """The mean over dim 0 of float32 values accumulated in float64 (as the predictive's running
    sums are): the float32 errors average, the float64 sum adds its own."""
    draws = x.value.shape[0]
    return Bounded(x.value.mean(0), x.error.mean(0) + f64_tol(draws + 1) * x.size.mean(0))


def variance_over_draws(x: Bounded) -> Bounded:
    """The variance over dim 0 (over S, not S - 1) of float32 values, from float64 running sums
    of the values and their squares. Errors e_s <= E move it by at most 2 sd E + E^2 (Cauchy-
    Schwarz on the covariance of the values and their errors, plus the errors' own variance);
    E[x^2] - E[x]^2 in float64 loses at most a few S eps64 of E[x^2]."""
    draws = x.value.shape[0]
    variance = x.value.var(0, unbiased=False)
    worst = x.error.max(0).values
    error = 2 * variance.sqrt() * worst + worst**2 + 2 * f64_tol(draws + 2) * (x.size**2).mean(0)
    return Bounded(variance, error)


def mean_square_over_draws(x: Bounded) -> Bounded:
    """The mean over dim 0 of the squares of float32 values, accumulated in float64."""
    draws = x.value.shape[0]
    error = (2 * x.value.abs() * x.error + x.error**2).mean(0) + f64_tol(draws + 1) * (x.size**2).mean(0)
    return Bounded((x.value**2).mean(0), error)


def assert_within(actual, reference: Bounded, what: str = "") -> None:
    """|actual - reference.value| <= reference.error, elementwise (actual: tensor or array)."""
    actual = torch.as_tensor(np.asarray(actual), dtype=torch.float64)
    gap = (actual - reference.value).abs()
    bad = gap > reference.error
    assert not bool(bad.any()), (
        f"{what}: {int(bad.sum())} of {bad.numel()} values outside their float32 error bound; worst "
        f"gap {float(gap.max()):.3g} against bound {float(reference.error.reshape(-1)[gap.reshape(-1).argmax()]):.3g}")
