"""The position prior: a trivial localiser that knows only where the recipe puts events.

Every event of a mixture starts at 0.5, 3.0 or 5.5 s (:data:`paperlib.data.plan.ONSETS_S`) and
lasts at most 2 s (:data:`~paperlib.data.plan.MAX_EVENT_S`). Without looking at the audio, a
clip's tag scores spread uniformly over those three slots are already a strong frame-level
detector: :func:`position_prior` gives every frame inside a slot the clip's tag score of the
class, and every other frame 0. A model localises only if it beats this.

The ``random`` onset recipe has no slots: there the prior weights each frame by the recipe's
true marginal, **estimated on the training folds** (:func:`coverage_prior`: the share of the
training folds' events whose span holds the frame's centre; low at the clip's ends, flat in
the middle), so the prior still knows nothing but where the recipe tends to put events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.data.features import frame_centres_s
from paperlib.data.plan import MAX_EVENT_S, ONSETS_S
from paperlib.localisation.errors import LocalisationError

__all__ = ["coverage_prior", "position_prior", "slot_frames", "uniform_in_time"]


def slot_frames(n_frames: int, time_pool: int = 1) -> np.ndarray:
    """Which model frames lie in an event slot: (T,) bool.

    Frame ``t`` is in a slot when its centre lies in ``[onset, onset + 2 s)`` for one of the
    recipe's onsets (the strong targets' rule applied to a 2-s event at each onset).
    """
    centres = frame_centres_s(n_frames, time_pool)
    inside = np.zeros(n_frames, dtype=bool)
    for onset in ONSETS_S:
        inside |= (centres >= onset) & (centres < onset + MAX_EVENT_S)
    return inside


def coverage_prior(
    plan: pd.DataFrame, folds: list[int] | tuple[int, ...], n_frames: int, time_pool: int = 1
) -> np.ndarray:
    """Share of the events of ``folds`` whose span ``[onset_s, offset_s)`` holds each model
    frame's centre (the strong targets' rule): (T,) float32 in [0, 1].

    Raises:
        LocalisationError: no event of the plan lies in ``folds``.
    """
    rows = plan[plan["fold"].isin(list(folds))]
    if rows.empty:
        raise LocalisationError(f"the plan has no events in folds {list(folds)}")
    centres = frame_centres_s(n_frames, time_pool)[None, :]
    onset = rows["onset_s"].to_numpy(dtype=np.float64)[:, None]
    offset = rows["offset_s"].to_numpy(dtype=np.float64)[:, None]
    return ((centres >= onset) & (centres < offset)).mean(axis=0).astype(np.float32)


def position_prior(
    tag_scores: np.ndarray, n_frames: int, time_pool: int = 1, weights: np.ndarray | None = None
) -> np.ndarray:
    """Frame scores of the position prior: (N, K) tag scores -> (N, K, T).

    ``tag_scores`` are the true tags (0/1) or a model's clip probabilities; each frame gets
    its clip's score of the class times the frame's weight: ``weights`` (T,), by default the
    fixed recipe's slots (:func:`slot_frames`: 1 inside a slot, 0 elsewhere; for the random
    recipe :func:`coverage_prior`).

    Raises:
        LocalisationError: ``tag_scores`` is not (clips, classes), or ``weights`` is not (T,).
    """
    tags = np.asarray(tag_scores, dtype=np.float32)
    if tags.ndim != 2:
        raise LocalisationError(f"tag scores of shape {tags.shape}: expected (clips, classes)")
    w = slot_frames(n_frames, time_pool) if weights is None else np.asarray(weights)
    if w.shape != (n_frames,):
        raise LocalisationError(f"prior weights of shape {w.shape}: expected ({n_frames},)")
    return tags[:, :, None] * w.astype(np.float32)[None, None, :]


def uniform_in_time(tag_scores: np.ndarray, n_frames: int) -> np.ndarray:
    """Frame scores that know the tags but not the time: (N, K) tag scores -> (N, K, T).

    Every frame of a clip gets its clip's score of the class. With the true tags its frame AP
    is the share of active frames (:func:`paperlib.localisation.temporal.active_frame_share`):
    the chance row of frame AP.

    Raises:
        LocalisationError: ``tag_scores`` is not (clips, classes), or ``n_frames`` < 1.
    """
    tags = np.asarray(tag_scores, dtype=np.float32)
    if tags.ndim != 2 or n_frames < 1:
        raise LocalisationError(
            f"tag scores of shape {tags.shape} and n_frames={n_frames}: expected (clips, "
            "classes) and at least one frame"
        )
    return np.repeat(tags[:, :, None], n_frames, axis=2)
