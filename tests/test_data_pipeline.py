"""prepare_data caching (skips done stages, redoes changed ones) and the `data` command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest

from paperlib import paths
from paperlib.cli import main
from paperlib.config import load_profile, profile_with_overrides
from paperlib.data.pipeline import prepare_data, source_dirs

TINY = {
    "data.pocket_events_per_class": 2,
    "data.pocket_backgrounds": 8,
    "data.mixtures_per_fold": 2,
    "data.snrs": [20],
    "data.workers": 1,
    "data.study_onsets": [],  # one recipe here (both: test_data_onsets.py)
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple:
    profile = profile_with_overrides(load_profile("smoke"), TINY)
    ws = tmp_path_factory.mktemp("ws")
    return profile, ws, prepare_data(profile, ws, progress=False)


def test_prepare_data_makes_every_product_and_a_second_call_does_nothing(prepared) -> None:
    profile, ws, products = prepared
    assert products.ran == ("pocket", "check", "plan", "render/snr20db", "features/snr20db")
    assert products.plan_path == paths.plan_file(ws)
    assert products.feature_files == {20: paths.feature_file(ws, 20)}
    assert products.mixture_dirs == {20: paths.mixtures_dir(ws, 20)}
    tracks = products.mixture_dirs[20].parent / "tracks"  # one pair per mixture, every SNR
    assert len(list(tracks.glob("*.events.flac"))) == 8
    assert len(list((tracks.parent / "backgrounds").glob("*.flac"))) == 8
    with h5py.File(products.feature_files[20], "r") as f:
        assert f.attrs["complete"] and f["features"].shape == (8, 311, 64)
    assert prepare_data(profile, ws, progress=False).ran == ()


def test_changed_inputs_redo_only_the_stages_that_depend_on_them(prepared, tmp_path: Path) -> None:
    profile, ws, _ = prepared
    shutil.copytree(ws, tmp_path, dirs_exist_ok=True)
    more = profile_with_overrides(profile, {"data.snrs": [20, 0]})
    # a copied workspace reads its sources once more (new paths and inodes), then reuses them
    ran = prepare_data(more, tmp_path, progress=False).ran
    assert ran == ("check", "render/snr0db", "features/snr0db")
    other_plan = profile_with_overrides(more, {"data.seed": 99, "data.pocket_events_per_class": 2})
    ran = prepare_data(other_plan, tmp_path, progress=False).ran
    assert ran[0] == "pocket" and "plan" in ran  # the seed also seeds the pocket corpus
    (paths.feature_file(tmp_path, 0)).unlink()  # a deleted output is remade
    assert prepare_data(other_plan, tmp_path, progress=False).ran == ("features/snr0db",)


def test_dcase_source_reads_the_configured_folders(prepared, tmp_path: Path) -> None:
    profile, ws, _ = prepared
    fsd, tau = source_dirs(profile, ws)
    dcase = profile_with_overrides(
        profile, {"data.source": "dcase", "data.fsd_dir": str(fsd), "data.tau_dir": str(tau)}
    )
    assert source_dirs(dcase, tmp_path) == (fsd, tau)
    products = prepare_data(dcase, tmp_path, progress=False)
    assert "pocket" not in products.ran
    assert (
        products.plan_path.read_bytes() == paths.plan_file(ws).read_bytes()
    )  # same sources, same plan
    with pytest.raises(ValueError, match=r"data\.source must be pocket or dcase, got 'tape'"):
        source_dirs(profile_with_overrides(profile, {"data.source": "tape"}), tmp_path)


def test_cli_runs_stages_and_reports_errors(prepared, tmp_path: Path, capsys) -> None:
    _, ws, _ = prepared
    shutil.copytree(ws, tmp_path, dirs_exist_ok=True)
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]

    def data(stage: str, *extra: str) -> int:
        common = ["--profile", "smoke", "--workspace", str(tmp_path), "--quiet", *sets]
        return main(["data", stage, *common, *extra])

    assert data("all") == 0
    assert "ran: check\n" in capsys.readouterr().out  # the copy's sources are read once
    assert data("all") == 0
    assert "nothing (all up to date)" in capsys.readouterr().out
    assert data("plan", "--force") == 0
    assert "ran: plan" in capsys.readouterr().out
    assert data("plan", "--set", "data.mixtures_per_fold=50") == 2
    assert "background(s) available" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["data", "render", "--help"])
    assert info.value.code == 0 and "--profile" in capsys.readouterr().out
