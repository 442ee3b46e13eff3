"""Running independent jobs (fits, scorings) in-process or in local processes.

Anything with a ``map(fn, items) -> list`` method in input order is an executor: the Dask
distributed one (`--executor dask` or `dask://HOST:PORT`) lives in bnnlib.infra.cluster, which also
parses --executor; it reuses the progress bar, error naming and thread sharing defined here.
Workers are started with 'spawn' (safe with torch's threads) and share the machine's cores:
each uses cpu_count // jobs threads.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Protocol, TypeVar

from bnnlib.errors import BnnlibError

T = TypeVar("T")
R = TypeVar("R")

MAX_JOBS = 64
Progress = Callable[[int, int], None]  # (items done, items in all)


class Executor(Protocol):
    """Runs ``fn`` on every item, independently, and returns the results in input order."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


def describe(item: object, width: int = 80) -> str:
    """A short description of an item, to name it in an error message: its `name` (a model
    spec's), the names inside it (a tuple or list of specs), else its repr cut to `width`."""
    name = getattr(item, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(item, (tuple, list)):
        names = [describe(part, width) for part in item if _has_names(part)]
        if names:
            return ", ".join(names)
    text = repr(item)
    return text if len(text) <= width else text[: width - 3] + "..."


def _has_names(part: object) -> bool:
    if isinstance(getattr(part, "name", None), str):
        return True
    return isinstance(part, (tuple, list)) and any(_has_names(p) for p in part)


def _raise_for(error: BaseException, fn: Callable, index: int, item: object):
    """Raise `error` again, naming the item that failed: a BnnlibError is wrapped in one that
    says so in its message (the command line shows only messages), any other error gets a note."""
    where = f"{getattr(fn, '__qualname__', fn)!s} failed on item {index} ({describe(item)})"
    if isinstance(error, BnnlibError):
        raise BnnlibError(f"{where}: {error}") from error
    if hasattr(error, "add_note"):
        error.add_note(where)
    raise error


class _Bar:
    """tqdm over completed items, shown only when stderr is a terminal; plus a callback."""

    def __init__(self, total: int, desc: str, callback: Progress | None):
        from tqdm.auto import tqdm

        self.total, self.callback, self.done = total, callback, 0
        self.bar = tqdm(total=total, desc=desc, disable=not stderr_is_terminal(), leave=False)

    def step(self) -> None:
        self.done += 1
        self.bar.update(1)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        self.bar.close()


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (a progress bar there; plain lines in a log)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class InProcessExecutor:
    """Runs the items one after another in this process (the default, and the simplest)."""

    def __init__(self, progress: Progress | None = None, desc: str = "jobs"):
        self.progress, self.desc = progress, desc

    def __repr__(self) -> str:
        return "InProcessExecutor()"

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        items = list(items)
        bar = _Bar(len(items), self.desc, self.progress)
        results = []
        try:
            for index, item in enumerate(items):
                try:
                    results.append(fn(item))
                except Exception as error:
                    _raise_for(error, fn, index, item)
                bar.step()
        finally:
            bar.close()
        return results


def _limit_threads(threads: int) -> None:
    """Worker initializer: share the cores between the workers instead of oversubscribing.

    The variables are read when torch (or numpy's BLAS) is first imported in the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def threads_per_worker(jobs: int, cpus: int | None = None) -> int:
    """Cores per worker so that `jobs` workers together use the machine and no more."""
    return max(1, (cpus if cpus is not None else os.cpu_count() or 1) // jobs)


class ProcessExecutor:
    """Runs the items in `jobs` local processes (spawned, each with its share of the cores).

    `fn` and the items travel to the workers by pickle: `fn` must be a function defined at the
    top level of an importable module (not in a notebook), and items and results picklable.
    The processes start with the first `map` and are reused by later ones until `close()`
    (or the end of a ``with`` block, or of the program).
    """

    def __init__(self, jobs: int, progress: Progress | None = None, desc: str = "jobs"):
        self.jobs = check_jobs(jobs)
        self.progress, self.desc = progress, desc
        self._pool: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"ProcessExecutor(jobs={self.jobs})"

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close(now=exc_type is not None)

    def close(self, now: bool = False) -> None:
        """Stop the worker processes: after the items they are running, or with `now` (on an
        error or an interrupt) at once, so that no worker outlives the program."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if now:
                stop_pool(pool)
            else:
                pool.shutdown(wait=True, cancel_futures=True)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=get_context("spawn"),
                initializer=_limit_threads,
                initargs=(threads_per_worker(self.jobs),),
            )
        return self._pool

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        items = list(items)
        if not items:
            return []
        _check_picklable(fn)
        pool = self._get_pool()
        bar = _Bar(len(items), self.desc, self.progress)
        with workers_ignore_ctrl_c():  # the first submit starts the processes
            futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
        try:
            results: list = [None] * len(items)
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.get):
                    index = futures[future]
                    error = future.exception()
                    if error is not None:
                        _raise_for(error, fn, index, items[index])
                    results[index] = future.result()
                    bar.step()
            return results
        except BrokenProcessPool:
            self._pool = None  # a worker died: the next map starts fresh processes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bnnlib.infra.interrupt): no worker may outlive us
            self.close(now=True)
            raise
        finally:
            bar.close()
            for future in futures:  # after a failure, the items not yet started are dropped
                future.cancel()


