"""paperlib.metrics against scikit-learn, including the edge cases the module defines."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from paperlib.metrics import MetricInputError, clip_metrics, per_class_ap


def _data(seed=0, n=40, k=6):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.3).astype(np.uint8)
    y[0] = 1  # every class has a positive
    y[1] = 0  # and a negative
    s = np.clip(y * 0.3 + rng.random((n, k)) * 0.7, 0, 1)
    return y, s


def test_matches_sklearn_on_ordinary_input():
    y, s = _data()
    m = clip_metrics(y, s)
    assert m.micro_ap == pytest.approx(average_precision_score(y, s, average="micro"))
    assert m.macro_ap == pytest.approx(average_precision_score(y, s, average="macro"))
    assert m.roc_auc == pytest.approx(roc_auc_score(y, s))
    for k in range(y.shape[1]):
        assert m.per_class_ap[k] == pytest.approx(average_precision_score(y[:, k], s[:, k]))


def test_class_without_positives_is_nan_and_excluded_from_macro():
    y, s = _data(seed=1)
    y[:, 2] = 0
    m = clip_metrics(y, s)
    keep = [0, 1, 3, 4, 5]
    assert np.isnan(m.per_class_ap[2]) and np.isnan(m.per_class_auc[2])
    assert m.macro_ap == pytest.approx(average_precision_score(y[:, keep], s[:, keep]))
    assert m.roc_auc == pytest.approx(roc_auc_score(y[:, keep], s[:, keep]))
    # micro pools every (clip, class) pair, the empty class included
    assert m.micro_ap == pytest.approx(average_precision_score(y.ravel(), s.ravel()))


def test_all_positive_class_has_ap_one_and_no_auc():
    y, s = _data(seed=2)
    y[:, 4] = 1
    m = clip_metrics(y, s)
    assert m.per_class_ap[4] == pytest.approx(1.0)
    assert np.isnan(m.per_class_auc[4])
    keep = [0, 1, 2, 3, 5]
    assert m.roc_auc == pytest.approx(roc_auc_score(y[:, keep], s[:, keep]))
    assert m.macro_ap == pytest.approx(average_precision_score(y, s, average="macro"))


def test_all_negative_targets_give_nan_everywhere():
    y = np.zeros((5, 3), np.uint8)
    m = clip_metrics(y, np.full((5, 3), 0.5))
    assert np.isnan(m.micro_ap) and np.isnan(m.macro_ap) and np.isnan(m.roc_auc)
    assert np.isnan(per_class_ap(y, np.zeros((5, 3)))).all()


def test_perfect_and_summary():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    m = clip_metrics(y, y.astype(float))
    assert m.summary() == {"micro_ap": 1.0, "macro_ap": 1.0, "roc_auc": 1.0}


@pytest.mark.parametrize(
    ("targets", "scores", "match"),
    [
        (np.zeros((3, 2)), np.array([[0.1, np.nan], [0.2, 0.3], [0.1, 0.1]]), "NaN"),
        (np.zeros((3, 2)), np.array([[0.1, np.inf], [0.2, 0.3], [0.1, 0.1]]), "NaN"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "same shape"),
        (np.full((3, 2), 2), np.zeros((3, 2)), "0 or 1"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "at least one clip"),
    ],
)
def test_bad_input_rejected(targets, scores, match):
    with pytest.raises(MetricInputError, match=match):
        clip_metrics(targets, scores)
    assert issubclass(MetricInputError, ValueError)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1, 2])  # None: no ties; 1-2 decimals: many ties
def test_numpy_ranking_matches_sklearn_exactly_for_ap_and_to_rounding_for_auc(seed, decimals):
    """The AP is scikit-learn's float64 arithmetic bit for bit (the trainer picks the best epoch
    with it); the AUC agrees to rounding. Float32 scores, as the trainer passes them."""
    from paperlib.metrics import micro_ap

    rng = np.random.default_rng(seed)
    n, k = 150, 41
    y = (rng.random((n, k)) < 0.07).astype(np.float32)
    y[0], y[1] = 1, 0
    s = (y * rng.random((n, k)) * 0.5 + rng.random((n, k))).astype(np.float32)
    if decimals is not None:
        s = np.round(s, decimals)
    m = clip_metrics(y, s)
    assert m.micro_ap == average_precision_score(y, s, average="micro")
    assert micro_ap(y, s) == m.micro_ap
    for j in range(k):
        assert m.per_class_ap[j] == average_precision_score(y[:, j], s[:, j])
        assert m.per_class_auc[j] == pytest.approx(roc_auc_score(y[:, j], s[:, j]), abs=1e-12)


def test_micro_ap_alone_is_nan_without_positives_and_validates():
    from paperlib.metrics import micro_ap

    assert np.isnan(micro_ap(np.zeros((3, 2)), np.ones((3, 2))))
    with pytest.raises(MetricInputError, match="same shape"):
        micro_ap(np.zeros((3, 2)), np.ones((3, 3)))
