"""The runner: profiles, chapters, parameter injection, failures, skipping unchanged chapters.

Each test builds a tiny throwaway project in tmp_path (its own _toc.yml, profile and chapters),
so nothing here touches the repository's book or _build.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import nbformat
import pytest

from bnnlib.build import runner
from bnnlib.project import book as project
from bnnlib.errors import BnnlibError

REPO = Path(__file__).resolve().parents[1]

ECHO = '''\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Echo

# %% tags=["parameters"]
alpha = 1
beta: int = 2
data_dir = None
jobs = 1
force = False

# %%
import json, pathlib
with open("runs.txt", "a") as f:
    f.write("echo\\n")
pathlib.Path("echo.json").write_text(
    json.dumps({"alpha": alpha, "beta": beta, "data_dir": data_dir, "jobs": jobs, "force": force})
)
'''

FAILING = '''\
# %% [markdown]
# # Fails

# %% tags=["parameters"]
n = 1

# %%
x = n + 1

# %%
raise ValueError(f"bad n {n}")

# %%
print("never")
'''

PLAIN = '''\
# %% [markdown]
# # Plain, no parameters cell

# %%
y = 2
'''


def make_project(tmp_path: Path, chapters: dict[str, str], profile: str | None = None) -> Path:
    """A minimal book project: intro, the given chapters (in order), one profile 'tiny'."""
    root = tmp_path / "project"
    (root / "book" / "params").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n\nA test book.\n")
    toc = "format: jb-book\nroot: book/intro\nchapters:\n" + "".join(
        f"- file: book/{name}\n" for name in chapters
    )
    (root / "_toc.yml").write_text(toc)
    for name, text in chapters.items():
        (root / "book" / f"{name}.py").write_text(text)
    (root / "book" / "params" / "tiny.yml").write_text(
        profile
        or textwrap.dedent(
            """\
            description: a test profile
            common: {alpha: 10, gamma: 3}
            chapters:
              echo: {beta: 20}
            """
        )
    )
    return root


@pytest.fixture(autouse=True)
def stable_code_hash(monkeypatch):
    """Other edits to bnnlib's source must not make a chapter look changed during a test."""
    monkeypatch.setattr(runner, "_bnnlib_hash", lambda: "fixed-code-hash")


def runs(root: Path) -> int:
    path = root / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


# --------------------------------------------------------------------------- no execution


def test_repository_profiles_load_and_plan_every_chapter(tmp_path):
    names = project.list_profiles(REPO)
    assert {"quick", "default", "numerai"} <= set(names)
    chapters = project.list_chapters(REPO)
    for name in names:
        settings = project.load_profile(name, REPO)
        assert settings["description"]
        runner._check_profile_chapters(settings, chapters, name)
        real = settings["common"].get("data_source") == "numerai"
        values = runner._runner_values(tmp_path if real else None, False, 1)  # --data-dir only where read
        for chapter in chapters:
            plan = runner.plan_chapter(chapter, settings, profile_name=name, runner=values, root=REPO)
            assert set(plan.params) <= set(project.declared_parameters(plan.notebook))


def test_unknown_profile_lists_the_profiles(tmp_path):
    root = make_project(tmp_path, {"echo": ECHO})
    with pytest.raises(BnnlibError, match=r"unknown profile 'nope'.*'tiny'"):
        runner.build_book("nope", root=root)


def test_unknown_chapter_lists_the_chapters(tmp_path):
    root = make_project(tmp_path, {"echo": ECHO, "plain": PLAIN})
    with pytest.raises(BnnlibError, match=r"unknown chapter 'nope'.*'echo', 'plain'"):
        runner.run_chapter("nope", "tiny", {}, root=root)


def test_undeclared_override_lists_the_declared_parameters(tmp_path):
    root = make_project(tmp_path, {"echo": ECHO})
    with pytest.raises(BnnlibError, match=r"gamma.*alpha, beta, data_dir, force, jobs"):
        runner.run_chapter("echo", "tiny", {"gamma": 1}, root=root)
    assert runs(root) == 0


def test_profile_block_with_an_undeclared_name_is_an_error(tmp_path):
    profile = "description: d\ncommon: {}\nchapters:\n  echo: {betta: 1}\n"
    root = make_project(tmp_path, {"echo": ECHO}, profile)
    with pytest.raises(BnnlibError, match=r"chapters.echo.*betta"):
        runner.build_book("tiny", root=root)


def test_profile_naming_a_chapter_not_in_the_toc_is_an_error(tmp_path):
    profile = "description: d\ncommon: {}\nchapters:\n  ghost: {}\n"
    root = make_project(tmp_path, {"echo": ECHO}, profile)
    with pytest.raises(BnnlibError, match=r"'ghost'.*chapters: echo"):
        runner.build_book("tiny", root=root)


