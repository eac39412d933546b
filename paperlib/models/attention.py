"""Two-step attention pooling (paper Section III-C, Table II).

Step 1 pools each class map along the mel axis with two linear layers F -> F; step 2 pools
the result along time with two linear layers T -> T. Each step is an :class:`AttentionStep`
that returns its normalised attention weights and its output, so the book can draw both.

Two placements of the squashing functions exist, selected by ``variant``:

``"authors"`` (default; the authors' released code, and what the paper's text says: "by adding
σ in both step's intermediate classification output, it ensures the output is bounded")::

    a = softmax(W_a z + b_a)            # attention branch, normalised over the pooled axis
    c = sigmoid(W_c z + b_c)            # classification branch, in (0, 1)
    out = sum(a * c)                    # a convex combination of values in (0, 1)

``"paper"`` (the paper's equations 7-14 taken literally)::

    a = softmax(sigmoid(W_a z + b_a))   # eq. 7 and 9: sigmoid, then softmax
    c = W_c z + b_c                     # eq. 8: no squashing
    out = sum(a * c)                    # eq. 10: unbounded

The default follows the code the authors ran (it produced the paper's numbers) and keeps every
step's output in (0, 1). In the ``paper`` variant the softmax of a sigmoid can only spread the
weights within a ratio of e between the largest and smallest, and the outputs are unbounded;
the final clamp to [0, 1] (see :class:`TwoStepAttention`) is what keeps the loss defined.
"""

from __future__ import annotations

import torch
from torch import nn

from paperlib.models.precision import full_precision


class AttentionStep(nn.Module):
    """One attention step along the last axis of its input.

    Args:
        length: size L of the pooled axis (F for step 1, T for step 2); both linear layers
            map L -> L and are shared by every class (and every frame, in step 1).
            They keep PyTorch's default ``nn.Linear`` initialisation (uniform in
            ``±1/sqrt(L)``): the authors' code never passed them to its init.
        variant: ``authors`` or ``paper`` (see the module docstring).
        normalise: ``True`` (every model): the attention weights are a softmax over the pooled
            axis. ``False`` uses the attention branch as it is (unnormalised weights): an
            ablation for the classroom (chapter 7, exercise 5), no model of the paper.

    Forward: ``z`` (..., L) -> ``(weights, output)`` with ``weights`` (..., L) summing to 1
    over the last axis (when ``normalise``) and ``output`` (...).
    """

    def __init__(self, length: int, *, variant: str, normalise: bool = True) -> None:
        super().__init__()
        self.attention = nn.Linear(length, length)
        self.classification = nn.Linear(length, length)
        self.variant = variant
        self.normalise = normalise

    def branches(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights, classification)``, both (..., L): the normalised attention and the
        classification branch whose weighted sum over the last axis is the step's output
        (``weights * classification`` is each position's share of it, used to localise)."""
        att = self.attention(z)
        cla = self.classification(z)
        if self.variant == "authors":
            cla = torch.sigmoid(cla)
        else:  # "paper"
            att = torch.sigmoid(att)
        return (torch.softmax(att, dim=-1) if self.normalise else att), cla

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights, cla = self.branches(z)
        return weights, (weights * cla).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}" + ("" if self.normalise else ", normalise=False")


class TwoStepAttention(nn.Module):
    """Step 1 along mel bins, then step 2 along time (paper Table II).

    Forward: class maps (B, K, T, F) -> dict with
    ``step1_weights`` (B, K, T, F) summing to 1 over F, ``step1_output`` (B, K, T),
    ``step2_weights`` (B, K, T) summing to 1 over T, ``step2_output`` (B, K) unclamped, and
    ``clip_probs`` (B, K) = ``step2_output`` clamped to [0, 1]; all float32, whatever the
    autocast setting (the linear layers, softmax and sigmoid of a head stay in full precision).
    ``normalise=False`` drops the softmax of both steps (see :class:`AttentionStep`).
    """

    def __init__(
        self, *, time_steps: int, mel_bins: int, variant: str, normalise: bool = True
    ) -> None:
        super().__init__()
        self.step1 = AttentionStep(mel_bins, variant=variant, normalise=normalise)
        self.step2 = AttentionStep(time_steps, variant=variant, normalise=normalise)

    def forward(self, class_maps: torch.Tensor) -> dict[str, torch.Tensor]:
        with full_precision(class_maps):
            step1_weights, step1_output = self.step1(class_maps.float())  # (B,K,T,F), (B,K,T)
            step2_weights, step2_output = self.step2(step1_output)  # (B,K,T), (B,K)
        return {
            "step1_weights": step1_weights,
            "step1_output": step1_output,
            "step2_weights": step2_weights,
            "step2_output": step2_output,
            "clip_probs": step2_output.clamp(0.0, 1.0),
        }
