"""Logging the book's fits to MLflow (`--mlflow-uri`), as an optional extra.

Each model a chapter fits becomes one MLflow run in the experiment `bnnlib`: its ModelSpec as
parameters, its scores, compute seconds and (for a Bayesian fit) the ELBO per row at every
recorded step as metrics, its convergence verdict, chapter and data fingerprint as tags, and
its per-era scores as the artifact `per_era.csv`. A run is tagged with the cache key of the
model's scores (spec, data, code, device): a model read again from the cache, by a rerun or by
another chapter, finds its run and only adds its chapter to it, so no fit is logged twice.

MLflow is optional (`pip install 'bnnlib[mlflow]'`, mlflow-skinny): nothing here imports it
until a run is logged. A URI is checked before anything is fitted (its form, MLflow installed,
the folder writable or the server reachable), each failure one line. The forms: `file:/folder`
(a local file store; MLflow 3 keeps it in maintenance mode behind MLFLOW_ALLOW_FILE_STORE,
which this module sets for such a URI) and `http(s)://HOST[:PORT]` (a tracking server).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import socket
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from bnnlib.errors import BnnlibError

INSTALL = "pip install 'bnnlib[mlflow]'"
FORMS = "file:/path/to/folder (a local store) or http(s)://HOST[:PORT] (a tracking server)"
EXPERIMENT = "bnnlib"
KEY_TAG = "bnnlib.cache_key"
CHAPTERS_TAG = "bnnlib.chapters"
CONNECT_TIMEOUT = 10.0
ARTIFACT = "per_era.csv"


def check_form(uri: Any, option: str = "--mlflow-uri") -> str:
    """`uri` if it is a tracking URI of a known form (nothing is contacted), else a BnnlibError."""
    text = uri.strip() if isinstance(uri, str) else ""
    parsed = urlparse(text)
    bad = f"{option} {uri!r} is not an MLflow tracking URI this book logs to; use {FORMS}"
    if parsed.scheme == "file":
        if not file_path(text).name or parsed.netloc not in ("", "localhost"):
            raise BnnlibError(bad)
        return text
    if parsed.scheme in ("http", "https"):
        try:
            port = parsed.port
        except ValueError:
            raise BnnlibError(bad) from None
        if not parsed.hostname or (port is not None and not 1 <= port <= 65535):
            raise BnnlibError(bad)
        return text
    raise BnnlibError(bad)


def file_path(uri: str) -> Path:
    """The folder of a `file:` URI (file:/abs, file:///abs or file:relative)."""
    parsed = urlparse(uri.strip())
    return Path(parsed.path or parsed.netloc).expanduser()


def require_mlflow(option: str = "--mlflow-uri") -> None:
    """Fail in one line, saying how to install it, when MLflow cannot be imported."""
    if importlib.util.find_spec("mlflow") is None:
        raise BnnlibError(f"{option} needs MLflow, which is not installed; install it with: {INSTALL}")


def check_reachable(uri: str, option: str = "--mlflow-uri", timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail in one line when a file store's folder cannot be written or nothing listens at a
    server's address (a TCP connection only: MLflow's client would retry for minutes)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        from bnnlib.infra.paths import check_output_folder

        path = file_path(uri)
        if path.exists() and not path.is_dir():
            raise BnnlibError(f"{option} {uri!r} names {path}, which is a file; name a folder for the MLflow store")
        check_output_folder(path, option)
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as error:
        raise BnnlibError(f"cannot reach the MLflow tracking server at {uri} ({error.strerror or error}); "
                          "start one there (`mlflow server`) or log to a local store with "
                          "--mlflow-uri file:/path/to/folder") from None


def check_tracking_uri(uri: Any, option: str = "--mlflow-uri") -> str:
    """A usable tracking URI (form, MLflow installed, folder or server reachable), checked
    before anything is fitted; else a one-line BnnlibError."""
    text = check_form(uri, option)
    require_mlflow(option)
    check_reachable(text, option)
    return text


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's notes and deprecation warnings off the chapter's page."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """One writer at a time in a file store (chapters run side by side share models): without
    it two could both miss a run and each create one."""
    if urlparse(uri).scheme != "file":
        yield
        return
    import fcntl

    folder = file_path(uri)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".bnnlib.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def client(uri: str):
    """An MlflowClient for `uri` (a file store allowed, see the module's note)."""
    if urlparse(uri).scheme == "file":
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow_client, name: str = EXPERIMENT) -> str:
    """The id of the experiment `name`, created if it does not exist."""
    found = mlflow_client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else mlflow_client.create_experiment(name)


def find_run(mlflow_client, experiment: str, key: str):
    """The run tagged with this cache key, or None."""
    runs = mlflow_client.search_runs([experiment], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
    return runs[0] if runs else None


def _value(value: Any) -> str:
    """A parameter or tag value as MLflow stores it (text; blanks for missing values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def run_params(row: Mapping[str, Any], spec: Any) -> dict[str, str]:
    """The run's parameters: every ModelSpec field, then where it ran."""
    import dataclasses

    params = {f.name: _value(getattr(spec, f.name)) for f in dataclasses.fields(spec)}
    params.update(hidden=row["hidden"], lr=_value(spec.learning_rate))
    params.update(data_fingerprint=row["data_fingerprint"], device=row["device"])
    return params


def run_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The run's single-valued metrics (finite ones only: MLflow keeps no blanks)."""
    names = ("corr_mean", "corr_sharpe", "numerai_corr_mean", "numerai_corr_sharpe", "fit_seconds",
             "score_seconds", "elbo_per_row_last")
    values = {name: float(row[name]) for name in names if row.get(name) is not None and not pd.isna(row[name])}
    return {name: value for name, value in values.items() if math.isfinite(value)}


def log_fits(uri: str, rows: pd.DataFrame, fitted: Mapping[str, Any], experiment: str = EXPERIMENT) -> list[str]:
    """Log each registry row (`bnnlib.report.registry.run_rows`) with its model (`fitted[row.model]`)
    as an MLflow run, or add the row's chapter to the run already logged under its cache key;
    returns the run ids, one per row."""
    from mlflow.entities import Metric, Param, RunTag

    ids = []
    with _quiet(), _store_lock(uri):
        mlflow_client = client(uri)
        experiment_ = experiment_id(mlflow_client, experiment)
        for row in rows.to_dict("records"):
            found = find_run(mlflow_client, experiment_, row["cache_key"])
            if found is not None:
                chapters = found.data.tags.get(CHAPTERS_TAG, "").split(",")
                if row["chapter"] not in chapters:
                    mlflow_client.set_tag(found.info.run_id, CHAPTERS_TAG, ",".join([*filter(None, chapters),
                                                                                    row["chapter"]]))
                ids.append(found.info.run_id)
                continue
            result = fitted[row["model"]]
            tags = {KEY_TAG: row["cache_key"], CHAPTERS_TAG: row["chapter"], "chapter": row["chapter"],
                    "model": row["model"], "verdict": _value(row["verdict"]), "converged": _value(row["converged"]),
                    "cached": _value(row["cached"]), "data_fingerprint": row["data_fingerprint"],
                    "mlflow.runName": f"{row['chapter']}/{row['model']}"}
            run = mlflow_client.create_run(experiment_, tags=tags)
            run_id = run.info.run_id
            metrics = [Metric(name, value, 0, 0) for name, value in run_metrics(row).items()]
            history = result.history if result.spec.has_posterior else {}  # ELBO traces
            metrics += [Metric("elbo_per_row", float(value), 0, int(step))
                        for step, value in zip(history.get("step", []), history.get("elbo_per_row", []))
                        if math.isfinite(float(value))]
            params = [Param(name, value) for name, value in run_params(row, result.spec).items()]
            for start in range(0, max(len(metrics), 1), 900):  # log_batch takes at most 1000 metrics
                mlflow_client.log_batch(run_id, metrics=metrics[start:start + 900],
                                        params=params if start == 0 else [])
            with tempfile.TemporaryDirectory(prefix="bnnlib-mlflow-") as folder:
                path = Path(folder) / ARTIFACT
                result.per_era.to_csv(path, index=False)
                mlflow_client.log_artifact(run_id, str(path))
            mlflow_client.set_terminated(run_id)
            ids.append(run_id)
    return ids
