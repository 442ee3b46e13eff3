"""Stopping cleanly on SIGTERM and SIGINT: no worker, kernel or partial file left behind.

A CI time-out or `kill` sends SIGTERM, which by default ends Python at once, skipping every
`finally`: worker processes, their resource tracker and the chapters' kernels would run on. The
command line handles both signals (`handle_signals`): the first raises `Interrupted` (a
KeyboardInterrupt; `Terminated` for SIGTERM) where the main thread is, so the ordinary clean-up
paths run (pools stopped, staging folders and partial notebooks removed) and the command exits
130 or 143 after stopping every process it started.

An exception raised inside another library's event loop can be swallowed there (papermill's
zmq callbacks log it and go on). So the signal is also recorded (`raise_if_interrupted` lets
the runner check it before publishing anything), and a watchdog started by the first signal
finishes the job if the program has not exited within `GRACE` seconds: it runs the registered
clean-ups (`cleanup_on_stop`), stops the child processes and exits with the signal's status.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

GRACE = 15.0  # seconds the normal clean-up has before the watchdog does it


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C), raised where the main thread was, so that clean-up code runs."""

    signum = signal.SIGINT


class Terminated(Interrupted):
    """SIGTERM, raised the same way."""

    signum = signal.SIGTERM


_received: list[int] = []
_cleanups: list[Callable[[], None]] = []


def _on_signal(signum, frame) -> None:
    if not _received:
        watchdog = threading.Timer(GRACE, _hard_stop, args=(signum,))
        watchdog.daemon = True
        watchdog.start()
    _received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else Interrupted()


@contextmanager
def handle_signals(sigint: bool = True) -> Iterator[None]:
    """Within the block (main thread only), SIGTERM (and SIGINT, unless `sigint` is false) raise
    `Terminated` / `Interrupted`, are recorded, and start the watchdog."""
    names = [signal.SIGTERM] + ([signal.SIGINT] if sigint else [])
    previous = {s: signal.signal(s, _on_signal) for s in names}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def interrupted() -> Interrupted | None:
    """The exception for the first signal received, or None."""
    if not _received:
        return None
    return Terminated() if _received[0] == signal.SIGTERM else Interrupted()


def raise_if_interrupted() -> None:
    """Raise the received signal's exception, in case a library swallowed it."""
    error = interrupted()
    if error is not None:
        raise error


@contextmanager
def cleanup_on_stop(cleanup: Callable[[], None]) -> Iterator[None]:
    """Within the block, the watchdog runs `cleanup` before it exits (partial files)."""
    _cleanups.append(cleanup)
    try:
        yield
    finally:
        _cleanups.remove(cleanup)


def exit_status(error: BaseException) -> int:
    """128 + the signal: 143 for SIGTERM, 130 for SIGINT (Ctrl-C)."""
    return 128 + int(getattr(error, "signum", signal.SIGINT))


def ignore_interrupts() -> None:
    """For worker processes: Ctrl-C reaches the whole process group, but only the parent should
    act on it (it stops the workers); otherwise each worker prints its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _hard_stop(signum: int) -> None:
    """The watchdog: the program did not stop by itself after a signal; stop it now."""
    for cleanup in reversed(list(_cleanups)):
        try:
            cleanup()
        except Exception:
            pass
    stop_children(timeout=2.0)
    what = "terminated" if signum == signal.SIGTERM else "interrupted"
    print(f"bnnlib: {what}; partial files removed, processes stopped", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def stop_children(timeout: float = 5.0) -> list[int]:
    """Terminate, then kill, every process this one started (at any depth) that is still alive;
    returns their ids. Kernels, worker pools and resource trackers all descend from us."""
    try:
        import psutil  # ipykernel's dependency, so present wherever chapters can run
    except ImportError:  # pragma: no cover
        return []
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:  # pragma: no cover
        return []
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return [c.pid for c in children]
