"""The computed wordings of the book's findings: each follows the numbers, both ways."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bnnlib.evaluate.convergence import DIVERGING
from bnnlib.studies import common
from bnnlib.studies import burn_eras, target_hypotheses, uncertainty
from bnnlib.studies import architecture, diagnostics, ensembles
from bnnlib.studies import data as data_study
from bnnlib.errors import BnnlibError


def test_agreement_counts_checkable_findings_and_names_those_that_differ():
    check = pd.DataFrame({"finding": ["a", "b", "c"], "agree": [True, False, None]})
    assert common.agreement(check) == {"findings": 3, "agreed": 1, "checkable": 2, "differ": "b"}
    assert common.agreement(check.iloc[[0]])["differ"] == "none"


def test_convergence_names_converged_fits_and_explains_the_flat_prior():
    table = pd.DataFrame({"verdict": ["converged", "still moving", "diverging"]}, index=["normal", "flat", "laplace"])
    out = common.convergence_note(table, ["normal", "flat", "laplace"], "not a posterior.")
    assert out["converged"] == "normal"
    assert "The flat (talk: uniform) fit is still moving (the improper flat prior" in out["unconverged_note"]
    assert "; the Laplace fit is diverging. For each of these fits: not a posterior." in out["unconverged_note"]
    everything = common.convergence_note(table.assign(verdict="converged"), ["normal", "flat"], "x")
    assert everything["unconverged_note"] == "Every fit converged."
    # fits with one verdict share one clause, and the consequence is said once
    moving = common.convergence_note(table.assign(verdict="still moving"), ["normal", "laplace"], "its scores are x.")
    assert moving["unconverged_note"] == "The normal and Laplace fits are still moving. For each of these fits: its scores are x."
    one = common.convergence_note(table, ["laplace"], "its scores are x.")
    assert one["unconverged_note"] == "The Laplace fit is diverging; its scores are x."


def _ours(bnn: float, control: float) -> pd.DataFrame:
    return pd.DataFrame({"corr": [0.01, control, bnn], "sharpe": [0.5, 0.6, 0.7]},
                        index=["baseline", "baseline_bnn_lr", "normal"])


@pytest.mark.parametrize("bnn, control, verdict", [
    (0.02, 0.015, "The BNN (normal) is above the baseline. Above this control too: normal, an edge that is not the"),
    (0.02, 0.03, "Not above this control: normal, an edge over the baseline no larger than the smaller step size"),
    (0.005, 0.03, "The BNN (normal) is not above the baseline."),
])
def test_study1_control_verdict_follows_the_numbers(bnn, control, verdict):
    out = ensembles.score_findings(_ours(bnn, control), ["normal"], None, 2, 5, 30)
    assert verdict in out["control_verdict"]
    assert out["best_bnn"] == "normal" and out["best_epoch_note"] == ""
    assert out["best_note"] == "The best BNN here is the normal prior's (corr " + f"{bnn:.4f}, Sharpe 0.700)."
    assert "epoch 3 of 30" in ensembles.score_findings(_ours(bnn, control), ["normal"], 3, 30, 5, 30)["best_epoch_note"]


def _three(normal: float, laplace: float, flat: float) -> pd.DataFrame:
    return pd.DataFrame({"corr": [0.01, 0.012, normal, laplace, flat], "sharpe": [0.5, 0.6, 0.7, 0.8, 0.9]},
                        index=["baseline", "baseline_bnn_lr", "normal", "laplace", "flat"])


def test_study1_control_verdict_names_the_bnns_on_each_side():
    names = ["normal", "laplace", "flat"]
    none = ensembles.score_findings(_three(0.005, 0.009, 0.001), names, None, 2, 5, 30)["control_verdict"]
    assert none == "None of the 3 BNNs (normal, Laplace, flat (talk: uniform)) is above the baseline."
    split = ensembles.score_findings(_three(0.02, 0.011, 0.001), names, None, 2, 5, 30)["control_verdict"]
    assert split.startswith("2 of the 3 BNNs (normal, Laplace) are above the baseline.")
    assert "Above this control too: normal," in split and "Not above this control: Laplace," in split


def test_study1_best_bnn_is_picked_among_converged_fits_and_says_when_none_converged():
    names = ["normal", "laplace", "flat"]
    table = _three(0.02, 0.015, 0.03)
    every = ensembles.score_findings(table, names, None, 2, 5, 30, verdicts={n: "converged" for n in names})
    assert every["best_bnn"] == "flat (talk: uniform)"
    assert every["best_note"].startswith("The best converged BNN here is the flat (talk: uniform) prior's (corr 0.0300")
    some = ensembles.score_findings(table, names, None, 2, 5, 30,
                                  verdicts={"normal": "converged", "laplace": "converged", "flat": "still moving"})
    assert some["best_bnn"] == "normal" and some["best_corr"] == 0.02
    assert some["best_note"] == ("The best converged BNN here is the normal prior's (corr 0.0200, Sharpe 0.700); "
                                 "the flat (talk: uniform) prior's scores higher, but its fit did not converge.")
    none = ensembles.score_findings(table, names, None, 2, 5, 30, verdicts={n: "diverging" for n in names})
    assert none["best_note"].startswith("No BNN converged, so none is a posterior to call the best; the highest corr")
    assert "flat (talk: uniform) prior's (corr 0.0300" in none["best_note"]


def test_init_invariance_counts_fits_within_the_tolerance():
    check = pd.DataFrame({"largest_std_change": [0.05, 0.3], "difference_in_mc_errors": [0.4, 2.5]},
                         index=["normal", "laplace"])
    out = diagnostics.init_invariance(check, ["normal", "laplace"])
    assert (out["init_same"], out["init_of"], out["init_same_names"]) == (1, 2, "normal")
    assert out["init_mc_errors"] == "normal 0.4, Laplace 2.5"
    assert "No pair that ends apart" in out["init_elbo_note"]


def test_init_invariance_says_which_start_reached_the_higher_elbo():
    check = pd.DataFrame({"largest_std_change": [0.05, 0.9], "difference_in_mc_errors": [0.4, 2.5],
                          "steps_first": [100, 100], "steps_second": [200, 200],
                          "elbo_per_row_first": [0.5, 0.0785], "elbo_per_row_second": [0.5, 0.0783],
                          "std_ratio_layer1": [1.0, 0.95], "std_ratio_layer4": [1.0, 0.013]},
                         index=["normal", "laplace"])
    check = check.assign(first=["normal", "laplace"], second=["normal_small", "laplace_small"],
                         corr_first=[0.01, -0.001], corr_second=[0.01, 0.0065])
    converged = {name: "converged" for name in ("normal", "normal_small", "laplace", "laplace_small")}
    note = diagnostics.init_invariance(check, ["normal", "laplace"], n_rows=1000, verdicts=converged)["init_elbo_note"]
    assert "two optima" in note and "layer4's median std 0.013 times" in note
    assert "0.00020 lower (0 nats" in note and "200 steps against 100" in note and "normal" not in note
    assert "corr is 0.0065 against -0.0010" in note
    still = {**converged, "laplace_small": "still moving"}
    assert "No pair" in diagnostics.init_invariance(check, ["normal", "laplace"], verdicts=still)["init_elbo_note"]
    assert diagnostics.init_invariance(check.iloc[:1], ["normal"])["init_elbo_note"].startswith("Both starts end at one")
    apart = diagnostics.init_invariance(check, ["normal", "laplace"], verdicts=converged)["init_apart_note"]
    assert apart == ("For Laplace the two fits end apart, both converged: the spread of the draws is the "
                     "initialisation's, not the data's alone.")
    apart = diagnostics.init_invariance(check, ["normal", "laplace"], verdicts=still)["init_apart_note"]
    assert apart.startswith("For Laplace the two fits end apart, but a fit did not converge") and "initialisation's" not in apart
    assert diagnostics.init_invariance(check.iloc[:1], ["normal"], verdicts=converged)["init_apart_note"] == ""
    unsettled = diagnostics.init_invariance(check.iloc[:1], ["normal"], verdicts={**converged, "normal": "still moving"})
    assert unsettled["init_elbo_note"] == ("Both starts end at the same guide stds for every prior, but for normal a fit did "
                                      "not converge, so the two ends are where the optimisers stopped, not one optimum.")


def test_burn_detection_on_the_talk_table():
    burn = burn_eras.with_p_values(burn_eras.talk_burn())
    out = burn_eras.detection_findings(burn, burn)
    assert out["priors"] == 3 and out["best"] == common.prior_label(burn["auc"].idxmax())
    assert 0 <= out["talk_worst_p2"] <= 1 and out["best_caveat"] == ""
    best = burn["auc"].idxmax()
    verdicts = {p: "converged" for p in burn.index}
    assert burn_eras.detection_findings(burn, burn, verdicts)["best_caveat"] == ""
    caveat = burn_eras.detection_findings(burn, burn, {**verdicts, best: "still moving"})["best_caveat"]
    assert caveat.startswith(" That fit is still moving, so its AUC describes where the optimiser stopped")


def test_burn_agreement_reads_one_auc_as_one_value():
    eras = {p: pd.DataFrame({"burn": [True, False]}) for p in ("normal", "laplace")}
    per_era = {p: pd.DataFrame({"numerai_corr": [-0.1, 0.2]}) for p in eras}
    detection = pd.DataFrame({"auc": [0.41, 0.6]}, index=list(eras))
    out = burn_eras.numerai_corr_agreement(eras, per_era, detection)
    assert (out["nc_same"], out["nc_pairs"]) == (4, 4)
    assert out["nc_auc_note"] == "the AUCs with numerai_corr range from 0.410 to 0.600"
    assert burn_eras.numerai_corr_agreement(eras, per_era, detection.assign(auc=0.5))["nc_auc_note"] == (
        "the AUCs with numerai_corr are all 0.500")
    assert burn_eras.numerai_corr_agreement(eras, per_era, detection.iloc[:1])["nc_auc_note"] == (
        "the AUC with numerai_corr is 0.410")


def test_the_talk_agreement_is_glued_under_literal_keys_on_both_pages():
    check = pd.DataFrame({"finding": ["a", "b", "c"], "agree": [True, False, None]})
    expected = {"check_findings": 3, "check_agreed": 1, "check_checkable": 2, "check_differ": "b"}
    assert burn_eras.talk_agreement(check) == expected == target_hypotheses.talk_agreement(check)


def test_uncertainty_detection_has_a_literal_key_per_question_and_refuses_others():
    row = {"method": None, "method_auc": np.nan, "control": None, "control_auc": np.nan, "difference": np.nan,
           "low": np.nan, "high": np.nan}
    questions = list(uncertainty.DETECT_NOTES)
    out = uncertainty.uncertainty_detection(pd.DataFrame([row] * len(questions), index=questions))
    assert sorted(out) == ["detect_burn", "detect_concept_drift", "detect_covariate_shift"]
    with pytest.raises(BnnlibError, match="no note for the question 'regime'"):
        uncertainty.uncertainty_detection(pd.DataFrame([row], index=["regime"]))


def test_h4_beta_says_whether_the_sign_is_settled():
    beta = target_hypotheses.beta_posteriors({"normal": (0.0, 1.0), "laplace": (3.0, 1.0)},
                                             {"normal": "converged", "laplace": "still moving"})
    out = target_hypotheses.h4_beta(beta, 0.5)["beta_note"]
    assert "covers 0 for 1 of 2 priors" in out
    assert "Unlike the talk, the posterior settles the sign of beta under 1 of the 2 priors (beta > 0 under the " \
           "Laplace prior); under the others its interval covers 0." in out
    assert "Under the Laplace prior the fit is still moving" in out
    assert "P(beta > 0) ranges from 0.50 to 1.00" in out
    one = target_hypotheses.h4_beta(beta.loc[["normal"]], None)["beta_note"]
    assert "As in the talk, the posterior does not settle the sign of beta." in one
    assert "covers 0 for 1 of 1 prior;" in one and "P(beta > 0) is 0.50." in one and "ranges" not in one


def test_h4_beta_says_when_every_prior_settles_the_sign_and_reads_equal_probabilities_as_one():
    beta = target_hypotheses.beta_posteriors({"normal": (3.0, 1.0), "laplace": (-3.0, 1.0)},
                                             {"normal": "converged", "laplace": "converged"})
    out = target_hypotheses.h4_beta(beta, None)["beta_note"]
    assert ("Unlike the talk, the posterior settles the sign of beta under every prior (beta > 0 under the normal "
            "prior; beta < 0 under the Laplace prior).") in out
    assert "at least one" not in out and "covers 0 for 0 of 2 priors" in out
    same = target_hypotheses.beta_posteriors({"normal": (0.0, 1.0), "laplace": (0.0, 2.0)},
                                             {"normal": "converged", "laplace": "converged"})
    out = target_hypotheses.h4_beta(same, None)["beta_note"]
    assert "P(beta > 0) is 0.50 under every prior" in out and "ranges" not in out
    assert "does not settle the sign of beta under any prior." in out


def test_study3_best_cell_is_picked_among_converged_fits():
    corr = pd.DataFrame({"normal": [0.01, 0.03], "laplace": [0.02, 0.005]}, index=["h2", "single"])
    sharpe = corr * 10
    out = target_hypotheses.score_findings(corr, sharpe)
    assert out["best_note"] == "The best model here is single with the normal prior (corr 0.0300, Sharpe 0.300)."
    assert (out["beats"], out["cells"]) == (1, 2)
    verdicts = pd.Series({("h2", "normal"): "converged", ("h2", "laplace"): "converged",
                          ("single", "normal"): "still moving", ("single", "laplace"): "converged"})
    out = target_hypotheses.score_findings(corr, sharpe, verdicts)
    assert out["best_note"] == ("The best converged model here is h2 with the Laplace prior (corr 0.0200, Sharpe "
                                "0.200); single with the normal prior scores higher, but its fit did not converge.")
    assert (out["best_hypothesis"], out["best_prior"]) == ("h2", "Laplace")
    none = target_hypotheses.score_findings(corr, sharpe, verdicts.map(lambda v: "diverging"))["best_note"]
    assert none.startswith("No model converged, so none is a posterior to call the best; the highest corr, where the "
                           "optimiser stopped, is single with the normal prior")


def test_exact_check_marks_errors_outside_the_tolerance():
    table = pd.DataFrame({"meanfield_std": [0.5, 1.0], "exact_std": [1.0, 1.0]})
    inside = diagnostics.exact_note(table, {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.2},
                                  figure=7)["exact_note"]
    assert inside.startswith("Figure 7 shows one point per parameter") and "Figure 5" not in inside
    assert "(within the 0.1 we ask for)" in inside and "(outside 10%)" in inside and "50% to 100%" in inside
    assert "steps" not in inside
    assert diagnostics.exact_note(table, {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.2}, figure="3b"
                                )["exact_note"].startswith("Figure 3b shows")
    worst = {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.07}
    drifting = diagnostics.exact_note(table, worst, at_budget={"max_mean_error_in_std": 0.17, "max_std_ratio_error": 0.07},
                                    steps=(35460, 17730), figure=5, at_budget_verdict="converged")["exact_note"]
    assert "This fit took 35,460 steps" in drifting and "chapter's 17,730" in drifting
    assert "0.170 exact posterior stds from the exact mean (outside 0.1)" in drifting
    assert ("with 2 times the steps the worst mean came to 0.050, so at the chapter's budget its means were still "
            "drifting from their start, more slowly than its convergence verdict (converged) can see.") in drifting
    seen = diagnostics.exact_note(table, worst, at_budget={"max_mean_error_in_std": 0.17, "max_std_ratio_error": 0.07},
                                steps=(35460, 17730), figure=5, at_budget_verdict="still moving")["exact_note"]
    assert "still drifting from their start, as its verdict (still moving) says." in seen and "can see" not in seen
    stuck = diagnostics.exact_note(table, {"max_mean_error_in_std": 0.3, "max_std_ratio_error": 0.07},
                                 at_budget={"max_mean_error_in_std": 0.17, "max_std_ratio_error": 0.07},
                                 steps=(35460, 17730), figure=5)["exact_note"]
    assert "it came no closer (0.300)" in stuck and "drifting" not in stuck
    settled = diagnostics.exact_note(table, worst, at_budget=worst, steps=(35460, 17730), figure=5)["exact_note"]
    assert "(within 0.1)" in settled and "drifting" not in settled


def test_exact_check_reads_equal_std_ratios_as_one_value():
    worst = {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.02}
    table = pd.DataFrame({"meanfield_std": [0.8, 0.8], "exact_std": [1.0, 1.0]})
    note = diagnostics.exact_note(table, worst, figure=5)["exact_note"]
    assert "The mean-field stds are 80% of the exact marginal stds: what the mean-field family itself gives up" in note
    table = pd.DataFrame({"meanfield_std": [1.0, 0.999], "exact_std": [1.0, 1.0]})
    note = diagnostics.exact_note(table, worst, figure=5)["exact_note"]
    assert "are 100% of the exact marginal stds: here the mean-field family gives up less than half a percent" in note


def test_divergences_of_the_talk_matrix_exceed_the_js_bound():
    """Our matrices and the talk's are read apart: the closest pair and the ranges of each."""
    depths = pd.Index([0, 1, 2], name="hidden_layers")
    ours = pd.DataFrame([[0.0, 0.30, 0.05], [0.30, 0.0, 0.20], [0.05, 0.20, 0.0]], index=depths, columns=depths)
    jeffreys = 4 * ours
    out = architecture.divergences(ours, jeffreys, architecture.talk_divergence())
    # the talk's six pairs, counted by hand: 1.4725, 1.1164, 2.4232, 1.9590, 2.0222 exceed ln 2 (0.693), 0.0855 not
    assert (out["talk_above_ln2"], out["talk_pairs"], out["talk_above_1"]) == (5, 6, 5)
    assert out["closest"] == "0 and 2" and out["talk_closest"] == "1 and 3"
    assert out["js_range"] == "0.0500 to 0.3000" and out["jeffreys_range"] == "0.2000 to 1.2000"
    assert out["talk_range"] == "0.0855 to 2.4232"
    one = pd.DataFrame([[0.0, 0.2], [0.2, 0.0]], index=[0, 1], columns=[0, 1])
    out = architecture.divergences(one, one, architecture.talk_divergence())
    assert out["js_range"] == "0.2000" and out["jeffreys_range"] == "0.2000"


