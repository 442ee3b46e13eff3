"""A channel for progress events from wherever the work runs to the process that reports it.

Fits run in the warm-up's worker processes, in a Dask cluster's, or inside a chapter's Jupyter
kernel, whose output papermill keeps in the notebook, not on the terminal. So a finished fit
says so by appending one JSON line to the file named by the environment variable
`PROGRESS_ENV`, which those processes inherit from the runner; the runner's monitor
(`bnnlib.build.progress`) reads the file and prints. A line is written with one `write` on a
file opened for appending (O_APPEND), well under the size that the OS writes in one piece, so
lines of several processes never interleave. Without the variable (a chapter run by plain
papermill, a test) nothing is written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROGRESS_ENV = "BNNLIB_PROGRESS"


def emit(kind: str, **fields) -> None:
    """Append the event {"event": kind, "time": now, **fields} to the progress file, if any.
    Never raises: progress must not fail the work it reports."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    line = json.dumps({"event": kind, "time": time.time(), **fields}, default=str) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


@contextmanager
def channel(path: Path) -> Iterator[Path]:
    """Within the block, processes started from here (and this one) emit to `path` (emptied
    first); the variable is restored after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    previous = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = previous


class Reader:
    """The events appended to a progress file since the last `read` (whole lines only)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = Path(path), 0, b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for the rest
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events
