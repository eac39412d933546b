"""Localising trained runs end to end on a tiny hand-made workspace; masks against librosa.

The workspace holds a plan of 2 folds x 2 mixtures, tracks rendered with the recipe's
arithmetic (``unit_tracks``, stored as the render stores it) from tones over noise, the real feature extractor's file, and two
runs (GMP and 2APAE, 1 epoch, input pooled 2 x 2) trained by the real trainer.
"""

from __future__ import annotations

import dataclasses
import json

import librosa
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import yaml

from paperlib import paths
from paperlib.config import load_profile
from paperlib.data.audio import CLIP_SAMPLES, SAMPLE_RATE
from paperlib.data.classes import CLASS_INDEX
from paperlib.data.errors import MissingSourceError
from paperlib.data.features import write_features
from paperlib.data.plan import PLAN_COLUMNS, write_plan
from paperlib.data.render import (
    RENDER_VERSION,
    STAMP_NAME,
    TRACKS,
    track_path,
    tracks_dir,
    unit_tracks,
    write_track,
)
from paperlib.localisation import (
    GATINGS,
    LOCALISATION_FILE,
    PRIOR,
    UNIFORM,
    Event,
    LocalisationError,
    clip_examples,
    compare_with_prior,
    ideal_mask,
    inverted_scorers,
    localisation_table,
    localise_run,
    metric_table,
    prior_statement,
    prior_wins,
    read_localisation,
    summarise_localisation,
)
from paperlib.localisation.events import frame_labels
from paperlib.localisation.run import fold_data
from paperlib.localisation.temporal import active_frame_share
from paperlib.localisation.tf import class_mask, clip_tracks
from paperlib.plots.localisation_plots import plot_frame_scores, plot_tf_maps

CLIPS = {  # name -> (fold, [(label, onset, seconds, tone Hz)])
    "fold1_0000": (
        1,
        [("Bark", 0.5, 2.0, 500), ("Cello", 3.0, 1.0, 2000), ("Gong", 5.5, 1.5, 4000)],
    ),
    "fold1_0001": (
        1,
        [("Cello", 0.5, 1.2, 2000), ("Bark", 3.0, 2.0, 500), ("Cello", 5.5, 2.0, 2000)],
    ),
    "fold2_0000": (
        2,
        [("Gong", 0.5, 2.0, 4000), ("Bark", 3.0, 0.8, 500), ("Cello", 5.5, 2.0, 2000)],
    ),
    "fold2_0001": (
        2,
        [("Bark", 0.5, 1.0, 500), ("Gong", 3.0, 2.0, 4000), ("Cello", 5.5, 1.0, 2000)],
    ),
}


def _tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return 0.5 * np.sin(2 * np.pi * hz * t)


def _write_workspace(ws) -> None:
    rows = []
    folder = paths.mixtures_dir(ws, 20)
    folder.mkdir(parents=True)
    tracks_dir(folder).mkdir()
    rng = np.random.default_rng(0)
    for name, (fold, events) in CLIPS.items():
        placed = []
        for j, (label, onset, seconds, hz) in enumerate(events):
            rows.append(
                (
                    name,
                    fold,
                    "audio/bg.wav",
                    "park",
                    j,
                    label,
                    "audio_train/x.wav",
                    onset,
                    onset + seconds,
                )
            )
            tone = _tone(hz, seconds)
            placed.append((tone, int(onset * SAMPLE_RATE), float(np.sqrt(np.mean(tone**2)))))
        units = unit_tracks(rng.standard_normal(CLIP_SAMPLES), placed)
        for track, unit in zip(TRACKS, units, strict=True):
            write_track(track_path(tracks_dir(folder), name, track), unit)
    stamp = {"render_version": RENDER_VERSION, "snr_db": 20, "mixtures": {}}
    (folder / STAMP_NAME).write_text(json.dumps(stamp))
    write_plan(pd.DataFrame(rows, columns=list(PLAN_COLUMNS)), paths.plan_file(ws))
    write_features(
        paths.plan_file(ws),
        folder,
        paths.feature_file(ws, 20),
        snr_db=20,
        workers=1,
        progress=False,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("localisation")
    profile_path = root / "tiny.yaml"
    profile_path.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "data": {"source": "pocket", "snrs": [20]},
                "model": {"width": 0.0625, "time_pool": 2, "mel_pool": 2},
                "train": {"epochs": 1, "batch_size": 2, "device": "cpu", "seed": 0},
                "grid": {
                    "models": ["GMP", "2APAE"],
                    "snrs": [20],
                    "folds": [1],
                    "alphas": [0.001],
                    "linear_decoder": False,
                },
            }
        )
    )
    profile = load_profile(profile_path)
    ws = root / "ws" / "tiny"
    _write_workspace(ws)
    tables = localisation_table(profile, ws, train_missing=True)
    return profile, ws, tables


