"""Whether a folder can be written, asked before long work starts (not after an hour of fits)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bnnlib.errors import bad_value


def probe_writable(name: str, value: object, path: Path) -> None:
    """Whether files can be made at `path`: its nearest existing folder takes a temporary
    folder (made and removed at once), and nothing on the way is a file. `name` and `value`
    are the parameter or option the path came from, for the error's one line."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise bad_value(name, value, f"lies below {existing}, which is a file", "choose a folder path")
    try:
        probe = tempfile.mkdtemp(prefix=".bnnlib-probe-", dir=existing)
    except OSError as error:
        raise bad_value(name, value, f"cannot be made in {existing} ({error.strerror or error})",
                        "choose a folder you can write to") from None
    shutil.rmtree(probe, ignore_errors=True)


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """`path` if a folder can be made and written there, else a one-line BnnlibError naming
    `option` (an unwritable place, or a path below a file): checked before long work starts."""
    probe_writable(option, str(path), Path(path).expanduser().absolute())
    return Path(path)
