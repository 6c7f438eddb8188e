"""Shared machinery of the writers: parallel encoding in order.

:func:`ordered_map` runs a function (zlib compression of frames) on a thread
pool, yielding results in input order with a bounded number in flight, so memory
stays at a few frames while every core works (zlib releases the GIL).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Upper bound on the bytes of frames in flight in a thread pool.
MEMORY_BUDGET = 256 << 20


def pool_size(item_bytes: int, threads: int | None = None) -> tuple[int, int]:
    """(worker threads, items in flight) for items of about *item_bytes* bytes."""
    workers = threads or os.cpu_count() or 1
    window = max(2, min(2 * workers, MEMORY_BUDGET // max(item_bytes, 1)))
    return min(workers, window), window


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, window: int
) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in the order of *items*, computed on *workers* threads.

    At most *window* items are submitted ahead of the one being yielded.  An
    exception of *fn* is raised when its item's turn comes; the remaining work
    is cancelled.
    """
    pending: deque[tuple[T, Future[R]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nd2-encode")
    try:
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
