"""Issue 22: the command line as a user runs it, in real subprocesses on tiny files.

Each refusal is one line naming the file or value and what was expected (exit 2), made before
any run folder exists; nothing already written changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib.config import load_profile
from paperlib.run import train_run

SHAPE = {"time_steps": 16, "mel_bins": 8, "num_classes": 6, "events_per_clip": 2}


def paperlib(*args: str, workspace: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PAPERLIB_WORKSPACE": str(workspace)}
    return subprocess.run(
        [sys.executable, "-m", "paperlib", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(profile file, feature file, workspace root) of a two-epoch toy problem."""
    profile = write_tiny_profile(tmp_path / "tiny.yaml", epochs=2, lr=0.03, num_threads=1)
    feats = write_synthetic_features(tmp_path / "snr20db.h5", clips_per_fold=4, seed=1, **SHAPE)
    return profile, feats, tmp_path / "ws"


def train_args(profile: Path, feats: Path, *extra: str) -> list[str]:
    return [
        "train", "--profile", str(profile), "--model", "2APAE", "--snr", "20", "--fold", "1",
        "--features", str(feats), "--no-progress", *extra,
    ]  # fmt: skip


def runs(ws: Path) -> list[str]:
    folder = ws / "tiny" / "runs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_resume_refuses_another_runs_state(tiny: tuple[Path, Path, Path]) -> None:
    profile, feats, ws = tiny
    done = paperlib(*train_args(profile, feats), workspace=ws)
    assert done.returncode == 0, done.stderr
    first = Path(json.loads(done.stdout)["run_dir"])
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    refused = paperlib(
        *train_args(profile, feats, "--set", "train.seed=7", "--resume", str(first)), workspace=ws
    )
    assert_one_line_error(refused, str(first / "state.pt"), "train.seed: 0 in the state, 7 here")
    refused = paperlib(
        *train_args(
            profile, feats, "--set", "train.epochs=1", "--set", "train.lr=0.5", "--resume", first
        ),
        workspace=ws,
    )
    line = assert_one_line_error(refused, "train.epochs: 2 in the state, 1 here")
    assert "train.lr: 0.03 in the state, 0.5 here" in line
    assert runs(ws) == [first.name]  # no run folder for the refused runs
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before

    # a state written before states recorded their run key: accepted on the model spec alone
    state = torch.load(first / "state.pt", weights_only=True)
    assert state["run_key"]["train"]["seed"] == 0
    del state["run_key"]
    old = first.parent.parent / "old-state.pt"
    torch.save(state, old)
    loaded = load_profile(profile)
    resumed = train_run(
        loaded, ws / "tiny", model="2APAE", snr_db=20, fold=1, seed=7, feature_path=feats,
        resume_from=old, progress=False,
    )  # fmt: skip
    assert resumed.metrics["epochs"] == 2 and not resumed.cached


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--alpha", "nan"), "--alpha nan: train.alpha must be a number >= 0, got nan"),
        (("--alpha", "-1"), "--alpha -1.0: train.alpha must be a number >= 0, got -1.0"),
        (("--alpha", "inf"), "--alpha inf: train.alpha must be a number >= 0, got inf"),
        (("--fold", "5"), "--fold 5: grid.folds must be a non-empty list of folds 1-4"),
        (("--decoder-activation", "tanh"), "--decoder-activation tanh: model.decoder_activation"),
    ],
)
def test_train_flags_pass_the_profile_checks(
    tiny: tuple[Path, Path, Path], flags: tuple[str, str], expected: str
) -> None:
    profile, feats, ws = tiny
    args = train_args(profile, feats, *flags)
    if flags[0] == "--fold":  # the fold flag is given once
        args[args.index("--fold") + 1] = flags[1]
        args = args[: -len(flags)]
    assert_one_line_error(paperlib(*args, workspace=ws), expected)
    assert runs(ws) == []
    # the same value through --set is refused the same way
    if flags[0] == "--alpha":
        same = paperlib(
            *train_args(profile, feats, "--set", f"train.alpha={flags[1]}"), workspace=ws
        )
        assert_one_line_error(same, "train.alpha")


def test_grid_flags_pass_the_profile_checks(tiny: tuple[Path, Path, Path]) -> None:
    profile, _, ws = tiny
    done = paperlib("grid", "--profile", profile, "--no-prepare", "--folds", "0", "1", workspace=ws)
    assert_one_line_error(done, "--folds 0 1: grid.folds must be a non-empty list of folds 1-4")
    assert not (ws / "tiny").exists()


def dcase_settings(root: Path) -> list[str]:
    """``--set`` items: the smoke profile on the real-layout folders under ``root``."""
    items = [
        "data.source=dcase", f"data.fsd_dir={root / 'fsd'}", f"data.tau_dir={root / 'tau'}",
        "data.mixtures_per_fold=2", "data.snrs=[20]", "data.workers=1", "train.epochs=1",
    ]  # fmt: skip
    return [part for item in items for part in ("--set", item)]


