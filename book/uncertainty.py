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
# # Beyond the talk: which uncertainty finds failing eras?
#
# Study 2 asked whether one kind of uncertainty, the spread of a BNN's posterior draws, flags
# the eras where the model burns. A Numerai participant has more choices: MC dropout
# {cite}`gal2016`, a deep ensemble of networks trained from different seeds
# {cite}`lakshminarayanan2017`, or no model of uncertainty at all. This chapter scores them
# side by side, on the same data and the same network, and asks three questions:
#
# 1. **Detection.** Does a method's per-era mean predictive std rank its own burn eras, and the
#    eras where the synthetic data planted a change, above the others (AUC)?
# 2. **Controls.** Does it see more than a plain statistic that needs no Bayesian model: how
#    strongly the era's features move together, how far their correlations lie from the
#    training eras', or how widely the plain network's own predictions spread in the era?
#    In this data the sudden shifts raise the features' common loading, so the inputs alone may
#    flag them; an uncertainty earns its cost only by what it adds beyond such a control.
# 3. **Truth.** Against what the generator knows: how close each ensemble gets to the
#    noise-free signal, and how often its intervals hold the noise-free target.
#
# It also splits a heteroscedastic BNN's predictive variance into its epistemic part (the
# spread of the mean over draws) and its aleatoric part (the noise the model expects), and
# compares the spread over posterior draws with the spread over retraining seeds, the talk's
# own starting point.

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
results_dir = "_build/results/uncertainty"
priors = ["flat", "normal", "laplace"]  # flat is the talk's "uniform"
hidden = [128, 64, 64]  # hidden units per layer (the talk's)
epochs = 30
steps = None  # optimiser steps; None: `epochs` passes (on a smaller dataset, 17700 matches the talk)
batch_size = 4096
lr_baseline = 1e-3  # the point networks: baseline, MC dropout, the deep ensemble's members (SVI's lr)
lr_baseline_final = 1.0  # their lr decays to this share by the last step (1: constant, as SVI's to snapshot A)
lr_bnn = 1e-3  # SVI's lr (the talk's), constant to snapshot A
lr_bnn_scale = 1e-2  # the guide's log-scales in the continuation to B (at 1e-3 they settle far more slowly)
lr_bnn_final = 0.1  # the continuation's lrs decay geometrically to this share by its cap (1: constant)
continue_steps = 53190  # the cap of the continuation from A to B, in steps (0: no continuation, A only)
estimator = "output"  # the ELBO's gradient estimator: output | local | weights (Pyro's Trace_ELBO)
guide_init = "he"  # where the guide starts: he (the talk's: He means, stds 0.01) | prior (zero means, the prior's stds)
init_scale = None  # initial stds: a multiple of the prior's (prior; None: 1) or the std itself (he; None: 0.01)
precision = "auto"  # float32 | bf16 | auto (bf16 where the CPU has native bf16)
draws = 1000  # posterior draws per prior, and MC dropout's passes
dropout = 0.1  # MC dropout's rate
members = 5  # the deep ensemble's networks (seeds seed .. seed + members - 1)
hetero_prior = "normal"  # the heteroscedastic BNN's prior (None: no epistemic/aleatoric split)
seed = 0
force = False  # refit even if cached
jobs = 1  # local processes for the fits
device = "auto"  # where fits and scoring run: auto (a GPU when torch sees one) | cpu | cuda | cuda:N
executor = "local"  # where fits run: local, dask (a cluster here) or dask://HOST:PORT
mlflow_uri = None  # also log every fit to MLflow: file:/folder or http(s)://HOST[:PORT]

# %% tags=["remove-cell"]
# %matplotlib inline
from bnnlib.report.chapter import glue, glue_all, open_chapter  # first: it keeps Pyro's import warning off the page

import pandas as pd
from IPython.display import display

from bnnlib.studies import common
from bnnlib.studies import uncertainty as study

from bnnlib.evaluate import fits

from bnnlib.report import plots

from bnnlib.infra import results
from bnnlib.evaluate.study import evaluate_variance_split

chapter = open_chapter("uncertainty", globals())
params, dataset, out = chapter.params, chapter.dataset, chapter.out

# %% [markdown]
# {glue:text}`data_note` This run has {glue:text}`validation_eras` validation eras, with {glue:text}`param_epochs`
# epochs, {glue:text}`param_draws` draws per BNN and for MC dropout, and a deep ensemble of
# {glue:text}`param_members` networks. The command that reruns this page, its parameters and its
# source are {ref}`at its end <rerun-uncertainty>`.
#
# ## The methods
#
# The BNNs are study 1's (with the same settings they come from the cache). The point networks
# ({glue:text}`point_name`, MC dropout and the deep ensemble's members) train with
# {glue:text}`point_lr_note`. At the talk's constant
# 1e-2 a network can die (every ReLU off: one prediction for every row; study 1 names any of its
# networks that did), and a seed spread made of dead and live networks would measure the
# optimiser's failures, not the seeds' effect. {glue:text}`point_name` is the point network with
# these settings; at the default ones it is study 1's matched-budget control of that name, the same
# fit (study 1's `baseline` is the lr 1e-2 network). MC dropout trains the same network with dropout (rate
# {glue:text}`param_dropout`) and keeps dropping units when it predicts, one random mask per
# draw. The deep ensemble trains the same network from {glue:text}`param_members` seeds; its
# "draws" are its members. The heteroscedastic BNN (hetero) has a second output that sets each
# row's noise.

