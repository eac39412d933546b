"""The arithmetic of training and scoring: ``train.precision`` = ``fp32``, ``tf32`` or ``bf16``.

One helper, :class:`Precision`, drives both the trainer and :func:`~paperlib.run.recipe.predict`:

``fp32``
    Plain float32 everywhere, as the authors trained (the ``paper`` profile's setting). On
    CUDA, TF32 is switched off explicitly for matrix products and cuDNN convolutions
    (PyTorch allows TF32 in cuDNN convolutions by default).
``tf32``
    Float32 storage, TF32 tensor-core matrix products and convolutions on CUDA (about 10 bits
    of mantissa in the products). TF32 is a CUDA tensor-core format: **on a CPU this mode is
    identical to fp32** (the flags are not touched there).
``bf16``
    ``torch.autocast`` to bfloat16 on the run's device (CUDA or CPU): the trunks'
    convolutions run in bfloat16; TF32 stays off for what runs in float32.

Whatever the mode, every head (class convolution, sigmoid, GMP/GAP/GWRP, the two-step
attention, the Atrous AP head) runs in float32 (:mod:`paperlib.models.precision`), and the
losses and metrics are computed in float32 by the trainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from paperlib.config import PRECISIONS

__all__ = ["PRECISIONS", "Precision"]


@dataclass(frozen=True)
class Precision:
    """The precision of one run on one device.

    Use :meth:`backends` around a whole training step (forward, backward, optimiser step) or a
    scoring pass, and :meth:`autocast` around the forward pass only.

    Args:
        name: ``fp32``, ``tf32`` or ``bf16``.
        device: the run's device.

    Raises:
        ValueError: an unknown ``name`` (the valid ones are listed).
    """

    name: str
    device: torch.device

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.name!r}; valid values: {', '.join(PRECISIONS)}"
            )
        object.__setattr__(self, "device", torch.device(self.device))

    @contextlib.contextmanager
    def backends(self) -> Iterator[None]:
        """Set CUDA's TF32 flags for this precision (on only for ``tf32``), restore them after.

        On a CPU nothing is changed.
        """
        if self.device.type != "cuda":
            yield
            return
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        before = (matmul.allow_tf32, cudnn.allow_tf32)
        matmul.allow_tf32 = cudnn.allow_tf32 = self.name == "tf32"
        try:
            yield
        finally:
            matmul.allow_tf32, cudnn.allow_tf32 = before

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on the device for ``bf16``; nothing for ``fp32`` and ``tf32``."""
        if self.name == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
