"""Engines by name, and :func:`run_cells`: the one way the grid and the localisation runs train.

The interface and the names are in :mod:`paperlib.experiment.engine`; this machine's engines in
:mod:`paperlib.experiment.pools`, Ray's in :mod:`paperlib.experiment.ray_engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from paperlib.config import Profile
from paperlib.experiment.cells import Cell
from paperlib.experiment.engine import Engine, check_engine_options
from paperlib.experiment.pools import GpuPool, ProcessPool, Serial, cuda_devices
from paperlib.experiment.ray_engine import RayEngine
from paperlib.run.result import RunResult

__all__ = ["local_engine", "make_engine", "run_cells"]


def local_engine(profile: Profile) -> str:
    """What ``local`` means on this machine for ``profile``.

    ``gpus`` with several CUDA GPUs, or one GPU and ``grid.cells_per_gpu`` > 1; ``processes``
    on a machine without CUDA (or a ``cpu`` profile) with ``grid.workers`` > 1; else ``serial``.
    """
    n_gpus = cuda_devices(profile)
    if n_gpus > 1 or (n_gpus == 1 and profile.grid.cells_per_gpu > 1):
        return "gpus"
    if n_gpus == 0 and profile.grid.workers > 1:
        return "processes"
    return "serial"


def make_engine(
    name: str,
    profile: Profile,
    *,
    address: str | None = None,
    cpus_per_cell: float | None = None,
) -> Engine:
    """The engine called ``name`` (one of :data:`~paperlib.experiment.engine.ENGINES`).

    Args:
        name: ``local`` (:func:`local_engine`), ``serial``, ``processes``, ``gpus`` or ``ray``.
        profile: the grid's profile (``local`` looks at its device and ``grid`` section).
        address, cpus_per_cell: ray only (see :func:`~paperlib.experiment.ray_engine.run_on_ray`).

    Raises:
        ValueError: an unknown name or options that do not apply to it.
    """
    check_engine_options(name, address=address, cpus_per_cell=cpus_per_cell)
    if name == "local":
        name = local_engine(profile)
    if name == "ray":
        return RayEngine(address=address, cpus_per_cell=cpus_per_cell)
    return {"serial": Serial, "processes": ProcessPool, "gpus": GpuPool}[name]()


def run_cells(
    profile: Profile,
    workspace: Path,
    cells: Sequence[Cell],
    *,
    engine: str = "local",
    address: str | None = None,
    cpus_per_cell: float | None = None,
    progress: bool = True,
    wait: bool = True,
) -> list[RunResult]:
    """Train (or fetch from the cache) ``cells`` on the engine called ``engine``.

    Returns:
        One :class:`~paperlib.run.RunResult` per cell, in the order of ``cells``.
    """
    runner = make_engine(engine, profile, address=address, cpus_per_cell=cpus_per_cell)
    return runner.run(profile, Path(workspace), list(cells), progress=progress, wait=wait)
