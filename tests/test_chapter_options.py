"""Documented chapter options that change what a chapter shows, run end to end on the quick
profile in a copy of the project (slow: marked `book`, so it runs after the unit tests)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_book import copy_project


@pytest.mark.book
def test_the_uncertainty_chapter_runs_without_the_heteroscedastic_bnn(tmp_path):
    """`-p hetero_prior null` is documented as "no epistemic/aleatoric split": the chapter runs,
    fits no heteroscedastic BNN, writes no variance split, and says so on its page."""
    root = copy_project(tmp_path / "project", package=True)
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", "import sys; from bnnlib.build.cli import main; sys.exit(main())",
                           "run", "uncertainty", "--profile", "quick", "--no-build", "-p", "hetero_prior", "null"],
                          cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    results = root / "_build" / "results" / "uncertainty"
    assert (results / "summary.csv").is_file() and not (results / "variance_split.csv").exists()
    runs = (results / "runs.csv").read_text()
    assert "hetero" not in runs and "mc_dropout" in runs
    notebook = (root / "book" / "uncertainty.ipynb").read_text(encoding="utf-8")
    assert "This run has no heteroscedastic BNN (hetero_prior is null)" in notebook
    assert not list(results.rglob("epistemic_aleatoric*"))  # no figure of a split
