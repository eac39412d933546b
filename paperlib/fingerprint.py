"""Content fingerprints of files, recomputed only when a file changed.

Cache keys must cover the *content* of their input files (a WAV replaced by another under the
same name must be noticed), but hashing gigabytes on every call would make a cached rerun slow.
:class:`StatCache` keeps, per file, facts computed from its content (its SHA-256 and whatever else
the caller derives while reading it) together with the file's size, modification time (ns) and
inode. A later lookup stats the file: an unchanged signature returns the stored facts, a changed
one (any write, a replacement, a copy) makes the caller read the file again, so a touched file
whose bytes are the same still ends up with the same hash. The cache is a small JSON file,
written atomically; losing it only costs a rehash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from paperlib import atomic

__all__ = ["StatCache", "cached_sha256", "file_sha256", "stat_signature"]

CACHE_VERSION = 1


def stat_signature(path: Path) -> list[int]:
    """``[size, mtime_ns, inode]`` of ``path``: changes whenever its content may have changed."""
    st = os.stat(path)
    return [int(st.st_size), int(st.st_mtime_ns), int(st.st_ino)]


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class StatCache:
    """Facts about files, valid while each file's :func:`stat_signature` is unchanged.

    Args:
        path: the JSON file holding the cache (created on :meth:`save`).
        kind: a name for what the facts are; a cache file of another kind or version is
            ignored (e.g. ``"sha256"`` or ``"audio-scan-1"``).
    """

    def __init__(self, path: Path, kind: str):
        self.path, self.kind = Path(path), kind
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        try:
            stored = json.loads(self.path.read_text())
            if stored.get("version") == CACHE_VERSION and stored.get("kind") == kind:
                self.entries = dict(stored["entries"])
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            pass

    @staticmethod
    def _name(file: Path) -> str:
        return str(Path(file).absolute())

    def get(self, file: Path, signature: list[int] | None = None) -> dict[str, Any] | None:
        """The stored facts of ``file`` if its signature is unchanged, else ``None``."""
        entry = self.entries.get(self._name(file))
        if entry is None:
            return None
        if signature is None:
            try:
                signature = stat_signature(file)
            except OSError:
                return None
        return entry["facts"] if entry.get("stat") == signature else None

    def put(self, file: Path, facts: dict[str, Any], signature: list[int]) -> None:
        """Store ``facts`` for ``file`` as read with ``signature`` (taken *before* reading)."""
        self.entries[self._name(file)] = {"stat": list(signature), "facts": facts}
        self._dirty = True

    def save(self) -> None:
        """Write the cache if it changed; a folder that cannot be written is not an error."""
        if not self._dirty:
            return
        try:
            atomic.write_json(
                self.path, {"version": CACHE_VERSION, "kind": self.kind, "entries": self.entries}
            )
        except OSError:
            return  # a read-only folder: the next call rehashes
        self._dirty = False


def cached_sha256(path: Path, cache: StatCache | None = None) -> str:
    """SHA-256 of ``path``, read from ``cache`` when the file is unchanged since it was hashed.

    ``cache`` defaults to ``.sha256-cache.json`` beside the file. The file is hashed again
    whenever its size, modification time or inode differ from the cached ones.
    """
    path = Path(path)
    own = cache is None
    cache = cache or StatCache(path.with_name(".sha256-cache.json"), "sha256")
    signature = stat_signature(path)
    facts = cache.get(path, signature)
    if facts is None:
        facts = {"sha256": file_sha256(path)}
        cache.put(path, facts, signature)
        if own:
            cache.save()
    return str(facts["sha256"])
