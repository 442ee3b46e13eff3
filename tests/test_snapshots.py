"""Snapshot A (the talk's procedure) and B (converged) as the book shows them: the models a chapter
builds, the sentences on whether the talk's headline holds at each, the intro's findings at a
glance, and that one trajectory is counted and drawn once."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from bnnlib.evaluate import fits
from bnnlib.studies import common, diagnostics, ensembles, intro
from bnnlib.studies import registry as registry_study

PARAMS = dict(priors=["flat", "normal", "laplace"], hidden=[8], epochs=2, steps=None, batch_size=64, seed=0,
              lr_baseline=1e-2, lr_bnn=1e-3, lr_bnn_scale=1e-2, lr_bnn_final=0.1, continue_steps=500,
              guide_init="he", init_scale=None, init_shrink=10, precision="float32", draws=10, estimator="output")


def test_study1_fits_each_prior_once_and_scores_it_at_both_snapshots():
    specs = {s.name: s for s in ensembles.models(PARAMS)}
    for prior in PARAMS["priors"]:
        a, b = specs[prior], specs[common.converged_name(prior)]
        assert (a.snapshot, b.snapshot) == ("A", "B")
        assert a.fit_spec() == b.fit_spec() and a.score_spec() != b.score_spec()  # one fit, two scorings
        assert a.continue_steps == 500 and a.guide_init == "he" and a.init_scale == 0.01
    assert specs["baseline_bnn_lr"].lr == 1e-3 and specs["baseline_bnn_lr"].lr_final == 1.0  # as SVI runs to A
    assert not set(specs) & diagnostics.controls(PARAMS)  # the checks are the appendix's


def test_the_appendix_reads_study1s_fits_and_checks_them_at_b():
    study1 = {s.name: s for s in ensembles.models(PARAMS)}
    specs = {s.name: s for s in diagnostics.models(PARAMS)}
    assert all(specs[n] == study1[n] for n in specs if n in study1)  # the same cache entries
    # the narrower start and the prior's start at B, the wide prior and float32 only at A
    assert specs["normal_small_init"].snapshot == "B" and specs[diagnostics.FROM_PRIOR].snapshot == "B"
    assert specs[diagnostics.WIDE_CONTROL].continue_steps == 0
    assert "laplace_small_init" not in specs and diagnostics.TALK_START not in specs
    assert diagnostics.init_pair(PARAMS) == ("normal_converged", "normal_small_init")
    assert diagnostics.start_comparison(PARAMS) == (diagnostics.FROM_PRIOR, "normal_converged")


def test_without_a_continuation_the_book_has_snapshot_a_only():
    specs = {s.name: s for s in [*ensembles.models({**PARAMS, "continue_steps": 0}),
                                 *diagnostics.models({**PARAMS, "continue_steps": 0})]}
    assert not any(name.endswith(common.CONVERGED) for name in specs)
    assert specs["normal_small_init"].snapshot == "A"
    assert diagnostics.init_pair({**PARAMS, "continue_steps": 0}) == ("normal", "normal_small_init")


def _ours(a: dict, b: dict, baseline: float = 0.01) -> pd.DataFrame:
    corr = {"baseline": baseline, "baseline_bnn_lr": 0.005, **a, **{common.converged_name(k): v for k, v in b.items()}}
    return pd.DataFrame({"corr": corr, "sharpe": {k: 0.5 for k in corr}})


def test_above_baseline_says_whether_the_headline_holds_at_each_snapshot_with_its_verdicts():
    ours = _ours({"normal": 0.02, "laplace": 0.03}, {"normal": 0.001, "laplace": 0.012})
    verdicts = {"normal": "still moving", "laplace": "still moving", "normal_converged": "converged",
                "laplace_converged": "converged"}
    at_a = ensembles.above_baseline(ours, verdicts, "A")
    assert at_a["above_a_holds"] == "holds" and "(for both)" in at_a["above_a_note"]
    assert "normal 0.0200 (still moving), Laplace 0.0300 (still moving)" in at_a["above_a_note"]
    assert "not of a posterior" in at_a["above_a_note"]
    at_b = ensembles.above_baseline(ours, verdicts, "B")
    assert at_b["above_b_holds"] == "holds in part" and "for Laplace only" in at_b["above_b_note"]
    assert "Both fits converged, so these are scores of posteriors." in at_b["above_b_note"]
    none = ensembles.above_baseline(_ours({"normal": 0.0, "laplace": 0.0}, {}), verdicts, "A")
    assert none["above_a_holds"] == "does not hold" and "(for neither)" in none["above_a_note"]
    assert "no Normal or Laplace BNN" in ensembles.above_baseline(ours.drop(["normal", "laplace"]), verdicts, "A")[
        "above_a_note"]


def test_the_claims_table_at_a_snapshot_names_each_prior_row_by_its_prior():
    ours = _ours({"normal": 0.02}, {"normal": 0.001})
    assert list(ensembles.at_snapshot(ours, ["normal"], "B").index) == ["baseline", "baseline_bnn_lr", "normal"]
    assert ensembles.at_snapshot(ours, ["normal"], "B").loc["normal", "corr"] == 0.001
    table = pd.DataFrame({"verdict": ["still moving", "converged"], "steps": [100, 900]},
                         index=["normal", "normal_converged"])
    row = ensembles.snapshot_table(ours, table, ["normal", "laplace"]).loc["normal"]
    assert (row["corr A"], row["corr B"], row["verdict B"], row["steps B"]) == (0.02, 0.001, "converged", 900)


def _draws(beats: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"ensemble_beats_draws_corr": beats})


def test_the_glance_rows_follow_the_numbers_and_name_unconverged_verdicts():
    ours = _ours({"normal": 0.02, "laplace": 0.03, "flat": 0.0}, {"normal": 0.001, "laplace": 0.012}, baseline=0.01)
    verdicts = {"normal": "still moving", "laplace": "still moving", "normal_converged": "converged",
                "laplace_converged": "converged"}
    laplace = pd.DataFrame({"corr": [0.011]}, index=["laplace_approx_last_layer"])
    rows = ensembles.glance(ours, verdicts, _draws([True, True, True]), _draws([True, False]), laplace,
                            ["flat", "normal", "laplace"]).set_index("finding")
    assert list(rows.columns) == list(common.GLANCE_COLUMNS[:1]) + list(common.GLANCE_COLUMNS[2:])
    headline = rows.loc["a BNN ensemble's corr is above the baseline's"]
    assert headline["talk"] == "normal 0.0167, Laplace 0.0185 vs baseline 0.0145"  # from the talk's table
    assert headline["A: the talk's procedure"].endswith("vs baseline 0.0100 (still moving)")
    assert "(" not in headline["B: converged"]  # converged: no verdict named
    assert headline["holds?"] == "holds at A; differs at B; holds at Laplace"
    order = rows.loc["the Laplace prior's corr is above the Normal prior's"]
    assert order["holds?"] == "holds"
    draws = rows.loc["every prior's ensemble corr is above the mean of its draws' corr"]
    assert (draws["A: the talk's procedure"], draws["B: converged"]) == ("3 of 3 priors", "1 of 2 priors")
    assert draws["holds?"] == "holds at A; differs at B"


def test_the_intro_gathers_the_chapters_glance_rows_in_order(tmp_path):
    assert list(intro.collect_glance(tmp_path, ["ensembles"]).columns) == list(common.GLANCE_COLUMNS)
    for name, holds in (("burn_eras", "differs at A"), ("ensembles", "holds")):
        (tmp_path / name).mkdir()
        row = dict.fromkeys(common.GLANCE_COLUMNS, "x") | {"study": name, "holds?": holds}
        pd.DataFrame([row]).to_csv(tmp_path / name / common.GLANCE_FILE, index=False)
    table = intro.collect_glance(tmp_path, ["ensembles", "data", "burn_eras"])
    assert list(table["study"]) == ["ensembles", "burn_eras"]
    assert intro.glance_summary(table) == {"glance_findings": 2, "glance_holds_a": 1, "glance_holds_b": 1,
                                           "glance_studies": 2}


def test_a_trajectory_is_one_fit_in_the_registry_and_one_line_in_the_traces():
    registry = pd.DataFrame({"cache_key": ["a", "b", "c"], "fit_key": ["f", "f", "g"], "chapter": ["x"] * 3,
                             "method": ["bnn", "bnn", "baseline"], "converged": [False, True, ""],
                             "fit_seconds": [100.0, 100.0, 5.0], "score_seconds": [1.0, 1.0, 1.0],
                             "cached": [False] * 3})
    assert registry_study.summary(registry)["registry_compute_minutes"] == round(108 / 60, 1)
    specs = {s.name: s for s in ensembles.models(PARAMS) if s.name in ("normal", "normal_converged")}
    history = {"step": [1, 2], "elbo_per_row": [-1.0, -0.5], "scale_quantiles": {"layer_0": [[0.1, 0.2, 0.3]] * 2}}
    results = {n: SimpleNamespace(spec=s, history=history) for n, s in specs.items()}
    assert set(fits.trace_frame(results)["model"]) == {"normal_converged"}


@pytest.mark.parametrize("name, label", [("normal", "A"), ("normal_converged", "B")])
def test_a_models_snapshot_is_read_from_its_name(name, label):
    assert common.snapshot_label(name) == label


def test_a_fit_by_the_talks_procedure_alone_is_snapshot_a_of_the_trajectory(tmp_path):
    """Studies 3 and 4 fit most BNNs for the talk's budget alone (`common.TALK_PROCEDURE`); their
    numbers must be those a trajectory shows at A, or the tables would set two procedures side by
    side under one label."""
    from bnnlib.data.loader import load_synthetic
    from bnnlib.evaluate.study import ModelSpec, evaluate_models
    from bnnlib.infra.cache import Cache

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    common_fields = dict(method="bnn", prior="laplace", hidden=(8,), epochs=1, batch_size=64, draws=10,
                         scale_lr=1e-2, lr_final=0.1)
    specs = [ModelSpec("trajectory_a", continue_steps=50, **common_fields),
             ModelSpec("alone", **{**common_fields, **common.TALK_PROCEDURE})]
    results = evaluate_models(specs, dataset, Cache(tmp_path / "cache"))
    a, alone = results["trajectory_a"], results["alone"]
    assert a.history["step"] == alone.history["step"] and a.history["elbo_per_row"] == alone.history["elbo_per_row"]
    assert a.summary()["mean"] == alone.summary()["mean"]  # the same guide, the same draws, the same scores
    assert list(fits.fits_table(results)["snapshot"]) == ["A", "A"]


def test_a_studys_claims_become_glance_rows_with_their_verdicts():
    at_a = pd.DataFrame({"finding": ["x", "y"], "talk": [True, True], "this run": [True, None], "agree": [True, None]})
    at_b = pd.DataFrame({"finding": ["x", "y"], "talk": [True, True], "this run": [False, True], "agree": [False, True]})
    rows = common.claims_glance("2: burn eras", at_a, at_b, "still moving", "converged").set_index("finding")
    assert list(rows.columns) == [c for c in common.GLANCE_COLUMNS if c != "finding"]
    assert rows.loc["x", "A: the talk's procedure"] == "yes (still moving)" and rows.loc["x", "B: converged"] == "no"
    assert rows.loc["x", "holds?"] == "holds at A; differs at B"
    assert rows.loc["y", "A: the talk's procedure"] == "–" and rows.loc["y", "holds?"] == "holds at B"
    assert common.claims_glance("s", at_a)["B: converged"].tolist() == ["–", "–"]
    assert common.joint_verdict(["converged", "converged"]) == "converged"
    assert common.joint_verdict(["converged", "diverging"]) == "mixed verdicts" and common.joint_verdict([]) == ""


def test_the_trace_of_a_trajectory_marks_its_snapshot_a():
    specs = {s.name: s for s in ensembles.models(PARAMS) if s.name == "normal_converged"}
    history = {"step": [10, 20, 30, 40], "elbo_per_row": [-1.0, -0.5, -0.4, -0.4], "snapshot_a_records": 2,
               "scale_quantiles": {"layer_0": [[0.1, 0.2, 0.3]] * 4}}
    frame = fits.trace_frame({n: SimpleNamespace(spec=s, history=history) for n, s in specs.items()})
    assert set(frame["snapshot_a_step"]) == {20.0}


def test_the_laplace_note_says_when_the_sampled_all_weights_predictive_loses_the_signal():
    ours = pd.DataFrame({"corr": {"baseline": 0.0172}})
    table = pd.DataFrame({"corr": [0.0172, 0.0042], "sharpe": [0.6, 0.15]},
                         index=["laplace_approx_last_layer", "laplace_approx_all"])
    note = ensembles.laplace_note(table, ours, [], {})["laplace_note"]
    assert "linearised (GLM) predictive" in note and "not above the baseline" in note
    fine = ensembles.laplace_note(table.assign(corr=[0.0172, 0.016]), ours, [], {})["laplace_note"]
    assert "GLM" not in fine
