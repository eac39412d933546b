"""The shared encoder ("segmentation network", paper Table I) and the class convolution."""

from __future__ import annotations

import torch
from torch import nn

from paperlib.models.blocks import ConvBlock
from paperlib.models.precision import full_precision

ENCODER_CHANNELS: tuple[int, ...] = (32, 64, 128, 256)
"""Channels of the four encoder blocks at width 1 (paper Table I)."""


class Encoder(nn.Module):
    """Four :class:`ConvBlock` s with average pooling: (B, 1, T, F) -> (B, C_last, T, F).

    Args:
        channels: output channels of the four blocks (already scaled by the width).
    """

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        blocks = []
        in_channels = 1
        for out_channels in channels:
            blocks.append(ConvBlock(in_channels, out_channels, pool=True))
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) log-mel -> (B, C_last, T, F) internal T-F representation."""
        return self.blocks(x)


class ClassConv(nn.Module):
    """1x1 convolution with bias to K class maps: (B, C, T, F) -> (B, K, T, F).

    The first layer of every head: it runs in float32 even under autocast (a cheap 1x1
    convolution; bfloat16 class maps would tie and blur what the pooling ranks).
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) -> (B, K, T, F) float32 class T-F representation (unbounded)."""
        with full_precision(x):
            return self.conv(x.float())
