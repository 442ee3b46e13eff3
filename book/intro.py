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
# # A Bayesian NN Starter for Numerai
#
# This book reproduces, and lets anyone rerun, a study presented at Numerai Meetup Japan 2021
# {cite}`talk2021`: take the public "NN Starter" network {cite}`nnstarter` for the Numerai tournament, turn it into a **Bayesian
# neural network** (BNN), draw many networks from its posterior, and use that distribution to
# evaluate the model in ways a single trained network cannot.

# %% [markdown]
# ## The findings at a glance
#
# Each finding of the talk that the book checks, one row each: the talk's value (real Numerai v3
# data, 2021); ours under the talk's own procedure (snapshot A); ours once the same fit has
# converged (snapshot B); ours with Laplace posteriors of the trained baseline network, where the
# finding applies to them; and whether the talk's finding holds on ours. A fit's verdict is named
# where it is not *converged*: such a number is where the optimiser stood, not a posterior's. Each
# row comes from the chapter named in its first column, computed in this build; the chapter
# says what the number does and does not show.

# %% tags=["parameters", "remove-cell"]
results_dir = "_build/results/intro"
runs_of = None  # the chapters whose findings are gathered; None: every chapter of the book

# %% tags=["remove-cell"]
from bnnlib.report.chapter import glue_all, open_page

from bnnlib.report import registry
from bnnlib.studies import intro as study

page = open_page("intro", globals())
chapters = page.params["runs_of"] or registry.book_chapters(page.name)
glance = study.collect_glance(page.results_root, chapters)
glue_all(study.glance_summary(glance))

# %% tags=["remove-input"]
study.glance_view(glance)

# %% [markdown]
# Of the {glue:text}`glance_findings` findings, {glue:text}`glance_holds_a` hold under the talk's
# procedure and {glue:text}`glance_holds_b` at convergence.

# %% [markdown]
# ## Why a Bayesian network
#
# A neural network for Numerai has many settings (features, architecture, loss, mini-batching,
# optimiser, epochs, learning rate, regularisation), and ideas shared on the forum often fail to
# carry over. Even changing only the initialisation seed moves the validation score a lot, so one
# trained model is not a reproducible measurement. The talk's idea: estimate a *distribution*
# over the weights, draw many models from it (1000 in the talk), and ask questions of that
# distribution:
#
# - **Ensembles.** Is the average of the drawn networks better than the networks one by one, and
#   better than the plain network? How do a flat, a Normal and a Laplace prior compare? (Deep
#   ensembles {cite}`lakshminarayanan2017` and MC dropout {cite}`gal2016` ask the same of other
#   ways to get many networks.)
# - **Burn eras.** An era whose correlation is negative "burns" a stake. Does the spread of the
#   drawn predictions (the model's uncertainty) tell which eras will burn?
# - **Several targets.** Which generative story about Numerai's many targets (20-day targets of
#   different kinds, the 60-day target) fits the main target best?
# - **Architecture.** How do depth and the prior change the posterior's distribution of scores?
#
# The talk's conclusion, which this book checks: making a model Bayesian does not by itself make
# it better; it is an analysis tool that gives "the usual scores, plus distributions".
#
# The models follow the talk. The baseline is the simplified NN Starter: the 38 "small" features,
# hidden layers of 128, 64 and 64 units, MSE loss, He initialisation, Adam with learning rate
# 1e-2, batch 4096, 30 epochs. The BNN puts a prior on every weight (flat, Normal or Laplace at the
# He scale) and fits a mean-field Normal posterior {cite}`blundell2015` by stochastic variational inference
# {cite}`hoffman2013` (the talk's learning rate 1e-3, batch 4096, 30 epochs). Its model and guide are
# written in Pyro {cite}`bingham2019`; the fit runs torch's Adam on a hand-written estimator of the same
# ELBO as Pyro's `Trace_ELBO` (by default with the prior term in closed form and the output layer's
# pre-activations sampled per row; a test checks that its expectation is `Trace_ELBO`'s, and the
# one-weight-draw variant, the `estimator` parameter's `weights`, is tested equal to `Trace_ELBO`
# itself).
#
# One thing is chosen on the validation eras: study 1's best-epoch reference, the baseline scored
# at the epoch of its highest validation corr, as the talk showed it. It stands beside the models
# as a reference, marked as chosen on validation: the talk's findings about it are checked, and it
# is left out wherever the book picks a best model. Nothing else reads the validation eras while
# fitting: every other model trains for its whole budget (a fit whose loss stops being finite stops
# there) and is scored where its training ends; the validation corr that the baseline records per
# epoch, and that each BNN's trace records for the network at its posterior mean, is shown, never
# used to stop, select or tune; the convergence verdicts read the ELBO and the guide's scales.
#
# A posterior drawn from is only a posterior if the fit converged. The default dataset has the
# size of the talk's training data (2.42M rows), so 30 epochs are the talk's ~17,700 optimiser
# steps. Each Bayesian fit is one trajectory with two snapshots. **A** is the talk's procedure as
# the talk ran it (He-initialised means, stds 0.01, a constant learning rate of 1e-3, 30 epochs at
# batch 4096, the last iterate). **B** is the same fit continued from A, with decaying learning
# rates (the guide's scales at a larger one than its means), until its convergence verdict holds,
# taking the posterior as the average of the last fifth of the iterates. Every fit records its
# trace (the ELBO, the guide's scales per layer, the score of the network at the posterior mean)
# and a computed verdict (*converged*, *still moving* or *diverging*) at each snapshot, which each
# chapter shows before its results and uses to qualify them. The book estimates the same ELBO as
# the talk with less noise, and runs the hidden layers' products in bf16 where the CPU has native
# bf16. It checks the results against controls: a baseline trained with the BNN's step size, a
# refit from a ten times smaller initial scale, a guide started at the prior, float32 where the run
# uses bf16, Laplace posteriors of the trained network and, for the linear model, the exact
# posterior.

