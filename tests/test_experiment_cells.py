"""The grid's cells and engines: run ids pinned from before the split of ``paperlib.training``,
the cell count the book's preflight uses, the engine chosen by name, GPUs shared by cells.

The pinned run ids were computed on ``main`` before ``paperlib.training`` became
``paperlib.run`` and ``paperlib.experiment`` (with a fixed feature hash of 64 zeros): the same
settings must keep naming the same run directories, so existing caches stay valid.
"""

from __future__ import annotations

import pytest
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import paths
from paperlib.book import preflight
from paperlib.config import (
    ConfigError,
    load_profile,
    load_profile_with_overrides,
    profile_with_overrides,
)
from paperlib.experiment import Cell, grid_cells, run_cells
from paperlib.experiment import engines as engine_registry
from paperlib.experiment.engine import EngineError
from paperlib.experiment.engines import local_engine, make_engine
from paperlib.experiment.pools import GpuPool, ProcessPool, Serial
from paperlib.experiment.ray_engine import RayEngine, cell_resources
from paperlib.localisation import grid_runs
from paperlib.run import run_key, train_run

ZEROS = "0" * 64
# (profile, model, snr, fold, alpha, decoder, seed) -> run id, as main computed them
PINNED: dict[tuple, str] = {
    ("smoke", "GMP", 20, 1, None, None, None): "GMP-snr20-fold1-a25314d53d64",
    ("smoke", "GAP", 20, 1, None, None, None): "GAP-snr20-fold1-a76c5e730647",
    ("smoke", "GWRP", 20, 1, None, None, None): "GWRP-snr20-fold1-0a0ad1ad92a0",
    ("smoke", "AtrousAP", 20, 1, None, None, None): "AtrousAP-snr20-fold1-31da5d88b2ae",
    ("smoke", "2APAE", 20, 1, 0.001, "relu", None): "2APAE-snr20-fold1-969624c2d677",
    ("smoke", "2APAE", 20, 1, 0.0, "relu", None): "2APAE-snr20-fold1-12bf5b3380cf",
    ("smoke", "2APAE", 20, 1, 0.001, "linear", None): "2APAE-snr20-fold1-66e2063a6376",
    ("smoke", "2APAE", 20, 1, 0.001, "relu", 1): "2APAE-snr20-fold1-7f045338ae4a",
    ("pocket", "GMP", 0, 1, None, None, None): "GMP-snr0-fold1-6e64b3c9e6c9",
    ("pocket", "AtrousAP", 0, 1, None, None, None): "AtrousAP-snr0-fold1-60961ac764a1",
    ("pocket", "2APAE", 0, 1, 0.01, "relu", None): "2APAE-snr0-fold1-9aa049fad2c3",
    ("pocket", "2APAE", 0, 1, 0.001, "linear", None): "2APAE-snr0-fold1-e77e26bcc364",
    ("pocket", "2APAE", 0, 1, 0.001, "relu", 1): "2APAE-snr0-fold1-e33ce00214d1",
    ("pocket", "AtrousAP", 0, 1, None, None, 1): "AtrousAP-snr0-fold1-47362f26284a",
    ("pocket", "GWRP", 10, 1, None, None, None): "GWRP-snr10-fold1-a265a8af5be4",
    ("pocket", "2APAE", 10, 1, 0.001, "relu", None): "2APAE-snr10-fold1-3d435510f053",
    ("pocket", "GAP", 20, 1, None, None, None): "GAP-snr20-fold1-4322a6542e72",
    ("pocket", "2APAE", 20, 1, 0.001, "relu", None): "2APAE-snr20-fold1-bcd1cc2d544f",
}
CELL_COUNTS = {"smoke": 8, "pocket": 20}
"""Cells of Tables IV and V (with the repeats); the robustness study adds STUDY_COUNTS."""
STUDY_COUNTS = {"smoke": 8, "pocket": 12}
"""smoke: 2APAE-local fixed + 6 models random + a 2APAE repeat, at 20 dB; pocket: 2APAE-local
fixed x 2 SNRs + 4 models random x 2 SNRs + 2 repeats at 0 dB (random)."""


@pytest.mark.parametrize("name", ["smoke", "pocket"])
def test_run_ids_are_those_of_before_the_split(name: str) -> None:
    # the settings the ids were pinned with (pocket has since moved to bf16 and step budgets;
    # an epoch count clears the budgets)
    frozen = {"train.epochs": 60, "train.init": "paper", "train.precision": "fp32"}
    profile = load_profile(name)
    if name == "pocket":
        profile = profile_with_overrides(profile, frozen)
    cells = grid_cells(profile, include_study=False)
    assert len(cells) == CELL_COUNTS[name]
    assert len(grid_cells(profile)) == CELL_COUNTS[name] + STUDY_COUNTS[name]
    ids = {
        (name, c.model, c.snr_db, c.fold, c.alpha, c.decoder_activation, c.seed): run_key(
            profile, features_sha256=ZEROS, **c.kwargs()
        ).run_id
        for c in cells
    }
    pinned = {k: v for k, v in PINNED.items() if k[0] == name}
    assert {k: ids.get(k) for k in pinned} == pinned
    assert len(set(ids.values())) == len(ids)  # every cell its own run directory


