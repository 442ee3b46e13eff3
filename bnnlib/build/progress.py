"""Where a long build stands: lines as fits finish, a bar in a terminal, a heartbeat in a log.

The work reports through `bnnlib.infra.progress` (a file of JSON events that the warm-up's
workers and the chapters' kernels append to); a `Monitor` thread here reads it about once a
second and prints: one line per finished fit (its name, chapter, seconds and convergence
verdict), a tqdm bar weighted by the cost model's seconds while the warm-up runs (in a terminal
only: its elapsed time and ETA), and, when nothing has been printed for `HEARTBEAT` seconds, a
line saying what is running and for how long, so that a log shows a line at least every minute
and a hung build can be told from a slow one.

All printing goes through one `Console`, so that the runner's "[3/7] chapter ... 12.3 s" lines,
whose end is printed when the chapter finishes, are not cut by a line printed meanwhile.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bnnlib.build.estimate import minutes
from bnnlib.infra.executor import stderr_is_terminal
from bnnlib.infra.progress import Reader

HEARTBEAT = 50.0
"""Seconds of silence after which the monitor prints where the build stands (under a minute,
with a margin for the poll)."""
POLL = 1.0


class Console:
    """Prints lines to stdout from several threads; a line begun with `begin` and finished by
    `end` is printed again whole if another line came in between."""

    def __init__(self):
        self.lock = threading.RLock()
        self.open: str | None = None  # a begun line awaiting its end
        self.cut = False
        self.last = time.monotonic()  # when something was last printed
        self.bar = None  # a tqdm bar on stderr: lines go through its write

    def _print(self, text: str, end: str = "\n") -> None:
        if self.bar is not None and end == "\n":
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, end=end, flush=True)
        self.last = time.monotonic()

    def line(self, text: str) -> None:
        with self.lock:
            if self.open is not None and not self.cut:
                print(flush=True)  # end the begun line here; `end` prints it whole
                self.cut = True
            self._print(text)

    def begin(self, text: str) -> None:
        with self.lock:
            self._print(text, end=" ")
            self.open, self.cut = text, False

    def end(self, text: str) -> None:
        with self.lock:
            if self.open is None:
                self._print(text)
            elif self.cut:
                self._print(f"{self.open} {text}")
            else:
                self._print(text)
            self.open, self.cut = None, False


CONSOLE = Console()


def fit_line(name: str, chapters, seconds: float | None, verdict: str, error: str | None = None) -> str:
    """'flat (ensembles, burn_eras): 123 s, converged' (or 'failed: ...')."""
    where = f"{name} ({', '.join(chapters)})" if chapters else name
    if error:
        return f"{where}: failed: {error}"
    took = "?" if seconds is None else f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{where}: {took}, {verdict or 'no verdict (a point network)'}"


class Monitor:
    """A thread that reads a progress file and prints (see the module's text). `handle` maps an
    event to a line to print (or None); `status` says where things stand, for the heartbeat."""

    def __init__(self, path: Path | None, console: Console = CONSOLE, heartbeat: float = HEARTBEAT,
                 terminal: bool | None = None):
        self.reader = Reader(path) if path is not None else None
        self.console, self.heartbeat = console, heartbeat
        self.terminal = stderr_is_terminal() if terminal is None else terminal
        self.handlers: list[Callable[[dict], None]] = []
        self.status: Callable[[], str] | None = lambda: "working"  # None: no heartbeat (another monitor reports)
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._polling = threading.Lock()

    def __enter__(self) -> Monitor:
        self._thread = threading.Thread(target=self._loop, name="bnnlib-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()  # what arrived last

    def poll(self) -> None:
        """Handle the events that arrived; print the heartbeat if it is due."""
        with self._polling:
            self._poll()

    def _poll(self) -> None:
        for event in self.reader.read() if self.reader is not None else []:
            for handle in self.handlers:
                try:
                    handle(event)
                except Exception:  # a malformed event must not stop the build
                    continue
        if self.console.bar is not None:
            with self.console.lock:  # its elapsed time and ETA move while a long fit runs
                self.console.bar.refresh()
        if self.status is not None and time.monotonic() - self.console.last >= self.heartbeat and (
                self.console.bar is None or not self.terminal):
            self.console.line(f"[progress] {minutes(time.monotonic() - self.started)} since the start: {self.status()}")

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            self.poll()


class WeightedBar:
    """A tqdm bar over the warm-up's units of work, weighted by their estimated seconds, so that
    its ETA is the cost model's, corrected by the pace so far; shown only in a terminal."""

    def __init__(self, total: float, desc: str, console: Console = CONSOLE, terminal: bool | None = None):
        from tqdm.auto import tqdm

        show = stderr_is_terminal() if terminal is None else terminal
        self.console = console
        self.total = max(total, 1e-9)
        self.done = 0.0  # counted here: a disabled tqdm (no terminal: a log) does not count
        self.bar = tqdm(total=max(total, 1e-9), desc=desc, disable=not show, leave=False, dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed} elapsed, ETA {remaining}]")
        if show:
            console.bar = self.bar

    def advance(self, weight: float) -> None:
        with self.console.lock:
            self.done += weight
            self.bar.update(weight)

    @property
    def share(self) -> float:
        """The share of the estimated work done, in a terminal or a log alike."""
        return min(1.0, self.done / self.total)

    def close(self) -> None:
        with self.console.lock:
            if self.console.bar is self.bar:
                self.console.bar = None
            self.bar.close()
