"""Reading one cross-validation split from a feature file, and the file's one hash.

The feature file holds raw log-mel features of every clip of one SNR, the fold of each clip
and, for each fold k present, ``stats/fold{k}/mean|std``: per-mel-bin statistics over the
frames of the clips *not* in fold k. :func:`load_split` standardises both the training folds
and the held-out fold with the statistics of the training folds only (paper Section IV-C).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from paperlib import paths
from paperlib.fingerprint import cached_sha256

__all__ = [
    "FeatureFileError",
    "FoldNotPresentError",
    "MissingFeaturesError",
    "Split",
    "feature_path_for_snr",
    "features_sha256",
    "load_split",
    "open_feature_file",
    "pool_input",
    "unpool_input",
]


class MissingFeaturesError(FileNotFoundError):
    """A feature file that does not exist (e.g. an SNR whose features were never made)."""


class FeatureFileError(ValueError):
    """A feature file that is unreadable, incomplete (no ``complete`` attribute) or malformed."""


class FoldNotPresentError(ValueError):
    """A held-out fold that has no clips (or no statistics) in the feature file."""


@dataclass(frozen=True)
class Split:
    """Standardised training and validation arrays of one held-out fold.

    Attributes:
        x_train: (N_train, T, F) float32 standardised log-mel of the training folds.
        y_train: (N_train, K) float32 weak targets.
        x_val: (N_val, T, F) float32 standardised log-mel of the held-out fold.
        y_val: (N_val, K) float32 weak targets.
        val_names: (N_val,) clip names of the held-out fold.
        mean, std: (F,) float32 statistics used (training folds only).
        held_out_fold: the fold used for validation.
        snr_db: SNR of the file.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_names: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    held_out_fold: int
    snr_db: int


def pool_input(x: np.ndarray, time_pool: int = 1, mel_pool: int = 1) -> np.ndarray:
    """Average non-overlapping groups of ``time_pool`` frames and ``mel_pool`` mel bins.

    The model's input resolution is a profile setting (``model.time_pool``, ``model.mel_pool``):
    the feature file always holds the paper's 311 x 64 log-mels, and a cheaper profile averages
    them on loading. Trailing frames or bins that do not fill a group are dropped, so model
    frame ``t`` covers the input frames ``t * time_pool .. (t + 1) * time_pool - 1``.

    Args:
        x: (N, T, F) features.
        time_pool, mel_pool: group sizes (>= 1).

    Returns:
        (N, T // time_pool, F // mel_pool) float32; ``x`` itself (as float32) when both are 1.

    Raises:
        ValueError: a group size < 1 or larger than the axis it pools.
    """
    x = np.asarray(x, dtype=np.float32)
    n, t, f = x.shape
    if time_pool < 1 or mel_pool < 1 or time_pool > t or mel_pool > f:
        raise ValueError(
            f"pooling (time_pool={time_pool}, mel_pool={mel_pool}) does not fit input (T={t}, "
            f"F={f}): expected 1 <= time_pool <= T and 1 <= mel_pool <= F"
        )
    if time_pool == 1 and mel_pool == 1:
        return x
    t_out, f_out = t // time_pool, f // mel_pool
    trimmed = x[:, : t_out * time_pool, : f_out * mel_pool]
    pooled = trimmed.reshape(n, t_out, time_pool, f_out, mel_pool).mean(axis=(2, 4))
    return np.ascontiguousarray(pooled, dtype=np.float32)


