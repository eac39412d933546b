"""One way to run per-clip work on all cores, with a progress bar.

Uses the ``fork`` start method where the platform has it (Linux): workers inherit the parent's
imports, so nothing depends on a ``__main__`` guard in the caller's script or notebook; the
workers only run numpy/soundfile/soxr code. Elsewhere ``spawn`` is used. Small jobs run in the
calling process (starting workers would cost more than it saves).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from paperlib.progress import progress_bar  # text bars: tqdm.auto warns without ipywidgets

T = TypeVar("T")
R = TypeVar("R")
MIN_TASKS_PER_WORKER = 4
"""Below ``workers * MIN_TASKS_PER_WORKER`` tasks, work runs serially in this process."""


def resolve_workers(workers: int) -> int:
    """``workers`` itself, or one per CPU core (the process's affinity) when 0."""
    if workers > 0:
        return workers
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def imap(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int = 0,
    ordered: bool = True,
    desc: str = "",
    unit: str = "clip",
    progress: bool = True,
) -> Iterator[R]:
    """Apply ``fn`` to every task on ``workers`` processes (0: all cores), yielding results.

    ``ordered`` yields in task order (else as they finish). A worker's exception is re-raised
    here, unchanged, and the pool is stopped.
    """
    workers = resolve_workers(workers)
    bar = progress_bar(progress=progress, total=len(tasks), desc=desc, unit=unit)
    try:
        if workers <= 1 or len(tasks) < workers * MIN_TASKS_PER_WORKER:
            results: Iterable[R] = map(fn, tasks)
            for result in results:
                bar.update()
                yield result
            return
        chunksize = max(1, min(8, len(tasks) // (workers * 8)))
        with _context().Pool(workers) as pool:
            mapper = pool.imap if ordered else pool.imap_unordered
            for result in mapper(fn, tasks, chunksize=chunksize):
                bar.update()
                yield result
    finally:
        bar.close()
