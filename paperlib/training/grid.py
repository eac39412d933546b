"""The experiment grid behind Tables IV and V, and its tidy results tables.

Cells: every model of ``grid.models`` × SNR × held-out fold (2APAE with the profile's α and
decoder), plus the ablation (2APAE with each α of ``grid.alphas`` and, if
``grid.linear_decoder``, a linear last decoder layer) on ``grid.ablation_snrs``. Each cell is a
:func:`~paperlib.training.trainer.train_run`, cached by its config hash, so a rerun skips the
finished cells and the ablation reuses the Table IV 2APAE cell.

Devices: with several CUDA GPUs the cells run in a process pool, one cell per GPU at a time;
otherwise (CPU, one GPU) they run one after another in this process. Only the 0/1-GPU path is
tested (no multi-GPU machine was available). ``engine="ray"`` runs the pending cells as tasks on
a Ray cluster instead (:mod:`paperlib.training.engines`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from paperlib import paths
from paperlib.config import Profile
from paperlib.progress import progress_bar
from paperlib.training.engines import check_engine_options, run_on_ray
from paperlib.training.provenance import atomic_write_text
from paperlib.training.runs import MODEL_WITH_DECODER
from paperlib.training.trainer import RunResult, train_run

__all__ = [
    "METRICS",
    "PER_CLASS_FILE",
    "RESULTS_FILE",
    "Cell",
    "grid_cells",
    "merge_results",
    "read_results",
    "read_run_logs",
    "run_grid",
]

METRICS: tuple[str, ...] = ("micro_ap", "macro_ap", "roc_auc")
CHANCE_COLUMNS: tuple[str, ...] = (
    "chance_positive_share",
    "chance_class_frequency",
    "chance_micro_ap",
)
"""Micro-AP of the audio-blind scorers of each run (:func:`paperlib.metrics.chance_levels`)."""
RESULTS_FILE = "results.csv"
PER_CLASS_FILE = "per_class_ap.csv"


@dataclass(frozen=True)
class Cell:
    """One grid cell: a model on an SNR and held-out fold (α/decoder for 2APAE only)."""

    model: str
    snr_db: int
    fold: int
    alpha: float | None = None
    decoder_activation: str | None = None
    seed: int | None = None
    """``None``: the profile's ``train.seed``; else a repeat with this seed."""

    def kwargs(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "snr_db": self.snr_db,
            "fold": self.fold,
            "alpha": self.alpha,
            "decoder_activation": self.decoder_activation,
            "seed": self.seed,
        }

    @property
    def relative_cost(self) -> float:
        """Rough training cost relative to GMP (measured on the pocket CPU benchmark): the
        process pool starts the most expensive cells first so that its workers end together."""
        return CELL_COST.get(self.model, 1.0)


CELL_COST: dict[str, float] = {"2APAE": 4.0, "AtrousAP": 1.6, "GWRP": 1.5, "GAP": 1.0, "GMP": 1.0}


def grid_cells(
    profile: Profile,
    *,
    models: tuple[str, ...] | None = None,
    snrs: tuple[int, ...] | None = None,
    folds: tuple[int, ...] | None = None,
    alphas: tuple[float, ...] | None = None,
    include_ablation: bool = True,
) -> list[Cell]:
    """The cells of the grid, without duplicates, in a stable order (SNR, fold, model).

    The ablation cells (2APAE with other α values or a linear decoder) belong to 2APAE: a grid
    whose ``models`` leave 2APAE out has none. The repeats (``grid.repeat_models`` with each of
    ``grid.repeat_seeds``, on ``grid.repeat_snrs``) run with the ablation (``include_ablation``)
    and only for models of the grid.

    Raises:
        ValueError: an unknown model name (the valid ones are listed).
    """
    from paperlib.models import MODEL_NAMES

    grid = profile.grid
    models = tuple(models or grid.models)
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid models: {', '.join(MODEL_NAMES)}")
    include_ablation = include_ablation and MODEL_WITH_DECODER in models
    snrs = tuple(snrs or grid.snrs)
    folds = tuple(folds or grid.folds)
    alphas = tuple(grid.alphas if alphas is None else alphas)
    ablation_snrs = snrs if grid.ablation_snrs is None else tuple(grid.ablation_snrs)
    repeat_snrs = ablation_snrs if grid.repeat_snrs is None else tuple(grid.repeat_snrs)
    base_alpha = float(profile.train.alpha)
    base_decoder = profile.model.decoder_activation
    cells: dict[Cell, None] = {}
    for snr in snrs:
        for fold in folds:
            for model in models:
                if model == MODEL_WITH_DECODER:
                    cells[Cell(model, snr, fold, base_alpha, base_decoder)] = None
                else:
                    cells[Cell(model, snr, fold)] = None
            if include_ablation and snr in ablation_snrs:
                for alpha in alphas:
                    cells[Cell(MODEL_WITH_DECODER, snr, fold, float(alpha), base_decoder)] = None
                if profile.grid.linear_decoder:
                    cells[Cell(MODEL_WITH_DECODER, snr, fold, base_alpha, "linear")] = None
            if include_ablation and snr in repeat_snrs:
                for model in (m for m in grid.repeat_models if m in models):
                    variant = (
                        (base_alpha, base_decoder) if model == MODEL_WITH_DECODER else (None, None)
                    )
                    for seed in grid.repeat_seeds:
                        if seed != profile.train.seed:
                            cells[Cell(model, snr, fold, *variant, seed=int(seed))] = None
    return list(cells)


