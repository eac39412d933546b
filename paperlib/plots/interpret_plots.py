"""Figures of chapter 06 (interpretability): the paper's Fig. 3 with the true events overlaid."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from paperlib.interpret import EventBox, Figure3Panels

EVENT_COLOURS: tuple[str, ...] = ("#ff4f4f", "#4fd2ff", "#ffd24f")
"""Edge colours of the true-event boxes, by order of onset."""


def _time_extent(n_frames: int) -> tuple[float, float]:
    from paperlib.data.features import frame_centres_s, time_pool_for

    centres = frame_centres_s(n_frames, time_pool=time_pool_for(n_frames))
    half = (centres[1] - centres[0]) / 2
    return float(centres[0] - half), float(centres[-1] + half)


def _tf_image(ax: Axes, values: np.ndarray, title: str, *, cmap: str = "magma") -> None:
    """Draw a (T, F) array with time (s) across and mel bins up."""
    t0, t1 = _time_extent(values.shape[0])
    image = ax.imshow(
        values.T,
        origin="lower",
        aspect="auto",
        cmap=cmap,
        extent=(t0, t1, -0.5, values.shape[1] - 0.5),
    )
    ax.figure.colorbar(image, ax=ax, pad=0.01, fraction=0.04)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("mel bin")


def _event_spans(ax: Axes, events: Sequence[EventBox], *, label: bool) -> None:
    """Outline each true event over the whole height of a T-F panel."""
    bottom, top = ax.get_ylim()
    for i, event in enumerate(events):
        colour = EVENT_COLOURS[i % len(EVENT_COLOURS)]
        ax.add_patch(
            Rectangle(
                (event.onset_s, bottom),
                event.offset_s - event.onset_s,
                top - bottom,
                fill=False,
                ec=colour,
                lw=1.4,
                ls="--",
            )
        )
        if label:
            ax.text(event.onset_s, top, event.label, color=colour, fontsize=7, va="bottom")


def _class_time_image(
    ax: Axes, values: np.ndarray, title: str, events: Sequence[EventBox], class_names: Sequence[str]
) -> None:
    """Draw a (K, T) array with classes up and time (s) across; box each true event's row."""
    t0, t1 = _time_extent(values.shape[1])
    image = ax.imshow(
        values,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(t0, t1, -0.5, len(values) - 0.5),
    )
    ax.figure.colorbar(image, ax=ax, pad=0.01, fraction=0.04)
    for i, event in enumerate(events):
        ax.add_patch(
            Rectangle(
                (event.onset_s, event.class_index - 0.5),
                event.offset_s - event.onset_s,
                1.0,
                fill=False,
                ec=EVENT_COLOURS[i % len(EVENT_COLOURS)],
                lw=1.4,
            )
        )
    ticks = sorted({e.class_index for e in events})
    ax.set_yticks(ticks, [class_names[c] for c in ticks], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("sound event")


def plot_figure3(
    panels: Figure3Panels, *, class_names: Sequence[str] | None = None, snr_db: int | None = None
) -> Figure:
    """The paper's Fig. 3 for one clip: 8 panels, true events outlined (dashed in T-F panels).

    Panels: (1) input log-mel, (2) reconstruction, (3-5) step-1 attention over mel bins of the
    three most probable classes, (6) step-1 output, (7) step-2 attention over time, (8) final
    probabilities (true classes in orange, the top three labelled).
    """
    from paperlib.data.classes import CLASSES

    names = list(class_names or CLASSES)
    fig, axes = plt.subplots(4, 2, figsize=(14, 13), layout="constrained")
    ax = axes.ravel()
    events = panels.events
    snr = f" at {snr_db} dB" if snr_db is not None else ""
    fig.suptitle(f"Clip {panels.clip_name}{snr}: true events " + ", ".join(e.label for e in events))

    _tf_image(ax[0], panels.inputs, "1. input: standardised log-mel")
    _tf_image(ax[1], panels.reconstruction, "2. decoder reconstruction (same scale)")
    for j, cls in enumerate(panels.top_classes[:3]):
        p = panels.clip_probs[cls]
        title = f"{3 + j}. step-1 attention over mel bins: {names[cls]} (p = {p:.2f})"
        _tf_image(ax[2 + j], panels.top_step1_weights[j], title, cmap="inferno")
    for a in ax[:5]:
        _event_spans(a, events, label=a is ax[0])
    _class_time_image(
        ax[5], panels.step1_output, "6. step-1 output (classes x time)", events, names
    )
    _class_time_image(
        ax[6], panels.step2_weights, "7. step-2 attention over time (classes x time)", events, names
    )
    for a in ax[:7]:
        a.set_xlabel("time (s)")

    colours = np.where(panels.weak_target > 0, "#f28e2b", "#4e79a7")
    ax[7].bar(np.arange(len(panels.clip_probs)), panels.clip_probs, color=colours)
    for cls in panels.top_classes[:3]:
        ax[7].annotate(
            names[cls],
            (cls, panels.clip_probs[cls]),
            fontsize=7,
            ha="center",
            va="bottom",
            rotation=60,
        )
    ax[7].set_ylim(0, 1.15)
    ax[7].set_xlabel("sound event (class index; orange = present in the clip)")
    ax[7].set_ylabel("probability")
    ax[7].set_title("8. final clip probabilities (step-2 output)", fontsize=9)
    return fig


def plot_mel_profiles(
    profiles: np.ndarray, labels: Sequence[str], *, ax: Axes | None = None
) -> Figure:
    """Mean step-1 attention per mel bin, one line per class: ``profiles`` (C, F)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    for row, label in zip(profiles, labels, strict=True):
        ax.plot(np.arange(len(row)), row, label=label)
    ax.axhline(1 / profiles.shape[1], color="0.5", ls=":", label="uniform (1/F)")
    ax.set_xlabel("mel bin")
    ax.set_ylabel("mean step-1 weight")
    ax.legend(fontsize=8)
    return ax.figure
