"""The result cache seen from the grid: which cells are done and which are still to do.

The run directories are the cache (a cell is done when its run directory holds
``metrics.json``); every engine (:mod:`paperlib.experiment.engines`) and the localisation runs
ask this one function, so they all agree on what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from paperlib.config import Profile
from paperlib.experiment.cells import Cell
from paperlib.run.features import (
    FeatureFileError,
    MissingFeaturesError,
    feature_path_for_snr,
    features_sha256,
)
from paperlib.run.key import run_key
from paperlib.run.result import RunResult, is_complete, load_run

__all__ = ["split_complete"]


def split_complete(
    profile: Profile, workspace: Path, cells: Sequence[Cell]
) -> tuple[dict[Cell, RunResult], list[Cell]]:
    """``(done, to_do)``: cells whose run directory holds ``metrics.json`` (with their results)
    and the rest, in the order of ``cells``.

    A cell whose key cannot be computed here (its feature file is missing or broken) is to do:
    its worker raises the trainer's own error, which names the file.
    """
    done: dict[Cell, RunResult] = {}
    to_do: list[Cell] = []
    hashes: dict[tuple[str, int], str] = {}
    for cell in cells:
        data = (cell.onsets, cell.snr_db)  # each recipe has its own feature file per SNR
        try:
            if data not in hashes:
                path = feature_path_for_snr(workspace, cell.snr_db, onsets=cell.onsets)
                hashes[data] = features_sha256(path)
            key = run_key(profile, features_sha256=hashes[data], **cell.kwargs())
        except (MissingFeaturesError, FeatureFileError):
            to_do.append(cell)
            continue
        run_dir = key.run_dir(workspace)
        if is_complete(run_dir):
            done[cell] = load_run(run_dir)
        else:
            to_do.append(cell)
    return done, to_do
