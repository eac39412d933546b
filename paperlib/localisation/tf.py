"""Time-frequency localisation: class T-F maps against ideal binary masks of the events.

The render step keeps every mixture's event track and background track
(``mixtures/snr{S}db/<name>.events.wav`` and ``.background.wav``). Kong et al.'s segmentation
target is the ideal binary mask: a bin belongs to the events where the event magnitude is within
5 dB of the background or above, ``20 log10(|E| / |B|) > -5``. :func:`ideal_mask` computes it in
the model's grid: both tracks go through the feature extractor (:func:`~paperlib.data.features.
logmel`: magnitude, 64 mel bands, natural log) and the model's input pooling
(:func:`~paperlib.run.features.pool_input`, averaging log-mels over groups of frames and bins),
and the rule is applied to the pooled log-mels. :func:`class_mask` keeps the bins of one
class's events (frames whose centre lies in an event of the class).

:func:`tf_metrics` scores maps as mask predictors, pooling every bin of every (clip, class)
pair: ROC-AUC and AP (scikit-learn), and the mask IoU at the best single threshold
(:func:`best_iou`). ``mask_share``, the share of positive bins, is the AP of an uninformative map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from paperlib.data.classes import CLASS_INDEX
from paperlib.data.features import frame_centres_s, logmel
from paperlib.data.render import read_tracks
from paperlib.localisation.errors import LocalisationError
from paperlib.localisation.events import Event
from paperlib.run import pool_input

__all__ = [
    "KONG_THRESHOLD_DB",
    "TF_METRICS",
    "best_iou",
    "class_mask",
    "clip_tracks",
    "ideal_mask",
    "tf_metrics",
]

KONG_THRESHOLD_DB = -5.0
"""Event-to-background level (dB) above which a bin belongs to the event (Kong et al. 2019)."""

TF_METRICS: tuple[str, ...] = ("tf_auroc", "tf_ap", "tf_iou", "tf_iou_threshold", "mask_share")

_DB_PER_NEPER = 20.0 / np.log(10.0)
"""dB of an amplitude ratio per unit of natural log (log-mels are natural logs of magnitudes)."""


def clip_tracks(mixtures_dir: Path, clip_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The event and background tracks of one mixture at the SNR of ``mixtures_dir``: two
    (320000,) float32 arrays (:func:`paperlib.data.render.read_tracks`).

    Raises:
        MissingSourceError: the tracks were not rendered (run the render step of
            ``python -m paperlib data``).
    """
    _, events, background = read_tracks(Path(mixtures_dir), clip_name)
    return events, background


def ideal_mask(
    events_track: np.ndarray,
    background_track: np.ndarray,
    *,
    time_pool: int = 1,
    mel_pool: int = 1,
    threshold_db: float = KONG_THRESHOLD_DB,
) -> np.ndarray:
    """Kong's ideal binary mask of a mixture in the model's grid: (T, F) bool.

    Args:
        events_track, background_track: (n,) 32 kHz tracks as rendered (same scaling).
        time_pool, mel_pool: the model's input pooling (``model.time_pool``/``mel_pool``).
        threshold_db: a bin is in the mask when event minus background log-mel, in dB of
            amplitude, exceeds this.

    Returns:
        (311 // time_pool, 64 // mel_pool) for 10-s tracks.
    """
    events_track = np.asarray(events_track)
    background_track = np.asarray(background_track)
    if events_track.shape != background_track.shape:
        raise LocalisationError(
            f"event track {events_track.shape} and background track {background_track.shape}: "
            "expected the same length"
        )
    tracks = np.stack([logmel(events_track), logmel(background_track)])  # (2, T, F)
    pooled = pool_input(tracks, time_pool, mel_pool)
    return (pooled[0] - pooled[1]) * _DB_PER_NEPER > threshold_db


def class_mask(
    mask: np.ndarray, events: Sequence[Event], class_index: int, *, time_pool: int = 1
) -> np.ndarray:
    """The bins of ``mask`` (T, F) in frames of the clip's events of one class: (T, F) bool.

    A frame belongs to an event when its centre lies in ``[onset_s, offset_s)`` (the strong
    targets' rule); a class that occurs twice in the clip keeps both events' bins.
    """
    mask = np.asarray(mask, dtype=bool)
    centres = frame_centres_s(mask.shape[0], time_pool)
    frames = np.zeros(mask.shape[0], dtype=bool)
    for event in events:
        if CLASS_INDEX.get(event.label) == class_index:
            frames |= (centres >= event.onset_s) & (centres < event.offset_s)
    return mask & frames[:, None]


def best_iou(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Highest intersection-over-union of ``scores >= threshold`` with ``labels``, and that threshold.

    Every distinct score is tried as a threshold (ties: the highest threshold wins).

    Returns:
        ``(iou, threshold)``; ``(nan, nan)`` when ``labels`` has no positive.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise LocalisationError(f"{scores.size} scores for {labels.size} labels")
    positives = int(labels.sum())
    if positives == 0:
        return float("nan"), float("nan")
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    true_pos = np.cumsum(hits)
    false_pos = np.arange(1, hits.size + 1) - true_pos
    last = np.r_[ranked[1:] != ranked[:-1], True]  # the last of each run of equal scores
    iou = true_pos[last] / (positives + false_pos[last])
    best = int(np.argmax(iou))
    return float(iou[best]), float(ranked[last][best])


def tf_metrics(maps: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """How well T-F maps predict masks, pooled over every bin of every (clip, class) pair.

    Args:
        maps: (P, T, F) scores (any finite scale).
        masks: (P, T, F) bool ideal masks of the same pairs.

    Returns:
        ``tf_auroc``, ``tf_ap``, ``tf_iou`` (best threshold), ``tf_iou_threshold``,
        ``mask_share`` (positive bins / all bins); NaN where undefined (no positive or no
        negative bin).
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise LocalisationError(
            f"T-F maps {maps.shape} and masks {masks.shape}: expected the same (pairs, T, F) shape"
        )
    if not np.all(np.isfinite(maps)):
        raise LocalisationError(f"T-F maps hold {int(np.sum(~np.isfinite(maps)))} NaN/inf value(s)")
    nan = float("nan")
    if masks.size == 0:
        return dict.fromkeys(TF_METRICS, nan)
    labels, scores = masks.ravel(), maps.ravel()
    share = float(labels.mean())
    both = 0.0 < share < 1.0
    iou, threshold = best_iou(scores, labels)
    return {
        "tf_auroc": float(roc_auc_score(labels, scores)) if both else nan,
        "tf_ap": float(average_precision_score(labels, scores)) if share > 0 else nan,
        "tf_iou": iou,
        "tf_iou_threshold": threshold,
        "mask_share": share,
    }
