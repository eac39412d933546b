"""The mixture plan (paper Section IV-A, after Kong et al. 2019): folds, backgrounds, events.

Recipe (seeded, deterministic):

1. Event folds: the row indices of the FSDKaggle2018 CSV are shuffled with
   ``default_rng([seed, 1])`` and dealt round-robin, so row ``perm[i]`` gets fold ``i % 4 + 1``.
2. Only ``manually_verified == 1`` rows go into mixtures. For each fold the list of its
   verified rows is shuffled (``default_rng([seed, 2, fold])``) and repeated until it fills
   ``3 * mixtures_per_fold`` slots, so a clip (and a class) can occur more than once.
3. Backgrounds: the ``meta.csv`` rows are shuffled with ``default_rng([seed, 3])`` and each of
   the first ``4 * mixtures_per_fold`` is used exactly once (fold 1's mixtures first).
4. Events start at :data:`ONSETS_S` = 0.5, 3.0, 5.5 s and are cut to their first
   :data:`MAX_EVENT_S` = 2 s, so they never overlap; ``offset_s = onset_s + min(duration, 2)``.

The plan is a CSV with one row per event and these columns (:data:`PLAN_COLUMNS`):

==============  =================================================================
``mixture``     mixture name, ``fold{k}_{i:04d}`` (also the WAV file stem)
``fold``        event fold 1-4 of the mixture (all three events share it)
``background``  background WAV, relative to the TAU folder (``audio/...wav``)
``scene``       the background's scene label
``event_index`` 0, 1, 2 (order of onsets)
``label``       event class (one of the 41)
``source``      event WAV, relative to the FSDKaggle2018 folder (``audio_train/...wav``)
``onset_s``     event start in the mixture, seconds
``offset_s``    event end in the mixture, seconds (exclusive), 6 decimals
==============  =================================================================

Same sources and seed -> the same file byte for byte (fixed float format, ``\\n`` line ends).
One plan serves every SNR.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from paperlib.data.audio import ensure_writable_dir
from paperlib.data.classes import CLASS_INDEX
from paperlib.data.errors import MetadataError, MissingSourceError, NotEnoughDataError

NUM_FOLDS = 4
EVENTS_PER_MIXTURE = 3
ONSETS_S: tuple[float, ...] = (0.5, 3.0, 5.5)
MAX_EVENT_S = 2.0
PLAN_COLUMNS: tuple[str, ...] = (
    "mixture",
    "fold",
    "background",
    "scene",
    "event_index",
    "label",
    "source",
    "onset_s",
    "offset_s",
)


def assign_folds(num_rows: int, *, seed: int) -> np.ndarray:
    """Fold (1..4) of each of ``num_rows`` CSV rows: shuffle, then deal round-robin. (num_rows,) int."""
    order = np.random.default_rng([seed, 1]).permutation(num_rows)
    folds = np.empty(num_rows, dtype=np.int64)
    folds[order] = np.arange(num_rows) % NUM_FOLDS + 1
    return folds


def make_plan(
    events: pd.DataFrame, backgrounds: pd.DataFrame, *, mixtures_per_fold: int, seed: int
) -> pd.DataFrame:
    """Build the plan from reader outputs (:func:`~paperlib.data.sources.read_fsd` /
    :func:`~paperlib.data.sources.read_tau`).

    Args:
        events: rows with ``label``, ``manually_verified``, ``source``, ``duration_s``.
        backgrounds: rows with ``filename``, ``scene_label``.
        mixtures_per_fold: mixtures in each of the 4 folds.
        seed: seed of the folds and of every shuffle.

    Returns:
        DataFrame with :data:`PLAN_COLUMNS`, ``4 * mixtures_per_fold * 3`` rows.

    Raises:
        ValueError: ``mixtures_per_fold`` below 1.
        NotEnoughDataError: fewer backgrounds than ``4 * mixtures_per_fold``, or a fold with
            fewer than 3 verified events (a mixture needs 3; the message gives the counts).
    """
    if mixtures_per_fold < 1:
        raise ValueError(f"mixtures_per_fold={mixtures_per_fold}: expected at least 1")
    needed = NUM_FOLDS * mixtures_per_fold
    if len(backgrounds) < needed:
        raise NotEnoughDataError(
            f"{len(backgrounds)} background(s) available, but {NUM_FOLDS} folds x "
            f"{mixtures_per_fold} mixtures need {needed} (each background is used once)"
        )
    if events["duration_s"].isna().any():
        raise ValueError("events need 'duration_s' (read them with check_audio=True)")
    folds = assign_folds(len(events), seed=seed)
    verified = events["manually_verified"].to_numpy() == 1
    bg_order = np.random.default_rng([seed, 3]).permutation(len(backgrounds))[:needed]

    rows = []
    for fold in range(1, NUM_FOLDS + 1):
        pool = np.flatnonzero(verified & (folds == fold))
        if pool.size < EVENTS_PER_MIXTURE:
            counts = {k: int(np.sum(verified & (folds == k))) for k in range(1, NUM_FOLDS + 1)}
            raise NotEnoughDataError(
                f"fold {fold} has {pool.size} verified event(s), but a mixture needs "
                f"{EVENTS_PER_MIXTURE}; verified events per fold: {counts} "
                f"({int(verified.sum())} verified of {len(events)} rows)"
            )
        pool = np.random.default_rng([seed, 2, fold]).permutation(pool)
        slots = EVENTS_PER_MIXTURE * mixtures_per_fold
        picks = np.resize(pool, slots)  # the shuffled list, repeated to cover every slot
        for i in range(mixtures_per_fold):
            bg = backgrounds.iloc[bg_order[(fold - 1) * mixtures_per_fold + i]]
            for j, onset in enumerate(ONSETS_S):
                ev = events.iloc[picks[EVENTS_PER_MIXTURE * i + j]]
                rows.append(
                    (
                        f"fold{fold}_{i:04d}",
                        fold,
                        bg["filename"],
                        bg["scene_label"],
                        j,
                        ev["label"],
                        ev["source"],
                        onset,
                        round(onset + min(float(ev["duration_s"]), MAX_EVENT_S), 6),
                    )
                )
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


def write_plan(plan: pd.DataFrame, path: Path) -> Path:
    """Write the plan CSV atomically (fixed number formats: byte-identical for equal plans)."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        plan[list(PLAN_COLUMNS)].to_csv(tmp, index=False, lineterminator="\n", float_format="%.6f")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_plan(path: Path) -> pd.DataFrame:
    """Read and check a plan CSV written by :func:`write_plan` (columns: :data:`PLAN_COLUMNS`).

    Raises:
        MissingSourceError: no such file.
        MetadataError: wrong columns, unknown labels, folds outside 1-4, or a mixture without
            exactly 3 events.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingSourceError(
            f"{path}: plan file not found (run `python -m paperlib data plan`)"
        )
    plan = pd.read_csv(
        path, dtype={"mixture": str, "background": str, "scene": str, "label": str, "source": str}
    )
    if tuple(plan.columns) != PLAN_COLUMNS:
        raise MetadataError(f"{path}: columns {list(plan.columns)}, expected {list(PLAN_COLUMNS)}")
    bad_labels = sorted(set(plan["label"]) - set(CLASS_INDEX))
    if bad_labels:
        raise MetadataError(f"{path}: label(s) {bad_labels} are not among the 41 classes")
    if not plan["fold"].between(1, NUM_FOLDS).all():
        raise MetadataError(f"{path}: fold values {sorted(set(plan['fold']))}, expected 1-4")
    sizes = plan.groupby("mixture", sort=False).size()
    if (sizes != EVENTS_PER_MIXTURE).any():
        raise MetadataError(
            f"{path}: mixture(s) {sizes[sizes != 3].index[:5].tolist()} do not "
            f"have exactly {EVENTS_PER_MIXTURE} events"
        )
    return plan


def plan_sha256(path: Path) -> str:
    """SHA-256 hex digest of the plan file (stored in feature files and stage manifests)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def mixtures(plan: pd.DataFrame) -> pd.DataFrame:
    """One row per mixture in plan order: ``mixture``, ``fold``, ``background``, ``scene``."""
    return plan.drop_duplicates("mixture")[["mixture", "fold", "background", "scene"]].reset_index(
        drop=True
    )


def class_counts(plan: pd.DataFrame) -> pd.DataFrame:
    """Events per class and fold in the plan: (41 classes x folds 1-4, plus ``total``) ints."""
    from paperlib.data.classes import CLASSES

    table = pd.crosstab(plan["label"], plan["fold"]).reindex(index=list(CLASSES), fill_value=0)
    table.columns = [f"fold {k}" for k in table.columns]
    table["total"] = table.sum(axis=1)
    table.index.name = "class"
    return table
