"""`--executor`: the forms it takes, the Dask executor's order and errors, the one-line errors
for a missing Dask or an unreachable scheduler, the same numbers on a Dask cluster as in one
process, and no process left behind after a signal.

The command-line cases work on a copy of the book in tmp_path (test_cli's `project` fixture).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnnlib.build import cli

from bnnlib.infra import cluster
from bnnlib.errors import BnnlibError
from test_cli import fails_cleanly, project  # noqa: F401  (the fixture: a copy of the book in tmp_path)
from test_interrupt import _cmdline, _descendants, interrupt_when_started

QUICK = ["--profile", "quick", "--no-build"]


def _slow_square(n: int) -> int:
    """Later items finish first, so the results' order cannot come from completion order."""
    time.sleep(0.05 * (4 - n))
    return n * n


def _fail_on_three(n: int) -> int:
    if n == 3:
        raise BnnlibError("three is not allowed here; use another number")
    return n


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- the option's forms


@pytest.mark.parametrize("value, kind, address", [
    ("local", "local", None),
    ("dask", "dask", None),
    ("dask://scheduler.lan:8786", "dask", "tcp://scheduler.lan:8786"),
    ("tcp://10.0.0.5:8786/", "dask", "tcp://10.0.0.5:8786"),
])
def test_the_executor_forms(value, kind, address):
    assert cluster.parse_executor(value) == cluster.ExecutorChoice(kind, address)


@pytest.mark.parametrize("value", ["ray", "dask://nohost", "tcp://h:99999", "", 3, "spark://h:7077"])
def test_an_unknown_executor_lists_the_valid_forms(value):
    with pytest.raises(BnnlibError, match="local, dask, dask://HOST:PORT or tcp://HOST:PORT"):
        cluster.parse_executor(value)


def test_an_unknown_executor_on_the_command_line_is_one_line(project, capsys):  # noqa: F811
    err = fails_cleanly(capsys, ["run", "ensembles", *QUICK, "--executor", "ray"], project)
    assert "'ray'" in err and "dask://HOST:PORT" in err and "Ray is not supported" in err


def test_an_unknown_executor_parameter_is_one_line(project, capsys):  # noqa: F811
    err = fails_cleanly(capsys, ["run", "ensembles", *QUICK, "-p", "executor", "spark"], project)
    assert "executor = 'spark'" in err and "dask://HOST:PORT" in err


