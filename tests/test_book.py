"""The whole book: every chapter executed on the quick profile, the HTML built with warnings
as errors. It works on a copy of the project in tmp_path, so the repository's executed
notebooks and _build (e.g. from `make book`) are left alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bnnlib import runner
from bnnlib.errors import BnnlibError

REPO = Path(__file__).resolve().parents[1]


def copy_project(destination: Path) -> Path:
    """The book's sources (config, toc, chapters, profiles), without executed notebooks."""
    destination.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / name, destination / name)
    shutil.copytree(
        REPO / "book", destination / "book",
        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"),
    )
    return destination


def test_every_chapter_source_is_in_the_toc():
    listed = {c.source for c in runner.list_chapters(REPO)}
    assert set((REPO / "book").glob("*.py")) == listed


def test_a_sphinx_warning_fails_the_build(tmp_path):
    root = copy_project(tmp_path / "project")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (root / "book" / "intro.md").write_text("# Title\n\n### A skipped heading level\n")
    with pytest.raises(BnnlibError, match="Non-consecutive header level"):
        runner.build_html(root)


@pytest.mark.book
def test_the_whole_book_builds_on_the_quick_profile(tmp_path):
    root = copy_project(tmp_path / "project")
    index = runner.build_book("quick", root=root)
    assert index == root / "_build" / "html" / "index.html"
    assert index.is_file()
    html = root / "_build" / "html"
    assert (html / "book" / "intro.html").is_file()
    for chapter in runner.list_chapters(root):
        assert chapter.notebook.is_file()
        page = html / "book" / f"{chapter.name}.html"
        assert page.is_file(), f"{chapter.name} has no HTML page"
        assert "Traceback" not in page.read_text(encoding="utf-8")
