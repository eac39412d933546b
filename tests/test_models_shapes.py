"""Output shapes, probability ranges and attention normalisation of every model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.config import load_profile
from paperlib.models import MODEL_NAMES, ModelSpec, build_model

K, T, F = 41, 311, 64

EXPECTED_EXTRA = {
    "GMP": {"class_maps": (K, T, F)},
    "GAP": {"class_maps": (K, T, F)},
    "GWRP": {"class_maps": (K, T, F)},
    "AtrousAP": {"class_maps": (K, T, F), "attention_maps": (K, T, F)},
    "2APAE": {
        "class_maps": (K, T, F),
        "step1_weights": (K, T, F),
        "step1_output": (K, T),
        "step2_weights": (K, T),
        "step2_output": (K,),
        "reconstruction": (T, F),
    },
    "2APAE-local": {
        "class_maps": (K, T, F),
        "step1_weights": (K, T, F),
        "step1_output": (K, T),
        "step2_weights": (K, T),
        "step2_classification": (K, T),
        "step2_output": (K,),
        "reconstruction": (T, F),
    },
}


def _check_outputs(name: str, out: dict[str, torch.Tensor], batch: int) -> None:
    assert out["clip_probs"].shape == (batch, K)
    probs = out["clip_probs"].numpy()
    assert np.all(np.isfinite(probs)) and probs.min() >= 0.0 and probs.max() <= 1.0
    for key, shape in EXPECTED_EXTRA[name].items():
        assert out[key].shape == (batch, *shape), key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_paper_size_shapes(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()  # width 1.0: the paper's sizes
    with torch.no_grad():
        out = model(torch.randn(1, T, F))
    _check_outputs(name, out, batch=1)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_pocket_size_shapes(name: str) -> None:
    width = load_profile("pocket").model.width
    assert 0 < width < 1  # the pocket profile's narrow model
    torch.manual_seed(0)
    model = build_model(name, width=width).eval()
    with torch.no_grad():
        out = model(torch.randn(3, T, F) * 3)
    _check_outputs(name, out, batch=3)
    assert model.spec == ModelSpec(name, width=width)


@pytest.mark.parametrize("name", ["2APAE", "2APAE-local"])
@pytest.mark.parametrize("attention", ["authors", "paper"])
def test_two_step_attention_normalisation(attention: str, name: str) -> None:
    torch.manual_seed(1)
    model = build_model(name, width=0.125, attention=attention).eval()
    with torch.no_grad():
        out = model(torch.randn(2, T, F))
    s1 = out["step1_weights"].double().sum(dim=-1).numpy()  # over mel bins
    s2 = out["step2_weights"].double().sum(dim=-1).numpy()  # over time
    np.testing.assert_allclose(s1, np.ones((2, K, T)), atol=1e-5)
    np.testing.assert_allclose(s2, np.ones((2, K)), atol=1e-5)
    assert (out["step1_weights"] >= 0).all() and (out["step2_weights"] >= 0).all()
    # clip_probs is step2_output clamped to [0, 1]
    expected = np.clip(out["step2_output"].numpy(), 0.0, 1.0)
    np.testing.assert_array_equal(out["clip_probs"].numpy(), expected)


def test_atrous_attention_sums_to_one_over_time_frequency() -> None:
    torch.manual_seed(2)
    model = build_model("AtrousAP", width=0.125).eval()
    with torch.no_grad():
        out = model(torch.randn(2, T, F))
    sums = out["attention_maps"].double().sum(dim=(2, 3)).numpy()
    np.testing.assert_allclose(sums, np.ones((2, K)), atol=1e-5)
    # the log-softmax classification branch keeps the weighted sum <= 0, so probs <= 0.5
    assert out["clip_probs"].max() <= 0.5


def _avg_pool_3x3(a: np.ndarray) -> np.ndarray:
    """3x3 average pooling, stride 1, zero padding 1, divided by 9 (count_include_pad), by hand."""
    padded = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)])
    t, f = a.shape[-2:]
    return sum(padded[..., i : i + t, j : j + f] for i in range(3) for j in range(3)) / 9.0


def test_decoder_activation_switch_and_last_pooling() -> None:
    x = torch.randn(2, T, F)
    recon, before_pool = {}, {}
    for activation in ("relu", "linear"):
        torch.manual_seed(3)
        model = build_model("2APAE", width=0.125, decoder_activation=activation).eval()
        last = model.decoder.blocks[-1]
        handle = last.convs.register_forward_hook(
            lambda mod, inp, out, a=activation: before_pool.__setitem__(a, out.squeeze(1).numpy())
        )
        with torch.no_grad():
            recon[activation] = model(x)["reconstruction"].numpy()
        handle.remove()
        # the last block pools too (authors' code): 3x3 stride-1 average of its activations
        np.testing.assert_allclose(recon[activation], _avg_pool_3x3(before_pool[activation]),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    assert recon["relu"].min() >= 0.0  # the paper's quirk: cannot reconstruct negative values
    assert recon["linear"].min() < 0.0
    # same weights (same seed): before the pooling, ReLU is exactly the positive part of linear
    np.testing.assert_allclose(before_pool["relu"], np.maximum(before_pool["linear"], 0.0))


def test_width_scales_hidden_channels_only() -> None:
    model = build_model("2APAE", width=0.01)  # every hidden layer collapses to 1 channel
    assert model.class_conv.conv.out_channels == K
    assert model.encoder.out_channels == 3  # round(256 * 0.01) = 3
    assert model.encoder.blocks[0].out_channels == 1  # max(1, round(0.32))
    assert model.decoder.blocks[-1].out_channels == 1
    with torch.no_grad():
        out = model.eval()(torch.randn(1, T, F))
    assert out["reconstruction"].shape == (1, T, F)


def test_other_sizes() -> None:
    for name in MODEL_NAMES:
        model = build_model(name, num_classes=5, time_steps=20, mel_bins=8, width=0.25).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 20, 8))
        assert out["clip_probs"].shape == (2, 5)
        assert out["class_maps"].shape == (2, 5, 20, 8)


def test_smoothing_pool_equals_torch_average_pooling_forward_and_backward():
    from paperlib.models.blocks import SmoothingPool

    torch.manual_seed(0)
    x = torch.randn(3, 5, 9, 7, requires_grad=True)
    reference = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
    ours = SmoothingPool()
    assert isinstance(ours, torch.nn.AvgPool2d) and not list(ours.parameters())
    torch.testing.assert_close(ours(x), reference(x), atol=1e-6, rtol=0)
    weights = torch.randn(3, 5, 9, 7)
    (grad_ours,) = torch.autograd.grad((ours(x) * weights).sum(), x)
    (grad_ref,) = torch.autograd.grad((reference(x) * weights).sum(), x)
    torch.testing.assert_close(grad_ours, grad_ref, atol=1e-6, rtol=0)
    # a corner output averages its 4 in-image neighbours over the 9-cell window (padding counts)
    assert ours(x)[0, 0, 0, 0].item() == pytest.approx(x[0, 0, :2, :2].sum().item() / 9, abs=1e-6)