def test_profile_with_unknown_keys_is_an_error(tmp_path):
    root = make_project(tmp_path, {"echo": ECHO}, "description: d\ncomon: {}\n")
    with pytest.raises(BnnlibError, match="comon"):
        project.load_profile("tiny", root)


def test_chapters_follow_the_toc_and_skip_markdown_pages(tmp_path):
    root = make_project(tmp_path, {"plain": PLAIN, "echo": ECHO})
    (root / "book" / "notes.md").write_text("# Notes\n")
    toc = "format: jb-book\nroot: book/intro\nparts:\n- caption: A\n  chapters:\n  - file: book/plain\n" \
          "  - file: book/notes\n  - file: book/echo.py\n"
    (root / "_toc.yml").write_text(toc)
    assert [c.name for c in project.list_chapters(root)] == ["plain", "echo"]
    (root / "_toc.yml").write_text(toc + "  - file: book/missing\n")
    with pytest.raises(BnnlibError, match="book/missing"):
        project.list_chapters(root)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("3", 3), ("0.5", 0.5), ("null", None), ('["laplace"]', ["laplace"]), ("laplace", "laplace"),
     ("true", True), ("{a: 1}", {"a": 1})],
)
def test_parse_overrides_reads_values_as_yaml(value, parsed):
    assert project.parse_overrides([["x", value]]) == {"x": parsed}


def test_parse_overrides_rejects_bad_input():
    assert project.parse_overrides(None) == {}
    with pytest.raises(BnnlibError, match="twice"):
        project.parse_overrides([["x", "1"], ["x", "2"]])
    with pytest.raises(BnnlibError, match="not valid YAML"):
        project.parse_overrides([["x", "[1, 2"]])
    with pytest.raises(BnnlibError, match="not a Python name"):
        project.parse_overrides([["no-dash", "1"]])


def test_declared_parameters_reads_the_tagged_cell():
    import jupytext

    notebook = jupytext.reads(ECHO, fmt="py:percent")
    assert project.declared_parameters(notebook) == {
        "alpha": 1, "beta": 2, "data_dir": None, "jobs": 1, "force": False,
    }
    assert project.declared_parameters(jupytext.reads(PLAIN, fmt="py:percent")) == {}


def test_injection_keeps_only_declared_names_in_order_of_precedence():
    profile = {"common": {"alpha": 1, "gamma": 3, "jobs": 9}, "chapters": {"echo": {"beta": 2}}}
    declared = {"alpha": 0, "beta": 0, "jobs": 1, "force": False}
    params = project.chapter_parameters(
        "echo", profile, declared, overrides={"alpha": 5}, runner={"jobs": 2, "force": True}
    )
    assert params == {"alpha": 5, "beta": 2, "jobs": 2, "force": True}


def test_chapter_name_is_substituted_in_profile_strings():
    profile = {"common": {"results_dir": "_build/results/{chapter}", "n": 3}, "chapters": {}}
    params = project.chapter_parameters("echo", profile, {"results_dir": None, "n": 0})
    assert params == {"results_dir": "_build/results/echo", "n": 3}


def test_numerai_data_needs_a_data_dir(tmp_path):
    profile = "description: d\ncommon: {data_source: numerai, data_dir: null}\n"
    chapter = ECHO.replace("data_dir = None", "data_dir = None\ndata_source = 'synthetic'")
    root = make_project(tmp_path, {"echo": chapter}, profile)
    with pytest.raises(BnnlibError, match="--data-dir DIR"):
        runner.build_book("tiny", root=root)
    with pytest.raises(BnnlibError, match="is not a folder"):
        runner.build_book("tiny", data_dir=tmp_path / "absent", root=root)
    assert runs(root) == 0


def test_bad_jobs_is_an_error(tmp_path):
    root = make_project(tmp_path, {"echo": ECHO})
    with pytest.raises(BnnlibError, match="--jobs"):
        runner.build_book("tiny", jobs=0, root=root)


def test_building_html_before_executing_says_what_to_run(tmp_path):
    root = make_project(tmp_path, {"echo": ECHO})
    with pytest.raises(BnnlibError, match=r"not executed yet: echo.*bnnlib book"):
        runner.build_html(root)


# --------------------------------------------------------------------------- execution


def test_run_injects_profile_runner_and_override_values(tmp_path, capsys):
    root = make_project(tmp_path, {"echo": ECHO})
    data = tmp_path / "data"
    data.mkdir()
    out = runner.run_chapter(
        "echo", "tiny", {"beta": 7}, data_dir=data, jobs=3, build=False, root=root
    )
    assert out == root / "book" / "echo.ipynb"
    seen = json.loads((root / "echo.json").read_text())  # written in the project root (cwd)
    assert seen == {"alpha": 10, "beta": 7, "data_dir": str(data.resolve()), "jobs": 3, "force": False}
    notebook = nbformat.read(out, as_version=4)
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "gamma" not in injected[0].source
    assert notebook.metadata.kernelspec.name == "python3"
    assert "[1/1] echo ..." in capsys.readouterr().out


