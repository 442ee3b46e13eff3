"""The command line on bad input: one line on stderr, exit status 2, and nothing written.

The project is a copy of the repository's book (its chapters and profiles) in tmp_path, so
nothing here touches the repository's _build; every case fails while planning, before the
warm-up would fit anything.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from bnnlib.build import cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "book-copy"
    (root / "book").mkdir(parents=True)
    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(REPO / name, root / name)
    for path in (REPO / "book").iterdir():
        if path.suffix in (".py", ".md"):
            shutil.copy(path, root / "book" / path.name)
    shutil.copytree(REPO / "book" / "params", root / "book" / "params")
    monkeypatch.chdir(root)
    return root


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def fails_cleanly(capsys, argv: list[str], root: Path) -> str:
    """Run the command; check exit 2, one line on stderr, nothing new under `root`; the line."""
    before = files(root)
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("bnnlib: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert files(root) == before
    return err


@pytest.mark.parametrize("name, value, words", [
    ("priors", "[]", "priors = [] is empty"),
    ("draws", "1.5", "draws = 1.5 is not a whole number"),
    ("draws", "abc", "draws = 'abc'"),
    ("jobs", "0", "jobs = 0"),
    ("hidden", "64", "hidden = 64 is not a list"),
    ("data_root", "/proc/x", "data_root = '/proc/x' cannot be made"),
    ("dropout", "1", "dropout = 1 is not a number strictly between 0 and 1"),
    ("dropout", "0", "dropout = 0 is not a number strictly between 0 and 1"),
    ("hetero_prior", "cauchy", "hetero_prior = 'cauchy' is not a known prior"),
])
def test_bad_parameters_fail_before_the_warm_up(project, capsys, name, value, words):
    chapter = "uncertainty" if name in ("dropout", "hetero_prior") else "burn_eras"
    err = fails_cleanly(capsys, ["run", chapter, "--profile", "quick", "--jobs", "2", "--no-build",
                                 "-p", name, value], project)
    assert f"chapter '{chapter}'" in err and words in err


def test_a_data_dir_the_profile_does_not_read_is_an_error(project, capsys, tmp_path):
    err = fails_cleanly(capsys, ["run", "burn_eras", "--profile", "quick", "--data-dir", str(tmp_path),
                                 "--no-build"], project)
    assert "--data-dir" in err and "not used" in err and "synthetic" in err


@pytest.mark.parametrize("below", ["file", "proc"])
def test_synth_out_that_cannot_be_written_is_one_line(project, capsys, below):
    (project / "a-file").write_text("x")
    out = project / "a-file" / "data" if below == "file" else Path("/proc/bnnlib-test")
    err = fails_cleanly(capsys, ["data", "synth", "--profile", "tiny", "--out", str(out)], project)
    assert "--out" in err and str(out) in err


BAD_VALUES = {
    "priors": ["[]", "[cauchy]", "laplace,flat", "[flat, uniform]", "3", "{}"],
    "hidden": ["64", "[0]", "[-3, 4]", "[1.5]", "abc", "[[1]]"],
    "draws": ["0", "-1", "1.5", "abc", "[]", "null", "true"],
    "epochs": ["0", "2.5", "x", "-3"],
    "batch_size": ["0", "big", "1e3"],
    "steps": ["0", "-10", "1.5", "many"],
    "seed": ["-1", "1.5", "seed"],
    "jobs": ["0", "-2", "1000", "two"],
    "lr_bnn": ["0", "-0.001", "fast", ".nan"],
    "init_scale": ["0", "-1", "tiny"],
    "estimator": ["magic", "[output]", "3"],
    "precision": ["fp8", "16"],
    "synthetic_profile": ["huge", "3"],
    "data_source": ["kaggle", "[synthetic]"],
    "data_root": ["/proc/x/y", "a-file/below", "[]"],
    "cache_dir": ["/proc/x", "a-file/cache"],
    "force": ["maybe", "2"],
    "main_target": ["''", "[]", "3"],
}


def test_fuzz_random_bad_values_each_fail_cleanly(project, capsys):
    """Many random bad values, each alone: exit 2, one line naming the parameter, nothing written."""
    (project / "a-file").write_text("x")
    rng = random.Random(11)
    cases = [(name, value) for name, values in BAD_VALUES.items() for value in values]
    for name, value in rng.sample(cases, 40):
        chapter = rng.choice(["burn_eras", "ensembles", "target_hypotheses", "architecture"])
        argv = ["run", chapter, "--profile", "quick", "--no-build", "-p", name, value]
        if rng.random() < 0.5:
            argv += ["--jobs", "2"]
        err = fails_cleanly(capsys, argv, project)
        assert name in err, (argv, err)
