"""The architecture appendix (the `architecture` chapter): how the network's depth changes its
scores and its posterior.

Everything the chapter (book/architecture.py) computes: its models (`models`: per depth the
baseline and a BNN per prior; the linear model's exact check and the ELBO ladder are the appendix
"Are these posteriors?"'s, `bnnlib.studies.diagnostics`), its
tables (normal fits of the per-draw corr means, whose divergences compare the depths), its
findings (the values it glues into its markdown, under literal keys) and the talk's published
numbers with the talk's findings on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bnnlib.errors import BnnlibError
from bnnlib.evaluate.study import ModelSpec
from bnnlib.models.priors import canonical_prior
from bnnlib.models.network import TALK_HIDDEN
from bnnlib.scoring.statistics import normal_fit, off_diagonal
from bnnlib.studies.common import Claim, draw_scores
from bnnlib.studies.common import CONVERGED_PRIOR, GLANCE_COLUMNS, TALK_PROCEDURE, bnn_spec, converged_name, joint_verdict
from bnnlib.studies.common import span, training_fields
from bnnlib.studies.common import agreement
from bnnlib.studies.common import PRIORS, SOURCE, talk_frame, prior_label


# --------------------------------------------------------------------------- models


def depth_models(params: Mapping) -> list[ModelSpec]:
    """The appendix: per depth, the baseline (`baseline_<depth>`) and a BNN per prior (`<prior>_<depth>`),
    at snapshot A (the talk's procedure); then, where the chapter continues its fits, the
    `CONVERGED_PRIOR`'s BNN of each depth at snapshot B (`<prior>_<depth>_converged`). The talk's
    depth is study 1's trajectories; at the other depths only the `CONVERGED_PRIOR`'s fit
    continues, the rest are fitted for the budget alone."""
    depths = [len(h) for h in params["architectures"]]
    if len(set(depths)) != len(depths):
        raise BnnlibError(f"architectures {params['architectures']} repeat a number of hidden layers; give one "
                          "per depth, e.g. [[], [128], [128, 64], [128, 64, 64]]")
    priors = [canonical_prior(p) for p in params["priors"]]
    specs, converged = [], []
    for hidden in params["architectures"]:
        depth, common = len(hidden), dict(hidden=tuple(hidden), **training_fields(params))
        specs.append(ModelSpec(f"baseline_{depth}", method="baseline", lr=params["lr_baseline"], **common))
        for p in priors:
            continued = tuple(hidden) == TALK_HIDDEN or p == CONVERGED_PRIOR  # study 1's network is its trajectory
            specs.append(bnn_spec(f"{p}_{depth}", p, {**params, "hidden": hidden},
                                  **({} if continued else TALK_PROCEDURE)))
        if CONVERGED_PRIOR in priors and params.get("continue_steps"):
            converged.append(bnn_spec(converged_name(f"{CONVERGED_PRIOR}_{depth}"), CONVERGED_PRIOR,
                                      {**params, "hidden": hidden}, snapshot="B"))
    return specs + converged


def grid(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The (depth, model) grid the talk's tables have: the models at snapshot A."""
    return [s for s in specs if s.snapshot == "A" or not s.has_posterior]


def converged_pairs(specs: Sequence[ModelSpec]) -> dict[int, tuple[str, str]]:
    """Per depth with a snapshot B: (its model at A, at B)."""
    names = {s.name for s in specs}
    return {len(s.hidden): (s.name, converged_name(s.name)) for s in grid(specs) if converged_name(s.name) in names}


def converged_findings(table: pd.DataFrame) -> dict:
    """What continuing the `CONVERGED_PRIOR`'s fits to snapshot B changes across depths (`table`: a
    `common.snapshots_table` per depth): the best depth at A and at B, and the verdicts at B
    (`converged_note`)."""
    if table.empty:
        return {"converged_note": "This run continues no fit to snapshot B (continue_steps 0, or no "
                                  f"{prior_label(CONVERGED_PRIOR)} prior)."}
    best = {snapshot: table[f"corr {snapshot}"].idxmax() for snapshot in ("A", "B")}
    unsettled = table.index[table["verdict B"] != "converged"].tolist()
    verdict = ("Every fit converged by B, so its row is a posterior's." if not unsettled else
               "Not converged at B: " + ", ".join(f"{layers(d)} ({table.loc[d, 'verdict B']})" for d in unsettled) + "; "
               "their B scores are where the optimiser stood when the continuation's cap was reached.")
    return {"converged_note": (
        f"Under the {prior_label(CONVERGED_PRIOR)} prior the best depth is {layers(best['A'])} at A "
        f"(corr {table.loc[best['A'], 'corr A']:.4f}) and {best['B']} at B (corr {table.loc[best['B'], 'corr B']:.4f}). "
        + verdict)}


def models(params: Mapping) -> list[ModelSpec]:
    """Every fit of the architecture appendix: the depth study's."""
    return depth_models(params)


# --------------------------------------------------------------------------- tables


def layers(depth: int) -> str:
    """'1 hidden layer', '3 hidden layers': a depth in words."""
    return f"{int(depth)} hidden layer{'' if int(depth) == 1 else 's'}"


def depth_label(hidden: Sequence[int]) -> str:
    """'0 (linear)', '1 (128)', '3 (128, 64, 64)': the number of hidden layers and their sizes."""
    hidden = tuple(int(h) for h in hidden)
    return f"{len(hidden)} ({', '.join(map(str, hidden)) if hidden else 'linear'})"


def draw_mean_fits(results: Mapping[Any, Any], kind: str = "corr") -> pd.DataFrame:
    """Per model with several draws: the normal fit (mean, std) of its per-draw score means."""
    rows = {}
    for key, result in results.items():
        if result.scores.n_draws < 2:
            continue
        rows[key] = dict(zip(("mean", "std"), normal_fit(draw_scores(result, kind)["mean"])))
    if not rows:
        raise BnnlibError("draw_mean_fits found no model with more than one draw; pass Bayesian models")
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- findings (glue values)


def corr_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings on the corr-by-depth table (a `check_claims` table of
    `corr_claims`) hold here too (`check_*`)."""
    found = agreement(check)
    return {"check_findings": found["findings"], "check_agreed": found["agreed"],
            "check_checkable": found["checkable"], "check_differ": found["differ"]}


def best_depths(corr: pd.DataFrame, talk_corr: pd.DataFrame) -> dict:
    """The depth with the best corr per model, here (`depth_ours`) and in the talk (`depth_talk`)."""
    def line(table: pd.DataFrame) -> str:
        return ", ".join(f"{prior_label(m)} {int(table[m].idxmax())}" for m in corr.columns if m in table)

    return {"depth_ours": line(corr), "depth_talk": line(talk_corr)}


def divergence_agreement(check: pd.DataFrame) -> dict:
    """How many of the talk's findings on its divergence matrix (a `check_claims` table of
    `divergence_claims`) hold here too (`div_*`)."""
    found = agreement(check)
    return {"div_findings": found["findings"], "div_agreed": found["agreed"],
            "div_checkable": found["checkable"], "div_differ": found["differ"]}


JS_BOUND_NATS = math.log(2)
"""The largest Jensen-Shannon divergence in nats (ln 2), whatever the two distributions: a value
above it cannot be a JS divergence in nats."""

JS_BOUND_BITS = 1.0
"""The largest Jensen-Shannon divergence in bits: a value above it cannot be a JS divergence in
either unit."""


def divergences(main_js: pd.DataFrame, jeffreys: pd.DataFrame, talk_div: pd.DataFrame) -> dict:
    """Whether the talk's divergence matrix can be a JS divergence (bounded by ln 2 nats, 1
    bit), and our JS and symmetrised KL ranges beside the talk's (`*_range`: "X to Y", or one
    value where both ends read the same)."""
    talk_values, ours = off_diagonal(talk_div), off_diagonal(main_js)
    return {"talk_above_ln2": int((talk_values > JS_BOUND_NATS).sum()), "talk_pairs": int(len(talk_values)),
            "ln2": JS_BOUND_NATS, "talk_above_1": int((talk_values > JS_BOUND_BITS).sum()),
            "js_low": ours.min(), "js_high": ours.max(),
            "jeffreys_low": off_diagonal(jeffreys).min(), "jeffreys_high": off_diagonal(jeffreys).max(),
            "talk_low": talk_values.min(), "talk_high": talk_values.max(),
            "js_range": span(ours.min(), ours.max(), ".4f"),
            "jeffreys_range": span(off_diagonal(jeffreys).min(), off_diagonal(jeffreys).max(), ".4f"),
            "talk_range": span(talk_values.min(), talk_values.max(), ".4f"),
            "closest": " and ".join(map(str, closest_pair(main_js))),
            "talk_closest": " and ".join(map(str, closest_pair(talk_div)))}


# --------------------------------------------------------------------------- the talk (real Numerai v3 data, 2021)
# Its published numbers, and its findings as tests on a table (checked on its numbers and ours by
# `common.check_claims`; a finding about every prior needs all three).


def talk_corr() -> pd.DataFrame:
    """The talk's validation corr by number of hidden layers (0-3) and model."""
    return talk_frame(
        {
            "baseline": [0.0156, 0.0164, 0.0169, 0.0145],
            "flat": [0.0134, 0.0199, 0.0175, 0.0199],
            "normal": [0.0093, 0.0174, 0.0147, 0.0167],
            "laplace": [0.0115, 0.0171, 0.0132, 0.0185],
        },
        [0, 1, 2, 3],
        "hidden_layers",
    )


