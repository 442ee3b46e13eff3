"""Download Numerai's public files with numerapi (needs a network; never used by tests or the book).

Each file is downloaded to a temporary name beside its destination and renamed into place only
when complete, so an interrupted download never leaves a truncated parquet that would later
load as data.
"""

from __future__ import annotations

import os
from pathlib import Path

from bnnlib.errors import BnnlibError

FILES = ("train.parquet", "validation.parquet", "features.json")


def _numerapi():
    try:
        import numerapi
    except ImportError:
        raise BnnlibError("downloading needs numerapi, which is not installed: "
                          "pip install 'bnnlib[download]' (or pip install numerapi)") from None
    return numerapi


def download_dataset(version: str, dest: str | Path) -> list[Path]:
    """Download {version}/train.parquet, validation.parquet and features.json into `dest`."""
    api = _numerapi().NumerAPI()
    dest = Path(dest)
    try:
        available = list(api.list_datasets())
    except Exception as error:  # numerapi raises plain exceptions for network problems
        raise BnnlibError(f"could not list Numerai's datasets ({error}); check the network connection") from None
    versions = sorted({name.split("/", 1)[0] for name in available if "/" in name})
    wanted = [f"{version}/{name}" for name in FILES]
    missing = [name for name in wanted if name not in available]
    if missing:
        raise BnnlibError(f"Numerai has no {', '.join(missing)}; available versions: {', '.join(versions) or 'none'} "
                          "(pass one with --version)")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for remote, name in zip(wanted, FILES):
        final = dest / name
        partial = dest / f".{name}.partial"
        partial.unlink(missing_ok=True)
        try:
            api.download_dataset(remote, str(partial))
            if not partial.is_file():
                raise BnnlibError(f"numerapi reported success for {remote} but wrote nothing; try again")
            os.replace(partial, final)
        except BaseException as error:
            partial.unlink(missing_ok=True)
            if isinstance(error, (BnnlibError, KeyboardInterrupt, SystemExit)):
                raise
            raise BnnlibError(f"downloading {remote} failed ({error}); check the network and try again") from None
        written.append(final)
    return written