def test_exclusions_carry_over_to_train_and_grid(tmp_path: Path) -> None:
    from data_support import make_sources, write_event

    fsd, _tau = make_sources(tmp_path, events=44, backgrounds=8)
    silent = sorted((fsd / "audio_train").iterdir())[:2]
    for path in silent:
        write_event(path, 1.0, level=0.0)
    ws = tmp_path / "ws"
    common = ["--profile", "smoke", *dcase_settings(tmp_path)]
    stopped = paperlib("data", "all", *common, "--quiet", workspace=ws)
    assert stopped.returncode == 2
    assert "2 source file(s) cannot be used" in stopped.stderr
    assert "`python -m paperlib data all --exclude-bad`" in stopped.stderr  # advice that works
    assert all(p.name in stopped.stderr for p in silent)
    done = paperlib("data", "all", *common, "--exclude-bad", "--quiet", workspace=ws)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((ws / "smoke" / "data" / "manifest.json").read_text())
    assert sorted(e["file"] for e in manifest["excluded"]) == sorted(p.name for p in silent)
    plan = (ws / "smoke" / "data" / "plan.csv").read_bytes()

    # a plain train (no flag) leaves the same files out and does not remake the data
    cell = ["--model", "GMP", "--snr", "20", "--fold", "1", "--no-progress"]
    trained = paperlib("train", *common, *cell, workspace=ws)
    assert trained.returncode == 0, trained.stderr
    assert (ws / "smoke" / "data" / "plan.csv").read_bytes() == plan
    grid = ["--models", "GMP", "--no-ablation", "--no-progress"]
    gridded = paperlib("grid", *common, *grid, workspace=ws)
    assert gridded.returncode == 0, gridded.stderr
    assert runs_of(ws) == [json.loads(trained.stdout)["run_id"]]  # the grid's cell: cached

    # a file that turns bad afterwards still stops them, with the whole table
    third = sorted((fsd / "audio_train").iterdir())[2]
    write_event(third, 1.0, level=0.0)
    again = paperlib("train", *common, *cell, workspace=ws)
    assert again.returncode == 2 and "3 source file(s) cannot be used" in again.stderr
    assert third.name in again.stderr


def runs_of(ws: Path) -> list[str]:
    return sorted(p.name for p in (ws / "smoke" / "runs").iterdir())


