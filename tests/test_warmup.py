"""Warming the cache before the chapters run: what is planned, that the chapters then only read
the cache, and that a failure is reported rather than fatal. On the tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

from bnnlib.studies import diagnostics, ensembles
from bnnlib.project.book import CHAPTER_MODELS

from bnnlib.build import runner, warmup

from bnnlib.evaluate import study
from bnnlib.infra.cache import Cache
from bnnlib.report.chapter import dataset_arguments
from bnnlib.data import open_dataset
from bnnlib.errors import BnnlibError
from bnnlib.evaluate.study import ModelSpec, evaluate_models
from bnnlib.project import book as project

REPO = Path(__file__).resolve().parents[1]


def chapter_params(name: str, **values) -> dict:
    """The chapter's parameters as the runner injects them: its defaults, tiny data, short fits."""
    params = project.declared_parameters(jupytext.read(REPO / "book" / f"{name}.py"))
    params.update(synthetic_profile="tiny", epochs=1, draws=4, batch_size=512)
    if "continue_steps" in params:  # a short continuation to snapshot B
        params.update(continue_steps=200)
    params.update(values)
    return params


@pytest.mark.parametrize("native_bf16", [True, False])
def test_plan_runs_each_shared_fit_once_longest_first(tmp_path, monkeypatch, native_bf16):
    """Study 1 adds a float32 Normal BNN exactly where 'auto' precision is bf16: both ways, on
    the CPU (CUDA hidden) with and without native bf16."""
    import torch

    from bnnlib.models import precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native_bf16)
    chapters = [
        ("data", chapter_params("data")),  # fits nothing
        ("ensembles", chapter_params("ensembles")),
        ("burn_eras", chapter_params("burn_eras")),  # study 1's BNNs again
        ("architecture", chapter_params("architecture", architectures=[[8], [128, 64, 64]])),
        ("diagnostics", chapter_params("diagnostics")),  # study 1's BNNs again, and the controls
    ]
    jobs = warmup.plan(chapters, tmp_path)
    by_names = {tuple(s.name for s in job.specs): job for job in jobs}
    # the talk's-depth baseline of the appendix is study 1's baseline: the same fit and score
    assert by_names[("baseline", "baseline_best_epoch")].chapters == ["ensembles", "architecture"]
    # one trajectory: snapshots A and B, and the appendix's talk-depth BNN at A, are one fit
    assert by_names[("flat", "flat_converged")].chapters == ["ensembles", "burn_eras", "architecture", "diagnostics"]
    assert ("baseline_1",) in by_names and ("flat_1",) in by_names
    # study 1's six fits and the appendix's controls (baseline, its lr-1e-3 control, three BNN
    # trajectories, the baseline network's Laplace posteriors; the Normal BNN's narrower start and
    # its start at the prior, the wide proper prior beside the flat one, the Normal BNN in float32
    # when the run uses bf16);
    # depth 1's baseline and three BNNs, and the Laplace prior's depth-1 trajectory with its B
    assert (diagnostics.WIDE_CONTROL,) in by_names and (diagnostics.FROM_PRIOR,) in by_names
    assert ("normal_small_init",) in by_names and ("laplace_1", "laplace_1_converged") in by_names
    assert (("normal_float32",) in by_names) is native_bf16
    study1 = 10 if native_bf16 else 9
    laplace = [job for job in jobs if job.specs[0].method == "laplace"]
    assert [s.name for s in laplace[0].specs] == list(ensembles.LAPLACE)  # both subsets: one fit
    assert laplace[0].chapters == ["ensembles", "diagnostics"]  # and the diagnostics appendix's evidence ladder
    # the diagnostics appendix's linear fits: the exact check's and the talk's procedure's
    assert (diagnostics.EXACT_CHECK,) in by_names and (diagnostics.LINEAR_AT_BUDGET,) in by_names
    assert len(jobs) == study1 + 4 + 2
    costs = [job.cost for job in jobs]
    assert costs == sorted(costs, reverse=True)
    assert by_names[("flat", "flat_converged")].cost > by_names[("flat_1",)].cost  # a trajectory of a deeper net
    assert all(Path(job.cache_dir).is_relative_to(tmp_path) for job in jobs)  # paths from the project


