"""Two commands on one workspace, subset grids and the disk (issue 14, findings 2 and 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from download_support import FakeZenodo, fake_archives, trimmed_specs
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import atomic, paths
from paperlib.cli import main
from paperlib.config import load_profile
from paperlib.download import download_datasets
from paperlib.download.catalog import FSD
from paperlib.experiment import grid_cells, read_results, run_grid
from paperlib.locking import LockedError, file_lock, workspace_lock
from paperlib.run import train_run

SHAPE = {"time_steps": 16, "mel_bins": 8, "num_classes": 5, "events_per_clip": 1}


@pytest.fixture()
def tiny(tmp_path):
    profile_path = write_tiny_profile(tmp_path / "tiny.yaml", epochs=1)
    ws = tmp_path / "ws"
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=2, seed=5, **SHAPE)
    return load_profile(profile_path), ws, profile_path


def test_two_identical_trainings_train_once(tiny) -> None:
    profile, ws, _ = tiny
    results = []

    def train() -> None:
        results.append(train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False))

    threads = [threading.Thread(target=train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(r.cached for r in results) == [False, True]  # one trained, one waited
    assert results[0].run_id == results[1].run_id
    same = [json.dumps(r.metrics, sort_keys=True) for r in results]  # NaN-aware comparison
    assert same[0] == same[1]


def test_a_busy_run_is_named_without_waiting(tiny, capsys) -> None:
    profile, ws, profile_path = tiny
    from paperlib.run import features_sha256, run_key

    key = run_key(profile, model="GMP", snr_db=20, fold=1,
                  features_sha256=features_sha256(paths.feature_file(ws, 20)))  # fmt: skip
    with workspace_lock(ws, f"run-{key.run_id}", what="held by the test"):
        with pytest.raises(
            LockedError, match=f"run {key.run_id} is in use by process {os.getpid()}"
        ):
            train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False, wait=False)
        code = main(["train", "--profile", str(profile_path), "--workspace", str(ws),
                     "--model", "GMP", "--snr", "20", "--fold", "1", "--no-prepare",
                     "--no-progress", "--no-wait"])  # fmt: skip
        assert code == 2 and "is in use by process" in capsys.readouterr().err
    assert not key.run_dir(ws).exists()  # nothing was started while it was busy


def test_a_lock_dies_with_its_holder(tmp_path) -> None:
    lock = tmp_path / "x.lock"
    script = (
        "import sys, time; from paperlib.locking import file_lock\n"
        "with file_lock(sys.argv[1], what='x'):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(lock)], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert holder.stdout.readline().strip() == b"held"
    with pytest.raises(LockedError, match=f"x is in use by process {holder.pid}"):
        with file_lock(lock, what="x", wait=False):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    start = time.monotonic()
    with file_lock(lock, what="x", wait=True, timeout_s=10):
        assert time.monotonic() - start < 5  # released by the kernel


def test_subset_grid_merges_into_the_results_and_trains_no_ablation(tiny) -> None:
    profile, ws, _ = tiny
    assert {c.model for c in grid_cells(profile, models=("GMP",))} == {"GMP"}  # no 2APAE cells
    full = run_grid(profile, ws, progress=False)
    assert len(full) == 4 * 3  # GMP, 2APAE and two ablation cells
    subset = run_grid(profile, ws, models=("GMP",), include_ablation=False, progress=False)
    assert set(subset["model"]) == {"GMP"}
    merged, per_class = read_results(ws)
    assert len(merged) == len(full) and set(merged["run_id"]) == set(full["run_id"])
    assert set(per_class["model"]) == {"GMP", "2APAE"}
    # new features: the subset's new GMP rows replace the old, the 2APAE rows of the old
    # features are dropped as stale instead of being shown beside them
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=2, seed=6, **SHAPE)
    fresh = run_grid(profile, ws, models=("GMP",), include_ablation=False, progress=False)
    merged, _ = read_results(ws)
    pd.testing.assert_frame_equal(merged, fresh)
    assert not set(fresh["run_id"]) & set(full["run_id"])


def test_train_and_grid_take_a_workspace(tiny, tmp_path, capsys) -> None:
    _, ws, profile_path = tiny
    assert main(["grid", "--profile", str(profile_path), "--workspace", str(ws), "--models",
                 "GMP", "--no-ablation", "--no-prepare", "--no-progress"]) == 0  # fmt: skip
    assert "1 runs; results in " + str(paths.results_dir(ws)) in capsys.readouterr().out
    assert [p.name.split("-")[0] for p in paths.runs_dir(ws).iterdir()] == ["GMP"]
    assert not (tmp_path / "workspace").exists()


def test_orphan_temporaries_of_dead_writers_are_removed(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".snr20db.h5.{dead.pid}.tmp"
    old_style = tmp_path / f".plan.csv.{dead.pid}.1a2b3c4d.tmp"
    alive = tmp_path / f".log.csv.{os.getpid()}.1a2b3c4d.tmp"
    other = tmp_path / ".notes.tmp"
    for path in (orphan, old_style, alive, other):
        path.write_text("x")
    assert sorted(atomic.clean_orphans(tmp_path)) == sorted([orphan, old_style])
    assert alive.exists() and other.exists()


def test_downloader_stops_at_the_declared_size(tmp_path) -> None:
    records = fake_archives()
    name = "FSDKaggle2018.audio_train.zip"
    good = records[FSD.record_id][name]
    with FakeZenodo(records, served={name: good + bytes(8 << 20)}) as server:  # 8 MiB too many
        result = download_datasets(tmp_path, base_url=server.base_url, datasets=trimmed_specs()[:1],
                                   progress=False, retry_wait_s=0.0, log=lambda _: None)  # fmt: skip
    assert (tmp_path / "FSDKaggle2018/audio_train/00044347.wav").is_file()  # verified and used
    others = sum(len(d) for n, d in records[FSD.record_id].items() if n != name)
    assert result.bytes_received - others < len(good) + (2 << 20)  # stopped, not 8 MiB more
