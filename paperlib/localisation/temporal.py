"""Temporal localisation metrics of frame scores against the true events of a fold.

Every metric takes frame scores (N, K, T) of N clips at a model's resolution (K = 41 classes,
T = 311 // time_pool frames) and the clips' true events (:class:`~.events.Event` lists):

- ``frame_ap`` / ``frame_auroc``: threshold-free, per class over all (clip, frame) pairs with
  scikit-learn (through :func:`paperlib.metrics.clip_metrics`, whose edge cases apply), then
  averaged over the classes that occur in the fold; ``frame_ap_micro`` pools every (clip,
  class, frame) triple, so scores of absent classes count as false alarms there.
- ``within_clip_auroc``: ROC-AUC of each (clip, class) pair's T frame scores against its frame
  labels, averaged over the pairs whose frames hold both labels (:func:`within_clip_auroc`). It
  asks only whether the scorer ranks a clip's event frames above its other frames, whatever
  the clip's level; below 0.5 the scorer is *inverted* (it dips during events).
- ``segment_f1``: segment-based F1 in 1-s segments; ``event_f1``: collar-based event F1 (onset
  collar 200 ms, offset collar max(200 ms, 20 % of the event)); ``psds1``: PSDS in DCASE's
  scenario 1 (DTC = GTC = 0.7, no cross-trigger term, α_ST = 1, eFPR up to 100 per hour).
  All three come from ``sed_scores_eval`` (:mod:`.sse`) and are macro-averaged over the classes
  that occur in the fold (the package needs at least one event per evaluated class). The F1
  scores are taken at each class's best threshold unless a fixed ``threshold`` is given: model
  scores live on different scales (attention weights sum to 1 over time), so a fixed threshold
  would measure calibration rather than localisation. Like the paper's best-epoch protocol, the
  best threshold is chosen on the fold that is reported (an optimistic number).

*Gating* (:func:`gate`) multiplies each clip's frame scores of a class by a clip tag: the true
tags (the localisation of the classes known to be there) or the predicted ones
(:func:`predicted_tags`: clip probability at least the threshold that maximises the clip-level
micro-F1 on the fold, chosen per run for the same reason as above).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve

from paperlib.data.audio import CLIP_SECONDS
from paperlib.data.classes import CLASS_INDEX, NUM_CLASSES
from paperlib.localisation.errors import LocalisationError
from paperlib.localisation.events import Event, check_frames, frame_boundaries_s, frame_labels
from paperlib.localisation.sse import sed_scores_eval
from paperlib.metrics import clip_metrics

__all__ = [
    "TEMPORAL_METRICS",
    "TemporalSettings",
    "active_frame_share",
    "frame_metrics",
    "gate",
    "predicted_tags",
    "sed_metrics",
    "tag_threshold",
    "temporal_metrics",
    "within_clip_auroc",
]

TEMPORAL_METRICS: tuple[str, ...] = (
    "frame_ap",
    "frame_ap_micro",
    "frame_auroc",
    "within_clip_auroc",
    "segment_f1",
    "event_f1",
    "psds1",
)


@dataclass(frozen=True)
class TemporalSettings:
    """Parameters of the SED metrics (defaults: DCASE's conventions, see the module docstring).

    Attributes:
        segment_s: segment length of the segment-based F1.
        onset_collar_s, offset_collar_s, offset_collar_rate: collars of the event-based F1
            (offset collar = max(offset_collar_s, offset_collar_rate x event length)).
        psds_dtc, psds_gtc, psds_alpha_st, psds_max_efpr: PSDS scenario 1.
        clip_s: clip duration (the last frame ends there).
    """

    segment_s: float = 1.0
    onset_collar_s: float = 0.2
    offset_collar_s: float = 0.2
    offset_collar_rate: float = 0.2
    psds_dtc: float = 0.7
    psds_gtc: float = 0.7
    psds_alpha_st: float = 1.0
    psds_max_efpr: float = 100.0
    clip_s: float = CLIP_SECONDS

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _check_scores(scores: np.ndarray, n_clips: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 3 or scores.shape[:2] != (n_clips, NUM_CLASSES):
        raise LocalisationError(
            f"frame scores of shape {scores.shape}: expected (clips={n_clips}, "
            f"classes={NUM_CLASSES}, frames)"
        )
    if not np.all(np.isfinite(scores)):
        raise LocalisationError(
            f"frame scores hold {int(np.sum(~np.isfinite(scores)))} NaN or infinite value(s)"
        )
    return scores


def gate(scores: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Frame scores (N, K, T) times clip tags (N, K) (0/1 or probabilities): (N, K, T)."""
    scores = np.asarray(scores)
    tags = np.asarray(tags)
    if scores.ndim != 3 or tags.shape != scores.shape[:2]:
        raise LocalisationError(
            f"tags of shape {tags.shape} do not gate frame scores of shape {scores.shape}: "
            "expected tags (clips, classes) matching the scores' first two axes"
        )
    return scores * tags[:, :, None].astype(scores.dtype)


def tag_threshold(clip_probs: np.ndarray, weak_targets: np.ndarray) -> float:
    """The clip-probability threshold that maximises the micro-F1 of the tags on this fold.

    A clip is tagged with a class when its probability is at least the threshold; ties between
    thresholds go to the lowest one.

    Raises:
        LocalisationError: mismatched shapes, or no positive tag in ``weak_targets``.
    """
    probs = np.asarray(clip_probs, dtype=np.float64)
    truth = np.asarray(weak_targets)
    if probs.shape != truth.shape or probs.ndim != 2:
        raise LocalisationError(
            f"clip probabilities {probs.shape} and weak targets {truth.shape}: expected the "
            "same (clips, classes) shape"
        )
    if not truth.any():
        raise LocalisationError("weak targets hold no positive tag: no threshold can be chosen")
    precision, recall, thresholds = precision_recall_curve(truth.ravel() > 0, probs.ravel())
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return float(thresholds[int(np.argmax(f1))])


def predicted_tags(clip_probs: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted clip tags: ``clip_probs >= threshold`` as (N, K) uint8."""
    return (np.asarray(clip_probs) >= threshold).astype(np.uint8)


def frame_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Frame-level AP (macro and micro) and macro ROC-AUC: (N, K, T) scores and 0/1 labels.

    Returns:
        ``frame_ap``, ``frame_ap_micro``, ``frame_auroc`` (NaN when no class occurs).
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 3:
        raise LocalisationError(
            f"frame scores {scores.shape} and labels {labels.shape}: expected the same "
            "(clips, classes, frames) shape"
        )
    k = scores.shape[1]
    flat = clip_metrics(
        labels.transpose(0, 2, 1).reshape(-1, k), scores.transpose(0, 2, 1).reshape(-1, k)
    )
    return {"frame_ap": flat.macro_ap, "frame_ap_micro": flat.micro_ap, "frame_auroc": flat.roc_auc}


def within_clip_auroc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC-AUC of each (clip, class) pair over its frames: (N, K, T) scores and 0/1 labels -> (N, K).

    The Mann-Whitney form with tied scores counted one half (what
    ``sklearn.metrics.roc_auc_score`` computes); NaN for a pair whose frames are all active or
    all inactive (e.g. a class absent from the clip).

    Raises:
        LocalisationError: mismatched shapes or non-finite scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels) > 0
    if scores.shape != labels.shape or scores.ndim != 3:
        raise LocalisationError(
            f"frame scores {scores.shape} and labels {labels.shape}: expected the same "
            "(clips, classes, frames) shape"
        )
    if not np.all(np.isfinite(scores)):
        raise LocalisationError(
            f"frame scores hold {int(np.sum(~np.isfinite(scores)))} NaN or infinite value(s)"
        )
    n_frames = scores.shape[-1]
    positives = labels.sum(axis=-1)
    out = np.full(scores.shape[:2], np.nan)
    keep = (positives > 0) & (positives < n_frames)
    if keep.any():
        ranks = rankdata(scores[keep], axis=-1)  # ties share their mean rank
        n1 = positives[keep].astype(np.float64)
        n0 = n_frames - n1
        out[keep] = ((ranks * labels[keep]).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return out


def active_frame_share(labels: np.ndarray, tags: np.ndarray) -> dict[str, float]:
    """Share of active frames among the frames of tagged clips: the chance level of frame AP.

    A scorer that knows the clip tags but nothing about time (each tagged clip's frames all
    score the same) has, per class, a frame AP equal to that class's share of active frames in
    the clips tagged with it (:func:`paperlib.localisation.prior.uniform_in_time` with the true
    tags is that scorer).

    Args:
        labels: (N, K, T) 0/1 frame labels.
        tags: (N, K) 0/1 clip tags (the true tags give the chance level).

    Returns:
        ``frame_ap``: the per-class share averaged over the classes with an active frame
        (as :func:`frame_metrics` averages); ``frame_ap_micro``: the share over all tagged
        (clip, class, frame) triples. NaN when no frame is active.
    """
    labels = np.asarray(labels) > 0
    tags = np.asarray(tags) > 0
    if labels.ndim != 3 or tags.shape != labels.shape[:2]:
        raise LocalisationError(
            f"labels {labels.shape} and tags {tags.shape}: expected (clips, classes, frames) "
            "and (clips, classes)"
        )
    active = labels.sum(axis=(0, 2)).astype(np.float64)  # (K,)
    tagged = tags.sum(axis=0).astype(np.float64) * labels.shape[-1]  # (K,) tagged frames
    present = active > 0
    if not present.any():
        return {"frame_ap": float("nan"), "frame_ap_micro": float("nan")}
    if np.any(tagged[present] == 0) or (labels & ~tags[:, :, None]).any():
        raise LocalisationError("an active frame lies in a clip not tagged with its class")
    return {
        "frame_ap": float(np.mean(active[present] / tagged[present])),
        "frame_ap_micro": float(active.sum() / tagged.sum()),
    }


def sed_metrics(
    scores: np.ndarray,
    events: Sequence[Sequence[Event]],
    clip_names: Sequence[str],
    *,
    time_pool: int,
    settings: TemporalSettings | None = None,
    threshold: float | None = None,
) -> dict[str, float]:
    """Segment-based F1, collar-based event F1 and PSDS1 with ``sed_scores_eval``.

    Args:
        scores: (N, K, T) frame scores at the model's resolution.
        events: N lists of true events.
        clip_names: (N,) unique clip names.
        time_pool: the model's time pooling (frames -> seconds).
        settings: metric parameters (default :class:`TemporalSettings`).
        threshold: a fixed decision threshold for both F1 scores (detections where the score is
            at least it); ``None`` takes each class's best threshold.

    Returns:
        ``segment_f1``, ``event_f1``, ``psds1``, macro-averaged over the classes with events
        (all NaN when no clip has an event).
    """
    settings = settings or TemporalSettings()
    scores = _check_scores(scores, len(events))
    names = [str(n) for n in clip_names]
    if len(names) != len(events) or len(set(names)) != len(names):
        raise LocalisationError(
            f"{len(names)} clip name(s) for {len(events)} clip(s): expected one unique name each"
        )
    check_frames(scores.shape[-1], time_pool)
    present = sorted({e.label for clip in events for e in clip}, key=CLASS_INDEX.__getitem__)
    if not present:
        return {"segment_f1": np.nan, "event_f1": np.nan, "psds1": np.nan}
    sse = sed_scores_eval()
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    columns = [CLASS_INDEX[label] for label in present]
    edges = frame_boundaries_s(scores.shape[-1], time_pool, clip_s=settings.clip_s)
    frames = {
        name: create_score_dataframe(scores[i, columns].T, edges, event_classes=present)
        for i, name in enumerate(names)
    }
    truth = {name: [tuple(e) for e in clip] for name, clip in zip(names, events, strict=True)}
    durations = {name: settings.clip_s for name in names}
    collars = {
        "onset_collar": settings.onset_collar_s,
        "offset_collar": settings.offset_collar_s,
        "offset_collar_rate": settings.offset_collar_rate,
    }
    segment = {"segment_length": settings.segment_s}
    if threshold is None:
        seg = sse.segment_based.best_fscore(frames, truth, durations, **segment)[0]
        evt = sse.collar_based.best_fscore(frames, truth, **collars)[0]
    else:
        seg = sse.segment_based.fscore(frames, truth, durations, threshold=threshold, **segment)[0]
        evt = sse.collar_based.fscore(frames, truth, threshold=threshold, **collars)[0]
    psds = sse.intersection_based.psds(
        frames,
        truth,
        durations,
        dtc_threshold=settings.psds_dtc,
        gtc_threshold=settings.psds_gtc,
        cttc_threshold=None,
        alpha_ct=0.0,
        alpha_st=settings.psds_alpha_st,
        unit_of_time="hour",
        max_efpr=settings.psds_max_efpr,
    )[0]
    return {
        "segment_f1": float(seg["macro_average"]),
        "event_f1": float(evt["macro_average"]),
        "psds1": float(psds),
    }


def temporal_metrics(
    scores: np.ndarray,
    events: Sequence[Sequence[Event]],
    clip_names: Sequence[str],
    *,
    time_pool: int,
    settings: TemporalSettings | None = None,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every metric of :data:`TEMPORAL_METRICS` for frame scores (N, K, T) of N clips.

    Frame labels come from ``events`` at the scores' resolution
    (:func:`~.events.frame_labels`); see :func:`sed_metrics` for the other arguments.

    Raises:
        LocalisationError: scores that are not (N, 41, 311 // time_pool) or not finite, names
            that are not unique, labels outside the 41 classes.
    """
    scores = _check_scores(scores, len(events))
    check_frames(scores.shape[-1], time_pool)
    labels = frame_labels(events, scores.shape[-1], time_pool)
    out = frame_metrics(scores, labels)
    within = within_clip_auroc(scores, labels)
    out["within_clip_auroc"] = float(np.nanmean(within)) if np.isfinite(within).any() else np.nan
    out.update(
        sed_metrics(
            scores,
            events,
            clip_names,
            time_pool=time_pool,
            settings=settings,
            threshold=threshold,
        )
    )
    return {name: out[name] for name in TEMPORAL_METRICS}
