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
# score moves. The talk's first study {cite}`talk2021` fits a Bayesian version of the NN Starter
# {cite}`nnstarter` under three priors (flat, which the talk calls *uniform*; Normal; Laplace),
# with a mean-field Normal posterior fitted by stochastic variational inference
# {cite}`blundell2015,hoffman2013`, draws many networks from each posterior, and asks two
# questions:
#
# 1. Does the **ensemble** (the average prediction of all draws) score better than the plain
#    baseline network, and better than the baseline stopped at its best epoch (a reference
#    chosen by looking at validation, so not a fair score)?
# 2. How are the **per-draw** scores spread, and does the ensemble beat the average draw?
#
# Scores are per-era correlations on the validation eras: the talk's 2021 `corr` and today's
# official `numerai_corr` {cite}`numeraitools`, summarised by their mean ("validation corr") and
# Sharpe ratio (mean over std across eras).

# %% tags=["parameters", "remove-cell"]
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
lr_bnn = 1e-3  # SVI's lr (the talk's), constant to snapshot A
lr_bnn_scale = 1e-2  # the guide's log-scales in the continuation to B (at 1e-3 they settle far more slowly)
lr_bnn_final = 0.1  # the continuation's lrs decay geometrically to this share by its cap (1: constant)
continue_steps = 53190  # the cap of the continuation from A to B, in steps (0: no continuation, A only)
estimator = "output"  # the ELBO's gradient estimator: output | local | weights (Pyro's Trace_ELBO)
guide_init = "he"  # where the guide starts: he (the talk's: He means, stds 0.01) | prior (zero means, the prior's stds)
init_scale = None  # initial stds: a multiple of the prior's (prior; None: 1) or the std itself (he; None: 0.01)
precision = "auto"  # float32 | bf16 | auto (bf16 where the CPU has native bf16)
draws = 1000  # posterior draws per prior
seed = 0
force = False  # refit even if cached
jobs = 1  # local processes for the fits
device = "auto"  # where fits and scoring run: auto (a GPU when torch sees one) | cpu | cuda | cuda:N
executor = "local"  # where fits run: local, dask (a cluster here) or dask://HOST:PORT
mlflow_uri = None  # also log every fit to MLflow: file:/folder or http(s)://HOST[:PORT]

# %% tags=["remove-cell"]
# %matplotlib inline
from bnnlib.report.chapter import glue, glue_all, open_chapter  # first: it keeps Pyro's import warning off the page

from IPython.display import display

from bnnlib.studies import common
from bnnlib.studies import ensembles as study
from bnnlib.studies import burn_eras

from bnnlib.evaluate import fits

from bnnlib.report import plots

from bnnlib.infra import results
from bnnlib.models.bnn import ESTIMATORS

chapter = open_chapter("ensembles", globals())
params, dataset, out = chapter.params, chapter.dataset, chapter.out

# %% [markdown]
# {glue:text}`data_note` Training: {glue:text}`train_rows:,` rows; validation:
# {glue:text}`validation_rows:,` rows in {glue:text}`validation_eras` eras; {glue:text}`features`
# features; {glue:text}`param_epochs` epochs, batch {glue:text}`param_batch_size`,
# {glue:text}`param_draws` draws per prior. The command that reruns this page, its parameters
# and its source are {ref}`at its end <rerun-ensembles>`.
#
# ## The models
#
# The baseline is the simplified NN Starter, trained to minimise squared error with Adam
# {cite}`kingma2015adam` (lr {glue:text}`param_lr_baseline:g`, constant, as the talk's). Each BNN
# is the same network with a prior on every weight; what is fitted is a posterior of the simplest
# kind, an independent Normal per weight, by stochastic variational inference {cite}`bingham2019`.
#
# Each BNN is fitted once, along one trajectory with two snapshots:
#
# - **A, as the talk did it.** The talk's procedure for the talk's budget: the guide starts at
#   He-initialised means with stds 0.01, Adam runs at the constant lr {glue:text}`param_lr_bnn:g`
#   for {glue:text}`param_epochs` epochs at batch {glue:text}`param_batch_size`, and the last
#   iterate is the posterior.
# - **B, converged.** The same fit continued from A until its convergence verdict holds (at most
#   {glue:text}`param_continue_steps:,` more steps), named `<prior>_converged` in the tables.
#
# Two controls stand beside them. `baseline_bnn_lr` is the baseline trained with SVI's optimiser
# settings (lr {glue:text}`param_lr_bnn:g`, the same steps): if a BNN beats the baseline, is it the
# posterior or only the smaller step size? The best-epoch reference is the baseline scored at the
# epoch with the highest validation corr: chosen on the validation eras, so it is a reference, not
# one of the models. The checks that a result is a posterior (a narrower start, the prior's start,
# bf16 against float32, a wide proper prior beside the flat one) are in the appendix
# {doc}`Are these posteriors? <diagnostics>`.