def stop_pool(pool: ProcessPoolExecutor, timeout: float = 5.0) -> None:
    """Stop a process pool now: cancel what has not started, terminate the workers (then kill
    those still alive) and wait for them, so that they and their resource tracker are gone."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)


@contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Start processes within this block: SIGINT is blocked here meanwhile, and a spawned
    process inherits the blocked signal from its first instruction, so a Ctrl-C while a worker
    is still importing cannot print its traceback (the parent handles Ctrl-C and stops the
    workers). Blocked, not ignored: a Ctrl-C that arrives while the workers start stays
    pending here and is delivered when the block ends, so it is never lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _check_picklable(fn: Callable) -> None:
    """Refuse, before starting any process, a function that workers could not import."""
    name = getattr(fn, "__qualname__", repr(fn))
    module = getattr(fn, "__module__", None)
    fix = "define it at the top level of a module (e.g. in bnnlib), or run with --jobs 1"
    if module == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__"):
        raise BnnlibError(
            f"{name} is defined in a notebook or an interactive session, where worker processes "
            f"cannot import it; {fix}"
        )
    try:
        pickle.dumps(fn)
    except Exception as error:
        raise BnnlibError(f"{name} cannot be sent to worker processes ({error}); {fix}") from None


def check_jobs(jobs: object) -> int:
    """`jobs` as a number of processes, or a BnnlibError saying which values are allowed."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise BnnlibError(
            f"--jobs must be a whole number from 1 to {MAX_JOBS}, not {jobs!r}; use 1 to run "
            f"in this process, or N to fit in N local processes (this machine has "
            f"{os.cpu_count()} cores)"
        )
    return jobs


AUTO_JOBS_MAX = 4


def default_jobs(cpus: int | None = None) -> int:
    """The command line's --jobs: one single-threaded worker per core, at most AUTO_JOBS_MAX.

    On the 2-core machine two 1-thread workers fit and score about 1.5x as many models per minute
    as one 2-thread process: the products of a 128-64-64 network over a chunk of draws are too
    small to keep two threads busy. Each worker holds its own copy of the data, hence the cap."""
    return max(1, min(cpus if cpus is not None else os.cpu_count() or 1, AUTO_JOBS_MAX))


def make_executor(jobs: int, progress: Progress | None = None) -> Executor:
    """In-process for ``jobs == 1``, local processes for more."""
    jobs = check_jobs(jobs)
    if jobs == 1:
        return InProcessExecutor(progress=progress)
    return ProcessExecutor(jobs, progress=progress)