def unpool_input(pooled: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Undo :func:`pool_input` as well as it can be undone: repeat each value over its group.

    Frames or bins that pooling dropped (the remainder of ``T / time_pool``) repeat the last
    group. Used to turn a pooled (reconstructed) log-mel back into the 311 x 64 grid of the
    features, e.g. to listen to it.

    Args:
        pooled: (T', F') values on the pooled grid.
        shape: (T, F) of the grid before pooling (311, 64 for a 10-s clip).

    Returns:
        (T, F) float32.

    Raises:
        ValueError: ``pooled`` is larger than ``shape`` on an axis.
    """
    pooled = np.asarray(pooled, dtype=np.float32)
    (t_in, f_in), (t, f) = pooled.shape, shape
    if t_in > t or f_in > f or t_in < 1 or f_in < 1:
        raise ValueError(f"pooled grid {pooled.shape} does not fit in the grid {shape}")
    time_pool, mel_pool = t // t_in, f // f_in
    grown = np.repeat(np.repeat(pooled, time_pool, axis=0), mel_pool, axis=1)
    return np.pad(grown, ((0, t - grown.shape[0]), (0, f - grown.shape[1])), mode="edge")


def feature_path_for_snr(workspace: Path, snr_db: int, onsets: str = "fixed") -> Path:
    """The feature file of ``snr_db`` (onset recipe ``onsets``) in ``workspace``, checked to exist.

    Raises:
        MissingFeaturesError: no features were made for that SNR and recipe (lists the
            files that exist for the recipe).
        ValueError: an unknown ``onsets``.
    """
    path = paths.feature_file(workspace, snr_db, onsets)
    if not path.is_file():
        folder = path.parent
        present = sorted(p.stem for p in folder.glob("*.h5")) if folder.is_dir() else []
        recipe = "" if onsets == "fixed" else f" with {onsets} onsets"
        raise MissingFeaturesError(
            f"no features for SNR {snr_db} dB{recipe}: {path} does not exist "
            f"(feature files present: {', '.join(present) or 'none'}; "
            "run `python -m paperlib data --profile ...` or prepare_data first, "
            "with this SNR in data.snrs)"
        )
    return path


def check_feature_snr(feature_path: Path, snr_db: int) -> None:
    """The feature file's own ``snr_db`` attribute must be the run's SNR (a file without the
    attribute is taken at its word).

    Raises:
        ValueError: the file was made at another SNR (names the file and both values).
    """
    with open_feature_file(feature_path) as handle:
        found = handle.attrs.get("snr_db")
    if found is not None and int(found) != int(snr_db):
        raise ValueError(
            f"{feature_path} holds features at {int(found)} dB (its snr_db attribute), but the "
            f"run is for {int(snr_db)} dB: pass --snr {int(found)} (snr_db={int(found)}) or the "
            f"feature file of {int(snr_db)} dB"
        )


def open_feature_file(path: Path) -> h5py.File:
    """Open a complete feature file for reading (errors name the file and what is wrong)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFeaturesError(f"feature file {path} does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise FeatureFileError(
            f"feature file {path} is not a readable HDF5 file: {error}"
        ) from None
    if not bool(handle.attrs.get("complete", False)):
        handle.close()
        raise FeatureFileError(
            f"feature file {path} is incomplete (no 'complete' attribute): it was interrupted "
            "while being written; delete it and prepare the data again"
        )
    return handle


def features_sha256(path: Path) -> str:
    """SHA-256 of a complete feature file: the hash every run key and check uses.

    The file is first opened as :func:`open_feature_file` does (so a missing, unreadable or
    incomplete file raises its error, naming the file); the hash is then
    :func:`paperlib.fingerprint.cached_sha256` (computed once per version of the file).

    Raises:
        MissingFeaturesError, FeatureFileError: as :func:`open_feature_file`.
    """
    with open_feature_file(Path(path)):
        pass
    return cached_sha256(Path(path))


def present_folds(feature_path: Path) -> list[int]:
    """Folds that have clips in the feature file (sorted)."""
    with open_feature_file(Path(feature_path)) as handle:
        return sorted(int(f) for f in np.unique(handle["folds"][:]))


def load_split(
    feature_path: Path | str, held_out_fold: int, *, time_pool: int = 1, mel_pool: int = 1
) -> Split:
    """Load the training folds and the held-out fold, standardised with training-fold stats.

    Args:
        feature_path: the HDF5 feature file of one SNR.
        held_out_fold: the validation fold (1..4).
        time_pool, mel_pool: input pooling after standardisation (see :func:`pool_input`);
            the split's ``x_*`` are then (N, T // time_pool, F // mel_pool).

    Returns:
        The :class:`Split`.

    Raises:
        MissingFeaturesError: the file does not exist.
        FeatureFileError: the file is unreadable, incomplete or lacks a required dataset.
        FoldNotPresentError: the fold has no clips or no statistics (lists the present folds).
    """
    feature_path = Path(feature_path)
    with open_feature_file(feature_path) as handle:
        try:
            folds = handle["folds"][:].astype(np.int64)
            present = sorted(int(f) for f in np.unique(folds))
            if held_out_fold not in present or f"stats/fold{held_out_fold}" not in handle:
                raise FoldNotPresentError(
                    f"fold {held_out_fold} is not present in {feature_path}; "
                    f"folds present: {', '.join(map(str, present))}"
                )
            if len(present) < 2:
                raise FoldNotPresentError(
                    f"{feature_path} holds only fold(s) {present}: no training folds are left "
                    f"when fold {held_out_fold} is held out"
                )
            mean = handle[f"stats/fold{held_out_fold}/mean"][:].astype(np.float32)
            std = handle[f"stats/fold{held_out_fold}/std"][:].astype(np.float32)
            features = handle["features"][:]
            weak = handle["weak_targets"][:].astype(np.float32)
            names = handle["clip_names"].asstr()[:]
            snr_db = int(handle.attrs.get("snr_db", 0))
        except KeyError as error:
            raise FeatureFileError(
                f"feature file {feature_path} lacks a required dataset or group: {error}"
            ) from None
    if (
        features.ndim != 3
        or features.shape[0] != folds.shape[0]
        or mean.shape != (features.shape[2],)
    ):
        raise FeatureFileError(
            f"feature file {feature_path}: expected features (N, T, F) matching folds (N,) and "
            f"stats (F,); got {features.shape}, {folds.shape}, {mean.shape}"
        )
    safe_std = np.where(std > 0, std, 1.0).astype(np.float32)
    standardised = pool_input((features - mean) / safe_std, time_pool, mel_pool)
    val = folds == held_out_fold
    return Split(
        x_train=np.ascontiguousarray(standardised[~val]),
        y_train=weak[~val],
        x_val=np.ascontiguousarray(standardised[val]),
        y_val=weak[val],
        val_names=names[val],
        mean=mean,
        std=std,
        held_out_fold=int(held_out_fold),
        snr_db=snr_db,
    )
