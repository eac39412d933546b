"""Interpretability of a trained 2APAE: the data behind the paper's Fig. 3 (chapter 06).

The paper's Fig. 3 has 8 panels for one clip: (1) the standardised log-mel input, (2) the
decoder's reconstruction, (3-5) the step-1 attention weights over mel bins for the three most
probable classes, (6) the step-1 output (classes x time), (7) the step-2 attention weights over
time (classes x time) and (8) the final clip probabilities. :func:`figure3_panels` runs the
model on chosen clips and gathers exactly those arrays; :func:`event_boxes` gives the true
events of a clip from the mixture plan; :func:`reconstruction_audio` turns a reconstruction
back into sound (un-standardise, then librosa's mel inversion with Griffin-Lim).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from paperlib.config import Profile
from paperlib.data.features import N_FRAMES, time_pool_for

TOP_K = 3
"""Classes whose step-1 attention Fig. 3 shows (the three most probable)."""


@dataclass(frozen=True)
class EventBox:
    """One true event of a clip, in seconds and in frames (from the mixture plan).

    Attributes:
        label: class name; ``class_index`` its index in ``CLASSES``.
        onset_s, offset_s: start and (exclusive) end in seconds.
        first_frame, last_frame: first and last frame whose centre lies in the event
            (the rule of the strong targets, :func:`paperlib.data.features.strong_targets`).
    """

    label: str
    class_index: int
    onset_s: float
    offset_s: float
    first_frame: int
    last_frame: int


@dataclass(frozen=True)
class Figure3Panels:
    """The arrays of the paper's Fig. 3 for one clip (K classes, T frames, F mel bins).

    Attributes:
        clip_name: mixture name.
        inputs: (T, F) standardised log-mel fed to the network (panel 1).
        reconstruction: (T, F) decoder output, same scale as ``inputs`` (panel 2).
        top_classes: (3,) class indices, most probable first.
        top_step1_weights: (3, T, F) step-1 attention over mel bins of those classes (3-5).
        step1_output: (K, T) step-1 output (panel 6).
        step2_weights: (K, T) step-2 attention over time (panel 7).
        clip_probs: (K,) final probabilities (panel 8).
        weak_target: (K,) the clip's true labels (0/1).
        events: the true events (from the plan).
    """

    clip_name: str
    inputs: np.ndarray
    reconstruction: np.ndarray
    top_classes: np.ndarray
    top_step1_weights: np.ndarray
    step1_output: np.ndarray
    step2_weights: np.ndarray
    clip_probs: np.ndarray
    weak_target: np.ndarray
    events: tuple[EventBox, ...]


def figure3_cell(profile: Profile, *, snr_db: int | str | None = None) -> tuple[int, int]:
    """(SNR, held-out fold) of the 2APAE that chapter 06 shows: the profile's first grid cell.

    Args:
        snr_db: an SNR of ``profile.data.snrs``; ``None`` or ``"grid"`` take the first SNR of
            ``profile.grid.snrs`` (the cell chapter 03 trains).

    Raises:
        ValueError: ``snr_db`` is not one of the profile's ``data.snrs``.
    """
    snr = profile.grid.snrs[0] if snr_db in (None, "grid") else int(snr_db)
    if snr not in profile.data.snrs:
        valid = ", ".join(str(s) for s in profile.data.snrs)
        raise ValueError(f"snr_db={snr} has no data in profile {profile.name!r}; valid: {valid}")
    return snr, profile.grid.folds[0]


def trained_2apae(
    profile: Profile, workspace: Path, *, snr_db: int | str | None = None, progress: bool = False
):
    """Prepare the data and train (or fetch from the cache) the 2APAE of :func:`figure3_cell`.

    Uses the library's caches: a second call with the same profile returns at once, and the
    run is the one chapter 03 trains for the same cell.

    Returns:
        ``(run, model)``: the :class:`paperlib.run.RunResult` and the best-epoch
        model in eval mode on the CPU.
    """
    from paperlib.data.pipeline import prepare_data
    from paperlib.models import load_model
    from paperlib.run import train_run

    snr, fold = figure3_cell(profile, snr_db=snr_db)
    prepare_data(profile, workspace, progress=progress)
    run = train_run(profile, workspace, model="2APAE", snr_db=snr, fold=fold, progress=progress)
    return run, load_model(run.checkpoint).eval()


def event_boxes(plan: pd.DataFrame, clip_name: str, *, time_pool: int = 1) -> tuple[EventBox, ...]:
    """True events of ``clip_name`` from the plan (columns ``mixture, label, onset_s, offset_s``).

    Frames are the model's: with ``time_pool`` > 1 (``model.time_pool``) they are pooled
    frames, located by :func:`paperlib.data.features.frame_centres_s`.

    Raises:
        KeyError: the clip is not in the plan.
    """
    from paperlib.data.classes import CLASS_INDEX
    from paperlib.data.features import frame_centres_s

    rows = plan[plan["mixture"] == clip_name]
    if rows.empty:
        raise KeyError(f"clip {clip_name!r} is not in the plan")
    centres = frame_centres_s(time_pool=time_pool)
    boxes = []
    for row in rows.sort_values("onset_s").itertuples():
        inside = np.flatnonzero((centres >= row.onset_s) & (centres < row.offset_s))
        first, last = (int(inside[0]), int(inside[-1])) if inside.size else (-1, -1)
        boxes.append(
            EventBox(
                row.label,
                CLASS_INDEX[row.label],
                float(row.onset_s),
                float(row.offset_s),
                first,
                last,
            )
        )
    return tuple(boxes)


def top_classes(clip_probs: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Indices of the ``k`` largest probabilities, largest first (ties: lower index first)."""
    order = np.argsort(-np.asarray(clip_probs), kind="stable")
    return order[:k]


