"""Figures of chapter 2 (the models): the two-step pooling diagram, its real weights, costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def draw_two_step_diagram(*, attention: str = "authors", ax: Axes | None = None) -> Figure:
    """Block diagram of 2-step attention pooling: K×T×F -> (step 1 over F) -> K×T -> (step 2 over T) -> K.

    Args:
        attention: ``authors`` or ``paper``: where the sigmoid sits (labels only).
        ax: axes to draw in (a new figure otherwise).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.6))
    fig = ax.figure
    ax.set_xlim(0, 12.4)
    ax.set_ylim(0, 3.6)
    ax.axis("off")
    if attention == "authors":
        att_text, cla_text = "softmax", "sigmoid"
    else:
        att_text, cla_text = "sigmoid, softmax", "no squashing"

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(
            FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3", lw=1.0)
        )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12))

    box(0.1, 1.4, 1.5, 0.8, "class maps\nZ: K×T×F", "#e8eef7")
    for i, (x0, axis_name, n, out_text) in enumerate(
        ((2.1, "F", "F→F", "Z_p1: K×T"), (7.4, "T", "T→T", "Z_p2: K"))
    ):
        box(
            x0,
            2.3,
            1.9,
            0.8,
            f"attention branch\nLinear {n}\n{att_text} over {axis_name}",
            "#fde9d9",
        )
        box(x0, 0.5, 1.9, 0.8, f"classification branch\nLinear {n}\n{cla_text}", "#e2f0d9")
        box(x0 + 2.3, 1.4, 1.1, 0.8, f"× then\nΣ over {axis_name}", "#f2f2f2")
        x_in = 1.6 if i == 0 else 6.9
        arrow(x_in, 1.8, x0, 2.7)
        arrow(x_in, 1.8, x0, 0.9)
        arrow(x0 + 1.9, 2.7, x0 + 2.3, 1.95)
        arrow(x0 + 1.9, 0.9, x0 + 2.3, 1.65)
        ax.text(
            x0 + 0.95,
            3.3,
            f"step {i + 1}: along {'mel bins' if i == 0 else 'time'}",
            ha="center",
            fontsize=10,
            weight="bold",
        )
        if i == 0:
            box(5.9, 1.4, 1.0, 0.8, out_text, "#e8eef7")
            arrow(5.5, 1.8, 5.9, 1.8)
        else:
            box(11.2, 1.4, 1.0, 0.8, "clamp\n[0, 1]\nP: K", "#e8eef7")
            arrow(10.8, 1.8, 11.2, 1.8)
    ax.set_title(f"Two-step attention pooling ({attention!r} placement)", fontsize=10)
    return fig


def plot_two_step_weights(
    x: torch.Tensor | np.ndarray,
    outputs: Mapping[str, torch.Tensor],
    *,
    class_indices: Sequence[int],
    class_names: Sequence[str] | None = None,
    sample: int = 0,
) -> Figure:
    """The 2APAE's named outputs for one clip, in the order of the paper's Fig. 3.

    Panels: input log-mel (T×F); step-1 weights of each class in ``class_indices`` (T×F);
    step-1 output (K×T); step-2 weights (K×T); clip probabilities (K).

    Args:
        x: the input batch (B, T, F).
        outputs: the model's output dict (``step1_weights`` (B, K, T, F), ``step1_output``
            (B, K, T), ``step2_weights`` (B, K, T), ``clip_probs`` (B, K)).
        class_indices: classes whose step-1 weights are drawn.
        class_names: K names for the labels (indices otherwise).
        sample: which clip of the batch.
    """

    def arr(t: torch.Tensor | np.ndarray) -> np.ndarray:
        return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)

    xs = arr(x)[sample]
    w1 = arr(outputs["step1_weights"])[sample]
    z1 = arr(outputs["step1_output"])[sample]
    w2 = arr(outputs["step2_weights"])[sample]
    probs = arr(outputs["clip_probs"])[sample]
    names = list(class_names) if class_names is not None else [str(k) for k in range(len(probs))]
    n = 4 + len(class_indices)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.9 * n), constrained_layout=True)
    panels = [(xs.T, "input log-mel (mel bin × frame)", "mel bin")]
    panels += [
        (w1[k].T, f"step-1 weights, {names[k]} (sum to 1 over mel bins)", "mel bin")
        for k in class_indices
    ]
    panels += [
        (z1, "step-1 output Z_p1 (class × frame)", "class"),
        (w2, "step-2 weights (class × frame, sum to 1 over time)", "class"),
    ]
    for ax, (image, title, ylabel) in zip(axes[:-1], panels, strict=True):
        im = ax.imshow(image, origin="lower", aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel)
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[-2].set_xlabel("frame")
    axes[-1].bar(np.arange(len(probs)), probs, color="C0")
    axes[-1].set_xlim(-0.5, len(probs) - 0.5)
    axes[-1].set_ylim(0, 1)
    axes[-1].set_title("clip probabilities (step-2 output, clamped to [0, 1])", fontsize=9)
    axes[-1].set_xlabel("class")
    return fig


def plot_complexity(table: pd.DataFrame) -> Figure:
    """Bar charts of parameters and forward GFLOPs per clip by model and size (log scale).

    Args:
        table: output of :func:`paperlib.models.summary.complexity_table`.
    """
    sizes = list(dict.fromkeys(table["size"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    width = 0.8 / len(sizes)
    for column, ax, label in (
        ("parameters", axes[0], "parameters"),
        ("GFLOPs", axes[1], "forward GFLOPs per clip"),
    ):
        for i, size in enumerate(sizes):
            values = table[table["size"] == size].set_index("model").loc[models, column]
            ax.bar(np.arange(len(models)) + i * width, values, width, label=size)
        ax.set_xticks(np.arange(len(models)) + width * (len(sizes) - 1) / 2, models)
        ax.set_yscale("log")
        ax.set_ylabel(label)
    axes[1].legend(title="size", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
