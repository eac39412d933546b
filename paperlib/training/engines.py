"""Where the grid's cells run: in this process (``local``) or as tasks on a Ray cluster (``ray``).

``local`` is :func:`~paperlib.training.grid.run_grid`'s own loop (one cell after another, or one
cell per GPU on a multi-GPU machine) and the default. ``ray`` hands every pending cell to
`Ray <https://docs.ray.io>`_ (the optional extra ``cluster``): a task per cell, asking for one
GPU when the profile trains on CUDA and ``cpus_per_cell`` CPUs otherwise.

The result cache stays the single source of truth:

* the driver (the process that calls ``run_grid``) looks up every cell's run directory first
  and submits only the cells without a ``metrics.json``;
* a worker trains its cell with :func:`~paperlib.training.trainer.train_run` straight into the
  run directory on the shared workspace: every file is written atomically and ``metrics.json``
  last, and a worker that dies (``kill -9``, a lost node) is retried by Ray
  (``max_retries``) and resumes from ``state.pt``, its last completed epoch;
* the driver reads the finished run directories and writes the tidy tables once, after every
  cell has ended.

So the workspace must be on storage every node of the cluster sees, under the same path (NFS,
Lustre, GPFS, ...), and every node needs this package installed (same version) in the Python
environment its Ray processes run. A cell that fails for a reason of its own (a bad feature file,
a missing fold) is not retried; the grid waits for the other cells and then raises
:class:`GridCellError` naming every failed cell.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paperlib.config import Profile
from paperlib.progress import progress_bar
from paperlib.training.data import FeatureFileError, MissingFeaturesError, feature_path_for_snr
from paperlib.training.runs import run_key
from paperlib.training.trainer import (
    RunResult,
    _features_sha,
    load_run,
    run_complete,
    train_run,
)

if TYPE_CHECKING:
    from paperlib.training.grid import Cell

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "ENGINES",
    "CellResources",
    "EngineError",
    "EngineUnavailableError",
    "GridCellError",
    "WorkspaceNotSharedError",
    "cell_label",
    "cell_resources",
    "check_engine_options",
    "run_on_ray",
    "split_complete",
]

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("local", "ray")
"""Valid values of ``run_grid(engine=...)`` and ``python -m paperlib grid --engine``."""

DEFAULT_MAX_RETRIES = 3
"""How often Ray runs a cell again after its worker process or node died."""

RAY_INSTALL_HINT = "pip install -c constraints.txt -e '.[cluster]'"
TASK_PREFIX = "paperlib-cell "
"""Ray task names (and so the worker's process title ``ray::<name>``) start with this."""


class EngineError(RuntimeError):
    """The grid could not be run on the requested engine."""


class EngineUnavailableError(EngineError):
    """The engine's package is not installed (Ray for ``--engine ray``)."""


class WorkspaceNotSharedError(EngineError):
    """A cell finished on a worker but its run directory is not visible to the driver."""


class GridCellError(EngineError):
    """One or more cells failed; the others ran to the end first.

    Attributes:
        failures: cell label (:func:`cell_label`) -> the exception the cell raised (the
            original exception of the worker where Ray kept it).
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
        ValueError: an engine not in :data:`ENGINES`, ``address``/``cpus_per_cell`` with the
            ``local`` engine, or ``cpus_per_cell <= 0``.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown grid engine {engine!r}; valid engines: {', '.join(ENGINES)}")
    if engine == "local" and (address is not None or cpus_per_cell is not None):
        raise ValueError(
            "address and cpus_per_cell apply to the ray engine only; "
            "pass engine='ray' (--engine ray) or leave them out"
        )
    if cpus_per_cell is not None and not cpus_per_cell > 0:
        raise ValueError(f"cpus_per_cell must be a positive number of CPUs, got {cpus_per_cell!r}")


def cell_label(cell: Cell) -> str:
    """``2APAE snr20 fold1 alpha=0.001 decoder=relu`` (α and decoder only for 2APAE)."""
    label = f"{cell.model} snr{cell.snr_db} fold{cell.fold}"
    if cell.alpha is not None:
        label += f" alpha={cell.alpha:g}"
    if cell.decoder_activation is not None:
        label += f" decoder={cell.decoder_activation}"
    return label


@dataclass(frozen=True)
class CellResources:
    """What one Ray task asks for and where it trains.

    Attributes:
        num_cpus: CPUs reserved for the task (also its torch thread count, at least 1).
        num_gpus: 1 for a CUDA profile, else 0.
        device: the ``train_run(device=...)`` of the task: ``cuda`` (the GPU Ray gave it,
            always ``cuda:0`` inside the task) or ``cpu``.
    """

    num_cpus: float
    num_gpus: int
    device: str


def cell_resources(
    train_device: str, cluster_gpus: float, cpus_per_cell: float | None = None
) -> CellResources:
    """The resources of a cell for ``profile.train.device`` on a cluster with ``cluster_gpus``.

    ``cpu`` trains on CPUs; ``cuda``/``cuda:N`` asks for one GPU; ``auto`` asks for one GPU when
    the cluster has any, else trains on CPUs.

    Raises:
        EngineError: the profile trains on CUDA and the cluster has no GPU (the tasks would wait
            forever).
    """
    cpus = 1.0 if cpus_per_cell is None else float(cpus_per_cell)
    wants_gpu = train_device.startswith("cuda") or (train_device == "auto" and cluster_gpus >= 1)
    if wants_gpu and cluster_gpus < 1:
        raise EngineError(
            f"train.device is {train_device!r} but the Ray cluster has no GPU; "
            "add GPU nodes or set train.device=cpu"
        )
    return CellResources(cpus, 1 if wants_gpu else 0, "cuda" if wants_gpu else "cpu")


def split_complete(
    profile: Profile, workspace: Path, cells: Sequence[Cell]
) -> tuple[dict[Cell, RunResult], list[Cell]]:
    """``(complete, pending)``: cells whose run directory holds ``metrics.json`` and the rest.

    A cell whose key cannot be computed here (its feature file is missing or broken) counts
    as pending: its worker raises the trainer's own error, which names the file.
    """
    complete: dict[Cell, RunResult] = {}
    pending: list[Cell] = []
    for cell in cells:
        try:
            feature_path = feature_path_for_snr(workspace, cell.snr_db)
            key = run_key(profile, features_sha256=_features_sha(feature_path), **cell.kwargs())
        except (MissingFeaturesError, FeatureFileError):
            pending.append(cell)
            continue
        run_dir = key.run_dir(workspace)
        if run_complete(run_dir):  # a damaged metrics.json: trained again
            complete[cell] = load_run(run_dir)
        else:
            pending.append(cell)
    return complete, pending


def _train_cell(
    profile: Profile, workspace: str, cell_kwargs: dict[str, Any], device: str, threads: int
) -> tuple[str, str]:
    """Body of one Ray task: train (or resume) the cell; ``(run directory, host name)``."""
    import torch

    if profile.train.num_threads == 0:
        torch.set_num_threads(threads)
    result = train_run(profile, Path(workspace), device=device, progress=False, **cell_kwargs)
    return str(result.run_dir), socket.gethostname()


def _import_ray() -> Any:
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
        cells: the grid's cells (:func:`~paperlib.training.grid.grid_cells`).
        address: ``None`` starts a local Ray instance for this call; ``auto`` joins the cluster
            running on this machine; ``HOST:PORT`` (the head's GCS address) or ``ray://...``
            joins that one. A Ray session already open in this process is used as it is.
        cpus_per_cell: CPUs per task (default 1); also the task's torch threads when
            ``train.num_threads`` is 0.
        max_retries: Ray's retries of a task whose worker died (system failures only).
        progress: a progress bar over the cells.

    Returns:
        One :class:`~paperlib.training.trainer.RunResult` per cell, in the order of ``cells``.

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
    started_here = False
    finished: dict[Cell, Path] = {}
    failures: dict[str, BaseException] = {}
    if pending:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
            started_here = True
        try:
            res = cell_resources(
                profile.train.device, ray.cluster_resources().get("GPU", 0.0), cpus_per_cell
            )
            task = ray.remote(_train_cell)
            log.info(
                "%d of %d cells complete in the cache; submitting %d to ray (%g CPU, %d GPU "
                "each): %s", len(complete), len(cells), len(pending), res.num_cpus, res.num_gpus,
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
            finished, failures = _collect(ray, refs, progress)
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