@torch.no_grad()
def figure3_panels(
    model: torch.nn.Module,
    inputs: np.ndarray,
    clip_names: Sequence[str],
    *,
    weak_targets: np.ndarray,
    plan: pd.DataFrame,
    k: int = TOP_K,
) -> list[Figure3Panels]:
    """Run a 2APAE on standardised clips and gather the 8 panels of Fig. 3 for each.

    Args:
        model: a 2APAE (its forward returns ``reconstruction``, ``step1_weights``,
            ``step1_output``, ``step2_weights`` and ``clip_probs``).
        inputs: (N, T, F) standardised log-mel.
        clip_names: (N,) mixture names (to find the true events in ``plan``).
        weak_targets: (N, K) true clip labels.
        plan: the mixture plan (:func:`paperlib.data.plan.read_plan`).
        k: how many top classes get a step-1 panel.

    Raises:
        ValueError: the model does not return the 2APAE's intermediates.
    """
    model.eval()
    out = model(torch.as_tensor(np.asarray(inputs, dtype=np.float32)))
    needed = ("reconstruction", "step1_weights", "step1_output", "step2_weights", "clip_probs")
    missing = [name for name in needed if name not in out]
    if missing:
        raise ValueError(f"model outputs lack {', '.join(missing)}: expected a 2APAE")
    arrays = {name: out[name].float().cpu().numpy() for name in needed}
    time_pool = time_pool_for(arrays["step2_weights"].shape[-1])
    panels = []
    for i, name in enumerate(clip_names):
        probs = arrays["clip_probs"][i]
        top = top_classes(probs, k)
        panels.append(
            Figure3Panels(
                clip_name=str(name),
                inputs=np.asarray(inputs[i]),
                reconstruction=arrays["reconstruction"][i],
                top_classes=top,
                top_step1_weights=arrays["step1_weights"][i][top],
                step1_output=arrays["step1_output"][i],
                step2_weights=arrays["step2_weights"][i],
                clip_probs=probs,
                weak_target=np.asarray(weak_targets[i]),
                events=event_boxes(plan, str(name), time_pool=time_pool),
            )
        )
    return panels


def unstandardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardised log-mel (T, F) back to raw log-mel: ``x * std + mean`` (std 0 counts as 1)."""
    safe = np.where(np.asarray(std) > 0, std, 1.0)
    return np.asarray(x) * safe + np.asarray(mean)


def reconstruction_audio(
    standardised: np.ndarray, mean: np.ndarray, std: np.ndarray, *, n_iter: int = 32
) -> np.ndarray:
    """Audio (n,) float32 at 32 kHz from a standardised log-mel (T, F), e.g. a reconstruction.

    A log-mel on a pooled grid (``model.time_pool``/``mel_pool`` > 1) is first spread back over
    the 311 x 64 grid (:func:`paperlib.run.features.unpool_input`).

    Un-standardises with the statistics the model was trained with, then inverts the log-mel
    (exp, mel inversion, Griffin-Lim) with :func:`paperlib.data.features.logmel_to_audio`.
    """
    from paperlib.data.features import logmel_to_audio
    from paperlib.run import unpool_input

    full = unpool_input(standardised, (N_FRAMES, len(mean)))  # a pooled model's grid -> 311 x 64
    return logmel_to_audio(unstandardise(full, mean, std).astype(np.float32), n_iter=n_iter)


def select_clips(names: np.ndarray, wanted: Sequence[str], count: int) -> np.ndarray:
    """Indices into ``names`` of the clips to show: ``wanted`` if given, else the first ``count``.

    Raises:
        KeyError: a wanted clip is not among ``names`` (a few valid names are listed).
    """
    names = np.asarray(names).astype(str)
    if not wanted:
        return np.arange(min(count, len(names)))
    index = {name: i for i, name in enumerate(names)}
    missing = [w for w in wanted if w not in index]
    if missing:
        raise KeyError(
            f"clip(s) {', '.join(missing)} not in the held-out fold; e.g. {', '.join(names[:5])}"
        )
    return np.array([index[w] for w in wanted])


def attention_in_events(panels: Sequence[Figure3Panels]) -> pd.DataFrame:
    """How much of each true class's step-2 attention falls inside its own event.

    One row per true event: ``clip``, ``label``, ``probability`` (of that class), ``rank`` (1 =
    most probable), ``attention_in_event`` (sum of the class's step-2 weights over the event's
    frames; the weights sum to 1 over time) and ``uniform_share`` (the same sum for uniform
    weights: event frames / T); ``ratio`` is their quotient, :func:`in_event_ratio`. A ratio
    above 1 means the model looks where the event is.
    """
    rows = []
    for p in panels:
        order = np.argsort(-p.clip_probs, kind="stable")
        n_frames = p.step2_weights.shape[1]
        for e in p.events:
            if e.first_frame < 0:
                continue
            frames = np.zeros(n_frames, dtype=bool)
            frames[e.first_frame : e.last_frame + 1] = True
            weights = p.step2_weights[e.class_index]
            inside = weights[frames].sum()
            share = frames.sum() / n_frames
            rows.append(
                {
                    "clip": p.clip_name,
                    "label": e.label,
                    "probability": float(p.clip_probs[e.class_index]),
                    "rank": int(np.flatnonzero(order == e.class_index)[0]) + 1,
                    "attention_in_event": float(inside),
                    "uniform_share": float(share),
                    "ratio": float(in_event_ratio(weights, frames)),
                }
            )
    return pd.DataFrame(rows)


def in_event_ratio(weights: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Mean attention weight inside the event frames over the uniform weight 1/T.

    Args:
        weights: (..., T) attention weights that sum to 1 over T (e.g. the step-2 weights).
        inside: (..., T) bool (or 0/1): the event's frames.

    Returns:
        (...) float64 ``mean(weights[inside]) * T`` (= share of the weight inside / share of
        the frames inside); NaN where ``inside`` holds no frame. 1 for uniform weights, above
        1 when the weight sits on the event.

    Raises:
        ValueError: mismatched shapes.
    """
    weights = np.asarray(weights, dtype=np.float64)
    inside = np.asarray(inside) > 0
    if weights.shape != inside.shape or weights.ndim < 1:
        raise ValueError(
            f"weights {weights.shape} and event frames {inside.shape}: expected the same "
            "(..., frames) shape"
        )
    count = inside.sum(axis=-1)
    total = np.where(inside, weights, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count * weights.shape[-1], np.nan)


def fold_in_event_ratios(
    weights: np.ndarray, labels: np.ndarray, clip_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`in_event_ratio` of every (clip, class) pair that has an event, over a whole fold.

    Args:
        weights: (N, K, T) step-2 weights (sum to 1 over T).
        labels: (N, K, T) 0/1 frame labels (all events of the class in the clip, e.g.
            :func:`paperlib.localisation.events.frame_labels`).
        clip_names: (N,) names for the ``clip`` column (default: the clip index).

    Returns:
        One row per pair with an active frame: ``clip``, ``class_index``, ``label``,
        ``event_frames``, ``attention_in_event`` (weight summed over the active frames),
        ``ratio``.

    Raises:
        ValueError: shapes that are not (N, K, T) alike, or ``clip_names`` of another length.
    """
    from paperlib.data.classes import CLASSES

    weights = np.asarray(weights, dtype=np.float64)
    labels = np.asarray(labels) > 0
    if weights.ndim != 3 or weights.shape != labels.shape:
        raise ValueError(
            f"weights {weights.shape} and labels {labels.shape}: expected the same "
            "(clips, classes, frames) shape"
        )
    names = np.arange(len(weights)) if clip_names is None else np.asarray(clip_names)
    if len(names) != len(weights):
        raise ValueError(f"{len(names)} clip name(s) for {len(weights)} clip(s)")
    ratio = in_event_ratio(weights, labels)
    clips, classes = np.nonzero(labels.any(axis=-1))
    return pd.DataFrame(
        {
            "clip": names[clips],
            "class_index": classes,
            "label": [CLASSES[k] if k < len(CLASSES) else str(k) for k in classes],
            "event_frames": labels[clips, classes].sum(axis=-1),
            "attention_in_event": np.where(labels, weights, 0.0)[clips, classes].sum(axis=-1),
            "ratio": ratio[clips, classes],
        }
    )


def mel_profile(step1_weights: np.ndarray, event: EventBox) -> np.ndarray:
    """Mean step-1 attention over the frames of ``event``: (T, F) weights of one class -> (F,)."""
    if event.first_frame < 0:
        raise ValueError(f"event {event.label!r} covers no frame centre")
    return np.asarray(step1_weights)[event.first_frame : event.last_frame + 1].mean(axis=0)
