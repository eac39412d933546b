"""WAV input/output and the audio arithmetic of the recipe: mono, 32 kHz, RMS, atomic writes.

Every reader returns ``float32`` arrays; every writer goes through :mod:`paperlib.atomic`
(temporary name in the target folder, then a rename), so a crash never leaves a truncated file
under the real name.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from paperlib import atomic
from paperlib.data.errors import AudioFormatError, MissingSourceError, OutputFolderError

SAMPLE_RATE: int = 32_000
"""Sample rate of every mixture and track (paper Section IV-A)."""
CLIP_SECONDS: float = 10.0
CLIP_SAMPLES: int = int(SAMPLE_RATE * CLIP_SECONDS)
"""Samples of a 10-s clip at 32 kHz (320,000)."""
SILENCE_RMS: float = 1e-5
"""RMS below which a clip counts as silent (-100 dBFS): scaling it to a level is meaningless."""
RESAMPLE_QUALITY: str = "HQ"
SFC_SET_ADD_PEAK_CHUNK = 0x1050
"""libsndfile command that switches off the PEAK chunk (it holds a write timestamp)."""
"""soxr quality preset used for every resampling."""


def wav_info(
    path: Path, *, expected_rate: int | None = None, expected_channels: int | None = None
) -> sf._SoundFileInfo:
    """Header of a WAV file (rate, channels, frames), checked against what the caller expects.

    Raises:
        MissingSourceError: ``path`` does not exist.
        AudioFormatError: the file cannot be parsed as audio, or its sample rate / channel
            count differs from ``expected_rate`` / ``expected_channels``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingSourceError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as error:
        raise AudioFormatError(f"{path}: not a readable WAV file ({error})") from error
    if expected_rate is not None and info.samplerate != expected_rate:
        raise AudioFormatError(
            f"{path}: sample rate {info.samplerate} Hz, expected {expected_rate} Hz"
        )
    if expected_channels is not None and info.channels != expected_channels:
        raise AudioFormatError(f"{path}: {info.channels} channel(s), expected {expected_channels}")
    if info.frames <= 0:
        raise AudioFormatError(f"{path}: contains no samples, expected audio")
    return info


def read_wav(path: Path, *, frames: int = -1) -> tuple[np.ndarray, int]:
    """Decode a WAV file: ``(audio (n, channels) float32, sample_rate)``.

    ``frames`` limits how many frames are read from the start (-1: all).

    Raises:
        MissingSourceError / AudioFormatError: missing or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingSourceError(f"{path}: audio file not found")
    try:
        audio, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as error:
        raise AudioFormatError(f"{path}: not a readable WAV file ({error})") from error
    if audio.shape[0] == 0:
        raise AudioFormatError(f"{path}: contains no samples, expected audio")
    return audio, int(rate)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mean over channels: (n, channels) or (n,) -> (n,) float32."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1, dtype=np.float32) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono signal (n,) with soxr ("HQ"); a no-op copy when the rates agree."""
    if rate_in == rate_out:
        return np.array(audio, dtype=np.float32)
    return soxr.resample(audio, rate_in, rate_out, quality=RESAMPLE_QUALITY).astype(np.float32)


def load_mono(
    path: Path, *, rate: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Decode ``path``, average its channels and resample to ``rate``: (n,) float32.

    ``max_seconds`` decodes only the start of the file (plus a little margin for the
    resampler), which is all the recipe ever uses of a long clip.
    """
    frames = -1
    if max_seconds is not None:
        source_rate = wav_info(path).samplerate
        frames = int(np.ceil((max_seconds + 0.05) * source_rate))
    audio, source_rate = read_wav(path, frames=frames)
    mono = resample(to_mono(audio), source_rate, rate)
    if max_seconds is not None:
        mono = mono[: round(max_seconds * rate)]
    return mono


def rms(audio: np.ndarray) -> float:
    """Root mean square of a signal (computed in float64)."""
    audio = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(audio * audio))) if audio.size else 0.0


def ensure_writable_dir(folder: Path) -> Path:
    """Create ``folder`` (and parents) and check that files can be created in it.

    Raises:
        OutputFolderError: the folder cannot be created or is not writable.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise OutputFolderError(
            f"{folder}: output folder cannot be written ({error.strerror or error}); "
            "expected a writable folder"
        ) from error
    return folder


def wav_bytes(audio: np.ndarray, rate: int, *, subtype: str = "FLOAT") -> bytes:
    """``audio`` ((n,) or (n, channels)) encoded as a WAV file in memory.

    Deterministic: the same samples give the same bytes (no timestamped PEAK chunk).
    ``subtype`` is a soundfile subtype: ``FLOAT`` (32-bit float), ``PCM_16``, ``PCM_24``.
    """
    audio = np.asarray(audio)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, channels, subtype, format="WAV") as out:
        # no PEAK chunk: it holds a timestamp, and equal audio must give equal bytes
        sf._snd.sf_command(out._file, SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
        out.write(audio)
    return buffer.getvalue()


def write_wav_atomic(path: Path, audio: np.ndarray, rate: int, *, subtype: str = "FLOAT") -> Path:
    """Write ``audio`` as WAV (:func:`wav_bytes`) atomically (:func:`paperlib.atomic.write_bytes`).

    Encoding happens in memory, so a full disk is reported as
    :class:`~paperlib.atomic.DiskFullError` naming ``path``, never as libsndfile's
    "System error".
    """
    return atomic.write_bytes(Path(path), wav_bytes(audio, rate, subtype=subtype))
