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
# model's uncertainty about that row. The talk averages it within each era and asks whether
# that number flags the eras that burn, scoring it as a detector by the area under the ROC
# curve (AUC).
#
# **Direction.** As in the talk, a *higher* mean std is read as "more likely to burn": the
# detector flags an era when its mean std is above a threshold, so an AUC above 0.5 says burn
# eras tend to have higher uncertainty, 0.5 is chance, and below 0.5 says they have *lower*
# uncertainty. The AUC is computed by the Mann-Whitney statistic (the probability that a random
# burn era has a higher mean std than a random other era, ties counting one half).

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
results_dir = "_build/results/burn_eras"
priors = ["flat", "normal", "laplace"]  # flat is the talk's "uniform"
hidden = [128, 64, 64]  # hidden units per layer (the talk's)
epochs = 30
steps = None  # optimiser steps; None: `epochs` passes (on a smaller dataset, 17700 matches the talk)
batch_size = 4096
lr_bnn = 1e-3  # the guide's means (the talk's lr)
lr_bnn_scale = 1e-2  # the guide's log-scales (at 1e-3 they had not settled after the talk's 17,700 steps)
estimator = "output"  # the ELBO's gradient estimator: output | local | weights (Pyro's Trace_ELBO)
init_scale = 0.01  # the guide's initial std
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

from bnnlib import analysis, book_models, plots, results, talk
from bnnlib.chapter import open_chapter
from bnnlib.provenance import provenance
from bnnlib.study import evaluate_models

chapter = open_chapter("burn_eras", parameters)
dataset, cache, out, synthetic, ours_label = (
    chapter.dataset, chapter.cache, chapter.out, chapter.synthetic, chapter.ours_label)
display(Markdown(
    chapter.data_note(f"{talk.TALK_BURN_ERAS_OF} validation eras")
    + f"Validation: {dataset.validation['era'].nunique()} eras; {epochs} epochs, {draws} draws per prior."
))

# %% [markdown]
# ## The posterior of each prior
#
# The same Bayesian networks as in study 1 (with the same settings they come from the cache).

# %%
specs = book_models.burn_eras(parameters)
names = [s.name for s in specs]
fitted = evaluate_models(specs, dataset, cache, force=force, jobs=jobs)
eras = {p: analysis.burn_eras(fitted[p].per_era) for p in names}

# %% [markdown]
# ## Did the fits converge?
#
# An AUC of the predictive std says something about a posterior only if the fit converged.

# %%
fit_table = chapter.report_fits(fitted, figure_number=1)
unconverged = [p for p in names if fit_table.loc[p, "verdict"] != "converged"]

# %% [markdown]
# ## Uncertainty against the era's score
#
# Each point is one validation era: its mean predictive std (the average over its rows of the
# std of the draws' predictions) against the ensemble's corr in that era.

# %%
figure = plots.std_vs_score({talk.PRIOR_LABELS.get(p, p): eras[p] for p in names},
                            title="Era's mean predictive std vs its corr (red: burn eras)")
results.export_figure(out, "std_vs_corr", figure)
display(figure)
display(Markdown(
    "*Figure 2. Per validation era, the mean over its rows of the predictive std across posterior "
    "draws (x) and the ensemble's corr in that era (y), per prior; burn eras (corr < 0) in red.*"
))

# %% [markdown]
# ## The std as a burn-era detector
#
# The AUC, the number of burn eras, and a one-sided Mann-Whitney p-value (how often chance alone
# gives an AUC at least this high with this many eras). The talk's p-values are computed here
# from its AUCs and burn-era counts by the normal approximation.

# %%
detection = analysis.burn_detection(fitted)
talk_burn = talk.study2_burn()
talk_burn["p_value"] = [analysis.auc_p_value_from_counts(a, b, n - b) for a, b, n in
                        zip(talk_burn["auc"], talk_burn["burn_eras"], talk_burn["n_eras"])]
display(analysis.side_by_side(detection, talk_burn, ours_label=ours_label).round(4))
display(detection[["mean_std_burn", "mean_std_other", "spearman_std_score"]])

# %%
rocs = {talk.PRIOR_LABELS.get(p, p): analysis.roc_curve(eras[p]["mean_std"], eras[p]["burn"])
        for p in names if 0 < detection.loc[p, "burn_eras"] < detection.loc[p, "n_eras"]}
aucs = {talk.PRIOR_LABELS.get(p, p): detection.loc[p, "auc"] for p in names}
if rocs:
    figure = plots.roc_curves(rocs, aucs, title="Mean predictive std as a burn-era detector")
    results.export_figure(out, "roc", figure)
    display(figure)
    display(Markdown(
        "*Figure 3. ROC curves of the rule \"flag an era as burning when its mean predictive std is at "
        "least t\", for every threshold t, per prior; the dotted diagonal is chance (AUC 0.5).*"
    ))
else:
    display(Markdown("No prior has both burn eras and other eras in this run, so there is no ROC curve."))

