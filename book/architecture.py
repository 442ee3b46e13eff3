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
# # Appendix: architecture
#
# How does the depth of the network change its scores and its posterior? The talk's {cite}`talk2021` appendix
# fits the baseline and the three BNNs with 0 hidden layers (a linear model), 1 (128 units),
# 2 (128, 64) and 3 (128, 64, 64, the baseline's), and compares the distributions of the
# per-draw corr means between depths with a divergence between normal fits of them.

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
results_dir = "_build/results/architecture"
priors = ["flat", "normal", "laplace"]  # flat is the talk's "uniform"
architectures = [[], [128], [128, 64], [128, 64, 64]]  # hidden units per layer; one per depth
divergence_prior = "flat"  # whose per-draw distributions the main divergence matrix compares
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
draws = 1000  # posterior draws per BNN
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
from bnnlib.studies import architecture as study

from bnnlib.scoring import statistics

from bnnlib.report import plots, tables

from bnnlib.infra import results
from bnnlib.models.priors import canonical_prior

chapter = open_chapter("architecture", globals())
params, dataset, out = chapter.params, chapter.dataset, chapter.out
prior_names = [canonical_prior(p) for p in params["priors"]]
divergence_prior = canonical_prior(params["divergence_prior"])
glue_all({"architectures": "; ".join(study.depth_label(h) for h in params["architectures"]),
          "divergence_prior": common.prior_label(divergence_prior)})
figures = {"figure_traces": 1, "figure_corr": 2, "figure_normal_fits": 3,
           "figure_js": 4}  # the page's figure numbers
glue_all(figures)

# %% [markdown]
# {glue:text}`data_note` Architectures: {glue:text}`architectures`. {glue:text}`param_epochs`
# epochs, {glue:text}`param_draws` draws per BNN. The command that reruns this page, its
# parameters and its source are {ref}`at its end <rerun-architecture>`.
#
# ## Fits

# %%
specs = study.depth_models(params)  # baselines and BNNs per depth
fitted = chapter.fit(specs)

# %% tags=["remove-cell"]
by_key = {(len(s.hidden), s.prior or "baseline"): fitted[s.name] for s in study.grid(specs)}  # snapshot A
depths = list(dict.fromkeys(d for d, _ in by_key))

# %% [markdown]
# ## Did the fits converge?
#
# Every guide starts where the talk's does (He-initialised means, stds 0.01; the `start` column),
# and runs the talk's procedure to snapshot A; the Laplace prior's fits continue to snapshot B
# (the `snapshot` column). Under `guide_init: prior` the guides of the networks with hidden layers
# start at their prior instead, except the flat prior's, which has no std to start from, and the
# linear models' (0 hidden layers), whose every weight the data pin down far below the prior's
# stds.

# %% tags=["remove-input"]
fit_table = chapter.report_fits(fitted, figure_number=figures["figure_traces"])
glue_all(common.convergence_note(fit_table, [s.name for s in study.grid(specs) if s.has_posterior],
                              "its spread, and the divergences below that involve it, describe where the optimiser "
                              "stopped, not a posterior."))

# %% [markdown]
# ```{glue:md} fits_caption
# :format: myst
# ```
#
# {glue:text}`unconverged_note`
#
# ## Validation corr (Sharpe) by depth
#
# Rows: the number of hidden layers; cells: "corr (Sharpe)" of the baseline network and of
# each BNN's ensemble after the talk's procedure (snapshot A).

# %%
corr = common.grid_table(by_key, "mean").rename_axis("hidden_layers")
sharpe = common.grid_table(by_key, "sharpe").rename_axis("hidden_layers")
tables.corr_sharpe_side_by_side(corr, sharpe, study.talk_corr(),
                                study.talk_sharpe(),
                                ours_label=chapter.ours_label)

# %% tags=["remove-input"]
figure = plots.ours_vs_talk_panels(
    corr, study.talk_corr(), ours_label=chapter.ours_label,
    title="Validation corr by number of hidden layers", ylabel="validation corr", xlabel="hidden layers")
