"""Shift test, permutation symmetry and attention statistics against direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from paperlib.interpret import fold_in_event_ratios, in_event_ratio
from paperlib.metrics import clip_metrics
from paperlib.models import build_model
from paperlib.robustness import (
    frame_hop_s,
    permute_step1,
    permute_step2,
    seconds_to_frames,
    shift_test,
    shift_time,
    step2_concentration,
)
from paperlib.run import predict

T, F = 77, 16  # the pocket model's grid (time_pool = mel_pool = 4)


def tiny_2apae(sharp: bool = False) -> nn.Module:
    """A random 2APAE; ``sharp`` re-draws the attention layers wide enough to be non-linear."""
    torch.manual_seed(0)
    model = build_model("2APAE", time_steps=T, mel_bins=F, width=0.0625).eval()
    if sharp:
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for step in (model.attention.step1, model.attention.step2):
                for layer in (step.attention, step.classification):
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
                    layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(0).standard_normal((4, T, F)), dtype=torch.float32)


@pytest.mark.parametrize("shift", [0, 1, 5, -3, T, T + 2, -T - 1])
def test_shift_time_matches_a_hand_rolled_array(shift: int) -> None:
    x = np.arange(2 * 7 * 3, dtype=np.float32).reshape(2, 7, 3)
    s = shift % 7
    expected = np.concatenate([x[:, 7 - s :], x[:, : 7 - s]], axis=1)  # out[t] = x[t - s]
    np.testing.assert_array_equal(shift_time(x, shift), expected)
    rolled = shift_time(torch.as_tensor(x), shift)
    assert isinstance(rolled, torch.Tensor)
    np.testing.assert_array_equal(rolled.numpy(), expected)
    if s == 0:
        np.testing.assert_array_equal(shift_time(x, shift), x)


def test_shift_time_and_seconds_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="expected \\(clips, frames, mel bins\\)"):
        shift_time(np.zeros((7, 3)), 1)
    with pytest.raises(ValueError, match="positive number of seconds"):
        seconds_to_frames(1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        seconds_to_frames(float("nan"), 0.1)


def test_frame_hop_and_seconds_to_frames() -> None:
    assert frame_hop_s(1) == pytest.approx(1024 / 32000)
    assert frame_hop_s(4) == pytest.approx(4 * 1024 / 32000)
    assert seconds_to_frames(1.0, frame_hop_s(4)) == 8  # 1 / 0.128 = 7.8
    assert seconds_to_frames(2.56, frame_hop_s(4)) == 20
    assert seconds_to_frames(-0.5, frame_hop_s(1)) == -16


class FrameMax(nn.Module):
    """A per-frame linear classifier, max-pooled over time: exactly shift-invariant."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(F, 41)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"clip_probs": torch.sigmoid(self.linear(x).amax(dim=1))}


def _labels(n: int) -> np.ndarray:
    y = np.zeros((n, 41), dtype=np.int64)
    rng = np.random.default_rng(3)
    for i in range(n):
        y[i, rng.choice(41, size=3, replace=False)] = 1
    return y


def test_global_max_pooling_is_invariant_under_circular_shift(x: torch.Tensor) -> None:
    model = FrameMax().eval()
    y = _labels(len(x))
    table = shift_test(model, x.numpy(), y, [0.0, 0.5, 1.0, 2.56], frame_hop_s(4))
    assert list(table["shift_frames"]) == [0, 4, 8, 20]
    expected = clip_metrics(y, predict(model, x.numpy())).micro_ap
    assert table["micro_ap"].tolist() == [expected] * 4  # exact: max ignores the order
    with torch.no_grad():
        base = model(x)["clip_probs"]
        for s in (3, 40):
            assert torch.equal(model(shift_time(x, s))["clip_probs"], base)


