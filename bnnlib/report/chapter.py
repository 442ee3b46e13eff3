"""A chapter's opening and closing call, so every page starts and ends the same way.

`open_chapter(name, globals())` reads the chapter's parameters from its namespace (what its
parameters cell and papermill's injected cell defined), checks them, opens the data, cache and
results folder, and glues what every page shows: the data note, the parameters table and the
command that reruns the page. `ChapterRun.close` exports the results and shows provenance.
Findings are glued (myst-nb `glue`) and written in the chapter's markdown, never built here.
"""

from __future__ import annotations

import json
import shlex
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Pyro imports tqdm.auto, which warns in a kernel without notebook widgets (and prints the
# site-packages path into the page): silence it before anything imports Pyro.
warnings.filterwarnings("ignore", message="IProgress not found")

import jupytext  # noqa: E402
from IPython.display import Markdown, display  # noqa: E402
from myst_nb import glue as myst_glue  # noqa: E402

from bnnlib.data import Dataset, open_dataset  # noqa: E402
from bnnlib.evaluate import convergence, fits  # noqa: E402
from bnnlib.evaluate.reporting import evaluate_reported  # noqa: E402
from bnnlib.infra import results  # noqa: E402
from bnnlib.infra.cache import Cache  # noqa: E402
from bnnlib.infra.cluster import open_executor  # noqa: E402
from bnnlib.infra.provenance import provenance  # noqa: E402
from bnnlib.infra.tracking import log_fits  # noqa: E402
from bnnlib.models.device import device_label, resolve_device  # noqa: E402
from bnnlib.project import book as project  # noqa: E402
from bnnlib.project.parameters import checked_parameters  # noqa: E402
from bnnlib.report import plots, tables  # noqa: E402
from bnnlib.report.registry import RUNS_FILE, run_rows  # noqa: E402

PARAMETER_TYPES = (str, bool, int, float, type(None), list, tuple, dict)
"""A parameters cell assigns literals; modules, functions and IPython's own names are not parameters."""

IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})

RUNNER_ONLY = frozenset({"force", "jobs", "executor", "mlflow_uri"})
"""Parameters the runner sets from its own options, not from a profile."""


def captured_parameters(namespace: dict) -> dict:
    """The chapter's parameters with their values (papermill may have overridden them): the
    literal names defined before the opening call, which runs right after the parameters cell."""
    return {name: value for name, value in namespace.items()
            if not name.startswith("_") and name not in IPYTHON_NAMES and isinstance(value, PARAMETER_TYPES)}


def dataset_arguments(params: dict) -> dict:
    """The keyword arguments of `open_dataset` that a chapter's parameters name."""
    return dict(source=params["data_source"], data_dir=params.get("data_dir"),
                synthetic_profile=params["synthetic_profile"], feature_set=params["feature_set"],
                main_target=params["main_target"], aux_targets=params["aux_targets"],
                long_target=params["long_target"], data_root=params["data_root"])


def plain(value: Any) -> Any:
    """A value glue can print: numpy scalars as Python numbers (their repr is not a literal)."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


GLUED_FILE = "glued.csv"
"""Every number a page glues into its prose, with its key: exported beside the page's tables,
so a number on a page is found in a file as well as by one grep of its key."""

_glued_numbers: dict[str, float | int | bool] = {}


def glue(name: str, value: Any) -> None:
    """Glue one value for the page's markdown (`{glue:text}` / `{glue:md}` / `{glue:}`), not
    shown here; a number is also recorded for the page's `glued.csv`."""

    value = plain(value)
    if isinstance(value, (bool, int, float)):
        _glued_numbers[name] = value
    myst_glue(name, value, display=False)


def glued_numbers() -> pd.DataFrame:
    """The numbers glued so far in this kernel, one row each (key, value), in gluing order."""
    return pd.DataFrame({"key": list(_glued_numbers), "value": list(_glued_numbers.values())})


def glue_md(name: str, text: str) -> None:
    """Glue markdown (for `{glue:md}` and the `glue:md` directive): a caption, a code block."""

    glue(name, Markdown(text))


def glue_all(values: dict) -> None:
    """Glue every (name, value) of a findings dict."""
    for name, value in values.items():
        glue(name, value)


