"""The mixture plan: folds, verified events, onsets and cuts, backgrounds once, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_support import make_sources

from paperlib.data.errors import MetadataError, NotEnoughDataError
from paperlib.data.plan import PLAN_COLUMNS, assign_folds, make_plan, read_plan, write_plan
from paperlib.data.sources import read_fsd, read_tau


@pytest.fixture(scope="module")
def readers(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    fsd, tau = make_sources(tmp_path_factory.mktemp("plan"), events=40, backgrounds=8)
    return read_fsd(fsd), read_tau(tau)


def test_folds_are_a_seeded_shuffle_dealt_round_robin() -> None:
    folds = assign_folds(10, seed=7)
    order = np.random.default_rng([7, 1]).permutation(10)  # the documented recipe, by hand
    expected = np.zeros(10, dtype=int)
    for i, row in enumerate(order):
        expected[row] = i % 4 + 1
    assert folds.tolist() == expected.tolist()
    assert sorted(np.bincount(assign_folds(1001, seed=1))[1:].tolist()) == [250, 250, 250, 251]


def test_plan_follows_the_recipe(readers) -> None:
    events, backgrounds = readers
    plan = make_plan(events, backgrounds, mixtures_per_fold=2, seed=3)
    assert tuple(plan.columns) == PLAN_COLUMNS
    assert len(plan) == 4 * 2 * 3
    folds = dict(zip(events["source"], assign_folds(len(events), seed=3), strict=True))
    verified = set(events.loc[events["manually_verified"] == 1, "source"])
    duration = dict(zip(events["source"], events["duration_s"], strict=True))
    assert set(plan["source"]) <= verified
    for name, rows in plan.groupby("mixture"):
        assert rows["onset_s"].tolist() == [0.5, 3.0, 5.5]
        assert rows["event_index"].tolist() == [0, 1, 2]
        assert rows["background"].nunique() == 1
        fold = rows["fold"].iloc[0]
        assert name.startswith(f"fold{fold}_")
        assert all(folds[s] == fold for s in rows["source"])
        for r in rows.itertuples():
            assert r.offset_s == pytest.approx(r.onset_s + min(duration[r.source], 2.0), abs=1e-6)
        assert (
            rows["offset_s"].to_numpy()[:-1] <= rows["onset_s"].to_numpy()[1:]
        ).all()  # no overlap
    per_mixture = plan.drop_duplicates("mixture")
    assert per_mixture["background"].is_unique  # each background used once
    assert per_mixture["fold"].value_counts().to_dict() == {1: 2, 2: 2, 3: 2, 4: 2}


def test_same_seed_gives_a_byte_identical_file_and_another_seed_does_not(
    readers, tmp_path: Path
) -> None:
    events, backgrounds = readers
    a = write_plan(make_plan(events, backgrounds, mixtures_per_fold=2, seed=3), tmp_path / "a.csv")
    b = write_plan(make_plan(events, backgrounds, mixtures_per_fold=2, seed=3), tmp_path / "b.csv")
    c = write_plan(make_plan(events, backgrounds, mixtures_per_fold=2, seed=4), tmp_path / "c.csv")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert b"\r" not in a.read_bytes()
    pd.testing.assert_frame_equal(
        read_plan(a), make_plan(events, backgrounds, mixtures_per_fold=2, seed=3)
    )


def test_a_fold_repeats_its_shuffled_events_when_slots_outnumber_them(readers) -> None:
    events, backgrounds = readers
    plan = make_plan(events, backgrounds, mixtures_per_fold=2, seed=3)
    fold1 = plan[plan["fold"] == 1]["source"].tolist()
    pool_size = len(set(fold1))
    assert fold1[pool_size:] == fold1[: len(fold1) - pool_size]  # the list, repeated


def test_too_few_verified_events_in_a_fold_says_how_many(readers) -> None:
    events, backgrounds = readers
    few = events.iloc[:10].copy()  # 10 rows: folds of 2-3 rows, some unverified
    with pytest.raises(NotEnoughDataError) as info:
        make_plan(few, backgrounds, mixtures_per_fold=1, seed=3)
    text = str(info.value)
    assert "verified event(s), but a mixture needs 3" in text and "verified events per fold" in text


def test_too_few_backgrounds_says_how_many(readers) -> None:
    events, backgrounds = readers
    with pytest.raises(
        NotEnoughDataError, match=r"8 background\(s\) available, but 4 folds x 3 mixtures need 12"
    ):
        make_plan(events, backgrounds, mixtures_per_fold=3, seed=3)


def test_read_plan_rejects_a_damaged_plan(readers, tmp_path: Path) -> None:
    events, backgrounds = readers
    path = write_plan(
        make_plan(events, backgrounds, mixtures_per_fold=1, seed=3), tmp_path / "p.csv"
    )
    plan = pd.read_csv(path)
    plan.drop(columns="scene").to_csv(path, index=False)
    with pytest.raises(MetadataError, match="expected"):
        read_plan(path)
    plan.assign(label="Kazoo").to_csv(path, index=False)
    with pytest.raises(MetadataError, match="Kazoo"):
        read_plan(path)