# %%
specs = study.models(params)  # point networks, BNNs, MC dropout, deep ensemble
fitted = chapter.fit(specs)

# %% tags=["remove-cell"]
glue_all(study.point_schedule(params["lr_baseline"], params["lr_baseline_final"], params["lr_bnn"],
                              params["lr_bnn_final"]))
point = study.point_name(params)  # study 1's baseline_bnn_lr at the default settings
glue("point_name", point)
checks = {n: fitted.pop(n) for n in [study.precision_check_name(params)] if n in fitted}  # not a method
bnn_names = [name for name, r in fitted.items() if r.spec.has_posterior]

# %% [markdown]
# ## Did the Bayesian fits converge?
#
# A posterior's spread means something only where its fit converged.

# %% tags=["remove-input"]
fit_table = chapter.report_fits({n: fitted[n] for n in bnn_names}, figure_number=1)
glue_all(common.convergence_note(fit_table, bnn_names, "its uncertainty is the optimiser's state, not a posterior's."))
glue_all(common.constant_predictors(fits.constant_predictors(fitted)))
unconverged = [n for n in bnn_names if fit_table.loc[n, "verdict"] != "converged"]

# %% [markdown]
# ```{glue:md} fits_caption
# :format: myst
# ```
#
# Converged: {glue:text}`converged`. {glue:text}`unconverged_note` {glue:text}`constant_note`
#
# ## Scores and uncertainty, side by side
#
# Per method: the ensemble's validation corr and Sharpe; the AUC of its per-era mean predictive
# std as a detector of its own burn eras (corr < 0) and of each planted change; how close its
# ensemble is to the noise-free signal; how often its central 50% and 90% intervals (a Normal
# with the row's mean and std over draws) hold the noise-free target; and what fitting and
# scoring it cost, from the cache's records (a fit read from the cache shows what it cost when it
# was computed). {glue:text}`point_name` alone has one prediction per row, hence no spread: its
# uncertainty columns show a dash. A method's burn AUC is against its own burn eras (the eras where
# its ensemble's corr is negative).
#
# The controls need no model of uncertainty: per era, the mean absolute correlation between
# features (`feature_correlation`), the distance of the era's feature correlations from the
# training eras' (`covariance_distance`), and the spread of {glue:text}`point_name`'s predictions within
# the era (`baseline_dispersion`). Their burn AUC is against {glue:text}`point_name`'s burn eras.

# %% tags=["remove-input"]
changes, signal, signal_target = study.ground_truth(dataset)  # empty on real data
methods = study.method_rows(fitted, changes, signal, signal_target, chapter.runs())
control_series = study.controls(dataset, fitted[point])
controls = study.control_rows(control_series, study.burn_flags(fitted[point]), changes)
summary = pd.concat([methods, controls.rename_axis("method")])
scored = [c for c in summary.columns if c in ("corr_mean", "corr_sharpe", "burn_eras") or c.endswith("_auc")]
display(summary[scored], summary.drop(columns=scored))  # two tables, so neither runs past the page

# %% [markdown]
# ## What an uncertainty adds beyond the controls

# %% tags=["remove-input"]
with_spread = methods.dropna(subset=["burn_auc"]).index
trusted = [n for n in with_spread if n not in unconverged]  # point networks and converged posteriors
era_stds = {n: fitted[n].scores.era_std() for n in trusted}
detections = study.best_against_control(
    era_stds, control_series, {"burn": {n: study.burn_flags(fitted[n]) for n in trusted}, **changes})
results.write_csv(detections, out / "detection.csv")
glue_all(study.uncertainty_detection(detections, [n for n in with_spread if n in unconverged]))
glue("burn_eras_of", str(detections.loc["burn", "method"]) if "burn" in detections.index else "no method")
glue_all(study.std_direction(study.std_shifts(era_stds, changes.get("covariate_shift")),
                             methods.get("covariate_shift_auc", pd.Series(dtype=float))))
detections

