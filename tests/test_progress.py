"""Progress while a build works: events from other processes through a file, a line per finished
fit (name, chapter, seconds, verdict), a heartbeat when nothing else was printed, and lines that
do not cut the runner's "[n/N] chapter ... 12.3 s". Nothing here depends on how long anything
takes: the heartbeat is tested with a zero interval."""

from __future__ import annotations

import json
import os
import sys

import pytest

from bnnlib.build import progress, warmup
from bnnlib.data import open_dataset
from bnnlib.evaluate.reporting import evaluate_reported
from bnnlib.evaluate.study import ModelSpec
from bnnlib.infra import progress as channel
from bnnlib.infra.cache import Cache
from bnnlib.report.chapter import dataset_arguments

sys.path.insert(0, os.path.dirname(__file__))
from test_warmup import chapter_params  # noqa: E402


def test_events_travel_through_the_file_only_inside_a_channel(tmp_path, monkeypatch):
    monkeypatch.delenv(channel.PROGRESS_ENV, raising=False)
    channel.emit("fit", unit=0)  # no channel: nothing, and no error
    path = tmp_path / "p.jsonl"
    with channel.channel(path):
        assert os.environ[channel.PROGRESS_ENV] == str(path)
        channel.emit("fit", unit=1, seconds=2.5)
        reader = channel.Reader(path)
        with open(path, "a") as file:
            file.write('{"event": "range", "un')  # a line still being written
        [event] = reader.read()
        assert (event["event"], event["unit"], event["seconds"]) == ("fit", 1, 2.5)
        with open(path, "a") as file:
            file.write('it": 3}\n')
        assert [e["unit"] for e in reader.read()] == [3]
        assert reader.read() == []
    assert channel.PROGRESS_ENV not in os.environ


def test_a_line_printed_meanwhile_does_not_cut_a_chapters_line(capsys):
    console = progress.Console()
    console.begin("[1/2] ensembles ...")
    console.line("[ensembles] fit 1/3 flat: 12 s, converged")
    console.end("30.0 s")
    console.begin("[2/2] burn_eras ...")
    console.end("4.0 s")
    assert [line.rstrip() for line in capsys.readouterr().out.splitlines()] == [
        "[1/2] ensembles ...", "[ensembles] fit 1/3 flat: 12 s, converged", "[1/2] ensembles ... 30.0 s",
        "[2/2] burn_eras ... 4.0 s"]


def test_the_monitor_hands_events_on_and_beats_when_silent(tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"event": "fit", "unit": 0}) + "\n")
    console = progress.Console()
    monitor = progress.Monitor(path, console, heartbeat=0.0, terminal=False)
    seen = []
    monitor.handlers.append(seen.append)
    monitor.status = lambda: "warm-up fits: 1/4 done"
    monitor.poll()
    assert seen == [{"event": "fit", "unit": 0}]
    assert "[progress] 0 s since the start: warm-up fits: 1/4 done" in capsys.readouterr().out
    quiet = progress.Monitor(path, progress.Console(), heartbeat=3600.0, terminal=False)
    quiet.poll()
    assert capsys.readouterr().out == ""  # something was printed less than an hour ago
    silent = progress.Monitor(path, progress.Console(), heartbeat=0.0, terminal=False)
    silent.status = None  # another monitor (the warm-up's) gives the heartbeat meanwhile
    silent.poll()
    assert capsys.readouterr().out == ""


def test_a_fit_line_names_the_fit_its_chapters_seconds_and_verdict():
    assert progress.fit_line("flat", ["ensembles", "burn_eras"], 123.4, "converged") == \
        "flat (ensembles, burn_eras): 123 s, converged"
    assert progress.fit_line("baseline", ["ensembles"], 5.0, "") == "baseline (ensembles): 5.0 s, no verdict (a point network)"
    assert progress.fit_line("h4", [], None, "", "ValueError: x") == "h4: failed: ValueError: x"


def test_a_chapters_own_fits_are_reported_one_by_one(tmp_path):
    params = warmup.absolute_paths(chapter_params("burn_eras"), tmp_path)
    dataset = open_dataset(**dataset_arguments(params))
    specs = [ModelSpec("baseline", method="baseline", hidden=(8,), epochs=1, batch_size=512),
             ModelSpec("best", method="baseline", hidden=(8,), epochs=1, batch_size=512, best_epoch=True),
             ModelSpec("normal", prior="normal", hidden=(8,), epochs=1, batch_size=512, draws=3)]
    path = tmp_path / "p.jsonl"
    with channel.channel(path):
        fitted = evaluate_reported("burn_eras", specs, dataset, Cache(params["cache_dir"]))
        first = channel.Reader(path).read()
        evaluate_reported("burn_eras", specs, dataset, Cache(params["cache_dir"]))
        again = channel.Reader(path).read()[len(first):]
    assert list(fitted) == ["baseline", "best", "normal"]
    assert [(e["name"], e["done"], e["total"]) for e in first] == [("baseline", 1, 2), ("best", 1, 2), ("normal", 2, 2)]
    assert {e["chapter"] for e in first} == {"burn_eras"}
    assert first[2]["verdict"] in ("converged", "still moving", "diverging") and first[0]["verdict"] == ""
    assert all(e["seconds"] is not None and e["cached"] is False for e in first)
    assert all(e["cached"] is True for e in again)


def test_the_warm_up_prints_a_line_per_fit_with_its_verdict(tmp_path, capsys):
    jobs = warmup.plan([("burn_eras", chapter_params("burn_eras", priors=["normal"]))], tmp_path)
    assert warmup.warm(jobs, workers=1).failed == {}
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[warm-up] fit ")]
    assert len(lines) == len(jobs)
    assert any(line.startswith(f"[warm-up] fit 1/{len(jobs)} ") for line in lines)
    normal = next(line for line in lines if " normal, normal_converged (burn_eras): " in line)  # one trajectory
    assert normal.endswith(("converged", "still moving", "diverging"))
    assert "[warm-up] done in " in out


def test_the_weighted_bar_counts_its_share_without_a_terminal():
    """In a log (no terminal) tqdm is disabled and counts nothing: the status line's share of the
    work and its ETA come from the bar's own count."""
    from bnnlib.build.progress import WeightedBar

    bar = WeightedBar(10.0, "warm-up", terminal=False)
    bar.advance(2.5)
    bar.advance(2.5)
    assert bar.share == 0.5
    bar.advance(20.0)
    assert bar.share == 1.0
    bar.close()