# %%
specs = study.models(params)  # baselines, BNNs at snapshots A and B, Laplace
fitted = chapter.fit(specs)  # fitted and scored, or from the cache

# %% tags=["remove-cell"]
glue_all(study.start_note(params["guide_init"]))
glue("estimator_note", ESTIMATORS[params["estimator"]])
bnn_names = [name for name, r in fitted.items() if r.spec.has_posterior]
names_a = [n for n in bnn_names if common.snapshot_label(n) == "A"]  # the talk's procedure
names_b = [n for n in bnn_names if common.snapshot_label(n) == "B"]  # converged

# %% [markdown]
# ## Did the fits converge?
#
# A BNN's draws describe a posterior only if SVI reached the ELBO's maximum. Every fit records
# its trace; the verdict is computed from it, at each snapshot. {glue:text}`schedule_note` The
# ELBO's gradient is estimated with {glue:text}`estimator_note` (the `estimator` parameter). How
# the verdict reads a trace is under the figure; the checks that these fits are posteriors are in
# the appendix {doc}`Are these posteriors? <diagnostics>`.

# %% tags=["remove-input"]
fit_table = chapter.report_fits(fitted, figure_number=1)
verdicts = fit_table["verdict"].to_dict()
glue_all(common.convergence_note(fit_table, names_a, "its scores are those of where the optimiser stood after the "
                                                    "talk's budget, not of a posterior."))
glue_all(study.lr_schedule(params["lr_bnn_final"], {n: verdicts[n] for n in names_b}, params["continue_steps"]))

# %% [markdown]
# ```{glue:md} fits_caption
# :format: myst
# ```
#
# Converged under the talk's procedure (A): {glue:text}`converged`. {glue:text}`unconverged_note`
#
# ## The talk's two questions, as the talk ran them (snapshot A)
#
# ### Validation corr and Sharpe of each model
#
# For the Bayesian models these are the scores of the ensemble of all draws. The talk's
# numbers (real data) sit beside ours; the talk also lists the original NN Starter, which this
# book does not refit.

# %% tags=["remove-cell"]
columns = {"corr_mean": "corr", "corr_sharpe": "sharpe"}
laplace_names = [n for n in study.LAPLACE if n in fitted]

# %%
scores = common.score_table(fitted)
ours = scores[list(columns)].rename(columns=columns)
ours_a = study.at_snapshot(ours, params["priors"], "A")  # as the talk ran them
common.side_by_side(ours_a, study.talk_scores(), ours_label=chapter.ours_label)

# %% [markdown]
# Today's `numerai_corr` (the talk predates it), and the 2021 corr's maximum drawdown and burn eras:

# %% tags=["remove-input"]
scores.loc[[n for n in scores.index if n not in laplace_names],
           ["numerai_corr_mean", "numerai_corr_sharpe", "corr_max_drawdown", "corr_burn_eras"]]

# %% tags=["remove-input"]
figure = plots.ours_vs_talk_bars(ours_a, study.talk_scores(),
                                 {"corr": "validation corr (mean per-era corr)", "sharpe": "Sharpe ratio"},
                                 title="Validation scores of each model at snapshot A: this run vs the talk")
results.export_figure(out, "scores", figure)
display(figure)

# %% [markdown]
# *Figure 2. Validation corr (left) and Sharpe ratio (right) of the baseline, the BNN ensembles
# under the talk's procedure (snapshot A) and the best-epoch baseline; blue: {glue:text}`ours_label`,
# orange: the talk (real data, 2021).*
#
# The talk's findings on this table, checked on its numbers and on ours:

# %% tags=["remove-input"]
check1 = common.check_claims(study.score_claims(), ours_a, study.talk_scores())
glue_all(study.score_agreement(check1))
glue_all(common.constant_predictors(fits.constant_predictors(fitted)))
glue_all(study.score_findings(ours_a, [p for p in params["priors"] if p in ours_a.index],
                              fitted["baseline"].extras.get("best_epoch"), params["epochs"],
                              study.TALK_BEST_EPOCH, study.TALK_EPOCHS, verdicts=verdicts))
glue_all(study.above_baseline(ours, verdicts, "A"))
check1