def _cli_value(value: Any) -> str:
    """A parameter value as `-p NAME VALUE` writes it (YAML: JSON lists, null, true)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return shlex.quote(text)


def _defaults(name: str, root: Path) -> dict:
    """The chapter's parameters cell as written (its defaults), or {} outside the project."""


    source = root / "book" / f"{name}.py"
    return project.declared_parameters(jupytext.read(source)) if source.is_file() else {}


def rerun_command(name: str, params: dict, root: Path | str = ".") -> str:
    """The `bnnlib run` command that reruns this chapter with these parameters: the profile
    that gives the most of them, then `-p` for the rest (`--data-dir` for a real-data folder)."""

    root = Path(root)
    compared = {k: v for k, v in params.items() if k not in RUNNER_ONLY}
    defaults = _defaults(name, root)
    best: tuple[int, str, dict] | None = None
    try:
        profiles = project.list_profiles(root)
    except Exception:  # run outside the project (plain papermill elsewhere): no profiles to match
        profiles = []
    for profile in profiles:
        try:
            given = {**defaults, **project.chapter_parameters(name, project.load_profile(profile, root), compared,
                                                             profile_name=profile)}
        except Exception:  # a profile that does not fit this chapter
            continue
        differ = {k: v for k, v in compared.items() if k not in given or given[k] != v}
        if best is None or len(differ) < len(best[2]) or (len(differ) == len(best[2]) and profile == "default"):
            best = (len(differ), profile, differ)
    profile, differ = (best[1], best[2]) if best else ("default", compared)
    words = ["bnnlib", "run", name, "--profile", profile]
    if differ.get("data_dir") is not None:
        words += ["--data-dir", shlex.quote(str(differ.pop("data_dir")))]
    for key, value in differ.items():
        words += ["-p", key, _cli_value(value)]
    if params.get("force"):
        words.append("--force")
    return " ".join(words)


def parameters_table(params: dict) -> pd.DataFrame:
    """The parameters as a two-column table (values as a profile writes them)."""
    return pd.DataFrame({"value": [v if isinstance(v, str) else json.dumps(v) for v in params.values()]},
                        index=pd.Index(list(params), name="parameter"))


