"""How every table the book shows prints its numbers, in one place: a corr reads the same on
every page, a missing value is a dash, a value that blew up says so, and nothing is printed in
scientific notation.

Only what a page displays goes through here; the exported CSVs keep full precision. Chapters do
not format tables themselves: `use_book_tables()` (called by the page frame) makes `html` IPython's
HTML formatter for DataFrames and Series, so `display(table)`, a cell's last value and a glued table
all come out formatted. The quantity a column holds is read from its label (`KINDS`); a column
this does not recognise gets four significant digits.
"""

from __future__ import annotations

import hashlib
import math
import re
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from bnnlib.studies.common import side_by_side

MISSING = "–"
"""What a missing value (NaN, None, an empty cell) shows: a dash, never `NaN` or a blank."""

DIVERGED = "diverged"
"""What a value that blew up shows: an infinite one, or one at least `DIVERGED_ABOVE` in size."""

DIVERGED_ABOVE = 1e9
"""No quantity this book shows reaches this size unless its fit diverged: per-row ELBOs and
stds are below 10, corr and Sharpe below 10, the largest ELBO in nats of a converging fit is
about (rows x 1 nat) < 1e8 on the v5 data, and counts are not floats. The flat prior's fits that
ran away reached 1e12 to 1e21."""

DECIMALS = {"corr": 4, "sharpe": 3, "auc": 3, "p_value": 3, "elbo_per_row": 5, "nats": 0, "share": 3,
            "seconds": 1, "count": 0}
"""Fixed decimals per quantity: corr 4, Sharpe 3, AUC 3, an ELBO per row 5, nats as whole numbers."""

KINDS: tuple[tuple[str, str], ...] = (
    (r"p[ _-]?value|^p$", "p_value"),
    (r"per[ _]row|/row", "elbo_per_row"),
    (r"elbo|nats|log[ _]?(evidence|marginal)", "nats"),
    (r"sharpe", "sharpe"),
    (r"auc", "auc"),
    (r"seconds|^time|minutes", "seconds"),
    (r"^n_|^n$|count|steps|rows|eras$|^draws$|^epochs$|workers|^fits$|^runs$", "count"),
    (r"coverage|share|fraction|probability|^p\(", "share"),
    (r"corr|drawdown", "corr"),
)
"""(pattern, quantity) in the order tried, against a column's label (lower case; the last level of
a two-level header): the first that matches decides. The order matters: `corr_burn_eras` is a count,
`elbo_per_row` is per row, not nats."""

EMPTY = "No row in this table for this run."
"""What an empty table shows instead of a header over nothing."""

SIGNIFICANT = 4
"""Significant digits of a number in a column whose quantity `KINDS` does not name."""

MAX_DECIMALS = 8


def kind_of(label: Any) -> str | None:
    """The quantity a column holds, from its label (`KINDS`); None when no pattern matches."""
    text = str(label[-1] if isinstance(label, tuple) else label).lower()
    for pattern, kind in KINDS:
        if re.search(pattern, text):
            return kind
    return None


def _decimals_for(values: np.ndarray) -> int:
    """Decimals that give a column of unnamed numbers `SIGNIFICANT` digits at its median size."""
    sizes = np.abs(values[np.isfinite(values) & (values != 0) & (np.abs(values) < DIVERGED_ABOVE)])
    if sizes.size == 0:
        return SIGNIFICANT
    leading = math.floor(math.log10(float(np.median(sizes))))
    return int(min(MAX_DECIMALS, max(0, SIGNIFICANT - 1 - leading)))


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip() == "" or value.strip().lower() in ("nan", "none")
    if isinstance(value, Real) and not isinstance(value, Integral):
        return math.isnan(float(value))
    return False


