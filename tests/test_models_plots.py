"""The chapter-2 figures and the benchmark's timing path run on small inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import subprocess
import sys

import matplotlib.pyplot as plt
import torch

from paperlib.models import build_model
from paperlib.models.summary import complexity_table
from paperlib.paths import project_root
from paperlib.plots.model_plots import draw_two_step_diagram, plot_complexity, plot_two_step_weights


def test_figures() -> None:
    for attention in ("authors", "paper"):
        fig = draw_two_step_diagram(attention=attention)
        assert attention in fig.axes[0].get_title()
        plt.close(fig)
    torch.manual_seed(0)
    model = build_model("2APAE", num_classes=4, time_steps=30, mel_bins=10, width=0.125).eval()
    x = torch.randn(2, 30, 10)
    with torch.no_grad():
        out = model(x)
    fig = plot_two_step_weights(x, out, class_indices=[0, 2], class_names=list("abcd"), sample=1)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("step-1 weights, c" in t for t in titles)
    plt.close(fig)
    table = complexity_table(
        {"a": 0.1, "b": 0.2}, names=("GMP", "2APAE"), time_steps=30, mel_bins=10
    )
    fig = plot_complexity(table)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_benchmark_runs_on_cpu() -> None:
    """The benchmark's command line on its smallest setting (plain and tuned paths)."""
    args = ["--device", "cpu", "--sizes", "pocket", "--models", "GMP"]
    args += ["--pocket-batch", "1", "--pocket-iters", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_models", *args],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "tuned/plain" in result.stdout and "GMP" in result.stdout
