"""The experiment grid behind Tables IV and V: :func:`run_grid` (chapters 4 and 5).

::

    from paperlib.experiment import run_grid
    table = run_grid(profile, workspace)     # every cell, cached; writes results.csv

The cells are :func:`~paperlib.experiment.cells.grid_cells`; they run on an engine chosen by
name (:mod:`paperlib.experiment.engine`), and their tidy tables
(:mod:`paperlib.experiment.results`) are merged into those of earlier grids.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from paperlib.config import Profile
from paperlib.experiment.cells import grid_cells
from paperlib.experiment.engine import check_engine_options
from paperlib.experiment.engines import run_cells
from paperlib.experiment.results import tidy_results, write_results

__all__ = ["run_grid"]


def run_grid(
    profile: Profile,
    workspace: Path,
    *,
    models: tuple[str, ...] | None = None,
    snrs: tuple[int, ...] | None = None,
    folds: tuple[int, ...] | None = None,
    alphas: tuple[float, ...] | None = None,
    include_ablation: bool = True,
    progress: bool = True,
    wait: bool = True,
    engine: str = "local",
    address: str | None = None,
    cpus_per_cell: float | None = None,
) -> pd.DataFrame:
    """Run (or fetch from the cache) every cell and write the tidy results tables.

    Args:
        profile: the profile (its ``grid`` section gives the defaults of the cell lists).
        workspace: the profile's workspace; the feature files must exist there.
        models, snrs, folds, alphas: override the profile's lists.
        include_ablation: also run the Table V cells (α values, linear decoder).
        progress: progress bars (one over the cells, one per cell's training).
        wait: wait for a cell (or the results tables) another process is busy with, instead
            of raising :class:`~paperlib.locking.LockedError`.
        engine: where the cells run (:data:`~paperlib.experiment.engine.ENGINES`): ``local``
            (this machine, the default), ``serial``, ``processes``, ``gpus`` or ``ray`` (a task
            per pending cell on a Ray cluster; see :mod:`paperlib.experiment.ray_engine`).
        address, cpus_per_cell: ray engine only: the cluster to join (``None`` starts a local
            Ray instance, ``auto`` joins the one running on this machine) and the CPUs per cell
            (default 1; a CUDA profile asks for ``1 / grid.cells_per_gpu`` GPU per cell).

    Returns:
        The tidy table written to ``paths.results_dir(workspace)/results.csv``: one row per
        model × SNR × fold × α × decoder × metric with columns ``profile, model, snr_db, fold,
        alpha`` (NaN for the baselines), ``decoder_activation, metric`` (``micro_ap``,
        ``macro_ap``, ``roc_auc``), ``value, run_id, val_class_prior`` (share of positive
        (clip, class) pairs in the validation fold: the micro-AP of chance). ``per_class_ap.csv`` beside it has
        ``..., class, ap, run_id``. Both also have ``features_sha256`` (the data of the run).
        The files on disk hold these rows merged into those of earlier grids
        (:func:`~paperlib.experiment.results.merge_results`): a subset grid
        (``models=("GMP",)``) updates its own cells and keeps the others; the returned table
        has only the cells of this call.
    """
    check_engine_options(engine, address=address, cpus_per_cell=cpus_per_cell)
    workspace = Path(workspace)
    cells = grid_cells(
        profile,
        models=models,
        snrs=snrs,
        folds=folds,
        alphas=alphas,
        include_ablation=include_ablation,
    )
    results = run_cells(
        profile, workspace, cells, engine=engine, address=address, cpus_per_cell=cpus_per_cell,
        progress=progress, wait=wait,
    )  # fmt: skip
    table, per_class = tidy_results(results, profile.name)
    write_results(workspace, table, per_class, wait=wait)
    return table
