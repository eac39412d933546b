"""Bad input gets one clear error (exit code 2, the key or path named), never a traceback or a
half-written file (issue 14, finding 4), and JSON is strict (finding 7)."""

from __future__ import annotations

import errno
import json
import math
import pickle
from collections import namedtuple
from pathlib import Path

import h5py
import pytest
from data_support import make_sources
from synthetic_workspace import write_synthetic_features, write_tiny_profile

from paperlib import atomic, paths
from paperlib.cli import main
from paperlib.config import ConfigError, load_profile, profile_with_overrides
from paperlib.data.features import write_features
from paperlib.data.plan import make_plan, write_plan
from paperlib.data.render import render_plan
from paperlib.data.sources import read_fsd, read_tau
from paperlib.models.checkpoint import CheckpointError, read_checkpoint
from paperlib.run import load_run, train_run

SHAPE = {"time_steps": 16, "mel_bins": 8, "num_classes": 5, "events_per_clip": 1}
FULL = OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("train.epochs", 0, "an integer >= 1"),
        ("train.epochs", -1, "an integer >= 1"),
        ("train.batch_size", 0, "an integer >= 1"),
        ("train.lr", -1, "a number > 0"),
        ("train.lr", 0, "a number > 0"),
        ("train.alpha", -0.5, "a number >= 0"),
        ("train.lr_factor", 1.5, "a number between 0 and 1"),
        ("train.lr_patience", -1, "an integer >= 0"),
        ("train.eval_batch_size", 0, "an integer >= 1"),
        ("train.seed", -3, "an integer >= 0"),
        ("train.num_threads", -1, "an integer >= 0"),
        ("train.device", "gpu", "auto, cpu, cuda or cuda:N"),
        ("data.seed", -1, "an integer >= 0"),
        ("data.mixtures_per_fold", 0, "an integer >= 1"),
        ("data.pocket_events_per_class", 0, "an integer >= 1"),
        ("data.pocket_backgrounds", -2, "an integer >= 1"),
        ("data.workers", -1, "an integer >= 0"),
        ("data.snrs", [], "a non-empty list"),
        ("grid.folds", [0, 1], "a non-empty list of folds 1-4"),
        ("grid.alphas", [-0.1], "a list of numbers >= 0"),
        ("book.cell_timeout_s", 0, "an integer >= 1"),
    ],
)
def test_every_numeric_profile_field_is_range_checked(key, value, expected) -> None:
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')} must be {expected}"):
        profile_with_overrides(load_profile("smoke"), {key: value})


def test_cli_invalid_setting_exits_2_naming_the_key_and_leaves_no_run_folder(
    tmp_path, capsys
) -> None:
    prof = write_tiny_profile(tmp_path / "p.yaml")
    ws = tmp_path / "ws"
    feats = write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=2, **SHAPE)
    for setting in ("train.epochs=0", "train.batch_size=0", "train.lr=-1"):
        code = main(["train", "--profile", str(prof), "--workspace", str(ws), "--model", "GMP",
                     "--snr", "20", "--fold", "1", "--no-prepare", "--no-progress",
                     "--set", setting])  # fmt: skip
        assert code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {setting.split('=')[0]} must be") and "Traceback" not in err
    assert not paths.runs_dir(ws).exists() and feats.is_file()


