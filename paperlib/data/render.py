"""Rendering the plan at any set of SNRs: 32 kHz mono, RMS scaling, peak normalisation.

For each mixture (paper Section IV-A, Kong et al. 2019):

* background: first 10 s, channels averaged, resampled to 32 kHz, scaled to RMS 1;
* each event: the whole source file, channels averaged, resampled to 32 kHz, scaled to RMS
  ``10 ** (snr / 20)`` over the **whole file**, and only then cut to its first
  ``offset_s - onset_s`` seconds (<= 2 s) and placed at ``onset_s`` in a silent 10-s event
  track (Kong's ``create_mixed_audio.py`` normalises the full clip, then truncates; so an
  event whose loud part lies after its first 2 s enters the mixture below the nominal SNR);
* both tracks are divided by the largest absolute sample of the pair; the mixture is their mean.

Only the SNR changes between the SNR folders, so a mixture is stored **once, for every SNR**
(:func:`unit_tracks` / :func:`scale_tracks`): the event track at unit gain (each event at
``1 / source_rms``) and the background at RMS 1, each divided by its own peak and written as
16-bit FLAC (``<name>.events.flac``, ``<name>.background.flac``, the peak in the file's comment)
in the recipe's tracks folder (:func:`tracks_dir`: ``tracks/`` beside the SNR folders); the data
pipeline keeps the background tracks in one folder that every onset recipe shares
(``render_plan(backgrounds_dir=...)``: the recipes' mixtures use the same backgrounds), the
tracks folder's stamp saying which file is whose. An SNR
folder ``paths.mixtures_dir(ws, snr)`` holds only its stamp (:data:`STAMP_NAME`: the SNR and
the mixture keys); :func:`read_tracks` gives a mixture's ``(mixture, events, background)`` at
the folder's SNR, as :func:`mix_tracks` would (up to the 16-bit rounding of the stored
tracks, at most 1.5e-5 of each track's peak). That is 1.5 % of the float32 WAVs of three tracks
at three SNRs.

Files are written under a temporary name and renamed, so a file that exists is complete; a
rerun after an interruption renders only the missing ones. The tracks folder's stamp records a
key per mixture (:func:`mixture_keys`: its plan rows, the content hashes of its background and
events, the render settings): before rendering, the tracks of every mixture whose key changed
(or that left the plan) are removed, so a changed plan row or a source file replaced under the
same name re-renders exactly the mixtures that use it. WAVs of the earlier layout (three
float32 WAVs per mixture and SNR) are removed from the SNR folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
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
)
from paperlib.data.errors import AudioFormatError, MissingSourceError, SilentAudioError
from paperlib.data.parallel import imap
from paperlib.data.plan import read_plan

TRACKS: tuple[str, ...] = ("events", "background")
"""The stored tracks of a mixture (the mixture itself is their scaled mean)."""
TRACKS_DIR = "tracks"
STAMP_NAME = "render.json"
TRACK_FORMAT, TRACK_SUBTYPE = "FLAC", "PCM_16"
FULL_SCALE = 32767
"""A stored track's peak in 16-bit codes (each sample within half a code of the exact one)."""
RENDER_VERSION = 3
"""Bumped when the rendering arithmetic changes (part of the folder stamp and of the data
pipeline's render cache key, so a workspace rendered by an older version is rendered again).
2: event levels over the whole source file (1: over the cut samples). 3: one pair of 16-bit
FLAC tracks per mixture for every SNR (2: three float32 WAVs per mixture and SNR)."""


def tracks_dir(mixtures_dir: Path) -> Path:
    """The folder of the stored tracks that the SNR folder ``mixtures_dir`` reads."""
    return Path(mixtures_dir).parent / TRACKS_DIR


def track_path(folder: Path, mixture: str, track: str = "events") -> Path:
    """``<folder>/<mixture>.<track>.flac`` (``folder``: a :func:`tracks_dir`)."""
    if track not in TRACKS:
        raise ValueError(f"track={track!r}: expected one of {list(TRACKS)}")
    return Path(folder) / f"{mixture}.{track}.flac"


def _peak_of(comment: str) -> float:
    if not comment.startswith("peak="):
        raise ValueError(f"comment {comment!r}: expected 'peak=<number>'")
    return float(comment[5:])


def is_complete(path: Path) -> bool:
    """True when ``path`` is a readable stored track: 10 s of 32 kHz mono with its peak
    (decoded to the end: a FLAC header states its length even when the file is truncated)."""
    try:
        with sf.SoundFile(str(path)) as f:
            ok = f.frames == CLIP_SAMPLES and f.samplerate == SAMPLE_RATE and f.channels == 1
            return ok and _peak_of(f.comment) >= 0 and f.read(dtype="int16").size == CLIP_SAMPLES
    except (OSError, RuntimeError, ValueError):
        return False