def test_data_check_reports_a_truncated_wav(tmp_path: Path) -> None:
    from data_support import make_sources

    from paperlib.data.check import wav_data_bytes

    fsd, _tau = make_sources(tmp_path, events=41, backgrounds=8)
    victim = sorted((fsd / "audio_train").iterdir())[0]
    whole = victim.read_bytes()
    declared, present = wav_data_bytes(whole)
    assert declared == present == len(whole) - 44  # soundfile's plain 44-byte header
    victim.write_bytes(whole[: 44 + declared // 2])  # the header still declares every byte
    assert wav_data_bytes(victim.read_bytes()) == (declared, declared // 2)
    done = paperlib(
        "data", "check", "--profile", "smoke", *dcase_settings(tmp_path), "--quiet",
        workspace=tmp_path / "ws",
    )  # fmt: skip
    assert done.returncode == 2
    assert "1 source file(s) cannot be used" in done.stderr
    line = next(x for x in done.stderr.splitlines() if "truncated" in x)
    assert str(victim) in line
    assert f"declares {declared:,} bytes of audio, the file holds {declared // 2:,}" in line


def test_data_check_lists_every_listing_problem_in_one_pass(tmp_path: Path) -> None:
    import pandas as pd
    from data_support import make_sources

    fsd, tau = make_sources(tmp_path, events=41, backgrounds=8)
    listing = pd.read_csv(fsd / "train_post_competition.csv", dtype=str)
    listing.loc[0, "label"] = "Kazoo"  # a bad label in the columns that are present
    listing.drop(columns=["manually_verified"]).to_csv(
        fsd / "train_post_competition.csv", index=False
    )
    meta = pd.read_csv(tau / "meta.csv", sep="\t", dtype=str)
    meta.loc[1, "scene_label"] = "moon"
    meta.assign(extra="x").to_csv(tau / "meta.csv", sep="\t", index=False)
    done = paperlib(
        "data", "check", "--profile", "smoke", *dcase_settings(tmp_path), "--quiet",
        workspace=tmp_path / "ws",
    )  # fmt: skip
    assert done.returncode == 2
    text = done.stderr
    assert "2 dataset listing(s) cannot be read" in text
    assert f"{fsd / 'train_post_competition.csv'}: missing column(s) ['manually_verified']" in text
    assert f"{tau / 'meta.csv'}: unexpected column(s) ['extra']" in text
    assert "line 2 (00001000.wav): label 'Kazoo' is not one of the 41 classes" in text
    assert "line 3 (" in text and "scene_label 'moon'" in text
    assert not (tmp_path / "ws" / "smoke" / "data" / "plan.csv").exists()


@pytest.mark.parametrize("damage", ['{"micro_ap": 0.5, "per_cl', '{"micro_ap": 0.5}'])
def test_damaged_metrics_name_the_file_and_the_run_is_trained_again(
    tiny: tuple[Path, Path, Path], damage: str
) -> None:
    from paperlib.run import load_run
    from paperlib.run.result import DamagedRunError

    profile, feats, ws = tiny
    done = paperlib(*train_args(profile, feats), workspace=ws)
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    metrics = run_dir / "metrics.json"
    good = json.loads(metrics.read_text())
    metrics.write_text(damage)
    with pytest.raises(DamagedRunError, match=f"^{metrics}: "):
        load_run(run_dir)
    again = paperlib(*train_args(profile, feats), workspace=ws)
    assert again.returncode == 0, again.stderr
    warning = [line for line in again.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and str(metrics) in warning[0] and "trained again" in warning[0]
    # resumed from the last state: the same numbers as before the damage
    assert json.loads(metrics.read_text()) == good
    assert runs(ws) == [run_dir.name]


def test_snr_flag_must_match_the_feature_files_own_snr(tiny: tuple[Path, Path, Path]) -> None:
    profile, _, ws = tiny
    at0 = write_synthetic_features(ws.parent / "snr0db.h5", clips_per_fold=4, snr_db=0, **SHAPE)
    args = train_args(profile, at0)
    refused = paperlib(*args, workspace=ws)  # --snr 20 with the 0-dB features
    assert_one_line_error(refused, f"{at0} holds features at 0 dB", "--snr 0")
    assert runs(ws) == []
    args[args.index("--snr") + 1] = "0"
    done = paperlib(*args, workspace=ws)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((Path(json.loads(done.stdout)["run_dir"]) / "metrics.json").read_text())
    assert metrics["snr_db"] == 0


@pytest.mark.parametrize("size", [-1, 0])
def test_download_record_with_a_non_positive_size_is_invalid(tmp_path: Path, size: int) -> None:
    from download_support import FakeZenodo, fake_archives

    from paperlib.download.catalog import FSD

    records = {FSD.record_id: fake_archives()[FSD.record_id]}
    with FakeZenodo(records) as server:
        honest = server.record_json

        def record_json(record_id: str) -> dict:
            payload = honest(record_id)
            payload["files"][0]["size"] = size
            return payload

        server.record_json = record_json  # type: ignore[method-assign]
        bad = record_json(FSD.record_id)["files"][0]["key"]
        done = paperlib(
            "download", "--dest", tmp_path / "d", "--only", "fsd", "--yes", "--no-progress",
            "--base-url", server.base_url, workspace=tmp_path / "ws", timeout=120,
        )  # fmt: skip
        assert server.file_requests() == []  # nothing was fetched
    assert_one_line_error(done, f"file {bad!r} declares size {size}", "record is invalid")
    assert not list((tmp_path / "d").rglob("*.part"))


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/b", "..", ".hidden", "~x", ""])
def test_profile_name_must_be_a_plain_name(tmp_path: Path, name: str) -> None:
    ws = tmp_path / "root" / "ws"
    done = paperlib("data", "check", "--profile", "smoke", "--set", f"name={name}", workspace=ws)
    assert_one_line_error(done, "name must be a plain name", repr(name))
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"name": name}))
    done = paperlib("train", "--profile", bad, "--model", "GMP", "--snr", "20", "--fold", "1",
                    workspace=ws)  # fmt: skip
    assert_one_line_error(done, f"{bad}: name must be a plain name")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.yaml"]  # no folder anywhere


def test_a_link_out_of_the_dataset_folder_is_refused(tmp_path: Path) -> None:
    from data_support import make_sources, write_event

    fsd, _tau = make_sources(tmp_path / "data", events=41, backgrounds=8)
    outside = tmp_path / "secret.wav"
    write_event(outside, 1.0)
    victim = sorted((fsd / "audio_train").iterdir())[0]
    victim.unlink()
    victim.symlink_to(outside)
    inside = sorted((fsd / "audio_train").iterdir())[1]
    inside.rename(fsd / "kept.wav")
    inside.symlink_to(fsd / "kept.wav")  # a link that stays inside the folder is fine
    done = paperlib(
        "data", "check", "--profile", "smoke", *dcase_settings(tmp_path / "data"), "--quiet",
        workspace=tmp_path / "ws",
    )  # fmt: skip
    assert done.returncode == 2
    assert "1 source file(s) cannot be used" in done.stderr
    line = next(x for x in done.stderr.splitlines() if "resolves to" in x)
    assert f"{victim} resolves to {outside}, outside {fsd}" in line
    scanned = (tmp_path / "ws" / "smoke" / "data" / "source_scan.json").read_text()
    assert str(outside) not in scanned and str(victim) not in scanned  # never read
    assert str(inside) in scanned