def number(value: Any, kind: str | None = None, decimals: int | None = None) -> str:
    """One value as the book prints it: `MISSING`, `DIVERGED`, a whole number with thousands
    separators, or fixed decimals (by `kind`, or `decimals`; four significant digits otherwise);
    never scientific notation, never `-0.000`."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (Integral, np.integer)):
        return f"{int(value):,}"
    if not isinstance(value, (Real, np.floating)):
        return str(value)
    x = float(value)
    if not math.isfinite(x) or abs(x) >= DIVERGED_ABOVE:
        return DIVERGED
    if kind == "p_value" and 0 <= x < 10 ** -DECIMALS["p_value"]:
        return f"< {10 ** -DECIMALS['p_value']:.{DECIMALS['p_value']}f}"
    if decimals is None:
        decimals = DECIMALS.get(kind) if kind else None
    if decimals is None:
        decimals = _decimals_for(np.array([x]))
    text = f"{x:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not re.search(r"[1-9]", text) else text


def _column_text(column: pd.Series, label: Any) -> list[str]:
    kind = kind_of(label)
    values = column.to_numpy()
    decimals = None
    if kind is None and pd.api.types.is_float_dtype(column.dtype):
        decimals = _decimals_for(values.astype(float))
    if kind == "count" and pd.api.types.is_float_dtype(column.dtype):
        finite = values[np.isfinite(values.astype(float))]
        if np.all(finite == np.round(finite)):
            return [MISSING if is_missing(v) else number(int(v)) if math.isfinite(v) else DIVERGED for v in values]
    return [number(v, kind, decimals) for v in values]


def formatted(table: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """The table with every cell as the text the book prints (same index and columns)."""
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    text = pd.DataFrame({i: _column_text(frame.iloc[:, i], label) for i, label in enumerate(frame.columns)},
                        index=frame.index)
    text.columns = frame.columns
    if isinstance(text.index, pd.MultiIndex):
        text.index = pd.MultiIndex.from_tuples([tuple(MISSING if is_missing(v) else v for v in row)
                                                for row in text.index], names=text.index.names)
    else:
        text.index = pd.Index([MISSING if is_missing(v) else v for v in text.index], name=text.index.name)
    return text


def _is_number_column(column: pd.Series, label: Any) -> bool:
    """Whether a column holds numbers (right-aligned, so digits line up) rather than text (left)."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return False
    if pd.api.types.is_numeric_dtype(column.dtype):
        return True
    values = [v for v in column if not is_missing(v)]
    return bool(values) and all(isinstance(v, (Real, np.number)) and not isinstance(v, bool) for v in values)


def html(table: pd.DataFrame | pd.Series) -> str:
    """The table as the book shows it: formatted cells, numbers right-aligned and text left, inside
    a box that scrolls sideways when the table is wider than the text column (nothing is cut off)."""
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    if frame.empty:  # a header over nothing reads as a failed page: say it
        return f"<p><em>{EMPTY}</em></p>"
    shown = formatted(frame)
    kinds = [("number" if _is_number_column(frame.iloc[:, i], label) else "text") for i, label in enumerate(frame.columns)]
    classes = pd.DataFrame([kinds] * len(shown), index=shown.index, columns=shown.columns)
    digest = hashlib.sha1(shown.to_csv().encode()).hexdigest()[:10]  # stable ids, distinct per table
    body = (shown.style.format(escape="html").format_index(escape="html", axis=0).format_index(escape="html", axis=1)
            .set_td_classes(classes).set_uuid(digest)
            .to_html(table_attributes='class="dataframe bnn-table"', cell_ids=False))
    return f'<div class="bnn-table-scroll" style="overflow-x: auto; max-width: 100%;">{body}</div>'


def text(table: pd.DataFrame | pd.Series) -> str:
    """The table as plain text, formatted the same way (for a terminal or a log)."""
    return formatted(table).to_string()


def use_book_tables() -> None:
    """Make `html` IPython's HTML formatter for DataFrames and Series in this kernel (no-op outside
    IPython): every table a page shows, and every table it glues, is then formatted here."""
    try:
        from IPython import get_ipython  # noqa: PLC0415 - only inside a kernel
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(pd.DataFrame, html)
    formatters["text/html"].for_type(pd.Series, html)
    formatters["text/plain"].for_type(pd.DataFrame, lambda table, printer, cycle: printer.text(text(table)))
    formatters["text/plain"].for_type(pd.Series, lambda table, printer, cycle: printer.text(text(table)))


# --------------------------------------------------------------------------- compound cells


def corr_sharpe(corr: pd.DataFrame, sharpe: pd.DataFrame) -> pd.DataFrame:
    """Cells "corr (Sharpe)" as the talk prints its grids (corr 4 decimals, Sharpe 3); `MISSING`
    where either is missing."""
    def cell(c: float, s: float) -> str:
        if is_missing(c) or is_missing(s):
            return MISSING
        return f"{number(c, 'corr')} ({number(s, 'sharpe')})"

    sharpe = sharpe.reindex(index=corr.index, columns=corr.columns)
    return pd.DataFrame(
        [[cell(c, s) for c, s in zip(crow, srow)] for crow, srow in zip(corr.to_numpy(), sharpe.to_numpy())],
        index=corr.index, columns=corr.columns,
    )



def corr_sharpe_side_by_side(corr: pd.DataFrame, sharpe: pd.DataFrame, talk_corr: pd.DataFrame,
                             talk_sharpe: pd.DataFrame, *, ours_label: str = "this run") -> pd.DataFrame:
    """Our "corr (Sharpe)" cells beside the talk's, as the talk prints its grids."""
    return side_by_side(corr_sharpe(corr, sharpe), corr_sharpe(talk_corr, talk_sharpe), ours_label=ours_label)
