"""The talk's published tables, as data, so each chapter can set them beside its own numbers.

These are the numbers printed in the Numerai Meetup Japan 2021 talk: real Numerai v3 data, 30 epochs, 1000 posterior draws. They are the talk's,
never ours: each function returns a fresh DataFrame whose ``attrs["source"]`` says so, keyed by
the same row and column names that `bnnlib.studies.analysis` gives our tables (priors by the engine's
names: the talk's "uniform" prior is "flat" here), so a table of ours and the talk's line up.
"""

from __future__ import annotations

import pandas as pd

SOURCE = "the talk (Numerai Meetup Japan 2021, real Numerai v3 data)"
PRIORS = ("flat", "normal", "laplace")
PRIOR_LABELS = {"flat": "flat (talk: uniform)", "normal": "normal", "laplace": "Laplace"}
TALK_BURN_ERAS_OF = 105  # validation eras of Numerai v3
BEST_EPOCH = 5  # the baseline's epoch with the highest validation corr, in the talk
EPOCHS = 30  # the talk's training epochs (baseline and BNNs)


def prior_label(prior: str) -> str:
    """How the book names a prior (the talk's word beside ours); other names pass unchanged."""
    return PRIOR_LABELS.get(prior, prior)


def prior_labels(priors) -> str:
    """Several priors' labels, comma-separated ('none' for none)."""
    return ", ".join(prior_label(p) for p in priors) or "none"


def _frame(data: dict, index: list, name: str) -> pd.DataFrame:
    frame = pd.DataFrame(data, index=pd.Index(index, name=name))
    frame.attrs["source"] = SOURCE
    return frame


def study1_scores() -> pd.DataFrame:
    """Study 1: validation corr (mean of the 2021 per-era corr) and Sharpe of each model."""
    return _frame(
        {
            "corr": [0.0145, 0.0199, 0.0167, 0.0185, 0.0191, 0.0153],
            "sharpe": [0.6422, 0.6454, 0.5038, 0.5573, 0.6489, 0.5035],
        },
        ["baseline", "flat", "normal", "laplace", "baseline_best_epoch", "nn_starter"],
        "model",
    )


def study1_draws() -> pd.DataFrame:
    """Study 1: per-draw corr mean and Sharpe (mean and std over 1000 draws) vs the ensemble."""
    return _frame(
        {
            "draw_corr_mean": [0.0142, 0.0049, 0.0123],
            "draw_corr_std": [0.0023, 0.0072, 0.0020],
            "ensemble_corr": [0.0199, 0.0167, 0.0185],
            "draw_sharpe_mean": [0.5764, 0.2107, 0.4989],
            "draw_sharpe_std": [0.0908, 0.3021, 0.0673],
            "ensemble_sharpe": [0.6454, 0.5038, 0.5573],
        },
        list(PRIORS),
        "prior",
    )


def study2_burn() -> pd.DataFrame:
    """Study 2: AUC of the era's mean predictive std as a burn-era detector, and burn-era counts."""
    return _frame(
        {"auc": [0.4679, 0.6010, 0.6245], "burn_eras": [28, 33, 31],
         "n_eras": [TALK_BURN_ERAS_OF] * 3},
        list(PRIORS),
        "prior",
    )


def study3_corr() -> pd.DataFrame:
    """Study 3: validation corr on the main target, hypothesis x prior ('single' = study 1's BNN)."""
    return _frame(
        {
            "flat": [0.0151, 0.0171, 0.0130, 0.0146, 0.0199],
            "normal": [0.0110, 0.0080, 0.0136, 0.0144, 0.0167],
            "laplace": [0.0122, 0.0075, 0.0136, 0.0139, 0.0185],
        },
        ["h1", "h2", "h3", "h4", "single"],
        "hypothesis",
    )


def study3_sharpe() -> pd.DataFrame:
    """Study 3: the Sharpe ratios that go with `study3_corr`."""
    return _frame(
        {
            "flat": [0.5794, 0.5891, 0.5458, 0.6991, 0.6454],
            "normal": [0.3735, 0.3236, 0.6621, 0.7036, 0.5038],
            "laplace": [0.4161, 0.3040, 0.5867, 0.6379, 0.5573],
        },
        ["h1", "h2", "h3", "h4", "single"],
        "hypothesis",
    )


def architecture_corr() -> pd.DataFrame:
    """Appendix: validation corr by number of hidden layers (0-3) and model."""
    return _frame(
        {
            "baseline": [0.0156, 0.0164, 0.0169, 0.0145],
            "flat": [0.0134, 0.0199, 0.0175, 0.0199],
            "normal": [0.0093, 0.0174, 0.0147, 0.0167],
            "laplace": [0.0115, 0.0171, 0.0132, 0.0185],
        },
        [0, 1, 2, 3],
        "hidden_layers",
    )


def architecture_sharpe() -> pd.DataFrame:
    """Appendix: the Sharpe ratios that go with `architecture_corr`."""
    return _frame(
        {
            "baseline": [0.5838, 0.5481, 0.5948, 0.6422],
            "flat": [0.4077, 0.6599, 0.6086, 0.6454],
            "normal": [0.3236, 0.5152, 0.4641, 0.5038],
            "laplace": [0.3679, 0.5114, 0.4483, 0.5573],
        },
        [0, 1, 2, 3],
        "hidden_layers",
    )


def architecture_divergence() -> pd.DataFrame:
    """Appendix: the talk's "Jensen-Shannon divergence" between normal fits of the per-draw corr
    means, by number of hidden layers (the talk does not say which prior; values above ln 2 show
    these are not the bounded JS divergence, see the architecture chapter)."""
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