def test_facts_held_lists_the_facts_that_do_not_hold():
    table = pd.DataFrame({"fact": ["schema", "levels"], "ok": [True, False]})
    note = data_study.facts_held(table, "quick")["facts_note"]
    assert note.startswith("1 of 2 facts hold on this data: the others are levels.")
    assert "quick profile is smaller" in note
    assert data_study.facts_held(table.assign(ok=True), None)["facts_note"] == "2 of 2 facts hold on this data."
    assert "smaller" not in data_study.facts_held(table, "default-drift")["facts_note"]
    assert "quick-drift profile is smaller" in data_study.facts_held(table, "quick-drift")["facts_note"]


_LADDER_INDEX = ["linear model, log evidence (exact)", "linear model, mean-field optimum (exact)",
                 "best constant prediction (exact)"]


def _ladder(evidence: float = 30.0, meanfield: float = 10.0, n_rows: int = 1_000_000) -> pd.DataFrame:
    """An ELBO ladder whose constant prediction scores 0.1 per row."""
    return pd.DataFrame({"elbo_per_row": [0.1 + evidence / n_rows, 0.1 + meanfield / n_rows, 0.1],
                         "over_constant_nats": [evidence, meanfield, 0.0]}, index=_LADDER_INDEX)


def _worth_fits(linear: float | list, deep: list) -> pd.DataFrame:
    """A fits table: linear Normal fits (last ELBO per row), deep Normal fits, a linear Laplace fit
    far off the Normal model's optimum and a flat fit, which the note leaves out."""
    linear = linear if isinstance(linear, list) else [linear]
    rows = [(f"normal_0{'abcdef'[i]}", "linear", "normal", v, "") for i, v in enumerate(linear)]
    rows += [(f"normal_{i + 1}", "128", "normal", v, "1/1") for i, v in enumerate(deep)]
    rows += [("laplace_0", "linear", "laplace", 0.05, ""), ("flat_1", "128", "flat", 0.09, "")]
    return pd.DataFrame(rows, columns=["model", "hidden", "prior", "elbo_per_row_last", "layers_at_prior"]
                        ).set_index("model")


