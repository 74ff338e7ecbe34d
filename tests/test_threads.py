"""Single-threaded torch workers (graphrec.utils.threads)."""
from __future__ import annotations

import threading

import pytest
import torch

from graphrec.utils.threads import for_each_on_workers, single_thread_workers


def test_every_item_runs_once_on_a_worker_with_one_intra_op_thread(intra_op_threads):
    intra_op_threads(2)
    seen, lock = [], threading.Lock()

    def fn(worker: int, item: int) -> None:
        with lock:
            seen.append((item, worker, torch.get_num_threads(), threading.current_thread().name))

    for_each_on_workers(fn, list(range(50)), 3)
    assert sorted(item for item, *_ in seen) == list(range(50))
    assert {worker for _, worker, *_ in seen} <= {0, 1, 2}
    assert {threads for _, _, threads, _ in seen} == {1}
    assert all(name.startswith("graphrec-worker") for *_, name in seen)
    # the caller keeps its count, and so does a thread started afterwards
    assert torch.get_num_threads() == 2
    later = []
    t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert later == [2]


def test_fewer_items_than_workers_use_as_many_workers_as_items():
    seen = []
    for_each_on_workers(lambda worker, item: seen.append(worker), ["a", "b"], 4)
    assert len(seen) == 2 and set(seen) <= {0, 1}   # worker names stay below the number of items
    for_each_on_workers(lambda worker, item: seen.append(worker), [], 4)   # nothing to do


def test_workers_run_side_by_side():
    """Two items that each wait for the other finish only if two workers hold them at once."""
    both = threading.Barrier(2, timeout=10)
    for_each_on_workers(lambda worker, item: both.wait(), [0, 1], 2)


def test_the_pool_is_made_once_per_size():
    assert single_thread_workers(2) is single_thread_workers(2)
    assert single_thread_workers(1) is not single_thread_workers(2)
    with pytest.raises(ValueError, match="n_workers"):
        single_thread_workers(0)
    with pytest.raises(TypeError, match="n_workers must be an integer"):
        for_each_on_workers(lambda worker, item: None, [1], 2.5)


def test_an_exception_stops_the_work_and_reaches_the_caller():
    done = []

    def fn(worker: int, item: int) -> None:
        if item == 3:
            raise KeyError("item 3")
        done.append(item)

    with pytest.raises(KeyError, match="item 3"):
        for_each_on_workers(fn, list(range(1000)), 2)
    assert len(done) < 1000 - 1   # the workers stopped taking items
