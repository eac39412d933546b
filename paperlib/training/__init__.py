"""Training, evaluation and the experiment grid (paper Sections IV-V, Tables IV-VIII).

Chapter 3 of the book trains one model (:func:`train_run`), chapters 4 and 5 run the grid
(:func:`run_grid`) and compare with the paper (:mod:`paperlib.training.tables`)::

    from paperlib.training import load_split, train_run, run_grid
    result = train_run(profile, workspace, model="2APAE", snr_db=20, fold=1)
    result.metrics["micro_ap"], result.log          # best-epoch metrics, per-epoch table
"""

from paperlib.training.data import (
    FeatureFileError,
    FoldNotPresentError,
    MissingFeaturesError,
    Split,
    feature_path_for_snr,
    load_split,
)
from paperlib.training.grid import Cell, grid_cells, read_results, run_grid
from paperlib.training.runs import RunKey, run_key
from paperlib.training.trainer import (
    LOG_COLUMNS,
    CheckpointMismatchError,
    RunResult,
    load_run,
    predict,
    train_run,
)

__all__ = [
    "LOG_COLUMNS",
    "Cell",
    "CheckpointMismatchError",
    "FeatureFileError",
    "FoldNotPresentError",
    "MissingFeaturesError",
    "RunKey",
    "RunResult",
    "Split",
    "feature_path_for_snr",
    "grid_cells",
    "load_run",
    "load_split",
    "predict",
    "read_results",
    "run_grid",
    "run_key",
    "train_run",
]