def test_shift_test_scores_the_shifted_clips_of_a_2apae(x: torch.Tensor) -> None:
    model = tiny_2apae(sharp=True)
    y = _labels(len(x))
    table = shift_test(model, x.numpy(), y, [0.0, 1.0])  # hop from T = 77: time_pool 4
    assert list(table.columns) == ["shift_s", "shift_frames", "micro_ap", "macro_ap"]
    assert list(table["shift_frames"]) == [0, 8]
    for row in table.itertuples():
        probs = predict(model, np.roll(x.numpy(), row.shift_frames, axis=1))
        scored = clip_metrics(y, probs)
        assert (row.micro_ap, row.macro_ap) == (scored.micro_ap, scored.macro_ap)
    with torch.no_grad():  # step 2's Linear(T, T) sees absolute frames: not invariant
        moved = model(shift_time(x, 8))["clip_probs"]
        assert (moved - model(x)["clip_probs"]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="expected \\(N, T, F\\) and \\(N, K\\)"):
        shift_test(model, x.numpy(), y[:2])


@pytest.mark.parametrize("sharp", [False, True])
def test_permuting_step2_rows_keeps_every_probability(sharp: bool, x: torch.Tensor) -> None:
    model = tiny_2apae(sharp)
    perm = np.random.default_rng(5).permutation(T)
    permuted = permute_step2(model, perm)
    with torch.no_grad():
        out, new = model(x), permuted(x)
    torch.testing.assert_close(new["clip_probs"], out["clip_probs"], atol=1e-6, rtol=0)
    torch.testing.assert_close(new["step2_weights"], out["step2_weights"][..., perm])
    torch.testing.assert_close(new["step1_output"], out["step1_output"])
    assert not torch.allclose(new["step2_weights"], out["step2_weights"])  # the map moved
    original = model.attention.step2.attention.weight  # the model itself is left alone
    assert not torch.equal(original, permuted.attention.step2.attention.weight)
    assert torch.equal(original, tiny_2apae(sharp).attention.step2.attention.weight)


def test_permuting_step1_rows_keeps_every_probability(x: torch.Tensor) -> None:
    model = tiny_2apae(sharp=True)
    perm = np.random.default_rng(6).permutation(F)
    with torch.no_grad():
        out, new = model(x), permute_step1(model, perm)(x)
    torch.testing.assert_close(new["clip_probs"], out["clip_probs"], atol=1e-6, rtol=0)
    torch.testing.assert_close(new["step1_output"], out["step1_output"], atol=1e-6, rtol=0)
    torch.testing.assert_close(new["step1_weights"], out["step1_weights"][..., perm])


@pytest.mark.parametrize("layer", ["attention", "classification"])
def test_permuting_one_layer_only_changes_the_probabilities(layer: str, x: torch.Tensor) -> None:
    model = tiny_2apae(sharp=True)
    perm = np.random.default_rng(5).permutation(T)
    with torch.no_grad():
        out = model(x)["clip_probs"]
        step2 = permute_step2(model, perm, layers=[layer])(x)["clip_probs"]
        step1 = permute_step1(model, np.roll(np.arange(F), 1), layers=[layer])(x)["clip_probs"]
    assert (step2 - out).abs().max() > 1e-3
    assert (step1 - out).abs().max() > 1e-3


def test_permutation_errors() -> None:
    model = tiny_2apae()
    with pytest.raises(ValueError, match="permutation of range\\(77\\)"):
        permute_step2(model, np.arange(76))
    with pytest.raises(ValueError, match="permutation of range\\(16\\)"):
        permute_step1(model, np.zeros(16, dtype=int))
    with pytest.raises(ValueError, match="expected some of attention, classification"):
        permute_step2(model, np.arange(T), layers=["decoder"])
    gmp = build_model("GMP", time_steps=T, mel_bins=F, width=0.0625)
    with pytest.raises(ValueError, match=r"no attention\.step2 with two Linear"):
        permute_step2(gmp, np.arange(T))