def test_after_the_warm_up_the_chapters_only_read_the_cache(tmp_path):
    chapters = [
        ("ensembles", chapter_params("ensembles", priors=["laplace"])),
        ("target_hypotheses", chapter_params("target_hypotheses", priors=["laplace"], hypotheses=["h4"])),
    ]
    jobs = warmup.plan(chapters, tmp_path)
    # the baseline, its lr-1e-3 control, the laplace BNN trajectory (both chapters), H4's Laplace
    # trajectory, the baseline network's Laplace posteriors (no Normal prior: no start checks)
    assert len(jobs) == 5
    ranges = [(job, spec, draws) for job in jobs for spec, draws in job.ranges()]
    assert not any(warmup.range_is_cached(*r) for r in ranges)
    done = warmup.warm(jobs, workers=2)
    assert done.failed == {} and done.failed_chapters == set()
    # a resumed build's progress counts only what is left: every range is now found in the cache
    assert all(warmup.range_is_cached(*r) for r in ranges)
    assert warmup.plan(chapters, tmp_path) == []
    assert len(warmup.plan(chapters, tmp_path, force=True)) == 5
    for name, params in chapters:
        params = warmup.absolute_paths(params, tmp_path)
        cache = Cache(params["cache_dir"])
        specs = CHAPTER_MODELS[name](params)
        evaluate_models(specs, open_dataset(**dataset_arguments(params)), cache)
        assert cache.misses == [] and len(cache.hits) == 2 * len(specs)  # a fit and a score each
        assert all(event.created for event in cache.events)  # when, for the provenance table
        # with several jobs too, cached models are read here: no worker is started to read them
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(study, "make_executor", lambda jobs: pytest.fail("started workers to read the cache"))
            evaluate_models(specs, open_dataset(**dataset_arguments(params)), Cache(params["cache_dir"]), jobs=2)


def test_a_failing_job_is_reported_and_the_others_still_run(tmp_path, capsys):
    good = warmup.plan([("burn_eras", chapter_params("burn_eras", priors=["normal"]))], tmp_path)
    bad = warmup.Job({**good[0].data, "main_target": "target_missing_20"}, good[0].fingerprint,
                     good[0].cache_dir, [ModelSpec("broken", prior="flat", epochs=1, draws=2)], ["architecture"])
    done = warmup.warm([bad, *good], workers=2)
    assert list(done.failed) == [bad.label] and "target_missing_20" in done.failed[bad.label]
    assert done.failed_chapters == {"architecture"}
    assert "the chapter will report it" in capsys.readouterr().out
    assert warmup.plan([("burn_eras", chapter_params("burn_eras", priors=["normal"]))], tmp_path) == []


def test_a_bad_parameter_is_an_error_naming_the_chapter_before_anything_runs(tmp_path):
    with pytest.raises(BnnlibError, match=r"chapter 'burn_eras': unknown prior 'cauchy'.*laplace"):
        warmup.plan([("burn_eras", chapter_params("burn_eras", priors=["cauchy"]))], tmp_path)
    with pytest.raises(BnnlibError, match=r"chapter 'architecture'.*repeat a number of hidden layers"):
        warmup.plan([("architecture", chapter_params("architecture", architectures=[[8], [9]]))], tmp_path)
    assert not (tmp_path / "_build" / "cache").exists()


def test_after_a_forced_warm_up_the_chapters_do_not_refit(tmp_path):
    settings = project.load_profile("quick", REPO)
    plan = runner.plan_chapter(
        project.get_chapter("burn_eras", REPO), settings, profile_name="quick",
        overrides={"synthetic_profile": "tiny", "epochs": 1, "draws": 4, "priors": ["flat"]},
        runner={"force": True, "jobs": 2},
    )
    (warmed,) = runner._warm_cache([plan], tmp_path, jobs=2, force=True)
    assert plan.params["force"] is True and warmed.params["force"] is False
    assert warmed.key == plan.key  # force does not change what the chapter computes


def test_the_bnns_continuations_decay_their_lr_and_the_baselines_do_not():
    """The BNNs' lr_final applies to their continuation to snapshot B; the baselines run as the
    talk's did, and the matched control as SVI does to snapshot A: at a constant lr."""
    specs = {s.name: s for s in ensembles.models(chapter_params("ensembles", lr_bnn_final=0.1))}
    assert {n for n, s in specs.items() if s.lr_final == 0.1} == {n for n, s in specs.items() if s.method == "bnn"}
    assert specs["baseline"].lr_final == specs["baseline_best_epoch"].lr_final == 1.0
    assert specs["baseline_bnn_lr"].lr_final == 1.0 and specs["baseline_bnn_lr"].lr == specs["normal"].lr
    with pytest.raises(BnnlibError, match=r"lr_final must be in \(0, 1\]"):
        ModelSpec("too_fast", lr_final=2.0)


def test_a_decaying_lr_moves_the_weights_less_than_a_constant_one():
    """The same seed, batches and steps: decaying to a millionth of the lr, Adam's steps shrink, so
    the network ends nearer its initial weights than at a constant lr."""
    import torch

    from bnnlib.models.baseline import TrainConfig, train_mlp
    from bnnlib.models.network import Architecture, he_init

    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(256, 4, generator=gen), torch.rand(256, generator=gen)
    arch = Architecture(4, (8,), 1)
    start = he_init(arch, torch.Generator().manual_seed(0))
    moved = {ratio: float((train_mlp(x, y, arch, TrainConfig(batch_size=64, lr=1e-2, steps=200, lr_final_ratio=ratio),
                                     progress=False).theta - start).norm()) for ratio in (1.0, 1e-6)}
    assert 0 < moved[1e-6] < 0.7 * moved[1.0]
