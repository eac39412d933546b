"""One training run: its key and directory, the recipe, the loop, the cached ``train_run``.

Chapter 3 of the book trains one model; the experiment (:mod:`paperlib.experiment`) runs many::

    from paperlib.run import load_split, train_run
    result = train_run(profile, workspace, model="2APAE", snr_db=20, fold=1)
    result.metrics["micro_ap"], result.log          # best-epoch metrics, per-epoch table

Modules, each importing only those above it:

- :mod:`.key`: what a run depends on, its hash and its directory (:func:`run_key`);
- :mod:`.features`: the feature file's reader (:func:`load_split`) and its one hash
  (:func:`features_sha256`);
- :mod:`.precision`, :mod:`.provenance`: the arithmetic of a run and what it records;
- :mod:`.result`: the run directory's files and :func:`load_run`;
- :mod:`.checkpoint`: the resumable training state;
- :mod:`.recipe`: the loss (:func:`loss_terms`), :func:`train_step` and :func:`predict`;
- :mod:`.loop`: the epochs (:func:`~.loop.fit`);
- :mod:`.train`: :func:`train_run`, cached by the run key and locked per run.
"""

from paperlib.run.checkpoint import CheckpointMismatchError
from paperlib.run.features import (
    FeatureFileError,
    FoldNotPresentError,
    MissingFeaturesError,
    Split,
    feature_path_for_snr,
    features_sha256,
    load_split,
    open_feature_file,
    pool_input,
    unpool_input,
)
from paperlib.run.key import MODEL_WITH_DECODER, RunKey, run_key
from paperlib.run.recipe import loss_terms, predict, prepare_model, resolve_device, train_step
from paperlib.run.result import LOG_COLUMNS, RunResult, is_complete, load_run
from paperlib.run.train import train_run

__all__ = [
    "LOG_COLUMNS",
    "MODEL_WITH_DECODER",
    "CheckpointMismatchError",
    "FeatureFileError",
    "FoldNotPresentError",
    "MissingFeaturesError",
    "RunKey",
    "RunResult",
    "Split",
    "feature_path_for_snr",
    "features_sha256",
    "is_complete",
    "load_run",
    "load_split",
    "loss_terms",
    "open_feature_file",
    "pool_input",
    "predict",
    "prepare_model",
    "resolve_device",
    "run_key",
    "train_run",
    "train_step",
    "unpool_input",
]
