"""The formatting layer: every table the book shows prints numbers one way, with no NaN, no
scientific notation and a word for a value that blew up."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bnnlib.report import tables

SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


@pytest.mark.parametrize("label, kind", [
    ("corr_mean", "corr"), ("numerai_corr_std", "corr"), ("ensemble_corr", "corr"),
    ("corr_sharpe", "sharpe"), ("draw_sharpe_mean", "sharpe"), ("burn_auc", "auc"), ("p_value", "p_value"),
    ("elbo_per_row_last", "elbo_per_row"), ("ELBO/row", "elbo_per_row"), ("log_evidence", "nats"),
    ("over the constant, nats in all", "nats"), ("corr_burn_eras", "count"), ("fit_seconds", "seconds"),
    (("this run", "corr"), "corr"), ("coverage_90", "share"), ("hidden_layers", None),
])
def test_a_columns_quantity_is_read_from_its_label(label, kind):
    assert tables.kind_of(label) == kind


def test_each_quantity_has_its_decimals():
    assert tables.number(0.0123456, "corr") == "0.0123"
    assert tables.number(0.54321, "sharpe") == "0.543"
    assert tables.number(0.45, "auc") == "0.450"
    assert tables.number(-0.0785, "elbo_per_row") == "-0.07850"
    assert tables.number(-196_812.4, "nats") == "-196,812"
    assert tables.number(0.00001, "p_value") == "< 0.001"
    assert tables.number(12345, None) == "12,345"


def test_missing_and_diverged_values_are_words():
    for missing in (np.nan, None, "", float("nan"), pd.NA):
        assert tables.number(missing, "corr") == tables.MISSING
    assert tables.number(-2.106302e15, "nats") == tables.DIVERGED
    assert tables.number(float("inf"), "elbo_per_row") == tables.DIVERGED
    assert tables.number(4.07e12) == tables.DIVERGED


def test_no_negative_zero():
    assert tables.number(-0.00001, "corr") == "0.0000"


def test_unnamed_columns_keep_four_significant_digits_at_their_size():
    table = pd.DataFrame({"mean_std_burn": [2.018545e-03, 2.019880e-03]})
    assert list(tables.formatted(table)["mean_std_burn"]) == ["0.002019", "0.002020"]


def test_a_rendered_table_has_no_nan_and_no_scientific_notation():
    table = pd.DataFrame(
        {"corr": [0.01, np.nan, -1e-7], "elbo_per_row_last": [7.85e-2, -2.1e15, np.nan],
         "elbo": [-9615083088775.06, -1.2e5, 3.0], "corr_burn_eras": [3.0, np.nan, 10.0], "at prior": ["1/3", "", None],
         "x": [1e-12, 3e-5, 2e-5]},
        index=pd.Index(["a", "b", np.nan], name="model"))
    page = tables.html(table)
    assert "NaN" not in page and "nan" not in page and "None" not in page
    assert not SCIENTIFIC.search(page)
    assert "overflow-x: auto" in page
    shown = tables.formatted(table)
    assert shown.loc["a", "corr_burn_eras"] == "3" and shown.loc["b", "corr_burn_eras"] == tables.MISSING
    assert shown.loc["b", "at prior"] == tables.MISSING


def test_a_two_level_header_is_formatted_by_its_last_level():
    table = pd.concat({"this run": pd.DataFrame({"corr": [0.0146], "sharpe": [0.5461]}),
                       "talk (2021)": pd.DataFrame({"corr": [np.nan], "sharpe": [0.7]})}, axis=1)
    shown = tables.formatted(table)
    assert shown[("this run", "corr")].iloc[0] == "0.0146"
    assert shown[("this run", "sharpe")].iloc[0] == "0.546"
    assert shown[("talk (2021)", "corr")].iloc[0] == tables.MISSING


def test_ipython_shows_dataframes_through_the_layer():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        tables.use_book_tables()
        bundle, _ = shell.display_formatter.format(pd.DataFrame({"corr": [np.nan, 0.5]}))
        assert tables.MISSING in bundle["text/html"] and "NaN" not in bundle["text/html"]
        assert "NaN" not in bundle["text/plain"]
    finally:
        InteractiveShell.clear_instance()


def test_an_empty_table_says_so():
    assert tables.EMPTY in tables.html(pd.DataFrame({"corr": []}))
