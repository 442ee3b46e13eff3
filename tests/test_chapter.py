"""The opening call's pieces: which names are parameters, the rerun command, glue-safe values."""

from __future__ import annotations

import shlex
import types

import numpy as np
import pandas as pd
import pytest
import yaml

from bnnlib.report import chapter

from bnnlib.build import runner
from bnnlib.project import book as project
from bnnlib.report.chapter import captured_parameters, parameters_table, plain, rerun_command

REPO = project.find_root()


def test_captured_parameters_keep_literals_and_drop_imports_and_ipython_names():
    namespace = {"__name__": "__main__", "_i1": "x", "In": [], "Out": {}, "get_ipython": print,
                 "pd": pd, "open_chapter": chapter.open_chapter, "module": types.ModuleType("m"),
                 "epochs": 2, "priors": ["flat"], "steps": None, "lr": 1e-3, "data_source": "synthetic",
                 "force": False}
    assert captured_parameters(namespace) == {"epochs": 2, "priors": ["flat"], "steps": None, "lr": 1e-3,
                                              "data_source": "synthetic", "force": False}


def test_plain_turns_numpy_scalars_into_python_numbers():
    assert type(plain(np.float64(0.5))) is float and type(plain(np.int64(3))) is int
    assert plain(np.bool_(True)) is True and plain("text") == "text"


def _params(profile: str, name: str) -> dict:
    import jupytext

    declared = project.declared_parameters(jupytext.read(REPO / "book" / f"{name}.py"))
    given = project.chapter_parameters(name, project.load_profile(profile, REPO), declared, profile_name=profile)
    return {**declared, **given}


@pytest.mark.parametrize("profile", ["quick", "default"])
def test_rerun_command_names_the_profile_that_gives_the_parameters(profile):
    assert rerun_command("ensembles", _params(profile, "ensembles"), REPO) == \
        f"bnnlib run ensembles --profile {profile}"


def test_rerun_command_sets_what_no_profile_gives_and_reads_back_as_yaml():
    params = {**_params("quick", "burn_eras"), "priors": ["laplace"], "draws": 7, "jobs": 2}
    command = rerun_command("burn_eras", params, REPO)
    assert command.startswith("bnnlib run burn_eras --profile quick -p ")
    words = shlex.split(command)
    pairs = {words[i + 1]: yaml.safe_load(words[i + 2]) for i, w in enumerate(words) if w == "-p"}
    assert pairs == {"priors": ["laplace"], "draws": 7}  # jobs is the runner's own option


def test_rerun_command_outside_the_project_lists_every_parameter(tmp_path):
    command = rerun_command("data", {"epochs": 3, "data_dir": "/data/v3"}, tmp_path)
    assert command == "bnnlib run data --profile default --data-dir /data/v3 -p epochs 3"


def test_parameters_table_writes_values_as_a_profile_does():
    table = parameters_table({"priors": ["flat"], "steps": None, "data_source": "synthetic"})
    assert table["value"].tolist() == ['["flat"]', "null", "synthetic"]
    assert table.index.name == "parameter"


def test_fits_caption_counts_verdicts_and_says_where_a_diverging_fit_stopped():
    table = pd.DataFrame({"verdict": ["converged", "diverging", "converged"],
                          "stopped_at_step": [None, 1234.0, None]}, index=["normal", "flat", "laplace"])
    caption = chapter.fits_caption(table, figure_number=4)
    assert caption.startswith("*Figure 4.")
    assert "Verdicts (2 converged; 1 diverging)" in caption
    assert "flat's loss stopped being finite at step 1,234" in caption
    assert "stopped being finite" not in chapter.fits_caption(table.drop(index="flat"), 1)


def test_nothing_in_the_package_or_the_book_names_a_file_outside_the_repository():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = [*root.glob("bnnlib/**/*.py"), *root.glob("book/*.py"), *root.glob("book/*.md"), root / "README.md"]
    named = [f"{p.relative_to(root)}: {word}" for p in sources for word in ("DESIGN.md", "shared/")
             if word in p.read_text()]
    assert named == []