def test_tables_hold_every_scorer_gating_and_metric(tiny) -> None:
    _, ws, tables = tiny
    temporal, tf = tables.temporal, tables.tf
    counts = temporal.groupby("model").size().to_dict()
    # (scorers + prior + chance row) x gatings x metrics
    assert counts == {"GMP": 3 * 2 * 7, "2APAE": 6 * 2 * 7}
    assert set(temporal["gating"]) == set(GATINGS)
    assert temporal.loc[temporal["model"] == "GMP", "alpha"].isna().all()
    assert tf.groupby("model").size().to_dict() == {"GMP": 15, "2APAE": 15}
    read = read_localisation(ws)
    pd.testing.assert_frame_equal(read.temporal, temporal, check_dtype=False)
    pd.testing.assert_frame_equal(read.tf, tf, check_dtype=False)
    # the references do not depend on the model: same fold, same pooling
    for reference in (PRIOR, UNIFORM):
        rows = temporal[(temporal["scorer"] == reference) & (temporal["gating"] == GATINGS[0])]
        assert rows.groupby("metric")["value"].nunique(dropna=False).eq(1).all()
    references = tf[tf["scorer"] != "T-F map"]
    assert references.groupby(["scorer", "metric"])["value"].nunique(dropna=False).eq(1).all()


def test_localisation_is_cached_per_run(tiny) -> None:
    profile, ws, tables = tiny
    run_ids = tables.temporal["run_id"].unique()
    files = [paths.runs_dir(ws) / run_id / LOCALISATION_FILE for run_id in run_ids]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = localisation_table(profile, ws)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    pd.testing.assert_frame_equal(again.temporal, tables.temporal)
    original = json.loads(files[0].read_text())
    assert (original["n_clips"], original["time_pool"], original["mel_pool"]) == (2, 2, 2)
    files[0].write_text(json.dumps({**original, "cache_key": "stale"}))
    fresh = localise_run(files[0].parent, ws)  # a key that does not match: recomputed
    assert fresh["cache_key"] == original["cache_key"]
    values = [r["value"] for r in original["temporal"] + original["tf"]]
    assert [r["value"] for r in fresh["temporal"] + fresh["tf"]] == pytest.approx(
        values, nan_ok=True
    )
    localise_run(files[1].parent, ws, refresh=True)
    assert files[1].stat().st_mtime_ns != stamps[1]


def test_ideal_mask_matches_librosa(tiny) -> None:
    _, ws, _ = tiny
    events_track, background = clip_tracks(paths.mixtures_dir(ws, 20), "fold1_0000")
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=2048, n_mels=64, fmin=50, fmax=16000)

    def pooled_log_mel(audio: np.ndarray) -> np.ndarray:
        spec = np.abs(
            librosa.stft(
                audio.astype(np.float64),
                n_fft=2048,
                hop_length=1024,
                window="hamming",
                center=False,
            )
        )
        log = np.log(mel @ spec + 1e-8).T  # (311, 64)
        return log[:310].reshape(155, 2, 32, 2).mean(axis=(1, 3))

    db = 20 / np.log(10) * (pooled_log_mel(events_track) - pooled_log_mel(background))
    mask = ideal_mask(events_track, background, time_pool=2, mel_pool=2)
    assert mask.shape == (155, 32)
    clear = np.abs(db + 5) > 0.05  # float32 vs float64 FFT: compare away from the threshold
    np.testing.assert_array_equal(mask[clear], (db > -5)[clear])
    assert 0 < mask.mean() < 0.5
    events = [Event(0.5, 2.5, "Bark"), Event(3.0, 4.0, "Cello"), Event(5.5, 7.0, "Gong")]
    bark = class_mask(mask, events, CLASS_INDEX["Bark"], time_pool=2)
    centres = (np.arange(310).reshape(155, 2) * 1024 + 1024).mean(axis=1) / 32000
    inside = (centres >= 0.5) & (centres < 2.5)
    np.testing.assert_array_equal(bark, mask & inside[:, None])
    assert not class_mask(mask, events, CLASS_INDEX["Meow"], time_pool=2).any()
    with pytest.raises(MissingSourceError, match="no rendered mixtures there"):
        clip_tracks(ws, "fold1_0000")
    with pytest.raises(
        MissingSourceError, match=r"fold1_9999\.events\.flac: rendered track not found"
    ):
        clip_tracks(paths.mixtures_dir(ws, 20), "fold1_9999")


