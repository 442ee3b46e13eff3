"""A page shows code only where the code shows the reader how to use bnnlib: a cell that wires
the page (glue, exports, display plumbing, bookkeeping of fitted models) has its input removed."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
HIDDEN = {"remove-input", "remove-cell"}
WIRING = re.compile(r"\bglue\w*\(|write_csv|export_figure|display\(|\.close\(|results\.|for \w+, \w+ in|\.pop\(|"
                    r"^\s*(if|for|with)\b", re.MULTILINE)
MAX_LINES = 5
MAX_WIDTH = 80
"""Characters of a shown line: a code block of the book's theme shows about 80 before it scrolls."""


def shown_cells(path: Path) -> list[str]:
    notebook = jupytext.read(path)
    return [cell.source for cell in notebook.cells
            if cell.cell_type == "code" and not HIDDEN & set(cell.metadata.get("tags", []))]


@pytest.mark.parametrize("path", sorted(BOOK.glob("*.py")), ids=lambda p: p.stem)
def test_a_shown_cell_is_a_short_use_of_bnnlib(path):
    for source in shown_cells(path):
        assert not WIRING.search(source), f"{path.name}: a shown cell wires the page:\n{source}"
        lines = [line for line in source.splitlines() if line.strip()]
        assert len(lines) <= MAX_LINES, f"{path.name}: a shown cell of {len(lines)} lines:\n{source}"
        assert max(map(len, lines)) <= MAX_WIDTH, f"{path.name}: a shown line runs past the code block:\n{source}"
        assert "bnnlib" in source or re.search(r"\b(study|common|tables|card|chapter|dataset|fits)\.", source), \
            f"{path.name}: a shown cell that does not use bnnlib:\n{source}"


def test_every_chapter_shows_how_it_calls_bnnlib():
    for path in sorted(BOOK.glob("*.py")):
        if path.stem not in ("registry", "intro"):  # pages that gather the chapters
            assert shown_cells(path), f"{path.name} shows no code at all"
