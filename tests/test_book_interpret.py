"""paperlib.interpret and the Fig. 3 plot, against direct computations on small inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import librosa
import numpy as np
import pandas as pd
import pytest
import torch

from paperlib import interpret
from paperlib.config import load_profile
from paperlib.data.classes import CLASS_INDEX, CLASSES
from paperlib.data.features import logmel, strong_targets
from paperlib.models import build_model

PLAN = pd.DataFrame(
    {
        "mixture": ["m0", "m0", "m0", "m1"],
        "label": ["Bark", "Cello", "Meow", "Gong"],
        "onset_s": [0.5, 3.0, 5.5, 0.5],
        "offset_s": [2.5, 3.8, 7.5, 1.1],
    }
)


def test_event_boxes_agree_with_strong_targets() -> None:
    boxes = interpret.event_boxes(PLAN, "m0")
    assert [b.label for b in boxes] == ["Bark", "Cello", "Meow"]
    strong = strong_targets(PLAN[PLAN["mixture"] == "m0"])  # (311, 41), the data module's rule
    for box in boxes:
        active = np.flatnonzero(strong[:, box.class_index])
        assert (box.first_frame, box.last_frame) == (active[0], active[-1])
        assert box.class_index == CLASS_INDEX[box.label]
    with pytest.raises(KeyError, match="'nope' is not in the plan"):
        interpret.event_boxes(PLAN, "nope")


def test_top_classes_are_the_largest_probabilities() -> None:
    probs = np.array([0.1, 0.9, 0.3, 0.9, 0.5])
    assert interpret.top_classes(probs, 3).tolist() == [1, 3, 4]  # ties: lower index first


def test_figure3_cell_and_bad_snr() -> None:
    smoke = load_profile("smoke")
    assert interpret.figure3_cell(smoke) == (smoke.grid.snrs[0], smoke.grid.folds[0])
    assert interpret.figure3_cell(smoke, snr_db="grid") == interpret.figure3_cell(smoke)
    assert interpret.figure3_cell(smoke, snr_db=0)[0] == 0
    with pytest.raises(ValueError, match="snr_db=7 has no data in profile 'smoke'; valid: 0, 20"):
        interpret.figure3_cell(smoke, snr_db=7)


def test_select_clips() -> None:
    names = np.array(["a", "b", "c"])
    assert interpret.select_clips(names, [], 2).tolist() == [0, 1]
    assert interpret.select_clips(names, ["c", "a"], 2).tolist() == [2, 0]
    with pytest.raises(KeyError, match="zz"):
        interpret.select_clips(names, ["zz"], 1)


@pytest.fixture(scope="module")
def panels() -> list[interpret.Figure3Panels]:
    torch.manual_seed(0)
    model = build_model("2APAE", width=0.0625)
    x = np.random.default_rng(0).standard_normal((2, 311, 64)).astype(np.float32)
    weak = np.zeros((2, 41), dtype=np.float32)
    weak[0, [CLASS_INDEX["Bark"], CLASS_INDEX["Cello"], CLASS_INDEX["Meow"]]] = 1
    weak[1, CLASS_INDEX["Gong"]] = 1
    result = interpret.figure3_panels(model, x, ["m0", "m1"], weak_targets=weak, plan=PLAN)
    with torch.no_grad():
        direct = model.eval()(torch.as_tensor(x))
    return result, direct, x


def test_figure3_panels_hold_the_model_outputs(panels) -> None:
    result, direct, x = panels
    assert len(result) == 2
    p = result[0]
    probs = direct["clip_probs"][0].numpy()
    top = np.argsort(-probs, kind="stable")[:3]
    assert p.top_classes.tolist() == top.tolist()
    np.testing.assert_allclose(
        p.top_step1_weights, direct["step1_weights"][0, top].numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(p.step2_weights, direct["step2_weights"][0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(p.reconstruction, direct["reconstruction"][0].numpy(), rtol=1e-5)
    assert p.inputs.shape == (311, 64) and np.array_equal(p.inputs, x[0])
    assert p.step1_output.shape == (41, 311)
    np.testing.assert_allclose(p.top_step1_weights.sum(axis=-1), 1.0, rtol=1e-4)
    assert [e.label for e in p.events] == ["Bark", "Cello", "Meow"]


def test_figure3_panels_refuse_a_baseline() -> None:
    model = build_model("GMP", width=0.0625)
    x = np.zeros((1, 311, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="expected a 2APAE"):
        interpret.figure3_panels(model, x, ["m1"], weak_targets=np.zeros((1, 41)), plan=PLAN)


def test_attention_in_events_by_hand(panels) -> None:
    result, _direct, _x = panels
    table = interpret.attention_in_events(result)
    assert len(table) == 4  # 3 events in m0, 1 in m1
    row = table.iloc[1]
    p = result[0]
    box = p.events[1]
    inside = p.step2_weights[box.class_index, box.first_frame : box.last_frame + 1].sum()
    assert row["label"] == "Cello"
    assert row["attention_in_event"] == pytest.approx(inside, rel=1e-6)
    assert row["uniform_share"] == pytest.approx((box.last_frame - box.first_frame + 1) / 311)
    assert (
        row["rank"]
        == int(np.argsort(-p.clip_probs, kind="stable").tolist().index(box.class_index)) + 1
    )
    profile = interpret.mel_profile(np.ones((311, 64)) / 64, box)
    np.testing.assert_allclose(profile, 1 / 64)


def test_reconstruction_audio_inverts_standardisation_and_logmel() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(320_000) / 32_000
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)
    features = logmel(audio)  # (311, 64)
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-3
    standardised = (features - mean) / std
    np.testing.assert_allclose(
        interpret.unstandardise(standardised, mean, std), features, atol=1e-4
    )
    back = interpret.reconstruction_audio(standardised, mean, std, n_iter=8)
    assert back.dtype == np.float32 and back.ndim == 1
    # the inverted audio has its energy in the same mel band as the 440 Hz tone
    peak_in = np.argmax(features.mean(axis=0))
    peak_out = np.argmax(logmel(back).mean(axis=0))
    assert abs(int(peak_in) - int(peak_out)) <= 1
    tone_bin = np.argmin(np.abs(librosa.mel_frequencies(66, fmin=50, fmax=16000)[1:-1] - 440))
    assert abs(int(peak_in) - int(tone_bin)) <= 1


def test_plot_figure3_has_eight_panels(panels) -> None:
    from paperlib.plots.interpret_plots import plot_figure3, plot_mel_profiles

    result, _direct, _x = panels
    fig = plot_figure3(result[0], snr_db=20)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titles) == 8
    assert [t.split(".")[0] for t in titles] == [str(i) for i in range(1, 9)]
    assert CLASSES[result[0].top_classes[0]] in titles[2]
    assert "20 dB" in fig._suptitle.get_text()
    fig2 = plot_mel_profiles(np.full((2, 64), 1 / 64), ["a", "b"])
    assert len(fig2.axes[0].lines) == 3


def test_pooled_model_panels_and_audio_map_back_to_seconds_and_the_full_grid() -> None:
    from paperlib.run import pool_input

    torch.manual_seed(0)
    model = build_model("2APAE", width=0.0625, time_steps=77, mel_bins=16)
    x = np.random.default_rng(0).standard_normal((1, 311, 64)).astype(np.float32)
    pooled = pool_input(x, 4, 4)
    weak = np.zeros((1, 41), dtype=np.float32)
    weak[0, [CLASS_INDEX["Bark"], CLASS_INDEX["Cello"], CLASS_INDEX["Meow"]]] = 1
    (panel,) = interpret.figure3_panels(model, pooled, ["m0"], weak_targets=weak, plan=PLAN)
    centres = (np.arange(77) * 4 + 1.5) * 1024 / 32000 + 1024 / 32000
    for event in panel.events:  # boxes are in the pooled model's frames
        inside = np.flatnonzero((centres >= event.onset_s) & (centres < event.offset_s))
        assert (event.first_frame, event.last_frame) == (inside[0], inside[-1])
    mean, std = np.zeros(64, np.float32), np.ones(64, np.float32)
    audio = interpret.reconstruction_audio(panel.reconstruction, mean, std, n_iter=2)
    full = interpret.reconstruction_audio(np.zeros((311, 64), np.float32), mean, std, n_iter=1)
    assert audio.ndim == 1 and audio.size == full.size  # inverted on the 311 x 64 grid
