"""Fetch FSDKaggle2018 and TAU Urban Acoustic Scenes 2019 into the layout the data readers expect.

Layout under ``dest``::

    FSDKaggle2018/train_post_competition.csv, test_post_competition_scoring_clips.csv
    FSDKaggle2018/audio_train/*.wav
    TAU2019/meta.csv, TAU2019/evaluation_setup/, TAU2019/audio/*.wav   (21 zips merged)
    archives/<archive>.done       one JSON marker per extracted archive (MD5 + file list)
    archives/<archive>.part       an interrupted download, resumed by the next run
    archives/<archive>.corrupt    a download whose MD5 did not match (never trusted)

Each archive goes: marker valid? -> skip. Otherwise download (resume) -> verify MD5 -> validate
and extract into a temporary folder inside ``dest`` -> move files into place -> write the marker
(last, atomically) -> delete the archive (unless ``keep_archives``). A run interrupted anywhere
redoes at most the archive it was working on.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from paperlib import atomic
from paperlib.download.catalog import DEFAULT_BASE_URL, ArchiveSpec, DatasetSpec, dataset_specs
from paperlib.download.fetch import fetch_archive
from paperlib.download.safe_extract import iter_files, safe_extract
from paperlib.download.zenodo import RecordError, RemoteFile, fetch_record

__all__ = [
    "EXTRACT_FACTOR",
    "DownloadResult",
    "InsufficientSpaceError",
    "LayoutError",
    "download_datasets",
    "space_needed",
]

EXTRACT_FACTOR = 1.25
"""Extracted bytes per archive byte (WAV barely compresses: TAU 2019 dev is 35.6 GB of zips for
about 41.5 GB of 24-bit stereo WAV, a factor of 1.17; 1.25 leaves a margin)."""


class InsufficientSpaceError(OSError):
    """Not enough free disk space for the download and the extraction."""


class LayoutError(FileNotFoundError):
    """After extraction, a file or folder the data readers need is missing."""


@dataclass(frozen=True)
class _Item:
    dataset: DatasetSpec
    archive: ArchiveSpec
    remote: RemoteFile


@dataclass
class DownloadResult:
    """What a run did, and where the datasets are."""

    dest: Path
    folders: dict[str, Path]
    """Dataset key (``fsd``/``tau``) -> its folder in the readers' layout."""
    downloaded: list[str] = field(default_factory=list)
    """Archives fetched and extracted by this run."""
    skipped: list[str] = field(default_factory=list)
    """Archives already in place (marker and files verified), not downloaded."""
    bytes_received: int = 0


def _marker_path(archives_dir: Path, name: str) -> Path:
    return archives_dir / f"{name}.done"


def _read_marker(dest: Path, name: str) -> dict[str, Any] | None:
    try:
        info = json.loads(_marker_path(dest / "archives", name).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("files"), dict) else None


def _marker_valid(dest: Path, name: str, md5: str) -> bool:
    """True when the archive's marker records ``md5`` and every file it lists is there with its
    recorded size (sizes, not contents: re-hashing 40 GB on every run would take minutes)."""
    info = _read_marker(dest, name)
    if info is None or info.get("md5") != md5:
        return False
    for rel, size in info["files"].items():
        path = dest / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _record_from_markers(dest: Path, spec: DatasetSpec) -> dict[str, RemoteFile] | None:
    """The record as the markers remember it, if every archive of ``spec`` is in place."""
    files = {}
    for archive in spec.archives:
        info = _read_marker(dest, archive.name)
        if info is None or not _marker_valid(dest, archive.name, str(info.get("md5"))):
            return None
        files[archive.name] = RemoteFile(archive.name, int(info["size"]), str(info["md5"]), "")
    return files


