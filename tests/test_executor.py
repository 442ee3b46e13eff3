"""Executors: the same results in order in-process and in processes; failures name their item."""

from __future__ import annotations

import pytest

from bnnlib.errors import BnnlibError
from bnnlib.infra.executor import (
    InProcessExecutor,
    ProcessExecutor,
    make_executor,
    threads_per_worker,
)


def seeded_fit(item: tuple[int, float]) -> dict:
    """A small, seeded torch computation standing in for a fit. Its numbers are small integers
    times a power of two, so every product and sum is exact in float64: the same bits in any
    process, with any thread count or BLAS, and what is compared is only where and in which order
    the items ran."""
    import torch

    seed, scale = item
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(-9, 10, (50, 4), generator=generator, dtype=torch.float64) * scale
    return {"seed": seed, "value": float((x @ x.T).trace())}


def torch_threads(item: object) -> int:
    import torch

    return torch.get_num_threads()


def fail_on_three(item: int) -> int:
    if item == 3:
        raise ValueError(f"cannot fit {item}")
    return item * 10


def user_error_on_two(item: int) -> int:
    if item == 2:
        raise BnnlibError("prior 'cauchy' is unknown; choose one of: 'flat', 'normal'")
    return item


ITEMS = [(seed, 0.5**seed) for seed in (5, 1, 4, 2, 3)]


@pytest.fixture(scope="module")
def two_processes():
    with ProcessExecutor(2) as executor:
        yield executor


def test_in_process_and_processes_agree_in_order(two_processes):
    here = InProcessExecutor().map(seeded_fit, ITEMS)
    there = two_processes.map(seeded_fit, ITEMS)
    assert [r["seed"] for r in here] == [5, 1, 4, 2, 3]
    assert there == here


def test_progress_counts_every_item(two_processes):
    for executor in (InProcessExecutor(progress=None), two_processes):
        seen = []
        executor.progress = lambda done, total: seen.append((done, total))
        executor.map(fail_on_three, [1, 2, 4])
        assert seen == [(1, 3), (2, 3), (3, 3)]


def test_workers_share_the_cores(two_processes):
    threads = two_processes.map(torch_threads, [None, None])
    assert threads == [threads_per_worker(2)] * 2
    assert threads_per_worker(2, cpus=16) == 8
    assert threads_per_worker(4, cpus=2) == 1


@pytest.mark.parametrize("executor", ["in-process", "processes"])
def test_failure_names_the_item(executor, two_processes):
    runner = InProcessExecutor() if executor == "in-process" else two_processes
    with pytest.raises(ValueError, match="cannot fit 3") as info:
        runner.map(fail_on_three, [1, 2, 3, 4])
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "fail_on_three failed on item 2 (3)" in notes


@pytest.mark.parametrize("executor", ["in-process", "processes"])
def test_user_error_stays_a_bnnlib_error(executor, two_processes):
    runner = InProcessExecutor() if executor == "in-process" else two_processes
    with pytest.raises(BnnlibError) as info:
        runner.map(user_error_on_two, [1, 2])
    message = str(info.value)
    assert message.startswith("user_error_on_two failed on item 1 (2): prior 'cauchy' is unknown")
    assert isinstance(info.value.__cause__, BnnlibError)


def test_unpicklable_function_is_refused_before_starting(two_processes):
    with pytest.raises(BnnlibError, match="--jobs 1"):
        two_processes.map(lambda x: x, [1, 2])


def test_empty_items(two_processes):
    assert two_processes.map(seeded_fit, []) == []
    assert InProcessExecutor().map(seeded_fit, []) == []


@pytest.mark.parametrize("jobs", [0, -1, 65, 2.0, True, "2", None])
def test_bad_jobs(jobs):
    with pytest.raises(BnnlibError, match="from 1 to 64"):
        make_executor(jobs)
    with pytest.raises(BnnlibError, match="from 1 to 64"):
        ProcessExecutor(jobs)


def test_make_executor_picks_the_kind():
    assert isinstance(make_executor(1), InProcessExecutor)
    executor = make_executor(3)
    assert isinstance(executor, ProcessExecutor) and executor.jobs == 3
    assert isinstance(make_executor(64), ProcessExecutor)


@pytest.mark.parametrize(("cpus", "jobs"), [(1, 1), (2, 2), (4, 4), (64, 4)])
def test_default_jobs_is_one_worker_per_core_up_to_a_cap(cpus, jobs):
    from bnnlib.infra.executor import default_jobs

    assert default_jobs(cpus) == jobs


def test_an_item_of_model_specs_is_named_by_its_models_not_dumped():
    from dataclasses import dataclass

    from bnnlib.infra.executor import describe

    @dataclass
    class Spec:  # as bnnlib.evaluate.study.ModelSpec: a name and many settings
        name: str
        hidden: tuple = (128, 64, 64)
        settings: str = "x" * 300

    assert describe(Spec("bnn_flat")) == "bnn_flat"
    assert describe(("data", [Spec("flat"), Spec("laplace")], "cache", False)) == "flat, laplace"
    assert len(describe(list(range(1000)))) <= 80


def test_an_interrupt_stops_the_workers_at_once():
    """Leaving the block on Ctrl-C or SIGTERM (a KeyboardInterrupt) terminates the workers
    instead of waiting for their running items."""
    import time

    executor = ProcessExecutor(2)
    executor.map(seeded_fit, ITEMS[:2])  # the workers are started
    processes = []
    with pytest.raises(KeyboardInterrupt):
        with executor:
            executor._pool.submit(time.sleep, 600)
            processes = list(executor._pool._processes.values())
            raise KeyboardInterrupt
    from multiprocessing.connection import wait as wait_for

    # a process has ended when its sentinel is ready (is_alive() can miss an exit that the pool's
    # own thread reaped first)
    ended = wait_for([p.sentinel for p in processes], timeout=0)
    assert processes and len(ended) == len(processes)
