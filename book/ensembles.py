# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Study 1: many posterior draws, one ensemble
#
# A single trained network is one draw of a noisy process: change its seed and its validation
# score moves. The talk's first study fits a Bayesian version of the NN Starter under three
# priors (flat, which the talk calls *uniform*; Normal; Laplace), draws many networks from each
# posterior, and asks two questions:
#
# 1. Does the **ensemble** (the average prediction of all draws) score better than the plain
#    baseline network, and better than the baseline stopped at its best epoch (a reference
#    chosen by looking at validation, so not a fair score)?
# 2. How are the **per-draw** scores spread, and does the ensemble beat the average draw?
#
# Scores are per-era correlations on the validation eras: the talk's 2021 `corr` and today's
# official `numerai_corr`, summarised by their mean ("validation corr") and Sharpe ratio (mean
# over std across eras).

# %%
import time

from bnnlib.chapter import declared_parameters

started = time.time()
names_before_parameters = set(globals())

# %% tags=["parameters"]
data_source = "synthetic"  # synthetic | numerai
synthetic_profile = "default"  # synthetic data: tiny | quick | default
data_dir = None  # real data: the folder holding Numerai's files
feature_set = "small"  # the NN Starter's 38 features
main_target = "target_nomi_20"
aux_targets = ["target_janet_20", "target_george_20"]
long_target = "target_nomi_60"
data_root = "_build/data"  # where synthetic data is written
cache_dir = "_build/cache"
results_dir = "_build/results/ensembles"
priors = ["flat", "normal", "laplace"]  # flat is the talk's "uniform"
hidden = [128, 64, 64]  # hidden units per layer (the talk's)
epochs = 30
steps = None  # optimiser steps; None: `epochs` passes (on a smaller dataset, 17700 matches the talk)
batch_size = 4096
lr_baseline = 1e-2
lr_bnn = 1e-3  # the guide's means (the talk's lr)
lr_bnn_scale = 1e-2  # the guide's log-scales (at 1e-3 they had not settled after the talk's 17,700 steps)
estimator = "output"  # the ELBO's gradient estimator: output | local | weights (Pyro's Trace_ELBO)
init_scale = 0.01  # the guide's initial std
small_init_scale = 0.001  # the init-invariance check refits every BNN from this
precision = "auto"  # float32 | bf16 | auto (bf16 where the CPU has native bf16)
draws = 1000  # posterior draws per prior
seed = 0
force = False  # refit even if cached
jobs = 1  # local processes for the fits

# %%
# the values this chapter runs with, for the provenance table at the end
parameters = declared_parameters(globals(), names_before_parameters)

# %%
# %matplotlib inline

import pandas as pd
from IPython.display import Markdown, display

from bnnlib import analysis, book_models, fits, plots, results, talk
from bnnlib.chapter import open_chapter
from bnnlib.provenance import provenance
from bnnlib.study import evaluate_models

chapter = open_chapter("ensembles", parameters)
dataset, cache, out, synthetic, ours_label = (
    chapter.dataset, chapter.cache, chapter.out, chapter.synthetic, chapter.ours_label)
eras = dataset.validation["era"].nunique()
display(Markdown(
    chapter.data_note()
    + f"Training: {len(dataset.train):,} rows; validation: {len(dataset.validation):,} rows in {eras} eras; "
    f"{len(dataset.features)} features; settings: {epochs} epochs, batch {batch_size}, {draws} draws per prior."
))

# %% [markdown]
# ## The models
#
# The baseline is the simplified NN Starter (MSE, Adam, lr 1e-2); the BNNs use the same network
# with a prior on every weight and a mean-field Normal posterior fitted by SVI (lr 1e-3). Two
# controls stand beside them. `baseline_bnn_lr` is the baseline trained with the BNN's optimiser
# settings (lr 1e-3, the same steps): if a BNN beats the baseline, is it the posterior or only the
# smaller step size? The best-epoch reference is the baseline fit scored at the epoch with the
# highest validation corr (chosen by looking at validation, so not a fair score). Each BNN is also
# refitted from a ten times smaller initial guide std, and, when this run uses bf16, the Normal
# BNN is refitted in float32: both checks are below.

