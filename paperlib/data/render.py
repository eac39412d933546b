"""Rendering the plan at any set of SNRs: 32 kHz mono, RMS scaling, peak normalisation.

For each mixture (paper Section IV-A, Kong et al. 2019):

* background: first 10 s, channels averaged, resampled to 32 kHz, scaled to RMS 1;
* each event: the whole source file, channels averaged, resampled to 32 kHz, scaled to RMS
  ``10 ** (snr / 20)`` over the **whole file**, and only then cut to its first
  ``offset_s - onset_s`` seconds (<= 2 s) and placed at ``onset_s`` in a silent 10-s event
  track (Kong's ``create_mixed_audio.py`` normalises the full clip, then truncates; so an
  event whose loud part lies after its first 2 s enters the mixture below the nominal SNR);
* both tracks are divided by the largest absolute sample of the pair; the mixture is their mean.

Outputs, per SNR folder ``paths.mixtures_dir(ws, snr)``: ``<name>.wav`` (mixture),
``<name>.events.wav`` and ``<name>.background.wav`` (the two scaled tracks), all 32 kHz mono
32-bit float. One task renders every SNR of a mixture, so each source file is decoded and
resampled once, not once per SNR. Files are written under a temporary name and renamed, so a
file that exists is complete; a rerun after an interruption renders only the missing ones.
A small stamp (:data:`STAMP_NAME`) in each folder records a key per mixture
(:func:`mixture_keys`: its plan rows, the content hashes of its background and events, the
render settings): before rendering, the WAVs of every mixture whose key changed (or that left
the plan) are removed, so a changed plan row or a source file replaced under the same name
re-renders exactly the mixtures that use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from paperlib import atomic
from paperlib.data.audio import (
    CLIP_SAMPLES,
    CLIP_SECONDS,
    SAMPLE_RATE,
    SILENCE_RMS,
    ensure_writable_dir,
    load_mono,
    rms,
    wav_info,
    write_wav_atomic,
)
from paperlib.data.errors import AudioFormatError, SilentAudioError
from paperlib.data.parallel import imap
from paperlib.data.plan import read_plan

TRACKS: tuple[str, ...] = ("mixture", "events", "background")
STAMP_NAME = "render.json"
RENDER_VERSION = 2
"""Bumped when the rendering arithmetic changes (part of the folder stamp and of the data
pipeline's render cache key, so a workspace rendered by an older version is rendered again).
2: event levels over the whole source file (1: over the cut samples)."""


def track_path(folder: Path, mixture: str, track: str = "mixture") -> Path:
    """``<folder>/<mixture>.wav`` for the mixture, ``<mixture>.<track>.wav`` for a track."""
    return Path(folder) / (f"{mixture}.wav" if track == "mixture" else f"{mixture}.{track}.wav")


def is_complete(path: Path) -> bool:
    """True when ``path`` is a readable 10-s 32 kHz mono WAV (not missing, not truncated)."""
    try:
        if path.stat().st_size < CLIP_SAMPLES * 4:
            return False
        info = sf.info(str(path))
    except (OSError, RuntimeError):
        return False
    return info.frames == CLIP_SAMPLES and info.samplerate == SAMPLE_RATE and info.channels == 1


def mix_tracks(
    background: np.ndarray, events: Sequence[tuple[np.ndarray, int]], snr_db: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The recipe's arithmetic for one SNR.

    Args:
        background: (320000,) background at 32 kHz (any level, RMS > 0).
        events: ``(samples (m,), start_sample, source_rms)`` per event: the samples cut
            already, and the RMS (> 0) of the event's whole source file at 32 kHz mono, which
            the level refers to. Each event is multiplied by ``10 ** (snr / 20) / source_rms``.
        snr_db: event level relative to the background RMS, dB (over each whole source file).

    Returns:
        ``(mixture, events_track, background_track)``, each (320000,) float32, where both
        tracks share one peak normalisation and ``mixture = (events_track + background_track) / 2``.
    """
    background = np.asarray(background, dtype=np.float64)
    bg_track = background / rms(background)
    ev_track = np.zeros_like(bg_track)
    gain = 10.0 ** (snr_db / 20.0)
    for samples, start, source_rms in events:
        samples = np.asarray(samples, dtype=np.float64)
        end = min(start + samples.size, ev_track.size)  # an event ending at 10 s: rounding
        ev_track[start:end] += samples[: end - start] * (gain / source_rms)
    peak = max(np.abs(ev_track).max(), np.abs(bg_track).max())
    ev_track, bg_track = ev_track / peak, bg_track / peak
    mixture = (ev_track + bg_track) / 2
    return mixture.astype(np.float32), ev_track.astype(np.float32), bg_track.astype(np.float32)


@dataclass(frozen=True)
class MixtureTask:
    """Everything one worker needs to render one mixture at every SNR."""

    name: str
    background: str
    events: tuple[tuple[str, float, float], ...]
    """(source path, onset_s, offset_s) per event."""
    out_dirs: tuple[tuple[int, str], ...]
    """(snr_db, folder) pairs."""


def load_background(path: Path) -> np.ndarray:
    """First 10 s of a background, mono 32 kHz: (320000,) float32.

    Raises:
        AudioFormatError: unreadable or shorter than 10 s.  SilentAudioError: RMS < 1e-5.
    """
    info = wav_info(path)
    if info.frames < CLIP_SECONDS * info.samplerate:
        raise AudioFormatError(
            f"{path}: background is {info.frames / info.samplerate:.3f} s long, "
            f"expected at least {CLIP_SECONDS:g} s"
        )
    audio = load_mono(path, max_seconds=CLIP_SECONDS)
    if audio.size < CLIP_SAMPLES:  # resampler rounding: at most a sample or two
        audio = np.pad(audio, (0, CLIP_SAMPLES - audio.size))
    level = rms(audio)
    if level < SILENCE_RMS:
        raise SilentAudioError(
            f"{path}: background is silent (RMS {level:.2e} over 10 s); "
            f"expected RMS >= {SILENCE_RMS:g}"
        )
    return audio


def load_event_source(path: Path, *, mixture: str = "") -> np.ndarray:
    """A whole event clip, mono 32 kHz: (n,) float32 (its level is measured over all of it).

    Raises:
        AudioFormatError: unreadable.  SilentAudioError: the whole clip has RMS < 1e-5.
    """
    audio = load_mono(path)
    level = rms(audio)
    if level < SILENCE_RMS:
        where = f" (used by mixture {mixture})" if mixture else ""
        raise SilentAudioError(
            f"{path}: this event is silent (RMS {level:.2e} over the whole "
            f"{audio.size / SAMPLE_RATE:.3f} s clip){where}; expected RMS >= {SILENCE_RMS:g}"
        )
    return audio


def cut_event(audio: np.ndarray, seconds: float) -> np.ndarray:
    """The first ``seconds`` of a 32-kHz clip: (round(seconds * 32000),), zero-padded if short."""
    n = round(seconds * SAMPLE_RATE)
    cut = np.asarray(audio[:n], dtype=np.float32)
    return np.pad(cut, (0, n - cut.size)) if cut.size < n else cut


def load_event(path: Path, seconds: float, *, mixture: str = "") -> np.ndarray:
    """First ``seconds`` of an event clip, mono 32 kHz: (round(seconds * 32000),) float32.

    The samples as decoded (not scaled); the whole clip is decoded and checked for silence.

    Raises:
        AudioFormatError: unreadable.  SilentAudioError: the whole clip has RMS < 1e-5.
    """
    return cut_event(load_event_source(path, mixture=mixture), seconds)


def render_mixture(task: MixtureTask) -> int:
    """Render one mixture at every SNR of ``task`` whose three files are not complete yet.

    Returns the number of SNRs rendered (0 when everything already existed).
    """
    todo = [
        (snr, Path(folder))
        for snr, folder in task.out_dirs
        if not all(is_complete(track_path(Path(folder), task.name, t)) for t in TRACKS)
    ]
    if not todo:
        return 0
    background = load_background(Path(task.background))
    sources: dict[str, tuple[np.ndarray, float]] = {}  # path -> (whole clip, its RMS)
    events = []
    for source, onset, offset in task.events:
        if source not in sources:
            whole = load_event_source(Path(source), mixture=task.name)
            sources[source] = (whole, rms(whole))
        whole, level = sources[source]
        events.append((cut_event(whole, offset - onset), round(onset * SAMPLE_RATE), level))
    for snr, folder in todo:
        outputs = mix_tracks(background, events, snr)
        for track, audio in zip(TRACKS, outputs, strict=True):
            write_wav_atomic(
                track_path(folder, task.name, track), audio, SAMPLE_RATE, subtype="FLOAT"
            )
    return len(todo)


def make_tasks(
    plan: pd.DataFrame, *, fsd_dir: Path, tau_dir: Path, out_dirs: Mapping[int, Path]
) -> list[MixtureTask]:
    """One :class:`MixtureTask` per mixture of ``plan`` (plan order)."""
    folders = tuple((int(snr), str(folder)) for snr, folder in out_dirs.items())
    tasks = []
    for name, rows in plan.groupby("mixture", sort=False):
        events = tuple(
            (str(Path(fsd_dir) / r.source), float(r.onset_s), float(r.offset_s))
            for r in rows.itertuples()
        )
        tasks.append(
            MixtureTask(str(name), str(Path(tau_dir) / rows["background"].iloc[0]), events, folders)
        )
    return tasks


def mixture_keys(
    plan: pd.DataFrame,
    *,
    event_hashes: Mapping[str, str] | None = None,
    background_hashes: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The key of every mixture of ``plan``: what its three WAVs depend on.

    A SHA-256 over the mixture's plan rows (background, events, onsets, offsets), the content
    hashes of its background and events (``event_hashes``: plan ``source`` -> SHA-256;
    ``background_hashes``: plan ``background`` -> SHA-256; a source missing from them counts
    as unknown content), :data:`RENDER_VERSION` and ``settings`` (anything else the rendering
    depends on, e.g. the SNR). Returns ``{mixture: hex key}`` in plan order.
    """
    events, backgrounds = event_hashes or {}, background_hashes or {}
    common = json.dumps({"version": RENDER_VERSION, "settings": dict(settings or {})},
                        sort_keys=True, default=str)  # fmt: skip
    rows = (
        plan["background"].map(lambda b: f"{b}#{backgrounds.get(b, '')}")
        + "|" + plan["source"].map(lambda e: f"{e}#{events.get(e, '')}")
        + "|" + plan["fold"].astype(str) + "|" + plan["label"]
        + "|" + plan["onset_s"].map("{:.6f}".format) + "|" + plan["offset_s"].map("{:.6f}".format)
    )  # fmt: skip
    joined = rows.groupby(plan["mixture"], sort=False).agg("\n".join)
    return {
        str(name): hashlib.sha256(f"{common}\n{text}".encode()).hexdigest()[:20]
        for name, text in joined.items()
    }


def _stamp(folder: Path) -> dict[str, str]:
    try:
        stored = json.loads((folder / STAMP_NAME).read_text())
        return dict(stored["mixtures"]) if stored.get("render_version") == RENDER_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _prepare_folder(folder: Path, keys: Mapping[str, str]) -> int:
    """Remove the WAVs of mixtures whose key changed or that left the plan, then stamp the
    folder with ``keys``; returns how many mixtures lack a file there (to be rendered; the
    workers also redo files that exist but are truncated)."""
    ensure_writable_dir(folder)
    atomic.clean_orphans(folder)  # temporaries of a render that was killed
    old = _stamp(folder)
    stale = {name for name, key in keys.items() if old.get(name) != key}
    for entry in os.scandir(folder):
        if entry.name.endswith(".wav"):
            name = entry.name.split(".", 1)[0]
            if name not in keys or name in stale:
                os.unlink(entry.path)
    if old != dict(keys):
        atomic.write_json(folder / STAMP_NAME, {"render_version": RENDER_VERSION,
                                                "mixtures": dict(keys)})  # fmt: skip
    present = {entry.name for entry in os.scandir(folder)}
    return sum(
        not all(track_path(folder, name, t).name in present for t in TRACKS) for name in keys
    )


BYTES_PER_TRACK = CLIP_SAMPLES * 4 + 80
"""Size of one rendered 10-s 32-bit float WAV (samples plus header)."""


def render_plan(
    plan_path: Path,
    *,
    fsd_dir: Path,
    tau_dir: Path,
    out_dirs: Mapping[int, Path],
    workers: int = 0,
    progress: bool = True,
    event_hashes: Mapping[str, str] | None = None,
    background_hashes: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Render every mixture of the plan at every SNR in ``out_dirs`` (snr_db -> folder).

    Parallel over mixtures (``workers`` processes, 0 = one per core) with a progress bar;
    resumable (complete files are kept). Each folder is first brought in line with the
    mixture keys (:func:`mixture_keys` with the content hashes given here, which the data
    pipeline takes from its source check, and the SNR): stale WAVs are removed. The free space
    for the WAVs still to write is checked before any is written. Returns ``{"mixtures": N,
    "rendered": n_snr_renders, "skipped": n_mixtures_already_done}``.

    Raises:
        OutputFolderError: an output folder that cannot be written (checked before any work).
        DiskFullError: not enough free space for the WAVs to write (or the disk filled up).
        AudioFormatError / SilentAudioError / MissingSourceError: bad source audio, naming it.
    """
    plan = read_plan(plan_path)
    for folder in out_dirs.values():
        ensure_writable_dir(Path(folder))
    todo: dict[int, int] = {}
    for snr, folder in out_dirs.items():
        keys = mixture_keys(
            plan,
            event_hashes=event_hashes,
            background_hashes=background_hashes,
            settings={**dict(settings or {}), "snr_db": int(snr)},
        )
        todo[int(snr)] = _prepare_folder(Path(folder), keys)
    by_device: dict[int, tuple[Path, int]] = {}
    for snr, folder in out_dirs.items():
        device = os.stat(folder).st_dev
        first, need = by_device.get(device, (Path(folder), 0))
        by_device[device] = (first, need + todo[int(snr)] * len(TRACKS) * BYTES_PER_TRACK)
    for folder, need in by_device.values():
        atomic.require_free_space(folder, need, what=f"rendering {sum(todo.values())} mixture(s)")
    tasks = make_tasks(plan, fsd_dir=fsd_dir, tau_dir=tau_dir, out_dirs=out_dirs)
    rendered = skipped = 0
    for count in imap(
        render_mixture,
        tasks,
        workers=workers,
        ordered=False,
        desc=f"render {sorted(out_dirs)} dB",
        unit="mix",
        progress=progress,
    ):
        rendered += count
        skipped += count == 0
    return {"mixtures": len(tasks), "rendered": rendered, "skipped": skipped}
