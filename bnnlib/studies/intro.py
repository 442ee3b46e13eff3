"""The intro page (`book/intro.py`): "the findings at a glance", one row per finding of the talk.

Each study writes its own rows (`common.GLANCE_FILE` in its results folder, columns
`common.GLANCE_COLUMNS`) from the numbers its page shows; this page, executed after every chapter,
gathers them in the book's order. Nothing here computes a finding: a row is only as current as the
chapter run that wrote it, which the page says.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bnnlib.studies.common import GLANCE_COLUMNS, GLANCE_FILE


def collect_glance(results_root: Path | str, chapters: Sequence[str]) -> pd.DataFrame:
    """Every chapter's glance rows (those that wrote some), in the chapters' order; an empty
    table with `GLANCE_COLUMNS` before any chapter ran."""
    frames = [pd.read_csv(path, keep_default_na=False, dtype=str)
              for path in (Path(results_root) / name / GLANCE_FILE for name in chapters) if path.is_file()]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=list(GLANCE_COLUMNS))
    table = pd.concat(frames, ignore_index=True)
    return table.reindex(columns=list(GLANCE_COLUMNS)).fillna("–")


def glance_summary(table: pd.DataFrame) -> dict:
    """What the intro says around the table: how many findings, and how many hold at A and at B."""
    holds = table["holds?"].astype(str) if len(table) else pd.Series(dtype=str)

    def count(label: str, column: str) -> int:
        shown = table[column].astype(str) != "–" if len(table) else pd.Series(dtype=bool)
        return int(((holds == "holds") & shown | holds.str.contains(f"holds at {label}", regex=False)).sum())

    return {"glance_findings": int(len(table)), "glance_holds_a": count("A", GLANCE_COLUMNS[3]),
            "glance_holds_b": count("B", GLANCE_COLUMNS[4]),
            "glance_studies": int(table["study"].nunique()) if len(table) else 0}


def glance_view(table: pd.DataFrame) -> pd.DataFrame:
    """The table as the intro shows it: one row per finding under its study, the verdict on it
    ("holds?") first, then the talk's value and ours at A, at B and with Laplace."""
    columns = [GLANCE_COLUMNS[-1], *GLANCE_COLUMNS[2:-1]]
    return table.set_index(["study", "finding"])[columns]
