"""Two-step attention pooling (paper Section III-C, Table II) and its shift-equivariant step 2.

Step 1 pools each class map along the mel axis with two linear layers F -> F; step 2 pools
the result along time with two linear layers T -> T. Each step is an :class:`AttentionStep`
that returns its normalised attention weights and its output, so the book can draw both.

The output index of a ``Linear(T, T)`` is a hidden unit, not a frame: step 2 of the paper can
learn absolute positions (the fixed event slots of Kong et al.'s recipe) and its weights carry
no time information. ``step2="local"`` (model ``2APAE-local``) replaces it by a
:class:`LocalAttentionStep`, the attention pooling of Kong et al. over the per-frame step-1
outputs: the attention and classification at frame t come from the K step-1 outputs of frames
t-1, t, t+1 through 1-D convolutions whose weights are shared by every frame, so shifting the
input in time shifts the step-2 weights and leaves the clip probabilities unchanged.

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
from paperlib.models.spec import ModelConfigError

STEP2_VARIANTS: tuple[str, ...] = ("dense", "local")
"""Step 2 of the two-step attention: ``dense`` (the paper's ``Linear(T, T)`` layers) or
``local`` (:class:`LocalAttentionStep`, shift-equivariant)."""

LOCAL_KERNEL_SIZE = 3
"""Frames seen by the local step 2 at each frame (t-1, t, t+1)."""


def squash(
    attention: torch.Tensor,
    classification: torch.Tensor,
    *,
    variant: str,
    normalise: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, classification)`` from the two raw branches (..., L) of a step: the attention
    softmax over the last axis (kept raw when ``normalise`` is false) and the classification
    squashed as ``variant`` says (see the module docstring). Shared by both kinds of step."""
    if variant == "authors":
        classification = torch.sigmoid(classification)
    else:  # "paper"
        attention = torch.sigmoid(attention)
    return (torch.softmax(attention, dim=-1) if normalise else attention), classification


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
        return squash(
            self.attention(z),
            self.classification(z),
            variant=self.variant,
            normalise=self.normalise,
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights, cla = self.branches(z)
        return weights, (weights * cla).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}" + ("" if self.normalise else ", normalise=False")


class LocalAttentionStep(nn.Module):
    """Step 2 computed frame by frame: attention pooling over time with shared weights.

    The K step-1 outputs of each frame are standardised per class (``BatchNorm1d``: the
    step-1 output is a convex combination of sigmoids, bunched around 0.5 at the start), then
    two 1-D convolutions over time, K -> K channels with ``kernel_size`` frames and circular
    padding, give the attention and classification logits of every class at every frame; they
    are squashed as in :class:`AttentionStep` (softmax over T for the attention). No weight is tied to an
    absolute frame: a circular shift of the input in time shifts both branches by the same
    amount and leaves the output unchanged. The convolutions keep PyTorch's default
    initialisation, as the dense step's linear layers do.

    Every class sees all K step-1 outputs: a per-class scalar affine map of its own step-1
    output stayed at chance on the pocket corpus. Measured on the pocket corpus (0 dB, fold 1,
    lr 1e-2, one seed), the standardisation raised the best validation micro-AP from 0.37
    (without it) to 0.46.

    Args:
        num_classes: K (every class's attention and classification see all K step-1 outputs).
        kernel_size: frames of context (odd; :data:`LOCAL_KERNEL_SIZE`).
        variant: ``authors`` or ``paper`` (see the module docstring).

    Forward: step-1 output ``z`` (B, K, T) -> ``(weights, output)`` with ``weights``
    (B, K, T) summing to 1 over T and ``output`` (B, K).
    """

    def __init__(
        self, num_classes: int, *, kernel_size: int = LOCAL_KERNEL_SIZE, variant: str
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ModelConfigError(
                f"kernel_size must be a positive odd integer, got {kernel_size!r}"
            )
        self.norm = nn.BatchNorm1d(num_classes)

        def conv() -> nn.Conv1d:
            return nn.Conv1d(
                num_classes,
                num_classes,
                kernel_size,
                padding=kernel_size // 2,
                padding_mode="circular",
            )

        self.attention = conv()
        self.classification = conv()
        self.variant = variant

    def branches(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights, classification)``, both (B, K, T): the attention (softmax over T) and
        the per-frame classification (for ``authors``, a class probability of each frame)."""
        h = self.norm(z)
        return squash(self.attention(h), self.classification(h), variant=self.variant)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights, cla = self.branches(z)
        return weights, (weights * cla).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}"


class TwoStepAttention(nn.Module):
    """Step 1 along mel bins, then step 2 along time (paper Table II).

    Args:
        time_steps, mel_bins: T and F of the class maps.
        variant: ``authors`` or ``paper`` squashing (see the module docstring).
        step2: ``dense`` (the paper's :class:`AttentionStep` of length T) or ``local``
            (:class:`LocalAttentionStep`, which needs ``num_classes``).
        num_classes: K, for the local step 2.

    Forward: class maps (B, K, T, F) -> dict with
    ``step1_weights`` (B, K, T, F) summing to 1 over F, ``step1_output`` (B, K, T),
    ``step2_weights`` (B, K, T) summing to 1 over T, ``step2_output`` (B, K) unclamped, and
    ``clip_probs`` (B, K) = ``step2_output`` clamped to [0, 1]; the local step 2 adds
    ``step2_classification`` (B, K, T), its per-frame classification branch (whose
    ``step2_weights``-weighted sum over T is ``step2_output``). All float32, whatever the
    autocast setting (the layers, softmax and sigmoid of a head stay in full precision).

    ``normalise=False`` drops the softmax of both steps (see :class:`AttentionStep`; dense
    step 2 only).

    Raises:
        ModelConfigError: an unknown ``step2``, or ``local`` without ``num_classes``.
    """

    def __init__(
        self,
        *,
        time_steps: int,
        mel_bins: int,
        variant: str,
        step2: str = "dense",
        num_classes: int | None = None,
        normalise: bool = True,
    ) -> None:
        super().__init__()
        if step2 not in STEP2_VARIANTS:
            raise ModelConfigError(
                f"unknown step2 {step2!r}; valid values: {', '.join(STEP2_VARIANTS)}"
            )
        self.step1 = AttentionStep(mel_bins, variant=variant, normalise=normalise)
        self.step2: AttentionStep | LocalAttentionStep
        if step2 == "dense":
            self.step2 = AttentionStep(time_steps, variant=variant, normalise=normalise)
        elif num_classes is None:
            raise ModelConfigError("the local step 2 needs num_classes (K)")
        else:
            self.step2 = LocalAttentionStep(num_classes, variant=variant)

    def forward(self, class_maps: torch.Tensor) -> dict[str, torch.Tensor]:
        with full_precision(class_maps):
            step1_weights, step1_output = self.step1(class_maps.float())  # (B,K,T,F), (B,K,T)
            if isinstance(self.step2, LocalAttentionStep):
                step2_weights, step2_cla = self.step2.branches(step1_output)  # (B,K,T) each
                step2_output = (step2_weights * step2_cla).sum(dim=-1)  # (B,K)
            else:  # called as a module: the forward hooks of chapter 2's Table II see it
                step2_weights, step2_output = self.step2(step1_output)  # (B,K,T), (B,K)
        outputs = {
            "step1_weights": step1_weights,
            "step1_output": step1_output,
            "step2_weights": step2_weights,
            "step2_output": step2_output,
            "clip_probs": step2_output.clamp(0.0, 1.0),
        }
        if isinstance(self.step2, LocalAttentionStep):
            outputs["step2_classification"] = step2_cla  # (B,K,T), a real time axis
        return outputs