# --------------------------------------------------------------------------- the talk's findings
# Each finding is a test on a table, checked on the talk's numbers and on ours alike
# (bnnlib.studies.analysis.check_claims). A finding about "every prior" needs all three priors; with
# fewer it cannot be checked (the test raises KeyError, which reads as "not checkable").


def _drop_20d(t: pd.DataFrame) -> pd.Series:
    """How much corr the one-target BNN loses under H1 and H2 (mean of the two), per prior."""
    return t["corr"].loc["single"] - t["corr"].loc[["h1", "h2"]].mean()


def closest_pair(matrix: pd.DataFrame) -> tuple[int, int]:
    """The pair of depths (shallower first) whose divergence is the smallest."""
    pairs = matrix.stack()
    a, b = pairs[[i < j for i, j in pairs.index]].idxmin()
    return int(a), int(b)


def study1_claims() -> list:
    """Study 1's findings on the table of validation corr and Sharpe per model."""
    from bnnlib.studies.analysis import Claim

    ALL = list(PRIORS)
    return [
        Claim("every BNN ensemble's corr is above the baseline's",
              lambda t: all(t.loc[p, "corr"] > t.loc["baseline", "corr"] for p in ALL)),
        Claim("the flat prior has the best Sharpe of the baseline and the BNNs",
              lambda t: t.loc[["baseline", *ALL], "sharpe"].idxmax() == "flat"),
        Claim("the baseline has the second-best Sharpe",
              lambda t: t.loc[["baseline", *ALL], "sharpe"].sort_values().index[-2] == "baseline"),
        Claim("the Laplace prior's corr is above the Normal prior's",
              lambda t: t.loc["laplace", "corr"] > t.loc["normal", "corr"]),
        Claim("the best-epoch baseline's corr is above the 30-epoch baseline's",
              lambda t: t.loc["baseline_best_epoch", "corr"] > t.loc["baseline", "corr"]),
    ]


def study1_draw_claims() -> list:
    """Study 1's findings on the draws-versus-ensemble table."""
    from bnnlib.studies.analysis import Claim

    ALL = list(PRIORS)
    return [
        Claim("for every prior, the ensemble's corr is above the mean of its draws' corr",
              lambda t: bool((t.loc[ALL, "ensemble_corr"] > t.loc[ALL, "draw_corr_mean"]).all())),
        Claim("for every prior, the ensemble's Sharpe is above the mean of its draws' Sharpe",
              lambda t: bool((t.loc[ALL, "ensemble_sharpe"] > t.loc[ALL, "draw_sharpe_mean"]).all())),
        Claim("the Normal prior's draws vary the most (largest std of per-draw corr)",
              lambda t: t.loc[ALL, "draw_corr_std"].idxmax() == "normal"),
    ]


def study2_claims() -> list:
    """Study 2's findings on the burn-era detection table."""
    from bnnlib.studies.analysis import Claim

    return [
        Claim("the flat prior's AUC is below chance (0.5)", lambda t: t.loc["flat", "auc"] < 0.5),
        Claim("the Normal prior's AUC is above chance", lambda t: t.loc["normal", "auc"] > 0.5),
        Claim("the Laplace prior's AUC is above chance", lambda t: t.loc["laplace", "auc"] > 0.5),
        Claim("the Laplace prior has the highest AUC", lambda t: t.loc[list(PRIORS), "auc"].idxmax() == "laplace"),
        Claim("some AUC above 0.5 is significant at the 5% level (one-sided)",
              lambda t: bool(((t["auc"] > 0.5) & (t["p_value"] < 0.05)).any())),
    ]


def study3_claims() -> list:
    """Study 3's findings on the (hypothesis, prior) corr and Sharpe tables (columns corr, sharpe)."""
    from bnnlib.studies.analysis import Claim

    ALL = list(PRIORS)
    return [
        Claim("with the three 20-day targets (H1, H2) the corr is below the one-target BNN's for every prior",
              lambda t: bool((t["corr"].loc[["h1", "h2"], ALL] < t["corr"].loc["single", ALL]).all().all())),
        Claim("the Normal and Laplace priors lose more corr under H1 and H2 than the flat prior",
              lambda t: bool(_drop_20d(t)["normal"] > _drop_20d(t)["flat"]
                             and _drop_20d(t)["laplace"] > _drop_20d(t)["flat"])),
        Claim("with the 60-day target (H3, H4) the mean Sharpe is above that of H1, H2",
              lambda t: bool(t["sharpe"].loc[["h3", "h4"], ALL].mean().mean()
                             > t["sharpe"].loc[["h1", "h2"], ALL].mean().mean())),
        Claim("H4's Sharpe is above the one-target BNN's for every prior",
              lambda t: bool((t["sharpe"].loc["h4", ALL] > t["sharpe"].loc["single", ALL]).all())),
    ]


def architecture_claims() -> list:
    """The appendix's findings on the corr by (depth, model) table."""
    from bnnlib.studies.analysis import Claim

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
    """The appendix's findings on the divergence matrix between depths."""
    from bnnlib.studies.analysis import Claim

    return [
        Claim("1 and 3 hidden layers give the closest distributions", lambda m: closest_pair(m) == (1, 3)),
        Claim("the distance from the linear model does not grow steadily with depth",
              lambda m: not (m.loc[0, 1] < m.loc[0, 2] < m.loc[0, 3])),
    ]