def test_data_worth_states_the_margins_and_the_deep_fits_below_the_constant():
    fits = _worth_fits(0.10001 - 50e-6, [0.1 - 400e-6, 0.1001])  # 50 nats below the optimum; 400 below the constant
    note = diagnostics.data_worth(_ladder(), fits, n_rows=1_000_000, elbo_tolerance=0.002)["worth_note"]
    assert "Over all 1,000,000 training rows, the inputs are worth 30.0 nats to the exact linear model" in note
    assert "and 10.0 nats to its mean-field optimum." in note
    assert "The linear Normal fit records 50 nats below the mean-field optimum: what the live iterate gives up" in note
    assert "laplace_0" not in note and "flat_1" not in note
    assert ("1 of the 2 deep fits under a proper prior end below the best constant prediction, by 400 nats, more than "
            "the linear fit's shortfall (50 nats): beyond that, their guides pay more") in note
    assert "400 to 400" not in note
    assert "normal_1: 1/1; normal_2: 1/1" in note
    assert "67 times the linear model's whole margin" in note  # 0.002 / (30 / 1e6)
    assert "cannot tell a network that uses its inputs from one that does not" in note


def test_data_worth_words_the_linear_gap_from_its_sign():
    def note(linear, deep=(0.1001,), **kwargs):
        return diagnostics.data_worth(_ladder(), _worth_fits(linear, list(deep)), 1_000_000, 0.002, **kwargs)["worth_note"]

    below = note([0.10001 - 20e-6, 0.10001 - 50e-6])
    assert "The linear Normal fits record 20 to 50 nats below the mean-field optimum" in below
    above = note([0.10001 + 10e-6, 0.10001 + 10e-6])
    assert "record 10 nats above the mean-field optimum, so the last records show no cost of Adam's jitter" in above
    assert "below the mean-field optimum" not in above and "-10" not in above
    both = note([0.10001 + 10e-6, 0.10001 - 30e-6])
    assert "record from 10 nats above the mean-field optimum to 30 below it: on both sides of it" in both


