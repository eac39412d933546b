"""Figures of chapter 08 (localisation): frame scores against the true events, T-F maps
against Kong's ideal masks.

Both take :class:`paperlib.localisation.run.ClipExample` objects of one clip, one per model
(from :func:`paperlib.localisation.run.clip_examples`).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from paperlib.data.classes import CLASS_INDEX, CLASSES
from paperlib.data.features import time_pool_for
from paperlib.localisation.events import Event, frame_boundaries_s
from paperlib.localisation.run import ClipExample

CLASS_COLOURS: tuple[str, ...] = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")
"""Colours of a clip's true classes, by order of first onset."""
SLOT_COLOUR = "#e8e8e8"


def _same_clip(examples: Sequence[ClipExample]) -> ClipExample:
    if not examples:
        raise ValueError("expected at least one ClipExample")
    names = {e.clip_name for e in examples}
    if len(names) != 1:
        raise ValueError(f"examples of several clips {sorted(names)}: expected one clip")
    return examples[0]


def _true_classes(events: Sequence[Event]) -> list[int]:
    return list(dict.fromkeys(CLASS_INDEX[e.label] for e in events))


def _edges(n_frames: int) -> np.ndarray:
    return frame_boundaries_s(n_frames, time_pool_for(n_frames))


def _slot_bands(ax: Axes, example: ClipExample) -> None:
    edges = _edges(len(example.time_s))
    inside = np.r_[False, example.slots, False].astype(int)
    starts = np.flatnonzero(np.diff(inside) == 1)
    stops = np.flatnonzero(np.diff(inside) == -1)
    for a, b in zip(starts, stops, strict=True):
        ax.axvspan(edges[a], edges[b], color=SLOT_COLOUR, zorder=0)


LINE_STYLES: tuple[tuple[str, str], ...] = (
    ("-", "solid"),
    ("--", "dashed"),
    (":", "dotted"),
    ("-.", "dash-dot"),
)
"""Line style of a model's j-th frame scorer (the primary one solid), cycled."""


def plot_frame_scores(
    examples: Sequence[ClipExample], *, title: str = "", scorers: Sequence[str] | None = None
) -> Figure:
    """Frame scores of each model (one row each) for the clip's true classes, over its events.

    Each scorer's curves are divided by their largest absolute value in the clip (scales
    differ between models: attention weights sum to 1 over time; attributions can be
    negative); the line style tells a model's scorers apart (:data:`LINE_STYLES`, the primary
    one solid). Shaded spans: the true events (class colours); grey bands: the position
    prior's slots. ``scorers`` keeps only the named scorers of each model (default: all).
    """
    first = _same_clip(examples)
    classes = _true_classes(first.events)
    colour = {k: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, k in enumerate(classes)}
    fig, axes = plt.subplots(
        len(examples), 1, figsize=(9, 1.6 * len(examples) + 0.8), sharex=True, squeeze=False
    )
    for ax, example in zip(axes[:, 0], examples, strict=True):
        _slot_bands(ax, example)
        for event in example.events:
            k = CLASS_INDEX[event.label]
            ax.axvspan(event.onset_s, event.offset_s, color=colour[k], alpha=0.18, zorder=1)
        drawn = [
            (j, name, scores)
            for j, (name, scores) in enumerate(example.frame_scores.items())
            if scorers is None or name in scorers
        ]
        bottom = -0.05
        for j, _, scores in drawn:
            shown = scores[classes]
            top = float(np.max(np.abs(shown))) if shown.size else 0.0
            scaled = shown / top if top > 0 else shown
            bottom = min(bottom, float(np.min(scaled, initial=0.0)) - 0.05)
            for k, row in zip(classes, scaled, strict=True):
                ax.plot(
                    example.time_s,
                    row,
                    color=colour[k],
                    ls=LINE_STYLES[j % len(LINE_STYLES)][0],
                    lw=1.2,
                    zorder=2,
                )
        names = ", ".join(
            f"{name} ({LINE_STYLES[j % len(LINE_STYLES)][1]})" for j, name, _ in drawn
        )
        ax.set_ylabel(example.model, fontsize=9)
        ax.set_ylim(bottom, 1.1)
        ax.set_title(names, fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    handles = [Line2D([], [], color=colour[k], label=CLASSES[k]) for k in classes]
    handles.append(Patch(color=SLOT_COLOUR, label="prior slots"))
    fig.legend(handles=handles, loc="lower center", fontsize=8, ncol=len(handles), frameon=False)
    fig.suptitle(
        title or f"Frame scores (scaled to their maximum) vs true events: {first.clip_name}",
        fontsize=10,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig


def _image(ax: Axes, values: np.ndarray, title: str, *, cmap: str) -> None:
    """Draw (T, F) values, time across, on a colour scale clipped to the 1st-99th percentile."""
    edges = _edges(values.shape[0])
    low, high = np.percentile(values, [1, 99]) if values.size else (0.0, 1.0)
    ax.imshow(
        values.T,
        origin="lower",
        aspect="auto",
        cmap=cmap,
        interpolation="nearest",
        vmin=low,
        vmax=high if high > low else None,
        extent=(edges[0], edges[-1], -0.5, values.shape[1] - 0.5),
    )
    ax.set_title(title, fontsize=8)


def plot_tf_maps(examples: Sequence[ClipExample], class_index: int, *, ncols: int = 4) -> Figure:
    """One class of one clip: the input log-mel, Kong's ideal mask, and each model's T-F map.

    Dashed lines mark the class's true events. Each panel has its own colour scale, clipped to
    its 1st-99th percentile (a few extreme bins would otherwise hide the rest).

    Raises:
        ValueError: examples of several clips, or a class that is not among the clip's true
            classes.
    """
    first = _same_clip(examples)
    if class_index not in first.masks:
        valid = ", ".join(CLASSES[k] for k in first.masks)
        raise ValueError(
            f"class {CLASSES[class_index]!r} is not a true class of {first.clip_name}; "
            f"valid: {valid}"
        )
    panels: list[tuple[str, np.ndarray, str]] = [
        ("input log-mel (standardised)", first.inputs, "magma"),
        (f"ideal mask, {CLASSES[class_index]}", first.masks[class_index].astype(float), "gray_r"),
    ]
    panels += [(f"{e.model}: T-F map", e.tf_maps[class_index], "magma") for e in examples]
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
    events = [e for e in first.events if CLASS_INDEX[e.label] == class_index]
    for ax, (title, values, cmap) in zip(axes.flat, panels, strict=False):
        _image(ax, values, title, cmap=cmap)
        for event in events:
            for edge in (event.onset_s, event.offset_s):
                ax.axvline(edge, color="#4fd2ff", ls="--", lw=1.0)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("mel bin", fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{first.clip_name}: where each model puts {CLASSES[class_index]!r}",
        fontsize=10,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
