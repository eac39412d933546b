"""Frame-level scores and class T-F maps from every model family, in one pass over a fold.

One function per family (:data:`FAMILY_MAPS`, keyed like ``paperlib.models.MODEL_TABLE``) turns
a model's forward outputs into :class:`ModelMaps`: frame scores (B, K, T) and class T-F maps
(B, K, T, F).

- ``pooled_cnn`` (GMP, GAP, GWRP): frame scores ``class maps``, the model's own global pooling
  (max, mean or weighted rank) applied along the mel bins of each frame; T-F map: the sigmoid
  class maps.
- ``atrous`` (AtrousAP): frame scores ``attention x class maps``, the attention-weighted class
  maps summed over mel bins; T-F map: the attention (normalised over T x F) times the class
  maps (softmax over classes).
- ``twostep`` (2APAE): frame scores ``integrated gradients`` (primary) and ``occlusion``, two
  sign-aware attributions of the clip probability to the step-1 output (:mod:`.attribution`),
  beside the raw ``step-1 output`` (before the time attention; it dips during events in the
  trained pocket runs) and the ``step-2 attention``; T-F map: the step-1 attention times the step-1 classification branch,
  which sums over mel bins to the step-1 output.

The first frame scorer of each family is its *primary* one (the one tables compare with the
position prior). :func:`run_model` runs a model over a fold in batches and keeps the T-F maps
only of the (clip, class) pairs asked for, so memory stays at N x K x T plus those maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from paperlib.localisation.attribution import integrated_gradients, occlusion
from paperlib.localisation.errors import LocalisationError
from paperlib.models import MODEL_TABLE

__all__ = [
    "FAMILY_MAPS",
    "SCORERS",
    "FoldOutputs",
    "ModelMaps",
    "atrous_maps",
    "model_maps",
    "pooled_cnn_maps",
    "primary_scorer",
    "run_model",
    "twostep_maps",
]

SCORERS: dict[str, tuple[str, ...]] = {
    "pooled_cnn": ("class maps",),
    "atrous": ("attention x class maps",),
    # primary: the sign-aware attribution (the raw step-1 output dips during events)
    "twostep": ("integrated gradients", "step-1 output", "step-2 attention", "occlusion"),
}
"""Frame scorers of each family, primary first."""


@dataclass(frozen=True)
class ModelMaps:
    """What localisation reads from one forward pass of a batch of B clips.

    Attributes:
        clip_probs: (B, K) clip probabilities.
        frame_scores: scorer name -> (B, K, T) frame-level scores (primary scorer first).
        tf_maps: (B, K, T, F) class T-F maps.
    """

    clip_probs: torch.Tensor
    frame_scores: dict[str, torch.Tensor]
    tf_maps: torch.Tensor


def pooled_cnn_maps(model: nn.Module, out: dict[str, torch.Tensor]) -> ModelMaps:
    """GMP / GAP / GWRP: the class maps, and the model's global pooling applied per frame.

    The model pools each (T, F) class map to a clip probability; applying the same pooling to
    each frame's F values alone gives the frame score (max over mel bins for GMP, mean for GAP,
    weighted rank for GWRP).
    """
    maps = out["class_maps"]  # (B, K, T, F)
    b, k, t, f = maps.shape
    frames = model.pool(maps.reshape(b, k * t, f, 1)).reshape(b, k, t)
    return ModelMaps(out["clip_probs"], {SCORERS["pooled_cnn"][0]: frames}, maps)


def atrous_maps(model: nn.Module, out: dict[str, torch.Tensor]) -> ModelMaps:
    """Atrous AP: attention (sums to 1 over T x F) times class maps, and its sum over mel bins."""
    weighted = out["attention_maps"] * out["class_maps"]  # (B, K, T, F)
    return ModelMaps(out["clip_probs"], {SCORERS["atrous"][0]: weighted.sum(dim=-1)}, weighted)


def twostep_maps(model: nn.Module, out: dict[str, torch.Tensor]) -> ModelMaps:
    """2APAE: step-1 output, step-2 attention and two attributions per frame; step-1 weights x
    classification.

    The attributions (:mod:`.attribution`) are the integrated gradients and the occlusion drop
    of each class's clip probability with respect to its step-1 output (baseline: the clip's
    per-class median over time, :data:`~.attribution.ATTRIBUTION_STEPS` intervals), through
    :meth:`paperlib.models.twostep.TwoStepAPAE.pool_from_step1`. The step-1 branches are recomputed from the class maps with the model's own step-1 layers
    (:meth:`paperlib.models.attention.AttentionStep.branches`); their product summed over mel
    bins is the step-1 output.
    """
    weights, classification = model.attention.step1.branches(out["class_maps"].float())
    gradients, raw, attention, occluded = SCORERS["twostep"]
    step1 = out["step1_output"].float()
    frames = {
        gradients: integrated_gradients(model.pool_from_step1, step1),
        raw: out["step1_output"],
        attention: out["step2_weights"],
        occluded: occlusion(model.pool_from_step1, step1),
    }
    return ModelMaps(out["clip_probs"], frames, weights * classification)


FAMILY_MAPS: dict[str, Callable[[nn.Module, dict[str, torch.Tensor]], ModelMaps]] = {
    "pooled_cnn": pooled_cnn_maps,
    "atrous": atrous_maps,
    "twostep": twostep_maps,
}


def _family(model: nn.Module) -> str:
    spec = getattr(model, "spec", None)
    if spec is None or spec.name not in MODEL_TABLE:
        raise LocalisationError(
            f"{type(model).__name__} is not a paperlib model: expected one of "
            f"{', '.join(MODEL_TABLE)} (built by paperlib.models)"
        )
    return MODEL_TABLE[spec.name].family


def primary_scorer(model_name: str) -> str:
    """The primary frame scorer of a model name (e.g. ``step-1 output`` for 2APAE)."""
    return SCORERS[MODEL_TABLE[model_name].family][0]


@torch.no_grad()
def model_maps(model: nn.Module, x: torch.Tensor) -> ModelMaps:
    """Forward ``x`` (B, T, F) through ``model`` (eval mode is the caller's) -> :class:`ModelMaps`."""
    family = _family(model)
    return FAMILY_MAPS[family](model, model(x))


@dataclass(frozen=True)
class FoldOutputs:
    """A model's outputs on a fold of N clips.

    Attributes:
        clip_probs: (N, K) float32.
        frame_scores: scorer -> (N, K, T) float32 (primary first).
        tf_pairs: (P, 2) int64 (clip index, class index) of the kept T-F maps.
        tf_maps: (P, T, F) float32 class T-F maps of those pairs.
    """

    clip_probs: np.ndarray
    frame_scores: dict[str, np.ndarray]
    tf_pairs: np.ndarray
    tf_maps: np.ndarray


@torch.no_grad()
def run_model(
    model: nn.Module,
    x: np.ndarray,
    *,
    tf_select: np.ndarray | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> FoldOutputs:
    """Run ``model`` in eval mode over standardised clips and gather what localisation needs.

    Args:
        model: a paperlib model.
        x: (N, T, F) standardised (and pooled) log-mel, as the model was trained on.
        tf_select: (N, K) bool: the (clip, class) pairs whose T-F map to keep (e.g. the true
            classes); ``None`` keeps none.
        batch_size: clips per forward pass.
        device: where to run (the model is moved there).

    Returns:
        The :class:`FoldOutputs`.
    """
    if x.ndim != 3 or len(x) == 0:
        raise LocalisationError(f"expected clips (N, T, F) with N >= 1; got shape {x.shape}")
    if batch_size < 1:
        raise LocalisationError(f"batch_size={batch_size}: expected at least 1")
    if tf_select is not None and (np.ndim(tf_select) != 2 or len(tf_select) != len(x)):
        raise LocalisationError(
            f"tf_select has shape {np.shape(tf_select)}; expected (clips, classes) with "
            f"{len(x)} clips"
        )
    device = torch.device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    probs, pairs, tf = [], [], []
    scores: dict[str, list[np.ndarray]] = {}
    try:
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(np.asarray(x[start : start + batch_size], np.float32))
            maps = model_maps(model, batch.to(device))
            probs.append(maps.clip_probs.float().cpu().numpy())
            for name, values in maps.frame_scores.items():
                scores.setdefault(name, []).append(values.float().cpu().numpy())
            if tf_select is not None:
                chosen = np.argwhere(np.asarray(tf_select[start : start + batch_size], bool))
                if len(chosen):
                    index = torch.as_tensor(chosen, device=maps.tf_maps.device)
                    tf.append(maps.tf_maps[index[:, 0], index[:, 1]].float().cpu().numpy())
                    pairs.append(chosen + np.array([start, 0]))
    finally:
        model.train(was_training)
    clip_probs = np.concatenate(probs)
    if tf_select is not None and np.shape(tf_select) != clip_probs.shape:
        raise LocalisationError(
            f"tf_select has shape {np.shape(tf_select)}; expected (clips, classes) = "
            f"{clip_probs.shape}, the model's clip probabilities"
        )
    frames = {name: np.concatenate(parts) for name, parts in scores.items()}
    n_t = next(iter(frames.values())).shape[-1]
    n_f = x.shape[2] if not tf else tf[0].shape[-1]
    return FoldOutputs(
        clip_probs=clip_probs,
        frame_scores=frames,
        tf_pairs=np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 2), np.int64),
        tf_maps=np.concatenate(tf) if tf else np.zeros((0, n_t, n_f), np.float32),
    )