def test_data_worth_says_whether_the_linear_fit_is_at_the_optimum():
    fits = _worth_fits(0.10001 - 50e-6, [0.1001])
    close = diagnostics.data_worth(_ladder(), fits, 1_000_000, 0.002,
                                linear_check={"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.03})["worth_note"]
    assert ("whose averaged posterior lies close to the exact optimum (the check above: worst mean 0.050 exact "
            "posterior stds, worst std 3.0% from it), records 50 nats below the mean-field optimum: what Adam's "
            "jitter costs.") in close
    far = diagnostics.data_worth(_ladder(), fits, 1_000_000, 0.002,
                              linear_check={"max_mean_error_in_std": 0.17, "max_std_ratio_error": 0.03})["worth_note"]
    assert "whose averaged posterior is not yet at the exact optimum" in far
    assert "Adam's jitter and the distance still to go together." in far
    check = {"max_mean_error_in_std": 0.05, "max_std_ratio_error": 0.03}
    within = diagnostics.data_worth(_ladder(), _worth_fits(0.10001 - 50e-6, [0.1 - 20e-6]), 1_000_000, 0.002,
                                 linear_check=check)["worth_note"]
    assert "(50 nats): within what Adam's jitter costs, so these records do not show" in within
    within = diagnostics.data_worth(_ladder(), _worth_fits(0.10001 - 50e-6, [0.1 - 20e-6]), 1_000_000, 0.002,
                                 linear_check={**check, "max_mean_error_in_std": 0.5})["worth_note"]
    assert "within a shortfall that is partly the linear fit's distance still to go, not jitter alone" in within


def test_data_worth_weighs_the_deep_deficits_against_the_linear_shortfall():
    def note(deep):
        return diagnostics.data_worth(_ladder(), _worth_fits(0.10001 - 50e-6, deep), 1_000_000, 0.002)["worth_note"]

    within = note([0.1 - 20e-6, 0.1 - 40e-6])
    assert ("2 of the 2 deep fits under a proper prior end below the best constant prediction, by 20 to 40 nats, none "
            "more than the linear fit's shortfall (50 nats): within what the live optimiser's ELBO gives up, so these "
            "records do not show") in within
    assert "beyond" not in within
    mixed = note([0.1 - 20e-6, 0.1 - 400e-6])
    assert "; normal_2 by more than the linear fit's shortfall (50 nats): beyond that" in mixed
    assert "normal_1 by no more than it: within what the live optimiser's ELBO gives up." in mixed
    none = note([0.1001])
    assert "None of the 1 deep fits under a proper prior ends below the best constant prediction." in none
    no_linear = diagnostics.data_worth(_ladder(), _worth_fits([], [0.1 - 400e-6]), 1_000_000, 0.002)["worth_note"]
    assert "The linear Normal" not in no_linear and "shortfall" not in no_linear
    assert "by 400 nats: as their last records stand, their guides pay more" in no_linear


def test_data_worth_says_what_the_elbo_tolerance_can_tell_from_their_ratio():
    fits = _worth_fits(0.10001 - 50e-6, [0.1001])
    small = diagnostics.data_worth(_ladder(evidence=30.0), fits, 1_000_000, 0.00001)["worth_note"]
    assert "is 0.33 times the linear model's whole margin per row" in small  # 1e-5 / 3e-5
    assert "the whole margin is larger than the tolerance" in small and "cannot tell" not in small
    large = diagnostics.data_worth(_ladder(evidence=30.0), fits, 1_000_000, 0.002)["worth_note"]
    assert "cannot tell" in large and "the whole margin is larger" not in large
    nothing = diagnostics.data_worth(_ladder(evidence=-5.0, meanfield=-8.0), fits, 1_000_000, 0.002)["worth_note"]
    assert ("the inputs are worth nothing to the exact linear model, which ends 5.0 nats below the best constant "
            "prediction, and nothing to its mean-field optimum, which ends 8.0 nats below") in nothing
    assert "The linear model has no margin over the best constant prediction here" in nothing


def test_constant_predictors_note_names_them_or_says_there_are_none():
    assert "varies" in common.constant_predictors([])["constant_note"]
    note = common.constant_predictors(["baseline"])["constant_note"]
    assert "baseline predicts one value" in note and "its corr" in note and "`" not in note  # glue:text shows backticks literally


def test_wide_vs_flat_reports_both_fits_and_whether_either_is_a_posterior():
    from types import SimpleNamespace

    table = pd.DataFrame({"verdict": ["diverging", "converged"], "steps": [600, 5000], "budget_steps": [1000, 5000],
                          "stopped_at_step": [600.0, None], "scale_p90_last": [3.2, 0.9]}, index=["flat", "wide"])
    fitted = {n: SimpleNamespace(summary=lambda v=v: {"mean": v}) for n, v in (("flat", 0.001), ("wide", 0.012))}
    note = diagnostics.wide_vs_flat(table, fitted, "wide")["wide_note"]
    assert "is diverging (its loss stopped being finite at step 600 of its 1,000)" in note and "**" not in note
    assert "fit is converged after 5,000 steps" in note and "0.0120" in note and "a posterior's" in note
    table.loc["wide", "verdict"] = "still moving"
    assert "Neither is a converged posterior" in diagnostics.wide_vs_flat(table, fitted, "wide")["wide_note"]
    table["elbo_change_window"], table["scale_change_window"] = [np.nan, 0.0009], [np.nan, 0.29]
    note = diagnostics.wide_vs_flat(table, fitted, "wide")["wide_note"]
    assert "has settled (it moved 0.0009" in note and "still moved 29%" in note and "Neither is" in note
    table.loc["wide", "elbo_change_window"] = 0.01
    assert "has settled" not in diagnostics.wide_vs_flat(table, fitted, "wide")["wide_note"]
    assert "no flat prior" in diagnostics.wide_vs_flat(table.drop("flat"), fitted, "wide")["wide_note"]


def test_lr_schedule_says_whether_the_fits_settled_from_their_verdicts():
    assert ensembles.lr_schedule(1.0)["schedule_note"] == "Its learning rates stay constant, as the talk's did."
    plain = ensembles.lr_schedule(0.1)["schedule_note"]
    assert "decay geometrically to 0.1 of their start" in plain and "their verdicts below say" in plain
    assert "they settle" not in plain
    every = ensembles.lr_schedule(0.1, {"normal": "converged", "laplace": "converged"})["schedule_note"]
    assert "With the decay every fit here settles (the verdicts below)." in every
    some = ensembles.lr_schedule(0.1, {"normal": "converged", "laplace": "still moving", "flat": "diverging"})
    assert ("With the decay 1 of the 3 fits here settle (normal) (the verdicts below: Laplace still moving, which "
            "more steps may settle; flat (talk: uniform) diverging, which the decay does not prevent).") in some[
        "schedule_note"]
    none = ensembles.lr_schedule(0.1, {"normal": "still moving"})["schedule_note"]
    assert "Even with the decay, no fit here settles (the verdicts below: normal still moving" in none
    assert "every fit" not in none


def _start_table(prior_verdict: str, talk_verdict: str) -> pd.DataFrame:
    return pd.DataFrame({"verdict": [prior_verdict, talk_verdict], "elbo_per_row_last": [0.0784, 0.0779],
                         "layers_at_prior": ["3/3", "2/3"], "mean_net_corr_last": [-0.0003, 0.0001],
                         "steps": [17730, 53190]},
                        index=["normal", "normal_talk_start"])


def _start_fitted():
    from types import SimpleNamespace

    return {n: SimpleNamespace(summary=lambda v=v: {"mean": v}) for n, v in (("normal", 0.0), ("normal_talk_start", 0.005))}


def test_from_prior_compares_the_two_starts_and_says_which_is_a_posterior():
    table, fitted = _start_table("converged", "still moving"), _start_fitted()
    note = diagnostics.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]
    assert "fit is converged after 17,730 steps; from the talk's start, still moving after 53,190" in note
    assert "0.07840, is higher" in note and "3/3 (talk's start: 2/3)" in note and "**" not in note
    assert ("Only the fit from the prior is a posterior; the talk's start is still moving after 53,190 steps: still on "
            "its way, so its scores describe where the optimiser stopped.") in note
    table["verdict"] = "converged"
    assert "Both converged; a higher ELBO" in diagnostics.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]
    pair = pd.Series({"difference_in_mc_errors": 1.26, "largest_std_change": 0.04})
    note = diagnostics.from_prior(table, fitted, "normal", "normal_talk_start", pair)["from_prior_note"]
    assert "1.3 times their Monte Carlo error apart" in note and "4%" in note and "to one posterior" in note
    pair["largest_std_change"] = 0.3
    note = diagnostics.from_prior(table, fitted, "normal", "normal_talk_start", pair)["from_prior_note"]
    assert "to different ends" in note and "30%" in note
    note = diagnostics.from_prior(table, fitted, "normal", "normal_talk_start", pair, n_rows=1_000_000)["from_prior_note"]
    assert "The one from the prior's start has the higher ELBO, by 500 nats" in note and "the talk's is a local" in note
    assert "no Normal prior" in diagnostics.from_prior(table.drop("normal"), fitted, "normal", "normal_talk_start")["from_prior_note"]