# %% [markdown]
# Per question, the method with the highest AUC (among those whose spread is a converged
# posterior's or a point method's) against the control with the highest AUC on the same eras, and the difference of the two with its 95% interval from resampling the eras
# (with {glue:text}`validation_eras` eras, luck alone moves an AUC: the interval says by how much). The best of several
# methods is also the luckiest, so an interval that only just excludes 0 is weak evidence.
# The burn question scores the method and the controls against that method's own burn eras
# ({glue:text}`burn_eras_of`'s here), so a control's burn AUC in this table can differ from its
# row in the summary above, which scores the controls against {glue:text}`point_name`'s burn eras.
#
# {glue:text}`detect_burn`
#
# {glue:text}`detect_covariate_shift` {glue:text}`direction_note`
#
# {glue:text}`detect_concept_drift`
#
# The planted changes: *covariate shift* marks the validation eras of a sudden shift, in which
# the generator raises the features' common loading (visible in the inputs) and also flips the
# sign of some weights; *concept drift* marks changes of the relation alone, which leave the
# features' distribution as it was: on a `-drift` profile (`-p synthetic_profile default-drift`)
# the eras where the generator flipped weights without touching the features, otherwise the
# quarter of the other validation eras whose weights drifted furthest from the training eras'.
# Concept drift is judged against the calm eras alone (the eras of a sudden shift are left out
# of it), so no detector scores on it, above or below 0.5, by reacting to the shifts. So a
# control built on the features should see the first and not the second.
#
# ## Against the noise-free truth

# %% tags=["remove-input"]
if signal is not None:
    glue_all(study.uncertainty_truth(methods, study.truth_ceiling(dataset)))
else:
    glue_all({"truth_signal": common.NO_TRUTH, "truth_coverage": ""})

# %% [markdown]
# {glue:text}`truth_signal`
#
# {glue:text}`truth_coverage` The noise-free target is the signal mapped to the target's units by
# the least-squares line on the training rows: the best any model of this target could predict.
#
# ## Epistemic and aleatoric
#
# The heteroscedastic BNN's predictive variance per row is the variance over draws of its mean
# (epistemic: what more data would shrink) plus the mean over draws of its noise variance
# (aleatoric: what the model expects the target to scatter by). Per era, which part rises where
# the data changed?

# %% tags=["remove-input"]
if study.HETERO in fitted:
    split = evaluate_variance_split(fitted[study.HETERO].spec, dataset, chapter.cache,
                                    force=params["force"], device=chapter.device)
    per_era = split.per_era()
    parts = {part: per_era[part] for part in ("epistemic", "aleatoric")}
    split_aucs = study.detection_aucs(parts, changes) if changes else None
    marked = changes.get("covariate_shift")
    figure = plots.epistemic_aleatoric({"hetero": per_era}, marked=marked, title="Epistemic and aleatoric variance per era",
                                       marked_label="covariate-shift eras")
    results.export_figure(out, "epistemic_aleatoric", figure)
    results.write_csv(per_era, out / "variance_split.csv")
    display(figure)
    display(split_aucs if split_aucs is not None else per_era.describe())
    glue_all({"split_caption": (
        "Figure 2. Per validation era, the mean over its rows of the heteroscedastic BNN's epistemic and "
        "aleatoric variance (log scale); shaded: the eras of covariate shift. The table gives the AUC of each "
        "part's per-era mean as a detector of each planted change.")})
else:
    glue_all({"split_caption": ("This run has no heteroscedastic BNN (hetero_prior is null), so its variance is "
                                "not split and there is no figure here.")})

# %% [markdown]
# *{glue:text}`split_caption`*
#
# ## Seeds against posterior draws
#
# The talk started from an observation: retraining the network with another seed moves its
# score. If a posterior's draws stood for that uncertainty, they would spread about as much.

# %% tags=["remove-input"]
spreads = study.draw_spreads(fitted)
glue_all(study.seed_spread(spreads, unconverged))
spreads

# %% [markdown]
# {glue:text}`spread_note`
#
# ## bf16 against float32 for the point networks
#
# Where the CPU multiplies bf16 natively, the point networks train with their hidden layers'
# products in bf16, as the BNNs do (study 1 compares the Normal BNN both ways against the Monte
# Carlo error of its draws). A network without draws has another yardstick: the spread over
# seeds above. {glue:text}`point_name` trained again in float32 says what bf16 changes.

# %% tags=["remove-input"]
point_check = (study.precision_pair(fitted[point], checks[study.precision_check_name(params)])
               if study.precision_check_name(params) in checks else None)
glue_all(study.point_precision(point_check, spreads, specs[0].precision))
if point_check is not None:
    results.write_csv(point_check, out / "point_precision.csv")
    display(point_check)

# %% [markdown]
# {glue:text}`point_note`
#
# (rerun-uncertainty)=
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
# Source: {download}`uncertainty.py <uncertainty.py>` (jupytext percent); executed notebook:
# {download}`uncertainty.ipynb <uncertainty.ipynb>`. Papers and talk cited: [References](references.md).
#
# ## Exported results and provenance
#
# One row per method and per control: `summary.csv`; per model, its predictions and per-era
# scores (`per_era.csv`); the heteroscedastic BNN's per-era variances, `variance_split.csv`.

# %% tags=["remove-cell"]
chapter.close(fitted, summary)

# %% [markdown]
# {glue:text}`written` files written under {glue:text}`results_folder`.
#
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
