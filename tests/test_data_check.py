"""The source check: every file read once, every problem in one table, bad files excluded on
request; paths never leave their dataset folder; one origin per workspace (issue 14, findings
2, 3, 5 and 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from data_support import make_sources, write_event

from paperlib import paths
from paperlib.cli import main
from paperlib.config import load_profile, profile_with_overrides
from paperlib.data.check import SourceProblemsError, check_sources, plan_report
from paperlib.data.errors import MetadataError
from paperlib.data.pipeline import WorkspaceConflictError, load_manifest, prepare_data, run_stages
from paperlib.data.plan import (
    class_coverage,
    make_plan,
    missing_classes,
    read_plan,
    split_recordings,
    write_plan,
)
from paperlib.data.sources import read_fsd, read_tau


def _damage(root: Path) -> dict[str, str]:
    """Break some files of ``make_sources(root)`` in known ways; return name -> problem."""
    fsd, tau = root / "fsd", root / "tau"
    events = sorted((fsd / "audio_train").glob("*.wav"))
    nan = np.full(44_100, 0.1, np.float32)
    nan[[10, 20, 30]] = np.nan
    sf.write(events[0], nan, 44_100, subtype="FLOAT")
    sf.write(events[1], np.zeros(44_100), 44_100, subtype="PCM_16")  # digitally silent
    mostly = np.zeros(88_200)
    mostly[:8_820] = 0.3 * np.sin(np.arange(8_820) * 0.2)  # 0.2 s of sound in 2 s
    sf.write(events[2], mostly, 44_100, subtype="PCM_16")
    events[3].write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    write_event(events[4], 1.0, rate=22_050)
    backgrounds = sorted((tau / "audio").glob("*.wav"))
    sf.write(backgrounds[0], np.zeros((480_000, 2)), 48_000, subtype="PCM_24")
    write_event(root / "outside.wav", 1.0)  # a real file outside both dataset folders
    csv = pd.read_csv(fsd / "train_post_competition.csv")
    csv.loc[5, "fname"] = "../../outside.wav"
    csv.to_csv(fsd / "train_post_competition.csv", index=False)
    meta = pd.read_csv(tau / "meta.csv", sep="\t")
    meta.loc[3, "filename"] = str(root / "outside.wav")
    meta.to_csv(tau / "meta.csv", sep="\t", index=False)
    return {
        events[0].name: "nonfinite",
        events[1].name: "silent",
        events[2].name: "mostly_silent",
        events[3].name: "unreadable",
        events[4].name: "rate",
        "../../outside.wav": "path",
        f"audio/{backgrounds[0].name}": "silent",
        str(root / "outside.wav"): "path",
    }


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("damaged")
    make_sources(root, events=40, backgrounds=10)
    return root, _damage(root)


def _profile(root: Path, **extra):
    return profile_with_overrides(
        load_profile("smoke"),
        {
            "data.source": "dcase",
            "data.fsd_dir": str(root / "fsd"),
            "data.tau_dir": str(root / "tau"),
            "data.mixtures_per_fold": 2,
            "data.snrs": [20],
            "data.workers": 1,
            **extra,
        },
    )


def test_every_problem_of_every_file_is_in_one_table(damaged, tmp_path) -> None:
    root, expected = damaged
    result = check_sources(root / "fsd", root / "tau", cache_path=tmp_path / "scan.json",
                           workers=2, progress=False)  # fmt: skip
    found = dict(zip(result.problems["file"], result.problems["problem"], strict=True))
    assert found == expected
    severity = dict(zip(result.problems["file"], result.problems["severity"], strict=True))
    assert {f for f, s in severity.items() if s == "warning"} == {
        n for n, p in expected.items() if p == "mostly_silent"
    }
    nan_row = result.problems[result.problems["problem"] == "nonfinite"]
    assert "3 NaN or infinite sample(s)" in nan_row["detail"].iloc[0]
    # the escaping paths were never followed: no facts about the outside file
    outside = result.events.loc[result.events["fname"] == "../../outside.wav"]
    assert outside["sha256"].iloc[0] == "" and not outside["usable"].iloc[0]
    # every usable file's hash is its bytes' SHA-256
    import hashlib

    row = result.events[result.events["usable"]].iloc[0]
    assert row["sha256"] == hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest()
    # the serial pass agrees with the parallel one; the cache makes a rerun read nothing
    serial = check_sources(root / "fsd", root / "tau", workers=1, progress=False)
    pd.testing.assert_frame_equal(serial.problems, result.problems)
    again = check_sources(root / "fsd", root / "tau", cache_path=tmp_path / "scan.json",
                          workers=1, progress=False)  # fmt: skip
    assert again.scanned == 0
    pd.testing.assert_frame_equal(again.problems, result.problems)


def test_readers_and_plan_refuse_paths_outside_the_dataset_folder(damaged, tmp_path) -> None:
    root, _ = damaged
    with pytest.raises(MetadataError, match=r"line 7 \('\.\./\.\./outside\.wav'\): fname must be"):
        read_fsd(root / "fsd", check_audio=False)
    with pytest.raises(MetadataError, match="filename must be a relative path inside"):
        read_tau(root / "tau", check_audio=False)
    clean = make_sources(tmp_path, events=24, backgrounds=4)
    plan = make_plan(read_fsd(clean[0]), read_tau(clean[1]), mixtures_per_fold=1, seed=0)
    plan.loc[0, "source"] = "audio_train/../../../outside.wav"
    with pytest.raises(MetadataError, match="leave their dataset folder"):
        read_plan(write_plan(plan, tmp_path / "plan.csv"))


def test_bad_files_stop_the_pipeline_with_the_whole_table_or_are_excluded(
    damaged, tmp_path
) -> None:
    root, expected = damaged
    ws = tmp_path / "ws"
    with pytest.raises(SourceProblemsError) as info:
        prepare_data(_profile(root), ws, progress=False)
    message = str(info.value)
    assert "7 source file(s) cannot be used" in message and "--exclude-bad" in message
    for name in expected:
        assert name in message  # errors and the warning, all at once
    assert not paths.plan_file(ws).exists()  # nothing made from bad sources
    assert (paths.data_dir(ws) / "check.csv").is_file()

    products = prepare_data(_profile(root, **{"data.exclude_bad": True}), ws, progress=False)
    excluded = {e["file"]: e["problems"] for e in products.excluded}
    assert excluded == {n: p for n, p in expected.items() if p != "mostly_silent"}
    manifest = json.loads((paths.data_dir(ws) / "manifest.json").read_text())
    assert manifest["excluded"] == list(products.excluded)
    assert all(e["detail"] for e in manifest["excluded"])
    plan = read_plan(products.plan_path)
    used = set(plan["source"]) | set(plan["background"])
    assert not used & {f"audio_train/{n}" for n in excluded} and not used & set(excluded)
    assert products.feature_files[20].is_file()  # and the work went on to the end


def test_cli_check_reports_then_exclude_bad_goes_on(damaged, tmp_path, capsys) -> None:
    root, expected = damaged
    args = ["data", "check", "--profile", "smoke", "--workspace", str(tmp_path), "--quiet",
            "--set", "data.source=dcase", "--set", f"data.fsd_dir={root / 'fsd'}",
            "--set", f"data.tau_dir={root / 'tau'}", "--set", "data.mixtures_per_fold=2",
            "--set", "data.workers=1"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 7 source file(s) cannot be used")
    assert all(name in err for name in expected)
    assert main([*args, "--exclude-bad"]) == 0
    out = capsys.readouterr().out
    assert "excluded (7 file(s), recorded in the data manifest)" in out
    assert "background recordings used are split across folds" in out
    assert not paths.plan_file(tmp_path).exists()  # check plans in memory only
    assert main([*args, "--exclude-bad"]) == 0
    assert "ran: nothing (all up to date)" in capsys.readouterr().out  # cached per file
    assert main([*args, "--exclude-bad", "--force"]) == 0
    assert "ran: check" in capsys.readouterr().out  # --force reads every file again


def test_one_origin_per_workspace(damaged, tmp_path, capsys) -> None:
    root, _ = damaged
    ws = tmp_path / "ws"
    dcase = _profile(root, **{"data.exclude_bad": True})
    run_stages(dcase, ws, stages=("check", "plan"), progress=False)
    plan_bytes = paths.plan_file(ws).read_bytes()
    pocket = load_profile("smoke")
    with pytest.raises(WorkspaceConflictError, match="holds data made from DCASE data in"):
        prepare_data(pocket, ws, progress=False)
    assert paths.plan_file(ws).read_bytes() == plan_bytes  # nothing was touched
    assert load_manifest(ws)["origin"]["source"] == "dcase"
    assert not paths.fsd_dir(ws).exists()  # no pocket corpus written there
    # another DCASE dataset (other folders, other listings) is refused the same way
    other = tmp_path / "other"
    make_sources(other, events=12, backgrounds=8)
    with pytest.raises(WorkspaceConflictError):
        run_stages(_profile(other), ws, stages=("check",), progress=False)
    # the same data moved to another folder is still the same origin
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    run_stages(_profile(moved, **{"data.exclude_bad": True}), ws, stages=("check", "plan"),
               progress=False)  # fmt: skip
    assert paths.plan_file(ws).read_bytes() == plan_bytes


def _frames(identifiers: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from paperlib.data.classes import CLASSES

    events = pd.DataFrame(
        {
            "label": [CLASSES[i % 5] for i in range(40)],
            "manually_verified": 1,
            "source": [f"audio_train/{i}.wav" for i in range(40)],
            "duration_s": 1.0,
        }
    )
    backgrounds = pd.DataFrame(
        {
            "filename": [f"audio/{i}.wav" for i in range(len(identifiers))],
            "scene_label": "park",
            "identifier": identifiers,
        }
    )
    return events, backgrounds


def test_recordings_split_across_folds_are_counted_and_can_be_kept_together() -> None:
    identifiers = [f"rec-{i // 3}" for i in range(24)]  # 8 recordings of 3 segments
    events, backgrounds = _frames(identifiers)
    plan = make_plan(events, backgrounds, mixtures_per_fold=4, seed=1)
    # by hand: the folds each recording's segments back
    rec = dict(zip(backgrounds["filename"], backgrounds["identifier"], strict=True))
    mixes = plan.drop_duplicates("mixture")
    folds_of: dict[str, set[int]] = {}
    for bg, fold in zip(mixes["background"], mixes["fold"], strict=True):
        folds_of.setdefault(rec[bg], set()).add(int(fold))
    by_hand = sum(len(f) > 1 for f in folds_of.values())
    assert by_hand > 0  # the paper's recipe splits recordings
    assert split_recordings(plan, backgrounds) == (by_hand, len(folds_of))
    kept = make_plan(events, backgrounds, mixtures_per_fold=4, seed=1,
                     keep_recordings_in_one_fold=True)  # fmt: skip
    assert split_recordings(kept, backgrounds)[0] == 0
    assert kept.drop_duplicates("mixture")["fold"].value_counts().to_dict() == {
        1: 4, 2: 4, 3: 4, 4: 4
    }  # fmt: skip
    assert kept.drop_duplicates("mixture")["background"].is_unique
    from paperlib.data.errors import NotEnoughDataError

    with pytest.raises(NotEnoughDataError, match="keeping each recording in one fold"):
        make_plan(*_frames(["one"] * 12 + ["two"] * 12), mixtures_per_fold=3, seed=1,
                  keep_recordings_in_one_fold=True)  # fmt: skip


def test_classes_without_training_or_validation_clips_are_listed() -> None:
    events, backgrounds = _frames([f"r{i}" for i in range(8)])
    plan = make_plan(events, backgrounds, mixtures_per_fold=2, seed=3)
    coverage = class_coverage(plan, (1, 2))
    for fold in (1, 2):  # by hand from the plan
        clips = plan.drop_duplicates(["mixture", "label"])
        val = clips[clips["fold"] == fold]["label"].value_counts()
        train = clips[clips["fold"] != fold]["label"].value_counts()
        rows = coverage[coverage["held_out_fold"] == fold].set_index("class")
        assert rows["val_clips"].to_dict() == {c: int(val.get(c, 0)) for c in rows.index}
        assert rows["train_clips"].to_dict() == {c: int(train.get(c, 0)) for c in rows.index}
    missing = missing_classes(coverage)
    assert set(missing["class"]) >= {"Writing"}  # only 5 of the 41 classes have events
    assert (missing.loc[missing["class"] == "Writing", "missing"] == "both").all()
    report = plan_report(plan, backgrounds, (1, 2))
    pd.testing.assert_frame_equal(report.missing, missing)
