"""Log-mel features against librosa, strong/weak targets, the HDF5 file and its statistics."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import librosa
import numpy as np
import pytest
from data_support import make_sources

from paperlib.data import features as feat
from paperlib.data.classes import CLASS_INDEX, CLASSES
from paperlib.data.errors import MissingSourceError
from paperlib.data.plan import make_plan, mixtures, plan_sha256, read_plan, write_plan
from paperlib.data.render import read_tracks, render_plan, tracks_dir
from paperlib.data.sources import read_fsd, read_tau

TOLERANCE = 1e-4
"""Max |difference| of log-mel values (natural log units) vs the independent computation:
float32 output vs a float64 reference, i.e. ~1e-4 relative error on the mel energies."""


def test_mel_filterbank_equals_librosa_slaney() -> None:
    reference = librosa.filters.mel(sr=32_000, n_fft=2048, n_mels=64, fmin=50, fmax=16_000)
    np.testing.assert_allclose(feat.mel_basis(), reference, atol=1e-7, rtol=1e-5)


def test_logmel_matches_librosa_stft_and_scipy_framing() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(320_000) / 32_000
    audio = 0.1 * rng.standard_normal(320_000) + 0.5 * np.sin(2 * np.pi * 1000 * t)
    ours = feat.logmel(audio)
    assert ours.shape == (311, 64) and ours.dtype == np.float32
    spec = np.abs(librosa.stft(audio, n_fft=2048, hop_length=1024, window="hamming", center=False))
    mel = librosa.filters.mel(sr=32_000, n_fft=2048, n_mels=64, fmin=50, fmax=16_000)
    reference = np.log(mel.astype(np.float64) @ spec + 1e-8).T
    assert np.max(np.abs(ours - reference)) < TOLERANCE
    # a second, hand-rolled framing: frame t = samples t*1024 .. t*1024+2047
    from scipy.signal import get_window

    frames = np.stack([audio[i * 1024 : i * 1024 + 2048] for i in range(311)])
    manual = np.abs(np.fft.rfft(frames * get_window("hamming", 2048), axis=1))
    assert np.max(np.abs(ours - np.log(manual @ mel.T.astype(np.float64) + 1e-8))) < TOLERANCE


def test_logmel_of_silence_is_the_log_offset_and_short_input_is_rejected() -> None:
    assert np.allclose(feat.logmel(np.zeros(320_000)), np.log(1e-8))
    with pytest.raises(ValueError, match="expected a mono signal of >= 2048 samples"):
        feat.logmel(np.zeros(100))


def test_strong_targets_use_the_frame_centre_rule() -> None:
    import pandas as pd

    events = pd.DataFrame(
        {
            "label": ["Bark", "Cello", "Bark"],
            "onset_s": [0.5, 3.0, 5.5],
            "offset_s": [2.5, 3.3, 7.5],
        }
    )
    target = feat.strong_targets(events)
    centre = (np.arange(311) * 1024 + 1024) / 32_000  # by hand
    bark = ((centre >= 0.5) & (centre < 2.5)) | ((centre >= 5.5) & (centre < 7.5))
    assert target[:, CLASS_INDEX["Bark"]].tolist() == bark.astype(int).tolist()
    assert np.flatnonzero(bark)[0] == 15  # (15 * 1024 + 1024) / 32000 = 0.512 s >= 0.5
    assert (
        target.sum(axis=1).max() == 1
        and target.sum() == bark.sum() + ((centre >= 3) & (centre < 3.3)).sum()
    )


def test_logmel_to_audio_inverts_roughly() -> None:
    t = np.arange(320_000) / 32_000
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 5)
    back = feat.logmel_to_audio(feat.logmel(audio), n_iter=8)
    assert back.dtype == np.float32 and abs(back.size - 320_000) < 2048
    first, second = np.abs(back[: back.size // 2]), np.abs(back[back.size // 2 :])
    assert first.mean() > 10 * second.mean()  # energy where the tone was
    spectrum = np.abs(np.fft.rfft(back[:150_000]))
    assert abs(np.argmax(spectrum) * 32_000 / 150_000 - 440) < 15


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("features")
    fsd, tau = make_sources(root, events=24, backgrounds=8)
    plan = write_plan(
        make_plan(read_fsd(fsd), read_tau(tau), mixtures_per_fold=2, seed=4), root / "plan.csv"
    )
    mix = root / "snr10db"
    render_plan(plan, fsd_dir=fsd, tau_dir=tau, out_dirs={10: mix}, workers=1, progress=False)
    return {"root": root, "plan": plan, "mix": mix}


def test_feature_file_layout_values_and_fold_statistics(
    rendered, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(feat, "CHUNK_CLIPS", 3)  # several chunks even on tiny data
    out = feat.write_features(
        rendered["plan"], rendered["mix"], tmp_path / "f.h5", snr_db=10, workers=1, progress=False
    )
    plan = read_plan(rendered["plan"])
    clips = mixtures(plan)
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"] and f.attrs["plan_sha256"] == plan_sha256(rendered["plan"])
        assert (
            f.attrs["snr_db"],
            f.attrs["sample_rate"],
            f.attrs["n_fft"],
            f.attrs["hop_length"],
            f.attrs["n_mels"],
            f.attrs["fmin"],
            f.attrs["fmax"],
        ) == (10, 32_000, 2048, 1024, 64, 50, 16_000)
        assert list(f.attrs["classes"]) == list(CLASSES)
        x = f["features"][:]
        assert x.shape == (8, 311, 64) and x.dtype == np.float32
        names = [n.decode() for n in f["clip_names"][:]]
        assert names == clips["mixture"].tolist()
        assert f["folds"].dtype == np.int8 and f["folds"][:].tolist() == clips["fold"].tolist()
        for i, name in enumerate(names):
            audio, _, _ = read_tracks(rendered["mix"], name)
            np.testing.assert_array_equal(x[i], feat.logmel(audio))
            labels = set(plan.loc[plan["mixture"] == name, "label"])
            assert {CLASSES[k] for k in np.flatnonzero(f["weak_targets"][i])} == labels
            assert f["strong_targets"][i].max(axis=0).tolist() == f["weak_targets"][i].tolist()
        assert f["strong_targets"].shape == (8, 311, 41) and f["weak_targets"].dtype == np.uint8
        folds = f["folds"][:]
        for k in (1, 2, 3, 4):
            frames = x[folds != k].reshape(-1, 64).astype(np.float64)
            np.testing.assert_allclose(f[f"stats/fold{k}/mean"][:], frames.mean(axis=0), atol=1e-4)
            np.testing.assert_allclose(f[f"stats/fold{k}/std"][:], frames.std(axis=0), atol=1e-4)
    parallel = feat.write_features(
        rendered["plan"], rendered["mix"], tmp_path / "g.h5", snr_db=10, workers=2, progress=False
    )
    with h5py.File(parallel, "r") as f:
        np.testing.assert_array_equal(f["features"][:], x)


def test_a_missing_mixture_fails_and_leaves_the_old_file_intact(rendered, tmp_path: Path) -> None:
    mix = tmp_path / "render" / "snr10db"
    shutil.copytree(rendered["mix"], mix)
    shutil.copytree(tracks_dir(rendered["mix"]), tracks_dir(mix))
    out = feat.write_features(
        rendered["plan"], mix, tmp_path / "f.h5", snr_db=10, workers=1, progress=False
    )
    before = out.read_bytes()
    gone = next(tracks_dir(mix).glob("fold3_*.events.flac")).name
    (tracks_dir(mix) / gone).unlink()
    with pytest.raises(MissingSourceError, match=gone):
        feat.write_features(rendered["plan"], mix, out, snr_db=10, workers=1, progress=False)
    assert out.read_bytes() == before and feat.is_complete_feature_file(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5", "render"]  # no temp file left
    with pytest.raises(MissingSourceError, match="no rendered mixtures there"):
        feat.write_features(rendered["plan"], tmp_path, out, snr_db=10, workers=1, progress=False)


def test_an_incomplete_file_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((1, 311, 64), np.float32)
    assert not feat.is_complete_feature_file(path)
    assert not feat.is_complete_feature_file(tmp_path / "missing.h5")
