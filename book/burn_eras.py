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
# # Study 2: can uncertainty detect burn eras?
#
# A **burn era** is a validation era whose corr is negative: a staked model loses money in it.
# The posterior gives, for every row, many predictions; their standard deviation is the
# model's uncertainty about that row. The talk {cite}`talk2021` averages it within each era and asks whether
# that number flags the eras that burn, scoring it as a detector by the area under the ROC
# curve (AUC) {cite}`hanley1982`.
#
# **Direction.** As in the talk, a *higher* mean std is read as "more likely to burn": the
# detector flags an era when its mean std is above a threshold, so an AUC above 0.5 says burn
# eras tend to have higher uncertainty, 0.5 is chance, and below 0.5 says they have *lower*
# uncertainty. The AUC is computed by the Mann-Whitney statistic {cite}`mannwhitney1947` (the probability that a random
# burn era has a higher mean std than a random other era, ties counting one half).

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
results_dir = "_build/results/burn_eras"
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
seed = 0
force = False  # refit even if cached
jobs = 1  # local processes for the fits
device = "auto"  # where fits and scoring run: auto (a GPU when torch sees one) | cpu | cuda | cuda:N
executor = "local"  # where fits run: local, dask (a cluster here) or dask://HOST:PORT
mlflow_uri = None  # also log every fit to MLflow: file:/folder or http(s)://HOST[:PORT]

# %% tags=["remove-cell"]
# %matplotlib inline
from bnnlib.report.chapter import glue_all, glue_md, open_chapter  # first: it keeps Pyro's import warning off the page

from IPython.display import display

from bnnlib.studies import common
from bnnlib.studies import burn_eras as study

from bnnlib.report import plots

from bnnlib.infra import results

chapter = open_chapter("burn_eras", globals())
params, dataset, out = chapter.params, chapter.dataset, chapter.out
glue_all({"talk_validation_eras": study.TALK_BURN_ERAS_OF})

# %% [markdown]
# {glue:text}`data_note` The talk's burn eras are among Numerai v3's {glue:text}`talk_validation_eras`
# validation eras; this run has {glue:text}`validation_eras`, with {glue:text}`param_epochs`
# epochs and {glue:text}`param_draws` draws per prior. The command that reruns this page, its
# parameters and its source are {ref}`at its end <rerun-burn-eras>`.
#
# ## The posterior of each prior
#
# The same Bayesian networks as in study 1 (with the same settings they come from the cache).

# %%
specs = study.models(params)  # the BNNs of Study 1 (read from the cache)
fitted = chapter.fit(specs)

# %% tags=["remove-cell"]
names = [s.name for s in specs]
eras = {p: study.burn_eras(fitted[p].per_era) for p in names}

# %% [markdown]
# ## Did the fits converge?
#
# An AUC of the predictive std says something about a posterior only if the fit converged.

# %% tags=["remove-input"]
fit_table = chapter.report_fits(fitted, figure_number=1)
glue_all(common.convergence_note(fit_table, names, "its AUC measures the optimiser's state, not its posterior's "
                                                "uncertainty."))

# %% [markdown]
# ```{glue:md} fits_caption
# :format: myst
# ```
#
# Converged: {glue:text}`converged`. {glue:text}`unconverged_note`
#
# ## Uncertainty against the era's score
#
# Each point is one validation era: its mean predictive std (the average over its rows of the
# std of the draws' predictions) against the ensemble's corr in that era.

# %% tags=["remove-input"]
labelled = {common.prior_label(p): eras[p] for p in names}
figure = plots.std_vs_score(labelled, title="Era's mean predictive std vs its corr (red: burn eras)")
results.export_figure(out, "std_vs_corr", figure)
display(figure)

# %% [markdown]
# *Figure 2. Per validation era, the mean over its rows of the predictive std across posterior
# draws (x) and the ensemble's corr in that era (y), per prior; burn eras (corr < 0) in red.*
#
# ## The std as a burn-era detector
#
# The AUC, the number of burn eras, and a one-sided Mann-Whitney p-value (how often chance alone
# gives an AUC at least this high with this many eras). The talk's p-values are computed here
# from its AUCs and burn-era counts by the normal approximation.

# %%
detection = study.burn_detection(fitted)  # per prior: AUC of the std, p-value
common.side_by_side(detection, study.with_p_values(study.talk_burn()),
                    ours_label=chapter.ours_label)

# %% tags=["remove-input"]
talk_burn = study.with_p_values(study.talk_burn())
detection[["mean_std_burn", "mean_std_other", "spearman_std_score"]]

