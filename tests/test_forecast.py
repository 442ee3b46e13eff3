"""The build's plan before the work, and --dry-run: after a chapter's `draws` changes, the plan
lists exactly the scorings that will run and no fit, and a dry run computes and writes nothing.
On the tiny synthetic data, the cache filled in-process (no worker processes)."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

from bnnlib.build import cli, forecast, runner, warmup
from bnnlib.data import open_dataset
from bnnlib.evaluate.study import evaluate_models
from bnnlib.infra.cache import Cache
from bnnlib.project import book as project
from bnnlib.project.book import CHAPTER_MODELS
from bnnlib.report.chapter import dataset_arguments

REPO = Path(__file__).resolve().parents[1]
TINY = {"synthetic_profile": "tiny", "epochs": 1, "draws": 4, "batch_size": 512, "priors": ["laplace"], "continue_steps": 200}


def ensembles_plan(root: Path, **values) -> runner.Plan:
    """The ensembles chapter as the runner would execute it, on tiny data, with `values`."""
    settings = project.load_profile("quick", REPO)
    return runner.plan_chapter(project.get_chapter("ensembles", REPO), settings, profile_name="quick",
                               overrides={**TINY, **values}, runner={"jobs": 2}, root=root)


def fill_cache(plan: runner.Plan, root: Path) -> None:
    """Fit and score the chapter's models in this process, as a build would have."""
    params = warmup.absolute_paths({**project.declared_parameters(plan.notebook), **plan.params}, root)
    evaluate_models(CHAPTER_MODELS["ensembles"](params), open_dataset(**dataset_arguments(params)),
                    Cache(params["cache_dir"]))


def cache_files(root: Path) -> set[Path]:
    return {p for p in (root / "_build" / "cache").rglob("*") if p.is_file()}


@pytest.fixture
def warm_root(tmp_path):
    fill_cache(ensembles_plan(tmp_path), tmp_path)
    return tmp_path


def test_after_changing_draws_the_plan_lists_the_scorings_and_no_fit(warm_root, capsys):
    plan = ensembles_plan(warm_root, draws=7)
    chapters = runner._chapter_values([plan])
    specs = CHAPTER_MODELS["ensembles"](warmup.absolute_paths(chapters[0][1], warm_root))
    with_draws = sorted(s.name for s in specs if s.n_draws == 7)  # the baseline and its controls score 1 draw
    assert with_draws and len(with_draws) < len(specs)

    survey = warmup.survey(chapters, warm_root)
    assert survey.fits == [] and all(job.fitted for job in survey.jobs)
    assert sorted(survey.scorings) == with_draws
    assert sorted(name for _, name in survey.cached) == sorted(s.name for s in specs if s.n_draws != 7)

    before = cache_files(warm_root)
    assert runner._run_plans([plan], warm_root, force=False, jobs=2, dry_run=True) is None
    out = capsys.readouterr().out
    assert "[plan] fits to run: 0\n" in out
    assert f"[plan] scorings to run: {len(with_draws)}: " in out
    assert all(f"{name} (7 draws)" in out for name in with_draws)
    assert "dry run: nothing computed" in out
    assert cache_files(warm_root) == before  # nothing computed, nothing written
    assert not (warm_root / "_build" / "executed").exists() and not (warm_root / "book").exists()


def test_an_unchanged_chapter_plans_nothing(warm_root, capsys):
    lines = forecast.forecast(runner._chapter_values([ensembles_plan(warm_root)]), warm_root, False, 2, "local",
                              ["ensembles"], []).lines
    assert "[plan] fits to run: 0" in lines and "[plan] scorings to run: 0" in lines
    assert lines[-1] == "[plan] nothing to fit or score: the chapters read every model from the cache"


def test_a_new_fit_is_priced_for_the_chosen_jobs(tmp_path):
    plan = ensembles_plan(tmp_path)
    one = forecast.forecast(runner._chapter_values([plan]), tmp_path, False, 1, "local", ["ensembles"], [])
    assert one.survey.fits and one.estimate is not None and one.estimate.cpu > 0
    assert not one.warm_up and one.estimate.warmup_fits == 0  # --jobs 1: the chapter fits its own
    assert "each chapter fitting its own models in turn" in one.lines[-2]
    assert any(line.startswith("[plan] estimate: ") for line in one.lines)
    assert not (tmp_path / "_build" / "cache").exists()  # planning and timing wrote no cache entry


def test_the_command_line_has_dry_run_and_prints_the_engine_hash(capsys):
    assert cli.make_parser().parse_args(["book", "--dry-run"]).dry_run
    assert cli.make_parser().parse_args(["run", "ensembles", "--dry-run", "-p", "draws", "7"]).dry_run
    assert cli.main(["cache-key"]) == 0
    from bnnlib.infra.cache import engine_hash

    assert capsys.readouterr().out.strip() == engine_hash()


def test_the_plan_gives_the_most_a_build_can_cost_when_trajectories_may_run_longer(tmp_path):
    """A trajectory is priced where it first asks the verdict (its floor); when its cap lies
    beyond, the plan also gives the most the build can cost, every trajectory at its cap."""
    capped = forecast.forecast(runner._chapter_values([ensembles_plan(tmp_path, continue_steps=5000)]), tmp_path,
                               False, 2, "local", ["ensembles"], [])
    assert capped.upper.cpu > capped.estimate.cpu > 0
    line = next(line for line in capped.lines if line.startswith("[plan] estimate: "))
    assert "at most" in line and "to its cap" in line
    floor = forecast.forecast(runner._chapter_values([ensembles_plan(tmp_path)]), tmp_path, False, 2, "local",
                              ["ensembles"], [])  # continue_steps 200: the floor is the cap
    assert floor.upper.cpu == pytest.approx(floor.estimate.cpu)
    assert "at most" not in next(line for line in floor.lines if line.startswith("[plan] estimate: "))
