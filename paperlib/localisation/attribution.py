"""Sign-aware frame scores of a 2APAE: how much each step-1 frame adds to a clip probability.

Step 1 of the two-step attention acts on each frame alone, so the time axis of its output
``s`` (B, K, T) is real; step 2 (``Linear(T, T)`` layers) then mixes the frames into the clip
probability ``p_k = g(s_k)``. The raw ``s`` can *dip* during events (its sign and scale are
whatever step 2 reads best), so instead of ``s`` itself these scorers ask how much each frame
of ``s_k`` moves ``p_k``:

- :func:`integrated_gradients`: ``(s - s0) * mean over α of dp_k/ds(s0 + α (s - s0))``, the
  mean taken with the trapezoid rule on ``steps + 1`` equally spaced α in [0, 1]. Its sum over
  the frames approaches ``p_k(s) - p_k(s0)`` as ``steps`` grows (completeness).
- :func:`occlusion`: ``p_k(s) - p_k(s with frame t of class k set to s0_t)``, the drop of the
  probability when one frame is replaced by the baseline.

The baseline ``s0`` (:func:`median_baseline`) is each clip's per-class median of ``s`` over
time: a clip-specific "nothing happening" level, so a frame scores by how far it departs from
its clip's typical frame.

``pool`` is any function (B, K, T) -> (B, K) in which ``p_k`` depends only on ``s_k`` (class
``k``'s row), as the 2APAE's step 2 (one pair of layers applied to each class row): then one
backward pass of ``sum_k p_k`` gives every class's gradient, and one occluded frame can be
replaced in every class at once. :meth:`paperlib.models.twostep.TwoStepAPAE.pool_from_step1`
is that function for a trained model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from paperlib.localisation.errors import LocalisationError

__all__ = [
    "ATTRIBUTION_STEPS",
    "OCCLUSION_ELEMENTS",
    "integrated_gradients",
    "median_baseline",
    "occlusion",
]

ATTRIBUTION_STEPS = 32
"""Riemann (trapezoid) intervals of the integrated gradients: 33 evaluations of step 2."""
OCCLUSION_ELEMENTS = 1 << 22
"""Upper bound on the elements of one batch of occluded step-1 outputs (memory, not results)."""

Pool = Callable[[torch.Tensor], torch.Tensor]
"""Step 2 as a function: step-1 output (B, K, T) -> clip probabilities (B, K)."""


def _check(inputs: torch.Tensor, baseline: torch.Tensor | None) -> torch.Tensor:
    if inputs.ndim != 3 or inputs.shape[-1] < 1 or not inputs.is_floating_point():
        raise LocalisationError(
            f"step-1 output of shape {tuple(inputs.shape)} and dtype {inputs.dtype}: expected "
            "floating-point (clips, classes, frames)"
        )
    if baseline is None:
        return median_baseline(inputs)
    if baseline.shape != inputs.shape:
        raise LocalisationError(
            f"baseline of shape {tuple(baseline.shape)}: expected the step-1 output's "
            f"{tuple(inputs.shape)}"
        )
    return baseline.to(inputs.dtype)


def median_baseline(step1_output: torch.Tensor) -> torch.Tensor:
    """Each clip's per-class median over time, broadcast back: (B, K, T) -> (B, K, T).

    The median of an even number of frames is the mean of the two middle values
    (``torch.quantile`` at 0.5, linear interpolation).
    """
    if step1_output.ndim != 3:
        raise LocalisationError(
            f"step-1 output of shape {tuple(step1_output.shape)}: expected (clips, classes, frames)"
        )
    median = torch.quantile(step1_output.detach(), 0.5, dim=-1, keepdim=True)
    return median.expand_as(step1_output).contiguous()


def integrated_gradients(
    pool: Pool,
    inputs: torch.Tensor,
    baseline: torch.Tensor | None = None,
    *,
    steps: int = ATTRIBUTION_STEPS,
) -> torch.Tensor:
    """Integrated gradients of ``p_k`` with respect to ``s_k``, for every class: (B, K, T).

    Args:
        pool: step 2, (B, K, T) -> (B, K), with ``p_k`` a function of ``s_k`` only (see the
            module docstring); evaluated once on a batch of ``(steps + 1) * B`` clips.
        inputs: step-1 output ``s`` (B, K, T).
        baseline: ``s0`` (B, K, T); default :func:`median_baseline` of ``inputs``.
        steps: trapezoid intervals along the straight path from ``s0`` to ``s``.

    Returns:
        Attributions in ``inputs``' dtype; ``attributions.sum(-1)`` approximates
        ``pool(inputs) - pool(baseline)`` (exact for a pool linear in ``s``). Works under
        ``torch.no_grad`` (gradients are switched on inside).

    Raises:
        LocalisationError: shapes that are not (B, K, T), or ``steps`` < 1.
    """
    if steps < 1:
        raise LocalisationError(f"steps={steps}: expected at least 1 interval")
    inputs = inputs.detach()
    baseline = _check(inputs, baseline).detach()
    b, k, t = inputs.shape
    alphas = torch.linspace(0.0, 1.0, steps + 1, dtype=inputs.dtype, device=inputs.device)
    delta = inputs - baseline
    path = baseline[None] + alphas[:, None, None, None] * delta[None]  # (S+1, B, K, T)
    with torch.enable_grad():
        path = path.reshape(-1, k, t).requires_grad_(True)
        probs = pool(path)
        if probs.shape != (path.shape[0], k):
            raise LocalisationError(
                f"pool returned shape {tuple(probs.shape)}: expected (clips, classes) = "
                f"{(path.shape[0], k)}"
            )
        (grads,) = torch.autograd.grad(probs.sum(), path)
    weights = torch.ones(steps + 1, dtype=inputs.dtype, device=inputs.device)
    weights[0] = weights[-1] = 0.5
    mean_grad = torch.einsum("s,sbkt->bkt", weights / steps, grads.reshape(steps + 1, b, k, t))
    return delta * mean_grad


@torch.no_grad()
def occlusion(
    pool: Pool,
    inputs: torch.Tensor,
    baseline: torch.Tensor | None = None,
    *,
    max_elements: int = OCCLUSION_ELEMENTS,
) -> torch.Tensor:
    """Drop of ``p_k`` when frame ``t`` of ``s_k`` is replaced by the baseline: (B, K, T).

    Args:
        pool: step 2 (see :func:`integrated_gradients`); evaluated on the clips with one frame
            replaced (all classes at once), batched over frames so that one batch holds at
            most ``max_elements`` values.
        inputs: step-1 output ``s`` (B, K, T).
        baseline: ``s0`` (B, K, T); default :func:`median_baseline` of ``inputs``.

    Returns:
        ``pool(s)[b, k] - pool(s with s[b, :, t] = s0[b, :, t])[b, k]`` at ``[b, k, t]``.

    Raises:
        LocalisationError: shapes that are not (B, K, T).
    """
    inputs = inputs.detach()
    baseline = _check(inputs, baseline)
    b, k, t = inputs.shape
    full = pool(inputs)  # (B, K)
    chunk = max(1, max_elements // max(1, inputs.numel()))
    drops = torch.empty_like(inputs)
    for start in range(0, t, chunk):
        frames = torch.arange(start, min(t, start + chunk), device=inputs.device)
        hidden = frames[:, None] == torch.arange(t, device=inputs.device)[None]  # (C, T)
        occluded = torch.where(hidden[:, None, None, :], baseline[None], inputs[None])
        probs = pool(occluded.reshape(-1, k, t)).reshape(len(frames), b, k)
        drops[:, :, frames] = (full[None] - probs).permute(1, 2, 0)
    return drops
