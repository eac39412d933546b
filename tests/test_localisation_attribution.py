"""Attribution frame scores, within-clip AUROC and the chance row against independent checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from paperlib.localisation import (
    LocalisationError,
    integrated_gradients,
    median_baseline,
    model_maps,
    occlusion,
    uniform_in_time,
    within_clip_auroc,
)
from paperlib.localisation.frame_scores import SCORERS
from paperlib.localisation.temporal import active_frame_share, frame_metrics
from paperlib.models import build_model

T, F, K = 77, 16, 41


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A random 2APAE in float64 whose step 2 is re-drawn wide enough to be non-linear."""
    torch.manual_seed(0)
    net = build_model("2APAE", time_steps=T, mel_bins=F, width=0.0625).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in (net.attention.step2.attention, net.attention.step2.classification):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))
    return net.double()


@pytest.fixture(scope="module")
def s() -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(0).random((2, K, T)), dtype=torch.float64)


def test_median_baseline_is_the_per_class_median_over_time(s: torch.Tensor) -> None:
    base = median_baseline(s)
    np.testing.assert_allclose(
        base.numpy(), np.median(s.numpy(), axis=-1, keepdims=True) + 0 * s.numpy()
    )
    even = torch.tensor([[[4.0, 1.0, 3.0, 2.0]]])
    assert median_baseline(even).tolist() == [[[2.5] * 4]]  # mean of the two middle values


def test_step2_treats_each_class_row_apart(model: torch.nn.Module, s: torch.Tensor) -> None:
    """What the one-backward-pass gradient relies on: p[b, k] depends on s[b, k] only."""
    small = s[:, :3]  # 3 classes keep the Jacobian small
    jac = torch.autograd.functional.jacobian(model.pool_from_step1, small)  # (B, 3, B, 3, T)
    mask = torch.zeros_like(jac, dtype=torch.bool)
    for b in range(2):
        for k in range(3):
            mask[b, k, b, k] = True
    assert jac[~mask].abs().max() == 0
    assert jac[mask].abs().max() > 1e-3


def test_integrated_gradients_complete_the_difference(
    model: torch.nn.Module, s: torch.Tensor
) -> None:
    pool = model.pool_from_step1
    with torch.no_grad():
        difference = pool(s) - pool(median_baseline(s))
    assert difference.abs().max() > 0.05  # a non-trivial path
    errors = {}
    for steps in (2, 32, 256):
        attributions = integrated_gradients(pool, s, steps=steps)
        assert attributions.shape == s.shape and attributions.dtype == torch.float64
        errors[steps] = float((attributions.sum(-1) - difference).abs().max())
    assert errors[256] < 1e-4 * float(difference.abs().max())
    assert errors[256] < errors[32] < errors[2]


def test_integrated_gradients_against_finite_differences(
    model: torch.nn.Module, s: torch.Tensor
) -> None:
    """The trapezoid sum with central-difference gradients, frame by frame, in float64."""
    pool = model.pool_from_step1
    steps, h = 4, 1e-6
    base = median_baseline(s)
    delta = s - base
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2
    expected = torch.zeros_like(s)
    with torch.no_grad():
        for j, alpha in enumerate(np.linspace(0, 1, steps + 1)):
            point = base + alpha * delta
            for t in range(T):
                bump = torch.zeros_like(s)
                bump[..., t] = h  # every class at once: classes do not interact (test above)
                grad = (pool(point + bump) - pool(point - bump)) / (2 * h)
                expected[..., t] += weights[j] * grad
    expected *= delta
    got = integrated_gradients(pool, s, steps=steps)
    torch.testing.assert_close(got, expected, atol=1e-7, rtol=1e-5)
    with torch.no_grad():  # works when the caller switched gradients off
        torch.testing.assert_close(integrated_gradients(pool, s, steps=steps), got)


def test_occlusion_against_a_hand_loop(model: torch.nn.Module, s: torch.Tensor) -> None:
    pool = model.pool_from_step1
    base = median_baseline(s)
    got = occlusion(pool, s)
    few = occlusion(pool, s, max_elements=1)  # one frame per batch: the same numbers
    torch.testing.assert_close(few, got)
    with torch.no_grad():
        full = pool(s)
        for b in range(2):
            for k in (0, 7, 40):
                for t in range(T):
                    hidden = s.clone()
                    hidden[b, k, t] = base[b, k, t]
                    assert float(got[b, k, t]) == pytest.approx(
                        float(full[b, k] - pool(hidden)[b, k]), abs=1e-12
                    )
    constant = torch.full((1, K, T), 0.3, dtype=torch.float64)  # baseline = input: no drop
    assert occlusion(pool, constant).abs().max() < 1e-12