def _run_cell(
    profile: Profile,
    workspace: Path,
    cell: Cell,
    device: str | None,
    progress: bool,
    wait: bool = True,
) -> RunResult:
    return train_run(profile, workspace, device=device, progress=progress, wait=wait,
                     **cell.kwargs())  # fmt: skip


_DEVICE_QUEUE: Any = None


def _init_worker(queue: Any, parent: int) -> None:
    global _DEVICE_QUEUE
    _exit_with_parent(parent)  # a killed grid must not leave GPU workers training either
    _DEVICE_QUEUE = queue.get()  # one GPU per worker process, for its lifetime


def _run_cell_on_worker_gpu(profile: Profile, workspace: Path, cell: Cell) -> Path:
    return _run_cell(profile, workspace, cell, _DEVICE_QUEUE, False).run_dir


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the process that started the grid dies.

    Without it, killing ``make book`` or a grid (even with ``kill -9``) leaves its workers
    training on, unseen, for as long as their cells last. Linux only (``prctl``); elsewhere a
    no-op. ``parent`` is the pid of the grid's process, to catch a parent that died before
    the signal was armed.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # already orphaned (adopted by init or a subreaper)
        os._exit(1)


def _run_cell_in_worker(profile: Profile, workspace: Path, cell: Cell, wait: bool) -> Path:
    return _run_cell(profile, workspace, cell, "cpu", False, wait).run_dir


def _run_cells_in_processes(
    profile: Profile, workspace: Path, cells: list[Cell], progress: bool, wait: bool
) -> list[RunResult]:
    """Train ``cells`` on the CPU in ``grid.workers`` processes, the costliest first.

    Each process trains one cell at a time with ``train.num_threads`` torch threads (one
    thread per process is both the fastest and the most robust use of a small machine: torch's
    threads spin and slow down when another process is busy). Results come back in the order
    of ``cells``; a failing cell raises after the pool has stopped.
    """
    from paperlib.training.engines import split_complete
    from paperlib.training.trainer import load_run

    done, pending = split_complete(profile, workspace, cells)  # finished cells stay here
    bar = progress_bar(
        progress=progress, total=len(cells), initial=len(done), desc="grid", unit="run"
    )
    context = multiprocessing.get_context("spawn")
    workers = min(profile.grid.workers, max(len(pending), 1))
    try:
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
        ) as pool:
            futures = {
                pool.submit(_run_cell_in_worker, profile, workspace, cell, wait): cell
                for cell in sorted(pending, key=lambda c: -c.relative_cost)
            }
            for future in concurrent.futures.as_completed(futures):
                done[futures[future]] = load_run(future.result())
                bar.update()
    finally:
        bar.close()
    return [done[cell] for cell in cells]


