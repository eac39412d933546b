"""Figures of chapter 1 (data): one mixture's tracks and log-mel with the plan's event boxes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from paperlib.data.audio import SAMPLE_RATE
from paperlib.data.features import FMAX, FMIN, HOP, N_FFT

EVENT_COLOURS = ("tab:orange", "tab:green", "tab:purple")


def _spans(ax, events: pd.DataFrame, *, label: bool) -> None:
    for colour, row in zip(EVENT_COLOURS, events.itertuples(), strict=False):
        ax.axvspan(row.onset_s, row.offset_s, color=colour, alpha=0.15, lw=0)
        if label:
            ax.text(
                row.onset_s,
                0.97,
                row.label,
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=8,
                color=colour,
            )


def plot_mixture(
    events_track: np.ndarray,
    background_track: np.ndarray,
    features: np.ndarray,
    events: pd.DataFrame,
    *,
    title: str = "",
) -> Figure:
    """Event track, background track and log-mel of one mixture, with the plan's event spans.

    Args:
        events_track, background_track: (320000,) the two scaled 32 kHz tracks.
        features: (311, 64) log-mel of the mixture.
        events: the mixture's plan rows (``label``, ``onset_s``, ``offset_s``).
    """
    fig, axes = plt.subplots(
        3, 1, figsize=(10, 7), sharex=True, height_ratios=(1, 1, 1.6), constrained_layout=True
    )
    t = np.arange(events_track.size) / SAMPLE_RATE
    for ax, track, name in (
        (axes[0], events_track, "event track"),
        (axes[1], background_track, "background track"),
    ):
        ax.plot(t, track, lw=0.4, color="0.2")
        ax.set_ylabel(name)
        ax.set_ylim(-1.05, 1.05)
        _spans(ax, events, label=ax is axes[0])
    # frame t covers samples t*HOP .. t*HOP + N_FFT: draw it from its start to its end time
    n_frames = features.shape[0]
    extent = (0, ((n_frames - 1) * HOP + N_FFT) / SAMPLE_RATE, 0, features.shape[1])
    image = axes[2].imshow(features.T, origin="lower", aspect="auto", extent=extent, cmap="magma")
    for colour, row in zip(EVENT_COLOURS, events.itertuples(), strict=False):
        axes[2].add_patch(
            Rectangle(
                (row.onset_s, 0.3),
                row.offset_s - row.onset_s,
                features.shape[1] - 0.6,
                fill=False,
                lw=1.5,
                ec=colour,
            )
        )
        axes[2].text(row.onset_s + 0.03, features.shape[1] - 3, row.label, color=colour, fontsize=8)
    axes[2].set_ylabel(f"mel bin ({FMIN:g} Hz-{FMAX / 1000:g} kHz)")
    axes[2].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[2], label="log-mel", pad=0.01)
    if title:
        fig.suptitle(title)
    return fig


def plot_class_counts(counts: pd.DataFrame) -> Figure:
    """Stacked bars of events per class and fold (the table of :func:`paperlib.data.plan.class_counts`)."""
    folds = [c for c in counts.columns if c.startswith("fold")]
    fig, ax = plt.subplots(figsize=(11, 3.5), constrained_layout=True)
    bottom = np.zeros(len(counts))
    for fold in folds:
        ax.bar(counts.index, counts[fold], bottom=bottom, label=fold, width=0.8)
        bottom += counts[fold].to_numpy()
    ax.set_ylabel("events in the plan")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.legend(ncol=len(folds), fontsize=8)
    return fig