@dataclass
class ChapterRun:
    """One execution of a chapter: its checked parameters, data, cache and results folder."""

    name: str
    params: dict
    dataset: Dataset
    cache: Cache | None
    out: Path  # the chapter's results folder
    started: float = field(default_factory=time.time)
    fitted: dict = field(default_factory=dict)  # every model `fit` returned, for the run registry
    _events: list = field(default_factory=list)  # their cache lookups (the chapter's own, e.g. of a
    # posterior, are not counted in)

    @property
    def synthetic(self) -> bool:
        return self.params.get("data_source", "synthetic") == "synthetic"

    @property
    def ours_label(self) -> str:
        """How tables label this run's numbers beside the talk's."""
        return "this run (synthetic data)" if self.synthetic else "this run"

    def data_note(self) -> str:
        """The page's opening fact: synthetic or real data, and what comparing with the talk means."""
        if not self.synthetic:
            return "This run uses real Numerai data."
        return (f"This run uses synthetic data (profile {self.params['synthetic_profile']}), generated in "
                "Numerai's schema; the talk used Numerai's real v3 data, so compare patterns, not digits.")

    def fit(self, specs: list) -> dict:
        """Each spec's fitted and scored model, from the cache when it is there (`evaluate_models`
        with this run's data, cache, `force`, `jobs` and `executor`), each fit reported to the
        runner as it finishes (`evaluate_reported`)."""

        jobs, executor = self.params.get("jobs", 1), self.params.get("executor", "local")
        force = self.params.get("force", False)
        before = len(self.cache.events)
        if executor == "local":
            fitted = evaluate_reported(self.name, specs, self.dataset, self.cache, force=force, jobs=jobs,
                                       device=self.device)
        else:
            with open_executor(executor, jobs) as cluster:  # started only if a model is not cached
                fitted = evaluate_reported(self.name, specs, self.dataset, self.cache, force=force, jobs=jobs,
                                           executor=cluster, device=self.device)
        self.fitted.update(fitted)
        self._events.extend(self.cache.events[before:])
        return fitted

    def runs(self) -> pd.DataFrame:
        """This chapter's rows of the run registry: one per model `fit` returned."""

        return run_rows(self.name, self.fitted, self._events, self.dataset.fingerprint, self.device, self.cache)

    @property
    def device(self) -> str:
        """The device this chapter fits and scores on (its `device` parameter, resolved)."""

        return str(resolve_device(self.params.get("device", "cpu")))

    def report_fits(self, fitted: dict, figure_number: int) -> pd.DataFrame:
        """Show and export whether each Bayesian fit converged: the verdicts (`fits.csv`) and a
        figure of the traces; glue `fits_caption` (caption, verdict counts, criterion, where a
        diverging fit stopped) for the page's markdown. Returns the full fits table."""

        table = fits.fits_table(fitted, n_inputs=len(self.dataset.features))
        results.write_csv(table, self.out / "fits.csv")
        diverged = fits.diverging(table)
        figure = plots.fit_traces(fits.trace_frame(fitted), diverged=diverged, title="Traces of the Bayesian fits")
        results.export_figure(self.out, "traces", figure)
        # the verdict first and few columns, so it stays inside the text column; fits.csv has them all
        columns = {"verdict": "verdict", "snapshot": "snapshot", "guide_init": "start", "steps": "steps", "elbo_per_row_last": "ELBO/row",
                   "scale_p50_last": "std p50", "scale_change_window": "std change",
                   "layers_at_prior": "at prior"}
        display(table[list(columns)].rename(columns=columns))
        display(figure)
        glue_md("fits_caption", fits_caption(table, figure_number))
        return table

    def close(self, fitted: dict | None = None, summary: pd.DataFrame | None = None) -> None:
        """Export each model's predictions and per-era scores with the chapter's `summary`, and
        its rows of the run registry (`runs.csv`; also logged to MLflow with a `mlflow_uri`);
        glue `written` (how many files) and `provenance` (how the numbers were produced, in one
        line; `provenance.csv` has it all)."""

        written = results.export_results(self.out, fitted, summary) if fitted else []
        if self.fitted:  # the chapter's rows of the run registry, and MLflow's runs if asked

            runs = self.runs()
            written.append(results.write_csv(runs, self.out / RUNS_FILE, index=False))
            if self.params.get("mlflow_uri"):

                log_fits(self.params["mlflow_uri"], runs, self.fitted)
        device = device_label(self.device) if self.cache is not None else None
        table = provenance({}, dataset_fingerprint=self.dataset.fingerprint, started=self.started,
                           cache_records=self.cache.events if self.cache is not None else (), device=device)
        written.append(results.write_csv(table, self.out / PROVENANCE_FILE))
        glue("provenance", provenance_line(table))
        glue("written", len(written) + 1)  # and glued.csv, written below
        glue("results_folder", str(self.params["results_dir"]))  # as given: self.out may be a staging folder
        results.write_csv(glued_numbers(), self.out / GLUED_FILE, index=False)


PROVENANCE_FILE = "provenance.csv"
"""How a page's numbers were produced (versions, source hash, data fingerprint, each cache lookup):
exported in full beside its tables; the page shows one line of it (`provenance_line`)."""


def provenance_line(table: pd.DataFrame) -> str:
    """The provenance table in one sentence: wall time, device, cache hits, source and data hashes."""
    value = table["value"]

    def get(section: str, item: str) -> str | None:
        return value.get((section, item))

    parts = [f"executed in {get('run', 'wall time')}"]
    if get("run", "device"):
        parts.append(f"on {get('run', 'device')}")
    if get("run", "cache"):
        parts.append(f"({get('run', 'cache')})")
    parts.append(f"with bnnlib source {get('version', 'bnnlib source')}")
    fingerprint = get("data", "fingerprint")
    if fingerprint and fingerprint != "(none)":
        parts.append(f"on data {fingerprint[:16]}")
    return "This page was " + " ".join(parts) + f"; every version and cache lookup is in {PROVENANCE_FILE}."


