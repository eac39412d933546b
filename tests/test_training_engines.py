"""The grid on Ray: same table as the local engine, cache first, retries after kill -9, errors.

One local Ray instance (2 CPUs, no dashboard) serves the whole module. The smoke profile runs on
small synthetic feature files in temporary workspaces; the local engine's table is the reference.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import torch
from synthetic_workspace import write_synthetic_features

from paperlib import paths
from paperlib.config import load_profile_with_overrides
from paperlib.experiment import Cell, grid_cells, read_results, run_grid, split_complete
from paperlib.experiment.engine import (
    EngineError,
    EngineUnavailableError,
    GridCellError,
    check_engine_options,
)
from paperlib.experiment.ray_engine import TASK_PREFIX, cell_resources, run_on_ray
from paperlib.models import load_model
from paperlib.run import LOG_COLUMNS, FoldNotPresentError, train_run

SHAPE = {"time_steps": 24, "mel_bins": 12, "num_classes": 6, "events_per_clip": 2}
# smoke, 2 epochs, one torch thread (a Ray worker has one: results depend on the thread count),
# two models, no repeats, the local engine in one process; with the ablation:
# GMP, 2APAE, 2APAE α=0, 2APAE linear decoder
OVERRIDES = ["train.epochs=2", "train.num_threads=1", "grid.models=[GMP, 2APAE]", "grid.repeat_models=[]",
             "grid.workers=1", "grid.study_models=[]"]  # fmt: skip


def _profile(*extra: str):
    return load_profile_with_overrides("smoke", [*OVERRIDES, *extra])


def _workspace(root: Path, **features: int) -> Path:
    ws = root / "smoke"
    write_synthetic_features(paths.feature_file(ws, 20), seed=3, **{**SHAPE, **features})
    return ws


@pytest.fixture(scope="module")
def gcs_address():
    """A local Ray instance for the module; its GCS address (for a second driver)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             object_store_memory=100 * 2**20)  # fmt: skip
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def local_table(tmp_path_factory) -> pd.DataFrame:
    """The reference: the grid with the local engine."""
    ws = _workspace(tmp_path_factory.mktemp("local"), clips_per_fold=6)
    return run_grid(_profile(), ws, progress=False)


def _submitted(caplog) -> str:
    return " | ".join(r.getMessage() for r in caplog.records if "submitting" in r.getMessage())


def test_ray_grid_equals_local_and_skips_complete_cells(gcs_address, local_table, tmp_path,
                                                        caplog):  # fmt: skip
    profile = _profile()
    ws = _workspace(tmp_path, clips_per_fold=6)
    done = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    stamp = (done.run_dir / "provenance.json").stat().st_mtime_ns
    complete, pending = split_complete(profile, ws, grid_cells(profile))
    assert list(complete) == [Cell("GMP", 20, 1)] and len(pending) == 3

    with caplog.at_level(logging.INFO, logger="paperlib.experiment.ray_engine"):
        table = run_grid(profile, ws, progress=False, engine="ray")
    pd.testing.assert_frame_equal(table, local_table)
    pd.testing.assert_frame_equal(read_results(ws)[0], local_table, check_dtype=False)
    submitted = _submitted(caplog)
    assert "1 of 4 cells complete in the cache; submitting 3" in submitted
    assert "GMP" not in submitted.split(":", 1)[1]  # the complete cell was not sent
    assert (done.run_dir / "provenance.json").stat().st_mtime_ns == stamp

    stamps = {p: p.stat().st_mtime_ns for p in paths.runs_dir(ws).glob("*/*")}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="paperlib.experiment.ray_engine"):
        again = run_grid(profile, ws, progress=False, engine="ray")
    assert _submitted(caplog) == ""  # nothing submitted at all
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    pd.testing.assert_frame_equal(again, local_table)