# %% [markdown]
# {glue:text}`above_a_note`
#
# Of the talk's {glue:text}`check1_findings` findings on this table, {glue:text}`check1_agreed`
# of {glue:text}`check1_checkable` checkable ones hold in this run as well. {glue:text}`best_note`
# The baseline scores {glue:text}`baseline_corr:.4f` (Sharpe
# {glue:text}`baseline_sharpe:.3f`). {glue:text}`best_epoch_note` Findings that differ:
# {glue:text}`check1_differ`.
#
# {glue:text}`constant_note`
#
# The matched-budget control, the baseline trained with the BNN's lr {glue:text}`param_lr_bnn`
# for the same steps, scores {glue:text}`control_corr:.4f` (Sharpe {glue:text}`control_sharpe:.3f`).
# {glue:text}`control_verdict`
#
# ### The draws against their ensemble
#
# Each posterior draw is a network of its own, with its own validation corr and Sharpe. The
# talk reports their mean and standard deviation over the draws and compares them with the
# ensemble's score.

# %%
draw_table = study.draws_vs_ensemble({p: fitted[p] for p in names_a})
study.draws_side_by_side(draw_table, study.talk_draws(),
                         ours_label=chapter.ours_label)

# %% [markdown]
# The same with `numerai_corr` (the talk predates it, so there is nothing to compare with):

# %% tags=["remove-input"]
study.draws_vs_ensemble({p: fitted[p] for p in names_a}, kind="numerai_corr")[
    ["draw_corr_mean", "draw_corr_std", "ensemble_corr", "draw_sharpe_mean", "draw_sharpe_std", "ensemble_sharpe"]
]

# %% tags=["remove-input"]
for stat, label in (("mean", "validation corr"), ("sharpe", "Sharpe ratio")):
    figure = plots.draws_against_ensemble({p: fitted[p] for p in names_a}, draw_table, stat,
                                          title=f"{label.capitalize()} of each posterior draw at snapshot A, per prior",
                                          xlabel=f"{label} of one draw")
    results.export_figure(out, f"draw_{'corr' if stat == 'mean' else stat}", figure)
    display(figure)

# %% [markdown]
# *Figures 3 and 4. Histograms of the validation corr (top) and Sharpe ratio (bottom) of each of
# the {glue:text}`param_draws` posterior draws at snapshot A, per prior; dashed: the mean over
# draws; red: the ensemble of all draws.*

# %% tags=["remove-input"]
check2 = common.check_claims(study.draw_claims(), draw_table, study.talk_draws())
glue_all(study.draw_agreement(check2))
glue_all(study.draw_findings(draw_table, study.talk_draws(), [p for p in names_a if verdicts[p] == "converged"],
                             names_a))
check2

# %% [markdown]
# The ensemble beats the mean of its draws on corr for {glue:text}`draws_beats_corr` of
# {glue:text}`draws_priors` priors (the talk: {glue:text}`draws_talk_beats` of
# {glue:text}`draws_talk_priors`), and on Sharpe for {glue:text}`draws_beats_sharpe` of
# {glue:text}`draws_priors`. On average the ensemble's corr is above
# {glue:text}`draws_share_below:.0f`% of the individual draws. The widest spread of per-draw corr
# is the **{glue:text}`draws_widest`** prior's (std {glue:text}`draws_widest_std:.4f`); in the talk
# it was the {glue:text}`draws_talk_widest` prior's ({glue:text}`draws_talk_widest_std:.4f`).
# {glue:text}`draws_spreads` Of the talk's {glue:text}`check2_findings` findings on this table,
# {glue:text}`check2_agreed` of {glue:text}`check2_checkable` checkable ones hold here.
#
# ## What changes at convergence (snapshot B)
#
# The same fits, continued from A until their verdicts hold. Each prior's ensemble at both
# snapshots:

# %% tags=["remove-input"]
snapshots = study.snapshot_table(ours, fit_table, params["priors"])
results.write_csv(snapshots, out / "snapshots.csv")
glue_all(study.above_baseline(ours, verdicts, "B"))
ours_b = study.at_snapshot(ours, params["priors"], "B")
check_b = common.check_claims(study.score_claims(), ours_b, study.talk_scores())
glue_all({f"b_{k}": v for k, v in study.score_agreement(check_b).items()})
snapshots

# %% [markdown]
# {glue:text}`above_b_note` (Under the talk's procedure it {glue:text}`above_a_holds`: see above.)
#
# The talk's findings on the scores table, checked again with each prior's row taken at B: of
# {glue:text}`b_check1_checkable` checkable ones, {glue:text}`b_check1_agreed` hold (findings
# that differ: {glue:text}`b_check1_differ`).

