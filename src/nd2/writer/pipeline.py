"""Shared machinery of the writers: parallel encoding in order, batches.

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
#: Bytes of frames per batch: small frames are encoded (one task of the pool)
#: and written (one series of system calls) in batches of about this size.
BATCH_BYTES = 1 << 20


def frames_per_batch(frame_bytes: int) -> int:
    """Frames of *frame_bytes* bytes in a batch of about :data:`BATCH_BYTES` (at least 1)."""
    return max(1, BATCH_BYTES // max(frame_bytes, 1))


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


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of *size* consecutive items (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
