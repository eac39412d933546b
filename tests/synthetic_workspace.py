"""Test support: small synthetic feature files in the exact feature-file schema, and a tiny profile.

Used by the tests and by ``benchmarks/bench_grid_engines.py`` (as ``tests.synthetic_workspace``);
the package does not ship it. The defaults and attributes are the library's own constants
(:mod:`paperlib.data.features`, :mod:`paperlib.data.audio`, :mod:`paperlib.data.classes`).

Each clip holds ``events_per_clip`` events; an event of class k adds a bump of
``signal`` to mel bins ``k * F // K`` .. ``+2`` over a third of the clip, on top of Gaussian
noise, so a model can learn the classes (metrics move) within a few epochs. The layout, dtypes
and attributes are those the data pipeline writes (see the common contract).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import yaml

from paperlib import atomic
from paperlib.data.audio import SAMPLE_RATE
from paperlib.data.classes import CLASSES, NUM_CLASSES
from paperlib.data.features import FMAX, FMIN, HOP, N_FFT, N_FRAMES, N_MELS

__all__ = ["write_synthetic_features", "write_tiny_profile"]


def write_synthetic_features(
    path: Path,
    *,
    clips_per_fold: int = 8,
    folds: tuple[int, ...] = (1, 2, 3, 4),
    time_steps: int = N_FRAMES,
    mel_bins: int = N_MELS,
    num_classes: int = NUM_CLASSES,
    events_per_clip: int = 3,
    signal: float = 3.0,
    snr_db: int = 20,
    seed: int = 0,
    complete: bool = True,
) -> Path:
    """Write a feature file of ``len(folds) * clips_per_fold`` clips and return its path.

    Args:
        path: destination ``.h5`` (written atomically).
        clips_per_fold: clips in each fold.
        folds: folds present (statistics are written for each).
        time_steps, mel_bins, num_classes: T, F, K.
        events_per_clip: distinct classes per clip.
        signal: height of an event's bump in log-mel units (noise std is 1).
        snr_db: stored in the ``snr_db`` attribute.
        seed: random seed.
        complete: write the ``complete`` attribute (False imitates an interrupted write).
    """
    rng = np.random.default_rng(seed)
    n = clips_per_fold * len(folds)
    features = rng.normal(-5.0, 1.0, size=(n, time_steps, mel_bins)).astype(np.float32)
    weak = np.zeros((n, num_classes), np.uint8)
    strong = np.zeros((n, time_steps, num_classes), np.uint8)
    segment = time_steps // events_per_clip
    for i in range(n):
        labels = rng.choice(num_classes, size=events_per_clip, replace=False)
        for j, k in enumerate(labels):
            t0, t1 = j * segment, j * segment + segment // 2
            f0 = int(k) * mel_bins // num_classes
            features[i, t0:t1, f0 : f0 + 3] += signal
            weak[i, k] = 1
            strong[i, t0:t1, k] = 1
    fold_ids = np.repeat(np.asarray(folds, np.int8), clips_per_fold)
    path = Path(path)
    with atomic.atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle["features"] = features
        handle["clip_names"] = np.array([f"mix{i:05d}" for i in range(n)], dtype=object).astype(
            h5py.string_dtype("utf-8")
        )
        handle["folds"] = fold_ids
        handle["weak_targets"] = weak
        handle["strong_targets"] = strong
        for k in folds:
            train = features[fold_ids != k].reshape(-1, mel_bins)
            handle[f"stats/fold{k}/mean"] = train.mean(axis=0).astype(np.float32)
            handle[f"stats/fold{k}/std"] = train.std(axis=0).astype(np.float32)
        attrs = {
            "snr_db": snr_db,
            "classes": list(CLASSES[:num_classes]) if num_classes <= len(CLASSES) else [],
            "sample_rate": SAMPLE_RATE,
            "n_fft": N_FFT,
            "hop_length": HOP,
            "n_mels": mel_bins,
            "fmin": FMIN,
            "fmax": FMAX,
            "plan_sha256": f"synthetic-{seed}-{n}",
            "paperlib_version": "synthetic",
        }
        handle.attrs.update(attrs)
        if complete:
            handle.attrs["complete"] = True
    return path


def write_tiny_profile(path: Path, *, name: str = "tiny", **train: object) -> Path:
    """Write a profile YAML for tests: a tiny model, CPU, few epochs (``train`` overrides)."""
    settings = {"epochs": 3, "batch_size": 8, "device": "cpu", "seed": 0, **train}
    profile = {
        "name": name,
        "description": "test profile",
        "data": {"source": "pocket", "snrs": [20]},
        "model": {"width": 0.0625},
        "train": settings,
        "grid": {"models": ["GMP", "2APAE"], "snrs": [20], "folds": [1], "alphas": [0.0, 0.001]},
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path
