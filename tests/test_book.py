"""The whole book: every chapter executed on the quick profile, the HTML built with warnings
as errors, and the pages checked as a reader sees them. It works on a copy of the project in
tmp_path, so the repository's executed notebooks and _build (e.g. from `make book`) are left
alone; the copy carries its own bnnlib, so a test can edit the package without touching ours."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.build import runner
from bnnlib.project import book as project
from bnnlib.errors import BnnlibError

REPO = Path(__file__).resolve().parents[1]


def copy_project(destination: Path, package: bool = False) -> Path:
    """The book's sources (config, toc, chapters, profiles, bibliography, static files), without
    executed notebooks; with `package`, bnnlib too."""
    destination.mkdir()
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy2(REPO / name, destination / name)
    skip = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__")
    for folder in ("book", "_static", *(["bnnlib"] if package else [])):
        shutil.copytree(REPO / folder, destination / folder, ignore=skip)
    return destination


def build_in(root: Path) -> str:
    """`bnnlib book --profile quick` in `root` with root's own bnnlib (chapters' kernels too);
    returns what it printed."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", "import sys; from bnnlib.build.cli import main; sys.exit(main())",
                           "book", "--profile", "quick"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def page_text(page: Path) -> str:
    """A page's visible text: tags and styles dropped, entities decoded, spaces collapsed."""
    raw = re.sub(r"<(style|script)\b.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


TABLE_NOISE = re.compile(r"\bNaN\b|\bnan\b|\d[eE]\+\d+|\d[eE]-0\d")
"""What no table of the book may show: a missing value as NaN, a number in scientific notation."""


SHOWN_WIRING = re.compile(r"\bglue\w*\(|write_csv|export_figure|display\(|\.close\(")
"""What a code cell shown on a page never does: glue, export, display plumbing (tests/test_shown_cells.py
holds the chapters' sources to the same rule)."""


def page_problems(page: Path, chapter: str | None, machine_paths: list[str]) -> list[str]:
    """What a reader should never see on a page (warnings, tracebacks, the build machine's paths,
    files outside the repository), and, for a chapter, what it must show: the command that
    reruns it and a link to the references."""
    raw = page.read_text(encoding="utf-8")
    problems = [f"contains {word!r}" for word in ("Warning", "Traceback", "site-packages", "DESIGN.md", "shared/",
                                                 *machine_paths) if word in raw]
    for code in re.findall(r'<div class="cell_input\b.*?</pre>', raw, flags=re.S):
        shown = html.unescape(re.sub(r"<[^>]+>", "", code))
        if SHOWN_WIRING.search(shown):
            problems.append(f"shows a code cell that wires the page: {shown.strip()[:60]!r}")
    for table in re.findall(r"<table\b.*?</table>", raw, flags=re.S):
        cells = html.unescape(re.sub(r"<[^>]+>", " ", table))
        problems += [f"a table shows {shown!r}" for shown in sorted(set(TABLE_NOISE.findall(cells)))]
    if chapter is not None:
        if f"bnnlib run {chapter} --profile" not in page_text(page):
            problems.append(f"does not show the command `bnnlib run {chapter}`")
        if "references.html" not in raw:
            problems.append("does not link to the references")
    return problems


def cache_entries(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "_build" / "cache").rglob("*") if p.is_dir()}


def test_page_checks_catch_what_a_reader_should_not_see(tmp_path):
    page = tmp_path / "ensembles.html"
    page.write_text('<p>bnnlib run ensembles --profile quick</p><a href="references.html">References</a>')
    assert page_problems(page, "ensembles", [str(tmp_path)]) == []
    page.write_text(f"<pre>{tmp_path}/x.py: TqdmWarning: IProgress not found</pre>")
    problems = page_problems(page, "ensembles", [str(tmp_path)])
    assert "contains 'Warning'" in problems and f"contains {str(tmp_path)!r}" in problems
    assert len(problems) == 4  # also no command and no references link
    page.write_text('<p>bnnlib run ensembles --profile quick</p><a href="references.html">x</a>'
                    '<div class="cell_input docutils container"><pre><span>glue_all</span>(x)</pre></div>'
                    "<table><tr><td>NaN</td><td>-2.106302e+15</td><td>7.850000e-02</td><td>0.0146</td></tr></table>")
    assert page_problems(page, "ensembles", [str(tmp_path)]) == [
        "shows a code cell that wires the page: 'glue_all(x)'", "a table shows '0e-02'", "a table shows '2e+15'", "a table shows 'NaN'"]


