"""Choosing where fits and scorings run (`--executor`), and the Dask distributed executor.

`local` (the default) runs them in this process, or with --jobs N in N local processes
(`bnnlib.infra.executor`). `dask` starts a Dask LocalCluster on this machine: --jobs worker processes
(default: one per core), each running one job at a time with its share of the cores as torch
threads. `dask://HOST:PORT` (or `tcp://HOST:PORT`) sends them to an existing scheduler.

Where results land: a job runs the same code as in a local process (`warmup._run_job` for a fit,
`warmup._run_range` for a range of a model's draws, `study._evaluate_job`), so the worker writes
its fit and scores through `bnnlib.infra.cache`, with its
atomic writes, into the cache folder, and returns only small values (an error message, or the
scores the chapter reads). Shipping fitted models back to the client instead would move every
fit over the network twice and need a second way of storing entries; so the cluster must share
the cache folder with this machine (a LocalCluster always does), and the warm-up checks that
every entry a worker wrote is visible here, naming the folder when it is not. An existing
cluster's workers also need this version of bnnlib installed: jobs name its functions.

The choice never changes results or cache keys: it is kept out of the chapter's stamp, like --jobs.
Dask is optional (`pip install 'bnnlib[dask]'`); nothing here imports it until a cluster is used.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from bnnlib.errors import BnnlibError
from bnnlib.infra.executor import (
    Executor, InProcessExecutor, ProcessExecutor, Progress, _Bar, _check_picklable, _raise_for, check_jobs,
    threads_per_worker, workers_ignore_ctrl_c,
)

T = TypeVar("T")
R = TypeVar("R")

FORMS = "local, dask, dask://HOST:PORT or tcp://HOST:PORT"
INSTALL = "pip install 'bnnlib[dask]'"
CONNECT_TIMEOUT = 10.0  # seconds to reach an existing scheduler before saying it cannot be reached
_ADDRESS = re.compile(r"^(?:dask|tcp)://(?P<host>[^/:\s]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})/?$")


@dataclass(frozen=True)
class ExecutorChoice:
    """A parsed --executor: `kind` is 'local' or 'dask'; `address` an existing scheduler's
    tcp://HOST:PORT, or None (start a LocalCluster)."""

    kind: str
    address: str | None = None

    @property
    def local_cluster(self) -> bool:
        return self.kind == "dask" and self.address is None


class WorkerLost(RuntimeError):
    """A cluster's worker died while running an item (out of memory?): like BrokenProcessPool."""


def parse_executor(value: object) -> ExecutorChoice:
    """An --executor value as an ExecutorChoice, or a BnnlibError listing the valid forms."""
    text = value.strip() if isinstance(value, str) else None
    if text in ("local", "dask"):
        return ExecutorChoice(text)
    match = _ADDRESS.match(text or "")
    if match and 1 <= int(match["port"]) <= 65535:
        return ExecutorChoice("dask", f"tcp://{match['host']}:{int(match['port'])}")
    ray = "; Ray is not supported" if (text or "").startswith("ray") else ""
    raise BnnlibError(f"--executor {value!r} is not a known executor; use one of: {FORMS} "
                      f"(an existing Dask scheduler's address){ray}")


def require_dask(value: str = "dask") -> None:
    """Fail in one line, saying how to install it, when Dask distributed cannot be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise BnnlibError(f"--executor {value} needs Dask distributed, which is not installed; "
                          f"install it with: {INSTALL}") from None


def check_executor(value: object) -> str:
    """A valid --executor value, with Dask importable when it names Dask; else a BnnlibError."""
    choice = parse_executor(value)
    if choice.kind == "dask":
        require_dask(str(value).strip())
    return str(value).strip()


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail in one line, before anything is computed, when nothing listens at the scheduler's
    address (a TCP connection only: cheap; the Dask handshake comes with the first jobs)."""
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise _unreachable(address, error) from None


def _unreachable(address: str, error: BaseException) -> BnnlibError:
    return BnnlibError(
        f"cannot reach the Dask scheduler at {address} ({_first_line(error)}); start one there "
        "(`dask scheduler`, with workers that share this cache folder) and pass its address, or use "
        "--executor dask for a cluster on this machine")


def cluster_workers(executor: str, jobs: int | None) -> int:
    """--jobs, else the default: one worker per core for a LocalCluster, else executor.default_jobs."""
    from bnnlib.infra.executor import default_jobs

    if jobs is not None:
        return jobs
    return (os.cpu_count() or 1) if parse_executor(executor).local_cluster else default_jobs()