def test_from_prior_words_each_verdict_of_the_two_starts():
    fitted = _start_fitted()

    def note(prior_verdict, talk_verdict):
        table = _start_table(prior_verdict, talk_verdict)
        return diagnostics.from_prior(table, fitted, "normal", "normal_talk_start")["from_prior_note"]

    diverging = note("converged", "diverging")
    assert ("Only the fit from the prior is a posterior; the talk's start diverged after 53,190 steps: it is on its "
            "way to no posterior, and more steps do not mend that") in diverging
    assert "still on its way" not in diverging
    talk_only = note("still moving", "converged")
    assert ("Only the fit from the talk's start is a posterior; the prior's start is still moving after 17,730 steps: "
            "still on its way") in talk_only
    neither = note("still moving", "still moving")
    assert neither.endswith("Neither fit converged, so neither end is a posterior, and which end is the posterior "
                            "stays open at this budget.")
    broken = note("still moving", "diverging")
    assert broken.endswith("Neither fit converged, so neither end is a posterior; the fit from the talk's start "
                           "diverged, which more steps do not mend.")
    assert "at this budget" not in broken
    table = _start_table("converged", "diverging").assign(elbo_per_row_last=[0.0784, np.nan])
    assert "cannot be compared with the one from the talk's start (nan)" in diagnostics.from_prior(
        table, fitted, "normal", "normal_talk_start")["from_prior_note"]