def test_yaml_syntax_and_tag_errors_are_one_line_config_errors(tmp_path, capsys) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntrain:\n  epochs: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML at line \d+, column \d+"):
        load_profile(broken)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("name: x\ntrain: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match=r"tagged\.yaml: not valid YAML .*tags such as"):
        load_profile(tagged)
    assert main(["grid", "--profile", str(tagged), "--no-prepare"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tagged.yaml" in err
    assert main(["train", "--profile", "smoke", "--model", "GMP", "--snr", "20", "--fold", "1",
                 "--set", "train.lr=[0.1,"]) == 2  # fmt: skip
    assert "--set 'train.lr=[0.1,': not valid YAML" in capsys.readouterr().err


@pytest.fixture()
def tiny_run(tmp_path):
    profile = load_profile(write_tiny_profile(tmp_path / "tiny.yaml", epochs=1))
    ws = tmp_path / "ws"
    write_synthetic_features(paths.feature_file(ws, 20), clips_per_fold=2, seed=3, **SHAPE)
    return profile, ws


def test_metrics_json_is_strict_json_with_null_for_nan(tiny_run) -> None:
    profile, ws = tiny_run
    result = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    absent = [k for k, v in result.metrics["per_class_ap"].items() if math.isnan(v)]
    assert absent  # 2 validation clips cannot hold all 5 classes

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    text = (result.run_dir / "metrics.json").read_text()
    strict = json.loads(text, parse_constant=refuse)
    assert all(strict["per_class_ap"][k] is None for k in absent)
    again = load_run(result.run_dir)
    assert [k for k, v in again.metrics["per_class_ap"].items() if math.isnan(v)] == absent
    assert atomic.to_json({"a": float("nan"), "b": [float("inf"), 1.5]}) == (
        '{\n "a": null,\n "b": [\n  null,\n  1.5\n ]\n}'
    )


def test_garbage_or_truncated_state_gives_a_clear_error(tiny_run, capsys) -> None:
    profile, ws = tiny_run
    done = train_run(profile, ws, model="GMP", snr_db=20, fold=1, progress=False)
    state = (done.run_dir / "state.pt").read_bytes()
    from paperlib.run import features_sha256, run_key

    key = run_key(profile, model="GAP", snr_db=20, fold=1,
                  features_sha256=features_sha256(paths.feature_file(ws, 20)))  # fmt: skip
    run_dir = key.run_dir(ws)
    run_dir.mkdir(parents=True)
    for content in (b"not a checkpoint at all", state[: len(state) // 2]):
        (run_dir / "state.pt").write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            train_run(profile, ws, model="GAP", snr_db=20, fold=1, progress=False)
        text = str(info.value)
        assert str(run_dir / "state.pt") in text and "delete it" in text
        assert "weights_only" not in text
    evil = run_dir / "evil.pt"
    evil.write_bytes(pickle.dumps({"spec": Path("/etc"), "state_dict": {}}, protocol=2))
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(evil)
    assert "weights_only" not in str(info.value) and "evil.pt" in str(info.value)


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("disk")
    fsd, tau = make_sources(root, events=24, backgrounds=4)
    write_plan(make_plan(read_fsd(fsd), read_tau(tau), mixtures_per_fold=1, seed=2),
               root / "plan.csv")  # fmt: skip
    return root


def _render(root: Path, out: Path) -> None:
    render_plan(root / "plan.csv", fsd_dir=root / "fsd", tau_dir=root / "tau",
                out_dirs={20: out}, workers=1, progress=False)  # fmt: skip


def test_full_disk_while_rendering_is_one_line_naming_the_file(planned, tmp_path, monkeypatch):
    def full(path: Path, data: bytes) -> None:
        Path(path).write_bytes(data[:100])  # a partial temporary, as a real full disk leaves
        raise FULL

    monkeypatch.setattr(atomic, "_write_file", full)
    out = tmp_path / "mix"
    with pytest.raises(atomic.DiskFullError) as info:
        _render(planned, out)
    message = str(info.value)
    # the events track of a mixture is stored once for every SNR, beside the SNR folders
    assert message.startswith("no space left on the device while writing " + str(tmp_path))
    assert "\n" not in message and "[Errno" not in message
    half_made = [p for p in tmp_path.rglob("*") if p.suffix in (".wav", ".flac", ".tmp")]
    assert not half_made  # nothing half-made


def test_free_space_is_checked_before_rendering_and_features(planned, tmp_path, monkeypatch):
    out = tmp_path / "mix"
    _render(planned, out)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 5000, 5000))
    with pytest.raises(atomic.DiskFullError, match=r"the features of 4 clip\(s\) needs about"):
        write_features(planned / "plan.csv", out, tmp_path / "f.h5", snr_db=20, workers=1,
                       progress=False)  # fmt: skip
    fresh = tmp_path / "other" / "mix"  # a folder whose shared tracks do not exist yet
    tracks = fresh.parent / "tracks"  # the shared tracks are what the render writes
    with pytest.raises(atomic.DiskFullError, match=rf"{tracks}: rendering 4 mixture\(s\) needs"):
        _render(planned, fresh)
    assert not list(fresh.glob("*.wav"))


def test_full_disk_in_hdf5_and_orphans_of_a_killed_write(planned, tmp_path, monkeypatch):
    import subprocess
    import sys

    out = tmp_path / "mix"
    _render(planned, out)
    target = tmp_path / "features" / "snr20db.h5"
    target.parent.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = target.parent / f".snr20db.h5.{dead.pid}.tmp"  # left by a writer killed with -9
    orphan.write_bytes(b"partial")

    def full(self, key, value):
        raise OSError("Can't write data (file write failed: errno = 28, error message = "
                      "'No space left on device')")  # fmt: skip

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full)
    with pytest.raises(atomic.DiskFullError, match=f"while writing {target}"):
        write_features(planned / "plan.csv", out, target, snr_db=20, workers=1, progress=False)
    assert list(target.parent.iterdir()) == []  # the orphan is gone and nothing half-written
    monkeypatch.undo()
    write_features(planned / "plan.csv", out, target, snr_db=20, workers=1, progress=False)
    assert [p.name for p in target.parent.iterdir()] == ["snr20db.h5"]


def test_full_disk_while_training_exits_2_with_the_path(tiny_run, tmp_path, monkeypatch, capsys):
    _, ws = tiny_run

    def full(path: Path, data: bytes) -> None:
        raise FULL

    monkeypatch.setattr(atomic, "_write_file", full)
    code = main(["train", "--profile", str(tmp_path / "tiny.yaml"), "--workspace", str(ws),
                 "--model", "GMP", "--snr", "20", "--fold", "1", "--no-prepare",
                 "--no-progress"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no space left on the device while writing {ws}")
    assert err.count("\n") == 1


def test_full_disk_anywhere_else_is_still_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    _, ws = tiny_run
    import paperlib.run as trainer  # the CLI's train handler calls paperlib.run.train_run

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(ws / "somewhere.bin"))

    monkeypatch.setattr(trainer, "train_run", full)
    code = main(["train", "--profile", str(tmp_path / "tiny.yaml"), "--workspace", str(ws),
                 "--model", "GMP", "--snr", "20", "--fold", "1", "--no-prepare"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: no space left on the device while writing {ws / 'somewhere.bin'}; free some "
        "space or use a workspace on another disk (--workspace)\n"
    )
