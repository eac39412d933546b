"""Readers of FSDKaggle2018 / TAU2019 folders: valid input, and every bad input named clearly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from data_support import make_sources, write_background, write_event

from paperlib.data.classes import CLASSES, SCENES
from paperlib.data.errors import AudioFormatError, MetadataError, MissingSourceError
from paperlib.data.pocket import STAND_INS, stand_in_table, write_pocket_corpus
from paperlib.data.sources import SOURCE_FORMAT_FILE, TAU, read_fsd, read_tau, source_format


@pytest.fixture()
def sources(tmp_path: Path) -> tuple[Path, Path]:
    return make_sources(tmp_path, events=12, backgrounds=3)


def test_valid_folders_are_read_in_file_order_with_header_durations(sources) -> None:
    fsd, tau = sources
    events = read_fsd(fsd)
    csv = pd.read_csv(fsd / "train_post_competition.csv")
    assert events["fname"].tolist() == csv["fname"].tolist()
    for row in events.itertuples():
        assert row.duration_s == pytest.approx(sf.info(row.path).duration, abs=1e-9)
    assert events["source"].iloc[0] == "audio_train/" + csv["fname"].iloc[0]
    backgrounds = read_tau(tau)
    assert (
        backgrounds["filename"].tolist()
        == pd.read_csv(tau / "meta.csv", sep="\t")["filename"].tolist()
    )


def test_train_csv_without_post_competition_columns_is_accepted(sources) -> None:
    fsd, _ = sources
    csv = pd.read_csv(fsd / "train_post_competition.csv")
    (fsd / "train_post_competition.csv").unlink()
    csv[["fname", "label", "manually_verified"]].to_csv(fsd / "train.csv", index=False)
    assert len(read_fsd(fsd)) == 12


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda df: df.drop(columns="label"), r"missing column\(s\) \['label'\]"),
        (lambda df: df.assign(extra=1), r"unexpected column\(s\) \['extra'\]"),
    ],
)
def test_fsd_csv_with_missing_or_unexpected_columns(sources, change, message) -> None:
    fsd, _ = sources
    path = fsd / "train_post_competition.csv"
    change(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(MetadataError, match=message) as info:
        read_fsd(fsd)
    assert str(path) in str(info.value) and "expected columns" in str(info.value)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda df: df.drop(columns="source_label"), r"missing column\(s\) \['source_label'\]"),
        (lambda df: df.assign(city="x"), r"unexpected column\(s\) \['city'\]"),
    ],
)
def test_tau_meta_with_missing_or_unexpected_columns(sources, change, message) -> None:
    _, tau = sources
    path = tau / "meta.csv"
    change(pd.read_csv(path, sep="\t")).to_csv(path, sep="\t", index=False)
    with pytest.raises(MetadataError, match=message):
        read_tau(tau)


def test_label_outside_the_41_classes_is_named_with_its_line(sources) -> None:
    fsd, _ = sources
    path = fsd / "train_post_competition.csv"
    csv = pd.read_csv(path)
    csv.loc[4, "label"] = "Didgeridoo"
    csv.to_csv(path, index=False)
    with pytest.raises(MetadataError, match=r"line 6 .*'Didgeridoo' is not one of the 41 classes"):
        read_fsd(fsd)


def test_unknown_scene_label_is_named(sources) -> None:
    _, tau = sources
    meta = pd.read_csv(tau / "meta.csv", sep="\t")
    meta.loc[0, "scene_label"] = "beach"
    meta.to_csv(tau / "meta.csv", sep="\t", index=False)
    with pytest.raises(MetadataError, match="'beach' is not one of"):
        read_tau(tau)


def test_listed_files_that_are_missing_are_all_named(sources) -> None:
    fsd, tau = sources
    gone = sorted((fsd / "audio_train").glob("*.wav"))[:2]
    for path in gone:
        path.unlink()
    with pytest.raises(MissingSourceError) as info:
        read_fsd(fsd)
    assert all(str(path) in str(info.value) for path in gone)
    assert "2 problem(s)" in str(info.value)
    next((tau / "audio").glob("*.wav")).unlink()
    with pytest.raises(MissingSourceError, match=r"listed in meta\.csv but not found"):
        read_tau(tau)


def test_missing_folder_and_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(MissingSourceError, match="FSDKaggle2018 folder not found"):
        read_fsd(tmp_path / "nowhere")
    with pytest.raises(MissingSourceError, match=re.escape("train_post_competition.csv")):
        read_fsd(tmp_path)
    with pytest.raises(MissingSourceError, match=r"meta\.csv"):
        read_tau(tmp_path)


def test_corrupt_wav_is_named(sources) -> None:
    fsd, tau = sources
    bad = sorted((fsd / "audio_train").glob("*.wav"))[3]
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(AudioFormatError, match=re.escape(str(bad)) + ": not a readable WAV"):
        read_fsd(fsd)
    bad_bg = next((tau / "audio").glob("*.wav"))
    bad_bg.write_bytes(b"\x00" * 100)
    with pytest.raises(AudioFormatError, match=re.escape(str(bad_bg))):
        read_tau(tau)


def test_unexpected_rate_and_channels_are_named_with_expected_values(sources) -> None:
    fsd, tau = sources
    events = sorted((fsd / "audio_train").glob("*.wav"))
    write_event(events[0], 1.0, rate=22_050)
    write_event(events[1], 1.0, channels=2)
    with pytest.raises(AudioFormatError) as info:
        read_fsd(fsd)
    text = str(info.value)
    assert f"{events[0]}: sample rate 22050 Hz, expected 44100 Hz" in text
    assert f"{events[1]}: 2 channel(s), expected 1" in text
    backgrounds = sorted((tau / "audio").glob("*.wav"))
    write_background(backgrounds[0], channels=1)
    write_background(backgrounds[1], rate=44_100)
    with pytest.raises(AudioFormatError) as info:
        read_tau(tau)
    assert f"{backgrounds[0]}: 1 channel(s), expected 2" in str(info.value)
    assert f"{backgrounds[1]}: sample rate 44100 Hz, expected 48000 Hz" in str(info.value)


def test_background_shorter_than_10_s_is_named(sources) -> None:
    _, tau = sources
    short = sorted((tau / "audio").glob("*.wav"))[1]
    write_background(short, seconds=7.5)
    with pytest.raises(
        AudioFormatError,
        match=re.escape(str(short)) + r": background is 7.500 s long, expected at least 10 s",
    ):
        read_tau(tau)


def test_pocket_corpus_is_in_the_real_formats_and_passes_the_readers(tmp_path: Path) -> None:
    fsd, tau = tmp_path / "FSDKaggle2018", tmp_path / "TAU2019"
    write_pocket_corpus(
        fsd, tau, events_per_class=2, backgrounds=10, seed=5, workers=1, progress=False
    )
    events, backgrounds = read_fsd(fsd), read_tau(tau)
    assert list(pd.read_csv(fsd / "train_post_competition.csv").columns) == [
        "fname",
        "label",
        "manually_verified",
        "freesound_id",
        "license",
    ]
    assert sorted(events["label"].unique()) == sorted(CLASSES)
    assert events["fname"].str.fullmatch(r"[0-9a-f]{8}\.wav").all()
    assert events["duration_s"].between(0.3, 30).all()
    assert (
        events["manually_verified"] == 0
    ).sum() == 41  # half-up rounding of 0.25 * 2: 1 of 2 per class
    info = sf.info(str(events["path"].iloc[0]))
    assert (info.samplerate, info.channels, info.subtype) == (44_100, 1, "PCM_16")
    assert (tau / "meta.csv").read_text().splitlines()[
        0
    ] == "filename\tscene_label\tidentifier\tsource_label"
    assert sorted(backgrounds["scene_label"]) == sorted(SCENES)
    assert backgrounds["filename"].str.fullmatch(r"audio/[a-z_]+-[a-z]+-\d+-\d+-a\.wav").all()
    info = sf.info(str(backgrounds["path"].iloc[0]))
    # the rendering's rate, mono: no larger than the pipeline uses it (declared in the folder)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        32_000,
        1,
        "PCM_16",
        320_000,
    )
    assert json.loads((tau / SOURCE_FORMAT_FILE).read_text()) == {"rate": 32000, "channels": 1}
    assert source_format(TAU, tau) == (32_000, 1) and source_format(TAU) == (48_000, 2)
    audio, _ = sf.read(str(backgrounds["path"].iloc[0]), always_2d=True)
    # time-varying: frame RMS over 0.5-s windows changes by more than 1 dB across the clip
    frames = audio[:, 0].reshape(20, -1)
    levels = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)))
    assert levels.max() - levels.min() > 1.0


def test_a_declared_source_format_is_checked_and_the_real_one_applies_without_it(
    tmp_path: Path,
) -> None:
    from paperlib.data.errors import AudioFormatError, MetadataError

    fsd, tau = tmp_path / "fsd", tmp_path / "tau"
    write_pocket_corpus(fsd, tau, events_per_class=1, backgrounds=2, seed=9, workers=1,
                        progress=False)  # fmt: skip
    assert len(read_tau(tau)) == 2
    (tau / SOURCE_FORMAT_FILE).unlink()  # as a real TAU folder: 48 kHz stereo expected
    with pytest.raises(AudioFormatError, match=r"expected 48000 Hz 2-channel audio"):
        read_tau(tau)
    (tau / SOURCE_FORMAT_FILE).write_text('{"rate": 0}')
    with pytest.raises(MetadataError, match=r"source_format\.json: expected"):
        read_tau(tau)


def test_pocket_corpus_is_deterministic_and_describes_every_class(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_pocket_corpus(
            tmp_path / name / "fsd",
            tmp_path / name / "tau",
            events_per_class=1,
            backgrounds=2,
            seed=9,
            workers=1,
            progress=False,
        )
    from data_support import snapshot

    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    table = stand_in_table()
    assert table["class"].tolist() == list(CLASSES) == [s.label for s in STAND_INS]
    assert table["description"].str.len().min() > 10