def talk_sharpe() -> pd.DataFrame:
    """The talk's Sharpe ratios that go with `talk_corr`."""
    return talk_frame(
        {
            "baseline": [0.5838, 0.5481, 0.5948, 0.6422],
            "flat": [0.4077, 0.6599, 0.6086, 0.6454],
            "normal": [0.3236, 0.5152, 0.4641, 0.5038],
            "laplace": [0.3679, 0.5114, 0.4483, 0.5573],
        },
        [0, 1, 2, 3],
        "hidden_layers",
    )


def talk_divergence() -> pd.DataFrame:
    """The talk's "Jensen-Shannon divergence" between normal fits of the per-draw corr
    means, by number of hidden layers (the talk does not say which prior; values above ln 2 show
    these are not the bounded JS divergence, see `divergences`)."""
    values = [
        [0.0, 1.4725, 1.1164, 2.4232],
        [1.4725, 0.0, 1.9590, 0.0855],
        [1.1164, 1.9590, 0.0, 2.0222],
        [2.4232, 0.0855, 2.0222, 0.0],
    ]
    frame = pd.DataFrame(values, index=pd.Index([0, 1, 2, 3], name="hidden_layers"),
                         columns=pd.Index([0, 1, 2, 3], name="hidden_layers"))
    frame.attrs["source"] = SOURCE
    return frame


