"""A chapter's run is published whole or not at all: results folder, notebook and stamp together,
under one lock per chapter; plain papermill never writes into the book's results.

Each test builds a throwaway project (tests/test_runner.py's make_project) whose chapter
exports through bnnlib.infra.results, as the book's chapters do.
"""

from __future__ import annotations

import os
import stat
import textwrap

import pytest

from bnnlib.studies.registry import SUMMARY_FILE

from bnnlib.infra import publish

from bnnlib.build import runner
from bnnlib.errors import BnnlibError
from test_runner import make_project  # tests/ is on sys.path (pytest prepend mode)

EXPORTS = '''\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
n = 1
results_dir = "_build/results/exports"

# %%
import pandas as pd
from bnnlib.infra import results
out = results.chapter_folder(results_dir, "exports")
results.write_csv(pd.DataFrame({"n": [n]}), out / "summary.csv")
results.write_csv(pd.DataFrame({"n": [n]}), out / "figures" / "more.csv")

# %%
if n < 0:
    raise ValueError("negative n")
'''

PROFILE = textwrap.dedent("""\
    description: a test profile
    common: {results_dir: "_build/results/{chapter}"}
    chapters: {}
    """)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_bnnlib_hash", lambda: "fixed-code-hash")
    return make_project(tmp_path, {"exports": EXPORTS}, PROFILE)


def published(root):
    """Every published file's bytes: the results, the notebook and the stamp."""
    files = [p for p in (root / "_build" / "results").rglob("*") if p.is_file()]
    files += [root / "book" / "exports.ipynb", root / "_build" / "executed" / "exports.json"]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_a_failing_run_leaves_the_published_run_as_it_was(project):
    runner.run_chapter("exports", "tiny", {"n": 1}, build=False, root=project)
    before = published(project)
    assert b"1" in before["_build/results/exports/summary.csv"]
    with pytest.raises(BnnlibError, match="negative n"):
        runner.run_chapter("exports", "tiny", {"n": -5}, build=False, root=project)
    assert published(project) == before  # the failing run had written its summary: not published
    left = sorted(p.name for p in (project / "_build" / "results").iterdir())
    assert left == sorted(["exports", SUMMARY_FILE])  # no staging left; the build's summary says what it cost


def test_a_successful_run_replaces_results_notebook_and_stamp_together(project):
    runner.run_chapter("exports", "tiny", {"n": 1}, build=False, root=project)
    (project / "_build" / "results" / "exports" / "stale.csv").write_text("from an older run")
    runner.run_chapter("exports", "tiny", {"n": 2}, build=False, root=project)
    folder = project / "_build" / "results" / "exports"
    assert sorted(p.name for p in folder.rglob("*")) == ["figures", "more.csv", "summary.csv"]
    assert "2" in (folder / "summary.csv").read_text()
    assert '"n": 2' in (project / "_build" / "executed" / "exports.json").read_text()


def test_published_results_are_readable_by_others(project):
    old = os.umask(0o022)
    try:
        runner.run_chapter("exports", "tiny", {}, build=False, root=project)
    finally:
        os.umask(old)
    folder = project / "_build" / "results" / "exports"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*.csv")} == {0o644}


def test_a_second_run_of_a_chapter_refuses_while_the_first_holds_it(project):
    with publish.locked(project, ["exports"]):
        with pytest.raises(BnnlibError, match=r"chapter 'exports' is being run by another bnnlib command \(pid"):
            runner.run_chapter("exports", "tiny", {}, build=False, root=project)
    assert not (project / "_build" / "results" / "exports").exists()
    runner.run_chapter("exports", "tiny", {}, build=False, root=project)  # released: runs


def test_results_changed_since_the_run_make_the_chapter_run_again(project, capsys):
    runner.run_chapter("exports", "tiny", {}, build=False, root=project)
    runner.run_chapter("exports", "tiny", {}, build=False, root=project)
    assert "unchanged, kept" in capsys.readouterr().out
    (project / "_build" / "results" / "exports" / "summary.csv").write_text("n\n99\n")  # e.g. another tool
    runner.run_chapter("exports", "tiny", {}, build=False, root=project)
    assert "unchanged, kept" not in capsys.readouterr().out
    assert "99" not in (project / "_build" / "results" / "exports" / "summary.csv").read_text()


def test_plain_papermill_writes_to_a_folder_of_its_own(project, monkeypatch):
    import jupytext
    import papermill

    runner.run_chapter("exports", "tiny", {"n": 1}, build=False, root=project)
    before = published(project)
    monkeypatch.delenv("BNNLIB_RESULTS_STAGING", raising=False)
    monkeypatch.delenv("BNNLIB_BOOK_RESULTS", raising=False)
    notebook = jupytext.read(project / "book" / "exports.py")
    papermill.execute_notebook(notebook, str(project / "out.ipynb"), parameters={"n": 7},
                               cwd=str(project), progress_bar=False, kernel_name="python3")
    assert published(project) == before
    assert "7" in (project / "_build" / "papermill" / "exports" / "summary.csv").read_text()


def test_a_second_command_on_the_same_chapter_refuses_with_one_line(tmp_path):
    """Two `bnnlib run` of one chapter at once (other seeds, say): the second refuses, the first
    publishes alone."""
    import subprocess
    import sys
    import time

    from test_interrupt import SLEEPER

    root = make_project(tmp_path, {"sleeper": SLEEPER.replace("time.sleep(600)", "time.sleep(8)")},
                        "description: d\ncommon: {}\nchapters: {}\n")
    command = [sys.executable, "-c", "import sys; from bnnlib.build.cli import main; sys.exit(main())",
               "run", "sleeper", "--profile", "tiny", "--no-build"]
    first = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (root / "kernel-started").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
        second = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
        first_out, first_err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1 and "chapter 'sleeper' is being run by another bnnlib command" in second.stderr
    assert first.returncode == 0, first_err
    assert (root / "_build" / "results" / "sleeper" / "partial.txt").is_file()
