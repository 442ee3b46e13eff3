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
# # Study 3: probabilistic models of several targets
#
# Numerai publishes many targets: other *kinds* of 20-day target (in v3: janet, george) and the
# same target over a longer *horizon* (nomi over 60 days). The NN Starter predicts several at
# once. In a Bayesian network, how the outputs become several targets is a modelling choice,
# a generative story, and the talk {cite}`talk2021` compares four, all scored on the main 20-day target:
#
# - **H1**: the three 20-day targets are drawn from one distribution (one mean, one noise).
# - **H2** (what the NN Starter's {cite}`nnstarter` multi-output layer amounts to): each target's mean is its own
#   affine transform of one shared latent, with its own noise.
# - **H3**: as H2, for the 20-day and the 60-day main target.
# - **H4**: the network gives two outputs (u, v); the 60-day mean is v and the 20-day mean is
#   u + beta v, so beta says how much the 60-day mean explains the 20-day mean.
#
# Each is fitted under every prior of this run and compared with the one-target BNN of study 1.

# %% tags=["parameters", "remove-cell"]
data_source = "synthetic"  # synthetic | numerai
synthetic_profile = "default"  # synthetic data: tiny | quick | default
data_dir = None  # real data: the folder holding Numerai's files
feature_set = "small"  # the NN Starter's 38 features
main_target = "target_nomi_20"  # scored; H1-H4 model it with the others
aux_targets = ["target_janet_20", "target_george_20"]  # H1, H2: other 20-day targets
long_target = "target_nomi_60"  # H3, H4: the 60-day version of the main target
data_root = "_build/data"  # where synthetic data is written
cache_dir = "_build/cache"
results_dir = "_build/results/target_hypotheses"
priors = ["flat", "normal", "laplace"]  # flat is the talk's "uniform"
hypotheses = ["h1", "h2", "h3", "h4"]
hidden = [128, 64, 64]  # hidden units per layer (the talk's)
epochs = 30
steps = None  # optimiser steps; None: `epochs` passes (on a smaller dataset, 17700 matches the talk)
batch_size = 4096
lr_bnn = 1e-3  # SVI's lr (the talk's), constant to snapshot A
lr_bnn_scale = 1e-2  # the guide's log-scales in the continuation to B (at 1e-3 they settle far more slowly)
lr_bnn_final = 0.1  # the continuation's lrs decay geometrically to this share by its cap (1: constant)
continue_steps = 53190  # the cap of the continuation from A to B, in steps (0: no continuation, A only)
estimator = "output"  # the ELBO's gradient estimator: output | local | weights (Pyro's Trace_ELBO)
guide_init = "he"  # where the guide starts: he (the talk's: He means, stds 0.01) | prior (zero means, the prior's stds)
init_scale = None  # initial stds: a multiple of the prior's (prior; None: 1) or the std itself (he; None: 0.01)
precision = "auto"  # float32 | bf16 | auto (bf16 where the CPU has native bf16)
draws = 1000  # posterior draws per model
seed = 0
force = False  # refit even if cached
jobs = 1  # local processes for the fits
device = "auto"  # where fits and scoring run: auto (a GPU when torch sees one) | cpu | cuda | cuda:N
executor = "local"  # where fits run: local, dask (a cluster here) or dask://HOST:PORT
mlflow_uri = None  # also log every fit to MLflow: file:/folder or http(s)://HOST[:PORT]

# %% tags=["remove-cell"]
# %matplotlib inline
from bnnlib.report.chapter import glue_all, open_chapter  # first: it keeps Pyro's import warning off the page

import pandas as pd
from IPython.display import display

from bnnlib.studies import common
from bnnlib.studies import target_hypotheses as study

from bnnlib.report import plots, tables
from bnnlib.scoring import statistics

from bnnlib.infra import results

chapter = open_chapter("target_hypotheses", globals())
params, dataset, out = chapter.params, chapter.dataset, chapter.out

# %% [markdown]
# {glue:text}`data_note` {glue:text}`param_epochs` epochs, {glue:text}`param_draws` draws per
# model. The command that reruns this page, its parameters and its source are
# {ref}`at its end <rerun-target-hypotheses>`. The targets, and how each correlates with the
# main target on the training rows:

# %% tags=["remove-input"]
target_corr = study.correlations_with_main(dataset)
target_corr

# %% [markdown]
# ## The models

# %% tags=["remove-input"]
study.hypotheses_table(params["hypotheses"])

# %%
specs = study.models(params)  # a BNN per (hypothesis, prior); Laplace at B
fitted = chapter.fit(specs)

# %% tags=["remove-cell"]
by_key = study.by_cell(study.grid(specs), fitted)  # the talk's grid: snapshot A
prior_names = list(dict.fromkeys(p for _, p in by_key))

# %% [markdown]
# ## Did the fits converge?

# %% tags=["remove-input"]
fit_table = chapter.report_fits(fitted, figure_number=1)
verdicts = pd.Series(study.by_cell(study.grid(specs), fit_table["verdict"]))
glue_all(study.unconverged_cells(verdicts, "Their scores below are those of the ensemble where the optimiser "
                                              "stopped; differences involving them are not differences between "
                                              "posteriors."))