def fits_caption(table: pd.DataFrame, figure_number: int) -> str:
    """The caption of the traces figure and the verdicts it supports (markdown, from the fits table)."""
    counts = "; ".join(f"{n} {v}" for v, n in fits.verdict_counts(table).items())
    stopped = table["stopped_at_step"].dropna() if "stopped_at_step" in table else pd.Series(dtype=float)
    stops = "".join(f" {name}'s loss stopped being finite at step {int(step):,}; it keeps its guide of the "
                    "record before." for name, step in stopped.items())
    return (f"*Figure {figure_number}. Per Bayesian fit, against the optimiser step: the ELBO per row (left), the "
            "guide's median std over the network's layers (solid) and its largest layer 90th percentile (dotted; "
            "middle), and the validation corr of the one network at the posterior mean (right).*\n\n"
            f"Verdicts ({counts}), {convergence.CRITERION}. *At prior* counts the hidden layers whose median "
            f"guide std is within {fits.AT_PRIOR:.0%} of the std the guide takes where the data say nothing (the "
            "prior's std; for the Laplace prior, its KL-closest Normal's): the data did not move them. A fit that did not converge reports where the optimiser "
            "stopped, not a posterior: its draws' spread and anything computed from it are marked below." + stops
            + (" A dotted grey line marks snapshot A, the end of the talk's budget; a trajectory's trace goes on to B "
               "under its `_converged` name." if "snapshot" in table and (table["snapshot"] == "B").any() else ""))


def open_chapter(name: str, namespace: dict, *, fits_models: bool = True) -> ChapterRun:
    """The opening call of every chapter: check the parameters, set display options, open the
    data (and the cache, for a chapter that fits models) and the results folder, and glue
    `data_note`, `parameters` (a table), each parameter as `param_<name>`, the data's sizes
    (`train_rows`, `validation_rows`, `validation_eras`, `features`) and `rerun` (the command)."""

    pd.set_option("display.max_columns", 40)
    pd.set_option("display.max_colwidth", None)  # findings are whole sentences
    plots.use_book_style()
    tables.use_book_tables()
    params = checked_parameters(captured_parameters(namespace))
    dataset = open_dataset(**dataset_arguments(params))
    cache = Cache(params["cache_dir"]) if fits_models else None
    run = ChapterRun(name, params, dataset, cache, results.chapter_folder(params["results_dir"], name))
    glue("data_note", run.data_note())
    glue("ours_label", run.ours_label)
    glue("parameters", parameters_table(params))
    for key, value in params.items():  # for prose such as "{glue:text}`param_epochs` epochs"
        glue(f"param_{key}", value)
    glue_all({"train_rows": len(dataset.train), "validation_rows": len(dataset.validation),
              "validation_eras": dataset.validation["era"].nunique(), "features": len(dataset.features)})
    glue_md("rerun", f"```text\n{rerun_command(name, params)}\n```")
    return run


@dataclass
class Page:
    """A page of the book that reads what the chapters wrote (the run registry): its checked
    parameters and results folder, without data or cache."""

    name: str
    params: dict
    out: Path  # the page's results folder (a staging folder under the runner)
    started: float = field(default_factory=time.time)

    @property
    def results_root(self) -> Path:
        """The book's results folder, holding one folder a chapter (`results_dir`'s parent)."""
        return results.book_folder(self.params["results_dir"], self.name).parent

    def close(self) -> None:
        """Export how the page was produced (`provenance.csv`: no data, no cache) and glue its line."""

        table = provenance({}, dataset_fingerprint=None, started=self.started)
        results.write_csv(table, self.out / PROVENANCE_FILE)
        glue("provenance", provenance_line(table))
        results.write_csv(glued_numbers(), self.out / GLUED_FILE, index=False)


def open_page(name: str, namespace: dict) -> Page:
    """The opening call of a page that reads the chapters' results: check its parameters, set
    display options, glue `parameters`, each `param_<name>` and `rerun`; no data is opened."""

    pd.set_option("display.max_columns", 40)
    pd.set_option("display.max_colwidth", None)
    tables.use_book_tables()
    params = checked_parameters(captured_parameters(namespace))
    page = Page(name, params, results.chapter_folder(params["results_dir"], name))
    glue("parameters", parameters_table(params))
    for key, value in params.items():
        glue(f"param_{key}", value)
    glue_md("rerun", f"```text\n{rerun_command(name, params)}\n```")
    return page
