"""The decoder of the auxiliary reconstruction task (paper Table III)."""

from __future__ import annotations

import torch
from torch import nn

from paperlib.models.blocks import ConvBlock

DECODER_CHANNELS: tuple[int, ...] = (128, 64, 32)
"""Hidden channels of the first three decoder blocks at width 1; a fourth block has 1 channel."""


class Decoder(nn.Module):
    """Mirror of the encoder: (B, C_enc, T, F) -> (B, 1, T, F) reconstructed log-mel.

    Three :class:`ConvBlock` s (``channels``) then a last block with one channel, ending in
    BatchNorm and ``last_activation``; every block, the last one included, ends in the 3x3
    stride-1 average pooling. The authors' code builds all eight encoder and decoder blocks from
    one class, so its last decoder block pools too, although the last row of the paper's
    Table III omits the pooling; the code produced the paper's numbers, so we follow it (the
    pooling has no parameters: the counts are unchanged).
    With ``relu`` (the paper and the authors' code) the reconstruction cannot go negative,
    although its target, the standardised log-mel, can; ``linear`` removes that quirk.

    Args:
        in_channels: channels of the encoder output (256 at width 1).
        channels: the three hidden channel counts (already scaled by the width).
        last_activation: ``relu`` or ``linear``.
    """

    def __init__(
        self, in_channels: int, channels: tuple[int, ...], *, last_activation: str
    ) -> None:
        super().__init__()
        blocks = []
        for out_channels in channels:
            blocks.append(ConvBlock(in_channels, out_channels, pool=True))
            in_channels = out_channels
        blocks.append(ConvBlock(in_channels, 1, pool=True, last_activation=last_activation))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C_enc, T, F) -> (B, 1, T, F)."""
        return self.blocks(z)
