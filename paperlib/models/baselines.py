"""The baselines of Table IV: a VGG-like trunk with GMP/GAP/GWRP, and Atrous AP.

As in the authors' code (see ``REFERENCE_FACTS.md``): GMP, GAP and GWRP share one class,
:class:`PooledCNN`, whose pooling is a configuration field; Atrous AP is :class:`AtrousAP`.
"""

from __future__ import annotations

import torch
from torch import nn

from paperlib.models.blocks import AtrousLayer, ConvBlock
from paperlib.models.encoder import ClassConv
from paperlib.models.pooling import AtrousAttentionHead, GlobalPool
from paperlib.models.precision import full_precision
from paperlib.models.spec import ModelSpec, SEDModel

TRUNK_CHANNELS: tuple[int, ...] = (32, 64, 128, 128)
"""Channels of the four double-conv blocks of the GMP/GAP/GWRP trunk at width 1."""

ATROUS_CHANNELS: tuple[int, ...] = (64, 128, 256)
ATROUS_DILATIONS: tuple[int, ...] = (1, 2, 4)


class PooledCNN(SEDModel):
    """VGG-like trunk (4 double-conv blocks, no pooling) -> 1x1 conv -> sigmoid -> global pool.

    Forward: (B, T, F) -> dict with ``clip_probs`` (B, K) in [0, 1] and ``class_maps``
    (B, K, T, F) (sigmoid class maps, the values the pooling sees); the head (class conv,
    sigmoid, pooling) runs in float32 whatever the autocast setting.

    Args:
        spec: the model spec (its width scales the trunk channels).
        pooling: ``max`` (GMP), ``avg`` (GAP) or ``gwrp`` (GWRP).
    """

    def __init__(self, spec: ModelSpec, *, pooling: str) -> None:
        super().__init__(spec)
        blocks, in_channels = [], 1
        for base in TRUNK_CHANNELS:
            out_channels = spec.channels(base)
            blocks.append(ConvBlock(in_channels, out_channels, pool=False))
            in_channels = out_channels
        self.trunk = nn.Sequential(*blocks)
        self.class_conv = ClassConv(in_channels, spec.num_classes)
        self.pool = GlobalPool(pooling)

    def start_at_prior(self, logit: torch.Tensor) -> None:
        """GMP: class convolution weight 0, bias ``logit`` (K,): every class map and every clip
        probability starts at its prior. GAP and GWRP keep the paper's init (see
        :mod:`paperlib.models.prior`)."""
        if self.pool.kind != "max":
            return
        self.class_conv.conv.weight.zero_()
        self.class_conv.conv.bias.copy_(logit)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(self.check_input(x))  # (B, C, T, F)
        logits = self.class_conv(h)  # (B, K, T, F) float32
        with full_precision(logits):
            class_maps = torch.sigmoid(logits.float())
            return {"clip_probs": self.pool(class_maps), "class_maps": class_maps}


class AtrousAP(SEDModel):
    """Three 5x5 dilated convs (64, 128, 256 ch; dilation 1, 2, 4) and the 2-D attention head.

    Forward: (B, T, F) -> dict with ``clip_probs`` (B, K) in (0, 0.5], ``class_maps``
    (B, K, T, F) and ``attention_maps`` (B, K, T, F) (see :class:`AtrousAttentionHead`).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        layers, in_channels = [], 1
        for base, dilation in zip(ATROUS_CHANNELS, ATROUS_DILATIONS, strict=True):
            out_channels = spec.channels(base)
            layers.append(AtrousLayer(in_channels, out_channels, dilation=dilation))
            in_channels = out_channels
        self.trunk = nn.Sequential(*layers)
        self.head = AtrousAttentionHead(in_channels, spec.num_classes)

    def start_at_prior(self, logit: torch.Tensor) -> None:
        """Nothing: a log-softmax over classes cannot start at priors whose odds sum above one
        (see :mod:`paperlib.models.prior`); the paper's init already starts it low."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.trunk(self.check_input(x)))
