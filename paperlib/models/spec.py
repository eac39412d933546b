"""The model specification shared by every model: :class:`ModelSpec` and its errors.

A spec is the complete, JSON-friendly description of a model (name and sizes and switches);
checkpoints store it next to the weights, so a model is rebuilt from its spec and never
unpickled. Chapter 2 of the book introduces it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

MODEL_NAMES: tuple[str, ...] = ("GMP", "GAP", "GWRP", "AtrousAP", "2APAE", "2APAE-local")
"""Every model the registry builds: the five of the paper's Table IV, in the paper's order of
baselines then 2APAE, then the project's variant ``2APAE-local`` (a shift-equivariant step 2).
Which models a grid trains is the profile's ``grid.models``, not this tuple."""

DECODER_ACTIVATIONS: tuple[str, ...] = ("relu", "linear")
"""Last activation of the 2APAE decoder: ``relu`` (paper and authors' code) or ``linear``."""

ATTENTION_VARIANTS: tuple[str, ...] = ("authors", "paper")
"""Sigmoid/softmax placement in the 2-step attention (see :mod:`paperlib.models.attention`)."""


class ModelConfigError(ValueError):
    """A model name, size or switch that is not valid (the message lists what is)."""


class InputShapeError(ValueError):
    """An input tensor whose shape does not match the model's spec."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: name, sizes and variant switches.

    Attributes:
        name: one of :data:`MODEL_NAMES`.
        num_classes: K, number of sound-event classes (41 in the paper).
        time_steps: T, frames per clip (311 for 10 s at hop 1,024 and 32 kHz).
        mel_bins: F, mel bands (64).
        width: channel-width multiplier (> 0); hidden channels become
            ``max(1, round(c * width))``; the K class maps and the 1-channel reconstruction are
            never scaled.
        decoder_activation: ``relu`` or ``linear``; last activation of the 2APAE decoder
            (the baselines ignore it).
        attention: ``authors`` or ``paper``; sigmoid/softmax placement of the 2-step attention
            (the baselines ignore it).

    Raises:
        ModelConfigError: at construction, for any invalid field.
    """

    name: str
    num_classes: int = 41
    time_steps: int = 311
    mel_bins: int = 64
    width: float = 1.0
    decoder_activation: str = "relu"
    attention: str = "authors"

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ModelConfigError(
                f"unknown model name {self.name!r}; valid names: {', '.join(MODEL_NAMES)}"
            )
        for key in ("num_classes", "time_steps", "mel_bins"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"{key} must be a positive integer, got {value!r}")
        if (
            isinstance(self.width, bool)
            or not isinstance(self.width, (int, float))
            or not self.width > 0
            or self.width != self.width
        ):
            raise ModelConfigError(f"width must be a number > 0, got {self.width!r}")
        if self.decoder_activation not in DECODER_ACTIVATIONS:
            raise ModelConfigError(
                f"unknown decoder_activation {self.decoder_activation!r}; "
                f"valid values: {', '.join(DECODER_ACTIVATIONS)}"
            )
        if self.attention not in ATTENTION_VARIANTS:
            raise ModelConfigError(
                f"unknown attention {self.attention!r}; valid values: {', '.join(ATTENTION_VARIANTS)}"
            )
        object.__setattr__(self, "width", float(self.width))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML and ``torch.load(weights_only=True)`` safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ModelConfigError`."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ModelConfigError(
                f"unknown ModelSpec key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}"
            )
        if "name" not in values:
            raise ModelConfigError("a ModelSpec needs a 'name'")
        return cls(**dict(values))

    @classmethod
    def from_config(
        cls,
        name: str,
        model_config: Any,
        *,
        num_classes: int = 41,
        time_steps: int = 311,
        mel_bins: int = 64,
    ) -> ModelSpec:
        """Spec of model ``name`` with the width and switches of a profile's ``ModelConfig``."""
        return cls(
            name=name,
            num_classes=num_classes,
            time_steps=time_steps,
            mel_bins=mel_bins,
            width=model_config.width,
            decoder_activation=model_config.decoder_activation,
            attention=model_config.attention,
        )

    def channels(self, base: int) -> int:
        """Hidden channel count for the paper's ``base`` channels: ``max(1, round(base * width))``."""
        return max(1, round(base * self.width))


class SEDModel(nn.Module):
    """Base class of the five models: holds ``spec`` and checks inputs against it.

    Subclasses implement ``forward(x)`` with ``x`` of shape (B, T, F) and return a dict with at
    least ``"clip_probs"`` (B, K) in [0, 1].
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate ``x`` (B, T, F) and return it as (B, 1, T, F) for the 2-D convolutions.

        Raises:
            InputShapeError: ``x`` is not 3-D or its (T, F) differ from the spec's.
        """
        expected = (self.spec.time_steps, self.spec.mel_bins)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise InputShapeError(
                f"{self.spec.name} expects input of shape (batch, T={expected[0]}, "
                f"F={expected[1]}) (standardised log-mel), got {tuple(x.shape)}"
            )
        return x.unsqueeze(1)

    def start_at_prior(self, logit: torch.Tensor) -> None:
        """Set the last per-class layer from the class priors' logits (K,) (``train.init:
        prior``; see :mod:`paperlib.models.prior`, which calls it under ``torch.no_grad``)."""
        raise NotImplementedError(
            f"{self.spec.name} does not define start_at_prior; use train.init: paper"
        )

    def extra_repr(self) -> str:
        return f"spec={self.spec}"
