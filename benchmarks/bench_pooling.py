"""GWRP's ranking on the CPU: ``torch.sort`` (the baseline) against the library's numpy argsort.

    .venv/bin/python -m benchmarks pooling

GWRP sorts each class map's T*F values (:func:`paperlib.models.pooling.global_weighted_rank_pool`).
At the pocket size (batch 24, 41 classes, 77 x 16 cells, one thread) the sort dominated a GWRP
training step. Both variants are timed in the same run (forward + backward of the pooled sum,
mean over ``--iters`` after warm-up) and checked to give the same pooled values; the figures go
to ``benchmarks/results/gwrp_ranking.csv`` with the machine and load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from paperlib.models.pooling import GWRP_DECAY, global_weighted_rank_pool

RESULTS = Path(__file__).parent / "results" / "gwrp_ranking.csv"


def torch_sort_pool(maps: torch.Tensor, decay: float = GWRP_DECAY) -> torch.Tensor:
    """The baseline: GWRP with ``torch.sort`` (what the library did before): (B, K, T, F) -> (B, K)."""
    flat = maps.flatten(2).float()
    ranked = flat.sort(dim=-1, descending=True).values
    weights = decay ** torch.arange(flat.shape[-1], dtype=torch.float64)
    return (ranked * (weights / weights.sum()).float()).sum(dim=-1)


def seconds_per_step(
    pool: Callable[[torch.Tensor], torch.Tensor], maps: torch.Tensor, iters: int
) -> float:
    """Mean seconds of one forward + backward of ``pool(maps).sum()`` after three warm-up steps."""
    for _ in range(3):
        pool(maps).sum().backward()
    start = time.perf_counter()
    for _ in range(iters):
        pool(maps).sum().backward()
    return (time.perf_counter() - start) / iters


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--batch", type=int, default=24)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    maps = torch.rand(args.batch, 41, 77, 16, requires_grad=True)
    torch.testing.assert_close(global_weighted_rank_pool(maps), torch_sort_pool(maps))
    baseline = seconds_per_step(torch_sort_pool, maps, args.iters)
    library = seconds_per_step(global_weighted_rank_pool, maps, args.iters)
    table = pd.DataFrame(
        [
            {"variant": "torch.sort (baseline)", "ms_per_step": 1e3 * baseline, "speedup": 1.0},
            {
                "variant": "numpy argsort (library)",
                "ms_per_step": 1e3 * library,
                "speedup": baseline / library,
            },
        ]
    ).assign(
        shape=f"{args.batch}x41x77x16",
        threads=1,
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        load_average=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
    print(table.round(2).to_string(index=False))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS, index=False)
    return table


if __name__ == "__main__":
    main()