results.export_figure(out, "corr_by_depth", figure)
display(figure)

# %% [markdown]
# *Figure {glue:text}`figure_corr`. Validation corr of the baseline network and of each BNN's ensemble, by number of
# hidden layers; left: this run, right: the talk's published values.*
#
# The talk's findings, checked on its numbers and on ours:

# %% tags=["remove-input"]
check = common.check_claims(study.corr_claims(), corr, study.talk_corr())
glue_all(study.corr_agreement(check))
glue_all(study.best_depths(corr, study.talk_corr()))
check

# %% [markdown]
# Of the talk's {glue:text}`check_findings` findings on this table, {glue:text}`check_agreed` of
# {glue:text}`check_checkable` checkable ones hold in this run (those that differ:
# {glue:text}`check_differ`). The depth with the best corr, per model: {glue:text}`depth_ours`;
# in the talk: {glue:text}`depth_talk`.
#
# ## The Laplace prior at convergence (snapshot B)
#
# The talk's candidate prior's fit at every depth, continued from A until its verdict holds:

# %% tags=["remove-input"]
scores = common.score_table(fitted)
converged = common.snapshots_table(scores["corr_mean"], scores["corr_sharpe"], fit_table,
                                   study.converged_pairs(specs)).rename_axis("hidden_layers")
results.write_csv(converged, out / "snapshots.csv")
glue_all(study.converged_findings(converged))
results.write_csv(pd.concat([common.claims_glance(  # this study's rows of the intro's findings at a glance
    "4: architecture", check, None,
    common.joint_verdict(fit_table["verdict"].reindex([s.name for s in study.grid(specs) if s.has_posterior]).dropna())),
    study.laplace_glance(converged)]), out / common.GLANCE_FILE, index=False)
converged

# %% [markdown]
# {glue:text}`converged_note`
#
# ## How far apart are the posteriors of different depths?
#
# For each depth and prior, every posterior draw has a validation corr mean; a normal is fitted
# to those (maximum likelihood), and the distance between two depths is a divergence between
# their normal fits.
#
# The talk calls its distance the **Jensen-Shannon divergence** {cite}`lin1991`. JS between two normals has no
# closed form, so it is integrated numerically here, in **nats** (natural log). Whatever the
# distributions, JS lies between 0 and ln 2 = 0.693 nats (1 bit). Beside it are two unbounded
# divergences that have closed forms for normals: the KL divergence KL(row || column) and its
# symmetrised form KL(p||q) + KL(q||p) (Jeffreys).

# %% tags=["remove-input"]
draw_fits = study.draw_mean_fits(by_key)  # (depth, prior) -> normal fit (mean, std)
draw_fits.index = pd.MultiIndex.from_tuples(draw_fits.index, names=["hidden_layers", "prior"])
fit_of = {p: draw_fits.xs(p, level="prior").apply(tuple, axis=1).to_dict()
          for p in prior_names}
js = {p: statistics.divergence_matrix(fit_of[p], "js") for p in prior_names}
jeffreys = statistics.divergence_matrix(fit_of[divergence_prior], "jeffreys")
kl = statistics.divergence_matrix(fit_of[divergence_prior], "kl")
draw_fits.unstack("prior")

# %% [markdown]
# JS divergence (nats) between depths, {glue:text}`divergence_prior` prior, beside the talk's
# matrix; then the same pairs by KL(row || column) and by the symmetrised KL (Jeffreys), in nats:

# %% tags=["remove-input"]
display(common.side_by_side(js[divergence_prior], study.talk_divergence(),
                              ours_label=f"{chapter.ours_label}: JS (nats)", talk_label="talk (2021): its 'JS'"))
pd.concat({"KL": kl, "Jeffreys": jeffreys}, axis=1)

