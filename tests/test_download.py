"""``paperlib.download`` end to end against a real HTTP server on 127.0.0.1 (fake Zenodo).

MD5s in the fake record are computed with hashlib from the served bytes, independently of the
code under test; layouts are checked against the readers' contract (``train_post_competition.csv``
+ ``audio_train/*.wav``; ``meta.csv`` + ``audio/*.wav``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from download_support import TAU_TOP, FakeZenodo, fake_archives, tree, trimmed_specs

from paperlib import cli
from paperlib.download import (
    ChecksumError,
    DownloadError,
    InsufficientSpaceError,
    RecordError,
    UnsafeArchiveError,
    download_datasets,
    space_needed,
)
from paperlib.download.catalog import FSD, TAU
from paperlib.download.core import EXTRACT_FACTOR
from paperlib.download.zenodo import parse_record

AUDIO = "FSDKaggle2018.audio_train.zip"


def _run(server: FakeZenodo, dest: Path, **kwargs):
    options = {
        "base_url": server.base_url,
        "datasets": trimmed_specs(),
        "progress": False,
        "retry_wait_s": 0.0,
        "log": lambda _: None,
    }
    return download_datasets(dest, **{**options, **kwargs})


def _all_archives(records: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    return {name: data for files in records.values() for name, data in files.items()}


def test_happy_path_layout_matches_the_readers(tmp_path: Path) -> None:
    records = fake_archives()
    with FakeZenodo(records) as server:
        result = _run(server, tmp_path / "data")
    dest = tmp_path / "data"
    assert tree(dest / "FSDKaggle2018") == {
        "train_post_competition.csv",
        "test_post_competition_scoring_clips.csv",
        "audio_train",
        "audio_train/00044347.wav",
        "audio_train/001ca53d.wav",
    }
    assert tree(dest / "TAU2019") == {
        "meta.csv",
        "evaluation_setup",
        "evaluation_setup/fold1_train.csv",
        "audio",
        "audio/a.wav",
        "audio/b.wav",
    }
    # Extracted bytes equal the bytes zipped by the fixture (read back with zipfile itself).
    import io
    import zipfile

    audio_zip = zipfile.ZipFile(io.BytesIO(records[FSD.record_id][AUDIO]))
    expected = audio_zip.read("FSDKaggle2018.audio_train/00044347.wav")
    assert (dest / "FSDKaggle2018/audio_train/00044347.wav").read_bytes() == expected
    assert result.folders == {"fsd": dest / "FSDKaggle2018", "tau": dest / "TAU2019"}
    assert sorted(result.downloaded) == sorted(_all_archives(records))
    assert result.bytes_received == sum(len(d) for d in _all_archives(records).values())
    # Archives are deleted after extraction; only the markers (with the record's MD5) remain.
    names = {p.name for p in (dest / "archives").iterdir()}
    assert names == {f"{name}.done" for name in _all_archives(records)}
    marker = json.loads((dest / "archives" / f"{AUDIO}.done").read_text())
    assert marker["md5"] == hashlib.md5(records[FSD.record_id][AUDIO]).hexdigest()
    assert marker["files"]["FSDKaggle2018/audio_train/00044347.wav"] == len(expected)
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract-")]
    # The data readers accept the folders as they are.
    sources = pytest.importorskip("paperlib.data.sources")
    assert list(sources.read_fsd(dest / "FSDKaggle2018", check_audio=False)["label"]) == ["Hi-hat"]
    assert len(sources.read_tau(dest / "TAU2019", check_audio=False)) == 1


def test_second_run_downloads_nothing_and_repairs_a_missing_file(tmp_path: Path) -> None:
    records = fake_archives()
    with FakeZenodo(records) as server:
        _run(server, tmp_path, keep_archives=True)
        first = len(server.file_requests())
        (tmp_path / ".extract-killed/x").mkdir(parents=True)  # left by a killed run
        again = _run(server, tmp_path, keep_archives=True)
        assert not (tmp_path / ".extract-killed").exists()
        assert first == len(_all_archives(records))
        assert len(server.file_requests()) == first  # no archive requested the second time
        assert again.downloaded == [] and again.bytes_received == 0
        assert sorted(again.skipped) == sorted(_all_archives(records))
        # A file deleted by hand is noticed; only its archive is fetched again.
        (tmp_path / "TAU2019/audio/b.wav").unlink()
        (tmp_path / "archives" / f"{TAU_TOP}.audio.2.zip").unlink()
        third = _run(server, tmp_path)
        assert third.downloaded == [f"{TAU_TOP}.audio.2.zip"]
        assert (tmp_path / "TAU2019/audio/b.wav").is_file()


def test_verifying_rerun_works_when_the_record_is_unreachable(tmp_path: Path) -> None:
    records = fake_archives()
    with FakeZenodo(records) as server:
        _run(server, tmp_path)
        base_url = server.base_url
    messages: list[str] = []
    # The server is gone: every archive is in place, so the markers stand in for the record.
    again = _run(server, tmp_path, base_url=base_url, log=messages.append, retries=0)
    assert again.downloaded == [] and len(again.skipped) == len(_all_archives(records))
    assert any("verified against its markers" in m for m in messages)
    # With a file missing, the run cannot proceed without the record: the network error shows.
    (tmp_path / "TAU2019/audio/a.wav").unlink()
    with pytest.raises(OSError):
        _run(server, tmp_path, base_url=base_url, retries=0)


def test_checksum_mismatch_names_file_and_md5s_and_quarantines_the_file(tmp_path: Path) -> None:
    records = fake_archives()
    good = records[FSD.record_id][AUDIO]
    bad = bytes([good[0] ^ 0xFF]) + good[1:]
    with FakeZenodo(records, served={AUDIO: bad}) as server:
        with pytest.raises(ChecksumError) as info:
            _run(server, tmp_path)
        message = str(info.value)
        assert AUDIO in message
        assert hashlib.md5(good).hexdigest() in message  # expected
        assert hashlib.md5(bad).hexdigest() in message  # actual
        archives = tmp_path / "archives"
        assert not (archives / AUDIO).exists() and not (archives / f"{AUDIO}.part").exists()
        assert (archives / f"{AUDIO}.corrupt").read_bytes() == bad
        assert not (archives / f"{AUDIO}.done").exists()
        assert not (tmp_path / "FSDKaggle2018/audio_train").exists()
        # Once the server is fixed, the next run starts that file from zero (no Range) and works.
        del server.served[AUDIO]
        before = len(server.file_requests(AUDIO))
        _run(server, tmp_path)
        assert [rng for _, rng in server.file_requests(AUDIO)[before:]] == [None]
        assert not (archives / f"{AUDIO}.corrupt").exists()  # superseded by the good copy
    assert (tmp_path / "FSDKaggle2018/audio_train/00044347.wav").is_file()


def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    records = fake_archives()
    size = len(records[FSD.record_id][AUDIO])
    with FakeZenodo(records, cut={AUDIO: [50_000]}) as server:
        result = _run(server, tmp_path, retries=2)
        ranges = [rng for _, rng in server.file_requests(AUDIO)]
    assert ranges == [None, "bytes=50000-"]
    assert result.bytes_received == sum(len(d) for d in _all_archives(records).values())
    assert size > 50_000
    assert (tmp_path / "archives" / f"{AUDIO}.done").is_file()


def test_interrupted_run_is_resumed_by_the_next_run(tmp_path: Path) -> None:
    records = fake_archives()
    with FakeZenodo(records, cut={AUDIO: [30_000]}) as server:
        with pytest.raises(DownloadError, match="run again to resume"):
            _run(server, tmp_path, retries=0)
        part = tmp_path / "archives" / f"{AUDIO}.part"
        assert part.stat().st_size == 30_000
        assert not (tmp_path / "FSDKaggle2018/audio_train").exists()
        _run(server, tmp_path)
        assert [rng for _, rng in server.file_requests(AUDIO)] == [None, "bytes=30000-"]
    assert not part.exists()
    expected = hashlib.md5(records[FSD.record_id][AUDIO]).hexdigest()
    marker = json.loads((tmp_path / "archives" / f"{AUDIO}.done").read_text())
    assert marker["md5"] == expected


def test_server_without_range_support_restarts_from_zero(tmp_path: Path) -> None:
    records = fake_archives()
    with FakeZenodo(records, cut={AUDIO: [30_000]}, ignore_range=True) as server:
        _run(server, tmp_path, retries=1)
        assert [rng for _, rng in server.file_requests(AUDIO)] == [None, "bytes=30000-"]
    marker = json.loads((tmp_path / "archives" / f"{AUDIO}.done").read_text())
    assert marker["md5"] == hashlib.md5(records[FSD.record_id][AUDIO]).hexdigest()


def test_not_enough_space_is_refused_before_any_download(tmp_path, monkeypatch) -> None:
    records = fake_archives()
    total = sum(len(d) for d in _all_archives(records).values())
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - total, total))
    with FakeZenodo(records) as server:
        with pytest.raises(InsufficientSpaceError, match="free") as info:
            _run(server, tmp_path)
        assert server.file_requests() == []
    assert "choose another --dest" in str(info.value)
    assert not (tmp_path / "archives").exists()


def test_space_needed_by_hand() -> None:
    sizes, on_disk = [100, 300, 200], [0, 50, 0]
    extracted = int(EXTRACT_FACTOR * 600)
    assert space_needed(sizes, on_disk=on_disk, keep_archives=False) == extracted + 250
    assert space_needed(sizes, on_disk=on_disk, keep_archives=True) == extracted + 550
    assert space_needed([], keep_archives=False) == 0


def test_malicious_archive_from_the_server_is_rejected(tmp_path: Path) -> None:
    import io
    import zipfile

    records = fake_archives()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("FSDKaggle2018.audio_train/ok.wav", b"RIFF")
        zf.writestr("../evil.txt", b"owned")
    records[FSD.record_id][AUDIO] = buffer.getvalue()
    dest = tmp_path / "dest"
    with FakeZenodo(records) as server, pytest.raises(UnsafeArchiveError, match=r"\.\./evil"):
        _run(server, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert not (dest / "FSDKaggle2018/audio_train").exists()
    assert not (dest / "archives" / f"{AUDIO}.done").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract-")]


def test_record_missing_a_file_or_disagreeing_with_a_pin(tmp_path: Path) -> None:
    records = fake_archives()
    del records[TAU.record_id][f"{TAU_TOP}.audio.2.zip"]
    with FakeZenodo(records) as server:
        with pytest.raises(RecordError, match=r"no file 'TAU-urban.*audio\.2\.zip'"):
            _run(server, tmp_path)
        # The real catalogue pins the published TAU MD5s: a record with other bytes is refused.
        with pytest.raises(RecordError, match="pins md5 09782f2097e4735687af73c44919329c"):
            _run(server, tmp_path, datasets=(TAU,))
        assert server.file_requests() == []


def test_parse_record_formats_and_errors() -> None:
    legacy = {"files": [{"filename": "a.zip", "filesize": 3, "checksum": "0" * 32}]}
    (remote,) = parse_record(legacy, base_url="http://x/", record_id="7").values()
    assert (remote.name, remote.size, remote.md5) == ("a.zip", 3, "0" * 32)
    assert remote.url == "http://x/records/7/files/a.zip?download=1"
    with pytest.raises(RecordError, match="expected md5"):
        parse_record(
            {"files": [{"key": "a", "size": 1, "checksum": "md5:xyz"}]}, base_url="u", record_id="1"
        )
    with pytest.raises(RecordError, match="'files' list"):
        parse_record({"hits": []}, base_url="u", record_id="1")


def test_cli_fetches_fsd_and_prints_the_mixture_command(tmp_path, capsys) -> None:
    records = {FSD.record_id: fake_archives()[FSD.record_id]}
    dest = tmp_path / "sources"
    argv = ["download", "--dest", str(dest), "--only", "fsd", "--yes", "--no-progress"]
    with FakeZenodo(records) as server:
        assert cli.main([*argv, "--base-url", server.base_url]) == 0
        assert cli.main([*argv, "--base-url", server.base_url]) == 0
        assert len(server.file_requests()) == 2  # the second run fetched nothing
    out = capsys.readouterr().out
    assert "python -m paperlib data all --profile paper" in out
    assert f"data.fsd_dir={dest / 'FSDKaggle2018'}" in out
    assert "0 archive(s) fetched, 2 already in place" in out
    assert (dest / "FSDKaggle2018/train_post_competition.csv").is_file()


def test_cli_reports_a_checksum_error_as_exit_code_2(tmp_path, capsys) -> None:
    records = {FSD.record_id: fake_archives()[FSD.record_id]}
    with FakeZenodo(records, served={AUDIO: b"x" * len(records[FSD.record_id][AUDIO])}) as server:
        argv = ["download", "--dest", str(tmp_path), "--only", "fsd", "--yes", "--no-progress"]
        assert cli.main([*argv, "--base-url", server.base_url]) == 2
    assert "checksum mismatch" in capsys.readouterr().err


def test_cli_without_yes_and_without_a_terminal_does_nothing(tmp_path, capsys) -> None:
    assert (
        cli.main(["download", "--dest", str(tmp_path / "d"), "--base-url", "http://127.0.0.1:9"])
        == 1
    )
    assert "pass --yes" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_mixtures_command_needs_no_override_for_the_default_dest(tmp_path, monkeypatch) -> None:
    from paperlib import paths
    from paperlib.download.cli import default_dest, mixtures_command

    monkeypatch.setenv(paths.WORKSPACE_ENV, str(tmp_path / "ws"))
    dest = default_dest()
    assert dest == tmp_path / "ws/paper/data/sources"
    folders = {"fsd": dest / "FSDKaggle2018", "tau": dest / "TAU2019"}
    assert mixtures_command(folders) == "python -m paperlib data all --profile paper"
    odd = {"fsd": tmp_path / "x y/FSDKaggle2018", "tau": tmp_path / "a: b/TAU2019"}
    words = shlex.split(mixtures_command(odd))  # what the shell passes on
    assert words[:7] == "python -m paperlib data all --profile paper".split()
    # Parsed by paperlib's own command line and --set parser, the values are the folders again.
    data_cli = pytest.importorskip("paperlib.data.cli")
    args = cli.build_parser().parse_args(words[3:])
    assert (args.data_command, args.profile) == ("all", "paper")
    assert data_cli.parse_overrides(args.set) == {
        "data.fsd_dir": str(odd["fsd"]),
        "data.tau_dir": str(odd["tau"]),
    }
