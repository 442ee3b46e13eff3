"""The computed wordings of the book's findings: each follows the numbers, both ways."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bnnlib import analysis, findings, talk


def test_agreement_counts_checkable_findings_and_names_those_that_differ():
    check = pd.DataFrame({"finding": ["a", "b", "c"], "agree": [True, False, None]})
    assert findings.agreement(check) == {"findings": 3, "agreed": 1, "checkable": 2, "differ": "b"}
    assert findings.agreement(check.iloc[[0]])["differ"] == "none"


def test_convergence_names_converged_fits_and_explains_the_flat_prior():
    table = pd.DataFrame({"verdict": ["converged", "still moving", "diverging"]}, index=["normal", "flat", "laplace"])
    out = findings.convergence(table, ["normal", "flat", "laplace"], "not a posterior.")
    assert out["converged"] == "normal"
    assert "flat (talk: uniform) fit is still moving (the improper flat prior" in out["unconverged_note"]
    assert "The Laplace fit is diverging; not a posterior." in out["unconverged_note"]
    everything = findings.convergence(table.assign(verdict="converged"), ["normal", "flat"], "x")
    assert everything["unconverged_note"] == "Every fit converged."


def _ours(bnn: float, control: float) -> pd.DataFrame:
    return pd.DataFrame({"corr": [0.01, control, bnn], "sharpe": [0.5, 0.6, 0.7]},
                        index=["baseline", "baseline_bnn_lr", "normal"])


@pytest.mark.parametrize("bnn, control, verdict", [
    (0.02, 0.015, "1 are also above this control: their edge is not the smaller step size alone"),
    (0.02, 0.03, "none is above this control: their edge over the baseline is what the smaller step size"),
    (0.005, 0.03, "No BNN is above the baseline."),
])
def test_study1_control_verdict_follows_the_numbers(bnn, control, verdict):
    out = findings.study1_scores(_ours(bnn, control), ["normal"], None, 2, 5, 30)
    assert verdict in out["control_verdict"]
    assert out["best_bnn"] == "normal" and out["best_epoch_note"] == ""
    assert "epoch 3 of 30" in findings.study1_scores(_ours(bnn, control), ["normal"], 3, 30, 5, 30)["best_epoch_note"]


def test_init_invariance_counts_fits_within_the_tolerance():
    check = pd.DataFrame({"largest_std_change": [0.05, 0.3], "difference_in_mc_errors": [0.4, 2.5]},
                         index=["normal", "laplace"])
    out = findings.init_invariance(check, ["normal", "laplace"])
    assert (out["same"], out["of"], out["same_names"]) == (1, 2, "normal")
    assert out["mc_errors"] == "normal 0.4, Laplace 2.5"
    assert "No pair that ends apart" in out["elbo_note"]


def test_init_invariance_says_which_start_reached_the_higher_elbo():
    check = pd.DataFrame({"largest_std_change": [0.05, 0.9], "difference_in_mc_errors": [0.4, 2.5],
                          "steps_first": [100, 100], "steps_second": [200, 200],
                          "elbo_per_row_first": [0.5, 0.0785], "elbo_per_row_second": [0.5, 0.0783],
                          "std_ratio_layer1": [1.0, 0.95], "std_ratio_layer4": [1.0, 0.013]},
                         index=["normal", "laplace"])
    check = check.assign(first=["normal", "laplace"], second=["normal_small", "laplace_small"],
                         corr_first=[0.01, -0.001], corr_second=[0.01, 0.0065])
    converged = {name: "converged" for name in ("normal", "normal_small", "laplace", "laplace_small")}
    note = findings.init_invariance(check, ["normal", "laplace"], n_rows=1000, verdicts=converged)["elbo_note"]
    assert "two optima" in note and "layer4's median std 0.013 times" in note
    assert "0.00020 lower (0 nats" in note and "200 steps against 100" in note and "normal" not in note
    assert "corr is 0.0065 against -0.0010" in note
    still = {**converged, "laplace_small": "still moving"}
    assert "No pair" in findings.init_invariance(check, ["normal", "laplace"], verdicts=still)["elbo_note"]
    assert findings.init_invariance(check.iloc[:1], ["normal"])["elbo_note"].startswith("Both starts end at one")


def test_burn_detection_on_the_talk_table():
    burn = analysis.with_p_values(talk.study2_burn())
    out = findings.burn_detection(burn, burn)
    assert out["priors"] == 3 and out["best"] == talk.prior_label(burn["auc"].idxmax())
    assert 0 <= out["talk_worst_p2"] <= 1


def test_h4_beta_says_whether_the_sign_is_settled():
    beta = analysis.beta_posteriors({"normal": (0.0, 1.0), "laplace": (3.0, 1.0)},
                                    {"normal": "converged", "laplace": "still moving"})
    out = findings.h4_beta(beta, 0.5)["beta_note"]
    assert "covers 0 for 1 of 2 priors" in out and "Unlike the talk" in out
    assert "Under the Laplace prior the fit is still moving" in out
    assert "As in the talk" in findings.h4_beta(beta.loc[["normal"]], None)["beta_note"]


def test_exact_check_marks_errors_outside_the_tolerance():
    table = pd.DataFrame({"meanfield_std": [0.5, 1.0], "exact_std": [1.0, 1.0]})
    inside = findings.exact_check(table, {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.2})["exact_note"]
    assert "(within the 0.1 we ask for)" in inside and "(outside 10%)" in inside and "50% to 100%" in inside
    assert "steps" not in inside
    worst = {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.07}
    drifting = findings.exact_check(table, worst, at_budget={"max_mean_error_in_std": 0.17, "max_std_ratio_error": 0.07},
                                    steps=(35460, 17730))["exact_note"]
    assert "This fit took 35,460 steps" in drifting and "chapter's 17,730" in drifting
    assert "0.170 exact posterior stds from the exact mean (outside 0.1)" in drifting and "still drifting" in drifting
    settled = findings.exact_check(table, worst, at_budget=worst, steps=(35460, 17730))["exact_note"]
    assert "(within 0.1)" in settled and "drifting" not in settled


def test_divergences_of_the_talk_matrix_exceed_the_js_bound():
    out = findings.divergences(talk.architecture_divergence(), talk.architecture_divergence(),
                               talk.architecture_divergence())
    assert out["talk_above_ln2"] > 0 and out["closest"] == out["talk_closest"]


def test_facts_held_lists_the_facts_that_do_not_hold():
    table = pd.DataFrame({"fact": ["schema", "levels"], "ok": [True, False]})
    note = findings.facts_held(table, "quick")["facts_note"]
    assert note.startswith("1 of 2 facts hold on this data: the others are levels.")
    assert "quick profile is smaller" in note
    assert findings.facts_held(table.assign(ok=True), None)["facts_note"] == "2 of 2 facts hold on this data."


def test_data_worth_states_the_margins_and_the_deep_fits_below_the_constant():
    import pandas as pd

    ladder = pd.DataFrame({"elbo_per_row": [0.10003, 0.10001, 0.1], "over_constant_nats": [30.0, 10.0, 0.0]},
                          index=["linear model, log evidence (exact)", "linear model, mean-field optimum (exact)",
                                 "best constant prediction (exact)"])
    table = pd.DataFrame({"hidden": ["linear", "128", "128-64", "128"], "prior": ["normal", "normal", "laplace", "flat"],
                          "elbo_per_row_last": [0.10002, 0.0996, 0.1001, 0.09], "layers_at_prior": ["", "1/1", "1/2", ""]},
                         index=["normal_0", "normal_1", "laplace_2", "flat_1"])
    note = findings.data_worth(ladder, table, n_rows=1_000_000, elbo_tolerance=0.002)["worth_note"]
    assert "30.0 nats" in note and "10.0 to its mean-field optimum" in note
    assert "1 of the 2 deep fits under a proper prior end below" in note and "by 400 to 400 nats" in note
    assert "record -10 to -10 nats below it" in note  # (0.10001 - 0.10002) * 1e6: a linear fit above the optimum
    assert "normal_1: 1/1; laplace_2: 1/2" in note
    assert "67 times" in note  # 0.002 / (30 / 1e6)


def test_constant_predictors_note_names_them_or_says_there_are_none():
    assert "varies" in findings.constant_predictors([])["constant_note"]
    note = findings.constant_predictors(["baseline"])["constant_note"]
    assert "baseline predicts one value" in note and "its corr" in note and "`" not in note  # glue:text shows backticks literally


def test_wide_vs_flat_reports_both_fits_and_whether_either_is_a_posterior():
    from types import SimpleNamespace

    table = pd.DataFrame({"verdict": ["diverging", "converged"], "steps": [600, 5000], "budget_steps": [1000, 5000],
                          "stopped_at_step": [600.0, None], "scale_p90_last": [3.2, 0.9]}, index=["flat", "wide"])
    fitted = {n: SimpleNamespace(summary=lambda v=v: {"mean": v}) for n, v in (("flat", 0.001), ("wide", 0.012))}
    note = findings.wide_vs_flat(table, fitted, "wide")["wide_note"]
    assert "is diverging (its loss stopped being finite at step 600 of its 1,000)" in note and "**" not in note
    assert "fit is converged after 5,000 steps" in note and "0.0120" in note and "a posterior's" in note
    table.loc["wide", "verdict"] = "still moving"
    assert "Neither is a converged posterior" in findings.wide_vs_flat(table, fitted, "wide")["wide_note"]
    table["elbo_change_window"], table["scale_change_window"] = [np.nan, 0.0009], [np.nan, 0.29]
    note = findings.wide_vs_flat(table, fitted, "wide")["wide_note"]
    assert "has settled (it moved 0.0009" in note and "still moved 29%" in note and "Neither is" in note
    table.loc["wide", "elbo_change_window"] = 0.01
    assert "has settled" not in findings.wide_vs_flat(table, fitted, "wide")["wide_note"]
    assert "no flat prior" in findings.wide_vs_flat(table.drop("flat"), fitted, "wide")["wide_note"]


def test_from_prior_compares_the_two_starts_and_says_which_is_a_posterior():
    from types import SimpleNamespace

    table = pd.DataFrame({"verdict": ["converged", "still moving"], "elbo_per_row_last": [0.0784, 0.0779],
                          "layers_at_prior": ["3/3", "2/3"], "mean_net_corr_last": [-0.0003, 0.0001],
                          "steps": [17730, 53190]},
                         index=["normal", "normal_talk_start"])
    fitted = {n: SimpleNamespace(summary=lambda v=v: {"mean": v}) for n, v in (("normal", 0.0),
                                                                              ("normal_talk_start", 0.005))}
    note = findings.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]
    assert "fit is converged after 17,730 steps; from the talk's start, still moving after 53,190" in note
    assert "0.07840, is higher" in note and "3/3 (talk's start: 2/3)" in note and "**" not in note
    assert "Only the fit from the prior is a posterior" in note
    table["verdict"] = "converged"
    assert "Both converged; a higher ELBO" in findings.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]
    pair = pd.Series({"difference_in_mc_errors": 1.26, "largest_std_change": 0.04})
    note = findings.from_prior(table, fitted, "normal", "normal_talk_start", pair)["from_prior_note"]
    assert "1.3 times their Monte Carlo error apart" in note and "4%" in note and "to one posterior" in note
    pair["largest_std_change"] = 0.3
    note = findings.from_prior(table, fitted, "normal", "normal_talk_start", pair)["from_prior_note"]
    assert "to different ends" in note and "30%" in note
    note = findings.from_prior(table, fitted, "normal", "normal_talk_start", pair, n_rows=1_000_000)["from_prior_note"]
    assert "The one from the prior's start has the higher ELBO, by 500 nats" in note and "the talk's is a local" in note
    table.loc["normal", "verdict"] = "still moving"
    note = findings.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]
    assert "did not converge, so which end" in note
    table.loc["normal_talk_start", "verdict"] = "still moving"
    assert "did not converge either" in findings.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]
    assert "no Normal prior" in findings.from_prior(table.drop("normal"), fitted, "normal", "normal_talk_start")["from_prior_note"]


def test_uncertainty_detection_weighs_the_best_method_against_the_best_control_and_names_what_it_left_out():
    detections = pd.DataFrame({"method": ["deep_ensemble", None], "method_auc": [0.62, np.nan],
                               "control": ["feature_correlation", None], "control_auc": [0.5, np.nan],
                               "difference": [0.12, np.nan], "low": [0.02, np.nan], "high": [0.22, np.nan]},
                              index=pd.Index(["burn", "concept_drift"], name="question"))
    out = findings.uncertainty_detection(detections, ["flat"])
    assert "best method is deep_ensemble (AUC 0.620)" in out["detect_burn"]
    assert "adds something the control does not see" in out["detect_burn"]
    assert out["detect_burn"].endswith("Left out: flat, whose fit did not converge (its AUC is in the table above).")
    assert out["detect_concept_drift"].startswith("No method with a spread of draws was scored")
    assert "Left out" not in findings.uncertainty_detection(detections)["detect_burn"]


def _spreads(seed_std: float, draw_stds: dict) -> pd.DataFrame:
    rows = {"deep_ensemble": {"corr_std": seed_std, "corr_min": 0.010, "corr_max": 0.014, "n": 10}}
    rows.update({name: {"corr_std": std, "corr_min": 0.0, "corr_max": 0.0, "n": 1000} for name, std in draw_stds.items()})
    return pd.DataFrame(rows).T


def test_seed_spread_says_which_posteriors_spread_as_retraining_does():
    assert "Every method's draws spread" in findings.seed_spread(_spreads(0.002, {"a": 0.0015, "b": 0.0012}))["spread_note"]
    assert "Only a spread" in findings.seed_spread(_spreads(0.002, {"a": 0.0015, "b": 0.0002}))["spread_note"]
    assert "No posterior spreads" in findings.seed_spread(_spreads(0.002, {"a": 0.0001}))["spread_note"]
    assert "no seed spread" in findings.seed_spread(_spreads(0.002, {}).drop(index="deep_ensemble"))["spread_note"]
    mixed = findings.seed_spread(_spreads(0.002, {"a": 0.0015, "flat": 0.0001}), left_out=["flat"])["spread_note"]
    assert "Every method's draws spread" in mixed and "Not judged: flat, whose fit did not converge" in mixed
    assert "flat 0.0001" in mixed


def test_point_precision_weighs_the_difference_against_the_seed_spread():
    check = pd.DataFrame({"corr": [0.0118, 0.0114], "fit_seconds": [80.0, 118.0]}, index=["bf16", "float32"])
    small = findings.point_precision(check, _spreads(0.0014, {}), "bf16")["point_note"]
    assert "a difference of 0.00040" in small and "0.29 of that std: less than a seed does" in small
    large = findings.point_precision(check, _spreads(0.0002, {}), "bf16")["point_note"]
    assert "as much as a seed does or more" in large
    assert "nothing to compare" in findings.point_precision(None, _spreads(0.001, {}), "float32")["point_note"]
