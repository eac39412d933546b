"""Rendering: the recipe's arithmetic, resampling, resumability, atomicity and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from data_support import make_sources, snapshot, write_event
from scipy.signal import resample_poly

from paperlib import paths
from paperlib.config import load_profile, profile_with_overrides
from paperlib.data import render
from paperlib.data.errors import OutputFolderError, SilentAudioError
from paperlib.data.pipeline import prepare_data
from paperlib.data.plan import make_plan, read_plan, write_plan
from paperlib.data.render import (
    is_complete,
    mix_tracks,
    read_tracks,
    render_plan,
    track_path,
    tracks_dir,
)
from paperlib.data.sources import read_fsd, read_tau


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("snr", [0, 10, 20, -5])
def test_mix_tracks_follows_the_recipe(snr: int) -> None:
    rng = np.random.default_rng(snr + 10)
    background = 0.2 * rng.standard_normal(320_000)
    # whole source files whose level changes after the first part: quiet start, loud tail
    sources = [
        np.concatenate([rng.standard_normal(64_000), 4 * rng.standard_normal(50_000)]),
        np.concatenate([3 * rng.standard_normal(30_000), 0.5 * rng.standard_normal(90_000)]),
    ]
    cuts = [sources[0][:64_000], sources[1][:30_000]]
    events = [
        (cut, start, _rms(src))
        for cut, src, start in zip(cuts, sources, (16_000, 96_000), strict=True)
    ]
    mixture, ev, bg = mix_tracks(background, events, snr)
    assert max(np.abs(ev).max(), np.abs(bg).max()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(mixture, (ev.astype(np.float64) + bg) / 2, atol=1e-6)
    for cut, src, (_, start, _) in zip(cuts, sources, events, strict=True):
        # the whole source file sits at 10^(snr/20) times the background RMS, so its cut part
        # sits at that level plus the cut's own level relative to the whole file
        segment = ev[start : start + cut.size]
        expected = snr + 20 * np.log10(_rms(cut) / _rms(src))
        assert 20 * np.log10(_rms(segment) / _rms(bg)) == pytest.approx(expected, abs=1e-3)
        assert abs(expected - snr) > 1.0  # the test tells the whole-file level from the cut's
    assert np.all(ev[:16_000] == 0) and np.all(ev[80_000:96_000] == 0)
    np.testing.assert_allclose(
        bg / np.abs(bg).max(), background / np.abs(background).max(), atol=1e-6
    )


def _swell(fsd: Path) -> None:
    """Rewrite every event of ``fsd`` with a rising envelope (x0.1 at the start to x1.5 at the
    end), so the level of a clip's first 2 s differs from the level of the whole clip."""
    for path in sorted((fsd / "audio_train").glob("*.wav")):
        tone, rate = sf.read(path)
        sf.write(path, tone * np.linspace(0.1, 1.5, tone.size), rate, subtype="PCM_16")


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
    tracks = tmp_path / "mix" / "tracks"
    return {"fsd": fsd, "tau": tau, "plan": plan_path, "outs": outs, "root": tmp_path,
            "tracks": tracks}  # fmt: skip


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
    _swell(planned["fsd"])
    report = _render(planned)
    assert report == {"mixtures": 4, "rendered": 4, "skipped": 0}  # once for both SNRs
    assert tracks_dir(planned["outs"][0]) == planned["tracks"]
    stored = sorted(p.name for p in planned["tracks"].glob("*.flac"))
    assert len(stored) == 8 and not list(planned["outs"][0].glob("*.wav"))
    assert sf.info(str(planned["tracks"] / stored[0])).subtype == "PCM_16"
    plan = read_plan(planned["plan"])
    offsets = []
    for name, rows in plan.groupby("mixture", sort=False):
        bg_src, _ = sf.read(planned["tau"] / rows["background"].iloc[0])
        expected_bg = resample_poly(bg_src.mean(axis=1), 2, 3)[:320_000]  # 48 k -> 32 k, by scipy
        for snr, folder in planned["outs"].items():
            mixture, ev, bg = read_tracks(folder, name)
            assert mixture.shape == ev.shape == bg.shape == (320_000,)
            assert mixture.dtype == np.float32
            np.testing.assert_allclose(mixture, (ev + bg) / 2, atol=1e-6)
            assert max(np.abs(ev).max(), np.abs(bg).max()) == pytest.approx(1.0, abs=1e-4)
            scale = _rms(bg) / _rms(expected_bg)
            inner = slice(1000, -1000)  # edges differ between resamplers
            assert np.max(np.abs(bg[inner] - scale * expected_bg[inner])) < 1e-3 * np.abs(bg).max()
            for r in rows.itertuples():
                a, b = round(r.onset_s * 32_000), round(r.offset_s * 32_000)
                src, _ = sf.read(planned["fsd"] / r.source)
                whole = resample_poly(src, 320, 441)  # 44.1 k -> 32 k, the whole file, by scipy
                cut = whole[: b - a]
                # Kong's recipe: the WHOLE file at 10^(snr/20) x the background RMS, then cut
                offset = 20 * np.log10(_rms(cut) / _rms(whole))
                level = 20 * np.log10(_rms(ev[a:b]) / _rms(bg))
                assert level == pytest.approx(snr + offset, abs=0.02), (name, r.source)
                corr = np.corrcoef(ev[a:b][500:-500], cut[500:-500])[0, 1]
                assert corr > 0.999
                offsets.append(offset)
    # the clips longer than 2 s enter below the nominal SNR (their loud end is cut off)
    assert min(offsets) < -1.0 and max(offsets) == pytest.approx(0.0, abs=0.02)