def _tidy(results: list[RunResult], profile: Profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, per_class = [], []
    for result in results:
        m = result.metrics
        alpha = m["alpha"] if m["model"] == MODEL_WITH_DECODER else float("nan")
        ident = {
            "profile": profile.name,
            "model": m["model"],
            "snr_db": m["snr_db"],
            "fold": m["fold"],
            "alpha": alpha,
            "decoder_activation": m["decoder_activation"],
            "seed": int(result.key.train["seed"]),
        }
        data = {"features_sha256": result.key.features_sha256}
        chance = {name: m.get(name, float("nan")) for name in CHANCE_COLUMNS}
        for metric in METRICS:
            rows.append({**ident, "metric": metric, "value": m[metric], "run_id": result.run_id,
                         "val_class_prior": m["val_class_prior"], **chance, **data})  # fmt: skip
        for name, ap in m["per_class_ap"].items():
            per_class.append({**ident, "class": name, "ap": ap, "run_id": result.run_id, **data})
    return pd.DataFrame(rows), pd.DataFrame(per_class)


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
        engine: ``local`` (this machine, the default) or ``ray`` (a task per pending cell on a
            Ray cluster; see :mod:`paperlib.training.engines`).
        address, cpus_per_cell: ray engine only: the cluster to join (``None`` starts a local
            Ray instance, ``auto`` joins the one running on this machine) and the CPUs per cell
            (default 1; a CUDA profile asks for one GPU per cell).

    Returns:
        The tidy table written to ``paths.results_dir(workspace)/results.csv``: one row per
        model × SNR × fold × α × decoder × metric with columns ``profile, model, snr_db, fold,
        alpha`` (NaN for the baselines), ``decoder_activation, metric`` (``micro_ap``,
        ``macro_ap``, ``roc_auc``), ``value, run_id, val_class_prior`` (share of positive
        (clip, class) pairs in the validation fold: the micro-AP of chance). ``per_class_ap.csv`` beside it has
        ``..., class, ap, run_id``. Both also have ``features_sha256`` (the data of the run).
        The files on disk hold these rows merged into those of earlier grids
        (:func:`merge_results`): a subset grid (``models=("GMP",)``) updates its own cells and
        keeps the others; the returned table has only the cells of this call.
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
    n_gpus = torch.cuda.device_count() if profile.train.device != "cpu" else 0
    if engine == "ray":
        results = run_on_ray(profile, workspace, cells, address=address,
                             cpus_per_cell=cpus_per_cell, progress=progress)  # fmt: skip
    elif n_gpus > 1:
        queue = multiprocessing.get_context("spawn").Queue()
        for i in range(n_gpus):
            queue.put(f"cuda:{i}")
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=n_gpus,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(queue, os.getpid()),
        ) as pool:
            run_dirs = list(
                pool.map(
                    _run_cell_on_worker_gpu, [profile] * len(cells), [workspace] * len(cells), cells
                )
            )
        from paperlib.training.trainer import load_run

        results = [load_run(d) for d in run_dirs]
    elif profile.grid.workers > 1 and n_gpus == 0:
        results = _run_cells_in_processes(profile, workspace, cells, progress, wait)
    else:
        results = []
        bar = progress_bar(progress=progress, total=len(cells), desc="grid", unit="run")
        try:
            for cell in cells:
                results.append(_run_cell(profile, workspace, cell, None, progress, wait))
                bar.update()
        finally:
            bar.close()
    table, per_class = _tidy(results, profile)
    out = paths.results_dir(workspace)
    from paperlib.atomic import clean_orphans
    from paperlib.locking import workspace_lock

    with workspace_lock(workspace, "grid-results", what=f"the results tables in {out}", wait=wait):
        clean_orphans(out)
        for name, rows in ((RESULTS_FILE, table), (PER_CLASS_FILE, per_class)):
            old = pd.read_csv(out / name) if (out / name).is_file() else None
            atomic_write_text(out / name, merge_results(old, rows).to_csv(index=False))
    return table


IDENTITY: tuple[str, ...] = (
    "profile",
    "model",
    "snr_db",
    "fold",
    "alpha",
    "decoder_activation",
    "seed",
)
"""Columns that name a grid cell in the results tables."""


def merge_results(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``new`` plus those of ``old`` that ``new`` does not replace.

    An old row is replaced when ``new`` has the same cell (:data:`IDENTITY`), and dropped when
    ``new`` was trained on another feature file for its SNR (``features_sha256``): the data
    changed, so the old number is stale. New rows come first, in their order.
    """
    if old is None or old.empty:
        return new.reset_index(drop=True)

    def ident(frame: pd.DataFrame) -> pd.Series:
        rows = frame.reindex(columns=list(IDENTITY)).itertuples(index=False)
        return pd.Series(["|".join(map(str, row)) for row in rows], index=frame.index)

    keep = ~ident(old).isin(set(ident(new)))
    if "features_sha256" in old.columns and "features_sha256" in new.columns:
        current = new.groupby("snr_db")["features_sha256"].first()
        now = old["snr_db"].map(current)
        keep &= now.isna() | (old["features_sha256"] == now)
    else:
        keep &= ~old["snr_db"].isin(set(new["snr_db"]))  # an older table: keep what is unrelated
    return pd.concat([new, old[keep]], ignore_index=True)


def read_results(workspace: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, per_class_ap)`` tables written by :func:`run_grid`.

    Raises:
        FileNotFoundError: the grid has not been run in ``workspace``.
    """
    folder = paths.results_dir(Path(workspace))
    for name in (RESULTS_FILE, PER_CLASS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} does not exist; run the grid first")
    return pd.read_csv(folder / RESULTS_FILE), pd.read_csv(folder / PER_CLASS_FILE)


def read_run_logs(workspace: Path, results: pd.DataFrame) -> pd.DataFrame:
    """The ``log.csv`` of every run in ``results``, stacked (learning curves of a grid).

    Args:
        workspace: the profile's workspace.
        results: rows of :func:`run_grid`'s table (any subset); one log per ``run_id``.

    Returns:
        The log columns (``LOG_COLUMNS``) with the cell's ``model, snr_db, fold, alpha,
        decoder_activation, seed`` and ``run_id`` in front, runs in the order of ``results``.
    """
    from paperlib.training.trainer import LOG_FILE

    cells = results.drop_duplicates("run_id")
    frames = []
    for row in cells.itertuples(index=False):
        log = pd.read_csv(paths.runs_dir(Path(workspace)) / row.run_id / LOG_FILE)
        for column in ("run_id", *reversed(IDENTITY[1:])):
            if hasattr(row, column):
                log.insert(0, column, getattr(row, column))
        frames.append(log)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
