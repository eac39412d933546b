"""Figures of the robustness chapter: tagging against a time shift of the input, and the
study's micro-AP in the two recipes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_recipes", "plot_shift_test"]


def plot_shift_test(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Micro-AP against the time shift of the held-out inputs, one panel per SNR.

    Args:
        table: :func:`paperlib.robustness.shift_test_runs` rows (``model, snr_db, seed,
            shift_s, micro_ap, chance``); each run is one line, the repeats of a model dashed.
        title: figure title.
    """
    snrs = sorted(table["snr_db"].unique())
    fig, axes = plt.subplots(
        1,
        len(snrs),
        figsize=(4.2 * len(snrs), 3.4),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
    )
    models = list(dict.fromkeys(table["model"]))
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    for ax, snr in zip(axes[0], snrs, strict=True):
        rows = table[table["snr_db"] == snr]
        for (model, seed), run in rows.groupby(["model", "seed"], sort=False):
            first = seed == rows.loc[rows["model"] == model, "seed"].min()
            run = run.sort_values("shift_s")
            ax.plot(run["shift_s"], run["micro_ap"], "o-" if first else "o--",
                    color=colours[model], label=model if first else None)  # fmt: skip
        ax.axhline(float(rows["chance"].mean()), color="grey", lw=1, ls=":", label="chance")
        ax.set_title(f"{snr} dB")
        ax.set_xlabel("circular shift of the input (s)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation micro-AP")
    axes[0][-1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def plot_recipes(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Micro-AP of every study model with fixed slots and with moved events, per SNR.

    Args:
        table: :func:`paperlib.experiment.study.study_table`.
        title: figure title.
    """
    snrs = sorted(table["snr_db"].unique())
    recipes = list(dict.fromkeys(table["onsets"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(
        1,
        len(snrs),
        figsize=(4.6 * len(snrs), 3.4),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
    )
    width = 0.8 / max(len(recipes), 1)
    x = np.arange(len(models))
    for ax, snr in zip(axes[0], snrs, strict=True):
        rows = table[table["snr_db"] == snr].set_index(["model", "onsets"])
        for i, onsets in enumerate(recipes):
            values = [rows["micro_ap"].get((m, onsets), np.nan) for m in models]
            ax.bar(
                x + (i - (len(recipes) - 1) / 2) * width, values, width, label=f"{onsets} onsets"
            )
        ax.axhline(float(rows["chance"].mean()), color="grey", lw=1, ls=":", label="chance")
        ax.set_xticks(x, models, rotation=30, ha="right")
        ax.set_title(f"{snr} dB")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("validation micro-AP")
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
