"""Extract zip and tar archives without trusting their member names.

An archive downloaded from the internet decides the names of the files it creates. A member named
``../../.bashrc``, ``/etc/cron.d/x`` or a symbolic link pointing outside the destination would
write outside the folder the user chose ("zip slip"). :func:`safe_extract` therefore

1. reads the whole member list and validates **every** member before writing **any** file:
   no absolute paths (``/x``, ``\\x``, ``C:x``), no ``..`` components, no links that resolve
   outside the destination (zip: any symbolic link, identified by the Unix mode bits in
   ``external_attr``; tar: the standard library's ``data`` filter, which also rejects device
   files, and hard links that escape), no total size larger than the free space;
2. extracts into a fresh temporary folder *inside* the destination, so a failure or an
   interruption leaves no half-written file among the trusted ones (the temporary folder is
   removed on any error);
3. returns that folder: the caller moves the files into place with ``os.replace`` (atomic on one
   file system).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["UnsafeArchiveError", "check_member_name", "safe_extract"]


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination (or is not a plain file)."""


def check_member_name(archive: Path, name: str) -> PurePosixPath:
    """Validate one member name and return it as a relative POSIX path.

    Backslashes count as separators (archives made on Windows), so ``..\\evil`` is caught too.
    Raises :class:`UnsafeArchiveError` naming the archive and the member.
    """
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} has an absolute path; expected a path relative to the "
            "archive root"
        )
    parts = [part for part in normalised.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} contains a '..' component that would escape the "
            "destination"
        )
    if not parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an empty name")
    return PurePosixPath(*parts)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> int:
    """Validate all zip members; return the total uncompressed size in bytes."""
    total = 0
    for info in zf.infolist():
        check_member_name(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(
                f"{archive}: member {info.filename!r} is a symbolic link; the datasets contain "
                "none, and a link could point outside the destination"
            )
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchiveError(
                f"{archive}: member {info.filename!r} is not a regular file or folder "
                f"(mode {oct(mode)})"
            )
        total += info.file_size
    return total


def _tar_members(archive: Path, tf: tarfile.TarFile, root: Path) -> int:
    """Validate all tar members with the ``data`` filter; return the total size in bytes."""
    total = 0
    for member in tf.getmembers():
        check_member_name(archive, member.name)
        try:
            tarfile.data_filter(member, str(root))
        except tarfile.FilterError as error:
            raise UnsafeArchiveError(
                f"{archive}: member {member.name!r} rejected: {error}"
            ) from error
        total += member.size if member.isfile() else 0
    return total


def _check_space(archive: Path, root: Path, needed: int) -> None:
    free = shutil.disk_usage(root).free
    if needed > free:
        raise UnsafeArchiveError(
            f"{archive}: extracting needs {needed:,} bytes but only {free:,} are free in {root}"
        )


def safe_extract(archive: Path | str, dest: Path | str) -> Path:
    """Validate every member of ``archive`` (zip or tar), then extract it into a new temporary
    folder inside ``dest`` and return that folder.

    Nothing is written if any member is unsafe (:class:`UnsafeArchiveError`); on any error the
    temporary folder is removed. The caller owns the returned folder (move files out, then
    delete it).
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_space(archive, dest, _zip_members(archive, zf))
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
            try:
                zf.extractall(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return tmp
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
            try:
                _check_space(archive, dest, _tar_members(archive, tf, tmp))
                tf.extractall(tmp, filter="data")
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return tmp
    raise UnsafeArchiveError(f"{archive}: not a zip or tar archive")


def iter_files(root: Path) -> list[Path]:
    """All regular files under ``root`` (sorted), as paths relative to ``root``.

    Raises :class:`UnsafeArchiveError` if extraction produced anything else (e.g. a link).
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                raise UnsafeArchiveError(f"{path}: extraction produced a link; refusing to use it")
        found.extend((Path(dirpath) / name).relative_to(root) for name in filenames)
    return sorted(found)
