"""Localising a held-out fold (clips/s) against the training time of the same cell.

For each model of the profile's grid, on the first grid cell (SNR, held-out fold): the run is
trained or taken from the cache (its training time is the sum of its epochs' seconds in
``log.csv``), then :func:`paperlib.localisation.localise_run` is timed with ``refresh=True``
(model forward on the fold, every temporal metric for every scorer and gating, Kong's masks and
the T-F metrics). The issue's budget: localisation under a tenth of the training time.

    .venv/bin/python -m benchmarks.bench_localisation                   # pocket workspace
    .venv/bin/python -m benchmarks.bench_localisation --profile smoke   # tiny, for CI

It uses the profile's workspace (``PAPERLIB_WORKSPACE`` to move it): data and runs the book
already made are reused, missing ones are made first (not timed).
"""

from __future__ import annotations

import argparse
import time

from paperlib.config import load_profile
from paperlib.data.pipeline import prepare_data
from paperlib.localisation import localise_run
from paperlib.paths import workspace_dir
from paperlib.run import train_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="pocket", help="profile name or YAML (pocket)")
    parser.add_argument("--models", nargs="*", help="models (default: the profile's grid)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    ws = workspace_dir(profile.name)
    snr, fold = profile.grid.snrs[0], profile.grid.folds[0]
    prepare_data(profile, ws, progress=False)
    print(f"localisation vs training, profile {profile.name}, {snr} dB, held-out fold {fold}:")
    print(
        f"  {'model':9s} {'clips':>5s} {'localise s':>10s} {'clips/s':>8s} {'train s':>8s} "
        f"{'ratio':>6s}"
    )
    for model in args.models or profile.grid.models:
        run = train_run(profile, ws, model=model, snr_db=snr, fold=fold, progress=False)
        train_s = float(run.log["seconds"].sum())
        start = time.perf_counter()
        payload = localise_run(run, ws, batch_size=args.batch_size, refresh=True)
        seconds = time.perf_counter() - start
        clips = payload["n_clips"]
        print(
            f"  {model:9s} {clips:5d} {seconds:10.2f} {clips / seconds:8.1f} {train_s:8.1f} "
            f"{seconds / train_s:6.3f}"
        )
    print("  ratio = localisation time / training time of the same cell (budget: < 0.1)")


if __name__ == "__main__":
    main()
