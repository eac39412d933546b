"""Read a Zenodo record: the file names, sizes and the MD5 checksums Zenodo publishes for them.

``GET {base_url}/api/records/{record_id}`` returns JSON with ``files: [{key, size, checksum:
"md5:<hex>", links: {...}}]`` (the current InvenioRDM API; the transitional API used
``filename``/``filesize`` and is accepted too). Files are downloaded from
``{base_url}/records/{record_id}/files/{key}?download=1``, the address Zenodo serves in both API
versions (pooch's Zenodo support uses the same one), so a configurable ``base_url`` redirects
every request of a run, record included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["RecordError", "RemoteFile", "fetch_record", "parse_record"]

_MD5 = re.compile(r"^[0-9a-f]{32}$")


class RecordError(ValueError):
    """The record could not be read, lacks a file, or disagrees with a pinned checksum."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record."""

    name: str
    size: int
    """Size in bytes, as published by the record."""
    md5: str
    """Lower-case hexadecimal MD5, as published by the record."""
    url: str


def record_url(base_url: str, record_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/records/{record_id}"


def file_url(base_url: str, record_id: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/records/{record_id}/files/{quote(name)}?download=1"


def parse_record(payload: Any, *, base_url: str, record_id: str) -> dict[str, RemoteFile]:
    """Map file name -> :class:`RemoteFile` from the JSON of a record."""
    where = record_url(base_url, record_id)
    files = payload.get("files") if isinstance(payload, dict) else None
    if isinstance(files, dict):  # {"enabled": ..., "entries": {name: {...}}}
        files = list(files.get("entries", {}).values())
    if not isinstance(files, list):
        raise RecordError(f"{where}: expected a JSON object with a 'files' list")
    result: dict[str, RemoteFile] = {}
    for entry in files:
        name = entry.get("key") or entry.get("filename")
        size = entry.get("size", entry.get("filesize"))
        checksum = str(entry.get("checksum", "")).lower()
        algorithm, _, digest = checksum.rpartition(":")
        if not name or not isinstance(size, int) or algorithm not in ("", "md5"):
            raise RecordError(f"{where}: file entry {entry!r} lacks a name, size or MD5 checksum")
        if isinstance(size, bool) or size < 1:
            raise RecordError(
                f"{where}: file {name!r} declares size {size!r}; expected a positive number of "
                "bytes (the record is invalid; nothing was downloaded)"
            )
        if not _MD5.match(digest):
            raise RecordError(
                f"{where}: file {name!r} has checksum {checksum!r}; expected md5:<hex>"
            )
        result[name] = RemoteFile(name, size, digest, file_url(base_url, record_id, name))
    return result


def fetch_record(
    base_url: str, record_id: str, *, session: Any, timeout: float = 60.0
) -> dict[str, RemoteFile]:
    """Download and parse the record JSON (``session``: a ``requests.Session``)."""
    url = record_url(base_url, record_id)
    response = session.get(url, timeout=timeout, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise RecordError(f"{url}: HTTP {response.status_code}; expected the record JSON")
    try:
        payload = response.json()
    except ValueError as error:
        raise RecordError(f"{url}: response is not JSON ({error})") from error
    return parse_record(payload, base_url=base_url, record_id=record_id)