# %% tags=["remove-input"]
check_b

# %% [markdown]
# The draws against their ensemble at B:

# %% tags=["remove-input"]
draw_table_b = study.draws_vs_ensemble({p: fitted[p] for p in names_b}) if names_b else None
if draw_table_b is not None:
    display(draw_table_b[["draw_corr_mean", "draw_corr_std", "ensemble_corr", "draw_sharpe_mean", "draw_sharpe_std",
                          "ensemble_sharpe"]])

# %% [markdown]
# ### Laplace posteriors that use the data
#
# The mean-field BNNs ask which independent Normal per weight best trades fit against the prior's
# cost. A Laplace posterior asks instead what the data say around the trained baseline network
# itself {cite}`daxberger2021`: a Gaussian centred there, as wide as the curvature of the fit
# allows. Two of them: over the **last layer** (the hidden layers stay as trained; given them the
# model is linear, so this posterior and its evidence are exact) and over **all weights**
# (a Kronecker-factored curvature, an approximation). Their prior precision and noise are those
# that maximise the data's evidence (the log marginal likelihood). Each is scored from
# {glue:text}`param_draws` draws by the same code as the BNNs. Their names say *approx*: the
# Laplace *approximation* of a posterior, not the BNN under the Laplace *prior* (`laplace`).

# %% tags=["remove-input"]
laplace_detection = burn_eras.burn_detection({n: fitted[n] for n in laplace_names})
laplace = study.laplace_table(fitted, laplace_detection)
results.write_csv(laplace, out / "laplace_approximations.csv")
glue_all(study.laplace_note(laplace, ours, names_b, verdicts))
results.write_csv(study.glance(ours, verdicts, draw_table, draw_table_b, laplace, params["priors"]),
                  out / common.GLANCE_FILE, index=False)  # this study's rows of the intro's findings at a glance
laplace.rename(columns=study.LAPLACE_HEADERS)

# %% [markdown]
# {glue:text}`laplace_note` The burn AUC is that of the era's mean predictive std against the
# eras where the posterior's own ensemble burns. The last layer's posterior is checked against
# the exact conjugate answer, computed independently, by bnnlib's tests (`tests/test_laplace.py`).
# The evidences are in nats over the training rows; each belongs to its own model (prior precision
# and noise chosen by that evidence), so they are not a ranking of the BNNs' ELBOs.
#
# ## Are these posteriors?
#
# The checks that these fits are posteriors (the Normal BNN refitted from a narrower start and
# from the prior, each continued to its own convergence; bf16 against float32; the flat prior
# beside a wide proper one) are in the appendix {doc}`Are these posteriors? <diagnostics>`, which
# reads the same fits from the cache. The exact answer for the linear model and the ladder of
# ELBOs and evidences are in the {doc}`architecture appendix <architecture>`.
#
# ## Against the ground truth (synthetic data only)
#
# The synthetic data knows the noise-free signal of every row. A model that predicted it
# exactly would score the ceiling below; `signal_stable` is its part that does not drift from
# era to era, about the most a model trained on past eras can learn. The second table says how
# closely each model's predictions follow the true signal (Pearson correlation over all rows).

# %% tags=["remove-input"]
truth = study.ground_truth_tables(dataset, fitted)
models = ours["corr"].drop(index="baseline_best_epoch", errors="ignore")  # the reference chosen on validation: no model
glue_all(study.ground_truth(*truth, models) if truth else {"truth_note": common.NO_TRUTH})
if truth:
    display(truth[0][["mean", "std", "sharpe"]], truth[1].to_frame())

# %% [markdown]
# {glue:text}`truth_note`
#
# (rerun-ensembles)=
# ## Rerun this page
#
# ```{glue:md} rerun
# :format: myst
# ```
#
# Parameters of this run:
#
# ```{glue:} parameters
# ```
#
# Source: {download}`ensembles.py <ensembles.py>` (jupytext percent); executed notebook:
# {download}`ensembles.ipynb <ensembles.ipynb>`. Papers and talk cited: [References](references.md).
#
# ## Exported results and provenance
#
# Each model's ensemble predictions on the validation eras (`predictions.parquet`: index `id`,
# columns `era`, `prediction`) and its per-era scores (`per_era.csv`) are written under the
# chapter's results folder, with this chapter's main table as `summary.csv`.

# %% tags=["remove-cell"]
chapter.close(fitted, scores)

# %% [markdown]
# {glue:text}`written` files written under {glue:text}`results_folder`.
#
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