# %%
specs = book_models.ensembles(parameters)
fitted_all = evaluate_models(specs, dataset, cache, force=force, jobs=jobs)
checks = {book_models.init_check_name(p) for p in priors} | {book_models.PRECISION_CHECK}
fitted = {name: result for name, result in fitted_all.items() if name not in checks}
bnn_names = [name for name, result in fitted.items() if result.spec.method == "bnn"]

# %% [markdown]
# ## Did the fits converge?
#
# A BNN's draws describe a posterior only if SVI reached the ELBO's maximum. Every fit records
# its trace; the verdict is computed from it.

# %%
fit_table = chapter.report_fits(fitted_all, figure_number=1)
converged = [p for p in bnn_names if fit_table.loc[p, "verdict"] == "converged"]
unconverged = [p for p in bnn_names if p not in converged]
display(Markdown(
    (f"Converged: {', '.join(talk.PRIOR_LABELS.get(p, p) for p in converged) or 'none'}. " )
    + ("".join(
        f"The **{talk.PRIOR_LABELS.get(p, p)}** prior's fit is *{fit_table.loc[p, 'verdict']}*"
        + (" (the improper flat prior has no proper posterior for weights the data do not pin down: the guide's "
           "entropy grows their scales without bound, so its spread is set by when the optimiser stopped)"
           if p == "flat" else "")
        + "; its draws' spread below is not a property of a posterior. " for p in unconverged))
))

# %% [markdown]
# ## Validation corr and Sharpe of each model
#
# For the Bayesian models these are the scores of the ensemble of all draws. The talk's
# numbers (real data) sit beside ours; the talk also lists the original NN Starter, which this
# book does not refit.

# %%
scores = analysis.score_table(fitted)
ours = scores.rename(columns={"corr_mean": "corr", "corr_sharpe": "sharpe"})[["corr", "sharpe"]]
table1 = analysis.side_by_side(ours, talk.study1_scores(), ours_label=ours_label)
display(table1.round(4))
display(Markdown("Today's `numerai_corr` (the talk predates it), and the 2021 corr's maximum drawdown and burn eras:"))
display(scores[["numerai_corr_mean", "numerai_corr_sharpe", "corr_max_drawdown", "corr_burn_eras"]].round(4))

# %%
figure = plots.ours_vs_talk_bars(ours, talk.study1_scores(),
                                 {"corr": "validation corr (mean per-era corr)", "sharpe": "Sharpe ratio"},
                                 title="Validation scores of each model: this run vs the talk")
results.export_figure(out, "scores", figure)
display(figure)
display(Markdown(
    "*Figure 2. Validation corr (left) and Sharpe ratio (right) of the baseline, the BNN ensembles and "
    "the best-epoch baseline; blue: this run"
    + (" (synthetic data)" if synthetic else "") + ", orange: the talk (real data, 2021).*"
))