# %% tags=["remove-input"]
figure = plots.normal_fits(draw_fits.xs(divergence_prior, level="prior").rename(index=lambda d: f"{d} hidden layers"),
                           title=f"Normal fits of the per-draw corr means ({common.prior_label(divergence_prior)} prior)",
                           xlabel="validation corr of one draw")
results.export_figure(out, "normal_fits", figure)
display(figure)
figure = plots.heatmaps({common.prior_label(p): js[p] for p in prior_names},
                        title="Jensen-Shannon divergence (nats) between depths, per prior",
                        axis_label="hidden layers", colorbar="JS divergence (nats)", vmax=study.JS_BOUND_NATS)
results.export_figure(out, "js_heatmaps", figure)
display(figure)

# %% [markdown]
# *Figure {glue:text}`figure_normal_fits` (top). The normal distributions fitted to the validation corr means of the posterior
# draws, one per depth, {glue:text}`divergence_prior` prior: the divergences compare these
# curves. Figure {glue:text}`figure_js` (bottom). JS divergence between the normal fits of the per-draw corr means of
# each pair of depths, one heat map per prior, on a colour scale from 0 to its maximum ln 2.*
#
# The talk's findings on its divergence matrix, checked on it and on ours:

# %% tags=["remove-input"]
check_div = common.check_claims(study.divergence_claims(), js[divergence_prior], study.talk_divergence())
glue_all(study.divergence_agreement(check_div))
glue_all(study.divergences(js[divergence_prior], jeffreys, study.talk_divergence()))
check_div

# %% [markdown]
# **The talk's numbers are not bounded JS divergences.** {glue:text}`talk_above_ln2` of its
# {glue:text}`talk_pairs` values exceed ln 2 = {glue:text}`ln2:.3f`, the largest JS divergence in
# nats, and {glue:text}`talk_above_1` exceed 1, the largest in bits; so they cannot be a JS
# divergence in either unit. An unbounded divergence, such as the KL divergence or its
# symmetrised form, can give numbers of that size; the talk does not publish the per-draw
# distributions of depths 0-2, so which one it computed cannot be checked. This chapter reports
# the proper JS divergence (in nats) and does not try to match the talk's values. Ours:
# {glue:text}`js_range` nats; the symmetrised KL: {glue:text}`jeffreys_range`, against the talk's
# {glue:text}`talk_range`. The closest pair here is
# {glue:text}`closest` hidden layers (the talk's: {glue:text}`talk_closest`); of the talk's
# {glue:text}`div_findings` findings on this matrix, {glue:text}`div_agreed` of
# {glue:text}`div_checkable` checkable ones hold in this run.
#
# ## Exact yardsticks
#
# How SVI's linear model compares with the exact posterior, and what the data can pay for in nats
# (every fit's ELBO beside the linear model's exact evidence and the Laplace posteriors' log
# evidences), are in the appendix {doc}`Are these posteriors? <diagnostics>`, for Study 1's
# network. Every depth's last ELBO per row is in the verdicts table above.
#
# (rerun-architecture)=
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
# Source: {download}`architecture.py <architecture.py>` (jupytext percent); executed notebook:
# {download}`architecture.ipynb <architecture.ipynb>`. Papers and talk cited:
# [References](references.md).
#
# ## Exported results and provenance
#
# Every model's ensemble predictions and per-era scores; `summary.csv` holds the corr and Sharpe
# of every (depth, model); the divergence matrices are written beside it.

# %% tags=["remove-cell"]
for p in prior_names:
    results.write_csv(js[p], out / f"js_divergence_{p}.csv")
results.write_csv(jeffreys, out / f"jeffreys_divergence_{divergence_prior}.csv")
chapter.close(fitted, common.labelled_score_table(
    fitted, {s.name: {"hidden_layers": len(s.hidden), "model": s.prior or "baseline"} for s in specs}).rename_axis("name"))

# %% [markdown]
# {glue:text}`written` files written under {glue:text}`results_folder` (besides the divergence
# matrices).
#
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