verdicts.unstack()

# %% [markdown]
# ```{glue:md} fits_caption
# :format: myst
# ```
#
# {glue:text}`unconverged_note`
#
# ## Validation corr (Sharpe) on the main target, as the talk ran it (snapshot A)
#
# Each cell is "corr (Sharpe)" of the ensemble of the model's draws after the talk's procedure, as
# the talk prints them; the row `single` is study 1's one-target BNN.

# %%
corr = common.grid_table(by_key, "mean")
sharpe = common.grid_table(by_key, "sharpe")
tables.corr_sharpe_side_by_side(corr, sharpe, study.talk_corr(),
                                study.talk_sharpe(),
                                ours_label=chapter.ours_label)

# %% [markdown]
# The same with `numerai_corr` (no counterpart in the talk):

# %% tags=["remove-input"]
tables.corr_sharpe(common.grid_table(by_key, "mean", "numerai_corr"),
                   common.grid_table(by_key, "sharpe", "numerai_corr"))

# %% tags=["remove-input"]
figure = plots.ours_vs_talk_panels(
    corr, study.talk_corr(), ours_label=chapter.ours_label,
    title="Validation corr on the main target, by hypothesis and prior", ylabel="validation corr",
    xlabel="hypothesis (single: one-target BNN)")
results.export_figure(out, "corr", figure)
display(figure)

# %% [markdown]
# *Figure 2. Validation corr of the ensemble of each model on the main target, one bar per
# prior; left: this run, right: the talk's published values.*
#
# The talk's findings, checked on its numbers and on ours:

# %% tags=["remove-input"]
check = study.talk_check(corr, sharpe)
glance_check = check  # its rows of the intro's findings at a glance are written with snapshot B's, below
glue_all(study.talk_agreement(check))
glue_all(study.score_findings(corr, sharpe, verdicts))
check

# %% [markdown]
# Of the talk's {glue:text}`check_findings` findings on this table, {glue:text}`check_agreed` of
# {glue:text}`check_checkable` checkable ones hold in this run (those that differ:
# {glue:text}`check_differ`). {glue:text}`best_note` The multi-target models beat the one-target
# BNN of the same prior in {glue:text}`beats` of {glue:text}`cells` cells.
#
# ## The Laplace prior at convergence (snapshot B)
#
# The talk's candidate prior's fits, continued from A until their verdicts hold (the other
# priors' fits stop at A: each continuation costs about as much again as the talk's budget):

# %% tags=["remove-input"]
scores = common.score_table(fitted)
converged = common.snapshots_table(scores["corr_mean"], scores["corr_sharpe"], fit_table,
                                   study.converged_pairs(specs)).rename_axis("hypothesis")
results.write_csv(converged, out / "snapshots.csv")
glue_all(study.converged_findings(converged))
results.write_csv(pd.concat([common.claims_glance("3: target hypotheses", glance_check, None,
                                                  common.joint_verdict(verdicts)),
                             study.laplace_glance(converged)]), out / common.GLANCE_FILE, index=False)
converged

# %% [markdown]
# {glue:text}`converged_note`
#
# ## H4: does the 60-day mean explain the 20-day mean?
#
# Under H4 the posterior of beta (the weight of the 60-day mean in the 20-day mean) is a
# normal distribution (the mean-field guide). Where the two targets are positively correlated
# (the table of the targets above gives their correlation here), one would expect beta > 0; the
# talk found it spread symmetrically around 0. One reason to
# expect that: u and v are both free outputs of the network, so u can absorb whatever part of
# the 20-day mean beta v does not carry, and the likelihood hardly pins beta down; its
# posterior then stays near where the prior and the guide's initialisation (0) put it.

# %% tags=["remove-input"]
if "h4" in params["hypotheses"]:
    beta = study.h4_betas(by_key, verdicts, prior_names)
    glue_all(study.h4_beta(beta, target_corr.iloc[:, -1].get(dataset.roles.long)))
    figure = plots.posterior_densities(
        {common.prior_label(p): statistics.normal_density(beta.loc[p, "mean"], beta.loc[p, "std"]) for p in prior_names},
        title="Posterior of H4's beta (60-day mean -> 20-day mean)", xlabel="beta")
    results.export_figure(out, "beta", figure)
    display(beta, figure)
else:
    glue_all({"beta_note": study.NO_H4})

# %% [markdown]
# {glue:text}`beta_note`
#
# (rerun-target-hypotheses)=
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
# Source: {download}`target_hypotheses.py <target_hypotheses.py>` (jupytext percent); executed
# notebook: {download}`target_hypotheses.ipynb <target_hypotheses.ipynb>`. Papers and talk cited:
# [References](references.md).
#
# ## Exported results and provenance
#
# Every model's ensemble predictions and per-era scores; `summary.csv` holds the corr and
# Sharpe of every (hypothesis, prior).

# %% tags=["remove-cell"]
chapter.close(fitted, common.labelled_score_table(fitted, study.labels(specs)))  # both snapshots

# %% [markdown]
# {glue:text}`written` files written under {glue:text}`results_folder`.
#
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