def test_stale_data_is_refused(tiny) -> None:
    _, ws, tables = tiny
    from paperlib.run import load_run

    run = load_run(paths.runs_dir(ws) / tables.temporal["run_id"].iloc[0])
    stale = dataclasses.replace(run, key=dataclasses.replace(run.key, features_sha256="0" * 64))
    with pytest.raises(LocalisationError, match="trained on features 000000000000, but"):
        fold_data(stale, ws)


def test_summary_tables_and_the_prior_statement(tiny) -> None:
    _, _, tables = tiny
    summary = summarise_localisation(tables.temporal)
    shown = metric_table(summary, snr_db=20, gating=GATINGS[0])
    assert list(shown.index) == [
        ("GMP", "class maps"),
        ("2APAE", "integrated gradients"),
        ("2APAE", "step-1 output"),
        ("2APAE", "step-2 attention"),
        ("2APAE", "occlusion"),
        ("(any model)", PRIOR),
        ("(any model)", UNIFORM),
    ]
    assert list(shown.columns[:3]) == ["frame AP", "frame micro-AP", "frame AUROC"]
    predicted = metric_table(summary, snr_db=20, gating=GATINGS[1])
    assert ("GMP", PRIOR) in predicted.index and ("2APAE", PRIOR) in predicted.index
    with pytest.raises(LocalisationError, match="needs one of"):
        metric_table(summary, snr_db=20)
    tf = metric_table(summarise_localisation(tables.tf), snr_db=20)
    assert ("(any model)", "event frames (oracle)") in tf.index
    comparison = compare_with_prior(summary)
    assert len(comparison) == 2 * 2 * 4  # models x gatings x headline metrics
    one = comparison[(comparison["model"] == "GMP") & (comparison["gating"] == GATINGS[0])]
    gmp = summary[(summary["model"] == "GMP") & (summary["gating"] == GATINGS[0])]
    for row in one.itertuples():
        mine = gmp[(gmp["scorer"] == "class maps") & (gmp["metric"] == row.metric)]["mean"].item()
        prior = gmp[(gmp["scorer"] == PRIOR) & (gmp["metric"] == row.metric)]["mean"].item()
        assert (row.model_value, row.prior_value, row.beats) == (mine, prior, mine > prior)
    wins = prior_wins(comparison)
    assert wins.shape == (4, 4) and wins.index[0] == (20, GATINGS[0], "GMP")


def test_prior_statement_wording() -> None:
    rows = []
    for model, beats in (("X", [True, True]), ("Y", [True, False]), ("Z", [False, False])):
        for metric, b in zip(("frame_ap", "psds1"), beats, strict=True):
            rows.append(
                {
                    "snr_db": 0,
                    "gating": GATINGS[0],
                    "model": model,
                    "scorer": "s",
                    "metric": metric,
                    "beats": b,
                }
            )
    text = prior_statement(pd.DataFrame(rows))
    assert text == (
        "At 0 dB with the true tags, comparing frame AP and PSDS1 with the position prior: "
        "X (s) beats it on all of them; Y (s) beats it on frame AP only; Z (s) beats it on none."
    )
    assert "No run" in prior_statement(pd.DataFrame(rows), gating=GATINGS[1])


