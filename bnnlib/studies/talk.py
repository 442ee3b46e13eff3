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
