"""The cost model and the schedule of a build's estimate, against hand-computed cases; and the
build summary's arithmetic. Nothing here times anything: rates are given, not measured."""

from __future__ import annotations

import json
import math

import pytest

from bnnlib.build import estimate as est
from bnnlib.build import summary as summaries
from bnnlib.studies import registry as study

RATES = est.Rates({"bnn": 2.0, "point": 1.0}, forward=0.5, source="given")  # seconds per multiply-add


def cost(label: str, fit: float, ranges=(), kind: str = "bnn", trace: float = 0.0) -> est.FitCost:
    return est.FitCost(label, ("ch",), kind, fit, trace, tuple(ranges))


@pytest.mark.parametrize("durations, workers, expected", [
    ([], 2, 0.0),
    ([5.0], 3, 5.0),
    ([3.0, 3.0, 2.0, 2.0, 2.0], 2, 7.0),  # 3 | 3 -> 5 | 3 -> 5 | 5 -> 7 | 5 (the best schedule is 6: LPT is not optimal)
    ([7.0, 5.0, 4.0, 3.0], 2, 10.0),  # 7 | 5, 4 -> 7 | 9, 3 -> 10 | 9
    ([1.0, 2.0, 3.0], 1, 6.0),  # one worker: the sum
    ([4.0, 4.0, 4.0], 5, 4.0),  # more workers than jobs: the longest
])
def test_longest_first_list_scheduling(durations, workers, expected):
    assert est.makespan(durations, workers) == expected


def test_a_schedule_needs_a_worker():
    with pytest.raises(ValueError, match="at least 1"):
        est.makespan([1.0], 0)


def test_training_and_forward_multiply_adds():
    assert est.training_macs(steps=10, batch_size=4, macs_per_row=100, networks=2) == 3 * 10 * 4 * 100 * 2
    assert est.forward_macs(passes=1000, rows=50, macs_per_row=7) == 350_000


def test_a_fit_is_priced_by_its_kind_and_its_draws_by_the_forward_rate():
    bnn = cost("a", fit=10, ranges=(4, 2), trace=2)
    point = cost("b", fit=10, kind="point")
    assert bnn.fit_seconds(RATES) == 10 * 2.0 + 2 * 0.5
    assert bnn.range_seconds(RATES) == [2.0, 1.0]
    assert bnn.seconds(RATES) == 24.0
    assert point.fit_seconds(RATES) == 10.0
    assert est.fit_kind("ensemble") == est.fit_kind("dropout") == "point"


def test_the_warm_up_schedules_fits_then_ranges_then_the_chapters():
    fits = [cost("a", fit=3, ranges=(2, 2)), cost("b", fit=2, ranges=(2,)), cost("c", fit=1, kind="point")]
    # fit seconds 6, 4, 1 on two workers: 6 | 4 -> 6 | 5; ranges 1, 1, 1: 1 | 1 -> 2 | 1
    out = est.estimate(fits, RATES, workers=2, chapters=3, chapter_seconds=10, html_seconds=5, pages=1)
    assert (out.fit_cpu, out.score_cpu) == (11.0, 3.0)
    assert (out.warmup_fits, out.warmup_ranges) == (6.0, 2.0)
    assert out.chapters == 20.0  # three chapters of 10 s, two at a time
    assert (out.pages, out.html) == (10.0, 5.0)
    assert out.wall == 6 + 2 + 20 + 10 + 5 and out.cpu == 14.0
    assert out.per_fit == {"a": 6.0, "b": 4.0, "c": 1.0}


def test_fixed_costs_add_per_fit_per_range_and_once_per_worker():
    rates = est.Rates({"bnn": 2.0}, forward=0.5, fit_overhead=1.0, range_overhead=0.25, worker_start=4.0)
    fits = [cost("a", fit=3, ranges=(2, 2)), cost("b", fit=0, ranges=(2,))]  # b is fitted: only scored
    assert fits[0].fit_seconds(rates) == 7.0 and fits[1].fit_seconds(rates) == 0.0
    assert fits[0].range_seconds(rates) == [1.25, 1.25]
    out = est.estimate(fits, rates, workers=2, chapters=0, html=False)
    assert out.warmup_fits == 4.0 + 7.0 and out.warmup_ranges == 2.5  # 1.25 | 1.25 -> 2.5 | 1.25
    assert out.cpu == 7.0 + 3 * 1.25