# %%
best_epoch = fitted["baseline"].extras.get("best_epoch")
ALL = list(talk.PRIORS)  # a claim about all priors needs all three; with fewer it cannot be checked
claims1 = [
    analysis.Claim("every BNN ensemble's corr is above the baseline's",
                   lambda t: all(t.loc[p, "corr"] > t.loc["baseline", "corr"] for p in ALL)),
    analysis.Claim("the flat prior has the best Sharpe of the baseline and the BNNs",
                   lambda t: t.loc[["baseline", *ALL], "sharpe"].idxmax() == "flat"),
    analysis.Claim("the baseline has the second-best Sharpe",
                   lambda t: t.loc[["baseline", *ALL], "sharpe"].sort_values().index[-2] == "baseline"),
    analysis.Claim("the Laplace prior's corr is above the Normal prior's",
                   lambda t: t.loc["laplace", "corr"] > t.loc["normal", "corr"]),
    analysis.Claim("the best-epoch baseline's corr is above the 30-epoch baseline's",
                   lambda t: t.loc["baseline_best_epoch", "corr"] > t.loc["baseline", "corr"]),
]
check1 = analysis.check_claims(claims1, ours, talk.study1_scores())
display(check1)
agreed = check1["agree"].eq(True).sum()
known = check1["agree"].notna().sum()
best_bnn = ours.loc[bnn_names, "corr"].idxmax()
above_baseline = [p for p in bnn_names if ours.loc[p, "corr"] > ours.loc["baseline", "corr"]]
above_control = [p for p in above_baseline if ours.loc[p, "corr"] > ours.loc["baseline_bnn_lr", "corr"]]
control_sentence = (
    f"The matched-budget control, the baseline trained with the BNN's lr {lr_bnn:g} for the same steps, scores "
    f"{ours.loc['baseline_bnn_lr', 'corr']:.4f} (Sharpe {ours.loc['baseline_bnn_lr', 'sharpe']:.3f}). "
    + (f"Of the {len(above_baseline)} BNNs above the baseline, {len(above_control)} are also above this control"
       + (": their edge is not the smaller step size alone." if above_control else
          ": their edge over the baseline is what the smaller step size alone gives.")
       if above_baseline else "No BNN is above the baseline."))
display(Markdown(
    f"Of the talk's {len(check1)} findings on this table, {analysis.count_phrase(agreed, known, 'checkable ones')} "
    f"hold in this run as well. The best BNN here is **{talk.PRIOR_LABELS.get(best_bnn, best_bnn)}** "
    f"(corr {ours.loc[best_bnn, 'corr']:.4f}, Sharpe {ours.loc[best_bnn, 'sharpe']:.3f}); the baseline scores "
    f"{ours.loc['baseline', 'corr']:.4f} (Sharpe {ours.loc['baseline', 'sharpe']:.3f}). "
    + (f"The baseline's best validation epoch is epoch {best_epoch} of {epochs} "
       f"(the talk's was epoch {talk.BEST_EPOCH} of {talk.EPOCHS}). " if best_epoch is not None else "")
    + "Findings that differ: "
    + ("; ".join(check1.loc[check1["agree"].eq(False), "finding"]) or "none")
    + ". " + control_sentence
))

# %% [markdown]
# ## The draws against their ensemble
#
# Each posterior draw is a network of its own, with its own validation corr and Sharpe. The
# talk reports their mean and standard deviation over the draws and compares them with the
# ensemble's score.

# %%
draw_table = analysis.draws_vs_ensemble({p: fitted[p] for p in bnn_names})
display(pd.concat({ours_label: analysis.draws_cells(draw_table),
                   "talk (2021)": analysis.draws_cells(talk.study1_draws())}, axis=1))
draw_table_nc = analysis.draws_vs_ensemble({p: fitted[p] for p in bnn_names}, kind="numerai_corr")
display(Markdown("The same with `numerai_corr` (the talk predates it, so there is nothing to compare with):"))
display(draw_table_nc[["draw_corr_mean", "draw_corr_std", "ensemble_corr", "draw_sharpe_mean",
                       "draw_sharpe_std", "ensemble_sharpe"]].round(4))

# %%
per_draw = {p: analysis.draw_scores(fitted[p]) for p in bnn_names}
label = {p: talk.PRIOR_LABELS.get(p, p) for p in bnn_names}
figure = plots.draw_histograms({label[p]: d["mean"] for p, d in per_draw.items()},
                               {label[p]: draw_table.loc[p, "ensemble_corr"] for p in bnn_names},
                               title="Validation corr of each posterior draw, per prior",
                               xlabel="validation corr of one draw")
results.export_figure(out, "draw_corr", figure)
display(figure)
display(Markdown(
    f"*Figure 3. Histograms of the validation corr of each of the {draws} posterior draws, per prior; "
    "dashed: the mean over draws; red: the ensemble of all draws.*"
))
figure = plots.draw_histograms({label[p]: d["sharpe"] for p, d in per_draw.items()},
                               {label[p]: draw_table.loc[p, "ensemble_sharpe"] for p in bnn_names},
                               title="Sharpe ratio of each posterior draw, per prior",
                               xlabel="Sharpe ratio of one draw")
