"""The ``ray`` engine: every cell still to do is a task on a `Ray <https://docs.ray.io>`_ cluster.

Ray is the optional extra ``cluster``. A task asks for ``1 / grid.cells_per_gpu`` of a GPU when
the profile trains on CUDA and ``cpus_per_cell`` CPUs otherwise.

The result cache stays the single source of truth:

* the driver (the process that calls ``run_grid``) looks up every cell's run directory first
  and submits only the cells without a ``metrics.json``;
* a worker trains its cell with :func:`~paperlib.run.train_run` straight into the run directory
  on the shared workspace: every file is written atomically and ``metrics.json`` last, and a
  worker that dies (``kill -9``, a lost node) is retried by Ray (``max_retries``) and resumes
  from ``state.pt``, its last completed epoch;
* the driver reads the finished run directories and writes the tidy tables once, after every
  cell has ended.

So the workspace must be on storage every node of the cluster sees, under the same path (NFS,
Lustre, GPFS, ...), and every node needs this package installed (same version) in the Python
environment its Ray processes run. A cell that fails for a reason of its own (a bad feature file,
a missing fold) is not retried; the grid waits for the other cells and then raises
:class:`~paperlib.experiment.engine.GridCellError` naming every failed cell.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paperlib.config import Profile
from paperlib.experiment.cache import split_complete
from paperlib.experiment.cells import Cell, cell_label
from paperlib.experiment.engine import (
    EngineError,
    EngineUnavailableError,
    GridCellError,
    WorkspaceNotSharedError,
)
from paperlib.progress import progress_bar
from paperlib.run.result import RunResult, load_run
from paperlib.run.train import train_run

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "TASK_PREFIX",
    "CellResources",
    "RayEngine",
    "cell_resources",
    "run_on_ray",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 3
"""How often Ray runs a cell again after its worker process or node died."""

RAY_INSTALL_HINT = "pip install -c constraints.txt -e '.[cluster]'"
TASK_PREFIX = "paperlib-cell "
"""Ray task names (and so the worker's process title ``ray::<name>``) start with this."""


@dataclass(frozen=True)
class CellResources:
    """What one Ray task asks for and where it trains.

    Attributes:
        num_cpus: CPUs reserved for the task (also its torch thread count, at least 1).
        num_gpus: ``1 / cells_per_gpu`` for a CUDA profile, else 0.
        device: the ``train_run(device=...)`` of the task: ``cuda`` (the GPU Ray gave it,
            always ``cuda:0`` inside the task) or ``cpu``.
    """

    num_cpus: float
    num_gpus: float
    device: str


def cell_resources(
    train_device: str,
    cluster_gpus: float,
    cpus_per_cell: float | None = None,
    cells_per_gpu: int = 1,
) -> CellResources:
    """The resources of a cell for ``profile.train.device`` on a cluster with ``cluster_gpus``.

    ``cpu`` trains on CPUs; ``cuda``/``cuda:N`` asks for ``1 / cells_per_gpu`` of a GPU (Ray's
    fractional GPUs: that many cells share one GPU); ``auto`` does so when the cluster has any
    GPU, else trains on CPUs.

    Raises:
        EngineError: the profile trains on CUDA and the cluster has no GPU (the tasks would wait
            forever).
        ValueError: ``cells_per_gpu < 1``.
    """
    if cells_per_gpu < 1:
        raise ValueError(f"cells_per_gpu must be an integer >= 1, got {cells_per_gpu!r}")
    cpus = 1.0 if cpus_per_cell is None else float(cpus_per_cell)
    wants_gpu = train_device.startswith("cuda") or (train_device == "auto" and cluster_gpus >= 1)
    if wants_gpu and cluster_gpus < 1:
        raise EngineError(
            f"train.device is {train_device!r} but the Ray cluster has no GPU; "
            "add GPU nodes or set train.device=cpu"
        )
    return CellResources(
        cpus, 1 / cells_per_gpu if wants_gpu else 0, "cuda" if wants_gpu else "cpu"
    )


def _train_cell(
    profile: Profile, workspace: str, cell_kwargs: dict[str, Any], device: str, threads: int
) -> tuple[str, str]:
    """Body of one Ray task: train (or resume) the cell; ``(run directory, host name)``."""
    if profile.train.num_threads == 0:
        torch.set_num_threads(threads)
    result = train_run(profile, Path(workspace), device=device, progress=False, **cell_kwargs)
    return str(result.run_dir), socket.gethostname()


def _import_ray() -> Any:
    """Ray, imported only when the ray engine runs (an optional, heavy dependency)."""
    try:
        import ray
    except ImportError as error:
        raise EngineUnavailableError(
            f"the ray engine needs Ray, which is not installed ({error}); install the "
            f"'cluster' extra: {RAY_INSTALL_HINT}"
        ) from None
    return ray


def _collect(
    ray: Any, refs: dict[Any, Cell], progress: bool
) -> tuple[dict[Cell, Path], dict[str, BaseException]]:
    """Wait for every task; ``(run dirs of the finished cells, failures by cell label)``."""
    finished: dict[Cell, Path] = {}
    failures: dict[str, BaseException] = {}
    waiting = list(refs)
    bar = progress_bar(progress=progress, total=len(waiting), desc="grid cells on ray", unit="cell")
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            cell = refs[done[0]]
            try:
                run_dir, host = ray.get(done[0])
            except ray.exceptions.RayTaskError as error:  # the cell's own error: not retried
                failures[cell_label(cell)] = error.cause or error
            except ray.exceptions.RayError as error:  # worker/node lost after every retry
                failures[cell_label(cell)] = error
            else:
                finished[cell] = Path(run_dir)
                log.info("%s finished on %s: %s", cell_label(cell), host, run_dir)
            bar.update()
    except BaseException:
        for ref in waiting:  # an interrupted driver leaves nothing running on the cluster
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return finished, failures


def _submit(
    ray: Any, profile: Profile, workspace: Path, pending: Sequence[Cell], *,
    cpus_per_cell: float | None, max_retries: int, progress: bool, n_done: int,
) -> tuple[dict[Cell, Path], dict[str, BaseException]]:  # fmt: skip
    res = cell_resources(
        profile.train.device, ray.cluster_resources().get("GPU", 0.0), cpus_per_cell,
        profile.grid.cells_per_gpu,
    )  # fmt: skip
    task = ray.remote(_train_cell)
    log.info(
        "%d of %d cells complete in the cache; submitting %d to ray (%g CPU, %g GPU "
        "each): %s", n_done, n_done + len(pending), len(pending), res.num_cpus, res.num_gpus,
        "; ".join(cell_label(c) for c in pending),
    )  # fmt: skip
    refs = {
        task.options(
            name=TASK_PREFIX + cell_label(cell),
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
            max_retries=max_retries,
            retry_exceptions=False,
        ).remote(
            profile, str(workspace), cell.kwargs(), res.device, max(1, int(res.num_cpus))
        ): cell
        for cell in pending
    }
    return _collect(ray, refs, progress)


def run_on_ray(
    profile: Profile,
    workspace: Path,
    cells: Sequence[Cell],
    *,
    address: str | None = None,
    cpus_per_cell: float | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    progress: bool = True,
) -> list[RunResult]:
    """Run the pending ``cells`` as Ray tasks and return every cell's result, in order.

    Args:
        profile: the grid's profile (sent to every task).
        workspace: the profile's workspace, on storage every node sees under this path.
        cells: the grid's cells (:func:`~paperlib.experiment.cells.grid_cells`).
        address: ``None`` starts a local Ray instance for this call; ``auto`` joins the cluster
            running on this machine; ``HOST:PORT`` (the head's GCS address) or ``ray://...``
            joins that one. A Ray session already open in this process is used as it is.
        cpus_per_cell: CPUs per task (default 1); also the task's torch threads when
            ``train.num_threads`` is 0.
        max_retries: Ray's retries of a task whose worker died (system failures only).
        progress: a progress bar over the cells.

    Returns:
        One :class:`~paperlib.run.RunResult` per cell, in the order of ``cells``.

    Raises:
        EngineUnavailableError: Ray is not installed.
        EngineError: the profile trains on CUDA and the cluster has no GPU.
        GridCellError: one or more cells failed (raised after every other cell ended).
        WorkspaceNotSharedError: a finished cell's run directory is not visible here.
        ConnectionError: no Ray cluster at ``address``.
    """
    ray = _import_ray()
    workspace = Path(workspace).resolve()
    complete, pending = split_complete(profile, workspace, cells)
    finished: dict[Cell, Path] = {}
    failures: dict[str, BaseException] = {}
    if pending:
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        try:
            finished, failures = _submit(
                ray, profile, workspace, pending, cpus_per_cell=cpus_per_cell,
                max_retries=max_retries, progress=progress, n_done=len(complete),
            )  # fmt: skip
        finally:
            if started_here:
                ray.shutdown()
    if failures:
        raise GridCellError(failures)
    results = []
    for cell in cells:
        if cell in complete:
            results.append(complete[cell])
            continue
        try:
            results.append(load_run(finished[cell]))
        except FileNotFoundError as error:
            raise WorkspaceNotSharedError(
                f"{cell_label(cell)} finished on a worker but the driver cannot read its run "
                f"directory ({error}); the workspace {workspace} must be on storage every node "
                "of the cluster sees under the same path"
            ) from None
    return results


@dataclass(frozen=True)
class RayEngine:
    """The ``ray`` engine (:func:`run_on_ray` with the options of ``run_grid``)."""

    address: str | None = None
    cpus_per_cell: float | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    name: str = "ray"

    def run(
        self, profile: Profile, workspace: Path, cells: Sequence[Cell], *, progress: bool,
        wait: bool,
    ) -> list[RunResult]:  # fmt: skip
        """``wait`` does not apply: a Ray worker always waits for a run another one trains."""
        return run_on_ray(
            profile, workspace, cells, address=self.address, cpus_per_cell=self.cpus_per_cell,
            max_retries=self.max_retries, progress=progress,
        )  # fmt: skip
