"""Log-mel features (paper Section IV-C) and the per-SNR HDF5 feature file.

Feature: 32 kHz audio, periodic Hamming window of 2,048 samples, hop 1,024, no centring or
padding, magnitude spectrum (not power), 64-band Slaney mel filterbank from 50 Hz to 16 kHz
(``librosa.filters.mel`` defaults), natural log of ``mel + 1e-8``. A 10-s clip gives exactly
:data:`N_FRAMES` = 311 frames: ``logmel(audio)`` is (311, 64).

Compared with the authors' code (``scipy.signal.spectrogram`` with ``np.hamming`` and density
scaling) only a constant gain differs (the symmetric window differs by one sample), i.e. a
constant shift of the log-mel per bin, which the per-bin standardisation removes.

Strong targets: frame ``t`` covers samples ``t * 1024 .. t * 1024 + 2047``; it is active for an
event when its centre time ``(t * 1024 + 1024) / 32000`` s lies in ``[onset_s, offset_s)``.

File layout (one file per SNR, ``paths.feature_file(ws, snr)``)::

    features        float32 (N, 311, 64)  raw log-mel (not standardised)
    clip_names      utf-8   (N,)          mixture names, plan order
    folds           int8    (N,)          1..4
    weak_targets    uint8   (N, 41)       clip-level labels
    strong_targets  uint8   (N, 311, 41)  frame-level labels
    stats/fold{k}/mean, stats/fold{k}/std   float32 (64,): over every frame of the clips
                                          NOT in fold k (population std, ddof 0)
    attrs: snr_db, classes, sample_rate, n_fft, hop_length, n_mels, fmin, fmax, plan_sha256,
           paperlib_version, complete (True, written last)

The file is written streamed (chunks of clips into pre-sized datasets, per-fold sums and sums
of squares accumulated on the way), under a temporary name renamed into place at the end
(:mod:`paperlib.atomic`); the free space it needs is checked first, and a temporary left by a
killed earlier write is removed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.fft
import scipy.sparse
from scipy.signal import get_window

from paperlib import __version__, atomic
from paperlib.data.audio import CLIP_SAMPLES, SAMPLE_RATE, ensure_writable_dir, read_wav
from paperlib.data.classes import CLASS_INDEX, CLASSES, NUM_CLASSES
from paperlib.data.errors import AudioFormatError, MissingSourceError
from paperlib.data.parallel import imap
from paperlib.data.plan import NUM_FOLDS, mixtures, plan_sha256, read_plan
from paperlib.data.render import (
    background_track,
    is_rendered,
    read_tracks,
    track_path,
    tracks_dir,
)

N_FFT = 2048
HOP = 1024
N_MELS = 64
FMIN = 50.0
FMAX = 16_000.0
LOG_OFFSET = 1e-8
N_FRAMES = 1 + (CLIP_SAMPLES - N_FFT) // HOP
"""Frames of a 10-s clip: 311."""
CHUNK_CLIPS = 32
"""Clips per write to the HDF5 file (bounds memory: ~2.5 MB of features per chunk)."""
BYTES_PER_CLIP = N_FRAMES * N_MELS * 4 + N_FRAMES * NUM_CLASSES + NUM_CLASSES + 64
"""Upper bound of one clip's bytes in the feature file (strong targets counted uncompressed)."""


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default, ``htk=False``): linear below 1 kHz, log above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(
        mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * 200.0 / 3
    )


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, 64 bands 50 Hz-16 kHz: (64, 1025) float64.

    The same filters as ``librosa.filters.mel(sr=32000, n_fft=2048, n_mels=64, fmin=50,
    fmax=16000)`` (tested against it), computed in numpy: librosa's first call costs seconds
    of lazy imports in every worker process.
    """
    fft_hz = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    edges = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


@lru_cache(maxsize=1)
def window() -> np.ndarray:
    """Periodic Hamming window of 2,048 samples (as ``librosa.stft(window="hamming")``)."""
    return get_window("hamming", N_FFT, fftbins=True)


def logmel(audio: np.ndarray) -> np.ndarray:
    """Log-mel of a 32 kHz mono signal: (n,) -> (1 + (n - 2048) // 1024, 64) float32.

    A 10-s clip (320,000 samples) gives (311, 64).
    """
    audio = np.asarray(audio, dtype=np.float32)  # float32 FFT: within 1e-6 of float64 in log units
    if audio.ndim != 1 or audio.size < N_FFT:
        raise ValueError(
            f"audio of shape {audio.shape}: expected a mono signal of >= {N_FFT} samples"
        )
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::HOP]
    magnitude = np.abs(scipy.fft.rfft(frames * _window32(), axis=1))
    mel = np.asarray((_mel_basis32() @ magnitude.T).T)  # sparse filterbank: no BLAS threads
    return np.log(mel + np.float32(LOG_OFFSET))


@lru_cache(maxsize=1)
def _window32() -> np.ndarray:
    return window().astype(np.float32)


@lru_cache(maxsize=1)
def _mel_basis32() -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(mel_basis().astype(np.float32))


def logmel_to_audio(features: np.ndarray, *, n_iter: int = 32) -> np.ndarray:
    """Approximate audio from a log-mel (T, 64) by Griffin-Lim (for listening): (n,) float32.

    Inverts :func:`logmel` with ``librosa.feature.inverse.mel_to_audio`` and the same
    parameters (magnitude, periodic Hamming 2048/1024, no centring, Slaney mel 50 Hz-16 kHz).
    """
    import librosa  # only here: listening helpers need it, feature extraction does not

    mel = np.maximum(np.exp(np.asarray(features, dtype=np.float64)) - LOG_OFFSET, 0.0).T
    audio = librosa.feature.inverse.mel_to_audio(
        mel,
        sr=SAMPLE_RATE,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window="hamming",
        center=False,
        power=1.0,
        n_iter=n_iter,
        fmin=FMIN,
        fmax=FMAX,
    )
    return audio.astype(np.float32)


def frame_centres_s(n_frames: int | None = None, time_pool: int = 1) -> np.ndarray:
    """Centre time in seconds of each (model) frame: (n_frames,).

    With ``time_pool = 1`` frame ``t`` is a feature frame, centred at ``(t * 1024 + 1024) /
    32000`` s. A model that averages groups of ``time_pool`` feature frames
    (``paperlib.run.features.pool_input``) has frame ``t`` centred at the mean of its group's
    centres, ``((t * p + (p - 1) / 2) * 1024 + 1024) / 32000``. ``n_frames`` defaults to the
    frames of a 10-s clip at that pooling, ``311 // time_pool``. This is the one place that maps
    frames to seconds.
    """
    if time_pool < 1:
        raise ValueError(f"time_pool must be >= 1, got {time_pool!r}")
    count = N_FRAMES // time_pool if n_frames is None else n_frames
    first_input_frame = np.arange(count) * time_pool + (time_pool - 1) / 2
    return (first_input_frame * HOP + N_FFT / 2) / SAMPLE_RATE


def time_pool_for(n_frames: int) -> int:
    """The ``time_pool`` whose pooled 10-s clip has ``n_frames`` frames (311 -> 1, 155 -> 2).

    Raises:
        ValueError: no pooling of the 311 feature frames gives ``n_frames``.
    """
    for pool in range(1, N_FRAMES + 1):
        if N_FRAMES // pool == n_frames:
            return pool
    raise ValueError(
        f"{n_frames} frames is not 311 // p for any pooling p: expected the frames of a 10-s clip"
    )


def weak_targets(labels: list[str]) -> np.ndarray:
    """Multi-hot clip labels: (41,) uint8."""
    target = np.zeros(NUM_CLASSES, dtype=np.uint8)
    target[[CLASS_INDEX[label] for label in labels]] = 1
    return target


def strong_targets(
    events: pd.DataFrame, n_frames: int | None = None, *, time_pool: int = 1
) -> np.ndarray:
    """Frame labels from plan rows (``label``, ``onset_s``, ``offset_s``): (T, 41) uint8.

    Frame ``t`` is active when its centre time (:func:`frame_centres_s`) lies in
    ``[onset_s, offset_s)``. ``n_frames`` and ``time_pool`` are those of
    :func:`frame_centres_s` (default: the 311 feature frames); a model that pools time gets
    its labels with its own ``time_pool``.
    """
    centres = frame_centres_s(n_frames, time_pool)
    target = np.zeros((centres.size, NUM_CLASSES), dtype=np.uint8)
    for label, onset, offset in zip(
        events["label"], events["onset_s"], events["offset_s"], strict=True
    ):
        target[(centres >= onset) & (centres < offset), CLASS_INDEX[label]] = 1
    return target


def clip_logmel(path: str) -> np.ndarray:
    """Log-mel of one rendered 10-s mixture WAV: (311, 64) float32 (checks rate and length)."""
    audio, rate = read_wav(Path(path))
    if rate != SAMPLE_RATE or audio.shape != (CLIP_SAMPLES, 1):
        raise AudioFormatError(
            f"{path}: {audio.shape[1]} channel(s), {audio.shape[0]} samples at "
            f"{rate} Hz; expected 1 channel, {CLIP_SAMPLES} samples at {SAMPLE_RATE} Hz"
        )
    return logmel(audio[:, 0])


def mixture_logmel(item: tuple[str, str]) -> np.ndarray:
    """Log-mel (311, 64) of mixture ``name`` in the SNR folder ``folder``: ``(folder, name)``
    (:func:`paperlib.data.render.read_tracks`)."""
    folder, name = item
    return logmel(read_tracks(Path(folder), name)[0])


def is_complete_feature_file(path: Path, *, plan_sha: str | None = None) -> bool:
    """True when ``path`` is a finished feature file (``complete`` attr) of plan ``plan_sha``."""
    try:
        with h5py.File(path, "r") as f:
            done = bool(f.attrs.get("complete", False))
            return done and (plan_sha is None or f.attrs.get("plan_sha256") == plan_sha)
    except (OSError, KeyError):
        return False


def write_features(
    plan_path: Path,
    mixtures_dir: Path,
    out_path: Path,
    *,
    snr_db: int,
    workers: int = 0,
    progress: bool = True,
) -> Path:
    """Compute log-mels of every mixture of the plan and write the HDF5 file (layout above).

    Streamed: ``CHUNK_CLIPS`` clips at a time go into pre-sized chunked datasets while per-fold
    sums and sums of squares accumulate; memory stays bounded at any corpus size. Parallel
    over clips (``workers`` processes, 0 = one per core), in plan order.

    Raises:
        MissingSourceError: a mixture WAV is missing (render first).
        AudioFormatError: a mixture WAV that is not 10 s of 32 kHz mono.
        OutputFolderError: the output folder cannot be written.
    """
    plan = read_plan(plan_path)
    clips = mixtures(plan)
    folder = Path(mixtures_dir)
    if not is_rendered(folder, []):
        raise MissingSourceError(f"{folder}: no rendered mixtures there (run the render step)")
    tracks = tracks_dir(folder)
    files = [
        (track_path(tracks, name, "events"), background_track(tracks, name))
        for name in clips["mixture"]
    ]
    missing = [str(path) for pair in files for path in pair if not path.is_file()]
    if missing:
        raise MissingSourceError(
            f"{len(missing)} rendered track(s) missing, e.g. {missing[0]}; "
            "expected every mixture of the plan (run the render step)"
        )
    paths = [(str(folder), str(name)) for name in clips["mixture"]]
    out_path = Path(out_path)
    ensure_writable_dir(out_path.parent)
    atomic.clean_orphans(out_path.parent)  # the temporary file of a killed earlier write
    n = len(clips)
    atomic.require_free_space(
        out_path.parent, n * BYTES_PER_CLIP + (1 << 20), what=f"the features of {n} clip(s)"
    )
    folds = clips["fold"].to_numpy(dtype=np.int8)
    groups = {name: rows for name, rows in plan.groupby("mixture", sort=False)}
    sums = np.zeros((NUM_FOLDS + 1, N_MELS))
    squares = np.zeros((NUM_FOLDS + 1, N_MELS))
    frames = np.zeros(NUM_FOLDS + 1)
    _mel_basis32(), _window32()  # computed once here, inherited by forked workers
    results = imap(
        mixture_logmel, paths, workers=workers, desc=f"features {snr_db} dB", progress=progress
    )
    try:
        with atomic.atomic_path(out_path) as tmp, h5py.File(tmp, "w") as f:
            chunk = min(CHUNK_CLIPS, n)
            feats = f.create_dataset(
                "features", (n, N_FRAMES, N_MELS), np.float32, chunks=(chunk, N_FRAMES, N_MELS)
            )
            f.create_dataset(
                "clip_names", data=clips["mixture"].tolist(), dtype=h5py.string_dtype("utf-8")
            )
            f.create_dataset("folds", data=folds)
            weak = f.create_dataset("weak_targets", (n, NUM_CLASSES), np.uint8)
            strong = f.create_dataset(
                "strong_targets",
                (n, N_FRAMES, NUM_CLASSES),
                np.uint8,
                chunks=(chunk, N_FRAMES, NUM_CLASSES),
                compression="lzf",
            )
            buffer: list[np.ndarray] = []
            for i, feature in enumerate(results):
                fold = int(folds[i])
                values = feature.astype(np.float64)
                sums[fold] += values.sum(axis=0)
                squares[fold] += (values * values).sum(axis=0)
                frames[fold] += values.shape[0]
                buffer.append(feature)
                if len(buffer) == chunk or i == n - 1:
                    start = i + 1 - len(buffer)
                    names = clips["mixture"].iloc[start : i + 1]
                    feats[start : i + 1] = np.stack(buffer)
                    weak[start : i + 1] = np.stack(
                        [weak_targets(groups[m]["label"].tolist()) for m in names]
                    )
                    strong[start : i + 1] = np.stack([strong_targets(groups[m]) for m in names])
                    buffer = []
            for k in sorted(set(folds.tolist())):
                others = [j for j in range(1, NUM_FOLDS + 1) if j != k]
                count = frames[others].sum()
                if count == 0:
                    continue  # a single-fold file has no training folds for its only fold
                mean = sums[others].sum(axis=0) / count
                var = np.maximum(squares[others].sum(axis=0) / count - mean**2, 0.0)
                f.create_dataset(f"stats/fold{k}/mean", data=mean.astype(np.float32))
                f.create_dataset(f"stats/fold{k}/std", data=np.sqrt(var).astype(np.float32))
            f.attrs.update(
                {
                    "snr_db": int(snr_db),
                    "classes": list(CLASSES),
                    "sample_rate": SAMPLE_RATE,
                    "n_fft": N_FFT,
                    "hop_length": HOP,
                    "n_mels": N_MELS,
                    "fmin": FMIN,
                    "fmax": FMAX,
                    "plan_sha256": plan_sha256(plan_path),
                    "paperlib_version": __version__,
                }
            )
            f.attrs["complete"] = True
    finally:
        results.close()
    return out_path
