"""Caches never serve stale results: source content is in the data keys, features in the runs'.

Issue 14, finding 1: a source WAV replaced under the same name must re-render exactly the
mixtures that use it (and the features after them), and a run on changed features must train
again instead of returning the old metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from data_support import make_sources, write_event
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import paths
from paperlib.config import load_profile, profile_with_overrides
from paperlib.data.pipeline import prepare_data
from paperlib.data.plan import read_plan
from paperlib.data.render import render_plan
from paperlib.run import run_key, train_run


def dcase_profile(fsd: Path, tau: Path):
    return profile_with_overrides(
        load_profile("smoke"),
        {
            "data.source": "dcase",
            "data.fsd_dir": str(fsd),
            "data.tau_dir": str(tau),
            "data.mixtures_per_fold": 2,
            "data.snrs": [20],
            "data.workers": 1,
            "data.study_onsets": [],
        },
    )


@pytest.fixture(scope="module")
def prepared_once(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stale")
    fsd, tau = make_sources(root, events=40, backgrounds=8)
    prepare_data(dcase_profile(fsd, tau), root / "ws", progress=False)
    return root


@pytest.fixture()
def prepared(prepared_once: Path, tmp_path: Path) -> tuple:
    shutil.copytree(prepared_once, tmp_path, dirs_exist_ok=True)
    profile = dcase_profile(tmp_path / "fsd", tmp_path / "tau")
    ws = tmp_path / "ws"
    assert prepare_data(profile, ws, progress=False).ran == ("check",)  # the copy: read once
    return profile, ws


def _wavs(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.glob("*.wav"))}


def test_replaced_source_wav_rerenders_exactly_the_mixtures_that_use_it(prepared, tmp_path):
    profile, ws = prepared
    plan = read_plan(paths.plan_file(ws))
    source = plan["source"].iloc[0]
    users = set(plan.loc[plan["source"] == source, "mixture"])
    assert 0 < len(users) < plan["mixture"].nunique()
    folder = paths.mixtures_dir(ws, 20)
    before = _wavs(folder)
    old_features = paths.feature_file(ws, 20).read_bytes()
    path = Path(profile.data.fsd_dir) / source
    write_event(path, sf.info(str(path)).duration, freq=1234.0)  # same name, same length

    products = prepare_data(profile, ws, progress=False)

    assert products.ran == ("check", "plan", "render/snr20db", "features/snr20db")
    after = _wavs(folder)
    assert set(after) == set(before)
    for name, (data, mtime) in after.items():
        if name.split(".")[0] not in users:
            assert (data, mtime) == before[name], name  # untouched: not even rewritten
        elif not name.endswith(".background.wav"):
            assert data != before[name][0], name  # the new event is heard
    # the re-rendered files are what a fresh render of the new sources gives
    fresh = tmp_path / "fresh"
    render_plan(paths.plan_file(ws), fsd_dir=products.fsd_dir, tau_dir=products.tau_dir,
                out_dirs={20: fresh}, workers=1, progress=False)  # fmt: skip
    assert {n: d for n, (d, _) in after.items()} == {
        p.name: p.read_bytes() for p in fresh.glob("*.wav")
    }
    assert paths.feature_file(ws, 20).read_bytes() != old_features


def test_touched_source_with_the_same_bytes_redoes_nothing(prepared):
    profile, ws = prepared
    folder = paths.mixtures_dir(ws, 20)
    before = _wavs(folder)
    source = read_plan(paths.plan_file(ws))["source"].iloc[0]
    path = Path(profile.data.fsd_dir) / source
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert prepare_data(profile, ws, progress=False).ran == ("check",)  # re-read, same hash
    assert _wavs(folder) == before


def test_replaced_background_changes_the_plan_key_and_the_features(prepared):
    profile, ws = prepared
    plan = read_plan(paths.plan_file(ws))
    background = Path(profile.data.tau_dir) / plan["background"].iloc[0]
    audio, rate = sf.read(str(background))
    sf.write(str(background), audio[::-1].copy(), rate, subtype="PCM_24")  # same name and size
    ran = prepare_data(profile, ws, progress=False).ran
    assert ran == ("check", "plan", "render/snr20db", "features/snr20db")


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    profile = load_profile(write_tiny_profile(tmp_path / "tiny.yaml", epochs=1))
    workspace = paths.workspace_dir(profile.name)
    shape = {"time_steps": 16, "mel_bins": 8, "num_classes": 5, "events_per_clip": 1}
    return profile, workspace, shape


def test_changed_features_train_a_new_run_and_provenance_names_them(tiny):
    profile, ws, shape = tiny
    feats = paths.feature_file(ws, 20)
    write_synthetic_features(feats, clips_per_fold=3, seed=1, **shape)
    first = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    assert train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False).cached

    write_synthetic_features(feats, clips_per_fold=3, seed=2, **shape)  # data remade
    second = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)

    assert not second.cached and second.run_id != first.run_id
    digest = hashlib.sha256(feats.read_bytes()).hexdigest()
    assert second.key.features_sha256 == digest
    provenance = json.loads((second.run_dir / "provenance.json").read_text())
    assert provenance["feature_sha256"] == digest and provenance["feature_file"] == str(feats)
    old = json.loads((first.run_dir / "provenance.json").read_text())
    assert old["feature_sha256"] != digest  # the old run keeps naming what it used


def test_run_key_follows_the_features_not_unrelated_data_settings(tiny):
    profile, _, _ = tiny
    key = run_key(profile, model="GMP", snr_db=20, fold=1, features_sha256="a" * 64)
    other_snrs = profile_with_overrides(profile, {"data.snrs": [0, 20], "data.workers": 3})
    assert run_key(other_snrs, model="GMP", snr_db=20, fold=1, features_sha256="a" * 64) == key
    assert run_key(profile, model="GMP", snr_db=20, fold=1, features_sha256="b" * 64) != key
