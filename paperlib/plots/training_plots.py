"""Figures of chapters 3-5: learning curves, loss terms, per-class AP heat map, ablation bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "plot_ablation",
    "plot_learning_curves",
    "plot_per_class_heatmap",
    "plot_validation_curves",
]


def plot_learning_curves(
    log: pd.DataFrame, *, alpha: float, chance: float | None = None, title: str = ""
) -> Figure:
    """Loss terms (left) and micro/macro AP (right) per epoch of one run.

    Args:
        log: a run's ``log.csv`` (columns ``LOG_COLUMNS``).
        alpha: the MSE weight of the run (the weighted term ``α·MSE`` is drawn).
        chance: micro-AP of a random scorer (share of positive clip-class pairs), drawn as a
            horizontal line when given.
        title: figure title.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    epoch = log["epoch"]
    left.plot(epoch, log["bce"], "o-", label="BCE (weak labels)")
    if (log["mse"] > 0).any():
        left.plot(epoch, alpha * log["mse"], "s-", label=f"α·MSE (α = {alpha:g})")
        twin = left.twinx()
        twin.plot(epoch, log["mse"], ":", color="grey", label="MSE (unweighted, right axis)")
        twin.set_ylabel("reconstruction MSE")
        twin.legend(loc="center right", fontsize=8)
    left.plot(epoch, log["loss"], "k--", label="total loss")
    left.set(xlabel="epoch", ylabel="training loss")
    left.legend(fontsize=8)
    right.plot(epoch, log["train_micro_ap"], "o-", label="train micro-AP")
    right.plot(epoch, log["val_micro_ap"], "s-", label="validation micro-AP")
    right.plot(epoch, log["val_macro_ap"], "^-", label="validation macro-AP")
    best = log.loc[log["val_micro_ap"].idxmax()]
    right.axvline(best["epoch"], color="grey", ls=":", label=f"best epoch ({int(best['epoch'])})")
    if chance is not None:
        right.axhline(chance, color="red", ls="--", lw=1, label=f"chance micro-AP ({chance:.3f})")
    right.set(xlabel="epoch", ylabel="average precision", ylim=(0, 1))
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_per_class_heatmap(matrix: pd.DataFrame, *, title: str = "") -> Figure:
    """Classes × models heat map of per-class AP (NaN cells hatched grey).

    Args:
        matrix: rows = classes, columns = models, values = AP in [0, 1].
    """
    fig, ax = plt.subplots(figsize=(1.2 * matrix.shape[1] + 3, 0.22 * matrix.shape[0] + 1.5))
    ax.set_facecolor("#dddddd")
    image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(float)), vmin=0, vmax=1,
                      cmap="viridis", aspect="auto")  # fmt: skip
    ax.set_xticks(range(matrix.shape[1]), matrix.columns)
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=7)
    fig.colorbar(image, ax=ax, label="average precision")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_ablation(summary: pd.DataFrame, *, metric: str = "micro_ap") -> Figure:
    """Bars of one metric per 2APAE variant (α, decoder) and SNR, ours (fold mean)."""
    sel = summary[summary["metric"] == metric].copy()
    sel["variant"] = [
        f"α={a:g}" + (" linear" if d == "linear" else "")
        for a, d in zip(sel["alpha"], sel["decoder_activation"], strict=True)
    ]
    pivot = sel.pivot_table(index="snr_db", columns="variant", values="mean")
    fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
    pivot.plot.bar(ax=ax, rot=0)
    ax.set(xlabel="SNR (dB)", ylabel=metric.replace("_", "-"), ylim=(0, 1))
    ax.legend(fontsize=8)
    return fig


def plot_validation_curves(
    logs: pd.DataFrame, chance: pd.DataFrame, *, factor: float = 3.0, title: str = ""
) -> Figure:
    """Validation micro-AP against optimiser steps, one panel per SNR, one line per model.

    Args:
        logs: the runs' ``log.csv`` rows stacked, with columns ``model, snr_db, step,
            val_micro_ap`` (one run per model and SNR).
        chance: rows ``snr_db, chance`` (:func:`paperlib.experiment.evidence.chance_table`),
            drawn as a dashed line, and ``factor`` × chance as a dotted one (the learning bar).
        factor: the multiple of chance a model must reach.
        title: figure title.
    """
    snrs = sorted(logs["snr_db"].unique(), reverse=True)
    fig, axes = plt.subplots(
        1, len(snrs), figsize=(3.6 * len(snrs) + 1, 3.4), sharey=True, constrained_layout=True
    )
    axes = np.atleast_1d(axes)
    for axis, snr in zip(axes, snrs, strict=True):
        for model, run in logs[logs["snr_db"] == snr].groupby("model", sort=False):
            axis.plot(run["step"], run["val_micro_ap"], label=str(model))
        level = float(chance.loc[chance["snr_db"] == snr, "chance"].mean())
        axis.axhline(level, color="red", ls="--", lw=1, label="chance")
        axis.axhline(factor * level, color="red", ls=":", lw=1, label=f"{factor:g}× chance")
        axis.set(title=f"{snr} dB", xlabel="optimiser steps", ylim=(0, 1))
    axes[0].set_ylabel("validation micro-AP")
    axes[-1].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    return fig
