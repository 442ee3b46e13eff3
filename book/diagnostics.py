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
# # Appendix: are these posteriors?
#
# A number computed from a Bayesian fit is a property of a posterior only if the fit reached the
# optimum of its objective, and if that optimum is the data's answer rather than the starting
# point's or the arithmetic's. This appendix gathers the checks on study 1's fits: every fit's
# trace and verdict; whether a narrower start, or a start at the prior, ends at the same
# posterior; whether bf16 changes the answer; and what the improper flat prior does beside a wide
# proper one. The exact answer for the linear model, and the ladder that puts every ELBO beside
# exact yardsticks and the Laplace posteriors' evidences, are in the
# {doc}`architecture appendix <architecture>`.

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
results_dir = "_build/results/diagnostics"
priors = ["flat", "normal", "laplace"]  # flat is the talk's "uniform"
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
draws = 1000  # posterior draws per prior
lr_baseline = 1e-2  # the baseline network's lr (the talk's): its Laplace posteriors' evidences join the ladder
init_shrink = 10  # the init-invariance check refits the Normal BNN from initial stds this many times smaller
seed = 0
force = False  # refit even if cached
jobs = 1  # local processes for the fits
device = "auto"  # where fits and scoring run: auto (a GPU when torch sees one) | cpu | cuda | cuda:N
executor = "local"  # where fits run: local, dask (a cluster here) or dask://HOST:PORT
mlflow_uri = None  # also log every fit to MLflow: file:/folder or http(s)://HOST[:PORT]

# %% tags=["remove-cell"]
# %matplotlib inline
from bnnlib.report.chapter import glue_all, open_chapter  # first: it keeps Pyro's import warning off the page

from IPython.display import display

from bnnlib.studies import diagnostics as study

from bnnlib.evaluate import convergence, exact, fits
from bnnlib.evaluate.study import fitted_posterior
from bnnlib.report import plots

from bnnlib.infra import results

chapter = open_chapter("diagnostics", globals())
params, dataset, out = chapter.params, chapter.dataset, chapter.out

# %% [markdown]
# {glue:text}`data_note` The fits are study 1's (the same cache entries) and the controls beside
# them; the command that reruns this page is {ref}`at its end <rerun-diagnostics>`.
#
# ## Every fit's trace and verdict
#
# Study 1's BNNs at both snapshots (A: the talk's procedure; B: continued until the verdict
# holds), the controls below, and the linear fits of the exact check.

# %%
specs = study.models(params)  # study 1's fits, the controls, the linear fits
fitted = chapter.fit(specs)

# %% tags=["remove-input"]
fit_table = chapter.report_fits(fitted, figure_number=1)

# %% [markdown]
# ```{glue:md} fits_caption
# :format: myst
# ```
#
# ## Is the spread the data's or the initialisation's?
#
# The Normal BNN refitted from guide stds {glue:text}`param_init_shrink` times smaller and
# continued to its own convergence: if the spread of the draws is the posterior's, both fits end
# with the same guide std in every layer and the same ensemble corr, up to the Monte Carlo error
# of a finite number of draws (and the optimiser's own noise). Mean-field variational fits are
# known to prune units and to underfit the data's signal {cite}`trippe2018,coker2022`, so this is
# not a formality.

# %% tags=["remove-input"]
_, y_valid, valid_eras = dataset.arrays("validation", [dataset.roles.main])
init_names = study.init_pair(params)
init_check = fits.paired_comparison(fitted, {study.INIT_CHECK_PRIOR: init_names}, y_valid[:, 0],
                                    valid_eras) if all(n in fitted for n in init_names) else None
if init_check is not None:
    results.write_csv(init_check, out / "init_invariance.csv")
    glue_all(study.init_invariance(init_check, [study.INIT_CHECK_PRIOR], n_rows=len(dataset.train),
                                   verdicts=fit_table["verdict"]))
    display(init_check)
else:
    glue_all(study.no_init_check())