def test_step2_concentration_by_hand() -> None:
    one_hot = np.eye(4)[1]
    w = np.stack(
        [
            np.stack([one_hot, np.full(4, 0.25)]),
            np.stack([one_hot, np.array([0.25, 0.5, 0.25, 0.0])]),
        ]
    )  # (2 clips, 2 classes, 4 frames)
    stats = step2_concentration(w)
    assert (stats["n_pairs"], stats["n_frames"], stats["modal_frame"]) == (4, 4, 1)
    assert stats["modal_share"] == pytest.approx(3 / 4)  # argmaxes 1, 0 (tie: first), 1, 1
    h = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))  # entropy of (.25, .5, .25, 0)
    assert stats["effective_frames_entropy"] == pytest.approx((1 + 4 + 1 + np.exp(h)) / 4)
    assert stats["effective_frames_simpson"] == pytest.approx((1 + 4 + 1 + 1 / 0.375) / 4)
    chosen = step2_concentration(w, np.array([[True, False], [True, False]]))
    assert (chosen["n_pairs"], chosen["modal_share"], chosen["effective_frames_entropy"]) == (
        2,
        1.0,
        1.0,
    )
    tie = step2_concentration(w, np.array([[False, True], [True, False]]))
    assert (tie["modal_frame"], tie["modal_share"]) == (0, 0.5)  # argmaxes 0 and 1: lowest row
    with pytest.raises(ValueError, match="sum to 1"):
        step2_concentration(w * 2)
    with pytest.raises(ValueError, match="no \\(clip, class\\) pair"):
        step2_concentration(w, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="select of shape"):
        step2_concentration(w, np.ones((2, 3), bool))


def test_in_event_ratio_by_hand() -> None:
    w = np.array([0.7, 0.1, 0.1, 0.1])
    assert in_event_ratio(w, np.array([1, 1, 0, 0])) == pytest.approx(0.4 * 4)  # mean 0.4
    assert in_event_ratio(np.full(4, 0.25), np.array([0, 1, 1, 1])) == pytest.approx(1.0)
    assert np.isnan(in_event_ratio(w, np.zeros(4)))
    with pytest.raises(ValueError, match="same"):
        in_event_ratio(w, np.ones(3))


def test_fold_in_event_ratios_by_hand() -> None:
    weights = np.full((2, 41, 4), 0.25)
    weights[0, 3] = [0.7, 0.1, 0.1, 0.1]
    labels = np.zeros((2, 41, 4), dtype=np.uint8)
    labels[0, 3, :2] = 1  # class 3 of clip 0: frames 0-1
    labels[1, 0, 3] = 1  # class 0 of clip 1: frame 3
    table = fold_in_event_ratios(weights, labels, ["a", "b"])
    expected = pd.DataFrame(
        {
            "clip": ["a", "b"],
            "class_index": [3, 0],
            "event_frames": [2, 1],
            "attention_in_event": [0.8, 0.25],
            "ratio": [1.6, 1.0],
        }
    )
    pd.testing.assert_frame_equal(
        table.drop(columns="label"), expected, check_dtype=False, check_exact=False
    )
    with pytest.raises(ValueError, match="clip name"):
        fold_in_event_ratios(weights, labels, ["a"])


def test_flattering_permutation_puts_the_largest_weights_on_the_event() -> None:
    from paperlib.interpret import in_event_ratio
    from paperlib.robustness import flattering_permutation

    weights = np.array([0.05, 0.5, 0.05, 0.3, 0.05, 0.05])
    inside = np.array([False, False, False, False, True, True])
    perm = flattering_permutation(weights, inside)
    assert sorted(perm) == list(range(6))
    shown = weights[perm]
    assert list(shown[4:]) == [0.5, 0.3]  # the two largest, largest first
    assert list(perm[:4]) == [0, 2, 4, 5]  # the others keep their old order
    assert in_event_ratio(shown, inside) > in_event_ratio(weights, inside)
    with pytest.raises(ValueError, match=r"two \(T,\) arrays"):
        flattering_permutation(weights, inside[:3])