def test_ground_truth_names_the_best_model_of_those_it_is_given():
    ceiling = pd.DataFrame({"mean": [0.05, 0.02]}, index=["signal", "signal_stable"])
    capture = pd.Series({"normal": 0.4, "baseline": 0.3})
    note = ensembles.ground_truth(ceiling, capture, pd.Series({"baseline": 0.01, "normal": 0.02}))["truth_note"]
    assert "the best model here, normal, reaches 0.0200, or 40% of the ceiling" in note
    assert "closest to the true signal are normal's (correlation 0.400)" in note


def test_uncertainty_detection_weighs_the_best_method_against_the_best_control_and_names_what_it_left_out():
    detections = pd.DataFrame({"method": ["deep_ensemble", None], "method_auc": [0.62, np.nan],
                               "control": ["feature_correlation", None], "control_auc": [0.5, np.nan],
                               "difference": [0.12, np.nan], "low": [0.02, np.nan], "high": [0.22, np.nan]},
                              index=pd.Index(["burn", "concept_drift"], name="question"))
    out = uncertainty.uncertainty_detection(detections, ["flat"])
    assert "best method is deep_ensemble (AUC 0.620)" in out["detect_burn"]
    assert "adds something the control does not see" in out["detect_burn"]
    assert out["detect_burn"].endswith("Left out: flat, whose fit did not converge (its AUC is in the table above).")
    assert out["detect_concept_drift"].startswith("No method with a spread of draws was scored")
    assert "Left out" not in uncertainty.uncertainty_detection(detections)["detect_burn"]
    assert uncertainty.uncertainty_detection(detections, ["flat", "normal"])["detect_burn"].endswith(
        "Left out: flat, normal, whose fits did not converge (their AUCs are in the table above).")
    no_interval = uncertainty.uncertainty_detection(detections.assign(low=np.nan, high=np.nan))["detect_burn"]
    assert "with no interval" in no_interval and "holds 0" not in no_interval and "adds something" not in no_interval
    worse = uncertainty.uncertainty_detection(detections.assign(low=-0.3, high=-0.01))["detect_burn"]
    assert "does worse than a plain statistic" in worse
    chance = uncertainty.uncertainty_detection(detections.assign(low=-0.1, high=0.2))["detect_burn"]
    assert "adds nothing that chance could not give (the interval holds 0)" in chance


def test_std_direction_weighs_the_move_against_the_era_to_era_spread():
    shifts = pd.DataFrame({"ratio": [0.98, 0.9, 1.02], "spread_others": [0.006, 0.2, 0.01]},
                          index=["normal", "laplace", "mc_dropout"])
    aucs = pd.Series({"normal": 0.05, "laplace": 0.1, "mc_dropout": 0.15})
    note = uncertainty.std_direction(shifts, aucs)["direction_note"]
    assert note.startswith("Some stds are lower, not higher, in the eras of covariate shift: normal 2.0% lower (AUC "
                           "0.050; era-to-era spread elsewhere 0.6%); laplace 10.0% lower")
    assert ("For normal, mc_dropout the move is larger than the std's era-to-era spread elsewhere (normal 3.3 times, "
            "mc_dropout 2.0 times that spread): these stds vary so little") in note
    assert "mc_dropout 2.0% higher on average, though ranked lower in most eras" in note
    assert ("For laplace the move is no larger than the std's era-to-era spread elsewhere, yet the eras of the change "
            "rank below most others") in note
    quiet = uncertainty.std_direction(shifts.loc[["normal"]], aucs)["direction_note"]
    assert "no larger" not in quiet and "hardly vary" not in quiet
    assert "For normal the move is larger than the std's era-to-era spread elsewhere (3.3 times that spread)" in quiet
    loud = uncertainty.std_direction(shifts.loc[["laplace"]], aucs, what="concept drift")["direction_note"]
    assert "vary so little" not in loud and "eras of concept drift" in loud
    assert uncertainty.std_direction(shifts, aucs.map(lambda a: 0.5))["direction_note"] == ""


