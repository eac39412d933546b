"""The one interface every way of running grid cells implements, and its errors.

An engine takes the grid's cells and returns one :class:`~paperlib.run.RunResult` per cell, in
the order of the cells; engines are chosen by name (:data:`ENGINES`,
:func:`paperlib.experiment.engines.make_engine`):

``local`` (default)
    this machine, as it is: ``gpus`` with several CUDA GPUs (or one GPU and
    ``grid.cells_per_gpu`` > 1), ``processes`` on a CPU-only machine with ``grid.workers`` > 1,
    else ``serial``;
``serial``
    one cell after another in this process, on ``train.device``;
``processes``
    ``grid.workers`` CPU processes, the costliest cells first;
``gpus``
    ``grid.cells_per_gpu`` processes per CUDA GPU, each bound to its GPU;
``ray``
    a task per cell on a Ray cluster (:mod:`paperlib.experiment.ray_engine`), asking for
    ``1 / grid.cells_per_gpu`` of a GPU on CUDA.

Whatever the engine, the run directories are the single source of truth: the cells already
done are read from the cache (:func:`paperlib.experiment.cache.split_complete`) and only the
others are trained, each by :func:`paperlib.run.train_run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from paperlib.config import Profile
from paperlib.experiment.cells import Cell
from paperlib.run.result import RunResult

__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineUnavailableError",
    "GridCellError",
    "WorkspaceNotSharedError",
    "check_engine_options",
]

ENGINES: tuple[str, ...] = ("local", "serial", "processes", "gpus", "ray")
"""Valid values of ``run_grid(engine=...)`` and ``python -m paperlib grid --engine``."""


class Engine(Protocol):
    """Runs cells: ``engine.run(profile, workspace, cells, progress=..., wait=...)``."""

    name: str

    def run(
        self,
        profile: Profile,
        workspace: Path,
        cells: Sequence[Cell],
        *,
        progress: bool,
        wait: bool,
    ) -> list[RunResult]:
        """Train (or fetch from the cache) every cell; one result per cell, in order.

        ``wait``: wait for a cell another process is training instead of raising
        :class:`~paperlib.locking.LockedError` (engines whose workers cannot wait ignore it).
        """
        ...


class EngineError(RuntimeError):
    """The grid could not be run on the requested engine."""


class EngineUnavailableError(EngineError):
    """The engine's package is not installed (Ray for ``--engine ray``)."""


class WorkspaceNotSharedError(EngineError):
    """A cell finished on a worker but its run directory is not visible to the driver."""


class GridCellError(EngineError):
    """One or more cells failed; the others ran to the end first.

    Attributes:
        failures: cell label (:func:`~paperlib.experiment.cells.cell_label`) -> the exception
            the cell raised (the original exception of the worker where Ray kept it).
    """

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = dict(failures)
        lines = [f"  {label}: {type(err).__name__}: {err}" for label, err in failures.items()]
        super().__init__(
            f"{len(failures)} grid cell(s) failed (the other cells finished):\n" + "\n".join(lines)
        )


def check_engine_options(
    engine: str, *, address: str | None = None, cpus_per_cell: float | None = None
) -> None:
    """Refuse an unknown engine or options that do not apply to it.

    Raises:
        ValueError: an engine not in :data:`ENGINES`, ``address``/``cpus_per_cell`` with an
            engine other than ``ray``, or ``cpus_per_cell <= 0``.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown grid engine {engine!r}; valid engines: {', '.join(ENGINES)}")
    if engine != "ray" and (address is not None or cpus_per_cell is not None):
        raise ValueError(
            "address and cpus_per_cell apply to the ray engine only; "
            "pass engine='ray' (--engine ray) or leave them out"
        )
    if cpus_per_cell is not None and not cpus_per_cell > 0:
        raise ValueError(f"cpus_per_cell must be a positive number of CPUs, got {cpus_per_cell!r}")