def _worker_pids(name: str) -> list[int]:
    """PIDs of the Ray workers whose process title is ``ray::<name>``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith(f"ray::{name}"):
            found.append(int(proc.name))
    return found


def test_killed_worker_is_retried_and_resumes(gcs_address, tmp_path):
    """kill -9 of the worker after its first epoch: Ray retries, the cell resumes from state.pt."""
    profile = _profile("train.epochs=3", "grid.models=[2APAE]")
    bigger = {"clips_per_fold": 24, "time_steps": 64, "mel_bins": 24}
    reference = train_run(profile, _workspace(tmp_path / "ref", **bigger), model="2APAE",
                          snr_db=20, fold=1, progress=False)  # fmt: skip
    ws = _workspace(tmp_path / "ray", **bigger)
    log_file = reference.key.run_dir(ws) / "log.csv"
    seen: dict[str, object] = {}

    def kill_after_first_epoch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and "pid" not in seen:
            if log_file.is_file():
                rows = pd.read_csv(log_file)
                pids = _worker_pids(TASK_PREFIX + "2APAE")
                if len(rows) >= 1 and pids:
                    os.kill(pids[0], signal.SIGKILL)
                    finished = (log_file.parent / "metrics.json").exists()
                    seen.update(pid=pids[0], rows=rows, finished=finished)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_after_first_epoch)
    killer.start()
    table = run_grid(profile, ws, progress=False, include_ablation=False, engine="ray")
    killer.join()
    assert "pid" in seen and not seen["finished"], "the cell ended before it could be killed"
    rows_at_kill = seen["rows"]
    assert isinstance(rows_at_kill, pd.DataFrame) and len(rows_at_kill) < 3
    assert not Path(f"/proc/{seen['pid']}").exists()
    run_dir = reference.key.run_dir(ws)
    assert json.loads((run_dir / "metrics.json").read_text()) == reference.metrics
    log = pd.read_csv(run_dir / "log.csv")
    cols = [c for c in LOG_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(log[cols], reference.log[cols], check_exact=True)
    # resumed, not restarted: the epochs done before the kill keep their recorded wall time
    done = len(rows_at_kill)
    assert list(log["seconds"][:done]) == list(rows_at_kill["seconds"])
    assert set(table["run_id"]) == {reference.run_id}


def test_bad_cell_fails_the_grid_after_the_others(gcs_address, tmp_path):
    """A cell's own error (fold 4 is not in the data) is reported once the other cell is done."""
    profile = _profile("grid.models=[GMP]", "grid.folds=[4, 1]")
    ws = root = tmp_path / "smoke"
    write_synthetic_features(paths.feature_file(root, 20), seed=3, clips_per_fold=6,
                             folds=(1, 2, 3), **SHAPE)  # fmt: skip
    with pytest.raises(GridCellError) as info:
        run_grid(profile, ws, progress=False, include_ablation=False, engine="ray")
    assert list(info.value.failures) == ["GMP snr20 fold4"]
    assert isinstance(info.value.failures["GMP snr20 fold4"], FoldNotPresentError)
    assert "GMP snr20 fold4: FoldNotPresentError: fold 4 is not present" in str(info.value)
    (fold1,) = paths.runs_dir(ws).glob("GMP-snr20-fold1-*")
    assert (fold1 / "metrics.json").is_file()  # the good cell ran to the end
    assert not paths.results_dir(ws).exists()  # no tables from a failed grid


def test_run_directory_invisible_to_the_driver_is_named(gcs_address, tmp_path, monkeypatch):
    """A worker's run directory the driver cannot read (workspace not shared) stops the grid."""
    from paperlib.experiment import ray_engine as engines

    def unreadable(run_dir):
        raise FileNotFoundError(f"run {run_dir} is not complete: metrics.json is missing")

    profile = _profile("grid.models=[GMP]")
    ws = _workspace(tmp_path, clips_per_fold=6)
    monkeypatch.setattr(engines, "load_run", unreadable)  # the driver's view only
    with pytest.raises(engines.WorkspaceNotSharedError) as info:
        run_grid(profile, ws, progress=False, include_ablation=False, engine="ray")
    message = str(info.value)
    assert message.startswith("GMP snr20 fold1 finished on a worker but the driver cannot read")
    assert f"the workspace {ws} must be on storage every node" in message
    (run_dir,) = paths.runs_dir(ws).iterdir()
    assert (run_dir / "metrics.json").is_file()  # the worker did write it


def test_cuda_profile_on_a_cluster_without_gpu_is_refused(gcs_address, tmp_path):
    profile = _profile("train.device=cuda")
    ws = _workspace(tmp_path, clips_per_fold=6)
    with pytest.raises(EngineError, match="'cuda' but the Ray cluster has no GPU"):
        run_on_ray(profile, ws, grid_cells(profile), progress=False)
    assert not paths.runs_dir(ws).exists()


