"""Training throughput (clips/s) of our trainer's step vs a plain fp32 loop, in one run.

The plain loop is written the way the authors' code trains: the same model in NCHW fp32, no
autocast, a ``torch.utils.data.DataLoader`` over in-memory arrays, BCE + α·MSE. Ours is
:func:`paperlib.training.trainer.train_step` on tensors indexed in place (on CUDA:
``precision="bf16"`` autocast, channels_last, cudnn.benchmark, data resident on the GPU).

    .venv/bin/python -m benchmarks.bench_training             # CPU: paper-size and pocket
    .venv/bin/python -m benchmarks.bench_training --device cuda

On CPU the paper-size 2APAE is very slow (about 35 GMAC per clip forward), so it runs batch 2
for a few steps; on a shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from paperlib.config import load_profile
from paperlib.models import build_model
from paperlib.training.trainer import prepare_model, train_step


def _data(n: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 311, 64, generator=g)
    y = (torch.rand(n, 41, generator=g) < 3 / 41).float()
    return x, y


def bench_ours(width: float, batch: int, steps: int, device: torch.device) -> float:
    """Clips/s of our step (after one warm-up step)."""
    torch.manual_seed(0)
    net = prepare_model(build_model("2APAE", width=width), device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = _data(batch * (steps + 1))
    x, y = x.to(device), y.to(device)
    order = torch.arange(len(x), device=device)
    for i in range(steps + 1):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        idx = order[i * batch : (i + 1) * batch]
        precision = "bf16" if device.type == "cuda" else "fp32"  # train.precision: bf16 opt-in
        train_step(net, opt, x[idx], y[idx], alpha=0.001, device=device, precision=precision)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def bench_plain(width: float, batch: int, steps: int, device: torch.device) -> float:
    """Clips/s of a plain fp32 NCHW loop over a DataLoader (after one warm-up step)."""
    torch.manual_seed(0)
    net = build_model("2APAE", width=width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = _data(batch * (steps + 1))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True
    )
    for i, (xb, yb) in enumerate(loader):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        xb, yb = xb.to(device), yb.to(device)
        out = net(xb)
        loss = F.binary_cross_entropy(out["clip_probs"].clamp(0, 1), yb) + 0.001 * F.mse_loss(
            out["reconstruction"], xb
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--paper-steps", type=int, default=2, help="timed steps, paper size")
    parser.add_argument("--pocket-steps", type=int, default=4, help="timed steps, pocket size")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    pocket = load_profile("pocket")
    cases = [
        ("paper-size 2APAE (width 1.0)", 1.0, 2 if device.type == "cpu" else 24, args.paper_steps),
        (
            f"pocket 2APAE (width {pocket.model.width})",
            pocket.model.width,
            pocket.train.batch_size,
            args.pocket_steps,
        ),
    ]
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    for name, width, batch, steps in cases:
        plain = bench_plain(width, batch, steps, device)
        ours = bench_ours(width, batch, steps, device)
        print(
            f"{name}, batch {batch}, {steps} steps: ours {ours:.2f} clips/s, "
            f"plain fp32 loop {plain:.2f} clips/s, ratio {ours / plain:.2f}x"
        )


if __name__ == "__main__":
    main()
