"""The grid's tidy results tables: built from runs, merged into earlier ones, read back.

``results.csv`` has one row per run and metric, ``per_class_ap.csv`` one per run and class;
both name their cell with :data:`~paperlib.experiment.cells.IDENTITY` and record the
``run_id`` and ``features_sha256`` of the run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from paperlib import paths
from paperlib.atomic import clean_orphans
from paperlib.experiment.cells import IDENTITY
from paperlib.locking import workspace_lock
from paperlib.models import has_decoder
from paperlib.run.provenance import atomic_write_text
from paperlib.run.result import LOG_FILE, RunResult

__all__ = [
    "CHANCE_COLUMNS",
    "METRICS",
    "PER_CLASS_FILE",
    "RESULTS_FILE",
    "merge_results",
    "read_results",
    "read_run_logs",
    "tidy_results",
    "with_recipe",
    "write_results",
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


def tidy_results(results: list[RunResult], profile_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, per_class_ap)`` rows of ``results`` (see :func:`~.grid.run_grid`)."""
    rows, per_class = [], []
    for result in results:
        m = result.metrics
        alpha = m["alpha"] if has_decoder(m["model"]) else float("nan")
        ident = {
            "profile": profile_name,
            "model": m["model"],
            "onsets": result.key.onsets,
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


def merge_results(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``new`` plus those of ``old`` that ``new`` does not replace.

    An old row is replaced when ``new`` has the same cell (:data:`IDENTITY`), and dropped when
    ``new`` was trained on another feature file for its recipe and SNR (``features_sha256``):
    the data changed, so the old number is stale. New rows come first, in their order.
    """
    if old is None or old.empty:
        return new.reset_index(drop=True)
    old = with_recipe(old)

    def ident(frame: pd.DataFrame) -> pd.Series:
        rows = frame.reindex(columns=list(IDENTITY)).itertuples(index=False)
        return pd.Series(["|".join(map(str, row)) for row in rows], index=frame.index)

    keep = ~ident(old).isin(set(ident(new)))
    if "features_sha256" in old.columns and "features_sha256" in new.columns:
        current = new.groupby(["onsets", "snr_db"])["features_sha256"].first()
        now = pd.Series(
            [current.get((o, s)) for o, s in zip(old["onsets"], old["snr_db"], strict=True)],
            index=old.index,
            dtype=object,
        )
        keep &= now.isna() | (old["features_sha256"] == now)
    else:
        keep &= ~old["snr_db"].isin(set(new["snr_db"]))  # an older table: keep what is unrelated
    return pd.concat([new, old[keep]], ignore_index=True)


def write_results(
    workspace: Path, table: pd.DataFrame, per_class: pd.DataFrame, *, wait: bool = True
) -> None:
    """Merge ``table`` and ``per_class`` into the workspace's results files (under their lock).

    Raises:
        LockedError: another process writes them and ``wait`` is false.
    """
    out = paths.results_dir(Path(workspace))
    with workspace_lock(workspace, "grid-results", what=f"the results tables in {out}", wait=wait):
        clean_orphans(out)
        for name, rows in ((RESULTS_FILE, table), (PER_CLASS_FILE, per_class)):
            old = pd.read_csv(out / name) if (out / name).is_file() else None
            atomic_write_text(out / name, merge_results(old, rows).to_csv(index=False))


def read_results(workspace: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, per_class_ap)`` tables written by :func:`~.grid.run_grid`.

    Raises:
        FileNotFoundError: the grid has not been run in ``workspace``.
    """
    folder = paths.results_dir(Path(workspace))
    for name in (RESULTS_FILE, PER_CLASS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} does not exist; run the grid first")
    return (
        with_recipe(pd.read_csv(folder / RESULTS_FILE)),
        with_recipe(pd.read_csv(folder / PER_CLASS_FILE)),
    )


def with_recipe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an ``onsets`` column: tables written before the recipe setting existed
    hold only the paper's recipe (``fixed``)."""
    if "onsets" in frame.columns:
        return frame
    frame = frame.copy()
    frame.insert(min(2, len(frame.columns)), "onsets", "fixed")
    return frame


def read_run_logs(workspace: Path, results: pd.DataFrame) -> pd.DataFrame:
    """The ``log.csv`` of every run in ``results``, stacked (learning curves of a grid).

    Args:
        workspace: the profile's workspace.
        results: rows of :func:`~.grid.run_grid`'s table (any subset); one log per ``run_id``.

    Returns:
        The log columns (``LOG_COLUMNS``) with the cell's ``model, snr_db, fold, alpha,
        decoder_activation, seed`` and ``run_id`` in front, runs in the order of ``results``.
    """
    cells = results.drop_duplicates("run_id")
    frames = []
    for row in cells.itertuples(index=False):
        log = pd.read_csv(paths.runs_dir(Path(workspace)) / row.run_id / LOG_FILE)
        for column in ("run_id", *reversed(IDENTITY[1:])):
            if hasattr(row, column):
                log.insert(0, column, getattr(row, column))
        frames.append(log)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