def test_attribution_errors(model: torch.nn.Module, s: torch.Tensor) -> None:
    pool = model.pool_from_step1
    with pytest.raises(
        LocalisationError, match="expected floating-point \\(clips, classes, frames\\)"
    ):
        integrated_gradients(pool, s[0])
    with pytest.raises(LocalisationError, match="baseline of shape"):
        occlusion(pool, s, s[:1])
    with pytest.raises(LocalisationError, match="steps=0"):
        integrated_gradients(pool, s, steps=0)
    with pytest.raises(LocalisationError, match="pool returned shape"):
        integrated_gradients(lambda z: z.sum(), s)


def test_twostep_maps_hold_the_attributions() -> None:
    torch.manual_seed(0)
    net = build_model("2APAE", time_steps=T, mel_bins=F, width=0.0625).eval()
    x = torch.as_tensor(np.random.default_rng(2).standard_normal((2, T, F)), dtype=torch.float32)
    maps = model_maps(net, x)
    with torch.no_grad():
        out = net(x)
    assert tuple(maps.frame_scores) == SCORERS["twostep"]
    torch.testing.assert_close(net.pool_from_step1(out["step1_output"]), out["clip_probs"])
    step1 = out["step1_output"]
    torch.testing.assert_close(
        maps.frame_scores["integrated gradients"],
        integrated_gradients(net.pool_from_step1, step1),
    )
    torch.testing.assert_close(
        maps.frame_scores["occlusion"], occlusion(net.pool_from_step1, step1)
    )


def test_within_clip_auroc_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    scores = np.round(rng.random((3, K, 20)), 1)  # ties within clips
    labels = (rng.random((3, K, 20)) < 0.3).astype(np.uint8)
    labels[0, 0] = 0  # no active frame
    labels[0, 1] = 1  # every frame active
    got = within_clip_auroc(scores, labels)
    assert got.shape == (3, K)
    assert np.isnan(got[0, 0]) and np.isnan(got[0, 1])
    for i in range(3):
        for k in range(K):
            if 0 < labels[i, k].sum() < 20:
                assert got[i, k] == pytest.approx(roc_auc_score(labels[i, k], scores[i, k]))
    np.testing.assert_allclose(within_clip_auroc(-scores, labels), 1 - got)  # inverted
    with pytest.raises(LocalisationError, match="same"):
        within_clip_auroc(scores, labels[:2])
    bad = scores.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(LocalisationError, match="NaN"):
        within_clip_auroc(bad, labels)


def test_uniform_in_time_has_the_share_of_active_frames_as_frame_ap() -> None:
    rng = np.random.default_rng(5)
    tags = np.zeros((6, K), dtype=np.uint8)
    labels = np.zeros((6, K, 30), dtype=np.uint8)
    for i in range(6):
        for k in rng.choice(4, size=2, replace=False):
            tags[i, k] = 1
            start = rng.integers(0, 20)
            labels[i, k, start : start + rng.integers(1, 10)] = 1
    scores = uniform_in_time(tags, 30)
    assert scores.shape == (6, K, 30) and (scores[:, :, 0] == tags).all()
    share = active_frame_share(labels, tags)
    present = labels.sum(axis=(0, 2)) > 0
    by_hand = labels.sum(axis=(0, 2))[present] / (30 * tags.sum(axis=0)[present])
    assert share["frame_ap"] == pytest.approx(by_hand.mean())
    assert share["frame_ap_micro"] == pytest.approx(labels.sum() / (30 * tags.sum()))
    metrics = frame_metrics(scores, labels)
    assert metrics["frame_ap"] == pytest.approx(share["frame_ap"])
    assert metrics["frame_ap_micro"] == pytest.approx(share["frame_ap_micro"])
    assert np.nanmean(within_clip_auroc(scores, labels)) == 0.5
    untagged = tags.copy()
    untagged[labels.any(-1)] = 0
    with pytest.raises(LocalisationError, match="not tagged"):
        active_frame_share(labels, untagged)
    with pytest.raises(LocalisationError, match="expected \\(clips, classes\\)"):
        uniform_in_time(tags[0], 30)
