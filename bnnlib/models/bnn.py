"""The Bayesian MLP on Pyro: a network, a prior, a likelihood and a guide, each swappable.

Generative model: theta ~ prior (one flat site for every weight, bias and head parameter);
for each row, every target ~ Normal(mean_k(f_theta(x)), sigma_k), a missing target masked out
(with the heteroscedastic likelihood, sigma_k times a function of a second output: per row).
Guide: mean-field Normal over theta. The noise scales sigma_k are point estimates learned with
the ELBO (type-II maximum likelihood). Inference: torch's Adam on the guide's and the noise's
parameters, minimising a hand-written estimate of the negative ELBO of `model` and `guide` (the
objective of Pyro's Trace_ELBO) on mini-batches of rows whose likelihood is scaled by n_rows /
batch_size, as Pyro's subsampled plate does. `SVIConfig.estimator` picks the estimate (see
`ESTIMATORS`): by default `output`, `negative_elbo_local` with the prior term in closed form and
the output layer's pre-activations sampled per row, which a test checks has Trace_ELBO's
expectation with less noise; `weights` is `negative_elbo`, Trace_ELBO's one-particle loss itself
(tested equal to `Trace_ELBO.differentiable_loss`).

`model` and `guide` are the Pyro program, which the tests run through Pyro; a fit never calls
Pyro's SVI: computing the loss without Pyro's tracing is what brings an SVI step near a plain
network's (see `bnnlib bench`). One flat site rather than a PyroModule per layer keeps the
program to two sample sites.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import torch

from bnnlib.errors import BnnlibError, unknown_name
from bnnlib.models.device import resolve_device
from bnnlib.models.likelihoods import Likelihood, masked_normal_log_prob
from bnnlib.models.network import Architecture, fan_in_per_param, forward, he_init, unflatten
from bnnlib.models.precision import autocast, compute_dtype
from bnnlib.models.priors import expected_log_ratio, make_prior, prior_std
from bnnlib.models.training import batches, epoch_bar, seed_everything, step_plan


@dataclass(frozen=True)
class SVIConfig:
    """SVI's settings. The defaults are the talk's (Adam lr 1e-3, batch 4096, 30 epochs, a constant
    lr, He-initialised means with stds 0.01 for the network's weights, no early stop) except two:
    the ELBO's estimator (`output`, not Trace_ELBO's one weight draw, `weights`) and the posterior
    taken as the mean of the iterates over the last fifth of the steps (`average`; 0: the last
    iterate, as the talk's)."""

    epochs: int = 30
    batch_size: int = 4096
    lr: float = 1e-3
    init_scale: float | None = None  # the guide's starting std (see `initial_scale`); None: the start's default
    sigma: float | None = None  # a known noise scale, or None to learn one per target
    seed: int = 0
    lr_final_ratio: float = 1.0  # the lr decays geometrically over the steps to lr * this (talk: constant)
    steps: int | None = None  # the optimiser's budget in steps; None: `epochs` passes over the rows
    precision: str = "float32"  # the network's matrix products: float32 | bf16 (bnnlib.models.precision)
    scale_lr: float | None = None  # Adam's lr for the guide's log-scales; None: `lr`
    estimator: str = "output"  # the ELBO's gradient estimator: output | local | weights (see ESTIMATORS)
    average: float = 0.2  # the posterior is the mean of the iterates over this last share of the steps (0: the last)
    guide_init: str = "he"  # he: He-initialised means (the talk's); prior: zero means, stds a multiple of the prior's
    continue_steps: int = 0  # > 0: a trajectory (see below): after the budget, up to this many more steps
    min_continue_steps: int = 2000  # a trajectory's continuation runs at least this many steps (or the budget's, if more)


TRAJECTORY = """A fit with `continue_steps` > 0 is one trajectory with two snapshots. Its budget runs the
talk's procedure: every parameter at the constant `lr`, the last iterate kept (no averaging).
Snapshot A is taken there. It then continues from that state (the same Adam moments and batch
order) with the means and noise at `lr` and the log-scales at `scale_lr`, both decaying
geometrically to `lr_final` of that over `continue_steps`; after at least as many steps as the
budget and `min_continue_steps` (the cap, if fewer), it stops at the first trace record where `stop(history)` says so (the book's convergence
verdict: converged or diverging), or at `continue_steps`. Snapshot B is the mean of the iterates
over the last `average` share of all steps run, which lies in the continuation.

Why a floor of steps: the verdict compares the ends of a window of a fifth of the steps run, and
after a short budget (the talk's 30 epochs of a small dataset are a few dozen steps) that window
is a handful of steps, over which a slow drift of the means moves the ELBO by less than its
tolerance. Measured on a linear model (2,000 rows, budget 40 steps): stopped at the first
verdict after twice the budget, B's means sat 1.4 exact posterior stds from the optimum; with
the floor they land within a quarter (tests/test_trajectory.py)."""


ESTIMATORS = {
    "output": "the local reparameterisation on the output layer, the KL in closed form",
    "local": "the local reparameterisation on every layer, the KL in closed form",
    "weights": "one weight draw per mini-batch, as Pyro's Trace_ELBO (BayesianMLP.negative_elbo)",
}
"""Estimators of one ELBO: the same objective, so the same optimum; they differ in gradient noise
and cost. Measured at the talk's scale (2.42M rows, 17,730 steps, Normal prior): with `weights`
the output layer's scales were still moving at the end, with `output` they settled, at the same
cost a step; `local` costs about 4 times as much a step on the CPU (a normal draw per row and
unit)."""


GUIDE_INITS = {
    "he": "He-initialised means and every std at init_scale (the talk's start: 0.01)",
    "prior": "zero means and stds init_scale times the prior's (1: the guide starts at the prior, KL 0), where "
             "the weights the data cannot pay for end",
}

DEFAULT_INIT_SCALE = {"he": 1e-2, "prior": 1.0}
"""Each start's init_scale when none is given: the talk's 0.01 for `he`, the prior itself for `prior`."""


def initial_scale(guide_init: str, init_scale: float | None) -> float:
    """The guide's init_scale for this start: an absolute std for `he`, a multiple of the prior's
    std for `prior` (so that "ten times smaller" means the same for both); None gives the default."""
    if guide_init not in GUIDE_INITS:
        raise unknown_name("guide initialisation", guide_init, GUIDE_INITS)
    if init_scale is None:
        return DEFAULT_INIT_SCALE[guide_init]
    if not init_scale > 0:
        raise BnnlibError(f"init_scale must be a positive number, got {init_scale!r}")
    return float(init_scale)


def head_start_scale(sigma: torch.Tensor, n_rows: int) -> float:
    """The head parameters' starting std: the noise over the square root of the rows.

    Each head parameter (a target's scale a and shift c, h4's beta) is informed by every row,
    like a mean, so its posterior std is of order sigma / sqrt(n): about 1e-4 at the talk's 2.4M
    rows. Started at the network's 0.01 instead, the head's stds had a factor of ~20 to travel
    against mini-batch gradient noise some 20 times their drift, and were still shrinking (15%
    over the last fifth of the talk's 17,730 steps) when every network layer had settled."""
    return float(sigma.mean()) / math.sqrt(max(n_rows, 1))


class BayesianMLP(torch.nn.Module):
    """Model and guide of one Bayesian MLP; its parameters are the guide's and the noise's."""

    def __init__(self, arch: Architecture, likelihood: Likelihood, prior: str, init_scale: float | None,
                 sigma_init: torch.Tensor, generator: torch.Generator, learn_sigma: bool = True,
                 guide_init: str = "he", head_scale: float | None = None):
        super().__init__()
        self.arch, self.likelihood, self.prior_name = arch, likelihood, prior
        head_fan_in = torch.ones(likelihood.n_head_params)
        self.register_buffer("fan_in", torch.cat([fan_in_per_param(arch), head_fan_in]))
        init_scale = initial_scale(guide_init, init_scale)
        loc = torch.cat([he_init(arch, generator), likelihood.head_init()])
        log_scale = torch.full_like(loc, math.log(DEFAULT_INIT_SCALE["he"] if guide_init == "prior" else init_scale))
        if guide_init == "prior":
            stds = prior_std(prior, self.fan_in[: arch.n_params])
            if stds is None:
                raise BnnlibError(f"the {prior} prior has no std to start the guide from; use guide_init 'he'")
            loc[: arch.n_params], log_scale[: arch.n_params] = 0.0, torch.log(stds * init_scale)
        if head_scale is not None:
            log_scale[arch.n_params:] = math.log(head_scale)
        self.loc = torch.nn.Parameter(loc)
        self.log_scale = torch.nn.Parameter(log_scale)
        self.log_sigma = torch.nn.Parameter(torch.log(sigma_init), requires_grad=learn_sigma)
        self.register_buffer("sigma_index", torch.tensor(likelihood.sigma_index))
        self.prior = make_prior(prior, self.fan_in)

    @property
    def n_network_params(self) -> int:
        return self.arch.n_params

    def split(self, theta: torch.Tensor) -> tuple[list, torch.Tensor]:
        """Network layers and head parameters of theta ([..., P])."""
        p = self.n_network_params
        return unflatten(theta[..., :p], self.arch), theta[..., p:]

    def noise_scales(self, out: torch.Tensor) -> torch.Tensor:
        """Each target's noise std given the network's outputs: the learned sigma_k, or per row for a
        heteroscedastic likelihood (`Likelihood.noise_scales`)."""
        return self.likelihood.noise_scales(out, torch.exp(self.log_sigma)[self.sigma_index])

    def model(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, n_rows: int) -> None:
        theta = pyro.sample("theta", self.prior)
        layers, head = self.split(theta)
        out = forward(x, layers)
        mean = self.likelihood.means(out, head)
        sigma = self.noise_scales(out)
        observed = ~torch.isnan(y)
        with pyro.plate("rows", n_rows, subsample=rows):
            pyro.sample(
                "y",
                dist.Normal(mean, sigma).mask(observed).to_event(1),
                obs=torch.where(observed, y, torch.zeros_like(y)),
            )

    def guide(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, n_rows: int) -> None:
        pyro.sample("theta", dist.Normal(self.loc, torch.exp(self.log_scale)).to_event(1))

    def negative_elbo(self, x: torch.Tensor, y: torch.Tensor, n_rows: int, precision: str = "float32") -> torch.Tensor:
        """Trace_ELBO's loss for `model` and `guide` on one mini-batch, computed directly: the
        `weights` estimator (the default `output` one is `negative_elbo_local`).

        The same reparameterised one-sample estimate as Pyro's `Trace_ELBO.differentiable_loss`
        (a test checks they are equal), without Pyro's per-step tracing, which cost ~1.4 ms of a
        ~4 ms step at batch 4096. The hidden layers' products run at `precision`; the output
        layer and the rest in float32 (in bf16 the output weights' rounding, ~0.4%, moved the
        linear model's posterior means by ~0.7 posterior std at 2.4M rows).
        """
        guide = dist.Normal(self.loc, torch.exp(self.log_scale)).to_event(1)
        theta = guide.rsample()
        layers, head = self.split(theta)
        with autocast(precision, x.device.type):
            hidden = forward(x, layers[:-1], last_relu=True)
        out = forward(hidden.float(), layers[-1:])
        mean = self.likelihood.means(out, head)
        sigma = self.noise_scales(out)
        log_likelihood = masked_normal_log_prob(y, mean, sigma).sum() * (n_rows / x.shape[0])
        return guide.log_prob(theta) - self.prior.log_prob(theta) - log_likelihood

    def negative_elbo_local(self, x: torch.Tensor, y: torch.Tensor, n_rows: int, precision: str = "float32",
                            local_from: int = 0) -> torch.Tensor:
        """The same ELBO with less noise: the prior term in closed form, and from layer
        `local_from` on, the local reparameterisation (Kingma, Salimans and Welling 2015).

        Given its input h, a layer's pre-activation under the mean-field guide is Normal with mean
        h W_mu + b_mu and variance h^2 W_sd^2 + b_sd^2, so it is sampled per row instead of
        sampling one weight matrix for the whole mini-batch. Each row's expected log-likelihood,
        hence the ELBO, is unchanged; the gradient noise of the scales averages over the rows
        instead of resting on one shared draw. Layers before `local_from` (and the likelihood's
        head parameters) share one reparameterised draw, as in `negative_elbo`.
        """
        scale = torch.exp(self.log_scale)
        p = self.n_network_params
        theta = self.loc + scale * torch.randn_like(scale)
        sampled, head = self.split(theta)
        means, variances = unflatten(self.loc[:p], self.arch), unflatten(scale[:p] ** 2, self.arch)
        h, last = x, len(means) - 1
        for i, ((w, b), (w_mu, b_mu), (w_var, b_var)) in enumerate(zip(sampled, means, variances)):
            if i == last:
                h = h.float()
            with autocast(precision if i < last else "float32", x.device.type):
                if i < local_from:
                    a = torch.addmm(b, h, w)
                else:
                    mean = torch.addmm(b_mu, h, w_mu).float()
                    var = torch.addmm(b_var, h * h, w_var).float()
                    a = mean + torch.sqrt(var + 1e-12) * torch.randn_like(mean)
            h = torch.relu(a) if i < last else a.float()
        mean = self.likelihood.means(h, head)
        sigma = self.noise_scales(h)
        log_likelihood = masked_normal_log_prob(y, mean, sigma).sum() * (n_rows / x.shape[0])
        return expected_log_ratio(self.prior_name, self.fan_in, self.loc, scale) - log_likelihood

    def scale_quantiles(self, log_scale: torch.Tensor | None = None) -> dict[str, list[float]]:
        """The guide's std per layer (weights and biases; the likelihood's head parameters
        apart): its 10th, 50th and 90th percentile, what a trace shows of the scales; of
        `log_scale` when given (a mean over iterates), else of the current iterate."""
        scale = torch.exp((self.log_scale if log_scale is None else log_scale).detach())
        groups, start = {}, 0
        for i, (fan_in, fan_out) in enumerate(self.arch.layers, 1):
            size = fan_in * fan_out + fan_out
            groups[f"layer{i}"] = scale[start : start + size]
            start += size
        if start < scale.numel():
            groups["head"] = scale[start:]
        levels = torch.tensor([0.1, 0.5, 0.9], device=scale.device)
        return {name: torch.quantile(values, levels).tolist() for name, values in groups.items()}

    def to_device(self, device: torch.device) -> "BayesianMLP":
        """This module on `device`, its prior rebuilt there (a distribution is not a buffer)."""
        if device.type != "cpu":
            self.to(device)
            self.prior = make_prior(self.prior_name, self.fan_in)
        return self

    def posterior(self) -> "Posterior":
        """The fitted posterior, on the CPU (what the cache stores)."""
        return Posterior(
            loc=self.loc.detach().cpu().clone(),
            scale=torch.exp(self.log_scale).detach().cpu().clone(),
            sigma=torch.exp(self.log_sigma).detach().cpu().clone(),
            arch=self.arch,
            likelihood=self.likelihood,
        )


@dataclass
class Posterior:
    """A fitted mean-field posterior: what the cache stores and the predictive draws from."""

    loc: torch.Tensor
    scale: torch.Tensor
    sigma: torch.Tensor
    arch: Architecture
    likelihood: Likelihood
    history: dict = field(default_factory=dict)
    snapshot_a: "Posterior | None" = None  # a trajectory's snapshot A (see TRAJECTORY); this one is its B

    def sample(self, n_draws: int, generator: torch.Generator) -> torch.Tensor:
        """n_draws thetas [n_draws, P], on the posterior's device (`generator` is a CPU one)."""
        eps = torch.randn(n_draws, self.loc.numel(), generator=generator).to(self.loc.device)
        return self.loc + self.scale * eps

    def head(self, name: str) -> tuple[float, float]:
        """Posterior mean and std of a head parameter of theta (e.g. h4's 'beta')."""
        if self.likelihood.name != "h4" or name != "beta":
            raise KeyError(f"{self.likelihood.name} has no head parameter {name!r}")
        i = self.arch.n_params
        return float(self.loc[i]), float(self.scale[i])


def fit_bnn(x: torch.Tensor, y: torch.Tensor, arch: Architecture, likelihood: Likelihood, prior: str,
            config: SVIConfig = SVIConfig(), progress: bool | None = None,
            evaluate: Callable[[torch.Tensor], float] | None = None, device: str | torch.device = "cpu",
            stop: Callable[[dict], bool] | None = None) -> Posterior:
    """Fit the mean-field posterior by SVI; x [n, features], y [n, targets] (NaN = missing). The
    loss is `config.estimator`'s estimate of the negative ELBO (`ESTIMATORS`), not Pyro's SVI.

    The data move once to `device` (bnnlib.models.device); initial values and batch orders come
    from CPU generators, so the CPU fit is the same whatever the device setting, and the
    posterior comes back on the CPU.

    A fit whose loss stops being finite (the improper flat prior's scales can overflow) stops
    there and keeps the guide of its last record; its trace ends with a NaN ELBO, which
    `bnnlib.evaluate.convergence` reads as diverging.

    The history is the fit's trace, recorded at every epoch end (or at most 100 times): the
    ELBO per row and the guide's std percentiles per layer (both of the
    steps since the last record: the mean ELBO, the stds of the mean log-scale), the noise scales and, with `evaluate(theta)`, the validation corr of the network
    at the posterior mean. `bnnlib.evaluate.convergence` reads a verdict from it.

    With `config.continue_steps` > 0 the fit is a trajectory (`TRAJECTORY`): the posterior
    returned is its snapshot B, with snapshot A in `.snapshot_a` and the number of trace records
    at A in the history's `snapshot_a_records`; `stop(history)` ends the continuation early."""
    if config.estimator not in ESTIMATORS:
        raise unknown_name("ELBO estimator", config.estimator, ESTIMATORS)
    trajectory = config.continue_steps > 0
    generator = seed_everything(config.seed)
    if config.sigma is None:
        sigma_init = torch.nan_to_num(torch.nanmean((y - torch.nanmean(y, 0)) ** 2, 0).sqrt(), nan=1.0)
        sigma_init = sigma_init[: likelihood.n_sigmas].clamp(min=1e-3)
        if sigma_init.numel() < likelihood.n_sigmas:  # h1: one sigma for all targets
            sigma_init = sigma_init[:1].expand(likelihood.n_sigmas).clone()
    else:
        sigma_init = torch.full((likelihood.n_sigmas,), float(config.sigma))
    net = BayesianMLP(arch, likelihood, prior, config.init_scale, sigma_init, generator,
                      learn_sigma=config.sigma is None, guide_init=config.guide_init,
                      head_scale=head_start_scale(sigma_init, x.shape[0]))
    device = resolve_device(device)
    net = net.to_device(device)
    scale_lr = config.lr if config.scale_lr is None or trajectory else config.scale_lr
    groups = [{"params": [net.loc], "lr": config.lr}, {"params": [net.log_scale], "lr": scale_lr}]
    if net.log_sigma.requires_grad:
        groups.append({"params": [net.log_sigma], "lr": config.lr})
    optimizer = torch.optim.Adam(groups, fused=True)  # one kernel per step for all groups
    n_rows = x.shape[0]
    local_from = {"local": 0, "output": len(arch.layers) - 1}.get(config.estimator)
    elbo = net.negative_elbo if local_from is None else functools.partial(net.negative_elbo_local,
                                                                          local_from=local_from)
    plan = step_plan(n_rows, config.batch_size, config.epochs, config.steps)
    decay = 1.0 if trajectory else config.lr_final_ratio ** (1.0 / plan.total_steps)
    x = x.to(device, compute_dtype(config.precision))  # 5-level features are exact in bf16; half the bytes to gather
    y = y.to(device)
    history: dict = {"step": [], "elbo_per_row": [], "scale_quantiles": {}, "sigma": [], "validation_corr": [],
                     "seconds": [], "steps_per_epoch": plan.steps_per_epoch}
    # Polyak-Ruppert averaging: Adam's iterates jitter by about the lr around the optimum (3-5
    # exact posterior stds for the linear model's means at 2.4M rows); their mean does not
    average_from = plan.total_steps - (0 if trajectory else int(config.average * plan.total_steps))
    averaged = [net.loc, net.log_scale, net.log_sigma]
    averages = [torch.zeros_like(p) for p in averaged]
    n_records = len(plan.checkpoints)
    bar = epoch_bar(n_records, f"BNN {prior}/{likelihood.name}", progress)
    state = {"done": 0, "stopped": None, "last_finite": [p.detach().clone() for p in averaged]}
    least = min(config.continue_steps, max(plan.total_steps, config.min_continue_steps))  # the continuation's floor
    started = time.perf_counter()

    def run(marks, batch_iter, decay: float, average_from: float, record_sums: list | None = None) -> bool:
        """Optimise up to each step count of `marks`, recording the trace at each; False once
        the loss is not finite or `stop` says so."""
        for mark in marks:
            done = state["done"]
            total, rows_seen = 0.0, 0
            # the scales a record shows are the mean log-scale over the steps since the last record,
            # as its ELBO is: a single iterate's small stds jitter by several percent with Adam's noise
            log_scale_sum, n_steps = torch.zeros_like(net.log_scale), 0
            sums = [torch.zeros_like(p) for p in averaged] if record_sums is not None else None
            stopped = None
            for step, rows in enumerate(itertools.islice(batch_iter, mark - done), done + 1):
                optimizer.zero_grad(set_to_none=True)
                rows = rows.to(device)
                loss = elbo(x.index_select(0, rows), y.index_select(0, rows), n_rows, config.precision)
                value = float(loss.detach())
                if not math.isfinite(value):  # diverged (the flat prior's scales overflow): stop here
                    stopped = step
                    break
                loss.backward()
                optimizer.step()
                if decay != 1.0:
                    for group in optimizer.param_groups:
                        group["lr"] *= decay
                if step > average_from:
                    with torch.no_grad():
                        for total_p, p in zip(averages, averaged):
                            total_p += p
                total += value * len(rows)
                rows_seen += len(rows)
                with torch.no_grad():
                    log_scale_sum += net.log_scale
                    if sums is not None:
                        for sum_p, p in zip(sums, averaged):
                            sum_p += p
                n_steps += 1
            if stopped is not None:
                with torch.no_grad():
                    for p, kept in zip(averaged, state["last_finite"]):
                        p.copy_(kept)
            state["done"] = mark if stopped is None else stopped
            state["stopped"] = stopped
            elbo_per_row = -total / rows_seen / n_rows if stopped is None else math.nan
            history["step"].append(state["done"])
            history["elbo_per_row"].append(elbo_per_row)
            for name, values in net.scale_quantiles(log_scale_sum / n_steps if n_steps else None).items():
                history["scale_quantiles"].setdefault(name, []).append(values)
            history["sigma"].append(torch.exp(net.log_sigma).tolist())
            if evaluate is not None:
                history["validation_corr"].append(float(evaluate(net.loc.detach())))
            history["seconds"].append(time.perf_counter() - started)
            bar.update()
            bar.set_postfix(elbo_per_row=f"{elbo_per_row:.4f}")
            if stopped is not None:
                return False
            state["last_finite"] = [p.detach().clone() for p in averaged]
            if record_sums is not None:
                record_sums.append((state["done"], n_steps, sums))
                if state["done"] - plan.total_steps >= least and stop is not None and stop(history):
                    return False
        return True

    going = run(plan.checkpoints, batches(n_rows, config.batch_size, plan.total_steps, generator), decay, average_from)
    snapshot_a = None
    if trajectory:
        snapshot_a = net.posterior()
        history["snapshot_a_records"] = len(history["step"])
        history["snapshot_a_stopped_at_step"] = state["stopped"]
    record_sums: list = []
    if trajectory and going:
        spacing = max(1, round(plan.total_steps / n_records))
        marks = [min(plan.total_steps + k * spacing, plan.total_steps + config.continue_steps)
                 for k in range(1, math.ceil(config.continue_steps / spacing) + 1)]
        bar.total = n_records + len(marks)
        optimizer.param_groups[1]["lr"] = config.lr if config.scale_lr is None else config.scale_lr  # the scales' own lr
        decay = config.lr_final_ratio ** (1.0 / config.continue_steps)
        run(marks, batches(n_rows, config.batch_size, config.continue_steps, generator), decay, math.inf, record_sums)
    bar.close()
    if trajectory:
        if record_sums and state["stopped"] is None:  # B: the mean of the iterates over the last `average` share
            cut = state["done"] - config.average * state["done"]
            window = [(n, sums) for end, n, sums in record_sums if end - n >= cut] or [record_sums[-1][1:]]
            n_averaged = sum(n for n, _ in window)
            with torch.no_grad():
                for i, p in enumerate(averaged):
                    p.copy_(sum(sums[i] for _, sums in window) / n_averaged)
        else:
            n_averaged = 0
    else:
        n_averaged = plan.total_steps - average_from if state["stopped"] is None else 0
        if n_averaged > 0:
            with torch.no_grad():
                for total_p, p in zip(averages, averaged):
                    p.copy_(total_p / n_averaged)
    history["averaged_steps"] = n_averaged
    history["stopped_at_step"] = state["stopped"]  # None, or the step whose ELBO was not finite
    posterior = net.posterior()
    posterior.history = history
    posterior.snapshot_a = snapshot_a
    return posterior
