"""The engines of this machine: ``serial``, ``processes`` (CPU pool) and ``gpus`` (GPU pool).

See :mod:`paperlib.experiment.engine` for the interface. The two pools start their workers
with ``spawn`` and end them with the grid's process (:func:`exit_with_parent`); finished cells
are read from the cache in this process and only the others are submitted.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paperlib.config import Profile
from paperlib.experiment.cache import split_complete
from paperlib.experiment.cells import Cell
from paperlib.experiment.engine import EngineError
from paperlib.progress import progress_bar
from paperlib.run.result import RunResult, load_run
from paperlib.run.train import train_run

__all__ = ["GpuPool", "ProcessPool", "Serial", "cuda_devices", "exit_with_parent"]


def cuda_devices(profile: Profile) -> int:
    """CUDA GPUs this machine gives the grid: 0 when ``train.device`` is ``cpu``."""
    return torch.cuda.device_count() if profile.train.device != "cpu" else 0


def exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the process that started the grid dies.

    Without it, killing ``make book`` or a grid (even with ``kill -9``) leaves its workers
    training on, unseen, for as long as their cells last. Linux only (``prctl``); elsewhere a
    no-op. ``parent`` is the pid of the grid's process, to catch a parent that died before
    the signal was armed.
    """
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # already orphaned (adopted by init or a subreaper)
        os._exit(1)


@dataclass(frozen=True)
class Serial:
    """One cell after another in this process, on ``train.device``."""

    name: str = "serial"

    def run(
        self, profile: Profile, workspace: Path, cells: Sequence[Cell], *, progress: bool,
        wait: bool,
    ) -> list[RunResult]:  # fmt: skip
        results = []
        bar = progress_bar(progress=progress, total=len(cells), desc="grid", unit="run")
        try:
            for cell in cells:
                results.append(
                    train_run(profile, workspace, progress=progress, wait=wait, **cell.kwargs())
                )
                bar.update()
        finally:
            bar.close()
        return results


_WORKER_DEVICE: str = "cpu"
"""The device of this pool worker process (set once by :func:`_bind_device`)."""


def _bind_device(queue: Any, parent: int) -> None:
    global _WORKER_DEVICE
    exit_with_parent(parent)  # a killed grid must not leave GPU workers training either
    _WORKER_DEVICE = queue.get()  # one GPU per worker process, for its lifetime


def _train_in_worker(profile: Profile, workspace: Path, cell: Cell, wait: bool) -> Path:
    """Body of one pool task: train the cell on this worker's device; its run directory."""
    result = train_run(
        profile, workspace, device=_WORKER_DEVICE, progress=False, wait=wait, **cell.kwargs()
    )
    return result.run_dir


def _run_pool(
    profile: Profile,
    workspace: Path,
    cells: Sequence[Cell],
    *,
    workers: int,
    initializer: Any,
    initargs: tuple[Any, ...],
    progress: bool,
    wait: bool,
) -> list[RunResult]:
    """Train the cells not yet done in a ``spawn`` pool of ``workers``, the costliest first.

    Results come back in the order of ``cells``; a failing cell raises after the pool stopped.
    """
    done, to_do = split_complete(profile, workspace, cells)  # finished cells stay here
    bar = progress_bar(
        progress=progress, total=len(cells), initial=len(done), desc="grid", unit="run"
    )
    context = multiprocessing.get_context("spawn")
    try:
        with concurrent.futures.ProcessPoolExecutor(
            min(workers, max(len(to_do), 1)),
            mp_context=context,
            initializer=initializer,
            initargs=initargs,
        ) as pool:
            futures = {
                pool.submit(_train_in_worker, profile, workspace, cell, wait): cell
                for cell in sorted(to_do, key=lambda c: -c.relative_cost)
            }
            for future in concurrent.futures.as_completed(futures):
                done[futures[future]] = load_run(future.result())
                bar.update()
    finally:
        bar.close()
    return [done[cell] for cell in cells]


@dataclass(frozen=True)
class ProcessPool:
    """``grid.workers`` CPU processes, each training one cell at a time on the CPU.

    Each process uses ``train.num_threads`` torch threads (one thread per process is both the
    fastest and the most robust use of a small machine: torch's threads spin and slow down
    when another process is busy).
    """

    name: str = "processes"

    def run(
        self, profile: Profile, workspace: Path, cells: Sequence[Cell], *, progress: bool,
        wait: bool,
    ) -> list[RunResult]:  # fmt: skip
        return _run_pool(
            profile, workspace, cells, workers=profile.grid.workers,
            initializer=_bind_device, initargs=(_device_queue(["cpu"] * profile.grid.workers),
                                                os.getpid()),
            progress=progress, wait=wait,
        )  # fmt: skip


def _device_queue(devices: list[str]) -> Any:
    queue = multiprocessing.get_context("spawn").Queue()
    for device in devices:
        queue.put(device)
    return queue


@dataclass(frozen=True)
class GpuPool:
    """``grid.cells_per_gpu`` processes per CUDA GPU, each bound to its GPU for its lifetime.

    Only the one-GPU path is tested (no multi-GPU machine was available).
    """

    name: str = "gpus"

    def run(
        self, profile: Profile, workspace: Path, cells: Sequence[Cell], *, progress: bool,
        wait: bool,
    ) -> list[RunResult]:  # fmt: skip
        n_gpus = cuda_devices(profile)
        if n_gpus == 0:
            raise EngineError(
                f"the gpus engine needs a CUDA GPU, but torch sees none (train.device is "
                f"{profile.train.device!r}); use the serial or processes engine"
            )
        per_gpu = profile.grid.cells_per_gpu
        # interleaved, so that fewer workers than slots still spread over every GPU
        devices = [f"cuda:{i}" for _ in range(per_gpu) for i in range(n_gpus)]
        return _run_pool(
            profile, workspace, cells, workers=len(devices), initializer=_bind_device,
            initargs=(_device_queue(devices), os.getpid()), progress=progress, wait=wait,
        )  # fmt: skip