def test_without_a_warm_up_each_chapter_computes_its_own_models_in_turn():
    fits = [cost("a", fit=3, ranges=(2, 2)), cost("b", fit=2, ranges=(2,))]
    out = est.estimate(fits, RATES, workers=1, chapters=2, warm_up=False, html=False, chapter_seconds=10)
    assert (out.warmup_fits, out.warmup_ranges, out.html) == (0.0, 0.0, 0.0)
    assert out.chapters == 6 + 2 + 4 + 1 + 20
    assert out.wall == out.chapters


def test_minutes_and_ratio_for_people():
    assert est.minutes(45) == "45 s" and est.minutes(750) == "12.5 min" and est.minutes(7560) == "2.1 h"
    assert est.ratio(13.0, 10.0) == pytest.approx(1.3)
    assert math.isnan(est.ratio(1.0, 0.0))


def test_the_summary_counts_what_the_cache_recorded_since_the_start(tmp_path):
    def entry(kind: str, key: str, seconds: float, created: str, spec=None) -> None:
        folder = tmp_path / kind / key
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"kind": kind, "key": key, "compute_seconds": seconds,
                                                      "created": created, "spec": spec or {}}))

    entry("fit", "old", 100.0, "2026-01-01T00:00:00+00:00")  # an earlier build's: not counted
    entry("fit", "k1", 30.0, "2026-01-02T00:00:05+00:00")
    entry("fit", "k2", 10.0, "2026-01-02T00:00:06+00:00", {"method": "bnn", "prior": "flat", "hidden": [8]})
    entry("score_range", "r1", 4.0, "2026-01-02T00:00:07+00:00")
    entry("scores", "s1", 1.0, "2026-01-02T00:00:08+00:00")
    records = summaries.created_since([tmp_path, str(tmp_path)], "2026-01-02T00:00:00+00:00")
    assert sorted(r["key"] for r in records) == ["k1", "k2", "r1", "s1"]  # one folder listed twice: once
    estimate = est.Estimate(36.0, 6.0, 30.0, 4.0, 20.0, 5.0, 2, pages=0.0, per_fit={"normal (ensembles)": 33.0})
    summary = summaries.build_summary("2026-01-02T00:00:00+00:00", 50.0, estimate, records,
                                      {"k1": ("normal", ["ensembles"])}, ["ensembles"], {"profile": "quick"})
    assert (summary["fit_cpu_s"], summary["score_cpu_s"]) == (40.0, 5.0)
    assert (summary["fits_computed"], summary["scorings_computed"]) == (2, 2)
    assert [row["fit"] for row in summary["top_fits"]] == ["normal", "bnn flat 8"]  # the unplanned fit by its spec
    assert summary["top_fits"][0]["estimated_seconds"] == 33.0
    assert summary["estimated_wall_s"] == 54.0 and summary["wall_ratio"] == pytest.approx(54 / 50, abs=1e-3)
    assert summary["cpu_ratio"] == pytest.approx(42 / 45, abs=1e-3)
    done = summaries.finish(summary, 80.0, estimate)
    assert done["total_estimated_wall_s"] == 59.0 and done["total_wall_ratio"] == pytest.approx(59 / 80, abs=1e-3)
    lines = summaries.summary_lines(done)
    assert lines[0].startswith("[summary] wall time 80 s (estimated 59 s")
    assert any("normal (ensembles): 30 s, estimated 33 s" in line for line in lines)
    path = summaries.write_summary(tmp_path / "out" / study.SUMMARY_FILE, done)
    assert study.summary_stamp(path) == "2026-01-02T00:00:00+00:00" and study.summary_stamp(tmp_path / "x") == ""
    figures, top = study.build_summary_tables(json.loads(path.read_text()))
    assert figures.loc["wall time, whole build (s)", "measured"] == 80.0
    assert list(top["fit"]) == ["normal", "bnn flat 8"]
    empty, none = study.build_summary_tables(None)
    assert empty.empty and none.empty