def test_examples_and_figures(tiny) -> None:
    _, ws, tables = tiny
    run_dirs = [paths.runs_dir(ws) / r for r in tables.temporal["run_id"].unique()]
    examples = [clip_examples(d, ws, clip_names=["fold1_0001"])[0] for d in run_dirs]
    first = examples[0]
    assert first.clip_name == "fold1_0001" and first.time_s.shape == (155,)
    assert sorted(first.masks) == sorted({CLASS_INDEX["Cello"], CLASS_INDEX["Bark"]})
    assert first.inputs.shape == (155, 32) and first.tf_maps[CLASS_INDEX["Bark"]].shape == (155, 32)
    fig = plot_frame_scores(examples)
    assert len(fig.axes) == 2
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert "integrated gradients (solid)" in titles[1] and "occlusion (dash-dot)" in titles[1]
    fig = plot_frame_scores(examples, scorers=["class maps", "integrated gradients"])
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[1] == "integrated gradients (solid)" and titles[0] == "class maps (solid)"
    assert fig.axes[1].get_ylim()[0] <= -0.05
    fig = plot_tf_maps(examples, CLASS_INDEX["Cello"])
    assert sum(ax.get_visible() for ax in fig.axes) == 4  # input, mask, two models
    with pytest.raises(ValueError, match="not a true class"):
        plot_tf_maps(examples, CLASS_INDEX["Gong"])
    with pytest.raises(KeyError, match="fold2_0000"):
        clip_examples(run_dirs[0], ws, clip_names=["fold2_0000"])


def test_chance_row_is_the_share_of_active_frames(tiny) -> None:
    _, ws, tables = tiny
    t = tables.temporal
    chance = t[(t["scorer"] == UNIFORM) & (t["gating"] == GATINGS[0])]
    chance = chance[chance["model"] == "GMP"].set_index("metric")["value"]
    data = fold_data(paths.runs_dir(ws) / t["run_id"].iloc[0], ws)
    labels = frame_labels(data.events, 155, 2)
    share = active_frame_share(labels, data.split.y_val)
    assert chance["frame_ap"] == pytest.approx(share["frame_ap"])
    assert chance["frame_ap_micro"] == pytest.approx(share["frame_ap_micro"])
    assert chance["within_clip_auroc"] == 0.5


def test_inverted_scorers_read_the_within_clip_auroc(tiny) -> None:
    _, _, tables = tiny
    summary = summarise_localisation(tables.temporal)
    table = inverted_scorers(summary)
    assert list(table["scorer"]) == [
        "class maps",
        "integrated gradients",
        "step-1 output",
        "step-2 attention",
        "occlusion",
    ]
    for row in table.itertuples():
        mine = summary[
            (summary["model"] == row.model)
            & (summary["scorer"] == row.scorer)
            & (summary["gating"] == GATINGS[0])
            & (summary["metric"] == "within_clip_auroc")
        ]["mean"].item()
        assert (row.within_clip_auroc, row.inverted) == (mine, mine < 0.5)
    with pytest.raises(LocalisationError, match="gating="):
        inverted_scorers(summary, gating="none")
    with pytest.raises(LocalisationError, match="no 'within_clip_auroc' rows"):
        inverted_scorers(summary[summary["metric"] != "within_clip_auroc"])


def test_shift_test_and_attention_statistics_of_runs(tiny) -> None:
    from paperlib.robustness import attention_statistics, shift_test_runs
    from paperlib.run import load_run

    _, ws, tables = tiny
    runs = [load_run(paths.runs_dir(ws) / r) for r in tables.temporal["run_id"].unique()]
    shifted = shift_test_runs(runs, ws, [0.0, 1.0], device="cpu")
    assert list(shifted.columns) == [
        "run_id",
        "model",
        "snr_db",
        "fold",
        "seed",
        "alpha",
        "onsets",
        "shift_s",
        "shift_frames",
        "micro_ap",
        "macro_ap",
        "chance",
    ]
    assert len(shifted) == 4 and list(shifted["shift_frames"]) == [0, 16, 0, 16]  # 1 s / 64 ms
    for run in runs:
        mine = shifted[(shifted["run_id"] == run.run_id) & (shifted["shift_s"] == 0)].iloc[0]
        assert mine["micro_ap"] == pytest.approx(run.metrics["micro_ap"], abs=1e-6)
        assert mine["chance"] == pytest.approx(run.metrics["chance_micro_ap"])
        assert (mine["model"], mine["seed"], mine["snr_db"]) == (run.key.model, 0, 20)
        assert mine["onsets"] == "fixed"
    apae = [r for r in runs if r.key.model == "2APAE"]
    stats = attention_statistics(apae, ws, device="cpu")
    assert len(stats) == 1 and stats["n_pairs"].item() == 5  # 3 + 2 true classes in fold 1
    assert stats["n_frames"].item() == 155 and 0 < stats["modal_share"].item() <= 1
    assert 1 <= stats["effective_frames_simpson"].item() <= 155
    with pytest.raises(ValueError, match="no step2_weights"):
        attention_statistics([r for r in runs if r.key.model == "GMP"], ws, device="cpu")
