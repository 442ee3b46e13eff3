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
# # Run registry
#
# Every fit this book made, one row each: the chapter that used it, the model's specification,
# a fingerprint of the data it was fitted on, the device, its validation corr and Sharpe, what
# fitting and scoring it cost when it was computed, its precision, the convergence verdict of a
# Bayesian fit, and whether the chapter read it from the cache. A model two chapters share is
# fitted once (one cache key) and listed under each. Each chapter writes its rows as `runs.csv`
# in its results folder when it closes; this page, executed after every chapter, gathers them.

# %% tags=["parameters", "remove-cell"]
results_dir = "_build/results/registry"
runs_of = None  # the chapters whose runs are gathered; None: every chapter of the book

# %% tags=["remove-cell"]
from bnnlib.report.chapter import glue, glue_all, open_page

import json

import pandas as pd
from IPython.display import display

from bnnlib.report import registry
from bnnlib.studies import registry as study

from bnnlib.infra import results

page = open_page("registry", globals())
chapters = page.params["runs_of"] or registry.book_chapters(page.name)
runs = registry.collect(page.results_root, chapters)
registry_csv = results.write_csv(runs, page.out.parent / registry.REGISTRY_FILE, index=False)
glue_all(study.summary(runs))
glue("registry_csv", str(page.results_root / registry.REGISTRY_FILE))

# %% [markdown]
# The book's {glue:text}`registry_chapters` chapters used {glue:text}`registry_models` distinct
# fits, one row each below ({glue:text}`registry_shared` of them shared by several chapters: a model
# two chapters need is fitted once, one cache entry). Where a chapter found its fit already in the
# cache (computed by an earlier run, or by the runner's warm-up, which fits every chapter's models
# first), the table says `cached`: {glue:text}`registry_cached` of the {glue:text}`registry_models`.
# Of the {glue:text}`registry_bnn` Bayesian fits, {glue:text}`registry_converged` converged.
# Fitting and scoring them took {glue:text}`registry_compute_minutes` minutes of compute when they
# were computed. The whole table, one row per chapter's use of a fit, with every field of each model's
# specification (`spec`) and the cache key of its scores, is {glue:text}`registry_csv`.

# %% tags=["remove-input"]
with pd.option_context("display.max_rows", None):  # every fit, never cut in the middle
    display(study.fits_table(runs))

# %% [markdown]
# ## What the last build cost
#
# Before computing anything, `bnnlib book` and `bnnlib run` print their plan: the fits and
# scorings to run and those found in the cache, and an estimate in CPU and wall minutes for the
# chosen `--jobs` and executor, from a cost model (optimiser steps × batch × the network's
# multiply-adds, and draws × validation rows × multiply-adds, priced at rates measured on the
# machine in a second or two; `--dry-run` prints the plan and stops). At the end they print the
# build's summary and write it to `build_summary.json` beside the registry: the wall time, the CPU
# seconds of the fits and of the scoring the build computed (read from the cache's records of the
# entries it created), its most expensive fits, and each figure beside its estimate. The tables
# below are the last build's that executed a chapter (empty before the first one).

# %% tags=["remove-input"]
summary_path = page.results_root / study.SUMMARY_FILE
build_figures, build_top = study.build_summary_tables(
    json.loads(summary_path.read_text()) if summary_path.is_file() else None)
display(build_figures.round(2))
display(build_top)

# %% [markdown]
# ## The same runs in MLflow
#
# Run with `--mlflow-uri URI` (`bnnlib book` or `bnnlib run`; `pip install 'bnnlib[mlflow]'`),
# each chapter also logs its fits as MLflow runs in the experiment `bnnlib`: the model's
# specification as parameters, its scores, compute seconds and ELBO trace as metrics, its
# verdict, chapter and data fingerprint as tags, and its per-era scores as the artifact
# `per_era.csv`. A run is tagged with its cache key, so a model read again from the cache adds
# its chapter to the run it already has instead of logging a second one:
#
# ```text
# bnnlib book --profile default --mlflow-uri file:/path/to/mlruns
# bnnlib run ensembles --profile quick --mlflow-uri http://localhost:5000 --no-build
# ```
#
# (rerun-registry)=
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
# Source: {download}`registry.py <registry.py>` (jupytext percent); executed notebook:
# {download}`registry.ipynb <registry.ipynb>`. Papers and talk cited: [References](references.md).
#
# ## Provenance

# %% tags=["remove-cell"]
page.close()

# %% [markdown]
# {glue:text}`provenance`
