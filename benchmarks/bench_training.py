"""Training throughput on this machine: the pocket setting, the previous one, a plain loop.

For every model, optimiser steps/s and clips/s of one training step (forward, backward, Adam):

* ``pocket``: our :func:`~paperlib.run.recipe.train_step` in the pocket profile's
  setting (its width, batch and pooled input grid; one torch thread);
* ``previous pocket``: the setting the book used before (width 0.0625 on the full 311 x 64
  grid, batch 8; one thread), whose baselines never left chance;
* ``plain``: the pocket setting trained the way the authors' code does it, as the baseline: a
  ``DataLoader`` over the arrays, ``nn.AvgPool2d`` for the 3 x 3 smoothing (we compute the
  same numbers as a depthwise convolution, :class:`~paperlib.models.blocks.SmoothingPool`).

Then the CPU settings the pocket profile keeps, for 2APAE (the costliest cell): one process
with 1 or 2 torch threads, and two processes with one thread each (``grid.workers: 2``), whose
steps/s add up. ``torch.compile`` is not used (see the README).

    .venv/bin/python -m benchmarks.bench_training [--steps 20] [--models GMP,2APAE]
    .venv/bin/python -m benchmarks.bench_training --device cuda --paper   # paper size on a GPU

Measure on a quiet machine: a second busy process makes torch's threads spin.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from paperlib.config import load_profile
from paperlib.data.features import N_FRAMES, N_MELS
from paperlib.models import MODEL_NAMES, build_model
from paperlib.models.blocks import SmoothingPool
from paperlib.run import prepare_model, train_step


@dataclass(frozen=True)
class Setting:
    """Model size and input of one benchmark case."""

    width: float
    time_steps: int
    mel_bins: int
    batch: int


def pocket_setting() -> Setting:
    pocket = load_profile("pocket")
    return Setting(
        pocket.model.width,
        N_FRAMES // pocket.model.time_pool,
        N_MELS // pocket.model.mel_pool,
        pocket.train.batch_size,
    )


PREVIOUS = Setting(0.0625, N_FRAMES, N_MELS, 8)
"""The pocket profile before issue 10: the full grid at width 0.0625, batch 8."""


def _batch(setting: Setting, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(setting.batch, setting.time_steps, setting.mel_bins, generator=g)
    y = (torch.rand(setting.batch, 41, generator=g) < 3 / 41).float()
    return x, y


def _model(name: str, setting: Setting) -> nn.Module:
    torch.manual_seed(0)
    return build_model(
        name, time_steps=setting.time_steps, mel_bins=setting.mel_bins, width=setting.width
    )


def steps_per_second(
    name: str,
    setting: Setting,
    steps: int,
    device: torch.device,
    *,
    precision: str | None = None,
    warmup: int = 2,
    before_timing: Callable[[], object] | None = None,
) -> float:
    """Steps/s of our ``train_step`` over ``steps`` steps, after ``warmup`` warm-up steps.

    Args:
        precision: ``fp32``, ``tf32`` or ``bf16`` (default: ``bf16`` on CUDA, ``fp32`` on CPU).
        before_timing: called after the warm-up, before the clock starts (e.g. a barrier, so
            that processes measured side by side start their timed steps together).
    """
    net = prepare_model(_model(name, setting), device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = (t.to(device) for t in _batch(setting))
    if precision is None:
        precision = "bf16" if device.type == "cuda" else "fp32"
    for i in range(steps + warmup):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if before_timing is not None:
                before_timing()
            start = time.perf_counter()
        train_step(net, opt, x, y, alpha=0.001, device=device, precision=precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - start)


def _with_torch_pooling(module: nn.Module) -> nn.Module:
    for child_name, child in module.named_children():
        if isinstance(child, SmoothingPool):
            setattr(module, child_name, nn.AvgPool2d(3, stride=1, padding=1))
        else:
            _with_torch_pooling(child)
    return module


def plain_steps_per_second(name: str, setting: Setting, steps: int) -> float:
    """Steps/s of the authors'-style fp32 loop: DataLoader, ``nn.AvgPool2d`` (CPU)."""
    net = _with_torch_pooling(_model(name, setting))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = _batch(setting)
    data = torch.utils.data.TensorDataset(x.repeat(steps + 2, 1, 1), y.repeat(steps + 2, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=setting.batch, shuffle=True)
    for i, (xb, yb) in enumerate(loader):
        if i == 2:
            start = time.perf_counter()
        out = net(xb)
        loss = F.binary_cross_entropy(out["clip_probs"].clamp(0, 1), yb)
        if "reconstruction" in out:
            loss = loss + 0.001 * F.mse_loss(out["reconstruction"], xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def _one_process(args: tuple[str, Setting, int, int]) -> float:
    name, setting, steps, threads = args
    torch.set_num_threads(threads)
    return steps_per_second(name, setting, steps, torch.device("cpu"))


def thread_settings(name: str, setting: Setting, steps: int) -> list[tuple[str, float]]:
    """Total steps/s of ``name`` with 1 process x 1 thread, 1 x 2 threads, 2 x 1 thread."""
    context = multiprocessing.get_context("spawn")
    rows = []
    for label, processes, threads in (
        ("1 process x 1 thread", 1, 1),
        ("1 process x 2 threads", 1, 2),
        ("2 processes x 1 thread (grid.workers: 2)", 2, 1),
    ):
        with context.Pool(processes) as pool:
            rates = pool.map(_one_process, [(name, setting, steps, threads)] * processes)
        rows.append((label, sum(rates)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per case")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--paper", action="store_true", help="paper size (width 1, 311 x 64, batch 24)"
    )
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    print(f"device {device}, cpu cores {os.cpu_count()}, load average {load:.2f} at start")
    if args.paper:
        paper = Setting(1.0, N_FRAMES, N_MELS, 24)
        for name in models:
            rate = steps_per_second(name, paper, args.steps, device)
            print(f"paper size {name:8}: {rate:6.2f} steps/s {rate * paper.batch:8.1f} clips/s")
        return
    torch.set_num_threads(1)
    pocket = pocket_setting()
    print(
        f"pocket: width {pocket.width}, input {pocket.time_steps} x {pocket.mel_bins}, batch "
        f"{pocket.batch}; previous: width {PREVIOUS.width}, {PREVIOUS.time_steps} x "
        f"{PREVIOUS.mel_bins}, batch {PREVIOUS.batch}; one torch thread"
    )
    header = f"{'model':8} {'pocket steps/s':>14} {'clips/s':>8} {'plain steps/s':>14} {'ours/plain':>10} {'previous steps/s':>16} {'clips/s':>8}"
    print(header)
    for name in models:
        ours = steps_per_second(name, pocket, args.steps, device)
        plain = plain_steps_per_second(name, pocket, args.steps)
        before = steps_per_second(name, PREVIOUS, max(args.steps // 4, 3), device)
        print(
            f"{name:8} {ours:14.2f} {ours * pocket.batch:8.1f} {plain:14.2f} {ours / plain:10.2f} "
            f"{before:16.2f} {before * PREVIOUS.batch:8.1f}"
        )
    print("CPU settings, 2APAE in the pocket setting (total steps/s):")
    baseline = None
    for label, rate in thread_settings("2APAE", pocket, args.steps):
        baseline = baseline or rate
        print(f"  {label:42} {rate:6.2f} steps/s ({rate / baseline:.2f}x)")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
