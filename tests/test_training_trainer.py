"""train_run: the recipe, the run directory, caching, bit-for-bit repeats, kill -9 resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import paths
from paperlib.config import load_profile
from paperlib.models import load_model
from paperlib.run import LOG_COLUMNS, CheckpointMismatchError, predict, train_run

SHAPE = {"time_steps": 16, "mel_bins": 8, "num_classes": 6, "events_per_clip": 2}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    # lr 0.03: the attention linears start at PyTorch's small default init (authors' code), which
    # learns this toy signal more slowly than lr 0.01 allows in 4 epochs
    profile = load_profile(write_tiny_profile(tmp_path / "tiny.yaml", epochs=4, lr=0.03))
    workspace = paths.workspace_dir(profile.name)
    feats = write_synthetic_features(
        paths.feature_file(workspace, 20), clips_per_fold=12, seed=1, **SHAPE
    )
    return profile, workspace, feats


def test_run_directory_records_everything(setup):
    profile, ws, feats = setup
    result = train_run(profile, ws, model="2APAE", snr_db=20, fold=1, progress=False)
    d = result.run_dir
    assert d.parent == paths.runs_dir(ws)
    assert d.name.startswith("2APAE-snr20-fold1-")
    for name in (
        "config.yaml",
        "provenance.json",
        "log.csv",
        "metrics.json",
        "best.pt",
        "state.pt",
    ):
        assert (d / name).is_file(), name
    log = pd.read_csv(d / "log.csv")
    assert tuple(log.columns) == LOG_COLUMNS and list(log["epoch"]) == [1, 2, 3, 4]
    # loss = bce + alpha * mse, with alpha = the profile's for 2APAE
    np.testing.assert_allclose(log["loss"], log["bce"] + 0.001 * log["mse"], rtol=1e-5)
    prov = json.loads((d / "provenance.json").read_text())
    assert set(prov["versions"]) >= {"python", "torch", "numpy", "sklearn", "paperlib"}
    assert prov["git_commit"] and prov["feature_sha256"] and len(prov["feature_sha256"]) == 64
    assert prov["precision"] == "fp32" and prov["device"] == "cpu"
    config = yaml.safe_load((d / "config.yaml").read_text())
    assert config["profile"]["train"]["epochs"] == 4 and config["run"]["alpha"] == 0.001
    m = json.loads((d / "metrics.json").read_text())
    best = log.loc[log["val_micro_ap"].idxmax()]
    assert m["best_epoch"] == int(best["epoch"])
    assert m["micro_ap"] == pytest.approx(best["val_micro_ap"])
    # the best checkpoint reproduces the best-epoch metric
    model = load_model(d / "best.pt")
    from paperlib.metrics import clip_metrics
    from paperlib.run import load_split

    split = load_split(feats, 1)
    scores = predict(model, split.x_val)
    assert clip_metrics(split.y_val, scores).micro_ap == pytest.approx(m["micro_ap"], abs=1e-6)
    # the model learns the synthetic signal: well above the class prior
    assert m["micro_ap"] > 1.5 * m["val_class_prior"]


def test_baseline_ignores_alpha_and_cache_hit(setup):
    profile, ws, _ = setup
    a = train_run(profile, ws, model="GMP", snr_db=20, fold=2, alpha=0.5, progress=False)
    log = a.log
    assert (log["mse"] == 0).all() and np.allclose(log["loss"], log["bce"])
    mtime = (a.run_dir / "metrics.json").stat().st_mtime_ns
    b = train_run(profile, ws, model="GMP", snr_db=20, fold=2, progress=False)
    assert b.cached and b.run_id == a.run_id  # alpha does not split baseline runs
    assert (a.run_dir / "metrics.json").stat().st_mtime_ns == mtime


def test_precision_is_part_of_the_run_key_and_the_device_is_not(setup):
    profile, _, _ = setup
    from paperlib.config import replace
    from paperlib.run import run_key

    def key(p):
        return run_key(p, model="GWRP", snr_db=20, fold=1, features_sha256="abc")

    base = key(profile)
    assert base.train["precision"] == "fp32"
    ids = {
        mode: key(replace(profile, train={"precision": mode})).run_id for mode in ("tf32", "bf16")
    }
    assert len({base.run_id, *ids.values()}) == 3  # each precision trains its own run
    assert key(replace(profile, train={"device": "cuda"})).run_id == base.run_id


def test_seeded_runs_repeat_bit_for_bit(setup, tmp_path):
    profile, ws, feats = setup
    a = train_run(profile, ws, model="AtrousAP", snr_db=20, fold=3, progress=False)
    b = train_run(
        profile, tmp_path / "other", model="AtrousAP", snr_db=20, fold=3, feature_path=feats,
        progress=False,
    )  # fmt: skip
    assert a.run_id == b.run_id and not b.cached
    cols = [c for c in LOG_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(a.log[cols], b.log[cols], check_exact=True)
    sa = torch.load(a.run_dir / "best.pt", weights_only=True)
    sb = torch.load(b.run_dir / "best.pt", weights_only=True)
    assert sa["state_dict"].keys() == sb["state_dict"].keys()
    for key, value in sa["state_dict"].items():
        assert torch.equal(value, sb["state_dict"][key])


def test_resume_from_other_model_or_size_refused(setup):
    profile, ws, _ = setup
    gmp = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    with pytest.raises(CheckpointMismatchError, match=r"name=GMP.*name=2APAE"):
        train_run(profile, ws, model="2APAE", snr_db=20, fold=1, resume_from=gmp.run_dir)
    from paperlib.config import replace

    wider = replace(profile, model={"width": 0.125})
    with pytest.raises(CheckpointMismatchError, match=r"width=0.0625.*width=0.125"):
        train_run(wider, ws, model="GMP", snr_db=20, fold=1, resume_from=gmp.run_dir)
    # nothing was created for the refused runs
    assert sorted(p.name.split("-")[0] for p in paths.runs_dir(ws).iterdir()) == ["GMP"]


def test_stale_state_of_other_model_in_run_dir_refused(setup):
    profile, ws, _ = setup
    gmp = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    from paperlib.run import features_sha256, run_key

    key = run_key(profile, model="GAP", snr_db=20, fold=1,
                  features_sha256=features_sha256(paths.feature_file(ws, 20)))  # fmt: skip
    key.run_dir(ws).mkdir(parents=True)
    (key.run_dir(ws) / "state.pt").write_bytes((gmp.run_dir / "state.pt").read_bytes())
    with pytest.raises(CheckpointMismatchError, match="GMP"):
        train_run(profile, ws, model="GAP", snr_db=20, fold=1, progress=False)
    assert sorted(p.name for p in key.run_dir(ws).iterdir()) == ["state.pt"]


def _train_cmd(profile_path: Path, feats: Path) -> list[str]:
    # the trainer alone (python -m paperlib would also import the data and book commands)
    script = (
        "import sys; from pathlib import Path; from paperlib import paths; "
        "from paperlib.config import load_profile; from paperlib.run import train_run; "
        "p = load_profile(sys.argv[2]); "
        "train_run(p, paths.workspace_dir(p.name), model=sys.argv[4], snr_db=int(sys.argv[6]), "
        "fold=int(sys.argv[8]), feature_path=Path(sys.argv[10]), progress=False)"
    )
    return [
        sys.executable, "-c", script, "--profile", str(profile_path),
        "--model", "2APAE", "--snr", "20", "--fold", "1", "--features", str(feats),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "settings",
    [
        {"epochs": 6},
        # the pocket's speed settings: bf16 autocast, prior init, a budget of 17 steps = 6 epochs
        {"precision": "bf16", "init": "prior", "steps": 17},
    ],
    ids=["fp32", "bf16-prior-steps"],
)
def test_sigkill_mid_run_resumes_to_identical_metrics(tmp_path, settings):
    """A real subprocess killed with SIGKILL resumes and ends exactly like an unkilled run."""
    # one torch thread: with two, oneDNN kernels may differ from run to run in the 6th digit
    profile_path = write_tiny_profile(tmp_path / "tiny.yaml", lr=0.01, num_threads=1, **settings)
    feats = write_synthetic_features(tmp_path / "f.h5", clips_per_fold=6, seed=2, **SHAPE)
    env_b = {**os.environ, "PAPERLIB_WORKSPACE": str(tmp_path / "b")}
    profile = load_profile(profile_path)
    full = train_run(profile, tmp_path / "a" / "tiny", model="2APAE", snr_db=20, fold=1,
                     feature_path=feats, progress=False)  # fmt: skip
    proc = subprocess.Popen(_train_cmd(profile_path, feats), env=env_b,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    runs = tmp_path / "b" / "tiny" / "runs"
    deadline = time.time() + 240
    killed_after = 0
    while time.time() < deadline and proc.poll() is None:
        logs = list(runs.glob("*/log.csv"))
        if logs:
            killed_after = len(pd.read_csv(logs[0]))
            if killed_after >= 2:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    run_dir = next(runs.iterdir())
    assert not (run_dir / "metrics.json").exists()
    resumed = subprocess.run(_train_cmd(profile_path, feats), env=env_b, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert run_dir.name == full.run_id
    a = json.loads((full.run_dir / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert a == b
    log_a = pd.read_csv(full.run_dir / "log.csv")
    log_b = pd.read_csv(run_dir / "log.csv")
    cols = [c for c in LOG_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(log_a[cols], log_b[cols], check_exact=True)
    assert list(log_b["epoch"]) == list(range(1, 7))


def test_step_budget_trains_whole_epochs_and_replaces_epochs_in_the_key(setup):
    """train.steps: ceil(steps / steps per epoch) whole epochs; epochs no longer in the run id."""
    profile, ws, _ = setup
    from paperlib.config import replace

    # 3 training folds x 12 clips = 36 clips, batch 8: 5 steps an epoch; 11 steps -> 3 epochs
    budget = replace(profile, train={"steps": 11})
    result = train_run(budget, ws, model="GMP", snr_db=20, fold=1, progress=False)
    assert list(result.log["epoch"]) == [1, 2, 3]
    assert list(result.log["step"]) == [5, 10, 15]
    assert "epochs" not in result.key.train and result.key.train["steps"] == 11
    other_epochs = replace(budget, train={"epochs": 50})
    again = train_run(other_epochs, ws, model="GMP", snr_db=20, fold=1, progress=False)
    assert again.cached and again.run_id == result.run_id


def test_prior_init_starts_gmp_at_the_training_prior(setup):
    """train.init: prior -- a new run id, and GMP's first-epoch loss far below the paper init's."""
    profile, ws, _ = setup
    from paperlib.config import replace

    one = replace(profile, train={"epochs": 1, "lr": 1e-6})  # lr ~0: the loss of the init
    paper = train_run(one, ws, model="GMP", snr_db=20, fold=1, progress=False)
    prior = train_run(replace(one, train={"init": "prior"}), ws, model="GMP", snr_db=20,
                      fold=1, progress=False)  # fmt: skip
    assert prior.run_id != paper.run_id and prior.key.train["init"] == "prior"
    assert "init" not in paper.key.train  # the default keeps the ids of earlier runs
    # every clip probability equals its class prior p: the BCE of those constant scores
    from paperlib.run.features import load_split

    y = load_split(paths.feature_file(ws, 20), 1).y_train.astype(np.float64)
    p = np.clip(y.mean(axis=0), 0.5 / len(y), 1 - 0.5 / len(y))  # half a clip from 0 and 1
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert prior.log["bce"].iloc[0] == pytest.approx(expected, rel=1e-3)
    assert paper.log["bce"].iloc[0] > 2 * expected


def test_run_key_holds_only_its_models_budget():
    """A GAP budget changes GAP's run id and no other model's; new fields at their defaults
    leave the key as it was before they existed; an unknown model is named."""
    from paperlib.config import profile_with_overrides
    from paperlib.run import run_key

    pocket = load_profile("paper")
    plain = run_key(pocket, model="GMP", snr_db=0, fold=1)
    assert not {"steps", "init", "steps_by_model"} & set(plain.train)
    assert plain.train["epochs"] == pocket.train.epochs
    budget = profile_with_overrides(pocket, {"train.steps": 400})
    slow = profile_with_overrides(budget, {"train.steps_by_model": {"GAP": 800}})
    gmp, gap = (run_key(slow, model=m, snr_db=0, fold=1) for m in ("GMP", "GAP"))
    assert gmp.train["steps"] == 400 and gap.train["steps"] == 800
    assert "epochs" not in gmp.train and "steps_by_model" not in gap.train
    assert gmp.run_id == run_key(budget, model="GMP", snr_db=0, fold=1).run_id
    assert gap.run_id != run_key(budget, model="GAP", snr_db=0, fold=1).run_id
    typo = profile_with_overrides(budget, {"train.steps_by_model": {"GAPP": 800}})
    with pytest.raises(ValueError, match=r"unknown model\(s\) GAPP; valid models: GMP, GAP"):
        run_key(typo, model="GMP", snr_db=0, fold=1)