results.export_figure(out, "draw_sharpe", figure)
display(figure)
display(Markdown("*Figure 4. As figure 3, for the Sharpe ratio of each draw.*"))

# %%
claims2 = [
    analysis.Claim("for every prior, the ensemble's corr is above the mean of its draws' corr",
                   lambda t: bool((t.loc[ALL, "ensemble_corr"] > t.loc[ALL, "draw_corr_mean"]).all())),
    analysis.Claim("for every prior, the ensemble's Sharpe is above the mean of its draws' Sharpe",
                   lambda t: bool((t.loc[ALL, "ensemble_sharpe"] > t.loc[ALL, "draw_sharpe_mean"]).all())),
    analysis.Claim("the Normal prior's draws vary the most (largest std of per-draw corr)",
                   lambda t: t.loc[ALL, "draw_corr_std"].idxmax() == "normal"),
]
check2 = analysis.check_claims(claims2, draw_table, talk.study1_draws())
display(check2)
beats = int(draw_table["ensemble_beats_draws_corr"].sum())
talk_beats = int((talk.study1_draws()["ensemble_corr"] > talk.study1_draws()["draw_corr_mean"]).sum())
widest = draw_table["draw_corr_std"].idxmax()
talk_widest = talk.study1_draws()["draw_corr_std"].idxmax()
display(Markdown(
    f"The ensemble beats the mean of its draws on corr for {analysis.count_phrase(beats, len(draw_table), 'priors')} "
    f"(the talk: {talk_beats} of {len(talk.study1_draws())}), and on Sharpe for "
    f"{analysis.count_phrase(int(draw_table['ensemble_beats_draws_sharpe'].sum()), len(draw_table), 'priors')}. "
    f"On average the ensemble's corr is above "
    f"{100 * draw_table['share_below_ensemble_corr'].mean():.0f}% of the individual draws. "
    f"The widest spread of per-draw corr is the **{talk.PRIOR_LABELS.get(widest, widest)}** prior's "
    f"(std {draw_table.loc[widest, 'draw_corr_std']:.4f}); in the talk it was the "
    f"{talk.PRIOR_LABELS[talk_widest]} prior's ({talk.study1_draws().loc[talk_widest, 'draw_corr_std']:.4f}). "
    + (f"Only the spreads of converged fits ({', '.join(talk.PRIOR_LABELS.get(p, p) for p in converged)}) are "
       "properties of a posterior." if unconverged else "Every fit converged, so these spreads are the posteriors'.")
))

# %% [markdown]
# ## Is the spread the data's or the initialisation's?
#
# Each BNN refitted from a guide std ten times smaller: if the spread of the draws is the
# posterior's, both fits end with the same guide std in every layer and the same ensemble corr,
# up to the Monte Carlo error of a finite number of draws (and the optimiser's own noise).

# %%
_, y_valid, valid_eras = dataset.arrays("validation", [dataset.roles.main])
init_pairs = {p: (p, book_models.init_check_name(p)) for p in bnn_names}
init_check = fits.paired_comparison(fitted_all, init_pairs, y_valid[:, 0], valid_eras)
display(init_check.round(4))
results.write_csv(init_check, out / "init_invariance.csv")
same_scales = [p for p in bnn_names if init_check.loc[p, "largest_std_change"] <= 0.1]
display(Markdown(
    f"Every layer's median guide std agrees within 10% between the two starting points for "
    f"{analysis.count_phrase(len(same_scales), len(bnn_names), 'priors')}"
    + (f" ({', '.join(talk.PRIOR_LABELS.get(p, p) for p in same_scales)})" if same_scales else "")
    + "; for the others the spread of the draws is the initialisation's, not the data's. "
    "The ensemble corrs differ by "
    + ", ".join(f"{init_check.loc[p, 'difference_in_mc_errors']:.1f}" for p in bnn_names)
    + " times their Monte Carlo error (" + ", ".join(talk.PRIOR_LABELS.get(p, p) for p in bnn_names) + ")."
))

