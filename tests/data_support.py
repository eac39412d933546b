"""Test support for the data concern: tiny FSDKaggle2018 / TAU2019 folders written by hand.

Independent of the pocket synthesiser: events are plain sine tones (44.1 kHz 16-bit mono),
backgrounds noise low-passed at 12 kHz (48 kHz 24-bit stereo, 10 s), written with soundfile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from paperlib.data.classes import CLASSES, SCENES


def write_event(
    path: Path,
    seconds: float,
    *,
    freq: float = 440.0,
    rate: int = 44_100,
    channels: int = 1,
    level: float = 0.3,
) -> None:
    t = np.arange(int(seconds * rate)) / rate
    tone = level * np.sin(2 * np.pi * freq * t)
    sf.write(
        path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, rate, subtype="PCM_16"
    )


def write_background(
    path: Path,
    *,
    seconds: float = 10.0,
    rate: int = 48_000,
    channels: int = 2,
    seed: int = 0,
    level: float = 0.05,
) -> None:
    noise = np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    spectrum = np.fft.rfft(noise, axis=0)
    spectrum[np.fft.rfftfreq(noise.shape[0], 1 / rate) > 12_000] = (
        0  # below every resampler's cutoff
    )
    noise = np.fft.irfft(spectrum, noise.shape[0], axis=0)
    noise *= level / noise.std()
    sf.write(path, noise, rate, subtype="PCM_24")


def make_sources(
    root: Path,
    *,
    events: int = 40,
    backgrounds: int = 8,
    unverified_every: int = 4,
    durations: tuple[float, ...] = (0.6, 1.3, 2.5, 3.1),
) -> tuple[Path, Path]:
    """Write ``root/fsd`` and ``root/tau`` in the real layouts; return the two folders.

    Event ``i`` has label ``CLASSES[i % 41]``, duration ``durations[i % len]`` s, tone
    ``200 + 50 i`` Hz and is unverified when ``i % unverified_every == 3``.
    """
    fsd, tau = root / "fsd", root / "tau"
    (fsd / "audio_train").mkdir(parents=True)
    (tau / "audio").mkdir(parents=True)
    rows = []
    for i in range(events):
        fname = f"{0x1000 + i:08x}.wav"
        write_event(fsd / "audio_train" / fname, durations[i % len(durations)], freq=200 + 50 * i)
        rows.append(
            {
                "fname": fname,
                "label": CLASSES[i % len(CLASSES)],
                "manually_verified": int(i % unverified_every != 3),
                "freesound_id": 1000 + i,
                "license": "Creative Commons 0",
            }
        )
    pd.DataFrame(rows).to_csv(fsd / "train_post_competition.csv", index=False)
    meta = []
    for i in range(backgrounds):
        scene = SCENES[i % len(SCENES)]
        name = f"audio/{scene}-lyon-{i}-0-a.wav"
        write_background(tau / name, seed=i)
        meta.append(
            {"filename": name, "scene_label": scene, "identifier": f"lyon-{i}", "source_label": "a"}
        )
    pd.DataFrame(meta).to_csv(tau / "meta.csv", sep="\t", index=False)
    return fsd, tau


def snapshot(folder: Path) -> dict[str, bytes]:
    """Bytes of every file under ``folder`` (relative path -> content)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