def test_a_workspace_rendered_by_the_previous_recipe_is_rendered_again(
    planned, tmp_path: Path, monkeypatch
) -> None:
    _swell(planned["fsd"])
    profile = profile_with_overrides(
        load_profile("smoke"),
        {
            "data.source": "dcase",
            "data.fsd_dir": str(planned["fsd"]),
            "data.tau_dir": str(planned["tau"]),
            "data.mixtures_per_fold": 1,
            "data.snrs": [20],
            "data.workers": 1,
            "data.study_onsets": [],
        },
    )
    stale_ws, fresh_ws = tmp_path / "stale", tmp_path / "fresh"
    # a workspace made by RENDER_VERSION 1 arithmetic under an older key: (event level
    # over the cut samples, not over the whole source file)
    new_unit = render.unit_tracks

    def unit_tracks_v1(background, events):
        return new_unit(background, [(s, start, _rms(s)) for s, start, _ in events])

    assert render.RENDER_VERSION == 3
    with monkeypatch.context() as patch:
        patch.setattr(render, "RENDER_VERSION", 2)
        patch.setattr(render, "unit_tracks", unit_tracks_v1)
        assert prepare_data(profile, stale_ws, progress=False).ran[-2:] == (
            "render/snr20db",
            "features/snr20db",
        )
    stale = snapshot(render.tracks_dir(paths.mixtures_dir(stale_ws, 20)))
    again = prepare_data(profile, stale_ws, progress=False)
    assert again.ran == ("render/snr20db", "features/snr20db")  # the plan is still good
    prepare_data(profile, fresh_ws, progress=False)
    fresh = snapshot(render.tracks_dir(paths.mixtures_dir(fresh_ws, 20)))
    assert snapshot(render.tracks_dir(paths.mixtures_dir(stale_ws, 20))) == fresh
    # the old mixtures really differed: serving them would have been stale
    assert any(stale[k] != fresh[k] for k in fresh if k.endswith(".events.flac"))
    with (
        h5py.File(paths.feature_file(stale_ws, 20)) as a,
        h5py.File(paths.feature_file(fresh_ws, 20)) as b,
    ):
        np.testing.assert_array_equal(a["features"][:], b["features"][:])
    assert prepare_data(profile, stale_ws, progress=False).ran == ()


def test_stored_tracks_give_the_recipe_at_every_snr(planned) -> None:
    """read_tracks (one 16-bit pair per mixture) against mix_tracks on the decoded sources."""
    _render(planned)
    plan = read_plan(planned["plan"])
    for name, rows in plan.groupby("mixture", sort=False):
        background = render.load_background(planned["tau"] / rows["background"].iloc[0])
        events = []
        for r in rows.itertuples():
            whole = render.load_event_source(planned["fsd"] / r.source)
            events.append((render.cut_event(whole, r.offset_s - r.onset_s),
                           round(r.onset_s * 32_000), _rms(whole)))  # fmt: skip
        for snr, folder in planned["outs"].items():
            for got, want in zip(read_tracks(folder, name), mix_tracks(background, events, snr),
                                 strict=True):  # fmt: skip
                assert np.abs(got - want).max() < 0.5 / 32767 + 1e-7  # half a 16-bit code at most