# %% [markdown]
# Every layer's median guide std agrees within {glue:text}`init_tolerance:.0f`% between the two
# starting points for {glue:text}`init_same` of {glue:text}`init_of` priors
# ({glue:text}`init_same_names`). {glue:text}`init_apart_note` The ensemble corrs differ by this many times their Monte
# Carlo error: {glue:text}`init_mc_errors`. {glue:text}`init_elbo_note`
#
# ## bf16 against float32
#
# On CPUs with native bf16 instructions {cite}`kalamkar2019` the fits and the scoring run their
# hidden layers' products in bf16 (parameters, likelihood and outputs stay float32). The Normal
# BNN fitted and scored in float32 under the talk's procedure says what that changes at A, against
# two yardsticks: the Monte Carlo error of the ensemble, and the difference between two fits of one
# posterior from two starting points (the table above). The point networks train in bf16 too; the
# uncertainty chapter retrains its baseline in float32 and measures the difference against the
# spread over seeds, a network without draws having no Monte Carlo error.

# %% tags=["remove-input"]
precision_check = fits.paired_comparison(
    fitted, {"bf16 vs float32": (study.PRECISION_CHECK, "normal")}, y_valid[:, 0], valid_eras
) if study.PRECISION_CHECK in fitted else None
glue_all(study.precision_note(precision_check, init_check, fit_table, params["precision"]))
if precision_check is not None:
    results.write_csv(precision_check, out / "precision_check.csv")
    display(precision_check)

# %% [markdown]
# {glue:text}`precision_note`
#
# ## The flat prior and a wide proper prior
#
# The talk's *uniform* prior is improper: for a weight the data do not pin down, the posterior
# does not exist, and the guide's entropy pushes its scale up for as long as the optimiser runs.
# Beside it, the same network under a proper Normal prior {glue:text}`wide_factor:g` times wider
# than He's: as vague as the flat prior wherever the data decide, but with a posterior, whose
# scales stop at the prior's. Both fits run the talk's procedure (snapshot A), from He-initialised
# means with {glue:text}`wide_start`. Both are in the verdicts table above.

# %% tags=["remove-input"]
glue_all(study.wide_vs_flat(fit_table, fitted, study.WIDE_CONTROL))
glue_all(study.wide_start(fit_table))

# %% [markdown]
# {glue:text}`wide_note`
#
# ## The talk's start and the prior's
#
# The talk's guide starts at He-initialised means with stds of 0.01, far from the prior: the
# weights the data cannot pay for must travel all the way back to it, slowly, under noisy
# gradients. A guide started at the prior (zero means, the prior's stds) says at first only
# what the prior says, and keeps only what the data pay for. The Normal BNN is fitted from both
# starts, each continued to its own convergence (snapshot B). If both reach one posterior, the
# start decides only how long the road is; the table compares their ends as the init-invariance
# check does.

# %% tags=["remove-input"]
start_names = study.start_comparison(params)
start_check = None
if all(name in fitted for name in start_names):
    start_check = fits.paired_comparison(fitted, {"normal": start_names}, y_valid[:, 0], valid_eras)
    results.write_csv(start_check, out / "start_check.csv")
    display(start_check)
glue_all(study.from_prior(fit_table, fitted, *start_names, n_rows=len(dataset.train),
                          pair=None if start_check is None else start_check.loc["normal"]))

# %% [markdown]
# {glue:text}`from_prior_note`
#
# ## SVI against the exact posterior (the linear model)
#
# Without a hidden layer, with the Normal prior and Gaussian noise, the posterior is Normal in
# closed form, and so is the best mean-field approximation to it: its means are the exact
# posterior means and its variances 1 / the diagonal of the posterior precision (below the exact
# marginal variances where features correlate). SVI's fit of the linear model is checked against
# both, given the noise scale SVI learned. The check is of the optimiser's answer, so its fit
# gets {glue:text}`exact_budget` times the chapter's steps (`diagnostics.EXACT_CHECK_BUDGET`); the
# linear fit under the talk's procedure (the architecture appendix's depth 0) is measured too.

