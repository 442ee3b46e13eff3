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
# # The data
#
# Numerai publishes obfuscated stock-market data: every row is a stock at one point in time
# (an **era**, one week), described by **features** binned into 5 levels, with **targets**
# that measure the stock's later, market-neutral return, also binned. A model predicts the
# target; it is scored era by era by the correlation between its predictions and the target.
#
# The talk {cite}`talk2021` used Numerai's 2021 ("v3") files. Those cannot be downloaded here and the tests
# must never touch the network, so by default this book runs on a **synthetic** dataset built
# in the same schema and tuned to show the same statistical facts (the table of stylized
# facts below lists them). It
# also knows its own ground truth: the noise-free signal of every row and, for every era,
# whether the relation between features and target drifted or suddenly shifted. With
# `data_source = "numerai"` and a `data_dir`, every table and figure below describes real
# Numerai files instead.
#
# This chapter is the data card: what the data looks like, and whether it shows the facts the
# later studies rely on.

# %% tags=["parameters", "remove-cell"]
data_source = "synthetic"  # synthetic | numerai
synthetic_profile = "default"  # synthetic data: tiny | quick | default
data_dir = None  # real data: the folder holding Numerai's files
feature_set = "small"  # the NN Starter's 38 features
main_target = "target_nomi_20"
aux_targets = ["target_janet_20", "target_george_20"]
long_target = "target_nomi_60"
data_root = "_build/data"  # where synthetic data is written
results_dir = "_build/results/data"

# %% tags=["remove-cell"]
# %matplotlib inline
from bnnlib.report.chapter import glue_all, open_chapter  # first: it keeps Pyro's import warning off the page

import pandas as pd
from IPython.display import display

from bnnlib.studies import data as study
from bnnlib.studies import common

from bnnlib.infra import results
from bnnlib.data import card, facts, figures

chapter = open_chapter("data", globals(), fits_models=False)
params, dataset, out = chapter.params, chapter.dataset, chapter.out
glue_all(study.data_source(dataset))

# %% [markdown]
# {glue:text}`source_note` The command that reruns this page, its parameters and its source are
# {ref}`at its end <rerun-data>`.
#
# ## Schema
#
# One row per stock and era, indexed by `id`; the era as a zero-padded string; the features
# (the NN Starter's `small` set unless `feature_set` says otherwise) as floats on 5 levels;
# the four targets of the study by role: the **main** 20-day target every score is computed
# on, two **auxiliary** 20-day targets of other kinds, and the **long** 60-day version of the
# main target.

# %%
card.schema_table(dataset)  # the study's targets by role

# %%
dataset.describe()

# %% [markdown]
# ## Eras
#
# Eras are the unit of everything that follows: models are scored per era, and a score's
# spread is measured across eras. Validation eras come after the training eras, with a gap
# (in real Numerai data, the test eras in between are not published with targets).

# %% tags=["remove-input"]
sizes = card.era_sizes(dataset)
figure = figures.era_sizes(sizes)
results.export_figure(out, "era_sizes", figure)
display(figure)
study.era_size_summary(sizes)

# %% [markdown]
# *Figure: rows per era in file order, training eras in blue, validation eras in orange.
# Numerai's early eras are smaller than the later ones; the synthetic data imitates that
# growth on a smaller scale.*
#
# ## Feature values
#
# Every feature takes 5 values, {0, 0.25, 0.5, 0.75, 1}, each filling about a fifth of every
# era (Numerai bins each feature within each era). The main target takes the same 5 values but
# fills them 5/20/50/20/5 %: most stocks are in the middle bin.

# %% tags=["remove-input"]
both = pd.concat([dataset.train, dataset.validation])
feature_shares = card.level_shares(both, dataset.features)
target_shares = card.level_shares(both, [dataset.roles.main])
figure = figures.level_shares(feature_shares, target_shares, dataset.roles.main)
results.export_figure(out, "level_shares", figure)
display(figure)
study.level_share_summary(feature_shares, target_shares, dataset.roles.main)