# %% [markdown]
# ## How to read a chapter
#
# Each chapter is one study. Its tables and figures put **our numbers from this run** beside
# **the talk's published numbers**, and every table and figure labels which is which (ours, from
# this run; the talk's, on real data in 2021). The talk used Numerai's real 2021 (v3) data; this book, by default, uses a synthetic
# dataset (below), so compare the *patterns* (which prior wins, whether the ensemble beats its
# members, whether uncertainty detects burn eras), not the digits. Every chapter
# ends with the command that reruns it, its parameters, its source and executed notebook, and a
# provenance table: a fingerprint of the data, the package versions, the wall time, and which
# fits came from the cache. The papers and the talk the chapters cite are listed under
# [References](references.md).

# %% [markdown]
# ## The data: synthetic by default, real if you have it
#
# Numerai's data cannot be downloaded while the book is built (the build runs offline), so the
# default profile generates a **Numerai-like synthetic dataset** in the schema of Numerai's v3
# files: an `id` index, zero-padded `era` strings, `data_type`, features on five levels
# {0, 0.25, 0.5, 0.75, 1}, a main target on five levels (5/20/50/20/5 % per era), auxiliary 20-day
# targets and a 60-day target correlated with it as in the real data, 105 validation eras, weak
# and drifting signal (a simple model scores a corr of about 0.01 to 0.02 per era, with burn eras)
# and interactions a linear model cannot fit. Because it is generated, it knows its own ground
# truth, which lets a chapter check a method against the truth.
#
# To use real Numerai data (v3, v4 or v5 files: `train.parquet`, `validation.parquet`,
# `features.json`), download it where you have a network and point the `numerai` profile at the
# folder:
#
# ```bash
# pip install -e '.[download]'                   # numerapi
# bnnlib data download --version v5.2 --dest data/
# bnnlib book --profile numerai --data-dir data/
# ```
#
# The `numerai` profile uses the v3 target names of the talk (`target_nomi_20`,
# `target_janet_20`, `target_george_20`, `target_nomi_60`); for v5 data set the main target to
# `target_ender_20` and the others accordingly (`book/params/numerai.yml` documents the mapping).

# %% [markdown]
# ## How to rerun it
#
# Everything is rebuilt with two commands from the repository root (Python 3.11 and pip):
#
# ```bash
# make book    # executes every chapter (profile "default") and builds this HTML book
# make test    # the tests, including every chapter on the small "quick" profile
# ```
#
# `make book PROFILE=quick` builds the whole book on a small dataset with few epochs and draws
# in a few minutes. A chapter that has not
# changed (same source, parameters and bnnlib code) is not executed again, and every fit is
# cached on disk, so a rebuild is quick.
#
# To rerun one chapter with other parameters, name them (each value is read as YAML):
#
# ```bash
# bnnlib run burn_eras --profile default -p priors '["laplace"]' -p draws 200
# ```
#
# A chapter is a plain Jupyter notebook, saved as a jupytext percent file `book/<chapter>.py`
# with a cell tagged `parameters`, so papermill runs it too:
#
# ```bash
# jupytext --to ipynb --output burn_eras.ipynb book/burn_eras.py
# papermill burn_eras.ipynb out.ipynb -p draws 200      # or: -f my_params.yml
# ```
#
# The parameter names of a chapter are in its first code cell; the profiles in `book/params/`
# (`quick`, `default`, `numerai`) show the values this book was built with.

# %% [markdown]
# This page gathers the findings at a glance from the chapters' results; after rerunning a
# chapter, this command refreshes it:
#
# ```{glue:md} rerun
# :format: myst
# ```

# %% tags=["remove-cell"]
page.close()

# %% [markdown]
# {glue:text}`provenance`