def test_reading_unrendered_tracks_says_what_to_do(planned) -> None:
    from paperlib.data.errors import MissingSourceError

    with pytest.raises(MissingSourceError, match="no rendered mixtures there"):
        read_tracks(planned["outs"][0], "fold1_0000")
    _render(planned)
    track_path(planned["tracks"], "fold1_0000", "background").unlink()
    with pytest.raises(MissingSourceError, match=r"fold1_0000\.background\.flac: rendered track"):
        read_tracks(planned["outs"][0], "fold1_0000")


def test_rerun_after_deletion_and_truncation_redoes_only_those_clips(planned) -> None:
    _render(planned)
    before = snapshot(planned["root"] / "mix")
    folder = planned["tracks"]
    names = sorted({p.name.split(".")[0] for p in folder.glob("*.flac")})
    track_path(folder, names[0], "events").unlink()
    truncated = track_path(folder, names[1], "background")
    truncated.write_bytes(truncated.read_bytes()[:5000])
    assert not is_complete(truncated)
    stamps = {p: p.stat().st_mtime_ns for p in (planned["root"] / "mix").rglob("*.flac")}
    report = _render(planned)
    assert report == {"mixtures": 4, "rendered": 2, "skipped": 2}
    assert snapshot(planned["root"] / "mix") == before  # identical bytes
    changed = {p for p, t in stamps.items() if p.stat().st_mtime_ns != t}
    assert {p.name.split(".")[0] for p in changed} <= {names[0], names[1]}  # only their tracks


def test_interrupted_render_leaves_only_complete_files_and_resumes(planned, monkeypatch) -> None:
    _render(planned)
    reference = snapshot(planned["root"] / "mix")
    for path in planned["tracks"].glob("*.flac"):
        path.unlink()
    calls = {"n": 0}
    original = render.write_track

    def crash_on_fifth(path, unit):
        calls["n"] += 1
        if calls["n"] == 5:
            sf.write(str(path.with_name(f".{path.name}.999.tmp")), unit[:100], 32_000, format="WAV")
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write
        return original(path, unit)

    monkeypatch.setattr(render, "write_track", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        _render(planned)
    written = list(planned["tracks"].glob("*.flac"))
    assert len(written) == 4 and all(is_complete(p) for p in written)
    monkeypatch.setattr(render, "write_track", original)
    report = _render(planned)
    assert report["rendered"] == 4 - 2  # the first two mixtures were already complete
    after = {
        k: v
        for k, v in snapshot(planned["root"] / "mix").items()
        if not k.split("/")[-1].startswith(".")
    }
    assert after == reference


def test_parallel_render_equals_serial_render(planned) -> None:
    _render(planned)
    serial = snapshot(planned["root"] / "mix")
    for path in planned["tracks"].glob("*.flac"):
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
    written = list(planned["tracks"].glob("*.flac"))
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
    assert not planned["tracks"].exists()


def test_a_new_plan_clears_mixtures_rendered_from_the_old_one(planned) -> None:
    _render(planned)
    plan = read_plan(planned["plan"])
    plan = plan.assign(mixture=plan["mixture"].str.replace("fold", "f"))
    write_plan(plan, planned["plan"])
    _render(planned)
    names = {p.name.split(".")[0] for p in planned["tracks"].glob("*.flac")}
    assert names == set(plan["mixture"])


def test_shared_backgrounds_are_stored_once_and_unused_ones_cleaned(planned) -> None:
    shared = planned["root"] / "mix" / "backgrounds"
    _render(planned, backgrounds_dir=shared)
    files = sorted(shared.glob("*.flac"))
    assert len(files) == 4 and not list(planned["tracks"].glob("*.background.flac"))
    plan = read_plan(planned["plan"])
    names = render.background_names(plan)
    assert sorted(f.name for f in files) == sorted(names.values())
    for name in names:  # each mixture reads its background from the shared folder
        assert render.background_track(planned["tracks"], name) == (
            planned["tracks"] / ".." / "backgrounds" / names[name]
        )
        read_tracks(planned["outs"][0], name)
    stray = shared / "0123456789abcdef0123.flac"
    stray.write_bytes(files[0].read_bytes())
    stamp = planned["tracks"] / render.STAMP_NAME
    assert render.clean_backgrounds(shared, [stamp]) == 1 and not stray.exists()
    assert render.clean_backgrounds(shared, []) == 4 and not list(shared.glob("*.flac"))
