"""Safe extraction of zip and tar archives: every unsafe member is refused before anything is
written, nothing lands outside the destination, and no partial extraction is left behind."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest
from download_support import tree

from paperlib.download.safe_extract import UnsafeArchiveError, check_member_name, safe_extract


def _zip(path: Path, members: list[tuple[str, bytes, int | None]]) -> Path:
    """Write a zip; the third item is the Unix mode stored in external_attr (None: default)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): dest is where extraction may write; outside must stay empty."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    return dest, outside


def test_good_zip_and_tar_extract_into_a_temporary_folder_inside_dest(layout) -> None:
    dest, _ = layout
    archive = _zip(
        dest.parent / "ok.zip", [("top/a.txt", b"a", None), ("top/sub/b.txt", b"bb", None)]
    )
    out = safe_extract(archive, dest)
    assert out.parent == dest and out.name.startswith(".extract-")
    assert (out / "top/sub/b.txt").read_bytes() == b"bb"
    tar = _tar(dest.parent / "ok.tar", [("x/y.txt", b"y")])
    assert (safe_extract(tar, dest) / "x/y.txt").read_bytes() == b"y"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("good.txt", b"ok", None), ("../evil.txt", b"x", None)], r"'\.\.' component"),
        ([("good.txt", b"ok", None), ("a/../../evil.txt", b"x", None)], r"'\.\.' component"),
        ([("..\\evil.txt", b"x", None)], r"'\.\.' component"),
        ([("good.txt", b"ok", None), ("{outside}/evil.txt", b"x", None)], "absolute path"),
        ([("C:/evil.txt", b"x", None)], "absolute path"),
        (
            [("good.txt", b"ok", None), ("link", b"../outside", stat.S_IFLNK | 0o777)],
            "symbolic link",
        ),
        ([("fifo", b"", stat.S_IFIFO | 0o644)], "not a regular file"),
    ],
)
def test_malicious_zip_is_rejected_before_writing_anything(layout, members, message) -> None:
    dest, outside = layout
    members = [(name.format(outside=outside), data, mode) for name, data, mode in members]
    archive = _zip(dest.parent / "bad.zip", members)
    with pytest.raises(UnsafeArchiveError, match=message) as info:
        safe_extract(archive, dest)
    assert str(archive) in str(info.value)
    assert tree(dest) == set()  # not even the good member, nor a temporary folder
    assert tree(outside) == set()
    assert not (dest.parent / "evil.txt").exists()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("good.txt", b"ok"), ("../evil.txt", b"x")], r"'\.\.' component"),
        ([("good.txt", b"ok"), ("{outside}/evil.txt", b"x")], "absolute path"),
        ([("good.txt", b"ok"), _link("esc", "{outside}"), ("esc/evil.txt", b"x")], "rejected"),
        ([_link("up", "../../outside")], "rejected"),
        ([_link("hard", "/etc/passwd", tarfile.LNKTYPE)], "rejected"),
    ],
)
def test_malicious_tar_is_rejected_before_writing_anything(layout, members, message) -> None:
    dest, outside = layout
    fixed = []
    for member in members:
        if isinstance(member, tarfile.TarInfo):
            member.linkname = member.linkname.format(outside=outside)
            fixed.append(member)
        else:
            fixed.append((member[0].format(outside=outside), member[1]))
    archive = _tar(dest.parent / "bad.tar", fixed)
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, dest)
    assert tree(dest) == set()
    assert tree(outside) == set()
    assert not (dest.parent / "evil.txt").exists()


def test_check_member_name_normalises_harmless_names(tmp_path: Path) -> None:
    assert check_member_name(tmp_path, "./a//b/./c.wav").as_posix() == "a/b/c.wav"
    with pytest.raises(UnsafeArchiveError, match="empty name"):
        check_member_name(tmp_path, "./")


def test_extraction_larger_than_free_space_is_refused(layout, monkeypatch) -> None:
    dest, _ = layout
    archive = _zip(dest.parent / "big.zip", [("a.bin", b"\0" * 10_000, None)])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    with pytest.raises(UnsafeArchiveError, match="10,000 bytes but only 100"):
        safe_extract(archive, dest)
    assert tree(dest) == set()


def test_not_an_archive(layout) -> None:
    dest, _ = layout
    path = dest.parent / "plain.zip"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(UnsafeArchiveError, match="not a zip or tar"):
        safe_extract(path, dest)
    assert os.listdir(dest) == []