# %% tags=["remove-input"]
exact_specs = study.exact_models(params)
x_train, y_train, _ = dataset.arrays("train", [dataset.roles.main])
glue_all({"exact_budget": study.EXACT_CHECK_BUDGET})
if not exact_specs:
    glue_all({"exact_note": study.NO_EXACT})
else:
    exact_fit, linear_fit = (fitted_posterior(s, dataset, chapter.cache, chapter.device) for s in exact_specs)
    exact_table = exact.exact_check(exact_fit, x_train, y_train, dataset.features)
    at_budget = exact.exact_check(linear_fit, x_train, y_train, dataset.features)
    results.write_csv(exact_table, out / "exact_check.csv", index=False)
    glue_all(study.exact_note(exact_table, exact.exact_check_summary(exact_table),
                              at_budget=exact.exact_check_summary(at_budget),
                              steps=(exact_fit.history["step"][-1], fit_table.loc[study.LINEAR_AT_BUDGET, "steps"]),
                              figure=2, at_budget_verdict=fit_table.loc[study.LINEAR_AT_BUDGET, "verdict"]))
    figure = plots.exact_check_figure(exact_table, title="Linear model, Normal prior: SVI against the exact answers")
    results.export_figure(out, "exact_check", figure)
    display(figure)

# %% [markdown]
# {glue:text}`exact_note`
#
# ## What the data can pay for
#
# The same closed forms give exact yardsticks for the ELBO itself: the log evidence of the
# Bayesian linear model (the most any guide of it can reach), the ELBO of its mean-field
# optimum, and the log-likelihood of the best constant prediction, which ignores the inputs and
# pays no prior cost. Every fit's last ELBO per row is put on that scale, as its margin over the
# constant, per row and in nats over all {glue:text}`train_rows:,` training rows, beside the log
# evidences of study 1's Laplace posteriors of the trained baseline network (prior precision and
# noise chosen by that evidence). An ELBO is a lower bound on its own model's log evidence. A
# Laplace evidence far above the mean-field ELBOs of the same network says that this network,
# with a prior the evidence chose, explains the data better than the mean-field posterior under
# He's prior does; it does not by itself say how much of the gap is the mean-field family's and
# how much the prior's, and the all-weights evidence is itself an approximation (Kronecker-factored
# curvature).

# %% tags=["remove-input"]
if exact_specs:
    references = exact.posterior_elbo_references(linear_fit, x_train, y_train)
    evidences = study.laplace_evidences(fitted, params)
    ladder = fits.elbo_ladder(references, fit_table, n_rows=len(y_train), evidences=evidences)
    results.write_csv(ladder, out / "elbo_ladder.csv")
    glue_all(study.data_worth(ladder, fit_table, len(y_train), convergence.ELBO_TOL,
                              linear_check=exact.exact_check_summary(at_budget)))
    headers = {"elbo_per_row": "ELBO per row", "over_constant_per_row": "over the constant, per row",
               "over_constant_nats": "over the constant, nats in all"}
    display(ladder.rename(columns=headers))
else:
    glue_all({"worth_note": study.NO_EXACT})

# %% [markdown]
# A hidden layer of the talk's network has thousands of weights, and a mean-field guide pays a
# KL for every weight it pins, so where the data hold little, mean-field VI prunes: it sets the
# weights the data do not need back to their prior {cite}`trippe2018,coker2022`.
#
# {glue:text}`worth_note`
#
# (rerun-diagnostics)=
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
# Source: {download}`diagnostics.py <diagnostics.py>` (jupytext percent); executed notebook:
# {download}`diagnostics.ipynb <diagnostics.ipynb>`. Papers and talk cited: [References](references.md).
#
# ## Exported results and provenance
#
# The fits' verdicts (`fits.csv`) and each check's table (`init_invariance.csv`,
# `precision_check.csv`, `start_check.csv`, `exact_check.csv`, `elbo_ladder.csv`) are written
# under the appendix's results folder.

# %% tags=["remove-cell"]
chapter.close(fitted)

# %% [markdown]
# {glue:text}`written` files written under {glue:text}`results_folder`.
#
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
