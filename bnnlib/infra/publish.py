"""Publishing a chapter's run as one piece: its results folder, notebook and stamp, or nothing.

A chapter writes its results into a staging folder beside the published one; only when the
chapter succeeded does the runner swap the staging folder in (two renames), then the notebook,
then the stamp that records a digest of both. A failing or interrupted run removes its staging
folder and leaves the published results, notebook and stamp as they were. Each chapter (and the
HTML build) has a lock file under ``_build/locks``, held for the whole run, so a second run of
the same chapter refuses at once instead of interleaving its files with the first one's; the
operating system releases it when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bnnlib.errors import BnnlibError

LOCKS = Path("_build") / "locks"


@contextmanager
def locked(root: Path, names: Iterable[str], what: str = "chapter") -> Iterator[None]:
    """Hold the lock of each name (sorted) for the block, or raise a BnnlibError naming the one
    another process holds."""
    with ExitStack() as stack:
        for name in sorted(set(names)):
            stack.enter_context(_lock(Path(root) / LOCKS / f"{name}.lock", name, what))
        yield


@contextmanager
def _lock(path: Path, name: str, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BnnlibError(
                f"{what} {name!r} is being run by another bnnlib command ({holder}; lock {path}); "
                "wait for it to finish, then run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def staging_folder(final: Path) -> Path:
    """A new, empty folder beside `final` (same file system, so the swap is a rename), with
    the permissions of a plain mkdir; earlier runs' leftovers for `final` are removed first (the
    caller holds the chapter's lock)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for old in final.parent.glob(f".{final.name}.staging-*"):
        shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    return folder


def swap_in(staged: Path, final: Path) -> None:
    """Replace the folder `final` by `staged`: the old one is renamed aside and removed after."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    try:
        os.rename(staged, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def tree_digest(folder: Path | None) -> str | None:
    """sha256 over the relative names and bytes of every file under `folder` (None if absent):
    what the stamp records, so results changed by anything but this run are noticed."""
    if folder is None or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
