"""Stopping cleanly on SIGTERM and SIGINT: no worker, kernel or resource tracker left behind.

A CI time-out or `kill` sends SIGTERM, which by default ends Python at once, skipping every
`finally`: worker processes, their resource tracker and the chapters' kernels would run on. The
command line turns SIGTERM into `Terminated` (a KeyboardInterrupt, so the same clean-up paths run
for both signals: pools stopped, staging folders and partial notebooks removed), and before it
exits stops whatever processes it started that are still alive.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread was, so that clean-up code runs."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (main thread only)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(error: KeyboardInterrupt) -> int:
    """128 + the signal: 143 for SIGTERM, 130 for SIGINT (Ctrl-C)."""
    return 128 + int(getattr(error, "signum", signal.SIGINT))


def ignore_interrupts() -> None:
    """For worker processes: Ctrl-C reaches the whole process group, but only the parent should
    act on it (it stops the workers); otherwise each worker prints its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
