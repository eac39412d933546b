"""Clip-level metrics of the paper's Tables IV-VIII, scikit-learn's definitions in numpy.

"micro-P" and "macro-P" in the paper are *average precision* (area under the
precision-recall curve), micro- and macro-averaged over the classes; "AUC" is the macro
ROC-AUC; Tables VI-VIII are per-class average precision (see REFERENCE_FACTS).

Edge cases (defined here, tested in ``tests/test_metrics.py``):

* A class with no positive clip in the evaluated set has no defined AP or ROC-AUC: it is
  reported as NaN per class and left out of the macro averages (the micro average pools all
  (clip, class) pairs, so it keeps every class).
* A class whose clips are *all* positive has a perfect AP of 1.0 by definition but no
  ROC-AUC (no negatives): its AUC is NaN and it is left out of the macro AUC only.
* If no class has a positive, every average is NaN; if no class qualifies for the AUC,
  the macro AUC is NaN.
* NaN or infinite scores, targets other than 0/1, and shape mismatches raise
  :class:`MetricInputError` (a ``ValueError``).

AP and ROC-AUC follow scikit-learn's ``average_precision_score`` (the step integral of the
precision-recall curve, ties counted as one threshold) and ``roc_auc_score`` (trapezoids under
the ROC curve), computed here in a few numpy operations per class: the trainer scores the
validation fold after every epoch, and scikit-learn's input checks made that about a fifth of
a pocket GMP epoch. The AP is the same float64 arithmetic as scikit-learn 1.9's; the AUC agrees
to rounding (scikit-learn drops collinear points before the trapezoids, which changes no area);
``tests/test_metrics.py`` checks both against scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ChanceLevels",
    "ClipMetrics",
    "MetricInputError",
    "chance_levels",
    "clip_metrics",
    "micro_ap",
    "per_class_ap",
]


class MetricInputError(ValueError):
    """Scores or targets that cannot be scored (NaN, wrong shape, non-binary targets)."""


@dataclass(frozen=True)
class ClipMetrics:
    """Clip-level scores of one evaluation.

    Attributes:
        micro_ap: micro-averaged AP over all (clip, class) pairs.
        macro_ap: mean AP over the classes that have at least one positive.
        roc_auc: mean ROC-AUC over the classes with both positives and negatives.
        per_class_ap: (K,) AP per class, NaN for a class without positives.
        per_class_auc: (K,) ROC-AUC per class, NaN for a class without both labels.
    """

    micro_ap: float
    macro_ap: float
    roc_auc: float
    per_class_ap: np.ndarray
    per_class_auc: np.ndarray

    def summary(self) -> dict[str, float]:
        """The three headline numbers as a plain dict (``micro_ap``, ``macro_ap``, ``roc_auc``)."""
        return {"micro_ap": self.micro_ap, "macro_ap": self.macro_ap, "roc_auc": self.roc_auc}


def _validate(targets: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    targets = np.asarray(targets)
    scores = np.asarray(scores, dtype=np.float64)
    if targets.ndim != 2 or scores.shape != targets.shape:
        raise MetricInputError(
            f"expected targets and scores of the same shape (clips, classes); "
            f"got targets {targets.shape} and scores {scores.shape}"
        )
    if targets.shape[0] == 0:
        raise MetricInputError("expected at least one clip; got an empty array")
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.isfinite(scores)))
        raise MetricInputError(f"scores contain {bad} NaN or infinite value(s); expected finite")
    if not np.all(np.isin(targets, (0, 1))):
        raise MetricInputError("targets must be 0 or 1 (weak clip labels)")
    return targets.astype(np.int64), scores


def _counts_at_thresholds(targets: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score, from the highest score down.

    Args:
        targets: (N,) 0/1 labels.
        scores: (N,) float64 scores.

    Returns:
        ``(tps, fps)``, both (D,) float64 for the D distinct scores (a tie is one threshold).
    """
    order = np.argsort(scores, kind="stable")[::-1]
    ranked = scores[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tps = np.cumsum(targets[order], dtype=np.float64)[ends]
    return tps, 1.0 + ends - tps


def _binary_ap(targets: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of (N,) 0/1 ``targets`` (at least one 1) and (N,) ``scores``."""
    tps, fps = _counts_at_thresholds(targets, scores)
    precision = np.r_[(tps / (tps + fps))[::-1], 1.0]
    recall = np.r_[(tps / tps[-1])[::-1], 0.0]
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def _binary_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of (N,) 0/1 ``targets`` (both values present) and (N,) ``scores``."""
    tps, fps = _counts_at_thresholds(targets, scores)
    tpr = np.r_[0.0, tps] / tps[-1]
    fpr = np.r_[0.0, fps] / fps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def micro_ap(targets: np.ndarray, scores: np.ndarray) -> float:
    """Micro-averaged AP: all (clip, class) pairs pooled; NaN when no pair is positive.

    Args:
        targets: (N, K) binary clip labels.
        scores: (N, K) clip probabilities.

    Raises:
        MetricInputError: as :func:`clip_metrics`.
    """
    targets, scores = _validate(targets, scores)
    if not targets.any():
        return float("nan")
    return _binary_ap(targets.ravel(), scores.ravel())


def per_class_ap(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision per class.

    Args:
        targets: (N, K) binary clip labels.
        scores: (N, K) clip probabilities (any finite real scores).

    Returns:
        (K,) float64 AP per class; NaN for a class with no positive clip.
    """
    targets, scores = _validate(targets, scores)
    out = np.full(targets.shape[1], np.nan)
    for k in np.flatnonzero(targets.sum(axis=0) > 0):
        out[k] = _binary_ap(targets[:, k], scores[:, k])
    return out


def clip_metrics(targets: np.ndarray, scores: np.ndarray) -> ClipMetrics:
    """Micro/macro AP, macro ROC-AUC and per-class AP of clip predictions.

    Args:
        targets: (N, K) binary clip labels (weak targets).
        scores: (N, K) clip probabilities.

    Returns:
        The :class:`ClipMetrics` (edge cases as in the module docstring).

    Raises:
        MetricInputError: NaN/inf scores, non-binary targets or mismatched shapes.
    """
    targets, scores = _validate(targets, scores)
    positives = targets.sum(axis=0)
    has_pos = positives > 0
    has_both = has_pos & (positives < targets.shape[0])
    ap = per_class_ap(targets, scores)
    auc = np.full(targets.shape[1], np.nan)
    for k in np.flatnonzero(has_both):
        auc[k] = _binary_auc(targets[:, k], scores[:, k])
    if has_pos.any():
        micro = _binary_ap(targets.ravel(), scores.ravel())
        macro = float(np.mean(ap[has_pos]))
    else:
        micro = macro = float("nan")
    roc = float(np.mean(auc[has_both])) if has_both.any() else float("nan")
    return ClipMetrics(micro, macro, roc, ap, auc)


@dataclass(frozen=True)
class ChanceLevels:
    """Micro-AP of two scorers that ignore the audio, on one validation fold.

    Attributes:
        positive_share: share of positive (clip, class) pairs in the validation fold: the
            expected micro-AP of a scorer that ranks the pairs at random.
        class_frequency: micro-AP of a scorer that gives every validation clip the training
            folds' class frequencies (on imbalanced data it is far above ``positive_share``).
    """

    positive_share: float
    class_frequency: float

    @property
    def micro_ap(self) -> float:
        """The chance level: the better of the two scorers."""
        return max(self.positive_share, self.class_frequency)


def chance_levels(train_targets: np.ndarray, val_targets: np.ndarray) -> ChanceLevels:
    """The two audio-blind chance scorers of :class:`ChanceLevels`.

    Args:
        train_targets: (N_train, K) binary weak labels of the training folds.
        val_targets: (N_val, K) binary weak labels of the validation fold.

    Raises:
        MetricInputError: non-binary targets, or a different number of classes.
    """
    train_targets = np.asarray(train_targets)
    val_targets = np.asarray(val_targets)
    if train_targets.ndim != 2 or train_targets.shape[1:] != val_targets.shape[1:]:
        raise MetricInputError(
            f"expected train and validation targets with the same classes (N, K); got "
            f"{train_targets.shape} and {val_targets.shape}"
        )
    frequencies = np.broadcast_to(train_targets.mean(axis=0), val_targets.shape)
    scored = clip_metrics(val_targets, np.ascontiguousarray(frequencies, dtype=np.float64))
    return ChanceLevels(float(np.mean(val_targets)), scored.micro_ap)
