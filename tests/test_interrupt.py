"""SIGTERM and Ctrl-C during the warm-up: exit 143 / 130, and nothing the run started survives.

The run is the real command on a copy of the book (quick profile, two warm-up workers), killed
once its workers exist; then every process it had started must be gone (workers, the resource
tracker), with no partial notebook, staging folder or traceback left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from test_cli import project  # noqa: F401  (the fixture: a copy of the book in tmp_path)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _send(run: subprocess.Popen, signum: int) -> None:
    """As Ctrl-C in a terminal (the whole process group, a kernel too) or as `kill` or a CI
    time-out (the command only)."""
    if signum == signal.SIGINT:
        os.killpg(run.pid, signum)
    else:
        run.send_signal(signum)


def _reap(run: subprocess.Popen, seen: list[psutil.Process]) -> list[tuple]:
    """Kill the run if it still lives, then every process it had started that outlived it (not
    left to the next tests); return those as (pid, command line): what the run left behind."""
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    _, alive = psutil.wait_procs(seen, timeout=10)
    left = [(p.pid, _cmdline(p)) for p in alive]
    for process in alive:
        process.kill()
    return left


def interrupt_when_started(command: list[str], project, signum: int, processes: int,
                           settle: float = 0.0) -> tuple[int, str, list[tuple]]:
    """Run `command` in `project`, send `signum` as a terminal would once `processes` of its
    multiprocessing children run (and `settle` seconds more), and reap what is left: (exit
    status, stderr, the processes it left behind)."""
    run = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    seen: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            seen = _descendants(run.pid)
            if len([p for p in seen if "multiprocessing" in " ".join(_cmdline(p))]) >= processes:
                break
            time.sleep(0.5)
        assert run.poll() is None, run.communicate()
        time.sleep(settle)
        seen = _descendants(run.pid) or seen
        _send(run, signum)
        _, err = run.communicate(timeout=120)
    finally:
        left = _reap(run, seen)
    return run.returncode, err, left


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_warm_up_leaves_no_process_behind(project, signum, status):  # noqa: F811
    command = [sys.executable, "-c", "import sys; from bnnlib.build.cli import main; sys.exit(main())",
               "run", "burn_eras", "--profile", "quick", "--jobs", "2", "--no-build",
               "-p", "epochs", "1", "-p", "draws", "5"]
    returncode, err, left = interrupt_when_started(command, project, signum, processes=3)  # 2 workers, tracker
    assert returncode == status, err
    assert left == []
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("bnnlib: ")
    assert not list((project / "_build").glob("executing/*.ipynb"))
    assert not list((project / "_build").rglob(".*staging-*"))


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


SLEEPER = '''\
# %% tags=["parameters"]
results_dir = "_build/results/sleeper"

# %%
import pathlib, time
from bnnlib.infra import results
out = results.chapter_folder(results_dir, "sleeper")
out.mkdir(parents=True, exist_ok=True)
(out / "partial.txt").write_text("written before the signal")
pathlib.Path("kernel-started").write_text("yes")
time.sleep(600)
'''


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_a_chapter_executes_stops_its_kernel_and_removes_partial_files(tmp_path, signum, status):
    from test_runner import make_project

    root = make_project(tmp_path, {"sleeper": SLEEPER}, "description: d\ncommon: {}\nchapters: {}\n")
    command = [sys.executable, "-c", "import sys; from bnnlib.build.cli import main; sys.exit(main())",
               "run", "sleeper", "--profile", "tiny", "--no-build"]
    run = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    seen: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None and not (root / "kernel-started").exists():
            time.sleep(0.5)
        seen = _descendants(run.pid)
        assert run.poll() is None and seen, run.communicate()
        time.sleep(1)
        _send(run, signum)
        out, err = run.communicate(timeout=120)
    finally:
        left = _reap(run, seen)
    assert run.returncode == status, (out, err)
    assert left == []  # the kernel included
    assert not (root / "_build" / "executing" / "sleeper.ipynb").exists()
    assert not (root / "_build" / "results" / "sleeper").exists()  # nothing published
    assert not (root / "_build" / "papermill").exists()  # it wrote into its staging folder
    assert not list((root / "_build" / "results").glob(".*staging-*"))
    assert not (root / "book" / "sleeper.ipynb").exists()


SWALLOWS = '''
import pathlib, subprocess, sys, time
from bnnlib.infra import interrupt
interrupt.GRACE = 1.0
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pathlib.Path("child.pid").write_text(str(child.pid))
partial = pathlib.Path("partial.txt")
partial.write_text("half")
with interrupt.handle_signals(), interrupt.cleanup_on_stop(lambda: partial.unlink()):
    pathlib.Path("ready").write_text("yes")
    while True:  # a library that catches everything, as an event loop logging callback errors
        try:
            time.sleep(0.1)
        except BaseException:
            pass
'''


def test_a_swallowed_signal_still_stops_the_program_cleans_up_and_exits_143(tmp_path):
    run = subprocess.Popen([sys.executable, "-c", SWALLOWS], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    child = int((tmp_path / "child.pid").read_text())
    assert run.returncode == 143, err
    assert not (tmp_path / "partial.txt").exists()  # the registered clean-up ran
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert err.strip().endswith("bnnlib: terminated; partial files removed, processes stopped")