# %% tags=["remove-input"]
figure = plots.burn_rocs(labelled, title="Mean predictive std as a burn-era detector")
if figure is not None:
    results.export_figure(out, "roc", figure)
    display(figure)
glue_md("roc_caption", "*Figure 3. ROC curves of the rule \"flag an era as burning when its mean predictive std is at "
        "least t\", for every threshold t, per prior (a prior without both burn and other eras has no curve); the "
        "dotted diagonal is chance (AUC 0.5).*" if figure is not None else
        "No prior has both burn and other eras, so there is no ROC curve to show.")

# %% [markdown]
# ```{glue:md} roc_caption
# :format: myst
# ```
#
# The talk's findings, checked on its numbers and on ours:

# %% tags=["remove-input"]
check = common.check_claims(study.talk_claims(), detection, talk_burn)
at_b = common.rows_at(detection, params["priors"], "B")  # each prior's row at snapshot B
check_b = common.check_claims(study.talk_claims(), at_b, talk_burn) if len(at_b) else None
results.write_csv(common.claims_glance(  # this study's rows of the intro's findings at a glance
    "2: burn eras", check, check_b,
    common.joint_verdict(fit_table["verdict"].reindex(params["priors"]).dropna()),
    common.joint_verdict(fit_table["verdict"].reindex([common.converged_name(p) for p in params["priors"]]).dropna())),
    out / common.GLANCE_FILE, index=False)
glue_all(study.talk_agreement(check))
glue_all(study.detection_findings(detection, talk_burn, fit_table["verdict"].to_dict()))
check

# %% [markdown]
# Burn eras are {glue:text}`burn_share` of the validation eras here (the talk:
# {glue:text}`talk_burn_share`). The std beats chance for {glue:text}`above` of
# {glue:text}`priors` priors, {glue:text}`significant` of them significantly at the 5% level; the
# highest AUC is the **{glue:text}`best`** prior's ({glue:text}`best_auc:.3f`).{glue:text}`best_caveat`{glue:text}`burn_reversed` Of the talk's
# findings, {glue:text}`check_agreed` of {glue:text}`check_checkable` checkable ones hold here
# (those that differ: {glue:text}`check_differ`). The talk's own evidence is thin: its best AUC
# ({glue:text}`talk_best_auc:.4f`, {glue:text}`talk_best`) has a one-sided p-value of
# {glue:text}`talk_best_p:.3f` with {glue:text}`talk_best_burn` burn eras of
# {glue:text}`talk_eras`, and its lowest, {glue:text}`talk_worst_auc:.4f`
# ({glue:text}`talk_worst`), is within chance (two-sided p = {glue:text}`talk_worst_p2:.2f`).
#
# ## The same with numerai_corr
#
# Today's official score defines its own burn eras; the detector is the same std.

# %% tags=["remove-input"]
detection_nc = study.burn_detection(fitted, kind="numerai_corr")
glue_all(study.numerai_corr_agreement(eras, {p: fitted[p].per_era for p in names}, detection_nc))
detection_nc[["n_eras", "burn_eras", "auc", "p_value"]]

# %% [markdown]
# The two scores agree on which eras burn for {glue:text}`nc_same` of {glue:text}`nc_pairs`
# (prior, era) pairs; {glue:text}`nc_auc_note`.
#
# ## Against the ground truth (synthetic data only)
#
# The synthetic data knows which validation eras had a sudden shift of the feature-target
# relation. A model trained before the shift should do worse there; does its uncertainty rise?

# %% tags=["remove-input"]
truth_eras = common.truth_eras(dataset)
if truth_eras is None or "shifted" not in truth_eras.columns:
    glue_all({"truth_note": common.NO_TRUTH})
else:
    truth_table = study.shift_table(eras, truth_eras)
    glue_all(study.shifted_eras_note(truth_table, len(eras[names[0]])))
    display(truth_table)

# %% [markdown]
# {glue:text}`truth_note`
#
# (rerun-burn-eras)=
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
# Source: {download}`burn_eras.py <burn_eras.py>` (jupytext percent); executed notebook:
# {download}`burn_eras.ipynb <burn_eras.ipynb>`. Papers and talk cited: [References](references.md).
#
# ## Exported results and provenance
#
# Per prior: the ensemble's predictions and its per-era scores with the mean predictive std
# (`per_era.csv`); the detection table is `summary.csv`.

# %% tags=["remove-cell"]
chapter.close(fitted, detection)

# %% [markdown]
# {glue:text}`written` files written under {glue:text}`results_folder`.
#
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
