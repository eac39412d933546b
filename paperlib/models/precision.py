"""Keeping the models' heads in float32 under reduced-precision autocast.

Under ``torch.autocast(..., dtype=torch.bfloat16)`` convolutions and matrix products run in
bfloat16, which has 8 bits of mantissa: 0.9998 rounds to 1.0 (GWRP silently becomes GAP),
sigmoid outputs tie and attention logits lose their small differences. The trunks (3x3
convolutions, BatchNorm, ReLU, the 3x3 smoothing average pooling) and the 2APAE decoder may run
in the autocast dtype; every **head** -- the 1x1 class convolution, the sigmoid, GMP/GAP/GWRP,
the two-step attention (its linear layers, softmax and sigmoid) and the Atrous AP attention
head -- runs in float32 inside :func:`full_precision`, whatever the autocast setting.
"""

from __future__ import annotations

import contextlib

import torch

_AUTOCAST_DEVICES: tuple[str, ...] = ("cpu", "cuda")


def full_precision(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """A context that switches autocast off on ``x``'s device type while it is on.

    Use it around a head and cast its input with ``.float()``: every operation inside then
    runs in float32. Outside autocast (and on devices without autocast, such as ``meta``) it
    is a no-op.
    """
    device_type = x.device.type
    if device_type in _AUTOCAST_DEVICES and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