@contextmanager
def open_executor(executor: str, jobs: int, progress: Progress | None = None,
                  desc: str = "jobs") -> Iterator[Executor]:
    """The executor `executor` names, for `jobs` workers, closed at the end of the block (at
    once, stopping its processes, on an error, Ctrl-C or SIGTERM). Nothing starts before the
    first `map` with items, so opening one that is not used costs nothing."""
    choice = parse_executor(executor)
    if choice.kind == "local":
        if check_jobs(jobs) == 1:
            yield InProcessExecutor(progress=progress, desc=desc)
        else:
            with ProcessExecutor(jobs, progress=progress, desc=desc) as local:
                yield local
        return
    with DaskExecutor(choice.address, jobs, progress=progress, desc=desc) as cluster:
        yield cluster


def _call(fn: Callable[[T], R], item: T, threads: int | None) -> R:
    """Run one item in a Dask worker, with `threads` torch threads (the worker's share of the
    cores) when the cluster is ours; an existing cluster's workers keep their own settings."""
    if threads is not None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return fn(item)


class DaskExecutor:
    """Runs the items on a Dask cluster, results in input order (the Executor protocol).

    With `address` None it starts a LocalCluster of `workers` processes, one job at a time each,
    each using cores // workers torch threads, with no memory limit (Dask's default would kill a
    worker at 95% of an equal share of the memory, which a local process does not do); else it
    connects to the scheduler at `address`.
    Items are submitted in order with decreasing priority, so a longest-first list starts
    longest first. A failing item cancels the rest and is raised naming the item; a worker that
    died raises WorkerLost. `fn` must be importable by the workers (a top-level function of bnnlib).
    """

    def __init__(self, address: str | None = None, workers: int | None = None,
                 progress: Progress | None = None, desc: str = "jobs"):
        require_dask("dask" if address is None else address)
        self.address = address
        self.workers = check_jobs(workers if workers is not None else os.cpu_count() or 1)
        self.progress, self.desc = progress, desc
        self._client = None
        self._cluster = None

    def __repr__(self) -> str:
        where = self.address or f"LocalCluster(workers={self.workers})"
        return f"DaskExecutor({where})"

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close()

    @property
    def threads(self) -> int | None:
        """Torch threads per worker: our LocalCluster's share of the cores; None for a remote one."""
        return threads_per_worker(self.workers) if self.address is None else None

    def _get_client(self):
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self):
        from distributed import Client, LocalCluster

        if self.address is not None:
            try:
                client = Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as error:
                raise _unreachable(self.address, error) from None
            try:  # a scheduler without workers would hold the jobs forever
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                client.close()
                raise BnnlibError(
                    f"the Dask scheduler at {self.address} has no workers after {CONNECT_TIMEOUT:.0f} s; start "
                    f"some (`dask worker {self.address}`, sharing this cache folder) or use --executor dask") from None
            return client
        # The cluster's own processes log at CRITICAL only (silence_logs); so does its scheduler, which
        # runs here: a worker stopped by Ctrl-C would otherwise print "Batched Comm Closed" and its
        # traceback at INFO. A job's failure comes back as its future's exception, not as a log line.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        with workers_ignore_ctrl_c():  # the workers leave Ctrl-C to us: we stop them
            try:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             memory_limit=0, dashboard_address=None, silence_logs=logging.CRITICAL,
                                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})  # any free port
            except BaseException:  # a signal while the workers start: their half-started tasks would
                logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # print tracebacks as we exit
                raise
        try:
            return Client(self._cluster, set_as_default=False)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Disconnect, and stop our LocalCluster's processes (an existing cluster keeps running)."""
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        for part in (client, cluster):
            if part is not None:
                try:
                    part.close()
                except Exception:  # pragma: no cover - closing what is already gone
                    pass

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        items = list(items)
        if not items:
            return []
        _check_picklable(fn)
        from distributed import as_completed

        client = self._get_client()
        bar = _Bar(len(items), self.desc, self.progress)
        futures = [client.submit(_call, fn, item, self.threads, pure=False, priority=len(items) - index)
                   for index, item in enumerate(items)]
        index_of = {future.key: index for index, future in enumerate(futures)}
        try:
            results: list = [None] * len(items)
            for future in as_completed(futures, loop=client.loop):
                index = index_of[future.key]
                if future.status == "error":
                    _raise_item(future.exception(), fn, index, items[index])
                results[index] = future.result()
                bar.step()
            return results
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bnnlib.infra.interrupt): our workers stop now
            self.close()
            raise
        except BaseException:  # an item failed: nothing else runs for this map
            client.cancel(futures)
            raise
        finally:
            bar.close()


def _raise_item(error: BaseException, fn: Callable, index: int, item: object) -> None:
    """An item's error raised naming the item; a dead worker as WorkerLost."""
    if type(error).__name__ == "KilledWorker":
        from bnnlib.infra.executor import describe

        raise WorkerLost(f"a Dask worker died while running item {index} ({describe(item)}): "
                         f"{_first_line(error)}") from None
    _raise_for(error, fn, index, item)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
