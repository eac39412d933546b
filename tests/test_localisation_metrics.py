"""paperlib.localisation metrics against independent computations on hand-made event lists.

Frames: feature frame t is centred at (t * 1024 + 1024) / 32000 s; a model pooling 2 frames
has frame t centred at the mean of feature frames 2t and 2t + 1. Segment and event F1 are
counted by hand in the comments; frame AP/AUROC come from scikit-learn on labels built here.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from paperlib.data.classes import CLASS_INDEX
from paperlib.localisation import (
    Event,
    LocalisationError,
    best_iou,
    frame_boundaries_s,
    frame_labels,
    gate,
    position_prior,
    slot_frames,
    tag_threshold,
    temporal_metrics,
    tf_metrics,
)
from paperlib.localisation.temporal import sed_metrics

A, B, NEVER = "Bark", "Cello", "Gong"
HOP_S = 1024 / 32000


def centres(time_pool: int, n: int) -> np.ndarray:
    """Model frame centres from the feature-frame rule, written out here."""
    feature = (np.arange(n * time_pool) * 1024 + 1024) / 32000
    return feature.reshape(n, time_pool).mean(axis=1)


def window(n: int, time_pool: int, start: float, stop: float) -> np.ndarray:
    """Frames whose centre lies in [start, stop)."""
    c = centres(time_pool, n)
    return (c >= start) & (c < stop)


@pytest.mark.parametrize("time_pool", [1, 2])
def test_frame_edges_and_labels_follow_the_centres(time_pool: int) -> None:
    n = 311 // time_pool
    edges = frame_boundaries_s(n, time_pool)
    c = centres(time_pool, n)
    assert edges.shape == (n + 1,) and edges[0] == 0.0 and edges[-1] == 10.0
    np.testing.assert_allclose(edges[1:-1], (c[:-1] + c[1:]) / 2)
    np.testing.assert_allclose(np.diff(edges[1:-1]), time_pool * HOP_S)
    events = [[Event(0.5, 2.5, A), Event(8.5, 10.0, B)], []]  # B touches the clip end
    labels = frame_labels(events, n, time_pool)
    assert labels.shape == (2, 41, n) and labels[1].sum() == 0
    np.testing.assert_array_equal(labels[0, CLASS_INDEX[A]], window(n, time_pool, 0.5, 2.5))
    np.testing.assert_array_equal(labels[0, CLASS_INDEX[B]], window(n, time_pool, 8.5, 10.0))
    assert labels[0, CLASS_INDEX[B], -1] == 1  # the last frame is inside the final event
    assert (
        labels[0].sum()
        == window(n, time_pool, 0.5, 2.5).sum() + window(n, time_pool, 8.5, 10).sum()
    )


def test_frames_that_do_not_fit_the_pooling_are_refused() -> None:
    scores = np.zeros((1, 41, 311))
    with pytest.raises(LocalisationError, match="311 model frames do not match time_pool=2"):
        temporal_metrics(scores, [[]], ["c"], time_pool=2)
    with pytest.raises(LocalisationError, match="expected \\(clips=1, classes=41, frames\\)"):
        temporal_metrics(np.zeros((1, 40, 311)), [[]], ["c"], time_pool=1)
    with pytest.raises(LocalisationError, match="not among the 41 classes"):
        frame_labels([[Event(0.5, 1.0, "Unicorn")]], 311)
    bad = np.zeros((1, 41, 311))
    bad[0, 0, 0] = np.nan
    with pytest.raises(LocalisationError, match="1 NaN or infinite"):
        temporal_metrics(bad, [[Event(0.5, 1.0, A)]], ["c"], time_pool=1)


def _detect(scores: np.ndarray, clip: int, label: str, start: float, stop: float) -> None:
    scores[clip, CLASS_INDEX[label], window(scores.shape[-1], 1, start, stop)] = 1.0


# Three clips at full resolution: c0 holds A, c1 holds B and an A that ends with the clip, c2
# holds nothing. Gong is never present: its detection must not enter the macro averages.
EVENTS = [
    [Event(0.5, 2.5, A)],
    [Event(3.0, 3.5, B), Event(8.5, 10.0, A)],
    [],
]
NAMES = ["c0", "c1", "c2"]


def test_frame_ap_and_auroc_match_sklearn_with_edge_cases() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((3, 41, 311))
    labels = np.zeros((3, 41, 311), dtype=int)
    labels[0, CLASS_INDEX[A]] = window(311, 1, 0.5, 2.5)
    labels[1, CLASS_INDEX[B]] = window(311, 1, 3.0, 3.5)
    labels[1, CLASS_INDEX[A]] = window(311, 1, 8.5, 10.0)
    out = temporal_metrics(scores, EVENTS, NAMES, time_pool=1)
    per_class = {
        k: (
            average_precision_score(labels[:, k].ravel(), scores[:, k].ravel()),
            roc_auc_score(labels[:, k].ravel(), scores[:, k].ravel()),
        )
        for k in (CLASS_INDEX[A], CLASS_INDEX[B])
    }
    assert out["frame_ap"] == pytest.approx(np.mean([v[0] for v in per_class.values()]))
    assert out["frame_auroc"] == pytest.approx(np.mean([v[1] for v in per_class.values()]))
    micro = average_precision_score(
        labels.transpose(0, 2, 1).ravel(), scores.transpose(0, 2, 1).ravel()
    )
    assert out["frame_ap_micro"] == pytest.approx(micro)


def binary_detections() -> np.ndarray:
    scores = np.zeros((3, 41, 311))
    _detect(scores, 0, A, 0.6, 1.4)  # frames 18..42, edges [0.592, 1.392): segments 0, 1
    _detect(scores, 1, B, 3.1, 3.4)  # segment 3
    _detect(scores, 1, B, 6.1, 7.4)  # segments 6, 7: false alarms
    _detect(scores, 1, A, 9.2, 10.0)  # segment 9 (the last frame ends at 10 s)
    _detect(scores, 2, A, 4.1, 4.4)  # segment 4 of a clip without events: false alarm
    _detect(scores, 2, NEVER, 1.1, 1.4)  # a class never present
    return scores


def test_segment_f1_by_hand() -> None:
    # A: reference segments c0 {0, 1, 2}, c1 {8, 9}; detected c0 {0, 1}, c1 {9}, c2 {4}
    #    -> TP 3, FP 1, FN 2: F1 = 6 / 9.  B: reference c1 {3}; detected {3, 6, 7}
    #    -> TP 1, FP 2, FN 0: F1 = 2 / 4.  Macro over the classes present = (2/3 + 1/2) / 2.
    expected = (6 / 9 + 2 / 4) / 2
    scores = binary_detections()
    fixed = sed_metrics(scores, EVENTS, NAMES, time_pool=1, threshold=0.5)
    best = sed_metrics(scores, EVENTS, NAMES, time_pool=1)
    assert fixed["segment_f1"] == pytest.approx(expected)
    assert best["segment_f1"] == pytest.approx(expected)  # 0/1 scores: 0.5 is the best cut
    without_never = scores.copy()
    without_never[2, CLASS_INDEX[NEVER]] = 0
    again = sed_metrics(without_never, EVENTS, NAMES, time_pool=1, threshold=0.5)
    assert again["segment_f1"] == pytest.approx(expected)


def test_event_f1_by_hand() -> None:
    scores = np.zeros((3, 41, 311))
    # c0: A [0.5, 2.5) detected as [0.560, 2.192): onset off by 0.06 <= 0.2, offset by
    #     0.308 <= max(0.2, 0.2 * 2 s) -> TP.
    _detect(scores, 0, A, 0.55, 2.2)
    # c1: B [3.0, 3.5) detected as [2.992, 3.888): offset off by 0.388 > max(0.2, 0.1) -> FP
    #     and FN. A [8.5, 10.0) detected as [8.496, 10.0) -> TP (touches the clip end).
    _detect(scores, 1, B, 3.0, 3.9)
    _detect(scores, 1, A, 8.5, 10.0)
    # c2 (no events): a detection of A -> FP; Gong is never present -> not averaged.
    _detect(scores, 2, A, 4.1, 4.4)
    _detect(scores, 2, NEVER, 1.0, 2.0)
    # A: TP 2, FP 1 -> F1 4/5; B: TP 0 -> 0; macro 0.4.
    fixed = sed_metrics(scores, EVENTS, NAMES, time_pool=1, threshold=0.5)
    best = sed_metrics(scores, EVENTS, NAMES, time_pool=1)
    assert fixed["event_f1"] == pytest.approx(0.4)
    assert best["event_f1"] == pytest.approx(0.4)


def test_psds1_by_hand() -> None:
    # 40 clips = 400 s; one A event in clip 0 found with score 0.5, one false A detection in
    # clip 1 with score 0.9. Lowering the threshold: first the false alarm (1 per 400 s = 9 per
    # hour, TPR 0), then the hit (TPR 1 at 9 per hour). The area under TPR up to 100 per hour,
    # normalised, is (100 - 9) / 100 (one class: no spread across classes to subtract).
    n = 40
    events = [[Event(0.5, 2.5, A)]] + [[] for _ in range(n - 1)]
    names = [f"c{i}" for i in range(n)]
    scores = np.zeros((n, 41, 311))
    scores[0, CLASS_INDEX[A], window(311, 1, 0.5, 2.5)] = 0.5
    scores[1, CLASS_INDEX[A], window(311, 1, 3.0, 5.0)] = 0.9
    assert sed_metrics(scores, events, names, time_pool=1)["psds1"] == pytest.approx(0.91)
    perfect = np.zeros_like(scores)
    perfect[0, CLASS_INDEX[A], window(311, 1, 0.5, 2.5)] = 1.0
    assert sed_metrics(perfect, events, names, time_pool=1)["psds1"] == pytest.approx(1.0)


def test_no_event_anywhere_gives_nan_not_an_error() -> None:
    out = temporal_metrics(np.zeros((2, 41, 155)), [[], []], ["a", "b"], time_pool=2)
    assert all(np.isnan(v) for v in out.values())


def test_clip_names_must_be_unique() -> None:
    with pytest.raises(LocalisationError, match="unique name"):
        sed_metrics(np.zeros((2, 41, 311)), [[Event(0.5, 1, A)], []], ["x", "x"], time_pool=1)


@pytest.mark.parametrize("time_pool", [1, 2])
def test_position_prior_by_hand(time_pool: int) -> None:
    n = 311 // time_pool
    c = centres(time_pool, n)
    slots = ((c >= 0.5) & (c < 2.5)) | ((c >= 3.0) & (c < 5.0)) | ((c >= 5.5) & (c < 7.5))
    np.testing.assert_array_equal(slot_frames(n, time_pool), slots)
    tags = np.zeros((2, 41))
    tags[0, 3], tags[1, 7] = 0.8, 1.0
    prior = position_prior(tags, n, time_pool)
    assert prior.shape == (2, 41, n)
    np.testing.assert_allclose(prior[0, 3], 0.8 * slots)
    np.testing.assert_allclose(prior[1, 7], slots.astype(float))
    assert prior.sum() == pytest.approx(1.8 * slots.sum())
    with pytest.raises(LocalisationError, match="expected \\(clips, classes\\)"):
        position_prior(np.zeros(41), n, time_pool)


def test_position_prior_frame_ap_is_one_third_for_full_slots() -> None:
    # Three 2-s events fill the three slots with three classes; the prior scores every slot
    # frame of each true class 1, so each class's positives are a third of its 1-scored
    # frames (equal slot sizes): AP = 1/3 per class, whatever the tie order.
    events = [[Event(0.5, 2.5, A), Event(3.0, 5.0, B), Event(5.5, 7.5, NEVER)]]
    truth = frame_labels(events, 311).max(axis=2)
    out = temporal_metrics(position_prior(truth, 311), events, ["c"], time_pool=1)
    assert out["frame_ap"] == pytest.approx(1 / 3)


def test_gating_multiplies_by_the_tags_and_checks_shapes() -> None:
    scores = np.arange(2 * 41 * 3, dtype=float).reshape(2, 41, 3)
    tags = np.zeros((2, 41))
    tags[1, 5] = 1
    gated = gate(scores, tags)
    assert gated.sum() == scores[1, 5].sum()
    np.testing.assert_array_equal(gated[1, 5], scores[1, 5])
    with pytest.raises(LocalisationError, match="do not gate"):
        gate(scores, np.zeros((2, 40)))


def test_tag_threshold_maximises_micro_f1_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    truth = (rng.random((20, 41)) < 0.08).astype(int)
    probs = np.clip(0.3 * truth + rng.random((20, 41)) * 0.7, 0, 1)

    def f1(t: float) -> float:
        pred = probs >= t
        tp = (pred & (truth == 1)).sum()
        return 2 * tp / (pred.sum() + truth.sum())

    best = max(f1(t) for t in np.unique(probs))
    chosen = tag_threshold(probs, truth)
    assert f1(chosen) == pytest.approx(best)
    assert tag_threshold(
        np.array([[0.9, 0.2, 0.6], [0.4, 0.8, 0.3]]), np.array([[1, 0, 1], [0, 1, 0]])
    ) == pytest.approx(0.6)
    with pytest.raises(LocalisationError, match="no positive tag"):
        tag_threshold(probs, np.zeros_like(truth))
    with pytest.raises(LocalisationError, match="same \\(clips, classes\\) shape"):
        tag_threshold(probs, truth[:, :40])


def test_best_iou_by_brute_force() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(500) < 0.2
    scores = np.round(labels * 0.3 + rng.random(500), 2)  # ties on purpose
    iou, threshold = best_iou(scores, labels)
    candidates = {}
    for t in np.unique(scores):
        pred = scores >= t
        candidates[t] = (pred & labels).sum() / (pred | labels).sum()
    assert iou == pytest.approx(max(candidates.values()))
    assert candidates[threshold] == pytest.approx(iou)
    assert np.isnan(best_iou(scores, np.zeros(500, bool))[0])


def test_tf_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    masks = rng.random((3, 10, 8)) < 0.3
    maps = masks * 0.5 + rng.random((3, 10, 8))
    out = tf_metrics(maps, masks)
    assert out["tf_auroc"] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))
    assert out["tf_ap"] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()))
    assert out["tf_iou"] == pytest.approx(best_iou(maps, masks)[0])
    assert out["mask_share"] == pytest.approx(masks.mean())
    empty = tf_metrics(maps, np.zeros_like(masks))
    assert np.isnan(empty["tf_auroc"]) and np.isnan(empty["tf_ap"]) and empty["mask_share"] == 0
    with pytest.raises(LocalisationError, match="same \\(pairs, T, F\\) shape"):
        tf_metrics(maps[:, :, :4], masks)
