"""run_grid: cells, caching, tidy tables; the paper-table helpers; the CLI's errors."""

import numpy as np
import pandas as pd
import pytest
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import paths
from paperlib.config import load_profile
from paperlib.experiment import grid_cells, read_results, run_grid
from paperlib.experiment.tables import (
    NO_ALPHA,
    paper_results,
    relative_gains,
    side_by_side,
    summarise_over_folds,
)

SHAPE = {"time_steps": 16, "mel_bins": 8, "num_classes": 5, "events_per_clip": 1}


def test_grid_cells_dedupe_and_ablation(tmp_path):
    profile = load_profile(write_tiny_profile(tmp_path / "p.yaml"))
    cells = grid_cells(profile)
    # GMP, 2APAE(α=0.001, relu) + ablation α=0 and linear; α=0.001 relu not repeated
    assert [(c.model, c.alpha, c.decoder_activation) for c in cells] == [
        ("GMP", None, None),
        ("2APAE", 0.001, "relu"),
        ("2APAE", 0.0, "relu"),
        ("2APAE", 0.001, "linear"),
    ]
    assert len(grid_cells(profile, include_ablation=False)) == 2


def test_grid_runs_caches_and_writes_tidy_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    profile = load_profile(write_tiny_profile(tmp_path / "p.yaml", epochs=1))
    ws = paths.workspace_dir(profile.name)
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=4, **SHAPE)
    table = run_grid(profile, ws, progress=False)
    assert len(table) == 4 * 3  # 4 cells x 3 metrics
    assert set(table.columns) >= {"model", "snr_db", "fold", "alpha", "decoder_activation",
                                  "metric", "value", "run_id"}  # fmt: skip
    assert table.loc[table["model"] == "GMP", "alpha"].isna().all()
    results, per_class = read_results(ws)
    pd.testing.assert_frame_equal(results, table, check_dtype=False)
    assert len(per_class) == 4 * 5 and set(per_class["run_id"]) == set(table["run_id"])
    stamps = {p: p.stat().st_mtime_ns for p in paths.runs_dir(ws).glob("*/metrics.json")}
    again = run_grid(profile, ws, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # every cell was cached
    pd.testing.assert_frame_equal(again, table)


def test_read_results_before_grid(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the grid first"):
        read_results(tmp_path)


def test_paper_relative_gains_match_the_quoted_ones():
    paper = paper_results()
    gains = relative_gains(paper[paper["table"] == "IV"])
    assert list(gains["snr_db"]) == [20, 10, 0]
    assert list(gains["best_baseline"]) == ["AtrousAP"] * 3
    np.testing.assert_allclose(gains["gain_percent"], [5.9, 12.8, 22.3], atol=0.05)


def test_summary_and_side_by_side():
    rows = []
    for fold, v in ((1, 0.5), (2, 0.7)):
        for model, alpha in (("GMP", np.nan), ("2APAE", 0.001)):
            for metric in ("micro_ap", "macro_ap", "roc_auc"):
                rows.append({"model": model, "alpha": alpha, "decoder_activation": "relu",
                             "snr_db": 20, "fold": fold, "metric": metric, "value": v})  # fmt: skip
    summary = summarise_over_folds(pd.DataFrame(rows))
    row = summary[(summary["model"] == "GMP") & (summary["metric"] == "micro_ap")].iloc[0]
    assert row["mean"] == pytest.approx(0.6) and row["n_folds"] == 2
    assert row["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    table = side_by_side(summary, paper_results())
    assert table.loc[(20, "GMP", NO_ALPHA), "micro_ap paper"] == pytest.approx(0.539)
    # the baselines' α is shown as "–", not NaN; 2APAE keeps its number
    assert list(table.loc[20].index) == [
        (m, NO_ALPHA) for m in ("GMP", "GAP", "GWRP", "AtrousAP")
    ] + [("2APAE", 0.001)]
    assert table.loc[(20, "2APAE", 0.001), "micro_ap ours_mean"] == pytest.approx(0.6)
    assert table.loc[(20, "2APAE", 0.001), "micro_ap ours"] == "0.600 ± 0.141"


def _cli(*args):
    from paperlib.cli import main

    return main(list(args))


def test_cli_unknown_profile_key_lists_valid(capsys):
    assert _cli("train", "--profile", "smoke", "--model", "GMP", "--snr", "20", "--fold", "1",
                "--set", "train.epoch=2") == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "unknown key(s) train.epoch" in err and "epochs" in err and "batch_size" in err


def test_cli_bad_inputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    prof = write_tiny_profile(tmp_path / "p.yaml", epochs=1)
    base = ("train", "--profile", str(prof), "--model", "GMP", "--no-progress")
    assert _cli(*base, "--snr", "20", "--fold", "1", "--no-prepare") == 2
    assert "no features for SNR 20 dB" in capsys.readouterr().err
    feats = write_synthetic_features(tmp_path / "f.h5", clips_per_fold=2, folds=(1, 2), **SHAPE)
    assert _cli(*base, "--snr", "20", "--fold", "3", "--features", str(feats)) == 2
    assert "folds present: 1, 2" in capsys.readouterr().err
    assert _cli(*base, "--snr", "20", "--fold", "1", "--features", str(tmp_path / "x.h5")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not paths.runs_dir(paths.workspace_dir("tiny")).exists()  # nothing written
