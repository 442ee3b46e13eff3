"""Execute the book's chapters with papermill under a profile, then build the HTML.

A chapter is a jupytext percent file ``book/<name>.py`` listed in ``_toc.yml``. For each one the
runner reads the .py into a notebook, injects the profile's parameters (only the names the
chapter's ``parameters`` cell declares), executes it with papermill in the project root, and
writes the executed notebook atomically to ``book/<name>.ipynb``, which Jupyter Book renders
(it executes nothing itself). A small stamp, ``_build/executed/<name>.json``, records what
produced that notebook and its results folder, so an unchanged chapter is not executed again.

Every parameter is checked (`bnnlib.project.parameters`) before anything is fitted. A chapter's results,
notebook and stamp are published together, only when it succeeds, under a lock per chapter
(`bnnlib.infra.publish`); an interrupted run leaves no partial notebook or staging folder behind.

The book's chapters, profiles and parameters are `bnnlib.project.book`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import jupytext
import papermill
from papermill.exceptions import PapermillExecutionError

from bnnlib.build import forecast as forecasting
from bnnlib.build import summary as summaries
from bnnlib.build import warmup
from bnnlib.build.progress import CONSOLE, Monitor
from bnnlib.errors import BnnlibError
from bnnlib.infra.cache import source_hash
from bnnlib.infra.cluster import check_executor, check_reachable, parse_executor
from bnnlib.infra.executor import stop_pool, workers_ignore_ctrl_c
from bnnlib.infra.interrupt import cleanup_on_stop, interrupted, raise_if_interrupted
from bnnlib.infra.publish import locked, staging_folder, swap_in, tree_digest
from bnnlib.infra.results import STAGING_ENV, book_folder
from bnnlib.infra.tracking import check_tracking_uri
from bnnlib.project.book import (TOC, Chapter, _root, chapter_parameters, declared_parameters, get_chapter, list_chapters,
                                 load_profile)
from bnnlib.project.parameters import checked_parameters
from bnnlib.report.registry import RUNS_OF, book_chapters, inputs_digest
from bnnlib.infra.interrupt import handle_signals, ignore_interrupts
from bnnlib.infra.progress import channel
from bnnlib.studies.registry import SUMMARY_FILE, summary_stamp
BUILD = "_build"
NOT_IN_STAMP = ("force", "jobs", "executor")  # do not change a chapter's results
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _runner_values(data_dir, force: bool, jobs: int, device: str = "auto", executor: str = "local",
                   mlflow_uri: str | None = None) -> dict:

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise BnnlibError(f"--jobs must be a whole number of at least 1, not {jobs!r}")
    values: dict[str, Any] = {"force": bool(force), "jobs": jobs, "device": device,
                              "executor": check_executor(executor)}
    address = parse_executor(executor).address
    if address is not None:  # an unreachable scheduler fails now, not after the planning
        check_reachable(address)
    if mlflow_uri is not None:  # MLflow missing, a bad URI or a server down: now, not after the fits

        values["mlflow_uri"] = check_tracking_uri(mlflow_uri)
    if data_dir is not None:
        path = Path(data_dir).expanduser().resolve()
        if not path.is_dir():
            raise BnnlibError(f"--data-dir {data_dir} is not a folder; pass the folder holding the Numerai files")
        values["data_dir"] = str(path)
    return values


def _check_data_dir_used(settings: Mapping, data_dir, profile_name: str) -> None:
    """A --data-dir the profile would not read is a mistake worth saying, not ignoring."""
    source = settings["common"].get("data_source")
    if data_dir is not None and source is not None and source != "numerai":
        raise BnnlibError(
            f"--data-dir {data_dir} is not used: profile {profile_name!r} runs on {source} data; drop "
            "--data-dir, or use --profile numerai (or a profile with data_source: numerai) for real files"
        )


def _check_data_dir(params: Mapping, profile_name: str) -> None:
    """Real data needs a folder: say how to give it, before anything runs."""
    if params.get("data_source") == "numerai" and not params.get("data_dir"):
        raise BnnlibError(
            f"profile {profile_name!r} reads real Numerai data: pass --data-dir DIR (the folder "
            "with train/validation parquet and features.json; see `bnnlib data download`)"
        )


# --------------------------------------------------------------------------- stamps


def _bnnlib_hash() -> str:

    return source_hash()


def _folder_fingerprint(path: str | None) -> str | None:
    """Names, sizes and modification times of the files under a data folder (cheap, and any
    replaced file changes it)."""
    if not path:
        return None
    digest = hashlib.sha256()
    for file in sorted(Path(path).rglob("*")):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp_key(source_text: str, params: Mapping, code_hash: str) -> str:
    """What an executed notebook depends on: the chapter's text, the parameters that change
    its results, bnnlib's source and the data folder's files."""
    kept = {k: v for k, v in params.items() if k not in NOT_IN_STAMP}
    payload = {
        "source": hashlib.sha256(source_text.encode()).hexdigest(),
        "params": kept,
        "bnnlib": code_hash,
        "data": _folder_fingerprint(kept.get("data_dir")),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _stamp_path(root: Path, name: str) -> Path:
    return root / BUILD / "executed" / f"{name}.json"


def _is_current(root: Path, plan: Plan) -> bool:
    """Whether book/<name>.ipynb and the chapter's results folder are the ones the runner wrote
    for exactly this key (results changed since, e.g. by plain papermill, mean: run again)."""
    chapter = plan.chapter
    try:
        stamp = json.loads(_stamp_path(root, chapter.name).read_text(encoding="utf-8"))
        return (stamp.get("key") == plan.key and stamp.get("notebook_sha256") == _sha256(chapter.notebook)
                and (plan.results is None or stamp.get("results_sha256") == tree_digest(plan.results)))
    except (OSError, ValueError):
        return False


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class Plan:
    """One chapter ready to execute: its notebook, injected parameters and stamp key."""

    chapter: Chapter
    notebook: Any  # nbformat.NotebookNode
    params: dict
    key: str
    results: Path | None = None  # the published results folder (absolute), if the chapter has one


def plan_chapter(
    chapter: Chapter,
    profile: Mapping,
    *,
    profile_name: str,
    overrides: Mapping | None = None,
    runner: Mapping | None = None,
    code_hash: str | None = None,
    root: Path | None = None,
) -> Plan:
    """Read the chapter, check its parameters (`bnnlib.project.parameters`, paths against `root`) and
    work out its stamp key and results folder (runs nothing)."""


    text = chapter.source.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    declared = declared_parameters(notebook)
    params = chapter_parameters(
        chapter.name, profile, declared, overrides=overrides, runner=runner, profile_name=profile_name
    )
    if "data_dir" in declared or "data_source" in declared:
        _check_data_dir({**profile["common"], **params}, profile_name)
    folder = Path(root) if root is not None else Path.cwd()
    try:
        params = checked_parameters(params, declared, root=folder)
    except BnnlibError as error:
        raise BnnlibError(f"chapter {chapter.name!r}: {error}") from None
    key = stamp_key(text, params, code_hash or _bnnlib_hash())
    results = None
    results_dir = {**declared, **params}.get("results_dir")  # the chapter's own default counts too
    if isinstance(results_dir, str):
        results = book_folder(folder / Path(results_dir).expanduser(), chapter.name)
    return Plan(chapter, notebook, params, key, results)


def execute_plan(plan: Plan, root: Path) -> float:
    """Execute one chapter with papermill in `root`; write book/<name>.ipynb and its stamp.

    The chapter writes its results into a staging folder (bnnlib.infra.results.STAGING_ENV) and its
    notebook beside its final place; only on success are the results folder swapped in, the
    notebook renamed into place and the stamp written. A failing chapter's partial notebook is
    kept in _build/failed/<name>.ipynb for inspection; an interrupted one is removed. The caller
    holds the chapter's lock (`bnnlib.infra.publish.locked`).
    """


    name = plan.chapter.name
    running = root / BUILD / "executing" / f"{name}.ipynb"
    failed = root / BUILD / "failed" / f"{name}.ipynb"
    running.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_folder(plan.results) if plan.results is not None else None
    previous = os.environ.get(STAGING_ENV)
    if staged is not None:
        os.environ[STAGING_ENV] = str(staged)  # the kernel inherits it

    def discard() -> None:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        running.unlink(missing_ok=True)

    start = time.perf_counter()
    try:
        with cleanup_on_stop(discard):
            _execute(papermill, plan, running, root)
            raise_if_interrupted()  # a signal that papermill's event loop swallowed: publish nothing
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) or interrupted() is not None:  # Ctrl-C, SIGTERM
            discard()
            raise (error if isinstance(error, KeyboardInterrupt) else interrupted()) from None
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        saved = _keep_failed(running, failed)
        if isinstance(error, PapermillExecutionError):
            raise BnnlibError(_cell_failure(name, error, saved, root, plan.chapter.source)) from None
        if isinstance(error, Exception):
            where = f"; the partial notebook is {_relative(saved, root)}" if saved else ""
            raise BnnlibError(
                f"chapter {name!r} could not run: {type(error).__name__}: {error}{where}"
            ) from error
        raise
    finally:
        if previous is None:
            os.environ.pop(STAGING_ENV, None)
        else:
            os.environ[STAGING_ENV] = previous
    seconds = time.perf_counter() - start
    if staged is not None:
        swap_in(staged, plan.results)
    os.replace(running, plan.chapter.notebook)
    failed.unlink(missing_ok=True)
    stamp = {
        "key": plan.key,
        "notebook_sha256": _sha256(plan.chapter.notebook),
        "results": None if plan.results is None else _relative(plan.results, root),
        "results_sha256": tree_digest(plan.results),
        "params": plan.params,
        "seconds": round(seconds, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_atomic(_stamp_path(root, name), json.dumps(stamp, indent=1, sort_keys=True, default=str))
    return seconds


def _execute(papermill, plan: Plan, running: Path, root: Path) -> None:
    papermill.execute_notebook(
        plan.notebook, str(running), parameters=plan.params, kernel_name="python3",
        cwd=str(root), progress_bar=False, log_output=False,
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # kernel chatter (the shutdown
        # interrupt, plain-TCP notes) would break the progress lines; cell errors still surface
    )
    hide_injected_parameters(running)


def hide_injected_parameters(notebook: Path) -> None:
    """Tag papermill's injected copy of the parameters `remove-cell`, so the page shows its
    parameters once (the chapter's own table) and not as code."""
    content = json.loads(notebook.read_text())
    changed = False
    for cell in content.get("cells", []):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            changed = True
    if changed:
        notebook.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")


def _keep_failed(running: Path, failed: Path) -> Path | None:
    if not running.exists():
        return None
    failed.parent.mkdir(parents=True, exist_ok=True)
    os.replace(running, failed)
    return failed


def _cell_failure(name: str, error, saved: Path | None, root: Path, source: Path) -> str:
    """'chapter X failed at In [N] (code cell K of book/X.py, starting ...): Error: ...' and
    where the partially executed notebook is."""
    lines = [line.strip() for line in str(error.source).splitlines() if line.strip()]
    value = _ANSI.sub("", str(error.evalue)).strip().splitlines()
    where = f"code cell {_source_cell_number(source, error.source)} of " if lines else ""
    message = (
        f"chapter {name!r} failed at In [{error.exec_count}] ({where}{_relative(source, root)}, "
        f"starting {lines[0] if lines else ''!r}): {error.ename}: {value[0] if value else ''}"
    )
    if saved is not None:
        message += f"; the partially executed notebook is {_relative(saved, root)}"
    return message


def _source_cell_number(source: Path, cell_source: str) -> int | str:
    """The 1-based number of the code cell with this text in the chapter's .py ('?' if absent)."""

    cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    for number, cell in enumerate(cells, 1):
        if cell.source.strip() == str(cell_source).strip():
            return number
    return "?"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _chapter_values(plans: list[Plan]) -> list[tuple[str, dict]]:
    """(name, parameters as the chapter will run) of each plan: what the warm-up plans from."""
    return [(p.chapter.name, {**declared_parameters(p.notebook), **p.params}) for p in plans]


def _warm_cache(plans: list[Plan], root: Path, jobs: int, force: bool, executor: str = "local",
                forecast: forecasting.Forecast | None = None) -> list[Plan]:
    """Fit and score the models of these chapters in one pool of `jobs` processes, or on the
    `executor`'s cluster (see bnnlib.build.warmup); returns the plans to execute. After a forced warm-up, a chapter whose models
    all refitted runs with force off, so that nothing is fitted twice. With the build's `forecast`,
    its jobs and measured rates are used (not planned again)."""

    if forecast is None:
        done = warmup.warm(warmup.plan(_chapter_values(plans), root, force), jobs, force, executor)
    else:
        done = warmup.warm(forecast.survey.jobs, jobs, force, executor, forecast.rates)
    if not force:
        return plans
    return [
        dataclasses.replace(p, params={**p.params, "force": False})
        if "force" in p.params and p.chapter.name not in done.failed_chapters else p
        for p in plans
    ]


def _run_plans(plans: list[Plan], root: Path, force: bool, jobs: int = 1, executor: str = "local", *,
               dry_run: bool = False, html: bool = False, about: Mapping | None = None) -> dict | None:
    """Print the build's plan (`bnnlib.build.forecast`); then, unless `dry_run`, execute the plans
    (skipping those unchanged since their last run), one line each, holding each chapter's lock
    throughout. With jobs > 1 or a cluster `executor`, first warm the cache for all the chapters
    to execute there, then execute up to `jobs` chapters at a time. On Ctrl-C or SIGTERM, the
    chapters' partial notebooks and staging folders are removed. Returns the build's summary
    (`bnnlib.build.summary`, with `about`: profile, jobs, executor), None when nothing executed
    or with `dry_run`; `html` says whether the HTML will be built after (for the estimate)."""
    if dry_run:  # reads stamps and the cache, takes no lock, writes nothing
        _forecast(plans, root, force, jobs, executor, html)
        print("[plan] dry run: nothing computed", flush=True)
        return None
    with locked(root, [p.chapter.name for p in plans]):
        try:
            return _run_locked(plans, root, force, jobs, executor, html, about or {})
        except KeyboardInterrupt:
            for plan in plans:
                (root / BUILD / "executing" / f"{plan.chapter.name}.ipynb").unlink(missing_ok=True)
                if plan.results is not None and plan.results.parent.is_dir():
                    for staged in plan.results.parent.glob(f".{plan.results.name}.staging-*"):
                        shutil.rmtree(staged, ignore_errors=True)
            raise


def reads_runs(plan: Plan) -> bool:
    """Whether the chapter is a page that reads the other chapters' runs (it declares
    `registry.RUNS_OF`): it runs after them, and their runs are part of its stamp."""

    return RUNS_OF in declared_parameters(plan.notebook)


def with_runs(plan: Plan, root: Path) -> Plan:
    """A runs-reading page's plan with the chapters' current `runs.csv` in its stamp key, taken
    when it is about to run (after the chapters), so that a changed run executes it again."""

    chapters = {**declared_parameters(plan.notebook), **plan.params}.get(RUNS_OF) or book_chapters(
        plan.chapter.name, root)
    results_root = plan.results.parent if plan.results is not None else root / BUILD / "results"
    digest = f"{inputs_digest(results_root, chapters)}\0{summary_stamp(results_root / SUMMARY_FILE)}"
    key = hashlib.sha256(f"{plan.key}\0{digest}".encode()).hexdigest()
    return dataclasses.replace(plan, key=key)


def _forecast(plans: list[Plan], root: Path, force: bool, jobs: int, executor: str,
              html: bool) -> tuple[forecasting.Forecast, set[str], list[Plan], list[Plan]]:
    """Print the build's plan; returns it, the chapters to execute, the chapters and the pages."""
    last = [p for p in plans if reads_runs(p)]
    plans = [p for p in plans if not reads_runs(p)]
    stale = {p.chapter.name for p in plans if force or not _is_current(root, p)}
    executing = [p.chapter.name for p in plans if p.chapter.name in stale]
    kept = [p.chapter.name for p in plans if p.chapter.name not in stale]
    plan = forecasting.forecast(_chapter_values([p for p in plans if p.chapter.name in stale]), root, force, jobs,
                                executor, executing, kept, pages=len(last) if stale else 0, html=html and bool(stale))
    for line in plan.lines:
        CONSOLE.line(line)
    return plan, stale, plans, last


def _run_locked(plans: list[Plan], root: Path, force: bool, jobs: int, executor: str = "local", html: bool = False,
                about: Mapping | None = None) -> dict | None:
    """Execute the chapters that are not current, then the pages reading their runs (one by one,
    after every chapter has finished, whatever `jobs`); a summary of what was computed is
    written before the pages, which show it (`bnnlib.studies.registry.SUMMARY_FILE`)."""
    started, clock = summaries.now_iso(), time.perf_counter()
    labels = {p.chapter.name: f"[{number}/{len(plans)}] {p.chapter.name} ..." for number, p in enumerate(plans, 1)}
    plan, stale, plans, last = _forecast(plans, root, force, jobs, executor, html)
    with tempfile.TemporaryDirectory(prefix="bnnlib-progress-") as folder, \
            channel(Path(folder) / "progress.jsonl") as progress, Monitor(progress) as monitor:
        monitor.handlers.append(_chapter_fit_line)
        monitor.status = None  # the warm-up's own monitor gives its heartbeat; the chapters' comes after
        if (jobs > 1 or executor != "local") and stale:
            warmed = _warm_cache([p for p in plans if p.chapter.name in stale], root, jobs, force, executor, plan)
            plans = [next((w for w in warmed if w.chapter == p.chapter), p) for p in plans]
        todo = []
        for p in plans:
            label = labels[p.chapter.name]
            if p.chapter.name in stale:
                todo.append((label, p))
            else:
                CONSOLE.line(f"{label} unchanged, kept")
        monitor.status = _chapters_status(todo)
        if jobs > 1 and len(todo) > 1:
            _execute_concurrently(todo, root, jobs)
        else:
            _execute_in_turn(todo, root)
        summary = None
        if stale:
            cache_dirs = {str(Path(params["cache_dir"]) if Path(params["cache_dir"]).is_absolute()
                              else root / params["cache_dir"])
                          for _, params in _chapter_values(plans) if params.get("cache_dir")}
            summary = summaries.build_summary(
                started, time.perf_counter() - clock, plan.estimate, summaries.created_since(cache_dirs, started),
                summaries.fit_names(plan.survey.jobs), sorted(stale), {**dict(about or {}), "workers": plan.workers})
            summaries.write_summary(_summary_path(root, plans + last), summary)
        pages = []
        for p in (with_runs(p, root) for p in last):
            if force or not _is_current(root, p):
                pages.append((labels[p.chapter.name], p))
            else:
                CONSOLE.line(f"{labels[p.chapter.name]} unchanged, kept")
        monitor.status = _chapters_status(pages)
        _execute_in_turn(pages, root)
    return None if summary is None else {**summary, "_clock": clock, "_estimate": plan.estimate}


def _summary_path(root: Path, plans: list[Plan]) -> Path:
    """Where the build's summary goes: the book's results folder (beside registry.csv)."""
    results = next((p.results for p in plans if p.results is not None), None)
    return (results.parent if results is not None else root / BUILD / "results") / SUMMARY_FILE


def _chapter_fit_line(event: dict) -> None:
    """A chapter's own fit (outside the warm-up: --jobs 1) finished, as its kernel reported it."""
    if event.get("event") == "chapter_fit":
        from bnnlib.build.progress import fit_line

        cached = " (from the cache)" if event.get("cached") else ""
        CONSOLE.line(f"[{event.get('chapter', '?')}] fit {event.get('done', '?')}/{event.get('total', '?')} "
                     + fit_line(event.get("name", "?"), [], event.get("seconds"), event.get("verdict", ""),
                                event.get("error")) + cached)


def _chapters_status(todo: list[tuple[str, Plan]]):
    """The heartbeat's text while chapters execute: which ones, since when (`execute_plan`
    stamps nothing until a chapter ends, so the start times are kept here)."""
    started = time.monotonic()
    names = [p.chapter.name for _, p in todo]
    for name in names:
        _RUNNING.pop(name, None)

    def status() -> str:
        from bnnlib.build.estimate import minutes

        done = [n for n in names if _RUNNING.get(n) == "done"]
        running = [n for n in names if isinstance(_RUNNING.get(n), float)]
        now = " running: " + ", ".join(f"{n} ({minutes(time.monotonic() - _RUNNING[n])})" for n in running) \
            if running else ""
        return (f"executing the chapters, {len(done)}/{len(names)} done for "
                f"{minutes(time.monotonic() - started)};{now or ' starting'}")
    return status


_RUNNING: dict[str, float | str] = {}
"""chapter -> when it started executing (monotonic), or 'done': for the heartbeat."""


def _execute_in_turn(todo: list[tuple[str, Plan]], root: Path) -> None:
    """Execute the plans one after the other, a line each."""

    for label, plan in todo:
        raise_if_interrupted()
        CONSOLE.begin(label)
        _RUNNING[plan.chapter.name] = time.monotonic()
        try:
            seconds = execute_plan(plan, root)
        except BaseException:
            CONSOLE.end("failed")
            raise
        finally:
            _RUNNING[plan.chapter.name] = "done"
        CONSOLE.end(f"{seconds:.1f} s")


def _execute_concurrently(todo: list[tuple[str, Plan]], root: Path, jobs: int) -> None:
    """Execute chapters `jobs` at a time, each in a process of its own (with its own kernel), a
    line as each ends. A chapter reading a warm cache keeps about one core busy; on 2 cores, two at
    a time re-executed the default book's chapters in 84 s against ~100 s one by one. After a
    failure no further chapter starts, and the first failing chapter in book order is the error.
    (Not `executor.ProcessExecutor`: its worker threads are capped, and it stops at the first
    error in completion order, wrapping it in a description of the item.)"""


    failures: dict[int, BaseException] = {}
    pool = ProcessPoolExecutor(min(jobs, len(todo)), mp_context=get_context("spawn"),
                               initializer=_chapter_process_init)
    try:
        with workers_ignore_ctrl_c():  # the first submit starts the processes
            futures = {pool.submit(execute_plan, plan, root): (index, label) for index, (label, plan) in enumerate(todo)}
        for _, plan in todo[:jobs]:  # (about: the pool starts them in order, `jobs` at a time)
            _RUNNING[plan.chapter.name] = time.monotonic()
        for future in as_completed(futures):
            index, label = futures[future]
            _RUNNING[todo[index][1].chapter.name] = "done"
            waiting = [p for _, p in todo if p.chapter.name not in _RUNNING]
            if waiting:
                _RUNNING[waiting[0].chapter.name] = time.monotonic()
            if future.cancelled():
                continue
            try:
                CONSOLE.line(f"{label} {future.result():.1f} s")
            except Exception as error:
                CONSOLE.line(f"{label} failed")
                failures[index] = error
                for other in futures:
                    other.cancel()
    except BaseException:  # Ctrl-C or SIGTERM: the chapters' processes stop now, cleaning up
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    if failures:
        raise failures[min(failures)]


# --------------------------------------------------------------------------- HTML


def _chapter_process_init() -> None:
    """A chapter's process leaves Ctrl-C to the parent, and turns the parent's SIGTERM into an
    exception, so that execute_plan removes its staging folder and papermill stops its kernel."""

    ignore_interrupts()
    handle_signals(sigint=False).__enter__()  # for the life of the process


def build_html(root: Path | str | None = None) -> Path:
    """Render the executed notebooks with Jupyter Book (no execution, no network); any Sphinx
    warning fails the build. Returns _build/html/index.html."""
    root = _root(root)
    with locked(root, ["html"], what="build"):
        return _build_html(root)


def _build_html(root: Path) -> Path:
    missing = [c.name for c in list_chapters(root) if not c.notebook.is_file()]
    if missing:
        raise BnnlibError(
            f"chapters not executed yet: {', '.join(missing)}; run `bnnlib book --profile PROFILE` "
            "(or `bnnlib run CHAPTER` for each) before building the HTML"
        )
    command = [
        sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build", str(root), "-W", "-n", "--keep-going",
    ]
    print("[html] jupyter-book build ...", end=" ", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    log = root / BUILD / "book-build.log"
    _write_atomic(log, _ANSI.sub("", result.stdout + result.stderr))
    if result.returncode != 0:
        print("failed", flush=True)
        problems = [
            line for line in _ANSI.sub("", result.stdout + result.stderr).splitlines()
            if "WARNING" in line or "ERROR" in line or "Error" in line
        ]
        raise BnnlibError(
            "the HTML build failed (warnings are errors):\n  " + "\n  ".join(problems[:20] or ["(no warning lines)"])
            + f"\nthe full log is {log.relative_to(root)}; fix the page or chapter it names and rebuild"
        )
    print(f"{time.perf_counter() - start:.1f} s", flush=True)
    index = root / BUILD / "html" / "index.html"
    print(f"the book is {index}", flush=True)
    return index


# --------------------------------------------------------------------------- entry points


def build_book(
    profile: str,
    data_dir: str | Path | None = None,
    force: bool = False,
    jobs: int = 1,
    *,
    root: Path | str | None = None,
    device: str = "auto",
    executor: str = "local",
    mlflow_uri: str | None = None,
    dry_run: bool = False,
) -> Path | None:
    """Execute every chapter under `profile` (skipping unchanged ones unless `force`), fitting
    and scoring on `device`, then build the HTML; `executor` says where the warm-up's fits run
    (bnnlib.infra.cluster); with `mlflow_uri`, each chapter logs its fits there (bnnlib.infra.tracking).
    First prints the plan (what will be computed, and its estimated cost); with `dry_run`, only
    that (returns None). Ends with the build's summary. Returns the path of _build/html/index.html."""
    root = _root(root)
    settings = load_profile(profile, root)
    chapters = list_chapters(root)
    _check_profile_chapters(settings, chapters, profile)
    _check_data_dir_used(settings, data_dir, profile)
    runner = _runner_values(data_dir, force, jobs, device, executor, mlflow_uri)
    code_hash = _bnnlib_hash()
    plans = [
        plan_chapter(c, settings, profile_name=profile, runner=runner, code_hash=code_hash, root=root)
        for c in chapters
    ]
    summary = _run_plans(plans, root, force, jobs, runner["executor"], dry_run=dry_run, html=True,
                         about={"command": "book", "profile": profile, "jobs": jobs, "executor": runner["executor"]})
    if dry_run:
        return None
    index = build_html(root)
    _finish(summary, plans, root)
    return index


def _finish(summary: dict | None, plans: list[Plan], root: Path) -> None:
    """Print the build's summary, with its whole wall time, and add that to its file."""
    if summary is None:
        CONSOLE.line("[summary] nothing was executed")
        return
    clock, estimate = summary.pop("_clock"), summary.pop("_estimate")
    done = summaries.finish(summary, time.perf_counter() - clock, estimate)
    path = summaries.write_summary(_summary_path(root, plans), done)
    for line in summaries.summary_lines(done):
        CONSOLE.line(line)
    CONSOLE.line(f"[summary] written to {_relative(path, root)}")


def run_chapter(
    chapter: str,
    profile: str,
    overrides: Mapping[str, Any] | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    jobs: int = 1,
    build: bool = True,
    *,
    root: Path | str | None = None,
    device: str = "auto",
    executor: str = "local",
    mlflow_uri: str | None = None,
    dry_run: bool = False,
) -> Path | None:
    """Execute one chapter under `profile` with `overrides` (names it declares), then rebuild
    the HTML unless `build` is false. Returns index.html, or the executed notebook. Prints the
    plan first; with `dry_run`, only that (returns None)."""
    root = _root(root)
    settings = load_profile(profile, root)
    _check_profile_chapters(settings, list_chapters(root), profile)
    _check_data_dir_used(settings, data_dir, profile)
    target = get_chapter(chapter, root)
    runner = _runner_values(data_dir, force, jobs, device, executor, mlflow_uri)
    plan = plan_chapter(target, settings, profile_name=profile, overrides=overrides, runner=runner, root=root)
    summary = _run_plans([plan], root, force, jobs, runner["executor"], dry_run=dry_run, html=build,
                         about={"command": f"run {chapter}", "profile": profile, "jobs": jobs,
                                "executor": runner["executor"]})
    if dry_run:
        return None
    out = build_html(root) if build else target.notebook
    _finish(summary, [plan], root)
    return out


def _check_profile_chapters(settings: Mapping, chapters: list[Chapter], profile: str) -> None:
    names = {c.name for c in chapters}
    for name in settings["chapters"]:
        if name not in names:
            raise BnnlibError(
                f"profile {profile!r} has settings for chapter {name!r}, which is not in {TOC}; "
                f"chapters: {', '.join(sorted(names)) or '(none)'}"
            )