def _methods(coverage_50: list, coverage_90: list) -> pd.DataFrame:
    return pd.DataFrame({"signal_corr": [0.3, 0.5], "coverage_50": coverage_50, "coverage_90": coverage_90},
                        index=["normal", "deep_ensemble"])


def test_uncertainty_truth_says_which_intervals_are_far_off_by_the_stated_measures():
    out = uncertainty.uncertainty_truth(_methods([0.5, 0.45], [0.9, 0.85]), 0.05)
    assert "The predictions closest to the signal are deep_ensemble's (correlation 0.500" in out["truth_signal"]
    assert out["truth_coverage"].endswith("None is that far off: every 90% interval holds the truth at least four "
                                          "times in five, and no 50% interval more than three times in four.")
    off = uncertainty.uncertainty_truth(_methods([0.8, 0.1], [0.95, 0.3]), 0.05)["truth_coverage"]
    assert "Far too narrow (the 90% interval misses the truth more than one time in five): deep_ensemble." in off
    assert "Far too wide (the 50% interval holds it more than three times in four): normal." in off
    assert "None is" not in off


def _spreads(seed_std: float, draw_stds: dict) -> pd.DataFrame:
    rows = {"deep_ensemble": {"corr_std": seed_std, "corr_min": 0.010, "corr_max": 0.014, "n": 10}}
    rows.update({name: {"corr_std": std, "corr_min": 0.0, "corr_max": 0.0, "n": 1000} for name, std in draw_stds.items()})
    return pd.DataFrame(rows).T


def test_seed_spread_says_which_posteriors_spread_as_retraining_does():
    assert "Every method's draws spread" in uncertainty.seed_spread(_spreads(0.002, {"a": 0.0015, "b": 0.0012}))["spread_note"]
    assert "Only a spread" in uncertainty.seed_spread(_spreads(0.002, {"a": 0.0015, "b": 0.0002}))["spread_note"]
    assert "No method's draws spread even half" in uncertainty.seed_spread(_spreads(0.002, {"a": 0.0001}))["spread_note"]
    alone = uncertainty.seed_spread(_spreads(0.002, {"flat": 0.0001}), left_out=["flat"])["spread_note"]
    assert "No method's spread can be judged." in alone and "Every method" not in alone
    assert "no seed spread" in uncertainty.seed_spread(_spreads(0.002, {}).drop(index="deep_ensemble"))["spread_note"]
    mixed = uncertainty.seed_spread(_spreads(0.002, {"a": 0.0015, "flat": 0.0001}), left_out=["flat"])["spread_note"]
    assert "a's draws spread at least half as much" in mixed and "Not judged: flat, whose fit did not converge" in mixed
    assert "Every method" not in mixed and "(from 0.0100 to 0.0140)" in mixed
    same = _spreads(0.0, {"a": 0.001})
    same.loc["deep_ensemble", "corr_max"] = 0.010
    assert "(0.0100 for every seed)" in uncertainty.seed_spread(same)["spread_note"]
    assert "flat 0.0001" in mixed
    both = uncertainty.seed_spread(_spreads(0.002, {"a": 0.0015, "flat": 0.0001, "b": 0.0001}), left_out=["flat", "b"])
    assert "Not judged: flat, b, whose fits did not converge, so their spreads are" in both["spread_note"]


def test_point_precision_weighs_the_difference_against_the_seed_spread():
    check = pd.DataFrame({"corr": [0.0118, 0.0114], "fit_seconds": [80.0, 118.0]}, index=["bf16", "float32"])
    small = uncertainty.point_precision(check, _spreads(0.0014, {}), "bf16")["point_note"]
    assert "a difference of 0.00040" in small and "0.29 of that std: less than a seed does" in small
    large = uncertainty.point_precision(check, _spreads(0.0002, {}), "bf16")["point_note"]
    assert "as much as a seed does or more" in large
    assert "nothing to compare" in uncertainty.point_precision(None, _spreads(0.001, {}), "float32")["point_note"]


def test_point_schedule_says_whether_the_baseline_is_the_matched_budget_control():
    same = uncertainty.point_schedule(1e-3, 1.0, 1e-3, 0.1)["point_lr_note"]
    assert same == ("Adam at lr 0.001, constant: SVI's optimiser to snapshot A, so the baseline is study 1's "
                    "matched-budget control (baseline_bnn_lr)")
    decaying = uncertainty.point_schedule(1e-3, 0.1, 1e-3, 0.1)["point_lr_note"]
    assert decaying == ("Adam at lr 0.001, decaying to 0.1 of it by the last step: not SVI's to snapshot A (lr 0.001, "
                        "constant), so the baseline is not study 1's matched-budget control")


def test_study1_draws_says_whose_spreads_are_a_posteriors():
    draws = pd.DataFrame({"ensemble_beats_draws_corr": [True, False], "ensemble_beats_draws_sharpe": [True, True],
                          "share_below_ensemble_corr": [0.6, 0.4], "draw_corr_std": [0.002, 0.003]},
                         index=["normal", "laplace"])
    talk_draws = pd.DataFrame({"ensemble_corr": [0.02, 0.01], "draw_corr_mean": [0.01, 0.02],
                               "draw_corr_std": [0.007, 0.001]}, index=["normal", "laplace"])
    names = ["normal", "laplace"]
    assert ensembles.draw_findings(draws, talk_draws, names, names)["draws_spreads"] == (
        "Every fit converged, so these spreads are the posteriors'.")
    assert ensembles.draw_findings(draws, talk_draws, ["normal"], names)["draws_spreads"] == (
        "Only the spreads of converged fits (normal) are properties of a posterior.")
    assert ensembles.draw_findings(draws, talk_draws, [], names)["draws_spreads"] == (
        "No fit converged, so none of these spreads is a property of a posterior.")


