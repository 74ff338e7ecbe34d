"""Worker threads whose torch operations each run on one intra-op thread.

Many small independent pieces of work (blocks of whole graphs, say) run faster side by side, one
per core, than one after another with every small product split over all cores: splitting a
product of a thousand rows costs a synchronisation of the cores per call. torch keeps its
intra-op thread count per thread (OpenMP's and MKL's settings are thread-local), so each worker
sets it to one when it starts; the calling thread's count is left as it was. torch operations and
graphrec's compiled passes release the GIL, so the workers run in parallel.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import torch

from graphrec.utils.validation import check_int

__all__ = ["for_each_on_workers", "single_thread_workers"]

T = TypeVar("T")

_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def single_thread_workers(n_workers: int) -> ThreadPoolExecutor:
    """A pool of ``n_workers`` threads that run torch on one intra-op thread each (made once per size).

    ``torch.set_num_threads`` also sets the count that threads started later begin with, so it is
    restored once every worker has set its own.
    """
    n_workers = check_int(n_workers, "n_workers", low=1)
    with _LOCK:
        if n_workers not in _POOLS:
            threads = torch.get_num_threads()
            ready = threading.Barrier(n_workers + 1)

            def start() -> None:
                torch.get_num_threads()   # torch's lazy per-thread setup, which would undo the next line
                torch.set_num_threads(1)
                ready.wait()

            pool = ThreadPoolExecutor(n_workers, thread_name_prefix="graphrec-worker", initializer=start)
            # a worker blocks in ``start`` until all have started, so no worker is idle and
            # every submit starts a new thread
            for _ in range(n_workers):
                pool.submit(int)
            ready.wait()
            torch.set_num_threads(threads)
            _POOLS[n_workers] = pool
        return _POOLS[n_workers]


def for_each_on_workers(fn: Callable[[int, T], None], items: Sequence[T], n_workers: int) -> None:
    """``fn(worker, item)`` for every item, on the pool of ``n_workers`` single-threaded workers.

    ``min(n_workers, len(items))`` workers take the items in order, each the next one when it is
    free; ``worker``, in ``[0, min(n_workers, len(items)))``, names the one calling ``fn``, so ``fn``
    can keep per-worker scratch space. The first exception raised is re-raised here after every
    worker has stopped.
    """
    pool = single_thread_workers(n_workers)
    position = iter(range(len(items)))
    lock = threading.Lock()
    failed = threading.Event()

    def work(worker: int) -> None:
        while not failed.is_set():
            with lock:
                i = next(position, None)
            if i is None:
                return
            try:
                fn(worker, items[i])
            except BaseException:
                failed.set()
                raise

    futures = [pool.submit(work, w) for w in range(min(n_workers, len(items)))]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def _forget_pools_in_child() -> None:   # a forked child has none of the parent's threads
    global _LOCK
    _POOLS.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)