# %% [markdown]
# *Figure: for each value, the spread over eras of the share of rows that take it (box: the
# middle half of eras, whiskers: the rest), for all chosen features pooled (left) and for the
# main target (right); red marks are Numerai's shares.*
#
# ## How the targets relate
#
# The targets are different views of the same future returns, so they correlate strongly.
# In Numerai's v3 data `target_nomi_20` correlates about 0.50 with its 60-day version, 0.66
# with `target_janet_20` and 0.72 with `target_george_20`. Study 3 builds models of several
# targets at once on exactly this structure.

# %% tags=["remove-input"]
figure = figures.target_correlation_heatmap(card.target_correlations(dataset))
results.export_figure(out, "target_correlations", figure)
display(figure)

# %% [markdown]
# *Figure: Pearson correlation between each pair of role targets over the validation rows
# (rows whose 60-day target is not resolved yet are left out of its pairs).*
#
# ## Stylized facts
#
# The table checks each stylized fact on this data: the figure from Numerai's v3 data, the
# range this data should fall in, what it measures, and whether it does. The **simple model**
# is a linear regression on the chosen features, fit on the training eras and scored on the
# validation eras with the 2021 per-era corr; **burn eras** are validation eras where its corr
# is negative.

# %% tags=["remove-input"]
fact_table = facts.measure_facts(dataset)
results.write_csv(fact_table, out / "summary.csv", index=False)
glue_all(study.facts_held(fact_table, params["synthetic_profile"] if chapter.synthetic else None))
fact_table.set_index("fact")

# %% [markdown]
# {glue:text}`facts_note`
#
# ## Non-stationarity
#
# If a feature's relation to the target were the same in every era, its per-era correlation
# with the target would vary only by sampling noise. The dispersion below is the variance of
# the per-era correlation divided by what sampling noise alone gives (1 for a stable feature);
# a chi-square test flags the features that move more than chance allows.

# %% tags=["remove-input"]
drift = facts.feature_drift(dataset)
threshold, drifting = study.drifting_features(drift)
figure = figures.feature_drift(drift, threshold)
results.export_figure(out, "feature_drift", figure)
display(figure)
drifting

# %% [markdown]
# *Figure: dispersion of each feature's per-era correlation with the main target over all eras,
# features in decreasing order; red bars drift beyond sampling noise (chi-square test,
# p < 0.01 divided by the number of features); the dashed line is sampling noise alone.*
#
# ## The ground truth (synthetic data only)
#
# The generator records, for every era, the regime the feature-target relation was drifting
# towards, how far the era's relation was from the long-run one (`alignment`: the cosine
# between the era's true linear weights and the long-run weights), and whether the era was
# **shifted**: a sudden change that flips part of the relation and makes the features move
# together. A model fit on past eras should do worse in shifted eras, so they are candidate
# burn eras; study 2 asks whether the posterior's uncertainty notices them.

# %% tags=["remove-input"]
if not chapter.synthetic:
    glue_all({"truth_note": common.NO_TRUTH})
else:
    per_era = facts.simple_model_scores(dataset)
    shifted = study.shifted_eras_mask(dataset.truth.eras, per_era.index)
    figure = figures.per_era_with_shifts(per_era, shifted)
    results.export_figure(out, "shifted_eras", figure)
    summary = facts.shift_summary(per_era, dataset.truth.eras)
    glue_all(study.data_truth(shifted, dataset.truth.eras, summary, facts.nonlinearity_check(dataset)))
    display(figure, summary)

# %% [markdown]
# *Figure (synthetic data only): the linear model's corr in each validation era; red bars are
# the eras the generator shifted, the dashed line is the mean over all validation eras.*
#
# {glue:text}`truth_note`
#
# (rerun-data)=
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
# Source: {download}`data.py <data.py>` (jupytext percent); executed notebook:
# {download}`data.ipynb <data.ipynb>`. Papers and talk cited: [References](references.md).
#
# ## Provenance
#
# The facts table is exported as `summary.csv` and the figures under `figures/` in the
# chapter's results folder ({glue:text}`results_folder`).

# %% tags=["remove-cell"]
chapter.close()

# %% [markdown]
# {glue:text}`provenance` Every fit of the book, with its cost and verdict: {doc}`the run registry <registry>`.
