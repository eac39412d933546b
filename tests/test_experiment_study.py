"""The robustness study's tables and verdict, on hand-made results (paperlib.experiment.study)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from paperlib.config import load_profile, profile_with_overrides
from paperlib.experiment.cells import Cell, grid_cells, study_cells
from paperlib.experiment.study import (
    lead_statement,
    lead_table,
    shift_statement,
    shift_summary,
    study_table,
)


def _profile():
    return profile_with_overrides(
        load_profile("smoke"),
        {
            "grid.study_models": ["GMP", "AtrousAP", "2APAE"],
            "data.study_onsets": ["random"],
            "data.study_snrs": [20],
        },
    )


def _row(model, onsets, value, *, seed=0, alpha=None, decoder=None, chance=0.1):
    has_decoder = model.startswith("2APAE")
    return {
        "profile": "smoke",
        "model": model,
        "onsets": onsets,
        "snr_db": 20,
        "fold": 1,
        "alpha": (0.001 if alpha is None else alpha) if has_decoder else math.nan,
        "decoder_activation": (decoder or "relu") if has_decoder else "relu",
        "seed": seed,
        "metric": "micro_ap",
        "value": value,
        "chance_micro_ap": chance,
    }


def test_study_cells_cover_both_recipes_and_the_repeats_once() -> None:
    profile = _profile()
    cells = study_cells(profile)
    recipes = {(c.model, c.onsets) for c in cells if c.seed is None}
    assert recipes == {(m, o) for m in ("GMP", "AtrousAP", "2APAE") for o in ("fixed", "random")}
    assert all(c.snr_db == 20 for c in cells)
    # smoke repeats 2APAE with seed 1: in the random recipe too, not again in the fixed one
    repeats = [c for c in cells if c.seed is not None]
    assert repeats == [Cell("2APAE", 20, 1, 0.001, "relu", seed=1, onsets="random")]
    every = grid_cells(profile)
    assert len(every) == len(set(every))
    assert set(cells) <= set(every)
    # a grid restricted to some models or SNRs (chapter 3) has no study cell
    assert all(c.onsets == "fixed" for c in grid_cells(profile, snrs=(20,)))
    assert study_cells(profile_with_overrides(profile, {"grid.study_models": []})) == []
    assert study_cells(profile_with_overrides(profile, {"data.study_onsets": []})) == []


def test_study_table_keeps_the_main_variant_and_the_first_seed() -> None:
    rows = [
        _row("GMP", "fixed", 0.30),
        _row("AtrousAP", "fixed", 0.40),
        _row("2APAE", "fixed", 0.60),
        _row("2APAE", "fixed", 0.90, alpha=0.01),  # ablation variant: not the study's
        _row("2APAE", "fixed", 0.10, decoder="linear"),
        _row("GMP", "random", 0.31),
        _row("AtrousAP", "random", 0.45),
        _row("2APAE", "random", 0.41),
        _row("2APAE", "random", 0.43, seed=1),  # a repeat: spread only
    ]
    table = study_table(pd.DataFrame(rows), _profile())
    assert list(table["model"]) == ["GMP", "AtrousAP", "2APAE"] * 2
    assert list(table["onsets"]) == ["fixed"] * 3 + ["random"] * 3
    assert (
        table.loc[(table.model == "2APAE") & (table.onsets == "fixed"), "micro_ap"].item() == 0.60
    )
    assert table["times_chance"].tolist() == pytest.approx([3.0, 4.0, 6.0, 3.1, 4.5, 4.1])

    leads = lead_table(table, spread=0.02)
    fixed = leads[leads.onsets == "fixed"].iloc[0]
    moved = leads[leads.onsets == "random"].iloc[0]
    assert (fixed.best_baseline, fixed.lead, fixed.verdict) == (
        "AtrousAP",
        pytest.approx(0.20),
        "leads",
    )
    assert (moved.best_baseline, moved.lead, moved.verdict) == (
        "AtrousAP",
        pytest.approx(-0.04),
        "behind",
    )
    text = lead_statement(leads, 0.02)
    assert "does not survive" in text and "20 dB" in text and "0.020" in text

    within = lead_table(table, spread=0.05)
    assert within.loc[within.onsets == "random", "verdict"].item() == "within spread"


def test_a_lead_that_survives_is_said_to_survive() -> None:
    rows = [_row("GMP", o, 0.3) for o in ("fixed", "random")] + [
        _row("2APAE", "fixed", 0.6),
        _row("2APAE", "random", 0.5),
    ]
    leads = lead_table(study_table(pd.DataFrame(rows), _profile()), spread=0.01)
    assert set(leads["verdict"]) == {"leads"}
    assert "survives" in lead_statement(leads, 0.01)
    assert "nothing to compare" in lead_statement(leads.iloc[0:0], 0.01)


def test_shift_summary_flags_the_runs_whose_ap_falls_beyond_the_spread() -> None:
    rows = []
    for model, values in (("GMP", [0.30, 0.29, 0.30]), ("2APAE", [0.56, 0.25, 0.10])):
        for shift, value in zip((0.0, 0.5, 1.0), values, strict=True):
            rows.append({"run_id": model, "model": model, "snr_db": 0, "seed": 0,
                         "shift_s": shift, "micro_ap": value, "chance": 0.07})  # fmt: skip
    summary = shift_summary(pd.DataFrame(rows), spread=0.015)
    by_model = summary.set_index("model")
    assert by_model.loc["GMP", "verdict"] == "shift-invariant"
    assert by_model.loc["2APAE", "verdict"] == "depends on position"
    assert by_model.loc["2APAE", "drop"] == pytest.approx(0.46)
    assert by_model.loc["2APAE", "worst_shift_s"] == 1.0
    text = shift_statement(summary, 0.015)
    assert "**2APAE** depends" in text and "0.560 to 0.100" in text and "GMP" in text


def test_split_complete_reads_each_recipes_own_features(tmp_path) -> None:
    """A finished random-onset run is found as done (its key uses the random features)."""
    from synthetic_workspace import write_synthetic_features

    from paperlib import paths
    from paperlib.experiment.cache import split_complete
    from paperlib.run import train_run

    profile = profile_with_overrides(
        load_profile("smoke"),
        {"train.epochs": 1, "grid.models": ["GMP"], "grid.study_models": ["GMP"]},
    )
    ws = tmp_path / "smoke"
    shape = {"time_steps": 24, "mel_bins": 12, "num_classes": 6, "events_per_clip": 2}
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=4, seed=1, **shape)
    write_synthetic_features(
        paths.feature_file(ws, 20, onsets="random"), clips_per_fold=4, seed=2, **shape
    )
    train_run(profile, ws, model="GMP", snr_db=20, fold=1, onsets="random", progress=False)
    done, to_do = split_complete(
        profile, ws, [Cell("GMP", 20, 1, onsets="random"), Cell("GMP", 20, 1)]
    )
    assert list(done) == [Cell("GMP", 20, 1, onsets="random")]
    assert to_do == [Cell("GMP", 20, 1)]