# %% [markdown]
# ## bf16 against float32
#
# On CPUs with native bf16 instructions the fits and the scoring run their hidden layers'
# products in bf16 (parameters, likelihood and outputs stay float32). The Normal BNN fitted and
# scored in float32 says what that changes, against two yardsticks: the Monte Carlo error of the
# ensemble, and the difference between two float32-or-bf16 fits of one posterior from two
# starting points (the table above).

# %%
if book_models.PRECISION_CHECK in fitted_all:
    precision_check = fits.paired_comparison(
        fitted_all, {"bf16 vs float32": (book_models.PRECISION_CHECK, "normal")}, y_valid[:, 0], valid_eras)
    display(precision_check.round(4))
    results.write_csv(precision_check, out / "precision_check.csv")
    row = precision_check.iloc[0]
    display(Markdown(
        f"In bf16 the Normal BNN's ensemble corr is {row['corr_second']:.4f} against {row['corr_first']:.4f} in "
        f"float32: a difference of {abs(row['corr_difference']):.5f}, {row['difference_in_mc_errors']:.1f} times "
        f"the Monte Carlo error of {draws} draws; refitting from another initial std moved it by "
        f"{abs(init_check.loc['normal', 'corr_difference']):.5f}. The layers' median guide std changed by at most "
        f"{row['largest_std_change']:.1%}. Fits: "
        f"{fit_table.loc[book_models.PRECISION_CHECK, 'fit_seconds']:.0f} s in float32 against "
        f"{fit_table.loc['normal', 'fit_seconds']:.0f} s in bf16."
    ))
else:
    display(Markdown(f"This run uses {fitted[bnn_names[0]].spec.precision if bnn_names else 'float32'} throughout; "
                     "there is nothing to compare."))

# %% [markdown]
# ## Against the ground truth (synthetic data only)
#
# The synthetic data knows the noise-free signal of every row. A model that predicted it
# exactly would score the ceiling below; `signal_stable` is its part that does not drift from
# era to era, about the most a model trained on past eras can learn. The second table says how
# closely each model's predictions follow the true signal (Pearson correlation over all rows).

# %%
signals = analysis.truth_signals(dataset)
if signals is None:
    display(Markdown("This dataset has no ground truth (real data), so this check is skipped."))
else:
    _, y_valid, valid_eras = dataset.arrays("validation", [dataset.roles.main])
    ceiling = analysis.signal_ceiling(signals, y_valid[:, 0], valid_eras, ["signal", "signal_stable"])
    display(ceiling[["mean", "std", "sharpe"]].round(4))
    capture = analysis.signal_capture(
        {n: r.scores.predictions()["prediction"].reindex(signals.index) for n, r in fitted.items()},
        signals["signal"])
    display(capture.round(3).to_frame())
    top = capture.idxmax()
    display(Markdown(
        f"Predicting the noise-free signal would give a validation corr of {ceiling.loc['signal', 'mean']:.4f} "
        f"(its stable part {ceiling.loc['signal_stable', 'mean']:.4f}); the best model here reaches "
        f"{ours['corr'].max():.4f}, or {100 * ours['corr'].max() / ceiling.loc['signal', 'mean']:.0f}% of the "
        f"ceiling. The predictions closest to the true signal are **{top}**'s (correlation {capture[top]:.3f})."
    ))

# %% [markdown]
# ## Exported results and provenance
#
# Each model's ensemble predictions on the validation eras (`predictions.parquet`: index `id`,
# columns `era`, `prediction`) and its per-era scores (`per_era.csv`) are written under the
# chapter's results folder, with this chapter's main table as `summary.csv`.

# %%
written = results.export_results(out, fitted, scores)
display(Markdown(f"Wrote {len(written)} files under `{out}`."))
display(provenance(parameters, dataset_fingerprint=dataset.fingerprint, started=started,
                   cache_records=cache.events))
display(cache.provenance())