def test_preflight_counts_the_grid_cells() -> None:
    # pocket: 5 models x 3 SNRs + ablation at 0 dB (alpha 0, 0.01, linear) + 2 repeats at 0 dB,
    # and the study: 2APAE-local fixed at 0/20 dB, 4 models random at 0/20 dB, 2 repeats random
    pocket = load_profile("pocket")
    assert preflight.grid_run_count(pocket) == 5 * 3 + 3 + 2 + 2 + 8 + 2 == len(grid_cells(pocket))
    paper = load_profile("paper")
    study = (2 + 12) * 4  # no repeats in the paper profile
    assert preflight.grid_run_count(paper) == 5 * 3 * 4 + 3 * 3 * 4 + study


def test_cells_per_gpu_is_validated() -> None:
    assert load_profile("pocket").grid.cells_per_gpu == 1
    assert load_profile_with_overrides("pocket", ["grid.cells_per_gpu=3"]).grid.cells_per_gpu == 3
    for bad in ("0", "-1", "1.5"):
        with pytest.raises(ConfigError, match="cells_per_gpu"):
            load_profile_with_overrides("pocket", [f"grid.cells_per_gpu={bad}"])


def test_engines_by_name() -> None:
    cpu = load_profile_with_overrides("pocket", ["train.device=cpu", "grid.workers=1"])
    assert local_engine(cpu) == "serial"
    assert local_engine(load_profile_with_overrides("pocket", ["train.device=cpu",
                                                               "grid.workers=2"])) == "processes"  # fmt: skip
    assert isinstance(make_engine("local", cpu), Serial)
    assert isinstance(make_engine("serial", cpu), Serial)
    assert isinstance(make_engine("processes", cpu), ProcessPool)
    assert isinstance(make_engine("gpus", cpu), GpuPool)
    ray = make_engine("ray", cpu, address="auto", cpus_per_cell=2)
    assert isinstance(ray, RayEngine) and (ray.address, ray.cpus_per_cell) == ("auto", 2)
    with pytest.raises(ValueError, match="valid engines: local, serial, processes, gpus, ray"):
        make_engine("threads", cpu)
    with pytest.raises(ValueError, match="apply to the ray engine only"):
        make_engine("processes", cpu, cpus_per_cell=1)


def test_gpus_engine_without_a_gpu_is_refused(tmp_path) -> None:
    cpu = load_profile_with_overrides("pocket", ["train.device=cpu"])
    with pytest.raises(EngineError, match="gpus engine needs a CUDA GPU"):
        run_cells(cpu, tmp_path, [Cell("GMP", 20, 1)], engine="gpus", progress=False)


def test_ray_asks_for_a_share_of_a_gpu_per_cell() -> None:
    assert cell_resources("cuda", 1.0, cells_per_gpu=4).num_gpus == pytest.approx(0.25)
    assert cell_resources("cuda", 1.0).num_gpus == 1
    assert cell_resources("cpu", 4.0, cells_per_gpu=4).num_gpus == 0
    with pytest.raises(ValueError, match="cells_per_gpu must be an integer >= 1, got 0"):
        cell_resources("cuda", 1.0, cells_per_gpu=0)


def test_localisation_trains_its_runs_on_the_grid_engine(tmp_path, monkeypatch) -> None:
    """``grid_runs(train_missing=True)`` goes through the engine ``grid.workers`` selects."""
    used: list[str] = []

    class Recording(Serial):  # the processes engine, run in this process to stay quick
        def run(self, profile, workspace, cells, *, progress, wait):
            used.append("processes")
            return super().run(profile, workspace, cells, progress=progress, wait=wait)

    monkeypatch.setattr(engine_registry, "ProcessPool", Recording)
    profile_path = write_tiny_profile(tmp_path / "tiny.yaml", epochs=1)
    profile = load_profile_with_overrides(profile_path, ["grid.workers=2", "grid.alphas=[]",
                                                         "grid.linear_decoder=false"])  # fmt: skip
    ws = tmp_path / "ws"
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=4, time_steps=24,
                             mel_bins=12, num_classes=6, events_per_clip=2)  # fmt: skip
    assert grid_runs(profile, ws) == []  # nothing trained yet, nothing asked
    runs = grid_runs(profile, ws, train_missing=True)
    assert used == ["processes"]
    assert [r.key.model for r in runs] == ["GMP", "2APAE"]
    again = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    assert again.cached and again.run_id == runs[0].run_id
    assert [r.run_id for r in grid_runs(profile, ws)] == [r.run_id for r in runs]
