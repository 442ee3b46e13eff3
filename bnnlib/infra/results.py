"""Exporting a chapter's results as files a Numerai user can reuse, each written atomically.

Layout, under the chapter's results folder (``_build/results/<chapter>`` by default)::

    summary.csv                       the chapter's main table
    <model>/predictions.parquet       the ensemble's validation predictions: index id; era, prediction
    <model>/per_era.csv               era, corr, numerai_corr (and mean_std for models with draws)
    figures/<name>.png                the chapter's figures

Every file is written to a temporary name in its folder and renamed into place, so an
interrupted run leaves the previous file or the new one, never half of one; every input is
checked before the first file is written. Files get the usual permissions (0666 less the umask).

Whose folder: the book's results (``_build/results/<chapter>``) belong to the run that produced
the book's notebook. The runner (`bnnlib book`, `bnnlib run`) has a chapter write into a staging
folder (``BNNLIB_RESULTS_STAGING``) and swaps it in only when the chapter succeeded. A chapter
run by plain papermill writes to ``_build/papermill/<chapter>`` instead, so it never mixes with the
book's; ``BNNLIB_BOOK_RESULTS=1`` points it at the book's folder explicitly. A `results_dir`
outside ``_build/results`` is used as given.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bnnlib.errors import BnnlibError

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")
PER_ERA_COLUMNS = ("era", "corr", "numerai_corr")


STAGING_ENV = "BNNLIB_RESULTS_STAGING"
"""Set by the runner for one chapter's kernel: the folder its results go to until published."""
BOOK_RESULTS_ENV = "BNNLIB_BOOK_RESULTS"
"""Set to 1 to let a chapter run outside the runner write into the book's results folder."""
OWN_FOLDER = Path("_build") / "papermill"
"""Where a chapter run by plain papermill puts what it would have put in the book's folder."""


def book_folder(results_dir: str | Path, chapter: str) -> Path:
    """The chapter's published results folder: `results_dir` itself when it already ends in the
    chapter's name (``_build/results/ensembles``), else its subfolder `chapter` (so the profiles'
    shared ``_build/results`` gives one folder per chapter)."""
    check_name(chapter, "chapter")
    path = Path(results_dir)
    return path if path.name == chapter else path / chapter


def _book_index(parts: tuple[str, ...]) -> int | None:
    """Where ``_build/results`` starts in a path's parts (the last one), or None."""
    found = [i for i, (a, b) in enumerate(zip(parts, parts[1:])) if a == "_build" and b == "results"]
    return found[-1] if found else None


def is_book_results(path: str | Path) -> bool:
    """Whether `path` lies in a book's results folder (``.../_build/results/...``)."""
    return _book_index(Path(os.path.abspath(path)).parts) is not None


def chapter_folder(results_dir: str | Path, chapter: str) -> Path:
    """Where this run of the chapter writes its results: the runner's staging folder when the
    runner executes it; under plain papermill, ``_build/papermill/<chapter>`` in place of the
    book's folder (unless BNNLIB_BOOK_RESULTS=1); else `book_folder(results_dir, chapter)`."""
    folder = book_folder(results_dir, chapter)
    staging = os.environ.get(STAGING_ENV)
    if staging:
        return Path(staging)
    if is_book_results(folder) and os.environ.get(BOOK_RESULTS_ENV) != "1":
        parts = folder.parts if _book_index(folder.parts) is not None else Path(os.path.abspath(folder)).parts
        own = Path(*parts[:_book_index(parts)], OWN_FOLDER, chapter)
        print(f"(run outside `bnnlib book`/`bnnlib run`: this chapter's results go to {own}, not to the book's "
              f"{folder}; set {BOOK_RESULTS_ENV}=1 to write there)")
        return own
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public(path: Path, directory: bool = False) -> Path:
    """Give `path` the permissions a plain open() or mkdir() would (0666 or 0777 less the umask):
    mkstemp and mkdtemp make private files, which others sharing the results could not read."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())
    return path


def check_name(name: str, what: str = "model") -> str:
    """`name` if it is safe as a folder name (letters, digits, _ . + = -), else a BnnlibError."""
    if not isinstance(name, str) or not _SAFE.match(name) or name in (".", ".."):
        raise BnnlibError(
            f"the {what} name {name!r} cannot be a folder name; use letters, digits and _ . + = - "
            "(e.g. 'bnn_flat')"
        )
    return name


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file beside `path`, then rename it to `path`; on any
    failure the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        public(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_csv(frame: pd.DataFrame, path: str | Path, index: bool = True) -> Path:
    """A DataFrame as CSV, atomically."""
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=index))


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """A DataFrame as parquet (its index kept), atomically."""
    return write_atomic(path, lambda tmp: frame.to_parquet(tmp))


def save_figure(figure: Any, path: str | Path, dpi: int = 110) -> Path:
    """A matplotlib figure as an image (format from the suffix), atomically."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"))


def model_frames(result: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What is exported of one model: its ensemble predictions (index id; era, prediction) and
    its per-era table (era, corr, numerai_corr, plus mean_std when it has several draws)."""
    predictions = result.scores.predictions()
    if list(predictions.columns) != ["era", "prediction"] or predictions.index.name != "id":
        raise BnnlibError(
            f"predictions must have index 'id' and columns era, prediction, got index "
            f"{predictions.index.name!r} and columns {list(predictions.columns)}"
        )
    per_era = result.per_era
    missing = set(PER_ERA_COLUMNS) - set(per_era.columns)
    if missing:
        raise BnnlibError(f"the per-era table lacks {sorted(missing)}; pass a ModelResult from bnnlib.evaluate.study")
    columns = list(PER_ERA_COLUMNS)
    if result.scores.n_draws > 1 and "mean_std" in per_era.columns:
        columns.append("mean_std")
    return predictions, per_era[columns].reset_index(drop=True)


def export_results(folder: str | Path, results: Mapping[str, Any], summary: pd.DataFrame | None = None,
                   ) -> list[Path]:
    """Write every model's predictions and per-era scores, and the chapter's summary table,
    under `folder`; returns the files written. Names and tables are all checked first."""
    folder = Path(folder)
    frames = {check_name(name): model_frames(result) for name, result in results.items()}
    if summary is not None and not isinstance(summary, pd.DataFrame):
        raise BnnlibError(f"the summary must be a DataFrame, not {type(summary).__name__}")
    written = []
    for name, (predictions, per_era) in frames.items():
        written.append(write_parquet(predictions, folder / name / "predictions.parquet"))
        written.append(write_csv(per_era, folder / name / "per_era.csv", index=False))
    if summary is not None:
        written.append(write_csv(summary, folder / "summary.csv"))
    return written


def export_figure(folder: str | Path, name: str, figure: Any) -> Path:
    """A chapter's figure as ``figures/<name>.png`` under its results folder."""
    return save_figure(figure, Path(folder) / "figures" / f"{check_name(name, 'figure')}.png")
