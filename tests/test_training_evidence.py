"""Issue 10: chance levels, repeated cells, the CPU process pool, evidence tables, pocket vs paper."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import paths
from paperlib.config import ConfigError, load_profile, profile_with_overrides
from paperlib.experiment import grid_cells, run_grid
from paperlib.experiment.evidence import (
    LEARNING_FACTOR,
    chance_table,
    compare_pairs,
    learning_table,
    seed_spread,
)
from paperlib.metrics import MetricInputError, chance_levels
from paperlib.profile_diff import profile_comments, profile_differences

SHAPE = {"time_steps": 16, "mel_bins": 8, "num_classes": 5, "events_per_clip": 1}


def test_chance_levels_match_sklearn_on_imbalanced_labels():
    rng = np.random.default_rng(0)
    frequencies = np.array([0.6, 0.3, 0.1, 0.05])
    train = (rng.random((200, 4)) < frequencies).astype(int)
    val = (rng.random((80, 4)) < frequencies).astype(int)
    chance = chance_levels(train, val)
    assert chance.positive_share == pytest.approx(val.mean())
    scores = np.tile(train.mean(axis=0), (80, 1))
    expected = average_precision_score(val, scores, average="micro")
    assert chance.class_frequency == pytest.approx(expected)
    # on imbalanced labels the class-frequency scorer is far better than the positive share
    assert chance.class_frequency > chance.positive_share + 0.1
    assert chance.micro_ap == max(chance.positive_share, chance.class_frequency)
    with pytest.raises(MetricInputError, match="same classes"):
        chance_levels(train, val[:, :3])


def test_repeats_add_seeded_cells_of_the_listed_models_only(tmp_path):
    profile = load_profile(write_tiny_profile(tmp_path / "p.yaml"))
    profile = profile_with_overrides(
        profile, {"grid.repeat_models": ["2APAE", "GWRP"], "grid.repeat_seeds": [0, 3, 4]}
    )
    cells = grid_cells(profile)
    repeats = [c for c in cells if c.seed is not None]
    # GWRP is not a model of this grid; seed 0 is the profile's own seed (the first run)
    assert [(c.model, c.seed, c.alpha) for c in repeats] == [
        ("2APAE", 3, 0.001),
        ("2APAE", 4, 0.001),
    ]
    assert all(c.seed is None for c in grid_cells(profile, include_ablation=False))
    with pytest.raises(ConfigError, match=r"grid\.repeat_seeds"):
        profile_with_overrides(profile, {"grid.repeat_seeds": [-1]})
    with pytest.raises(ConfigError, match=r"grid\.workers"):
        profile_with_overrides(profile, {"grid.workers": 0})


def test_process_pool_gives_the_same_table_as_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    base = load_profile(write_tiny_profile(tmp_path / "p.yaml", epochs=1, num_threads=1))
    base = profile_with_overrides(base, {"grid.repeat_models": ["GMP"], "grid.repeat_seeds": [5]})
    ws = paths.workspace_dir(base.name)
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=4, **SHAPE)
    pooled = run_grid(profile_with_overrides(base, {"grid.workers": 2}), ws, progress=False)
    serial_ws = tmp_path / "serial"
    write_synthetic_features(paths.feature_file(serial_ws, 20), clips_per_fold=4, **SHAPE)
    serial = run_grid(base, serial_ws, progress=False)
    columns = ["model", "snr_db", "alpha", "decoder_activation", "seed", "metric", "value"]
    pd.testing.assert_frame_equal(pooled[columns], serial[columns])
    assert sorted(pooled["seed"].unique()) == [0, 5]
    assert (pooled["chance_micro_ap"] >= pooled["chance_positive_share"]).all()


def _results(rows):
    frame = pd.DataFrame(rows, columns=["model", "seed", "value", "chance"])
    frame["snr_db"], frame["fold"], frame["metric"] = 0, 1, "micro_ap"
    frame["alpha"], frame["decoder_activation"] = np.nan, "relu"
    frame["chance_micro_ap"] = frame["chance"]
    frame["chance_positive_share"] = frame["chance"]
    frame["chance_class_frequency"] = frame["chance"] / 2
    return frame


def test_learning_spread_and_pair_verdicts_by_hand():
    results = _results(
        [
            ("GMP", 0, 0.20, 0.07),
            ("GAP", 0, 0.30, 0.07),
            ("GAP", 1, 0.26, 0.07),
            ("GWRP", 0, 0.5, 0.07),
        ]
    )
    learned = learning_table(results).set_index(["model", "seed"])
    assert learned.loc[("GMP", 0), "times_chance"] == pytest.approx(0.20 / 0.07)
    assert not learned.loc[("GMP", 0), "learned"] and learned.loc[("GAP", 0), "learned"]
    assert LEARNING_FACTOR == 3.0
    spread = seed_spread(results)
    assert list(spread["model"]) == ["GAP"] and spread["spread"].iloc[0] == pytest.approx(0.04)
    chance = chance_table(results)
    assert chance["learning_bar"].iloc[0] == pytest.approx(0.21)
    means = pd.Series({"GWRP": 0.5, "GAP": 0.30, "GMP": 0.28})
    paper = pd.Series({"GWRP": 0.70, "GAP": 0.50, "GMP": 0.53})
    verdicts = compare_pairs(means, [("GWRP", "GAP"), ("GAP", "GMP"), ("GMP", "GWRP"), ("X", "GMP")],
                             0.04, paper=paper)  # fmt: skip
    assert list(verdicts["verdict"]) == ["agrees", "within spread", "reversed"]
    assert verdicts["paper"].iloc[1] == pytest.approx(-0.03)


def test_pocket_vs_paper_table_comes_from_the_profile_files():
    table = profile_differences("paper", "pocket").set_index("setting")
    paper, pocket = load_profile("paper"), load_profile("pocket")
    assert table.loc["model.width", "paper"] == str(paper.model.width)
    assert table.loc["model.width", "pocket"] == str(pocket.model.width)
    assert "train.batch_size" not in table.index  # the same in both: not a difference
    assert table.loc["train.lr", "why"] == profile_comments("pocket")["train.lr"]
    assert table.loc["train.lr", "why"]
    assert table["why"].str.len().gt(0).all()  # every change the pocket profile makes says why
    # the speed settings (issue 19) are listed with their values, the per-model budget readable
    assert table.loc["train.init", "paper"] == "paper" and table.loc["train.init", "why"]
    assert table.loc["train.steps", "paper"] == "–"
    budget = ", ".join(f"{k}: {v}" for k, v in pocket.train.steps_by_model.items())
    assert table.loc["train.steps_by_model", "pocket"] == budget
    assert profile_differences("paper", "paper").empty


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie has ended, only its entry is left)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_killing_the_grid_ends_its_workers(tmp_path):
    """kill -9 of the process running the grid must not leave its workers training on."""
    profile = write_tiny_profile(tmp_path / "p.yaml", epochs=400, num_threads=1)
    ws = tmp_path / "ws"
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=4, **SHAPE)
    script = (
        "from paperlib.config import load_profile, profile_with_overrides\n"
        "from paperlib.experiment import run_grid\n"
        "if __name__ == '__main__':\n"
        f"    p = profile_with_overrides(load_profile({str(profile)!r}), {{'grid.workers': 2}})\n"
        f"    run_grid(p, {str(ws)!r}, progress=False)\n"
    )
    driver = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 3:  # resource tracker + 2 workers
            time.sleep(0.5)
            workers = _children(driver.pid)
        assert len(workers) >= 2, "the grid did not start its workers"
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 15
    alive = workers
    while alive and time.monotonic() < deadline:  # SIGTERM ends them within a second or two
        time.sleep(0.5)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the killed grid"


def test_paper_orderings_by_hand():
    """Table IV and V orderings per SNR against differences computed by hand."""
    from paperlib.experiment.evidence import decoder_orderings, paper_orderings

    def row(model, alpha, decoder, snr, mean):
        return {"model": model, "alpha": alpha, "decoder_activation": decoder, "snr_db": snr,
                "metric": "micro_ap", "mean": mean, "std": 0.0, "n_folds": 1}  # fmt: skip

    nan = float("nan")
    ours = pd.DataFrame(
        [row("GMP", nan, "relu", 0, 0.10), row("GAP", nan, "relu", 0, 0.12),
         row("GWRP", nan, "relu", 0, 0.20), row("AtrousAP", nan, "relu", 0, 0.19),
         row("2APAE", 0.001, "relu", 0, 0.30), row("2APAE", 0.0, "relu", 0, 0.31),
         row("2APAE", 0.01, "relu", 0, 0.20), row("2APAE", 0.001, "linear", 0, 0.26),
         row("GMP", nan, "relu", 20, 0.5)]
    )  # fmt: skip
    paper = pd.DataFrame(
        [{"table": "IV", "model": m, "alpha": nan, "snr_db": 0, "metric": "micro_ap", "value": v}
         for m, v in (("GMP", 0.5), ("GAP", 0.4), ("GWRP", 0.6), ("AtrousAP", 0.65))]
        + [{"table": "IV", "model": "2APAE", "alpha": 0.001, "snr_db": 0, "metric": "micro_ap",
            "value": 0.7}]
        + [{"table": "V", "model": "2APAE", "alpha": a, "snr_db": 0, "metric": "micro_ap",
            "value": v} for a, v in ((0.0, 0.66), (0.001, 0.7), (0.01, 0.68))]
    )  # fmt: skip
    iv = paper_orderings(ours, paper, table="IV", snrs=[0], spread=0.02)
    expected_iv = {  # (better, worse): (ours, paper, verdict)
        ("2APAE", "AtrousAP"): (0.30 - 0.19, 0.7 - 0.65, "agrees"),
        ("AtrousAP", "GWRP"): (0.19 - 0.20, 0.65 - 0.6, "within spread"),
        ("GWRP", "GMP"): (0.20 - 0.10, 0.6 - 0.5, "agrees"),
        ("GWRP", "GAP"): (0.20 - 0.12, 0.6 - 0.4, "agrees"),
    }
    assert list(iv.index) == [(0, b, w) for b, w in expected_iv]
    for (b, w), (mine, theirs, verdict) in expected_iv.items():
        got = iv.loc[(0, b, w)]
        assert (got["ours"], got["paper"], got["verdict"]) == (
            pytest.approx(mine), pytest.approx(theirs), verdict)  # fmt: skip
    v = paper_orderings(ours, paper, table="V", snrs=[0, 20], spread=0.02, alpha=0.001)
    assert list(v.index) == [(0, 0.001, 0.0), (0, 0.001, 0.01)]  # 20 dB: no 2APAE cell
    assert list(v["verdict"]) == ["within spread", "agrees"]
    assert list(v["ours"]) == [pytest.approx(-0.01), pytest.approx(0.10)]
    assert list(v["paper"]) == [pytest.approx(0.04), pytest.approx(0.02)]
    dec = decoder_orderings(ours, snrs=[0, 20], alpha=0.001, spread=0.02)
    assert list(dec.index) == [(0, "linear decoder", "ReLU decoder")]
    assert dec["ours"].iloc[0] == pytest.approx(-0.04) and dec["verdict"].iloc[0] == "reversed"
    assert decoder_orderings(ours, snrs=[20], alpha=0.001, spread=0.02).empty
    with pytest.raises(ValueError, match="table V needs alpha"):
        paper_orderings(ours, paper, table="V", snrs=[0], spread=0.0)
    with pytest.raises(ValueError, match="table must be 'IV' or 'V', got 'VI'"):
        paper_orderings(ours, paper, table="VI", snrs=[0], spread=0.0)