def test_two_drivers_on_one_workspace(gcs_address, local_table, tmp_path, caplog):
    """Two drivers (the CLI joining the same cluster, then this process) train the same cells.

    Half a CPU per cell gives 4 slots, so this driver's tasks start while the other driver's
    are still training: both write the same run directories at the same time.
    """
    ws = _workspace(tmp_path, clips_per_fold=6)
    # the Table IV cells (GMP, 2APAE) only: the reference's first two runs
    first_two = list(dict.fromkeys(local_table["run_id"]))[:2]
    expected = local_table[local_table["run_id"].isin(first_two)].reset_index(drop=True)
    env = {**os.environ, "PAPERLIB_WORKSPACE": str(tmp_path), "PAPERLIB_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "paperlib", "grid", "--profile", "smoke", "--no-prepare",
           "--no-progress", "--engine", "ray", "--address", gcs_address, "--cpus-per-cell", "0.5",
           "--no-ablation", *(a for o in OVERRIDES for a in ("--set", o))]  # fmt: skip
    other = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    deadline = time.time() + 120
    while other.poll() is None and time.time() < deadline:
        if any(paths.runs_dir(ws).glob("*/log.csv")):  # the other driver is mid-grid
            break
        time.sleep(0.01)
    with caplog.at_level(logging.INFO, logger="paperlib.experiment.ray_engine"):
        table = run_grid(_profile(), ws, progress=False, include_ablation=False, engine="ray",
                         cpus_per_cell=0.5)  # fmt: skip
    out, err = other.communicate(timeout=180)
    assert "submitting" in _submitted(caplog), "the other driver had finished every cell"
    assert other.returncode == 0, err
    assert "2 runs; results in" in out
    pd.testing.assert_frame_equal(table, expected)
    pd.testing.assert_frame_equal(read_results(ws)[0], expected, check_dtype=False)
    run_dirs = sorted(paths.runs_dir(ws).iterdir())
    assert [d.name for d in run_dirs] == sorted(first_two)
    for run_dir in run_dirs:
        assert sorted(p.name for p in run_dir.iterdir()) == sorted(
            ["best.pt", "config.yaml", "log.csv", "metrics.json", "provenance.json", "state.pt"]
        ), "a run directory holds leftovers of an interrupted write"
        log = pd.read_csv(run_dir / "log.csv")
        assert list(log["epoch"]) == [1, 2]
        state = torch.load(run_dir / "state.pt", weights_only=True)
        assert state["epoch"] == 2 and [r["epoch"] for r in state["log"]] == [1, 2]
        load_model(run_dir / "best.pt")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        for _, row in expected[expected["run_id"] == run_dir.name].iterrows():
            assert metrics[row["metric"]] == row["value"]


def test_engine_options_are_checked():
    check_engine_options("local")
    check_engine_options("ray", address="auto", cpus_per_cell=0.5)
    with pytest.raises(
        ValueError,
        match="unknown grid engine 'dask'; valid engines: local, serial, processes, gpus, ray",
    ):
        check_engine_options("dask")
    with pytest.raises(ValueError, match="apply to the ray engine only"):
        check_engine_options("local", address="auto")
    with pytest.raises(ValueError, match="cpus_per_cell must be a positive number of CPUs, got 0"):
        check_engine_options("ray", cpus_per_cell=0)


def test_cell_resources_follow_the_training_device():
    assert cell_resources("cpu", 4.0, 2) == (res := cell_resources("cpu", 0.0, 2.0))
    assert (res.num_cpus, res.num_gpus, res.device) == (2.0, 0, "cpu")
    assert cell_resources("cuda", 8.0) == cell_resources("cuda:3", 1.0)
    assert (cell_resources("cuda", 8.0).num_gpus, cell_resources("cuda", 8.0).device) == (1, "cuda")
    assert cell_resources("auto", 2.0).num_gpus == 1 and cell_resources("auto", 0.0).device == "cpu"
    assert cell_resources("auto", 0.0).num_cpus == 1.0
    with pytest.raises(EngineError, match="no GPU"):
        cell_resources("cuda", 0.0)


def test_cli_engine_errors(tmp_path, monkeypatch, capsys):
    from paperlib.cli import main

    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path))
    base = ["grid", "--profile", "smoke", "--no-prepare", "--no-progress"]
    assert main([*base, "--engine", "spark"]) == 2
    assert (
        "unknown grid engine 'spark'; valid engines: local, serial, processes, gpus, ray"
        in capsys.readouterr().err
    )
    assert main([*base, "--address", "auto"]) == 2
    assert "apply to the ray engine only" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(EngineUnavailableError, match=r"install the 'cluster' extra"):
        run_on_ray(_profile(), tmp_path, [], progress=False)
    _workspace(tmp_path, clips_per_fold=6)
    assert main([*base, "--engine", "ray", "--set", "grid.models=[GMP]"]) == 2
    assert "needs Ray, which is not installed" in capsys.readouterr().err