def test_every_chapter_source_is_in_the_toc():
    listed = {c.source for c in project.list_chapters(REPO)}
    assert set((REPO / "book").glob("*.py")) == listed


def test_a_sphinx_warning_fails_the_build(tmp_path):
    root = copy_project(tmp_path / "project")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (root / "book" / "intro.py").unlink(missing_ok=True)  # the book's intro is a chapter; this one a plain page
    (root / "book" / "intro.md").write_text("# Title\n\n### A skipped heading level\n")
    with pytest.raises(BnnlibError, match="Non-consecutive header level"):
        runner.build_html(root)


@pytest.mark.book
def test_the_whole_book_builds_on_the_quick_profile(tmp_path):
    """Build the quick book in a copy of the project, check every page as a reader sees it, then
    edit a comment in bnnlib/report/plots.py and rebuild: every chapter reruns, no fit or score does."""
    root = copy_project(tmp_path / "project", package=True)
    build_in(root)
    html_dir = root / "_build" / "html"
    assert (html_dir / "index.html").is_file()
    assert (html_dir / "book" / "intro.html").is_file()
    assert (html_dir / "book" / "references.html").is_file()
    machine = [str(root), str(REPO), str(Path.home()), sys.prefix]
    problems = {}
    for chapter in project.list_chapters(root):
        assert chapter.notebook.is_file()
        page = html_dir / "book" / f"{chapter.name}.html"
        assert page.is_file(), f"{chapter.name} has no HTML page"
        problems[chapter.name] = page_problems(page, chapter.name, machine)
    for page in html_dir.rglob("*.html"):
        problems.setdefault(page.name, page_problems(page, None, machine))
    assert {name: p for name, p in problems.items() if p} == {}
    for chapter in project.list_chapters(root):
        assert "Markdown(f" not in chapter.source.read_text(encoding="utf-8"), chapter.name
    methods = pd.read_csv(root / "_build" / "results" / "uncertainty" / "summary.csv", index_col=0)
    assert {"flat", "normal", "laplace", "mc_dropout", "deep_ensemble", "baseline_bnn_lr", "feature_correlation",
            "covariance_distance", "baseline_dispersion"} <= set(methods.index)
    assert {"corr_mean", "corr_sharpe", "burn_auc", "covariate_shift_auc", "concept_drift_auc", "signal_corr",
            "coverage_50", "coverage_90", "fit_seconds", "score_seconds"} <= set(methods.columns)
    coverage = methods.loc[["normal", "mc_dropout", "deep_ensemble"], ["coverage_50", "coverage_90"]]
    assert coverage.notna().all().all() and coverage.stack().between(0, 1).all()
    assert (coverage["coverage_50"] <= coverage["coverage_90"]).all()  # the 90% interval holds the 50% one
    assert methods.loc["feature_correlation", "covariate_shift_auc"] > 0.5  # the shifts move the features

    entries = cache_entries(root)
    plots = root / "bnnlib" / "report" / "plots.py"
    plots.write_text(plots.read_text(encoding="utf-8") + "\n# a comment: presentation code changed\n")
    second = build_in(root)
    assert "unchanged, kept" not in second  # bnnlib changed, so every chapter executed again
    assert not re.search(r"\d+ fits? to run", second), second  # the warm-up found every fit and score cached
    assert cache_entries(root) == entries
    for chapter in project.list_chapters(root):
        counts = re.findall(r"(\d+) of (\d+) results read from the cache", chapter.notebook.read_text(encoding="utf-8"))
        assert counts and all(hits == total for hits, total in counts), (chapter.name, counts)
