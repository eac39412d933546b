"""The attention step, the pooling heads and the weight initialisation against hand formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from paperlib.models import build_model
from paperlib.models.attention import AttentionStep
from paperlib.models.pooling import GlobalPool, global_weighted_rank_pool


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("variant", ["authors", "paper"])
def test_attention_step_matches_equations(variant: str) -> None:
    torch.manual_seed(0)
    step = AttentionStep(7, variant=variant)
    z = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        weights, output = step(z)
    zn = z.double().numpy()
    wa, ba = (
        step.attention.weight.double().detach().numpy(),
        step.attention.bias.double().detach().numpy(),
    )
    wc = step.classification.weight.double().detach().numpy()
    bc = step.classification.bias.double().detach().numpy()
    att, cla = zn @ wa.T + ba, zn @ wc.T + bc
    if variant == "authors":  # softmax on the attention branch, sigmoid on the classification
        expected_w, cla = _softmax(att), _sigmoid(cla)
    else:  # paper eq. 7-10: Z_a = σ(ZW_a + b_a), softmax over it; Z_c linear
        expected_w = _softmax(_sigmoid(att))
    np.testing.assert_allclose(weights.numpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output.numpy(), (expected_w * cla).sum(-1), rtol=1e-4, atol=1e-5)


def test_attention_step_without_softmax_uses_the_raw_attention_branch() -> None:
    """``normalise=False`` (chapter 7's exercise): weights = W_a z + b_a, not a distribution."""
    torch.manual_seed(0)
    step = AttentionStep(7, variant="authors", normalise=False)
    z = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        weights, output = step(z)
        raw = step.attention(z)
        expected = (raw * torch.sigmoid(step.classification(z))).sum(-1)
    torch.testing.assert_close(weights, raw)
    torch.testing.assert_close(output, expected)
    assert float((weights.sum(-1) - 1).abs().max()) > 0.1  # no longer sums to 1
    assert "normalise=False" in repr(step)


def test_gwrp_limits_match_max_and_mean() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((2, 3, 11, 6)).astype(np.float32)
    maps = torch.from_numpy(values)
    np.testing.assert_allclose(
        global_weighted_rank_pool(maps, decay=0.0).numpy(), values.max(axis=(2, 3)), rtol=1e-6
    )
    np.testing.assert_allclose(
        global_weighted_rank_pool(maps, decay=1e-12).numpy(), values.max(axis=(2, 3)), rtol=1e-6
    )
    np.testing.assert_allclose(
        global_weighted_rank_pool(maps, decay=1.0).numpy(), values.mean(axis=(2, 3)), rtol=1e-5
    )
    # intermediate decay: weighted average of the descending-sorted values, by hand
    flat = np.sort(values.reshape(2, 3, -1), axis=-1)[..., ::-1].astype(np.float64)
    w = 0.9 ** np.arange(flat.shape[-1])
    np.testing.assert_allclose(
        global_weighted_rank_pool(maps, decay=0.9).numpy(), (flat * w).sum(-1) / w.sum(), rtol=1e-5
    )
    assert GlobalPool("max")(maps).allclose(torch.from_numpy(values.max(axis=(2, 3))))
    assert GlobalPool("avg")(maps).allclose(torch.from_numpy(values.mean(axis=(2, 3))))


def test_gwrp_gradient_is_the_rank_weight_and_ties_do_not_matter() -> None:
    """d GWRP / d x_i = w_rank(i) (ranks by hand); tied values give the sorted sum."""
    rng = np.random.default_rng(1)
    values = rng.random((2, 3, 7, 5)).astype(np.float32)
    maps = torch.from_numpy(values).requires_grad_(True)
    global_weighted_rank_pool(maps, decay=0.9).sum().backward()
    flat = values.reshape(2, 3, -1)
    ranks = np.argsort(np.argsort(-flat, axis=-1, kind="stable"), axis=-1)  # 0 = largest
    w = 0.9 ** np.arange(flat.shape[-1])
    np.testing.assert_allclose(maps.grad.reshape(2, 3, -1).numpy(), w[ranks] / w.sum(), rtol=1e-5)
    tied = rng.integers(0, 4, size=values.shape).astype(np.float32) / 4  # many equal values
    descending = np.sort(tied.reshape(2, 3, -1), axis=-1)[..., ::-1]
    np.testing.assert_allclose(
        global_weighted_rank_pool(torch.from_numpy(tied), decay=0.9).numpy(),
        (descending * w).sum(-1) / w.sum(),
        rtol=1e-5,
    )


def test_gwrp_and_pool_errors() -> None:
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):
        global_weighted_rank_pool(torch.zeros(1, 1, 2, 2), decay=1.5)
    with pytest.raises(ValueError, match="valid kinds: max, avg, gwrp"):
        GlobalPool("median")


def _assert_uniform(values: torch.Tensor, bound: float, what: str) -> None:
    """``values`` look like draws from U(-bound, bound): inside the bound, reaching it, and a
    Kolmogorov-Smirnov test against that uniform law that does not reject it."""
    v = values.detach().double().flatten().numpy()
    assert np.abs(v).max() <= bound, what
    assert np.abs(v).max() > 0.9 * bound, what  # every checked tensor has >= 41 values
    assert stats.kstest(v, stats.uniform(loc=-bound, scale=2 * bound).cdf).pvalue > 1e-3, what


def test_initialisation_as_the_authors_code_ran() -> None:
    torch.manual_seed(0)
    model = build_model("2APAE", width=0.25)
    counts = {"conv": 0, "linear": 0, "bn": 0}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):  # init_layer: He-uniform, bias 0
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            if module.weight.numel() >= 41:
                _assert_uniform(module.weight, math.sqrt(6.0 / fan_in), name)
            if module.bias is not None:
                assert (module.bias == 0).all(), name
            counts["conv"] += 1
        elif isinstance(module, nn.Linear):  # never passed to init_layer: PyTorch's default
            bound = 1.0 / math.sqrt(module.in_features)
            _assert_uniform(module.weight, bound, name)
            _assert_uniform(module.bias, bound, name)
            assert module.weight.abs().max() < math.sqrt(6.0 / module.in_features) / 2
            counts["linear"] += 1
        elif isinstance(module, nn.BatchNorm2d):
            assert (module.weight == 1).all() and (module.bias == 0).all(), name
            counts["bn"] += 1
    assert counts == {"conv": 4 * 2 + 1 + 4 * 2, "linear": 4, "bn": 4 * 2 + 4 * 2}


def test_atrous_attention_starts_at_zero_and_uniform() -> None:
    torch.manual_seed(0)
    model = build_model("AtrousAP", width=0.25).eval()
    head = model.head
    assert torch.count_nonzero(head.attention.weight) == 0
    assert torch.count_nonzero(head.attention.bias) == 0
    fan_in = head.classification.in_channels
    _assert_uniform(head.classification.weight, math.sqrt(6.0 / fan_in), "classification")
    for layer in model.trunk:  # the dilated 5x5 convs keep init_layer
        conv = layer[0]
        _assert_uniform(conv.weight, math.sqrt(6.0 / (conv.in_channels * 25)), "trunk")
    with torch.no_grad():
        att = model(torch.randn(2, 311, 64))["attention_maps"]
    # sigmoid(0) = 0.5 everywhere, normalised over T x F: uniform attention
    np.testing.assert_allclose(att.numpy(), np.full(att.shape, 1.0 / (311 * 64)), rtol=1e-5)
