"""Reduced precision: GWRP stays GWRP and every head stays float32 under bf16 autocast (CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperlib.models import MODEL_NAMES, build_model, has_decoder
from paperlib.models.pooling import GWRP_DECAY, global_weighted_rank_pool

BF16_ATOL = 0.02
"""Largest allowed |bf16 - fp32| of a clip probability of a fresh model on random clips.
Measured on CPU with the models below: about 0.004 (GMP), under 0.001 for the others."""

GWRP_BF16_ATOL = 1e-5
"""GWRP of bf16 maps against the same values pooled in float64 by numpy (float32 rounding)."""


def _numpy_gwrp(values: np.ndarray, decay: float) -> np.ndarray:
    """GWRP by hand in float64: (B, K, T, F) -> (B, K)."""
    flat = np.sort(values.reshape(*values.shape[:2], -1), axis=-1)[..., ::-1]
    weights = decay ** np.arange(flat.shape[-1], dtype=np.float64)
    return (flat * weights).sum(-1) / weights.sum()


def test_bf16_cannot_hold_the_decay() -> None:
    # why the weights are built in float64: 0.9998 rounds to 1.0 in bfloat16 (and float16)
    assert torch.tensor(GWRP_DECAY, dtype=torch.bfloat16).item() == 1.0
    assert torch.tensor(GWRP_DECAY, dtype=torch.float16).item() == 1.0
    assert torch.tensor(GWRP_DECAY, dtype=torch.float32).item() < 1.0


def test_gwrp_of_bf16_maps_under_autocast_matches_float64_and_differs_from_gap() -> None:
    values = torch.rand(2, 41, 311, 64, generator=torch.Generator().manual_seed(0))
    maps = values.to(torch.bfloat16)  # what a bf16 autocast trunk hands the pooling
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = global_weighted_rank_pool(maps)
    assert pooled.dtype == torch.float32
    exact = _numpy_gwrp(maps.double().numpy(), GWRP_DECAY)
    np.testing.assert_allclose(pooled.numpy(), exact, rtol=0, atol=GWRP_BF16_ATOL)
    gap = maps.double().mean(dim=(2, 3)).numpy()
    # uniform values: GWRP (0.9998 over 19,904 ranks) sits near 0.77, GAP near 0.5
    assert np.abs(pooled.numpy() - gap).min() > 0.2


def test_gwrp_model_under_bf16_autocast_is_gwrp_not_gap() -> None:
    torch.manual_seed(0)
    model = build_model("GWRP", width=0.0625).eval()
    x = torch.randn(4, 311, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fp32 = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x)
    maps = fp32["class_maps"].double()
    gwrp = _numpy_gwrp(maps.numpy(), GWRP_DECAY)
    gap = maps.mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(fp32["clip_probs"].numpy(), gwrp, atol=1e-5)
    assert np.abs(gwrp - gap).mean() > 0.03  # the two poolings really differ on this model
    np.testing.assert_allclose(bf16["clip_probs"].numpy(), gwrp, atol=BF16_ATOL / 10)
    assert np.abs(bf16["clip_probs"].numpy() - gap).min() > 5 * BF16_ATOL / 10


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
def test_bf16_autocast_stays_close_to_fp32_and_heads_stay_float32(train_mode: bool) -> None:
    x = torch.randn(3, 311, 64, generator=torch.Generator().manual_seed(2))
    for name in MODEL_NAMES:
        torch.manual_seed(0)
        model = build_model(name, width=0.0625).train(train_mode)
        if name == "AtrousAP":  # its attention starts at zero: give it weights to round
            bound = 1.0 / math.sqrt(model.head.attention.in_channels)
            torch.nn.init.uniform_(model.head.attention.weight, -bound, bound)
        with torch.no_grad():
            fp32 = model(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = model(x)
        for key, value in bf16.items():
            if key != "reconstruction":  # the decoder is a trunk: it may run in bf16
                assert value.dtype == torch.float32, (name, key)
        if has_decoder(name):  # the trunk really ran in bf16
            assert bf16["reconstruction"].dtype == torch.bfloat16
        diff = (bf16["clip_probs"] - fp32["clip_probs"]).abs().max().item()
        assert diff < BF16_ATOL, (name, diff)
        assert torch.isfinite(bf16["clip_probs"]).all(), name
