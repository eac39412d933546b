"""Rendering: the recipe's arithmetic, resampling, resumability, atomicity and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_support import make_sources, snapshot, write_event
from scipy.signal import resample_poly

from paperlib.data import render
from paperlib.data.errors import OutputFolderError, SilentAudioError
from paperlib.data.plan import make_plan, read_plan, write_plan
from paperlib.data.render import is_complete, mix_tracks, render_plan, track_path
from paperlib.data.sources import read_fsd, read_tau


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("snr", [0, 10, 20, -5])
def test_mix_tracks_follows_the_recipe(snr: int) -> None:
    rng = np.random.default_rng(snr + 10)
    background = 0.2 * rng.standard_normal(320_000)
    events = [(rng.standard_normal(64_000) * 3, 16_000), (rng.standard_normal(30_000), 96_000)]
    mixture, ev, bg = mix_tracks(background, events, snr)
    assert max(np.abs(ev).max(), np.abs(bg).max()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(mixture, (ev.astype(np.float64) + bg) / 2, atol=1e-6)
    for samples, start in events:  # each event's RMS is 10^(snr/20) times the background RMS
        segment = ev[start : start + samples.size]
        assert 20 * np.log10(_rms(segment) / _rms(bg)) == pytest.approx(snr, abs=1e-3)
    assert np.all(ev[:16_000] == 0) and np.all(ev[80_000:96_000] == 0)
    np.testing.assert_allclose(
        bg / np.abs(bg).max(), background / np.abs(background).max(), atol=1e-6
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("render-sources")
    make_sources(root, events=24, backgrounds=4)
    return root


@pytest.fixture()
def planned(tmp_path: Path, pristine: Path) -> dict:
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    fsd, tau = tmp_path / "fsd", tmp_path / "tau"
    plan_path = write_plan(
        make_plan(read_fsd(fsd), read_tau(tau), mixtures_per_fold=1, seed=2), tmp_path / "plan.csv"
    )
    outs = {0: tmp_path / "mix" / "snr0db", 20: tmp_path / "mix" / "snr20db"}
    return {"fsd": fsd, "tau": tau, "plan": plan_path, "outs": outs, "root": tmp_path}


def _render(p: dict, **kw) -> dict:
    return render_plan(
        p["plan"],
        fsd_dir=p["fsd"],
        tau_dir=p["tau"],
        out_dirs=p["outs"],
        workers=kw.pop("workers", 1),
        progress=False,
        **kw,
    )


def test_rendered_files_match_an_independent_resampling_and_the_snr(planned) -> None:
    report = _render(planned)
    assert report == {"mixtures": 4, "rendered": 8, "skipped": 0}
    plan = read_plan(planned["plan"])
    first = plan[plan["mixture"] == plan["mixture"].iloc[0]]
    bg_src, _ = sf.read(planned["tau"] / first["background"].iloc[0])
    expected_bg = resample_poly(bg_src.mean(axis=1), 2, 3)[:320_000]  # 48 k -> 32 k, by scipy
    for snr, folder in planned["outs"].items():
        name = first["mixture"].iloc[0]
        mixture, rate = sf.read(track_path(folder, name), dtype="float32")
        ev, _ = sf.read(track_path(folder, name, "events"), dtype="float32")
        bg, _ = sf.read(track_path(folder, name, "background"), dtype="float32")
        assert rate == 32_000 and mixture.shape == ev.shape == bg.shape == (320_000,)
        assert sf.info(str(track_path(folder, name))).subtype == "FLOAT"
        np.testing.assert_allclose(mixture, (ev + bg) / 2, atol=1e-6)
        scale = _rms(bg) / _rms(expected_bg)
        inner = slice(1000, -1000)  # edges differ between resamplers
        assert np.max(np.abs(bg[inner] - scale * expected_bg[inner])) < 1e-3 * np.abs(bg).max()
        for r in first.itertuples():
            a, b = round(r.onset_s * 32_000), round(r.offset_s * 32_000)
            assert 20 * np.log10(_rms(ev[a:b]) / _rms(bg)) == pytest.approx(snr, abs=0.01)
            src, _ = sf.read(planned["fsd"] / r.source)
            cut = resample_poly(src, 320, 441)[: b - a]
            corr = np.corrcoef(ev[a:b][500:-500], cut[500:-500])[0, 1]
            assert corr > 0.999


def test_rerun_after_deletion_and_truncation_redoes_only_those_clips(planned) -> None:
    _render(planned)
    before = snapshot(planned["root"] / "mix")
    folder = planned["outs"][20]
    names = sorted({p.name.split(".")[0] for p in folder.glob("*.wav")})
    track_path(folder, names[0], "events").unlink()
    truncated = track_path(folder, names[1])
    truncated.write_bytes(truncated.read_bytes()[:5000])
    assert not is_complete(truncated)
    stamps = {p: p.stat().st_mtime_ns for p in (planned["root"] / "mix").rglob("*.wav")}
    report = _render(planned)
    assert report == {"mixtures": 4, "rendered": 2, "skipped": 2}
    assert snapshot(planned["root"] / "mix") == before  # identical bytes
    changed = {p for p, t in stamps.items() if p.stat().st_mtime_ns != t}
    assert {p.name.split(".")[0] for p in changed} <= {names[0], names[1]}  # only their 20-dB files
    assert all(p.parent == folder for p in changed)


def test_interrupted_render_leaves_only_complete_files_and_resumes(planned, monkeypatch) -> None:
    _render(planned)
    reference = snapshot(planned["root"] / "mix")
    for folder in planned["outs"].values():
        for path in folder.glob("*.wav"):
            path.unlink()
    calls = {"n": 0}
    original = render.write_wav_atomic

    def crash_on_seventh(path, audio, rate, **kw):
        calls["n"] += 1
        if calls["n"] == 7:
            import soundfile as sf_

            sf_.write(str(path.with_name(f".{path.name}.999.tmp")), audio[:100], rate, format="WAV")
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write
        return original(path, audio, rate, **kw)

    monkeypatch.setattr(render, "write_wav_atomic", crash_on_seventh)
    with pytest.raises(KeyboardInterrupt):
        _render(planned)
    written = [p for f in planned["outs"].values() for p in f.glob("*.wav")]
    assert len(written) == 6 and all(is_complete(p) for p in written)
    monkeypatch.setattr(render, "write_wav_atomic", original)
    report = _render(planned)
    assert report["rendered"] == 8 - 2  # the first mixture's two SNRs were already complete
    after = {
        k: v
        for k, v in snapshot(planned["root"] / "mix").items()
        if not k.split("/")[-1].startswith(".")
    }
    assert after == reference


def test_parallel_render_equals_serial_render(planned) -> None:
    _render(planned)
    serial = snapshot(planned["root"] / "mix")
    for folder in planned["outs"].values():
        for path in folder.glob("*.wav"):
            path.unlink()
    _render(planned, workers=2)
    assert snapshot(planned["root"] / "mix") == serial


def test_a_silent_event_is_named_and_earlier_outputs_stay_intact(planned) -> None:
    plan = read_plan(planned["plan"])
    last = plan.iloc[-1]
    write_event(planned["fsd"] / last["source"], 3.0, level=0.0)  # all zeros
    with pytest.raises(SilentAudioError) as info:
        _render(planned)
    text = str(info.value)
    assert (
        str(planned["fsd"] / last["source"]) in text and "silent" in text and "expected RMS" in text
    )
    written = [p for f in planned["outs"].values() for p in f.glob("*.wav")]
    assert written and all(is_complete(p) for p in written)


def test_a_silent_background_is_named(planned) -> None:
    plan = read_plan(planned["plan"])
    path = planned["tau"] / plan["background"].iloc[0]
    sf.write(path, np.zeros((480_000, 2)), 48_000, subtype="PCM_24")
    with pytest.raises(SilentAudioError, match=str(path) + ": background is silent"):
        _render(planned)


def test_an_unwritable_output_folder_fails_before_any_work(planned) -> None:
    blocker = planned["root"] / "mix" / "file"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    planned["outs"] = {0: planned["outs"][0], 20: blocker / "snr20db"}
    with pytest.raises(
        OutputFolderError, match=str(blocker / "snr20db") + ": output folder cannot be written"
    ):
        _render(planned)
    assert not list(planned["outs"][0].glob("*.wav"))


def test_a_new_plan_clears_mixtures_rendered_from_the_old_one(planned) -> None:
    _render(planned)
    plan = read_plan(planned["plan"])
    plan = plan.assign(mixture=plan["mixture"].str.replace("fold", "f"))
    write_plan(plan, planned["plan"])
    _render(planned)
    names = {p.name.split(".")[0] for p in planned["outs"][0].glob("*.wav")}
    assert names == set(plan["mixture"])
