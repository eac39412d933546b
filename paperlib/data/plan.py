"""The mixture plan (paper Section IV-A, after Kong et al. 2019): folds, backgrounds, events.

Recipe (seeded, deterministic):

1. Event folds: the row indices of the FSDKaggle2018 CSV are shuffled with
   ``default_rng([seed, 1])`` and dealt round-robin, so row ``perm[i]`` gets fold ``i % 4 + 1``.
2. Only ``manually_verified == 1`` rows go into mixtures. For each fold the list of its
   verified rows is shuffled (``default_rng([seed, 2, fold])``) and repeated until it fills
   ``3 * mixtures_per_fold`` slots, so a clip (and a class) can occur more than once.
3. Backgrounds: the ``meta.csv`` rows are shuffled with ``default_rng([seed, 3])`` and each of
   the first ``4 * mixtures_per_fold`` is used exactly once (fold 1's mixtures first).
4. Events are cut to their first :data:`MAX_EVENT_S` = 2 s and placed by the onset recipe
   (``data.onsets``, :data:`paperlib.paths.ONSET_RECIPES`):

   * ``fixed`` (the paper's, after Kong et al.): they start at :data:`ONSETS_S` = 0.5, 3.0,
     5.5 s, so they never overlap; ``offset_s = onset_s + min(duration, 2)``.
   * ``random`` (:func:`random_onsets`): the same plan (same events, backgrounds, folds and
     clipped durations), only the onsets move. With clipped durations ``d_0, d_1, d_2`` the
     free time ``F = 10 - sum(d)`` is split into four gaps (before, between and after the
     events) by a uniform point of the simplex ``{g >= 0, sum(g) = F}`` (the spacings of
     three sorted uniform draws on ``[0, F]``), and the events are laid out in a uniformly
     random order. Since the map from gaps to onsets has unit Jacobian and every order's
     region has the same volume ``F^3 / 3!``, the three onsets are **uniform over every
     placement that keeps the events inside the 10-s clip and apart**. Seeded per mixture
     (``default_rng([seed, 5, fold, i])``), in whole microseconds (the 6-decimal plan
     format is exact, so the non-overlap survives the CSV).

The plan is a CSV with one row per event and these columns (:data:`PLAN_COLUMNS`):

==============  =================================================================
``mixture``     mixture name, ``fold{k}_{i:04d}`` (also the WAV file stem)
``fold``        event fold 1-4 of the mixture (all three events share it)
``background``  background WAV, relative to the TAU folder (``audio/...wav``)
``scene``       the background's scene label
``event_index`` 0, 1, 2 (the event's pick order; the order of onsets in the fixed recipe)
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
from pathlib import Path

import numpy as np
import pandas as pd

from paperlib import atomic
from paperlib.data.audio import CLIP_SECONDS, ensure_writable_dir
from paperlib.data.classes import CLASS_INDEX
from paperlib.data.errors import MetadataError, MissingSourceError, NotEnoughDataError
from paperlib.paths import check_onsets

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
    events: pd.DataFrame,
    backgrounds: pd.DataFrame,
    *,
    mixtures_per_fold: int,
    seed: int,
    keep_recordings_in_one_fold: bool = False,
    onsets: str = "fixed",
) -> pd.DataFrame:
    """Build the plan from reader outputs (:func:`~paperlib.data.sources.read_fsd` /
    :func:`~paperlib.data.sources.read_tau`, or :func:`paperlib.data.check.check_sources`).

    Args:
        events: rows with ``label``, ``manually_verified``, ``source``, ``duration_s`` and
            optionally ``usable`` (bool; a row that is not usable keeps its place in the fold
            assignment, so excluding a bad file changes only its own fold, but is never mixed).
        backgrounds: rows with ``filename``, ``scene_label`` (``identifier`` when
            ``keep_recordings_in_one_fold``) and optionally ``usable``.
        mixtures_per_fold: mixtures in each of the 4 folds.
        seed: seed of the folds and of every shuffle.
        keep_recordings_in_one_fold: deal backgrounds to folds by recording (TAU
            ``identifier``), so no recording's segments are heard in two folds (off in the
            paper's recipe; see :func:`background_folds`).
        onsets: ``fixed`` (the paper's slots) or ``random`` (:func:`random_onsets` applied
            to the fixed plan, so only ``onset_s`` and ``offset_s`` differ).

    Returns:
        DataFrame with :data:`PLAN_COLUMNS`, ``4 * mixtures_per_fold * 3`` rows.

    Raises:
        ValueError: ``mixtures_per_fold`` below 1, or an unknown ``onsets``.
        NotEnoughDataError: fewer backgrounds than ``4 * mixtures_per_fold``, or a fold with
            fewer than 3 verified events (a mixture needs 3; the message gives the counts).
    """
    if mixtures_per_fold < 1:
        raise ValueError(f"mixtures_per_fold={mixtures_per_fold}: expected at least 1")
    check_onsets(onsets)
    usable = _usable(events)
    folds = assign_folds(len(events), seed=seed)
    verified = (events["manually_verified"].to_numpy() == 1) & usable
    if events["duration_s"][verified].isna().any():
        raise ValueError("events need 'duration_s' (read them with check_audio=True)")
    per_fold = background_folds(
        backgrounds,
        mixtures_per_fold=mixtures_per_fold,
        seed=seed,
        by_recording=keep_recordings_in_one_fold,
    )

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
            bg = backgrounds.iloc[per_fold[fold - 1][i]]
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
    plan = pd.DataFrame(rows, columns=list(PLAN_COLUMNS))
    return random_onsets(plan, seed=seed) if onsets == "random" else plan


MICROSECONDS = 1_000_000


def random_onsets(plan: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """The plan with each mixture's onsets drawn uniformly (the ``random`` recipe, above).

    Every row keeps its event, background, fold and clipped duration (``offset_s -
    onset_s`` of ``plan``, in whole microseconds); only ``onset_s`` and ``offset_s`` change.
    Mixture ``i`` of fold ``k`` (its order in the fold) draws from ``default_rng([seed, 5,
    k, i])``: the same seed gives the same onsets, and a mixture's onsets do not depend on
    the other mixtures.

    Returns:
        A new DataFrame (the input is not changed) with the events of every mixture inside
        ``[0, 10]`` s and pairwise disjoint.
    """
    out = plan.copy()
    durations = np.round((plan["offset_s"] - plan["onset_s"]).to_numpy() * MICROSECONDS)
    durations = durations.astype(np.int64)
    onset_us = np.zeros(len(plan), dtype=np.int64)
    clip_us = round(CLIP_SECONDS * MICROSECONDS)
    seen: dict[int, int] = {}
    for rows in plan.groupby("mixture", sort=False).indices.values():
        fold = int(plan["fold"].iloc[rows[0]])
        index = seen[fold] = seen.get(fold, -1) + 1
        rng = np.random.default_rng([seed, 5, fold, index])
        d = durations[rows]
        free = clip_us - int(d.sum())
        cuts = np.floor(np.sort(rng.uniform(0.0, free, size=d.size))).astype(np.int64)
        gaps = np.diff(np.concatenate([[0], cuts]))  # the first d.size of the d.size + 1 gaps
        order = rng.permutation(d.size)  # the events' order in time
        start = 0
        for gap, j in zip(gaps, order, strict=True):
            start += int(gap)
            onset_us[rows[j]] = start
            start += int(d[j])
    out["onset_s"] = onset_us / MICROSECONDS
    out["offset_s"] = (onset_us + durations) / MICROSECONDS
    return out


def _usable(frame: pd.DataFrame) -> np.ndarray:
    if "usable" not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return frame["usable"].to_numpy(dtype=bool)


def background_folds(
    backgrounds: pd.DataFrame, *, mixtures_per_fold: int, seed: int, by_recording: bool = False
) -> list[np.ndarray]:
    """Row indices of the backgrounds each fold's mixtures use, in mixture order: 4 x (m,).

    Default (the paper's recipe): the rows are shuffled with ``default_rng([seed, 3])`` and
    the usable ones dealt in order, fold 1's first; segments of one recording can land in
    different folds. ``by_recording``: the recordings (``identifier``) are shuffled with
    ``default_rng([seed, 4])`` and each goes whole to the fold with the fewest backgrounds so
    far (ties: the lowest fold) until every fold has ``m``; a fold uses its first ``m``.

    Raises:
        NotEnoughDataError: fewer usable backgrounds than 4 x m (or, by recording, a fold
            left short), with the counts.
    """
    usable = _usable(backgrounds)
    needed = NUM_FOLDS * mixtures_per_fold
    if usable.sum() < needed:
        raise NotEnoughDataError(
            f"{int(usable.sum())} background(s) available, but {NUM_FOLDS} folds x "
            f"{mixtures_per_fold} mixtures need {needed} (each background is used once)"
        )
    if not by_recording:
        order = np.random.default_rng([seed, 3]).permutation(len(backgrounds))
        order = order[usable[order]][:needed]
        return [
            order[k * mixtures_per_fold : (k + 1) * mixtures_per_fold] for k in range(NUM_FOLDS)
        ]
    rows = np.flatnonzero(usable)
    ids = backgrounds["identifier"].to_numpy()[rows]
    recordings = list(dict.fromkeys(ids.tolist()))
    order = np.random.default_rng([seed, 4]).permutation(len(recordings))
    members = {r: rows[ids == r] for r in recordings}
    dealt: list[list[int]] = [[] for _ in range(NUM_FOLDS)]
    for index in order:
        open_folds = [k for k in range(NUM_FOLDS) if len(dealt[k]) < mixtures_per_fold]
        if not open_folds:
            break
        target = min(open_folds, key=lambda k: (len(dealt[k]), k))
        dealt[target].extend(members[recordings[index]].tolist())
    short = {k + 1: len(d) for k, d in enumerate(dealt) if len(d) < mixtures_per_fold}
    if short:
        raise NotEnoughDataError(
            f"keeping each recording in one fold leaves fold(s) {short} with fewer than "
            f"{mixtures_per_fold} backgrounds ({len(recordings)} recordings, {len(rows)} usable "
            "segments); use fewer mixtures per fold or turn data.keep_recordings_in_one_fold off"
        )
    return [np.asarray(d[:mixtures_per_fold], dtype=np.int64) for d in dealt]


def write_plan(plan: pd.DataFrame, path: Path) -> Path:
    """Write the plan CSV atomically (fixed number formats: byte-identical for equal plans)."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    text = plan[list(PLAN_COLUMNS)].to_csv(index=False, lineterminator="\n", float_format="%.6f")
    return atomic.write_text(path, text)


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
    from paperlib.data.sources import inside_folder

    outside = sorted(
        {name for name in (*plan["source"], *plan["background"]) if not inside_folder(str(name))}
    )
    if outside:
        raise MetadataError(
            f"{path}: source path(s) {outside[:5]} leave their dataset folder; expected "
            "relative paths without '..'"
        )
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
    check_placement(plan, where=str(path))
    return plan


PLACEMENT_TOLERANCE_S = 1e-6
"""Slack of the placement checks (the plan's 6-decimal format)."""


def check_placement(plan: pd.DataFrame, *, where: str = "plan") -> None:
    """Every event inside the 10-s clip, at most :data:`MAX_EVENT_S` long, and no two events
    of a mixture overlapping (an event may start where the previous one ends).

    Raises:
        MetadataError: the first offending event, naming ``where``, the CSV line (header =
            line 1) and the mixture, with its onset and offset.
    """
    onset = plan["onset_s"].to_numpy(dtype=np.float64)
    offset = plan["offset_s"].to_numpy(dtype=np.float64)
    tol = PLACEMENT_TOLERANCE_S

    def fail(row: int, problem: str) -> None:
        raise MetadataError(
            f"{where}, line {row + 2} (mixture {plan['mixture'].iloc[row]}, event "
            f"{plan['event_index'].iloc[row]}): onset {onset[row]:.6f} s, offset "
            f"{offset[row]:.6f} s: {problem}"
        )

    bad = ~np.isfinite(onset) | ~np.isfinite(offset)
    if bad.any():
        fail(int(np.flatnonzero(bad)[0]), "expected finite numbers")
    for test, problem in (
        (onset < -tol, "starts before the clip (expected onset >= 0)"),
        (offset > CLIP_SECONDS + tol, f"ends after the {CLIP_SECONDS:g}-s clip"),
        (offset <= onset, "expected offset > onset"),
        (offset - onset > MAX_EVENT_S + tol, f"lasts more than {MAX_EVENT_S:g} s"),
    ):
        if test.any():
            fail(int(np.flatnonzero(test)[0]), problem)
    for rows in plan.groupby("mixture", sort=False).indices.values():
        ordered = rows[np.argsort(onset[rows], kind="stable")]
        clash = np.flatnonzero(onset[ordered[1:]] < offset[ordered[:-1]] - tol)
        if clash.size:
            previous, row = ordered[clash[0]], ordered[clash[0] + 1]
            fail(
                int(row),
                f"overlaps event {plan['event_index'].iloc[previous]} (line {previous + 2}, "
                f"{onset[previous]:.6f}-{offset[previous]:.6f} s)",
            )


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


def class_coverage(plan: pd.DataFrame, folds: tuple[int, ...] = (1, 2, 3, 4)) -> pd.DataFrame:
    """Clips with each class in the training and the validation folds, per held-out fold.

    Args:
        plan: a plan (:func:`make_plan` / :func:`read_plan`).
        folds: the held-out folds to report (the grid's ``folds``).

    Returns:
        One row per class and held-out fold: ``class``, ``held_out_fold``, ``train_clips``
        (mixtures of the other folds with the class), ``val_clips`` (mixtures of the held-out
        fold with it). A class with 0 on either side cannot be learnt or scored there.
    """
    from paperlib.data.classes import CLASSES

    clips = plan.drop_duplicates(["mixture", "label"])
    table = pd.crosstab(clips["label"], clips["fold"]).reindex(
        index=list(CLASSES), columns=range(1, NUM_FOLDS + 1), fill_value=0
    )
    rows = []
    for fold in folds:
        others = [k for k in range(1, NUM_FOLDS + 1) if k != fold]
        for name in CLASSES:
            rows.append(
                {
                    "class": name,
                    "held_out_fold": int(fold),
                    "train_clips": int(table.loc[name, others].sum()),
                    "val_clips": int(table.loc[name, fold]),
                }
            )
    return pd.DataFrame(rows)


def missing_classes(coverage: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`class_coverage` where a class has no training or no validation clip,
    with a column ``missing`` (``training``, ``validation`` or ``both``)."""
    out = coverage[(coverage["train_clips"] == 0) | (coverage["val_clips"] == 0)].copy()
    train, val = out["train_clips"] == 0, out["val_clips"] == 0
    out["missing"] = np.where(train & val, "both", np.where(train, "training", "validation"))
    return out.reset_index(drop=True)


def split_recordings(plan: pd.DataFrame, backgrounds: pd.DataFrame) -> tuple[int, int]:
    """``(recordings heard in more than one fold, recordings used)`` of a plan.

    ``backgrounds`` maps ``filename`` to the TAU recording ``identifier``; a recording whose
    segments back mixtures of two folds leaks its acoustic conditions from training into
    validation.
    """
    ids = dict(zip(backgrounds["filename"], backgrounds["identifier"], strict=True))
    used = mixtures(plan)
    folds = used.assign(recording=used["background"].map(ids)).groupby("recording")["fold"]
    counts = folds.nunique()
    return int((counts > 1).sum()), len(counts)