def space_needed(
    sizes: Sequence[int], *, on_disk: Sequence[int] | None = None, keep_archives: bool
) -> int:
    """Bytes of free space a run needs for archives of ``sizes`` bytes still to extract.

    ``on_disk``: bytes of each archive already downloaded (``.part``), which need no new space.
    Archives are processed one at a time: each is downloaded, extracted and (unless kept)
    deleted, so the peak is all extracted files plus the largest archive still to download.
    """
    if not sizes:
        return 0
    have = list(on_disk) if on_disk is not None else [0] * len(sizes)
    to_download = [max(size - got, 0) for size, got in zip(sizes, have, strict=True)]
    extracted = int(EXTRACT_FACTOR * sum(sizes))
    return extracted + (sum(to_download) if keep_archives else max(to_download))


def _resolve(
    specs: Sequence[DatasetSpec],
    dest: Path,
    *,
    base_url: str,
    session: Any,
    log: Callable[[str], None],
) -> list[_Item]:
    """Pair each archive of ``specs`` with its record entry (checked against pinned MD5s).

    When a record cannot be read (offline, server down) but every archive of that dataset is
    already in place, the markers stand in for the record, so a verifying re-run works offline.
    """
    items = []
    for spec in specs:
        try:
            files = fetch_record(base_url, spec.record_id, session=session)
        except (OSError, RecordError) as error:  # requests' errors are OSErrors
            files = _record_from_markers(dest, spec)
            if files is None:
                raise
            log(f"warning: {error}; {spec.title} is in place, verified against its markers")
        for archive in spec.archives:
            remote = files.get(archive.name)
            if remote is None:
                raise RecordError(
                    f"record {spec.record_id} ({spec.title}) at {base_url} has no file "
                    f"{archive.name!r}; it lists {sorted(files)}"
                )
            if archive.pinned_md5 and archive.pinned_md5 != remote.md5:
                raise RecordError(
                    f"{archive.name}: the record at {base_url} publishes md5 {remote.md5}, but "
                    f"paperlib pins md5 {archive.pinned_md5} (published by dcase_util/soundata); "
                    "refusing to download from a record that disagrees"
                )
            items.append(_Item(spec, archive, remote))
    return items


def _place(extracted: Path, dest: Path, item: _Item) -> dict[str, int]:
    """Move the extracted files into the dataset folder; return {path rel. to dest: size}."""
    target = dest / item.dataset.folder / item.archive.subdir
    placed: dict[str, int] = {}
    for rel in iter_files(extracted):
        parts = PurePosixPath(rel.as_posix()).parts
        inner = parts[1:] if len(parts) > 1 and parts[0] == item.archive.strip else parts
        final = target.joinpath(*inner)
        final.parent.mkdir(parents=True, exist_ok=True)
        size = (extracted / rel).stat().st_size
        os.replace(extracted / rel, final)
        placed[final.relative_to(dest).as_posix()] = size
    return placed


def _write_marker(dest: Path, item: _Item, files: dict[str, int]) -> None:
    marker = _marker_path(dest / "archives", item.remote.name)
    payload = {"archive": item.remote.name, "md5": item.remote.md5, "size": item.remote.size}
    atomic.write_json(marker, {**payload, "files": files})


def _check_layout(dest: Path, spec: DatasetSpec) -> Path:
    folder = dest / spec.folder
    missing = [rel for rel in spec.required if not (folder / rel).exists()]
    if missing:
        raise LayoutError(
            f"{folder}: missing {missing} after extraction; expected {list(spec.required)} "
            f"(the layout the data readers expect for {spec.title})"
        )
    return folder


