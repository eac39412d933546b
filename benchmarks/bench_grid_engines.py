"""Wall time of the smoke grid with ``--engine ray`` against ``--engine local``, in one run.

Three runs of the same grid, each in a fresh temporary workspace (so no cell is cached):

1. ``local``: ``run_grid(engine="local")``, the cells one after another in this process;
2. ``ray, cold``: ``run_grid(engine="ray")`` with no Ray running, as ``python -m paperlib grid
   --engine ray`` does it: start a local Ray instance, run the cells as tasks, shut Ray down;
3. ``ray, warm``: the same cells on a Ray instance started beforehand (a cluster that is up).

From these: Ray's start-up ``S`` (cold - warm), its overhead per wave of parallel cells (the
warm run's first wave also starts the worker processes, once per driver) and the cross-over:
the work per cell above which Ray's parallel slots beat the local loop (the work per cell is
taken from the local run, so a cell is assumed to cost the same under both engines).

The feature file is synthetic but has the smoke profile's exact shape (311 x 64 log-mels,
``data.mixtures_per_fold`` clips in each of 4 folds), so each cell does the smoke grid's
training work without the data stage (``tests/synthetic_workspace.py``).

    .venv/bin/python -m benchmarks.bench_grid_engines
    .venv/bin/python -m benchmarks.bench_grid_engines --cpus-per-cell 2 --models GMP 2APAE
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from pathlib import Path

import torch

from paperlib import paths
from paperlib.config import Profile, load_profile_with_overrides
from paperlib.experiment import grid_cells, run_grid
from tests.synthetic_workspace import write_synthetic_features  # test support, shared


def _workspace(root: Path, profile: Profile, snrs: tuple[int, ...]) -> Path:
    ws = root / profile.name
    for snr in snrs:
        write_synthetic_features(
            paths.feature_file(ws, snr),
            clips_per_fold=profile.data.mixtures_per_fold,
            snr_db=snr,
            seed=1,
        )
    return ws


def _timed(profile: Profile, ws: Path, **engine: object) -> float:
    start = time.perf_counter()
    run_grid(profile, ws, progress=False, **engine)
    return time.perf_counter() - start


def crossover_seconds(n_cells: int, slots: int, startup_s: float, overhead_s: float) -> float:
    """Work per cell (s) above which Ray beats the local loop; ``inf`` when it never does.

    Local: ``n * w``. Ray: ``S + ceil(n / P) * (w + o)`` (``P`` parallel slots, overhead ``o``
    per wave). Equal at ``w = (S + waves * o) / (n - waves)``.
    """
    waves = math.ceil(n_cells / slots)
    if waves >= n_cells:
        return math.inf
    return max(0.0, (startup_s + waves * overhead_s) / (n_cells - waves))


def _verdict(work_s: float) -> str:
    if math.isinf(work_s):
        return "no cell length (one slot: Ray only adds its overhead)"
    if work_s == 0:
        return "any cell length"
    return f"cells of more than {work_s:.2f} s of work (local rate below {1 / work_s:.2f} cells/s)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", help="profile whose grid is timed")
    parser.add_argument("--models", nargs="+", default=None, help="subset of the grid's models")
    parser.add_argument("--cpus-per-cell", type=float, default=1.0, help="CPUs per Ray task")
    args = parser.parse_args(argv)
    import ray

    overrides = ["train.device=cpu"]
    if args.models:
        overrides.append(f"grid.models=[{', '.join(args.models)}]")
    profile = load_profile_with_overrides(args.profile, overrides)
    cells = grid_cells(profile)
    snrs = tuple(sorted({c.snr_db for c in cells}))
    n = len(cells)
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        root = Path(tmp)
        local = _timed(profile, _workspace(root / "local", profile, snrs))
        ray_opts = {"engine": "ray", "cpus_per_cell": args.cpus_per_cell}
        cold = _timed(profile, _workspace(root / "cold", profile, snrs), **ray_opts)
        started = time.perf_counter()
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
        init_s = time.perf_counter() - started
        try:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            warm = _timed(profile, _workspace(root / "warm", profile, snrs), **ray_opts)
        finally:
            ray.shutdown()
    slots = max(1, int(cpus // args.cpus_per_cell))
    waves = math.ceil(n / slots)
    per_cell = local / n
    overhead = warm / waves - per_cell
    startup = max(0.0, cold - warm)
    print(f"{args.profile} grid: {n} cells of {profile.train.epochs} epoch(s); "
          f"Ray: {cpus:g} CPUs, {args.cpus_per_cell:g} per cell -> {slots} slot(s), "
          f"{waves} wave(s)")  # fmt: skip
    print(f"local engine:            {local:7.1f} s ({per_cell:.2f} s of work per cell, "
          f"torch threads {torch.get_num_threads()})")  # fmt: skip
    print(f"ray engine, cold start:  {cold:7.1f} s ({cold / local:.2f}x local)")
    print(f"ray engine, warm Ray:    {warm:7.1f} s ({warm / local:.2f}x local; "
          f"ray.init alone {init_s:.1f} s)")  # fmt: skip
    print(f"ray start-up (cold - warm) {startup:.1f} s; overhead per wave {overhead:+.2f} s")
    for cells_n, label in ((n, "this grid"), (96, "the paper's 96 cells")):
        w = crossover_seconds(cells_n, slots, startup, max(0.0, overhead))
        print(f"cross-over for {label} on {slots} slot(s): Ray wins for {_verdict(w)}")


if __name__ == "__main__":
    main()
