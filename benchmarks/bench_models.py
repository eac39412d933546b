"""Forward+backward throughput of the five models at pocket and paper size.

    .venv/bin/python -m benchmarks.bench_models                 # CPU, pocket and paper size
    .venv/bin/python -m benchmarks.bench_models --sizes pocket  # quick
    .venv/bin/python -m benchmarks.bench_models --device cuda   # GPU path (see below)

For each model and size, two settings are measured in the same run:

- ``plain``: the model in fp32, NCHW memory format, default backend flags (the baseline);
- ``tuned``: on CUDA, bf16 autocast + channels_last + ``cudnn.benchmark``; on CPU,
  channels_last only (fp32: bf16 autocast is slow on CPUs without native bf16 support).

Reported: clips/s (forward + backward of BCE + 0.001 * MSE, no optimiser step), achieved
FLOP/s (3 x the counted forward FLOPs per clip, see :mod:`paperlib.models.summary`) and the
tuned/plain ratio. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator, Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from paperlib.config import load_profile
from paperlib.models import MODEL_NAMES, ModelSpec, build_model_from_spec
from paperlib.models.summary import TRAIN_STEP_FLOP_FACTOR, complexity


@contextlib.contextmanager
def _cudnn_benchmark(enabled: bool) -> Iterator[None]:
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train_steps(
    spec: ModelSpec, *, device: torch.device, batch: int, iters: int, tuned: bool
) -> float:
    """Seconds per forward+backward step (mean over ``iters`` after one warm-up step)."""
    torch.manual_seed(0)
    model = build_model_from_spec(spec).to(device).train()
    x = torch.randn(batch, spec.time_steps, spec.mel_bins, device=device)
    y = (torch.rand(batch, spec.num_classes, device=device) < 0.1).float()
    if tuned:
        model = model.to(memory_format=torch.channels_last)
    use_autocast = tuned and device.type == "cuda"

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
            out = model(x)
        loss = F.binary_cross_entropy(out["clip_probs"].float(), y)
        if "reconstruction" in out:
            loss = loss + 0.001 * F.mse_loss(out["reconstruction"].float(), x)
        loss.backward()

    with _cudnn_benchmark(tuned and device.type == "cuda"):
        step()  # warm-up (and cudnn autotuning)
        _sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        _sync(device)
        return (time.perf_counter() - start) / iters


def run(
    *,
    device: torch.device,
    sizes: Sequence[str],
    models: Sequence[str],
    batches: dict[str, int],
    iters: dict[str, int],
) -> pd.DataFrame:
    """Measure every (model, size, setting); returns one row per model and size."""
    widths = {"pocket": load_profile("pocket").model.width, "paper": 1.0}
    rows = []
    for size in sizes:
        for name in models:
            spec = ModelSpec(name, width=widths[size])
            train_flops = TRAIN_STEP_FLOP_FACTOR * complexity(spec)["flops"]
            row = {"model": name, "size": size, "width": widths[size], "batch": batches[size]}
            for setting in ("plain", "tuned"):
                seconds = time_train_steps(
                    spec,
                    device=device,
                    batch=batches[size],
                    iters=iters[size],
                    tuned=setting == "tuned",
                )
                clips = batches[size] / seconds
                row[f"{setting}_clips_s"] = clips
                row[f"{setting}_GFLOP_s"] = clips * train_flops / 1e9
            row["tuned/plain"] = row["tuned_clips_s"] / row["plain_clips_s"]
            rows.append(row)
            print(
                f"{name:>8} {size:>6}: plain {row['plain_clips_s']:8.2f} clips/s "
                f"({row['plain_GFLOP_s']:6.1f} GFLOP/s), tuned {row['tuned_clips_s']:8.2f} "
                f"clips/s ({row['tuned_GFLOP_s']:6.1f} GFLOP/s), ratio {row['tuned/plain']:.2f}",
                flush=True,
            )
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_models", description=__doc__)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--sizes", default="pocket,paper", help="comma list: pocket, paper")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma list of models")
    parser.add_argument("--pocket-batch", type=int, default=8)
    parser.add_argument("--paper-batch", type=int, default=None, help="2 on CPU, 24 on CUDA")
    parser.add_argument("--pocket-iters", type=int, default=4)
    parser.add_argument("--paper-iters", type=int, default=None, help="1 on CPU, 10 on CUDA")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine: nothing measured.")
        return 0
    on_gpu = device.type == "cuda"
    sizes = [s for s in args.sizes.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    batches = {"pocket": args.pocket_batch, "paper": args.paper_batch or (24 if on_gpu else 2)}
    iters = {"pocket": args.pocket_iters, "paper": args.paper_iters or (10 if on_gpu else 1)}
    where = (
        torch.cuda.get_device_name(device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"bench_models on {where}; tuned = "
        + ("bf16 autocast + channels_last + cudnn.benchmark" if on_gpu else "channels_last (fp32)")
    )
    table = run(device=device, sizes=sizes, models=models, batches=batches, iters=iters)
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