def download_datasets(
    dest: Path | str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    only: str | None = None,
    datasets: Sequence[DatasetSpec] | None = None,
    keep_archives: bool = False,
    progress: bool = True,
    retries: int = 3,
    retry_wait_s: float = 2.0,
    log: Callable[[str], None] = print,
    session: Any = None,
) -> DownloadResult:
    """Download, verify and safely extract the paper's source datasets into ``dest``.

    ``only``: ``"fsd"`` or ``"tau"`` (default both); ``datasets`` replaces the built-in catalogue
    (tests); ``base_url``: the Zenodo server (tests point it at a local one). Idempotent: archives
    whose marker and files verify are skipped without any download. Before downloading, the
    space needed (:func:`space_needed`) is compared with the free space of ``dest``.
    Raises :class:`InsufficientSpaceError`, :class:`~paperlib.download.fetch.ChecksumError`,
    :class:`~paperlib.download.fetch.DownloadError`, :class:`RecordError`,
    :class:`~paperlib.download.safe_extract.UnsafeArchiveError` or :class:`LayoutError`.
    """
    import requests

    dest = Path(dest).expanduser().resolve()
    dest.mkdir(parents=True, exist_ok=True)
    archives_dir = dest / "archives"
    specs = tuple(datasets) if datasets is not None else dataset_specs(only)
    own_session = session is None
    session = session or requests.Session()
    for stale in dest.glob(".extract-*"):  # left by a run killed while extracting
        shutil.rmtree(stale, ignore_errors=True)
    try:
        items = _resolve(specs, dest, base_url=base_url, session=session, log=log)
        result = DownloadResult(dest, {spec.key: dest / spec.folder for spec in specs})
        pending = []
        for item in items:
            if _marker_valid(dest, item.remote.name, item.remote.md5):
                result.skipped.append(item.remote.name)
            else:
                pending.append(item)
        sizes = [item.remote.size for item in pending]
        on_disk = [_partial_size(archives_dir, item.remote.name) for item in pending]
        needed = space_needed(sizes, on_disk=on_disk, keep_archives=keep_archives)
        free = shutil.disk_usage(dest).free
        if needed > free:
            raise InsufficientSpaceError(
                f"{dest}: {len(pending)} archive(s) need about {_gb(needed)} of free space "
                f"(downloads plus extraction), but only {_gb(free)} is free; free some space "
                "or choose another --dest"
            )
        if pending:
            log(
                f"{len(pending)} archive(s) to fetch, {_gb(sum(sizes) - sum(on_disk))} to "
                f"download, about {_gb(needed)} of disk needed ({_gb(free)} free) in {dest}"
            )
        for number, item in enumerate(pending, start=1):
            log(f"[{number}/{len(pending)}] {item.remote.name} ({_gb(item.remote.size)})")
            result.bytes_received += _install(
                item,
                dest,
                session=session,
                keep_archive=keep_archives,
                retries=retries,
                retry_wait_s=retry_wait_s,
                progress=progress,
            )
            result.downloaded.append(item.remote.name)
        for spec in specs:
            _check_layout(dest, spec)
        return result
    finally:
        if own_session:
            session.close()


def _install(
    item: _Item,
    dest: Path,
    *,
    session: Any,
    keep_archive: bool,
    retries: int,
    retry_wait_s: float,
    progress: bool,
) -> int:
    """Fetch (resume, verify), extract safely, place and mark one archive; return bytes received."""
    archives_dir = dest / "archives"
    archives_dir.mkdir(parents=True, exist_ok=True)
    path, received = fetch_archive(
        item.remote.url,
        path=archives_dir / item.remote.name,
        size=item.remote.size,
        md5=item.remote.md5,
        session=session,
        retries=retries,
        retry_wait_s=retry_wait_s,
        progressbar=progress,
    )
    (archives_dir / f"{item.remote.name}.corrupt").unlink(missing_ok=True)
    extracted = safe_extract(path, dest)
    try:
        files = _place(extracted, dest, item)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
    _write_marker(dest, item, files)
    if not keep_archive:
        path.unlink()
    return received


def _partial_size(archives_dir: Path, name: str) -> int:
    """Bytes already on disk for an archive (complete file or ``.part``)."""
    for candidate in (archives_dir / name, archives_dir / f"{name}.part"):
        if candidate.is_file():
            return candidate.stat().st_size
    return 0


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"
