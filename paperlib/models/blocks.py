"""Building blocks: the double-convolution block and the weight initialisation.

Chapter 2 of the book explains them. Every block keeps the T x F resolution (3x3 convolutions
with padding 1 and, optionally, 3x3 average pooling with stride 1 and padding 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def init_weights(module: nn.Module) -> None:
    """Initialise one module as the authors' ``init_layer``/``init_bn`` do (use with ``apply``).

    Conv weights: uniform in ``±sqrt(2 / fan_in) * sqrt(3)`` (He-uniform); their biases 0.
    BatchNorm: weight 1, bias 0. Every other module is left alone -- in particular the linear
    layers of the two-step attention, which the authors' code never passed to its init and which
    so keep PyTorch's default ``nn.Linear`` initialisation (weights and biases uniform in
    ``±1/sqrt(fan_in)``).
    """
    if isinstance(module, nn.Conv2d):
        fan_in = module.weight[0].numel()  # in_channels/groups * kh * kw
        bound = math.sqrt(2.0 / fan_in) * math.sqrt(3.0)
        with torch.no_grad():
            module.weight.uniform_(-bound, bound)
            if module.bias is not None:
                module.bias.zero_()
    elif isinstance(module, nn.BatchNorm2d):
        with torch.no_grad():
            module.weight.fill_(1.0)
            module.bias.zero_()


def initialise(model: nn.Module) -> nn.Module:
    """Initialise a whole model as the authors' code ran and return it.

    :func:`init_weights` on every module, then the exceptions: each module that defines an
    ``after_init()`` method runs it (the Atrous AP head zeroes its attention convolution).
    Draws from torch's global generator: seed it for reproducible weights.
    """
    model.apply(init_weights)
    for module in model.modules():
        after_init = getattr(module, "after_init", None)
        if callable(after_init):
            after_init()
    return model


def activation(name: str) -> nn.Module:
    """``relu`` -> ``nn.ReLU()``, ``linear`` -> ``nn.Identity()``."""
    return nn.ReLU() if name == "relu" else nn.Identity()


class SmoothingPool(nn.AvgPool2d):
    """``AvgPool2d(3, stride=1, padding=1, count_include_pad=True)``, computed as the sum of the
    nine shifted copies of the zero-padded input, divided by 9: the same numbers (within float
    rounding), about three times faster on a CPU, where PyTorch's average-pooling kernels are
    slow for these shapes, and bit-for-bit the same whatever the number of threads (only
    element-wise additions; a depthwise convolution was faster still but its results changed
    with the thread count, which breaks exact resumption). It has no parameters.

    Forward: (B, C, T, F) -> (B, C, T, F).
    """

    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1, count_include_pad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1))
        rows = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
        return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) / 9.0


class ConvBlock(nn.Module):
    """(3x3 conv without bias -> BatchNorm -> ReLU) x 2, then optional 3x3 average pooling.

    The paper's "CNN block" (Section III-B, Tables I and III). Input (B, C_in, T, F), output
    (B, C_out, T, F): the resolution never changes.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        pool: append the 3x3 stride-1 average pooling (:class:`SmoothingPool`; encoder and
            decoder blocks).
        last_activation: ``relu`` or ``linear`` after the second BatchNorm (the decoder's
            last block uses this switch; every other block keeps ``relu``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, pool: bool, last_activation: str = "relu"
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            activation(last_activation),
        )
        self.pool: nn.Module = SmoothingPool() if pool else nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, F) -> (B, C_out, T, F)."""
        return self.pool(self.convs(x))


class AtrousLayer(nn.Sequential):
    """5x5 dilated conv (no bias, 'same' padding) -> BatchNorm -> ReLU (the Atrous AP trunk)."""

    def __init__(self, in_channels: int, out_channels: int, *, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                5,
                padding=2 * dilation,
                dilation=dilation,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
