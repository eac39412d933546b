"""Pooling heads of the baselines: GMP, GAP, GWRP over class maps, and the Atrous AP head.

Each head maps class maps (B, K, T, F) to clip probabilities (B, K), in float32 whatever the
autocast setting (see :mod:`paperlib.models.precision`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.models.precision import full_precision

GWRP_DECAY: float = 0.9998
"""Decay of global weighted rank pooling in the authors' code (Kong et al. 2019)."""

POOLING_KINDS: tuple[str, ...] = ("max", "avg", "gwrp")


@functools.lru_cache(maxsize=8)
def _rank_weights_float64(n: int, decay: float) -> torch.Tensor:
    """decay^r / sum_r decay^r for r = 0..n-1: (n,) float64 on the CPU, built once per (n, decay).

    Float64 on purpose: in bfloat16 (and float16) 0.9998 rounds to 1.0, every weight becomes 1
    and GWRP would be GAP. Cached: do not modify.
    """
    ranks = torch.arange(n, dtype=torch.float64)
    weights = torch.pow(torch.tensor(decay, dtype=torch.float64), ranks)
    return weights / weights.sum()


@functools.lru_cache(maxsize=16)
def _rank_weights(n: int, decay: float, device: torch.device) -> torch.Tensor:
    """The float64 weights cast once to float32 on ``device``: (n,). Cached: do not modify."""
    return _rank_weights_float64(n, decay).to(device=device, dtype=torch.float32)


def global_weighted_rank_pool(maps: torch.Tensor, *, decay: float = GWRP_DECAY) -> torch.Tensor:
    """GWRP: sort each map's T*F values in descending order and average with weights decay^rank.

    ``decay -> 0`` gives the maximum (weight 1 on rank 0 since 0**0 = 1), ``decay = 1`` the mean.
    The normalised rank weights are built in float64 (once per size and decay) and the pooling
    is done in float32 whatever the dtype of ``maps`` or the autocast setting, so GWRP stays
    GWRP under bfloat16 autocast.

    Args:
        maps: (B, K, T, F) values (sigmoid class maps), any floating dtype.
        decay: in [0, 1].

    Returns:
        (B, K) float32 pooled values.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"GWRP decay must be in [0, 1], got {decay!r}")
    with full_precision(maps):
        flat = maps.flatten(2).float()  # (B, K, T*F)
        ranked = flat.gather(-1, descending_order(flat))
        weights = _rank_weights(flat.shape[-1], float(decay), flat.device)
        return (ranked * weights).sum(dim=-1)


def descending_order(values: torch.Tensor) -> torch.Tensor:
    """Indices that sort ``values`` along the last axis, largest first: (..., N) int64.

    On the CPU numpy's vectorised argsort (deterministic), which makes GWRP about twice as fast
    as with ``torch.sort`` at the pocket size (``python -m benchmarks pooling``); elsewhere
    ``torch.sort``. Tied values may come in another order than
    ``torch.sort``'s, which leaves every weighted sum unchanged. No gradient flows through the
    indices: gather the values with them.
    """
    if values.device.type != "cpu":
        return values.sort(dim=-1, descending=True).indices
    order = np.argsort(-values.detach().numpy(), axis=-1)
    return torch.from_numpy(order)


class GlobalPool(nn.Module):
    """Global max, average or weighted-rank pooling over T x F: (B, K, T, F) -> (B, K).

    Args:
        kind: ``max`` (GMP), ``avg`` (GAP) or ``gwrp`` (GWRP).
        decay: GWRP decay (ignored by the other kinds).
    """

    def __init__(self, kind: str, *, decay: float = GWRP_DECAY) -> None:
        super().__init__()
        if kind not in POOLING_KINDS:
            raise ValueError(f"unknown pooling {kind!r}; valid kinds: {', '.join(POOLING_KINDS)}")
        self.kind = kind
        self.decay = decay

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, K, T, F) -> (B, K) float32."""
        if self.kind == "gwrp":
            return global_weighted_rank_pool(maps, decay=self.decay)
        with full_precision(maps):
            maps = maps.float()
            return maps.amax(dim=(2, 3)) if self.kind == "max" else maps.mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}" + (f", decay={self.decay}" if self.kind == "gwrp" else "")


class AtrousAttentionHead(nn.Module):
    """The 2-D attention head of Atrous AP (Ren et al. 2019, as in the authors' code).

    Two 1x1 convolutions to K maps; the attention convolution's weight starts at zero
    (:meth:`after_init`). Attention: sigmoid, clamped to [0.1, 0.9], normalised to
    sum 1 over T x F. Classification: log-softmax over the K classes. The attention-weighted sum
    over T x F goes through a final sigmoid. Since a log-softmax is <= 0, the clip
    probabilities of this head are <= 0.5: a quirk of the original, kept on purpose.

    Forward: (B, C, T, F) -> dict with ``clip_probs`` (B, K), ``class_maps`` (B, K, T, F)
    (softmax over classes, i.e. exp of the log-softmax branch) and ``attention_maps``
    (B, K, T, F) (normalised attention, sums to 1 over T x F).
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.attention = nn.Conv2d(in_channels, num_classes, 1, bias=True)
        self.classification = nn.Conv2d(in_channels, num_classes, 1, bias=True)

    def after_init(self) -> None:
        """Zero the attention convolution's weight after the generic initialisation, as the
        authors' code does: every attention logit starts at its bias (0), so the attention
        starts uniform over T x F."""
        with torch.no_grad():
            self.attention.weight.zero_()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with full_precision(x):  # the whole head in float32 (1x1 convs included)
            x = x.float()
            att = torch.sigmoid(self.attention(x)).clamp(0.1, 0.9)
            att = att / att.sum(dim=(2, 3), keepdim=True)
            log_cla = F.log_softmax(self.classification(x), dim=1)
            clip_probs = torch.sigmoid((att * log_cla).sum(dim=(2, 3)))
        return {"clip_probs": clip_probs, "class_maps": log_cla.exp(), "attention_maps": att}
