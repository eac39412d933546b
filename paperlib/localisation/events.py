"""True events of held-out clips: event lists in seconds, frame edges and frame labels.

Model frames map to seconds through :func:`paperlib.data.features.frame_centres_s` only: a
model that averages groups of ``time_pool`` feature frames has ``311 // time_pool`` frames
centred at the means of their groups' centres. For the SED metrics, which need each frame's
start and end, :func:`frame_boundaries_s` puts the edges between frames halfway between their
centres and stretches the first and last frame to the clip's edges (0 and 10 s): a frame's
analysis window covers at least that much audio, and an event that ends with the clip is then
detectable up to its offset. Frame labels follow the strong targets' rule: frame ``t`` is active
for an event when its centre lies in ``[onset_s, offset_s)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from paperlib.data.audio import CLIP_SECONDS
from paperlib.data.classes import CLASS_INDEX, NUM_CLASSES
from paperlib.data.features import N_FRAMES, frame_centres_s, strong_targets
from paperlib.localisation.errors import LocalisationError

__all__ = ["Event", "check_frames", "clip_events", "frame_boundaries_s", "frame_labels"]


class Event(NamedTuple):
    """One true event: ``(onset_s, offset_s, label)``, the tuple ``sed_scores_eval`` expects."""

    onset_s: float
    offset_s: float
    label: str


def check_frames(n_frames: int, time_pool: int) -> None:
    """Check that a model with ``n_frames`` frames pools 10-s clips by ``time_pool``.

    Raises:
        LocalisationError: ``n_frames != 311 // time_pool``.
    """
    if time_pool < 1 or N_FRAMES // time_pool != n_frames:
        raise LocalisationError(
            f"{n_frames} model frames do not match time_pool={time_pool}: a 10-s clip pooled by "
            f"{time_pool} has {N_FRAMES // max(time_pool, 1)} frames"
        )


def clip_events(plan: pd.DataFrame, clip_names: Sequence[str]) -> list[list[Event]]:
    """The true events of each clip, from the mixture plan, sorted by onset.

    Args:
        plan: plan rows with ``mixture``, ``label``, ``onset_s``, ``offset_s``
            (:func:`paperlib.data.plan.read_plan`).
        clip_names: (N,) mixture names.

    Returns:
        N lists of :class:`Event`.

    Raises:
        LocalisationError: a clip that the plan does not hold.
    """
    groups = {name: rows for name, rows in plan.groupby("mixture", sort=False)}
    missing = [str(name) for name in clip_names if name not in groups]
    if missing:
        raise LocalisationError(
            f"{len(missing)} clip(s) are not in the mixture plan, e.g. {missing[0]!r}: the run's "
            "feature file and the workspace's plan.csv disagree (prepare the data again)"
        )
    events = []
    for name in clip_names:
        rows = groups[name].sort_values("onset_s")
        events.append(
            [
                Event(float(on), float(off), str(label))
                for on, off, label in zip(
                    rows["onset_s"], rows["offset_s"], rows["label"], strict=True
                )
            ]
        )
    return events


def frame_boundaries_s(
    n_frames: int, time_pool: int = 1, *, clip_s: float = CLIP_SECONDS
) -> np.ndarray:
    """Start and end of each model frame in seconds: (n_frames + 1,), from 0 to ``clip_s``.

    Frame ``t`` spans ``[edges[t], edges[t + 1])``; inner edges lie halfway between the
    centres given by :func:`~paperlib.data.features.frame_centres_s`.
    """
    if n_frames < 1:
        raise LocalisationError(f"n_frames={n_frames}: expected at least one frame")
    centres = frame_centres_s(n_frames, time_pool)
    if centres[-1] >= clip_s:
        raise LocalisationError(
            f"frame {n_frames - 1} is centred at {centres[-1]:.3f} s, beyond the clip's "
            f"{clip_s} s: too many frames for time_pool={time_pool}"
        )
    return np.concatenate([[0.0], (centres[:-1] + centres[1:]) / 2, [clip_s]])


def frame_labels(
    events: Sequence[Sequence[Event]], n_frames: int, time_pool: int = 1
) -> np.ndarray:
    """Frame-level labels of clips at a model's resolution: (N, K, T) uint8.

    Uses :func:`paperlib.data.features.strong_targets` (frame centre in ``[onset, offset)``).

    Raises:
        LocalisationError: an event label that is not one of the 41 classes.
    """
    labels = np.zeros((len(events), NUM_CLASSES, n_frames), dtype=np.uint8)
    for i, clip in enumerate(events):
        unknown = sorted({e.label for e in clip} - set(CLASS_INDEX))
        if unknown:
            raise LocalisationError(f"clip {i}: label(s) {unknown} are not among the 41 classes")
        if clip:
            rows = pd.DataFrame(list(clip), columns=["onset_s", "offset_s", "label"])
            labels[i] = strong_targets(rows, n_frames, time_pool=time_pool).T
    return labels