def test_without_dask_the_error_says_how_to_install_it(project, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    err = fails_cleanly(capsys, ["run", "ensembles", *QUICK, "--executor", "dask"], project)
    assert "pip install 'bnnlib[dask]'" in err


def test_an_unreachable_scheduler_is_one_line_naming_it(project, capsys):  # noqa: F811
    address = f"tcp://127.0.0.1:{_free_port()}"
    err = fails_cleanly(capsys, ["run", "ensembles", *QUICK, "--executor", address], project)
    assert address in err and "dask scheduler" in err


def test_the_executor_is_kept_out_of_the_stamp():
    from bnnlib.build.runner import stamp_key

    params = {"draws": 5, "jobs": 1, "executor": "local"}
    assert stamp_key("text", params, "h") == stamp_key("text", {**params, "jobs": 3, "executor": "dask"}, "h")


# ----------------------------------------------------------------------------- the Dask executor


@pytest.fixture(scope="module")
def dask_executor():
    pytest.importorskip("distributed")
    with cluster.DaskExecutor(workers=2) as executor:
        yield executor


def test_dask_map_keeps_the_input_order(dask_executor):
    assert dask_executor.map(_slow_square, [0, 1, 2, 3]) == [0, 1, 4, 9]
    assert dask_executor.map(_slow_square, []) == []


def test_dask_map_names_the_failing_item(dask_executor):
    with pytest.raises(BnnlibError, match=r"_fail_on_three failed on item 2 \(3\): three is not allowed"):
        dask_executor.map(_fail_on_three, [1, 2, 3, 4])
    assert dask_executor.map(_fail_on_three, [5]) == [5]  # the cluster is still usable


def test_a_chapters_models_on_a_dask_cluster_match_in_process(dask_executor, tmp_path):
    """A chapter run with executor dask (e.g. under papermill) fits its missing models on the
    cluster, through the same cache; cached ones are read here, without the cluster."""
    from bnnlib.infra.cache import Cache
    from bnnlib.data import load_synthetic
    from bnnlib.evaluate.study import ModelSpec, evaluate_models

    dataset = load_synthetic("tiny", root=tmp_path / "data")
    specs = [ModelSpec("baseline", method="baseline", hidden=(8,), epochs=2, batch_size=256),
             ModelSpec("flat", prior="flat", hidden=(8,), epochs=2, batch_size=256, draws=7)]
    here = evaluate_models(specs, dataset, Cache(tmp_path / "here"), jobs=1)
    cache = Cache(tmp_path / "cluster")
    there = evaluate_models(specs, dataset, cache, executor=dask_executor)
    assert [e.hit for e in cache.events] == [False] * 4  # fits and scores, computed by the workers
    again = Cache(tmp_path / "cluster")
    evaluate_models(specs, dataset, again, executor=dask_executor)
    assert [e.hit for e in again.events] == [True] * 4
    for name in ("baseline", "flat"):  # one torch thread each (study.single_threaded), the same shapes: the same bits
        for part in ("ensemble", "std", "draw_corr", "draw_numerai_corr"):
            np.testing.assert_array_equal(getattr(there[name].scores, part), getattr(here[name].scores, part))


def test_an_existing_scheduler_by_its_address():
    """dask://HOST:PORT connects to a running scheduler, and closing leaves that cluster running."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"}) as running:
        host_port = running.scheduler_address.removeprefix("tcp://")
        choice = cluster.parse_executor(f"dask://{host_port}")
        cluster.check_reachable(choice.address)
        with cluster.open_executor(f"dask://{host_port}", 1) as executor:
            assert executor.map(_slow_square, [3, 1]) == [9, 1]
        assert running.scheduler.workers  # still up


def test_a_scheduler_without_workers_is_one_line(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"}) as empty:
        with pytest.raises(BnnlibError, match="has no workers after 1 s; start some"):
            cluster.DaskExecutor(empty.scheduler_address).map(_slow_square, [1])


def test_a_scheduler_that_vanished_is_one_line(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(BnnlibError, match=f"cannot reach the Dask scheduler at {address}"):
        cluster.DaskExecutor(address).map(_slow_square, [1])


# ----------------------------------------------------------------------------- the same numbers


def test_a_chapter_on_a_dask_cluster_gives_the_numbers_of_one_process(tmp_path, monkeypatch):
    """`bnnlib run ensembles --executor dask` (a worker per core) against `--jobs 1` (in the
    chapter's own process): every number of summary.csv the same. Every fit and scoring runs on
    one torch thread (`study.single_threaded`) with the same shapes, so neither the executor nor
    --jobs moves a bit (and the CSV writes each float so that it reads back exactly)."""
    pytest.importorskip("distributed")
    from test_book import copy_project

    data = ["-p", "data_root", str(tmp_path / "data")]  # the synthetic data, generated once
    small = ["-p", "epochs", "1", "-p", "draws", "20", *data]
    before = {p.pid for p in _descendants(os.getpid())}  # (the module's own cluster, for one)
    summaries = {}
    for name, options in (("one", ["--jobs", "1"]), ("dask", ["--executor", "dask"])):
        root = copy_project(tmp_path / name)
        monkeypatch.chdir(root)
        start = time.perf_counter()
        assert cli.main(["run", "ensembles", *QUICK, *small, *options]) == 0
        print(f"{name}: {time.perf_counter() - start:.1f} s")
        summaries[name] = pd.read_csv(root / "_build" / "results" / "ensembles" / "summary.csv", index_col=0)
    one, dask = summaries["one"], summaries["dask"]
    assert list(one.index) == list(dask.index) and list(one.columns) == list(dask.columns)
    numbers = one.select_dtypes("number").columns
    assert len(numbers) > 0
    np.testing.assert_array_equal(dask[numbers].to_numpy(float), one[numbers].to_numpy(float))
    assert one.drop(columns=numbers).equals(dask.drop(columns=numbers))
    left = [p for p in _descendants(os.getpid()) if p.pid not in before and "spawn_main" in " ".join(_cmdline(p))]
    assert not left  # the run's cluster stopped its workers


# ----------------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_dask_warm_up_leaves_no_process_behind(project, signum, status):  # noqa: F811
    pytest.importorskip("distributed")
    command = [sys.executable, "-c", "import sys; from bnnlib.build.cli import main; sys.exit(main())",
               "run", "burn_eras", *QUICK, "--executor", "dask", "--jobs", "2",
               "-p", "epochs", "1", "-p", "draws", "5"]
    # the two workers running their first jobs
    returncode, err, left = interrupt_when_started(command, project, signum, processes=2, settle=2.0)
    assert returncode == status, err
    assert left == []
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("bnnlib: ")
    assert not list(Path(project, "_build").glob("executing/*.ipynb"))


def test_results_a_cluster_wrote_out_of_sight_are_a_failure_naming_the_folder(tmp_path):
    """Workers that do not share the cache folder finish without error, but nothing lands here:
    the warm-up reports that job as failed (its chapter computes it), naming the folder."""
    from bnnlib.build import warmup
    from bnnlib.evaluate.study import ModelSpec

    job = warmup.Job({}, "fingerprint", str(tmp_path / "cache"), [ModelSpec("flat", prior="flat", hidden=(8,))])
    problem = warmup._missing(job)
    assert problem is not None and str(tmp_path / "cache") in problem and "share" in problem