# --------------------------------------------------------------------------- what a reader sees (issue 25)


def test_an_auc_below_the_reversed_threshold_gets_a_sentence_and_one_above_does_not():
    assert common.reversed_note({"Normal": 0.55, "Laplace": 0.31}, "the burn eras") == ""
    note = common.reversed_note({"Normal": 0.001, "Laplace": 0.45, "flat": np.nan}, "the shifted eras")
    assert "Normal (AUC 0.001)" in note and "Laplace" not in note and "flat" not in note
    assert "reversed" in note and "Its std is lower" in note
    assert "Their std" in common.reversed_note({"a": 0.1, "b": 0.2}, "x")


def test_the_shifted_eras_note_explains_an_inverted_detector():
    table = pd.DataFrame({"shifted_eras": [4, 4], "burn_rate_shifted": [0.5, 0.5], "burn_rate_other": [0.2, 0.2],
                          "auc_std_for_shifted": [0.001, 0.62]}, index=["normal", "laplace"])
    note = burn_eras.shifted_eras_note(table, 40)["truth_note"]
    assert f"{common.prior_label('normal')} (AUC 0.001)" in note and "sign reversed" in note and "(AUC 0.62" not in note
    table["auc_std_for_shifted"] = [0.6, 0.7]
    assert "reversed" not in burn_eras.shifted_eras_note(table, 40)["truth_note"]


def test_the_burn_detection_findings_name_a_reversed_burn_detector():
    detection = pd.DataFrame({"n_eras": [40, 40], "burn_eras": [10, 12], "auc": [0.25, 0.6], "p_value": [0.99, 0.1]},
                             index=["normal", "laplace"])
    found = burn_eras.detection_findings(detection, burn_eras.with_p_values(burn_eras.talk_burn()))
    assert f"{common.prior_label('normal')} (AUC 0.250)" in found["burn_reversed"]
    detection["auc"] = [0.5, 0.6]
    assert burn_eras.detection_findings(detection, burn_eras.with_p_values(burn_eras.talk_burn()))["burn_reversed"] == ""


def test_the_uncertainty_chapters_point_network_has_one_name_across_the_book():
    same = {"lr_baseline": 1e-3, "lr_baseline_final": 1.0, "lr_bnn": 1e-3, "lr_bnn_final": 0.1}
    assert uncertainty.point_name(same) == common.MATCHED_CONTROL == "baseline_bnn_lr"
    assert uncertainty.point_name({**same, "lr_baseline_final": 0.1}) == "baseline_lr0.001_to0.1"  # not the control
    other = {**same, "lr_baseline": 1e-2, "lr_baseline_final": 1.0}
    assert uncertainty.point_name(other) == "baseline_lr0.01" != "baseline"
    assert uncertainty.precision_check_name(same) == "baseline_bnn_lr_float32"


def test_the_start_note_names_every_guide_that_does_not_start_at_its_prior():
    note = ensembles.start_note("prior")["start_note"]
    assert "flat prior" in note and "linear model" in note and "KL 0" not in note


def test_data_worth_names_a_diverged_deep_fit_instead_of_measuring_its_deficit():
    fits = _worth_fits(0.10001 - 50e-6, [0.1 - 400e-6, -2.3e13]).assign(verdict="still moving")
    fits.loc["normal_2", "verdict"] = DIVERGING
    note = diagnostics.data_worth(_ladder(), fits, n_rows=1_000_000, elbo_tolerance=0.002)["worth_note"]
    assert "1 of the 1 deep fits under a proper prior end below" in note
    assert "normal_2 diverged (its ELBO ran away), so it is not counted here." in note
    assert not re.search(r"\d{1,3}(,\d{3}){4,} nats", note)  # no run-away number of nats
    assert "e-0" not in note and "e+" not in note


def test_the_laplace_note_compares_with_the_baseline_and_only_converged_bnns():
    table = pd.DataFrame({"subset": ["last_layer", "all"], "corr": [0.0150, 0.0120], "sharpe": [0.6, 0.5]},
                         index=["laplace_approx_last_layer", "laplace_approx_all"])
    ours = pd.DataFrame({"corr": [0.0146, 0.0090, 0.0200]}, index=["baseline", "normal", "laplace"])
    note = ensembles.laplace_note(table, ours, ["normal", "laplace"], {"normal": "converged", "laplace": "still moving"})
    text = note["laplace_note"]
    assert "laplace_approx_last_layer scores 0.0150 (Sharpe 0.600), above the baseline" in text
    assert "laplace_approx_all scores 0.0120 (Sharpe 0.500), not above the baseline" in text
    assert "normal 0.0090" in text and "0.0200" not in text  # the unconverged Laplace-prior BNN is not set beside
    none = ensembles.laplace_note(table, ours, ["normal"], {"normal": "still moving"})["laplace_note"]
    assert "No mean-field BNN converged here" in none
    assert ensembles.laplace_note(table.iloc[0:0], ours, [], {}) == {"laplace_note": "This run fits no Laplace posterior."}


def test_the_depth_findings_say_one_hidden_layer_in_the_singular():
    table = pd.DataFrame({"corr A": [0.010, 0.020, 0.015], "corr B": [0.012, 0.011, 0.013],
                          "verdict A": ["still moving"] * 3, "verdict B": ["converged", "still moving", "converged"]},
                         index=pd.Index([1, 2, 3], name="depth"))
    note = architecture.converged_findings(table)["converged_note"]
    assert "the best depth is 2 hidden layers at A" in note and "and 3 at B" in note
    assert "Not converged at B: 2 hidden layers (still moving)" in note
    row = architecture.laplace_glance(table.rename({2: 1, 1: 2}))
    assert row.loc[0, "A: the talk's procedure"].startswith("1 hidden layer (0.0200)")
    assert "1 hidden layers" not in " ".join(row.astype(str).values.ravel())
