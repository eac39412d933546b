"""What a trained model's numbers depend on: time shifts, and the symmetries of 2-step attention.

- **Shift test** (:func:`shift_test`, :func:`shift_test_runs`): roll the held-out model inputs
  in time (:func:`shift_time`, circular, labels unchanged) and score the clip probabilities
  again. A model whose tagging does not depend on where the events sit (global pooling over
  time) keeps its micro-AP; one whose weights are tied to absolute frames does not.
- **Permutation symmetry** (:func:`permute_step1`, :func:`permute_step2`): the output index of
  a step's two ``Linear(L, L)`` layers is a hidden unit. Permuting the output rows of both
  layers (weights and biases, the same permutation) leaves every clip probability unchanged
  and permutes the step's attention weights, so a drawn step-2 map is a time axis only by
  convention.
- **Attention statistics** (:func:`step2_concentration`, :func:`attention_statistics`): how
  concentrated the step-2 weights are (one fixed row for every clip?) and how much of them
  falls inside the true events (:func:`paperlib.interpret.in_event_ratio`).

Runs are read the way localisation reads them
(:func:`paperlib.localisation.run.fold_data`): the best checkpoint on its held-out fold,
standardised and pooled as in training.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from paperlib.data.features import frame_centres_s
from paperlib.metrics import chance_levels, clip_metrics

__all__ = [
    "SHIFTS_S",
    "attention_statistics",
    "flattering_permutation",
    "frame_hop_s",
    "permute_step",
    "permute_step1",
    "permute_step2",
    "seconds_to_frames",
    "shift_test",
    "shift_test_runs",
    "shift_time",
    "step2_concentration",
]

SHIFTS_S: tuple[float, ...] = (0.0, 0.5, 1.0, 2.56)
"""Default shifts in seconds (issue 18's table)."""
STEP_LAYERS: tuple[str, ...] = ("attention", "classification")
"""The two ``Linear(L, L)`` layers of an attention step (:class:`~paperlib.models.attention.AttentionStep`)."""


def frame_hop_s(time_pool: int = 1) -> float:
    """Seconds between two model frames at ``time_pool`` (0.032 s per feature frame)."""
    centres = frame_centres_s(2, time_pool)
    return float(centres[1] - centres[0])


def seconds_to_frames(shift_s: float, hop_s: float) -> int:
    """The nearest whole number of frames to ``shift_s`` seconds (halves to even).

    Raises:
        ValueError: a hop that is not positive, or a non-finite shift.
    """
    if not np.isfinite(hop_s) or hop_s <= 0:
        raise ValueError(f"frame hop {hop_s!r} s: expected a positive number of seconds")
    if not np.isfinite(shift_s):
        raise ValueError(f"shift {shift_s!r} s: expected a finite number of seconds")
    return int(np.round(shift_s / hop_s))


def shift_time(x: np.ndarray | torch.Tensor, shift_frames: int) -> np.ndarray | torch.Tensor:
    """Circular shift of model inputs along time: (N, T, F) -> (N, T, F), same type.

    ``out[:, t] = x[:, (t - shift_frames) mod T]``: positive shifts move the content later and
    wrap the end of the clip round to its start.

    Raises:
        ValueError: ``x`` is not (N, T, F).
    """
    if x.ndim != 3:
        raise ValueError(f"inputs of shape {tuple(x.shape)}: expected (clips, frames, mel bins)")
    if isinstance(x, torch.Tensor):
        return torch.roll(x, shifts=int(shift_frames), dims=1)
    return np.roll(np.asarray(x), int(shift_frames), axis=1)


def shift_test(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    shifts_s: Sequence[float] = SHIFTS_S,
    frame_hop_s: float | None = None,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """Clip-level scores of ``model`` on time-shifted inputs.

    Args:
        model: a paperlib model (run in eval mode).
        x: (N, T, F) standardised model inputs, at the model's own resolution (after its
            ``time_pool``).
        y: (N, K) weak labels (unchanged by the shift).
        shifts_s: shifts in seconds; each becomes :func:`seconds_to_frames` frames.
        frame_hop_s: seconds per model frame (default :func:`frame_hop_s` of the pooling that
            gives ``x``'s T frames).
        batch_size, device: as :func:`paperlib.run.predict`.

    Returns:
        One row per shift: ``shift_s``, ``shift_frames``, ``micro_ap``, ``macro_ap``
        (:func:`paperlib.metrics.clip_metrics`).

    Raises:
        ValueError: ``x`` not (N, T, F), labels of another number of clips, or a bad hop.
    """
    from paperlib.run import predict

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or np.shape(y)[:1] != x.shape[:1]:
        raise ValueError(
            f"inputs {x.shape} and labels {np.shape(y)}: expected (N, T, F) and (N, K)"
        )
    hop = frame_hop_s_for(x.shape[1]) if frame_hop_s is None else float(frame_hop_s)
    rows = []
    for shift_s in shifts_s:
        frames = seconds_to_frames(float(shift_s), hop)
        probs = predict(model, shift_time(x, frames), batch_size=batch_size, device=device)
        scored = clip_metrics(y, probs)
        rows.append(
            {
                "shift_s": float(shift_s),
                "shift_frames": frames,
                "micro_ap": scored.micro_ap,
                "macro_ap": scored.macro_ap,
            }
        )
    return pd.DataFrame(rows)


def frame_hop_s_for(n_frames: int) -> float:
    """:func:`frame_hop_s` of the pooling whose 10-s clip has ``n_frames`` frames."""
    from paperlib.data.features import time_pool_for

    return frame_hop_s(time_pool_for(n_frames))


def _identity(run) -> dict:
    key = run.key
    return {
        "run_id": run.run_id,
        "model": key.model,
        "snr_db": key.snr_db,
        "fold": key.fold,
        "seed": (key.train or {}).get("seed"),
        "alpha": key.alpha,
        "onsets": getattr(key, "onsets", "fixed"),
    }


def _runs(runs: Iterable) -> list:
    from paperlib.run import RunResult, load_run

    return [r if isinstance(r, RunResult) else load_run(Path(r)) for r in runs]


def shift_test_runs(
    runs: Iterable,
    workspace: Path,
    shifts_s: Sequence[float] = SHIFTS_S,
    *,
    batch_size: int = 64,
    device: str = "auto",
) -> pd.DataFrame:
    """:func:`shift_test` of finished runs on their held-out folds, as one tidy table.

    Args:
        runs: :class:`~paperlib.run.RunResult` objects or run directories.
        workspace: the workspace holding the runs' data (checked against each run's features).
        shifts_s: shifts in seconds (frames at each run's own ``time_pool``).
        batch_size: clips per forward pass.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.

    Returns:
        Columns ``run_id, model, snr_db, fold, seed, alpha, onsets, shift_s, shift_frames,
        micro_ap, macro_ap, chance`` (``chance``: the fold's audio-blind micro-AP,
        :func:`paperlib.metrics.chance_levels`), one row per run × shift.

    Raises:
        FileNotFoundError, LocalisationError: as :func:`paperlib.localisation.run.fold_data`.
    """
    from paperlib.localisation.run import fold_data
    from paperlib.models import load_model
    from paperlib.run import resolve_device

    frames = []
    for run in _runs(runs):
        data = fold_data(run, workspace)
        split = data.split
        table = shift_test(
            load_model(run.checkpoint),
            split.x_val,
            split.y_val,
            shifts_s,
            frame_hop_s(data.time_pool),
            batch_size=batch_size,
            device=resolve_device(device),
        )
        ident = _identity(run)
        for name, value in reversed(ident.items()):
            table.insert(0, name, value)
        table["chance"] = chance_levels(split.y_train, split.y_val).micro_ap
        frames.append(table)
    columns = [*_IDENTITY, "shift_s", "shift_frames", "micro_ap", "macro_ap", "chance"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


_IDENTITY = ("run_id", "model", "snr_db", "fold", "seed", "alpha", "onsets")


def _step(model: nn.Module, step: str) -> nn.Module:
    attention = getattr(model, "attention", None)
    module = getattr(attention, step, None) if attention is not None else None
    layers = [getattr(module, name, None) for name in STEP_LAYERS] if module is not None else []
    if not layers or not all(
        isinstance(layer, nn.Linear) and layer.in_features == layer.out_features for layer in layers
    ):
        raise ValueError(
            f"{type(model).__name__} has no attention.{step} with two Linear(L, L) layers "
            f"({', '.join(STEP_LAYERS)}): expected a 2APAE"
        )
    return module


def permute_step(
    model: nn.Module, step: str, perm: Sequence[int], *, layers: Sequence[str] = STEP_LAYERS
) -> nn.Module:
    """A copy of ``model`` with the output rows of ``attention.<step>``'s layers permuted.

    Row ``i`` of each named layer's weight and bias becomes the old row ``perm[i]``, so the
    step's attention weights of the copy are ``old[..., perm]``. With both layers (the default)
    the step's output, and every clip probability, is unchanged; with one layer only (a
    control) the attention and classification branches no longer pair up.

    Args:
        model: a 2APAE (left unchanged).
        step: ``step1`` (over mel bins) or ``step2`` (over time).
        perm: a permutation of ``range(L)``.
        layers: which of ``attention`` and ``classification`` to permute.

    Raises:
        ValueError: not a 2APAE, a ``perm`` that is not a permutation of the layer's L
            outputs, or an unknown layer name.
    """
    module = _step(model, step)
    size = module.attention.out_features
    order = np.asarray(perm)
    if order.shape != (size,) or not np.array_equal(np.sort(order), np.arange(size)):
        raise ValueError(
            f"perm of shape {order.shape}: expected a permutation of range({size}) for {step}"
        )
    unknown = sorted(set(layers) - set(STEP_LAYERS))
    if unknown or not layers:
        raise ValueError(f"layers={list(layers)}: expected some of {', '.join(STEP_LAYERS)}")
    copied = copy.deepcopy(model)
    index = torch.as_tensor(order, dtype=torch.long)
    target = _step(copied, step)
    with torch.no_grad():
        for name in layers:
            layer = getattr(target, name)
            layer.weight.copy_(layer.weight[index])
            if layer.bias is not None:
                layer.bias.copy_(layer.bias[index])
    return copied


def permute_step1(
    model: nn.Module, perm: Sequence[int], *, layers: Sequence[str] = STEP_LAYERS
) -> nn.Module:
    """:func:`permute_step` of step 1 (``Linear(F, F)``: ``perm`` over mel bins)."""
    return permute_step(model, "step1", perm, layers=layers)


def permute_step2(
    model: nn.Module, perm: Sequence[int], *, layers: Sequence[str] = STEP_LAYERS
) -> nn.Module:
    """:func:`permute_step` of step 2 (``Linear(T, T)``: ``perm`` over frames)."""
    return permute_step(model, "step2", perm, layers=layers)


def step2_concentration(weights: np.ndarray, select: np.ndarray | None = None) -> dict[str, float]:
    """How concentrated attention weights over T are, and on which row.

    Args:
        weights: (N, K, T) non-negative weights summing to 1 over T (the step-2 weights).
        select: (N, K) bool, the (clip, class) pairs to count (default: all), e.g. the true
            classes.

    Returns:
        ``n_pairs``; ``n_frames`` (T); ``modal_frame``: the row that is the argmax for the
        most pairs (ties: the lowest row); ``modal_share``: the share of pairs whose argmax
        is that row; ``effective_frames_entropy``: the mean over pairs of ``exp(H)``, H the
        entropy of the weights in nats (``0 log 0 = 0``); ``effective_frames_simpson``: the
        mean of ``1 / sum(w**2)``. Both effective numbers are T for uniform weights and 1 for
        a one-hot row.

    Raises:
        ValueError: a shape that is not (N, K, T), negative weights, rows that do not sum to
            1, or a selection of another shape or with no pair.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 3 or w.shape[-1] < 1:
        raise ValueError(f"weights of shape {w.shape}: expected (clips, classes, frames)")
    pick = np.ones(w.shape[:2], dtype=bool) if select is None else np.asarray(select, bool)
    if pick.shape != w.shape[:2]:
        raise ValueError(f"select of shape {pick.shape}: expected {w.shape[:2]}")
    rows = w[pick]
    if len(rows) == 0:
        raise ValueError("select holds no (clip, class) pair")
    if (rows < 0).any() or not np.allclose(rows.sum(axis=-1), 1.0, atol=1e-4):
        raise ValueError("weights must be non-negative and sum to 1 over the last axis")
    argmax = rows.argmax(axis=-1)
    counts = np.bincount(argmax, minlength=w.shape[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(rows > 0, rows * np.log(rows), 0.0)
    return {
        "n_pairs": len(rows),
        "n_frames": w.shape[-1],
        "modal_frame": int(np.argmax(counts)),
        "modal_share": float(counts.max() / len(rows)),
        "effective_frames_entropy": float(np.mean(np.exp(-plogp.sum(axis=-1)))),
        "effective_frames_simpson": float(np.mean(1.0 / (rows**2).sum(axis=-1))),
    }


@torch.no_grad()
def _step2_weights(model: nn.Module, x: np.ndarray, batch_size: int, device) -> np.ndarray:
    model.to(device)
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(np.asarray(x[start : start + batch_size], np.float32))
            out = model(batch.to(device))
            if "step2_weights" not in out:
                raise ValueError(
                    f"{type(model).__name__} returns no step2_weights: expected a 2APAE"
                )
            parts.append(out["step2_weights"].float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(parts)


def attention_statistics(
    runs: Iterable, workspace: Path, *, batch_size: int = 64, device: str = "auto"
) -> pd.DataFrame:
    """Step-2 attention of 2APAE runs over their whole held-out folds, one row per run.

    For the (clip, class) pairs of the true classes that have an event frame: the in-event
    ratio (:func:`paperlib.interpret.fold_in_event_ratios`, frame labels from the plan at the
    run's resolution) and :func:`step2_concentration`.

    Returns:
        Columns ``run_id, model, snr_db, fold, seed, alpha, onsets``, ``n_pairs``, ``mean_ratio``,
        ``median_ratio``, ``share_above_1`` (pairs with ratio > 1), ``n_frames``,
        ``modal_frame``, ``modal_share``, ``effective_frames_entropy``,
        ``effective_frames_simpson``.

    Raises:
        ValueError: a run whose model has no step-2 weights.
        FileNotFoundError, LocalisationError: as :func:`paperlib.localisation.run.fold_data`.
    """
    from paperlib.interpret import fold_in_event_ratios
    from paperlib.localisation.events import frame_labels
    from paperlib.localisation.run import fold_data
    from paperlib.models import load_model
    from paperlib.run import resolve_device

    rows = []
    for run in _runs(runs):
        data = fold_data(run, workspace)
        weights = _step2_weights(
            load_model(run.checkpoint), data.split.x_val, batch_size, resolve_device(device)
        )
        labels = frame_labels(data.events, weights.shape[-1], data.time_pool)
        ratios = fold_in_event_ratios(weights, labels)["ratio"].to_numpy()
        rows.append(
            {
                **_identity(run),
                "n_pairs": len(ratios),
                "mean_ratio": float(np.mean(ratios)) if len(ratios) else float("nan"),
                "median_ratio": float(np.median(ratios)) if len(ratios) else float("nan"),
                "share_above_1": float(np.mean(ratios > 1)) if len(ratios) else float("nan"),
                **{
                    k: v
                    for k, v in step2_concentration(weights, labels.any(axis=-1)).items()
                    if k != "n_pairs"
                },
            }
        )
    return pd.DataFrame(rows)


def flattering_permutation(weights: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """A permutation of T rows that moves one map's largest weights onto the given frames.

    Used with :func:`permute_step2` to draw the *same* model as a step-2 map that seems to
    sit on the true event: position ``i`` of the permuted map shows old row ``perm[i]``, and
    the frames where ``inside`` is true receive the rows with the largest weights (largest
    first, in frame order); the other frames keep the remaining rows in their old order.

    Args:
        weights: (T,) the step-2 weights of one clip and class.
        inside: (T,) bool, the frames to decorate (e.g. the true event's).

    Returns:
        (T,) int permutation of ``range(T)``.

    Raises:
        ValueError: shapes that differ or are not one-dimensional.
    """
    w = np.asarray(weights, dtype=np.float64)
    mask = np.asarray(inside, dtype=bool)
    if w.ndim != 1 or mask.shape != w.shape:
        raise ValueError(f"weights {w.shape} and inside {mask.shape}: expected two (T,) arrays")
    by_weight = np.argsort(-w, kind="stable")
    targets = np.flatnonzero(mask)
    chosen = by_weight[: len(targets)]
    perm = np.empty(len(w), dtype=np.int64)
    perm[targets] = chosen
    rest = np.setdiff1d(np.arange(len(w)), chosen)  # sorted: their old order
    perm[np.flatnonzero(~mask)] = rest
    return perm