# %%
claims = [
    analysis.Claim("the flat prior's AUC is below chance (0.5)", lambda t: t.loc["flat", "auc"] < 0.5),
    analysis.Claim("the Normal prior's AUC is above chance", lambda t: t.loc["normal", "auc"] > 0.5),
    analysis.Claim("the Laplace prior's AUC is above chance", lambda t: t.loc["laplace", "auc"] > 0.5),
    analysis.Claim("the Laplace prior has the highest AUC", lambda t: t.loc[list(talk.PRIORS), "auc"].idxmax() == "laplace"),
    analysis.Claim("some AUC above 0.5 is significant at the 5% level (one-sided)",
                   lambda t: bool(((t["auc"] > 0.5) & (t["p_value"] < 0.05)).any())),
]
check = analysis.check_claims(claims, detection, talk_burn)
display(check)
above = int((detection["auc"] > 0.5).sum())
significant = int(((detection["auc"] > 0.5) & (detection["p_value"] < 0.05)).sum())
best = detection["auc"].idxmax()
talk_best = talk_burn["auc"].idxmax()
talk_worst = talk_burn["auc"].idxmin()
display(Markdown(
    f"Burn eras are {analysis.percent_range(detection['burn_eras'] / detection['n_eras'])} of the validation "
    f"eras here (the talk: {analysis.percent_range(talk_burn['burn_eras'] / talk_burn['n_eras'])}). "
    f"The std beats chance for {analysis.count_phrase(above, len(detection), 'priors')}, "
    f"{significant} of them significantly at the 5% level; the highest AUC is the "
    f"**{talk.PRIOR_LABELS.get(best, best)}** prior's ({detection.loc[best, 'auc']:.3f}). "
    f"Of the talk's findings, {analysis.count_phrase(int(check['agree'].eq(True).sum()), int(check['agree'].notna().sum()), 'checkable ones')} "
    f"hold here. The talk's own evidence is thin: its best AUC ({talk_burn.loc[talk_best, 'auc']:.4f}, "
    f"{talk.PRIOR_LABELS[talk_best]}) has a one-sided p-value of {talk_burn.loc[talk_best, 'p_value']:.3f} with "
    f"{talk_burn.loc[talk_best, 'burn_eras']} burn eras of {talk_burn.loc[talk_best, 'n_eras']}, and its lowest, "
    f"{talk_burn.loc[talk_worst, 'auc']:.4f} ({talk.PRIOR_LABELS[talk_worst]}), is within chance (two-sided p = "
    f"{2 * min(talk_burn.loc[talk_worst, 'p_value'], 1 - talk_burn.loc[talk_worst, 'p_value']):.2f}). "
    + ("".join(f"The {talk.PRIOR_LABELS.get(p, p)} prior's fit is *{fit_table.loc[p, 'verdict']}*, so its AUC "
               "measures the optimiser's state, not its posterior's uncertainty. " for p in unconverged))
))

# %% [markdown]
# ## The same with numerai_corr
#
# Today's official score defines its own burn eras; the detector is the same std.

# %%
detection_nc = analysis.burn_detection(fitted, kind="numerai_corr")
display(detection_nc[["n_eras", "burn_eras", "auc", "p_value"]].round(4))
same = sum(int((eras[p]["burn"].to_numpy() == (fitted[p].per_era["numerai_corr"] < 0).to_numpy()).sum())
           for p in names)
display(Markdown(
    f"The two scores agree on which eras burn for {same} of {sum(len(eras[p]) for p in names)} (prior, era) "
    "pairs; the AUCs with numerai_corr range from "
    f"{detection_nc['auc'].min():.3f} to {detection_nc['auc'].max():.3f}."
))

# %% [markdown]
# ## Against the ground truth (synthetic data only)
#
# The synthetic data knows which validation eras had a sudden shift of the feature-target
# relation. A model trained before the shift should do worse there; does its uncertainty rise?

# %%
truth_eras = analysis.truth_eras(dataset)
if truth_eras is None or "shifted" not in truth_eras.columns:
    display(Markdown("This dataset has no ground truth (real data), so this check is skipped."))
else:
    shifted = truth_eras.set_index("era")["shifted"].astype(bool)
    rows = {}
    for p in names:
        frame = eras[p].set_index("era").join(shifted, how="inner")
        rows[p] = {
            "shifted_eras": int(frame["shifted"].sum()),
            "burn_rate_shifted": float(frame.loc[frame["shifted"], "burn"].mean()) if frame["shifted"].any() else float("nan"),
            "burn_rate_other": float(frame.loc[~frame["shifted"], "burn"].mean()),
            "auc_std_for_shifted": analysis.mann_whitney_auc(frame["mean_std"], frame["shifted"]),
        }
    truth_table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("prior")
    display(truth_table.round(3))
    n_shift = int(truth_table["shifted_eras"].iloc[0])
    display(Markdown(
        f"{n_shift} of the {len(eras[names[0]])} validation eras had a sudden shift. "
        + (f"Burn rates there vs elsewhere: "
           + "; ".join(f"{talk.PRIOR_LABELS.get(p, p)} {r['burn_rate_shifted']:.0%} vs {r['burn_rate_other']:.0%}"
                       for p, r in truth_table.iterrows())
           + ". AUC of the std as a detector of the shifted eras: "
           + ", ".join(f"{talk.PRIOR_LABELS.get(p, p)} {r['auc_std_for_shifted']:.3f}" for p, r in truth_table.iterrows())
           + "." if n_shift else "There is nothing to detect.")
    ))

# %% [markdown]
# ## Exported results and provenance
#
# Per prior: the ensemble's predictions and its per-era scores with the mean predictive std
# (`per_era.csv`); the detection table is `summary.csv`.

# %%
written = results.export_results(out, fitted, detection)
display(Markdown(f"Wrote {len(written)} files under `{out}`."))
display(provenance(parameters, dataset_fingerprint=dataset.fingerprint, started=started,
                   cache_records=cache.events))
display(cache.provenance())
