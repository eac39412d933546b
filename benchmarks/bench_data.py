"""Speed of the data pipeline against a plain single-process loop, on pocket files.

The sources are pocket files in the real formats (44.1 kHz 16-bit mono events, 48 kHz 24-bit
stereo 10-s backgrounds), so resampling to 32 kHz is part of the work. Measured in one run:

1. **Planning** (clips/s = mixtures planned per second): ``read_fsd`` + ``read_tau`` (WAV
   headers only) + ``make_plan``, against a loop that decodes every event with
   ``librosa.load`` to learn its duration (then the same plan).
2. **Rendering** (mixtures/s, all SNRs): ``render_plan`` (all cores; each source decoded and
   resampled once per mixture for every SNR, soxr), against a loop that, for each SNR and each
   mixture, loads the background and events with ``librosa.load(sr=32000)`` and writes the
   three WAVs, one clip at a time.
3. **Features** (clips/s): ``write_features`` (all cores, streamed HDF5), against a loop of
   ``librosa.load`` + ``librosa.feature.melspectrogram`` one clip at a time, then one HDF5 write.

Run alone: ``.venv/bin/python -m benchmarks.bench_data``. Wall-clock figures on a shared
machine are noisy; the ratios (measured back to back) are the figures to read.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import h5py
import librosa
import numpy as np
import soundfile as sf

from paperlib.data.features import FMAX, FMIN, HOP, N_FFT, N_MELS, write_features
from paperlib.data.parallel import resolve_workers
from paperlib.data.plan import make_plan, mixtures, read_plan, write_plan
from paperlib.data.pocket import write_pocket_corpus
from paperlib.data.render import mix_tracks, render_plan
from paperlib.data.sources import read_fsd, read_tau

EVENTS_PER_CLASS = 4
MIXTURES_PER_FOLD = 12
SNRS = (0, 10, 20)


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def plain_plan(fsd: Path, tau: Path):
    events = read_fsd(fsd, check_audio=False)
    events["duration_s"] = [
        librosa.get_duration(y=librosa.load(p, sr=None)[0], sr=44_100) for p in events["path"]
    ]
    return make_plan(
        events, read_tau(tau, check_audio=False), mixtures_per_fold=MIXTURES_PER_FOLD, seed=1
    )


def plain_path(folder: Path, name: str, track: str = "mixture") -> Path:
    """The baseline's own files: three float32 WAVs per mixture and SNR."""
    return folder / (f"{name}.wav" if track == "mixture" else f"{name}.{track}.wav")


def plain_render(plan_path: Path, fsd: Path, tau: Path, out: Path) -> None:
    plan = read_plan(plan_path)
    for snr in SNRS:
        folder = out / f"snr{snr}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in plan.groupby("mixture", sort=False):
            background, _ = librosa.load(
                tau / rows["background"].iloc[0], sr=32_000, mono=True, duration=10.0
            )
            events = []
            for r in rows.itertuples():
                clip, _ = librosa.load(fsd / r.source, sr=32_000, mono=True)  # whole file
                events.append(
                    (
                        clip[: round((r.offset_s - r.onset_s) * 32_000)],
                        round(r.onset_s * 32_000),
                        float(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))),
                    )
                )
            for track, audio in zip(
                ("mixture", "events", "background"),
                mix_tracks(background, events, snr),
                strict=True,
            ):
                sf.write(plain_path(folder, name, track), audio, 32_000, subtype="FLOAT")


def plain_features(plan_path: Path, folder: Path, out: Path) -> None:
    names = mixtures(read_plan(plan_path))["mixture"]
    feats = []
    for name in names:
        audio, _ = librosa.load(plain_path(folder, name), sr=None)
        mel = librosa.feature.melspectrogram(
            y=audio,
            sr=32_000,
            n_fft=N_FFT,
            hop_length=HOP,
            window="hamming",
            center=False,
            power=1.0,
            n_mels=N_MELS,
            fmin=FMIN,
            fmax=FMAX,
        )
        feats.append(np.log(mel + 1e-8).T.astype(np.float32))
    with h5py.File(out, "w") as f:
        f["features"] = np.stack(feats)


def main() -> None:
    workers = resolve_workers(0)
    root = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        fsd, tau = root / "FSDKaggle2018", root / "TAU2019"
        n_mix = 4 * MIXTURES_PER_FOLD
        t_pocket, _ = _timed(
            lambda: write_pocket_corpus(
                fsd,
                tau,
                events_per_class=EVENTS_PER_CLASS,
                backgrounds=n_mix,
                seed=1,
                progress=False,
            )
        )
        print(
            f"pocket corpus: {41 * EVENTS_PER_CLASS} events + {n_mix} backgrounds in {t_pocket:.1f} s "
            f"({workers} workers)"
        )
        librosa.load(
            next((fsd / "audio_train").glob("*.wav")), sr=32_000
        )  # warm librosa's lazy imports
        plan_path = root / "plan.csv"
        t_plan, plan = _timed(
            lambda: make_plan(
                read_fsd(fsd), read_tau(tau), mixtures_per_fold=MIXTURES_PER_FOLD, seed=1
            )
        )
        write_plan(plan, plan_path)
        t_plan_plain, plain = _timed(lambda: plain_plan(fsd, tau))
        assert plain.equals(plan)
        outs = {snr: root / "ours" / f"snr{snr}" for snr in SNRS}
        t_render, _ = _timed(
            lambda: render_plan(plan_path, fsd_dir=fsd, tau_dir=tau, out_dirs=outs, progress=False)
        )
        t_render_plain, _ = _timed(lambda: plain_render(plan_path, fsd, tau, root / "plain"))
        t_feat, _ = _timed(
            lambda: [
                write_features(plan_path, outs[s], root / f"f{s}.h5", snr_db=s, progress=False)
                for s in SNRS
            ]
        )
        t_feat_plain, _ = _timed(
            lambda: [plain_features(plan_path, outs[s], root / f"p{s}.h5") for s in SNRS]
        )
        n_clips = n_mix * len(SNRS)
        print(f"\n{'step':<10} {'paperlib clips/s':>17} {'plain loop clips/s':>19} {'ratio':>7}")
        for step, n, ours, base in (
            ("planning", n_mix, t_plan, t_plan_plain),
            ("rendering", n_clips, t_render, t_render_plain),
            ("features", n_clips, t_feat, t_feat_plain),
        ):
            print(f"{step:<10} {n / ours:>17.1f} {n / base:>19.1f} {base / ours:>6.1f}x")
        print(
            f"\n({n_mix} mixtures x {len(SNRS)} SNRs; rendering counts one mixture at one SNR as a clip; "
            f"{workers} worker processes; shared machine: figures are noisy)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