def closest_pair(matrix: pd.DataFrame) -> tuple[int, int]:
    """The pair of depths (shallower first) whose divergence is the smallest."""
    pairs = matrix.stack()
    a, b = pairs[[i < j for i, j in pairs.index]].idxmin()
    return int(a), int(b)


def corr_claims() -> list:
    """The talk's findings on the corr by (depth, model) table."""
    ALL = list(PRIORS)
    return [
        Claim("the flat-prior BNN beats the baseline at 1-3 hidden layers but not at 0",
              lambda t: bool((t.loc[[1, 2, 3], "flat"] > t.loc[[1, 2, 3], "baseline"]).all()
                             and t.loc[0, "flat"] < t.loc[0, "baseline"])),
        Claim("the baseline's corr is highest with 2 hidden layers", lambda t: t["baseline"].idxmax() == 2),
        Claim("the linear model (0 hidden layers) is the worst depth for every prior",
              lambda t: bool((t.loc[0, ALL] < t.drop(index=0)[ALL].min()).all())),
    ]


def divergence_claims() -> list:
    """The talk's findings on its divergence matrix between depths."""
    return [
        Claim("1 and 3 hidden layers give the closest distributions", lambda m: closest_pair(m) == (1, 3)),
        Claim("the distance from the linear model does not grow steadily with depth",
              lambda m: not (m.loc[0, 1] < m.loc[0, 2] < m.loc[0, 3])),
    ]


def laplace_glance(table: pd.DataFrame) -> pd.DataFrame:
    """The intro's glance row for the `CONVERGED_PRIOR`: the depth with the best corr in the talk,
    at A and at B (`table`: `converged_findings`' table), and whether it is the talk's."""
    talk = talk_corr()[CONVERGED_PRIOR]
    best_talk = talk.idxmax()

    def best(snapshot: str) -> tuple[Any, str]:
        if table.empty:
            return None, "–"
        corr = table[f"corr {snapshot}"]
        verdict = joint_verdict(table[f"verdict {snapshot}"])
        return corr.idxmax(), f"{layers(corr.idxmax())} ({corr.max():.4f})" + (
            f" ({verdict})" if verdict != "converged" else "")

    (a, a_cell), (b, b_cell) = best("A"), best("B")
    parts = [f"{'holds' if d == best_talk else 'differs'} at {label}" for label, d in (("A", a), ("B", b)) if d is not None]
    return pd.DataFrame([{"study": "4: architecture",
                          "finding": f"the best depth under the {prior_label(CONVERGED_PRIOR)} prior",
                          "talk": f"{layers(best_talk)} ({talk.max():.4f})", GLANCE_COLUMNS[3]: a_cell,
                          GLANCE_COLUMNS[4]: b_cell, "Laplace": "–", "holds?": "; ".join(parts) or "–"}],
                        columns=list(GLANCE_COLUMNS))
