"""The onset recipes: the fixed slots unchanged, random onsets (inside the clip, apart,
uniform, seeded), plan validation, the recipes' paths, stage keys and `data all`."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from paperlib import paths
from paperlib.cli import main
from paperlib.config import ConfigError, load_profile, profile_with_overrides
from paperlib.data.classes import CLASS_INDEX
from paperlib.data.errors import MetadataError
from paperlib.data.features import frame_centres_s
from paperlib.data.pipeline import data_recipes, load_manifest
from paperlib.data.plan import (
    MAX_EVENT_S,
    PLAN_COLUMNS,
    make_plan,
    random_onsets,
    read_plan,
    write_plan,
)
from paperlib.data.sources import read_fsd, read_tau
from paperlib.localisation.errors import LocalisationError
from paperlib.localisation.prior import coverage_prior, position_prior, slot_frames
from paperlib.localisation.run import run_recipe
from paperlib.run.features import MissingFeaturesError, feature_path_for_snr, features_sha256

SMOKE_FIXED_PLAN_SHA256 = "53538ec92f1fc73babf8e4cbdb0cfbda431d0f2af121ba7582eb20489f352917"
"""SHA-256 of the smoke profile's plan.csv as made by main (8f2c4a2) before onset recipes."""


def synthetic_plan(n_mixtures: int, seed: int = 0) -> pd.DataFrame:
    """A fixed-slot plan of ``n_mixtures`` mixtures with clipped durations in (0, 2] s
    (a quarter of them exactly 2 s, the longest the recipe allows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_mixtures):
        fold = i % 4 + 1
        for j, onset in enumerate((0.5, 3.0, 5.5)):
            d = MAX_EVENT_S if rng.random() < 0.25 else round(float(rng.uniform(0.05, 2.0)), 6)
            rows.append((f"fold{fold}_{i // 4:04d}", fold, f"audio/b{i}.wav", "park", j,
                         "Bark", f"audio_train/e{i}_{j}.wav", onset, round(onset + d, 6)))  # fmt: skip
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


# --- the sampler ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 1234])
def test_random_onsets_stay_inside_the_clip_apart_and_keep_everything_else(seed: int) -> None:
    plan = synthetic_plan(1000, seed=seed)
    out = random_onsets(plan, seed=seed)
    pd.testing.assert_frame_equal(
        out.drop(columns=["onset_s", "offset_s"]), plan.drop(columns=["onset_s", "offset_s"])
    )
    # durations kept to the microsecond
    np.testing.assert_allclose(
        out["offset_s"] - out["onset_s"], plan["offset_s"] - plan["onset_s"], atol=1e-9
    )
    assert (out["onset_s"] >= 0).all() and (out["offset_s"] <= 10.0).all()
    for _, rows in out.groupby("mixture"):
        spans = sorted(zip(rows["onset_s"], rows["offset_s"], strict=True))
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # the plan's 6 decimals hold every onset exactly
    for column in ("onset_s", "offset_s"):
        assert all(float(f"{x:.6f}") == x for x in out[column])
    assert (out["onset_s"] != plan["onset_s"]).mean() > 0.99  # the slots are gone


def test_random_onsets_are_uniform_over_the_placements_that_fit() -> None:
    """Against rejection sampling (three independent uniform onsets, kept only when the events
    fit and do not overlap: exactly uniform over the allowed placements)."""
    d = np.array([2.0, 1.0, 0.5])
    n = 6000
    plan = pd.DataFrame(
        [(f"fold1_{i:04d}", 1, "b.wav", "park", j, "Bark", "e.wav", o, o + d[j])
         for i in range(n) for j, o in enumerate((0.5, 3.0, 5.5))],
        columns=list(PLAN_COLUMNS),
    )  # fmt: skip
    ours = random_onsets(plan, seed=5)["onset_s"].to_numpy().reshape(n, 3)
    rng = np.random.default_rng(99)
    draws = rng.uniform(0, 10 - d, size=(200_000, 3))
    ends = draws + d
    ok = np.ones(len(draws), dtype=bool)
    for a in range(3):
        for b in range(a + 1, 3):
            ok &= (ends[:, a] <= draws[:, b]) | (ends[:, b] <= draws[:, a])
    reference = draws[ok][:20_000]
    assert len(reference) > 10_000
    for j in range(3):  # each event's onset marginal
        assert stats.ks_2samp(ours[:, j], reference[:, j]).pvalue > 1e-3
    assert stats.ks_2samp(ours.min(axis=1), reference.min(axis=1)).pvalue > 1e-3
    # every order of the three events in time equally likely (each order's region: F^3 / 3!)
    orders = np.unique(np.argsort(ours, axis=1), axis=0, return_counts=True)[1]
    assert len(orders) == 6 and stats.chisquare(orders).pvalue > 1e-3


def test_random_onsets_are_seeded_to_the_byte(tmp_path: Path) -> None:
    plan = synthetic_plan(40)
    a = write_plan(random_onsets(plan, seed=7), tmp_path / "a.csv")
    b = write_plan(random_onsets(plan, seed=7), tmp_path / "b.csv")
    c = write_plan(random_onsets(plan, seed=8), tmp_path / "c.csv")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    pd.testing.assert_frame_equal(read_plan(a), random_onsets(plan, seed=7))
    # a mixture's onsets do not depend on the other mixtures
    first = random_onsets(plan.iloc[:3], seed=7)
    pd.testing.assert_frame_equal(first, random_onsets(plan, seed=7).iloc[:3])


@pytest.fixture(scope="module")
def readers(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    from data_support import make_sources

    fsd, tau = make_sources(tmp_path_factory.mktemp("onsets"), events=40, backgrounds=8)
    return read_fsd(fsd), read_tau(tau)


def test_make_plan_random_is_the_fixed_plan_with_moved_onsets(readers) -> None:
    events, backgrounds = readers
    fixed = make_plan(events, backgrounds, mixtures_per_fold=2, seed=3)
    random = make_plan(events, backgrounds, mixtures_per_fold=2, seed=3, onsets="random")
    pd.testing.assert_frame_equal(random, random_onsets(fixed, seed=3))
    assert (random["onset_s"] != fixed["onset_s"]).all()
    with pytest.raises(ValueError, match=r"onsets='slots': expected one of \['fixed', 'random'\]"):
        make_plan(events, backgrounds, mixtures_per_fold=2, seed=3, onsets="slots")


# --- plan validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "onset", "offset", "message"),
    [
        (1, 1.0, 2.5, r"line 3 \(mixture fold1_0000, event 1\).*overlaps event 0 \(line 2"),
        (2, 9.0, 10.5, r"line 4 \(mixture fold1_0000, event 2\).*ends after the 10-s clip"),
        (0, -0.25, 1.0, r"line 2 \(mixture fold1_0000, event 0\).*starts before the clip"),
        (2, 5.0, 7.5, r"line 4 .*lasts more than 2 s"),
        (1, 3.0, 3.0, r"line 3 .*expected offset > onset"),
    ],
)
def test_read_plan_names_the_file_and_row_of_a_misplaced_event(
    row: int, onset: float, offset: float, message: str, tmp_path: Path
) -> None:
    plan = synthetic_plan(4)
    plan.loc[0, ["onset_s", "offset_s"]] = [0.0, 2.0]
    plan.loc[row, ["onset_s", "offset_s"]] = [onset, offset]
    path = write_plan(plan, tmp_path / "plan_bad.csv")
    with pytest.raises(MetadataError, match=rf"plan_bad\.csv, {message}"):
        read_plan(path)


def test_events_may_touch_but_not_overlap(tmp_path: Path) -> None:
    plan = synthetic_plan(1)
    plan[["onset_s", "offset_s"]] = [[0.0, 2.0], [2.0, 4.0], [8.0, 10.0]]
    assert read_plan(write_plan(plan, tmp_path / "p.csv")).shape == (3, len(PLAN_COLUMNS))


# --- paths, configuration, recipes ---------------------------------------------------------


def test_recipe_paths(tmp_path: Path) -> None:
    ws = tmp_path
    assert paths.plan_file(ws) == ws / "data" / "plan.csv" == paths.plan_file(ws, "fixed")
    assert paths.mixtures_dir(ws, 0) == ws / "data" / "mixtures" / "snr0db"
    assert paths.feature_file(ws, -5) == ws / "data" / "features" / "snr-5db.h5"
    assert paths.plan_file(ws, onsets="random") == ws / "data" / "plan_random.csv"
    assert paths.mixtures_dir(ws, 0, onsets="random") == ws / "data/mixtures/random/snr0db"
    assert paths.feature_file(ws, 20, onsets="random") == ws / "data/features/random/snr20db.h5"
    for make in (paths.plan_file, lambda w, onsets: paths.feature_file(w, 0, onsets)):
        with pytest.raises(ValueError, match="onsets='Random'"):
            make(ws, onsets="Random")


def test_profile_onset_fields_are_checked() -> None:
    smoke = load_profile("smoke")
    assert smoke.data.onsets == "fixed" and smoke.data.study_onsets == ("random",)
    for name, snrs in (("pocket", (0, 20)), ("paper", (0, 20)), ("full", (0, 20))):
        data = load_profile(name).data
        assert (data.onsets, data.study_onsets, data.study_snrs) == ("fixed", ("random",), snrs)
    with pytest.raises(ConfigError, match=r"data\.onsets must be fixed or random, got 'slots'"):
        profile_with_overrides(smoke, {"data.onsets": "slots"})
    with pytest.raises(ConfigError, match=r"data\.study_onsets must be a list of distinct"):
        profile_with_overrides(smoke, {"data.study_onsets": ["random", "random"]})
    with pytest.raises(ConfigError, match=r"data\.study_snrs must be a non-empty list"):
        profile_with_overrides(smoke, {"data.study_snrs": []})


def test_data_recipes() -> None:
    smoke = load_profile("smoke")
    assert data_recipes(smoke) == (("fixed", (0, 20)), ("random", (20,)))
    assert data_recipes(smoke, "random") == (("random", (0, 20)),)
    none = profile_with_overrides(smoke, {"data.study_onsets": []})
    assert data_recipes(none) == (("fixed", (0, 20)),)
    same = profile_with_overrides(
        smoke, {"data.study_onsets": ["fixed"], "data.study_snrs": [0, 5]}
    )
    assert data_recipes(same) == (("fixed", (0, 20)), ("fixed", (5,)))  # only what is missing
    everywhere = profile_with_overrides(smoke, {"data.study_snrs": None})
    assert data_recipes(everywhere) == (("fixed", (0, 20)), ("random", (0, 20)))


# --- the pipeline: both recipes side by side -----------------------------------------------


@pytest.fixture(scope="module")
def smoke_ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("smoke")
    assert main(["data", "all", "--profile", "smoke", "--workspace", str(root), "--quiet",
                 "--set", "data.workers=1"]) == 0  # fmt: skip
    return root


def test_fixed_plan_of_the_smoke_profile_is_unchanged(smoke_ws: Path) -> None:
    digest = hashlib.sha256(paths.plan_file(smoke_ws).read_bytes()).hexdigest()
    assert digest == SMOKE_FIXED_PLAN_SHA256


def test_data_all_builds_both_recipes_with_their_own_stage_keys(smoke_ws: Path) -> None:
    for snr in (0, 20):
        assert paths.feature_file(smoke_ws, snr).is_file()
    assert paths.feature_file(smoke_ws, 20, "random").is_file()
    assert not paths.feature_file(smoke_ws, 0, "random").exists()  # study_snrs: [20]
    from paperlib.data.render import background_track, tracks_dir

    fixed_tracks = tracks_dir(paths.mixtures_dir(smoke_ws, 20))
    random_tracks = tracks_dir(paths.mixtures_dir(smoke_ws, 20, "random"))
    assert len(list(random_tracks.glob("*.events.flac"))) == 24
    # the two recipes' mixtures use the same backgrounds: one shared file each
    shared = smoke_ws / "data" / "mixtures" / "backgrounds"
    assert len(list(shared.glob("*.flac"))) == 24 and not list(random_tracks.glob("*.background*"))
    for name in ("fold1_0000", "fold4_0005"):
        both = {background_track(t, name).resolve() for t in (fixed_tracks, random_tracks)}
        assert len(both) == 1 and both.pop().parent == shared.resolve()
    stages = load_manifest(smoke_ws)["stages"]
    assert {"plan", "plan/random", "render/snr20db", "render/random/snr20db",
            "features/snr20db", "features/random/snr20db"} <= set(stages)  # fmt: skip
    for stage in ("plan", "render/snr20db", "features/snr20db"):
        recipe = stage.replace("/", "/random/", 1) if "/" in stage else "plan/random"
        assert stages[stage] != stages[recipe]
    fixed = read_plan(paths.plan_file(smoke_ws))
    random = read_plan(paths.plan_file(smoke_ws, "random"))
    pd.testing.assert_frame_equal(
        random.drop(columns=["onset_s", "offset_s"]), fixed.drop(columns=["onset_s", "offset_s"])
    )
    pd.testing.assert_frame_equal(random, random_onsets(fixed, seed=1234))
    # a second call finds both recipes done
    profile = load_profile("smoke")
    from paperlib.data.pipeline import prepare_data

    again = prepare_data(profile_with_overrides(profile, {"data.workers": 1}), smoke_ws,
                         progress=False)  # fmt: skip
    assert again.ran == () and [p.onsets for p in (again, *again.study)] == ["fixed", "random"]
    assert again.study[0].feature_files == {20: paths.feature_file(smoke_ws, 20, "random")}


def test_random_features_follow_the_random_plan(smoke_ws: Path) -> None:
    plan = read_plan(paths.plan_file(smoke_ws, "random"))
    centres = frame_centres_s()
    with (
        h5py.File(paths.feature_file(smoke_ws, 20, "random"), "r") as f,
        h5py.File(paths.feature_file(smoke_ws, 20), "r") as g,
    ):
        names = [n.decode() for n in f["clip_names"][:]]
        strong = f["strong_targets"][:]
        assert (
            f.attrs["plan_sha256"]
            == hashlib.sha256(paths.plan_file(smoke_ws, "random").read_bytes()).hexdigest()
        )
        np.testing.assert_array_equal(f["weak_targets"][:], g["weak_targets"][:])
        assert not np.array_equal(strong, g["strong_targets"][:])
    for i, name in enumerate(names):
        expected = np.zeros_like(strong[i])
        for r in plan[plan["mixture"] == name].itertuples():
            expected[(centres >= r.onset_s) & (centres < r.offset_s), CLASS_INDEX[r.label]] = 1
        np.testing.assert_array_equal(strong[i], expected)


def test_data_command_builds_only_the_recipe_asked_for(smoke_ws: Path, tmp_path: Path) -> None:
    args = ["data", "plan", "--profile", "smoke", "--workspace", str(tmp_path), "--quiet",
            "--onsets", "random"]  # fmt: skip
    assert main(args) == 0
    assert paths.plan_file(tmp_path, "random").read_bytes() == (
        paths.plan_file(smoke_ws, "random").read_bytes()
    )
    assert not paths.plan_file(tmp_path).exists()
    stages = json.loads((tmp_path / "data" / "manifest.json").read_text())["stages"]
    assert "plan/random" in stages and "plan" not in stages


def test_feature_path_and_run_recipe_find_the_recipe(smoke_ws: Path) -> None:
    random_file = feature_path_for_snr(smoke_ws, 20, onsets="random")
    assert random_file == paths.feature_file(smoke_ws, 20, "random")
    with pytest.raises(MissingFeaturesError, match=r"SNR 0 dB with random onsets"):
        feature_path_for_snr(smoke_ws, 0, onsets="random")

    def run(sha: str) -> SimpleNamespace:
        return SimpleNamespace(run_id="r", key=SimpleNamespace(snr_db=20, features_sha256=sha))

    fixed_sha = features_sha256(paths.feature_file(smoke_ws, 20))
    random_sha = features_sha256(random_file)
    assert run_recipe(run(fixed_sha), smoke_ws) == ("fixed", paths.feature_file(smoke_ws, 20))
    assert run_recipe(run(random_sha), smoke_ws) == ("random", random_file)
    with pytest.raises(LocalisationError, match="trained on features"):
        run_recipe(run(random_sha), smoke_ws, onsets="fixed")
    with pytest.raises(LocalisationError, match=r"random/snr20db\.h5 holds"):
        run_recipe(run("0" * 64), smoke_ws)


# --- the position prior of each recipe -----------------------------------------------------


def test_coverage_prior_by_hand() -> None:
    plan = synthetic_plan(8)
    plan[["onset_s", "offset_s"]] = np.tile([[0.0, 2.0], [4.0, 5.0], [8.0, 9.5]], (8, 1))
    plan.loc[plan["fold"] == 1, ["onset_s", "offset_s"]] = [9.0, 10.0]  # held out: ignored
    centres = frame_centres_s(77, 4)
    expected = np.zeros(77)
    for a, b in ((0.0, 2.0), (4.0, 5.0), (8.0, 9.5)):
        expected += ((centres >= a) & (centres < b)) / 3
    np.testing.assert_allclose(coverage_prior(plan, [2, 3, 4], 77, 4), expected, atol=1e-6)
    with pytest.raises(LocalisationError, match=r"no events in folds \[9\]"):
        coverage_prior(plan, [9], 77, 4)


def test_position_prior_takes_the_recipe_weights() -> None:
    tags = np.array([[1.0, 0.0], [0.5, 1.0]], dtype=np.float32)
    weights = np.linspace(0, 1, 311).astype(np.float32)
    out = position_prior(tags, 311, 1, weights)
    np.testing.assert_allclose(out, tags[:, :, None] * weights[None, None, :])
    np.testing.assert_array_equal(position_prior(tags, 311), position_prior(tags, 311, 1,
                                  slot_frames(311).astype(np.float32)))  # fmt: skip
    with pytest.raises(LocalisationError, match=r"prior weights of shape \(10,\)"):
        position_prior(tags, 311, 1, weights[:10])