def test_failing_cell_names_chapter_and_cell_and_keeps_the_partial_notebook(tmp_path):
    root = make_project(tmp_path, {"failing": FAILING}, "description: d\ncommon: {n: 4}\n")
    with pytest.raises(BnnlibError) as caught:
        runner.build_book("tiny", root=root)
    message = str(caught.value)
    assert "chapter 'failing'" in message
    assert "ValueError: bad n 4" in message
    assert "raise ValueError" in message
    failed = root / "_build" / "failed" / "failing.ipynb"
    assert str(failed.relative_to(root)) in message
    assert "code cell 3 of book/failing.py" in message
    count = int(message.split("failed at In [")[1].split("]")[0])
    notebook = nbformat.read(failed, as_version=4)
    [cell] = [c for c in notebook.cells if c.get("execution_count") == count]
    assert "raise ValueError" in cell.source
    assert not (root / "book" / "failing.ipynb").exists()
    assert not (root / "_build" / "executing" / "failing.ipynb").exists()


def test_unchanged_chapter_is_not_executed_again(tmp_path, capsys):
    root = make_project(tmp_path, {"echo": ECHO})
    runner.run_chapter("echo", "tiny", {}, build=False, root=root)
    assert runs(root) == 1
    first = (root / "book" / "echo.ipynb").read_bytes()

    runner.run_chapter("echo", "tiny", {}, jobs=2, build=False, root=root)  # jobs: same results
    assert runs(root) == 1
    assert (root / "book" / "echo.ipynb").read_bytes() == first
    assert "unchanged" in capsys.readouterr().out

    runner.run_chapter("echo", "tiny", {}, force=True, build=False, root=root)
    assert runs(root) == 2
    runner.run_chapter("echo", "tiny", {"alpha": 11}, build=False, root=root)  # a new value
    assert runs(root) == 3
    source = root / "book" / "echo.py"
    source.write_text(source.read_text() + "\n# %%\nz = 1\n")  # an edited chapter
    runner.run_chapter("echo", "tiny", {"alpha": 11}, build=False, root=root)
    assert runs(root) == 4
    (root / "book" / "echo.ipynb").write_text("{}")  # the executed notebook was overwritten
    runner.run_chapter("echo", "tiny", {"alpha": 11}, build=False, root=root)
    assert runs(root) == 5


def plans_of(root: Path, profile: str, **runner_values) -> list:
    settings = project.load_profile(profile, root)
    return [runner.plan_chapter(c, settings, profile_name=profile, runner=runner_values)
            for c in project.list_chapters(root)]


def test_with_jobs_chapters_run_side_by_side_each_reported(tmp_path, capsys):
    root = make_project(tmp_path, {"echo": ECHO, "plain": PLAIN})
    runner._run_plans(plans_of(root, "tiny", jobs=2), root, force=False, jobs=2)
    out = capsys.readouterr().out
    assert "[1/2] echo ..." in out and "[2/2] plain ..." in out
    assert (root / "book" / "echo.ipynb").is_file() and (root / "book" / "plain.ipynb").is_file()
    assert json.loads((root / "echo.json").read_text())["jobs"] == 2
    runner._run_plans(plans_of(root, "tiny", jobs=2), root, force=False, jobs=2)
    assert capsys.readouterr().out.count("unchanged, kept") == 2


def test_with_jobs_a_failing_chapter_is_still_named_with_its_cell(tmp_path, capsys):
    root = make_project(tmp_path, {"plain": PLAIN, "failing": FAILING}, "description: d\ncommon: {n: 4}\n")
    with pytest.raises(BnnlibError, match=r"chapter 'failing' failed at In \[\d+\] \(code cell 3 of book/failing.py"):
        runner._run_plans(plans_of(root, "tiny", jobs=2), root, force=False, jobs=2)
    assert "[2/2] failing ... failed" in capsys.readouterr().out
    assert (root / "_build" / "failed" / "failing.ipynb").is_file()
    assert not (root / "book" / "failing.ipynb").exists()


def test_papermills_injected_parameters_are_removed_from_the_page(tmp_path):
    import json

    from bnnlib.build.runner import hide_injected_parameters

    path = tmp_path / "chapter.ipynb"
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters", "remove-cell"]}, "source": "a = 1"},
             {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "a = 2"},
             {"cell_type": "markdown", "metadata": {}, "source": "text"}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    hide_injected_parameters(path)
    tags = [c["metadata"].get("tags", []) for c in json.loads(path.read_text())["cells"]]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]
