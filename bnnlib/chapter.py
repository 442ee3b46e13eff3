"""What every study chapter does before its first model: display options, the data, the cache,
the results folder, and one sentence saying what data this run is on."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bnnlib import convergence, fits, plots, results
from bnnlib.cache import Cache
from bnnlib.data import Dataset, open_dataset
from bnnlib.talk import PRIOR_LABELS


@dataclass
class Chapter:
    name: str
    dataset: Dataset
    cache: Cache
    out: Path  # the chapter's results folder
    synthetic: bool
    params: dict

    @property
    def ours_label(self) -> str:
        """How tables label this run's numbers beside the talk's."""
        return "this run (synthetic data)" if self.synthetic else "this run"

    def data_note(self, talk_detail: str = "") -> str:
        """The sentence that opens a chapter: synthetic or real data, and what to compare."""
        if not self.synthetic:
            return "This run uses real Numerai data. "
        detail = f" ({talk_detail})" if talk_detail else ""
        return (f"This run uses **synthetic** data (profile `{self.params['synthetic_profile']}`), generated in Numerai's schema; "
                f"the talk used Numerai's real v3 data{detail}, so compare patterns, not digits. ")


    def report_fits(self, fitted: dict, figure_number: int) -> pd.DataFrame:
        """Show and export whether each Bayesian fit converged: the verdicts (`fits.csv`), a
        figure of the traces, and the criterion; returns the fits table."""
        from IPython.display import Markdown, display

        table = fits.fits_table(fitted)
        results.write_csv(table, self.out / "fits.csv")
        groups = {name: PRIOR_LABELS.get(row.prior, row.prior) for name, row in table.iterrows()}
        figure = plots.fit_traces(fits.trace_frame(fitted), groups=groups,
                                  title="Traces of the Bayesian fits, coloured by prior")
        results.export_figure(self.out, "traces", figure)
        # the verdict first and few columns, so it stays inside the text column; fits.csv has them all
        columns = {"verdict": "verdict", "steps": "steps", "elbo_per_row_last": "ELBO/row",
                   "scale_p50_last": "std p50", "scale_change_window": "std change"}
        display(table[list(columns)].rename(columns=columns).round(4))
        display(figure)
        counts = "; ".join(f"{n} {v}" for v, n in fits.verdict_counts(table).items())
        stopped = table["stopped_at_step"].dropna()
        stops = "".join(f" {name}'s loss stopped being finite at step {int(step):,}; it keeps its guide of the "
                        "record before." for name, step in stopped.items())
        display(Markdown(
            f"*Figure {figure_number}. Per Bayesian fit, against the optimiser step: the ELBO per row (left), the "
            "guide's median std over the network's layers (solid) and its largest layer 90th percentile (dotted; "
            "middle), and the validation corr of the one network at the posterior mean (right).*\n\n"
            f"Verdicts ({counts}), {convergence.CRITERION}. A fit that did not converge reports where the optimiser "
            "stopped, not a posterior: its draws' spread and anything computed from it are marked below." + stops
        ))
        return table


def declared_parameters(namespace: dict, names_before: set) -> dict:
    """The names a chapter's parameters cell defined (papermill may have overridden them), with
    their values: what the chapter runs with and what its provenance table shows."""
    return {name: value for name, value in namespace.items()
            if name not in names_before and not name.startswith("_") and name != "names_before_parameters"}


def dataset_arguments(params: dict) -> dict:
    """The keyword arguments of `open_dataset` that a chapter's parameters name."""
    return dict(source=params["data_source"], data_dir=params["data_dir"],
                synthetic_profile=params["synthetic_profile"], feature_set=params["feature_set"],
                main_target=params["main_target"], aux_targets=params["aux_targets"],
                long_target=params["long_target"], data_root=params["data_root"])


def open_chapter(name: str, params: dict) -> Chapter:
    """Set display options, open the dataset the parameters name, and the cache and results folder."""
    warnings.filterwarnings("ignore", message="IProgress not found")  # no notebook widgets here
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.max_colwidth", None)  # findings are whole sentences
    dataset = open_dataset(**dataset_arguments(params))
    return Chapter(name, dataset, Cache(params["cache_dir"]), results.chapter_folder(params["results_dir"], name),
                   params["data_source"] == "synthetic", dict(params))