def write_track(path: Path, unit: np.ndarray) -> Path:
    """Store a unit-gain track (320000,) as 16-bit FLAC codes ``round(unit / peak * 32767)``,
    the peak in the comment (atomically: a file that exists is complete)."""
    unit = np.asarray(unit, dtype=np.float64)
    peak = float(np.abs(unit).max())
    codes = np.round(unit * (FULL_SCALE / peak) if peak > 0 else unit).astype(np.int16)
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", SAMPLE_RATE, 1, TRACK_SUBTYPE, format=TRACK_FORMAT) as f:
            f.comment = f"peak={peak!r}"
            f.write(codes)  # integers: no scaling by libsndfile either way
    return path


def read_track(path: Path) -> np.ndarray:
    """A stored track at unit gain: (320000,) float64 (the FLAC samples times their peak).

    Raises:
        MissingSourceError: no such file (render first).  AudioFormatError: not a stored track.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingSourceError(
            f"{path}: rendered track not found (run `python -m paperlib data render`)"
        )
    try:
        with sf.SoundFile(str(path)) as f:
            peak = _peak_of(f.comment)
            samples = f.read(dtype="int16")
    except (RuntimeError, ValueError) as error:
        raise AudioFormatError(f"{path}: not a rendered track ({error})") from error
    if samples.shape != (CLIP_SAMPLES,):
        raise AudioFormatError(f"{path}: {samples.shape} samples, expected ({CLIP_SAMPLES},) mono")
    return samples * (peak / FULL_SCALE)


def unit_tracks(
    background: np.ndarray, events: Sequence[tuple[np.ndarray, int, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """The SNR-free part of the recipe: ``(events at unit gain, background at RMS 1)``.

    Args: as :func:`mix_tracks` (without the SNR). Returns two (320000,) float64 arrays: each
    event times ``1 / source_rms`` placed at its start (cut at the clip's end), and the
    background divided by its RMS.
    """
    background = np.asarray(background, dtype=np.float64)
    bg_track = background / rms(background)
    ev_track = np.zeros_like(bg_track)
    for samples, start, source_rms in events:
        samples = np.asarray(samples, dtype=np.float64)
        end = min(start + samples.size, ev_track.size)  # an event ending at 10 s: rounding
        ev_track[start:end] += samples[: end - start] / source_rms
    return ev_track, bg_track


def scale_tracks(
    events_unit: np.ndarray, background_unit: np.ndarray, snr_db: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tracks at one SNR from :func:`unit_tracks`: ``(mixture, events, background)``,
    each (320000,) float32; events times ``10 ** (snr / 20)``, both divided by the largest
    absolute sample of the pair, mixture = their mean."""
    ev_track = np.asarray(events_unit, dtype=np.float64) * 10.0 ** (snr_db / 20.0)
    bg_track = np.asarray(background_unit, dtype=np.float64)
    peak = max(np.abs(ev_track).max(), np.abs(bg_track).max())
    ev_track, bg_track = ev_track / peak, bg_track / peak
    mixture = (ev_track + bg_track) / 2
    return mixture.astype(np.float32), ev_track.astype(np.float32), bg_track.astype(np.float32)


def read_tracks(mixtures_dir: Path, mixture: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mixture, events, background)`` of one mixture at the SNR of the folder
    ``mixtures_dir`` (``paths.mixtures_dir(ws, snr, onsets)``): three (320000,) float32.

    Raises:
        MissingSourceError: the folder was not rendered, or the mixture's tracks are missing.
    """
    folder = Path(mixtures_dir)
    try:
        snr = float(json.loads((folder / STAMP_NAME).read_text())["snr_db"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MissingSourceError(
            f"{folder}: no rendered mixtures there ({error}); run `python -m paperlib data render`"
        ) from error
    tracks = tracks_dir(folder)
    return scale_tracks(
        read_track(track_path(tracks, mixture, "events")),
        read_track(background_track(tracks, mixture)),
        snr,
    )


def mix_tracks(
    background: np.ndarray, events: Sequence[tuple[np.ndarray, int, float]], snr_db: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The recipe's arithmetic for one SNR (:func:`scale_tracks` of :func:`unit_tracks`).

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
    return scale_tracks(*unit_tracks(background, events), snr_db)


@dataclass(frozen=True)
class MixtureTask:
    """Everything one worker needs to render one mixture's tracks (for every SNR)."""

    name: str
    background: str
    events: tuple[tuple[str, float, float], ...]
    """(source path, onset_s, offset_s) per event."""
    tracks_dir: str
    """Folder of the stored tracks (:func:`tracks_dir`)."""
    background_track: str = ""
    """Where its background track goes (default: ``track_path(tracks_dir, name, "background")``)."""

    def track(self, track: str) -> Path:
        if track == "background" and self.background_track:
            return Path(self.background_track)
        return track_path(Path(self.tracks_dir), self.name, track)


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
    """Render one mixture's two tracks unless both are complete already.

    Returns 1 when it rendered, 0 when everything already existed.
    """
    todo = [t for t in TRACKS if not is_complete(task.track(t))]
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
    for track, unit in zip(TRACKS, unit_tracks(background, events), strict=True):
        if track in todo:  # a background shared with another recipe may be there already
            write_track(task.track(track), unit)
    return 1


def make_tasks(
    plan: pd.DataFrame,
    *,
    fsd_dir: Path,
    tau_dir: Path,
    tracks: Path,
    backgrounds: Mapping[str, Path] | None = None,
) -> list[MixtureTask]:
    """One :class:`MixtureTask` per mixture of ``plan`` (plan order); ``backgrounds``: the
    background track file of each mixture (default: in ``tracks``)."""
    backgrounds = backgrounds or {}
    tasks = []
    for name, rows in plan.groupby("mixture", sort=False):
        events = tuple(
            (str(Path(fsd_dir) / r.source), float(r.onset_s), float(r.offset_s))
            for r in rows.itertuples()
        )
        tasks.append(
            MixtureTask(
                str(name),
                str(Path(tau_dir) / rows["background"].iloc[0]),
                events,
                str(tracks),
                str(backgrounds.get(str(name), "")),
            )
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


def background_names(
    plan: pd.DataFrame,
    *,
    background_hashes: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The file name of each mixture's shared background track: ``<key>.flac``, a key of
    what it depends on (the background's path and content hash, :data:`RENDER_VERSION`, the
    settings), so two recipes whose mixtures use the same background share one file."""
    hashes = background_hashes or {}
    common = json.dumps({"version": RENDER_VERSION, "settings": dict(settings or {})},
                        sort_keys=True, default=str)  # fmt: skip
    out = {}
    for row in mixtures_of(plan).itertuples():
        text = f"{common}\n{row.background}#{hashes.get(row.background, '')}"
        out[str(row.mixture)] = hashlib.sha256(text.encode()).hexdigest()[:20] + ".flac"
    return out


def mixtures_of(plan: pd.DataFrame) -> pd.DataFrame:
    return plan.drop_duplicates("mixture")[["mixture", "background"]]


def background_track(tracks: Path, mixture: str) -> Path:
    """The background track of ``mixture`` whose events lie in the tracks folder ``tracks``:
    where the folder's stamp points (a shared file), else ``<mixture>.background.flac`` there."""
    shared = _stamp_backgrounds(Path(tracks)).get(mixture)
    return Path(tracks) / shared if shared else track_path(tracks, mixture, "background")


def _stamp_backgrounds(folder: Path) -> dict[str, str]:
    path = folder / STAMP_NAME
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _read_backgrounds(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_backgrounds(path: str, mtime_ns: int, size: int) -> dict[str, str]:
    try:
        stored = json.loads(Path(path).read_text())
        return dict(stored.get("backgrounds", {}))
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def clean_backgrounds(folder: Path, stamps: Sequence[Path]) -> int:
    """Remove the shared background tracks in ``folder`` that no tracks stamp of ``stamps``
    points to; returns how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    used = set()
    for stamp in stamps:
        for rel in _stamp_backgrounds(Path(stamp).parent).values():
            used.add((Path(stamp).parent / rel).resolve())
    removed = 0
    for entry in os.scandir(folder):
        if entry.name.endswith(".flac") and Path(entry.path).resolve() not in used:
            os.unlink(entry.path)
            removed += 1
    return removed


def _prepare_folder(
    folder: Path, keys: Mapping[str, str], backgrounds: Mapping[str, str] | None = None
) -> int:
    """Remove the tracks of mixtures whose key changed or that left the plan, then stamp the
    tracks folder with ``keys`` (and ``backgrounds``: mixture -> its shared background track,
    relative to ``folder``); returns how many mixtures lack a file (to be rendered; the
    workers also redo files that exist but are truncated)."""
    ensure_writable_dir(folder)
    atomic.clean_orphans(folder)  # temporaries of a render that was killed
    old = _stamp(folder)
    stale = {name for name, key in keys.items() if old.get(name) != key}
    for entry in os.scandir(folder):
        if entry.name.endswith(".flac"):
            name = entry.name.split(".", 1)[0]
            if name not in keys or name in stale:
                os.unlink(entry.path)
    stamp = {"render_version": RENDER_VERSION, "mixtures": dict(keys)}
    if backgrounds:
        stamp["backgrounds"] = dict(backgrounds)
    try:
        same = json.loads((folder / STAMP_NAME).read_text()) == stamp
    except (OSError, ValueError):
        same = False
    if not same:
        atomic.write_json(folder / STAMP_NAME, stamp)
    return sum(not _has_tracks(folder, name) for name in keys)


def _has_tracks(tracks: Path, name: str) -> bool:
    return track_path(tracks, name, "events").is_file() and background_track(tracks, name).is_file()


BYTES_PER_TRACK = CLIP_SAMPLES * 2 + 4096
"""Most space one stored track takes (16-bit samples, before FLAC's compression, plus header)."""


def _stamp_snr_folder(folder: Path, snr: int, keys: Mapping[str, str]) -> None:
    """Stamp an SNR folder (its SNR and mixture keys) and remove WAVs of the earlier layout."""
    ensure_writable_dir(folder)
    for entry in os.scandir(folder):
        if entry.name.endswith(".wav"):
            os.unlink(entry.path)
    stamp = {"render_version": RENDER_VERSION, "snr_db": int(snr), "mixtures": dict(keys)}
    path = folder / STAMP_NAME
    try:
        if json.loads(path.read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    atomic.write_json(path, stamp)


def is_rendered(mixtures_dir: Path, names: Sequence[str]) -> bool:
    """True when the SNR folder is stamped and every named mixture's tracks exist."""
    folder = Path(mixtures_dir)
    try:
        stamp = json.loads((folder / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("render_version") != RENDER_VERSION or "snr_db" not in stamp:
        return False
    tracks = tracks_dir(folder)
    return all(_has_tracks(tracks, n) for n in names)


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
    backgrounds_dir: Path | None = None,
) -> dict[str, int]:
    """Render every mixture of the plan for every SNR folder in ``out_dirs`` (snr_db -> folder).

    The folders share one tracks folder (:func:`tracks_dir`, their common parent's
    ``tracks/``), rendered once; each SNR folder gets its stamp. Parallel over mixtures
    (``workers`` processes, 0 = one per core) with a progress bar; resumable (complete files
    are kept). The tracks folder is first brought in line with the mixture keys
    (:func:`mixture_keys` with the content hashes given here, which the data pipeline takes
    from its source check): stale tracks are removed. The free space for the tracks still to
    write is checked before any is written. ``backgrounds_dir``: keep the background tracks
    there instead, named by what they depend on (:func:`background_names`), so the recipes of
    a workspace, whose mixtures use the same backgrounds, store each once
    (:func:`clean_backgrounds` removes the unused ones). Returns ``{"mixtures": N, "rendered":
    n_mixtures_rendered, "skipped": n_mixtures_already_done}``.

    Raises:
        ValueError: SNR folders of different recipes (no common tracks folder).
        OutputFolderError: an output folder that cannot be written (checked before any work).
        DiskFullError: not enough free space for the WAVs to write (or the disk filled up).
        AudioFormatError / SilentAudioError / MissingSourceError: bad source audio, naming it.
    """
    plan = read_plan(plan_path)
    for folder in out_dirs.values():
        ensure_writable_dir(Path(folder))
    shared = {tracks_dir(Path(folder)) for folder in out_dirs.values()}
    if len(shared) > 1:
        raise ValueError(f"SNR folders {sorted(map(str, out_dirs.values()))} have no common parent")
    if not shared:
        return {"mixtures": 0, "rendered": 0, "skipped": 0}
    tracks = shared.pop()

    def keys_with(extra: Mapping[str, Any]) -> dict[str, str]:
        return mixture_keys(plan, event_hashes=event_hashes, background_hashes=background_hashes,
                            settings={**dict(settings or {}), **extra})  # fmt: skip

    shared_backgrounds: dict[str, Path] = {}
    if backgrounds_dir is not None:
        ensure_writable_dir(Path(backgrounds_dir))
        names = background_names(plan, background_hashes=background_hashes, settings=settings)
        shared_backgrounds = {m: Path(backgrounds_dir) / n for m, n in names.items()}
    relative = {m: os.path.relpath(p, tracks) for m, p in shared_backgrounds.items()}
    todo = _prepare_folder(tracks, keys_with({}), relative)
    atomic.require_free_space(
        tracks, todo * len(TRACKS) * BYTES_PER_TRACK, what=f"rendering {todo} mixture(s)"
    )
    tasks = make_tasks(
        plan, fsd_dir=fsd_dir, tau_dir=tau_dir, tracks=tracks, backgrounds=shared_backgrounds
    )
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
    for snr, folder in out_dirs.items():  # stamped last: a stamped folder is complete
        _stamp_snr_folder(Path(folder), int(snr), keys_with({"snr_db": int(snr)}))
    return {"mixtures": len(tasks), "rendered": rendered, "skipped": skipped}
