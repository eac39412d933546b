"""Atomic file writes, strict JSON, free-space checks and the clean-up of orphaned temporaries.

Every file the library writes appears under its real name only when it is complete: the bytes
go to a temporary file in the same folder, ``.<name>.<pid>.<token>.tmp``, which is then renamed
into place with ``os.replace`` (atomic within one file system). A writer killed with ``kill -9``
leaves its temporary behind; :func:`clean_orphans` removes the temporaries whose process is gone,
and every stage calls it on its output folder before it writes, so none stays for ever.

A full disk never surfaces as a library's own error ("System error.", an HDF5 trace, a bare
``[Errno 28]``): every write here turns ``ENOSPC``/``EDQUOT`` into :class:`DiskFullError`, one
line naming the file, and :func:`require_free_space` refuses work whose size is known in advance
when the folder's device has less free space.

JSON is strict everywhere (:func:`to_json`): NaN and infinities become ``null``, numpy scalars
and arrays plain numbers and lists, so any JSON parser reads what the library writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DiskFullError",
    "atomic_path",
    "clean_orphans",
    "disk_full_error",
    "format_bytes",
    "is_disk_full",
    "json_safe",
    "require_free_space",
    "temp_path",
    "to_json",
    "write_bytes",
    "write_json",
    "write_text",
]

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:\.[0-9a-f]{6,})?\.tmp$")
"""Temporary names written here (``.<name>.<pid>.<token>.tmp``) and by older versions
(``.<name>.<pid>.tmp``)."""
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space left on the device of a file being written (the message names the file)."""

    def __str__(self) -> str:  # the message alone, without "[Errno 28]"
        return str(self.strerror) if self.strerror else super().__str__()


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: a byte count for messages."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def is_disk_full(error: BaseException) -> bool:
    """True for an ``OSError`` that means the device (or the user's quota) is full.

    Recognises the errno and, for libraries that lose it (h5py), the system's message text.
    """
    if isinstance(error, DiskFullError):
        return True
    if not isinstance(error, OSError):
        return False
    if error.errno in _FULL_ERRNOS:
        return True
    text = str(error)
    return (
        "No space left on device" in text or "Disk quota exceeded" in text or "errno = 28" in text
    )


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(path: Path) -> DiskFullError:
    """The one-line :class:`DiskFullError` for a write to ``path`` that ran out of space."""
    path = Path(path)
    free = _free_bytes(path.parent if path.parent.exists() else Path.cwd())
    left = f" ({format_bytes(free)} free there now)" if free is not None else ""
    return DiskFullError(
        errno.ENOSPC,
        f"no space left on the device while writing {path}{left}; free some space or "
        "use a workspace on another disk (--workspace or PAPERLIB_WORKSPACE), then run again",
    )


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<token>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = False) -> Iterator[Path]:
    """Write a file by path, atomically: ``with atomic_path(p) as tmp: writer(tmp)``.

    The body writes ``tmp`` (a temporary name in ``path``'s folder, which is created); on a
    normal exit ``tmp`` is renamed to ``path``, on an exception it is removed and ``path`` is
    untouched. ``durable`` fsyncs the file before the rename (survives a power cut).

    Raises:
        DiskFullError: the device filled up while writing (names ``path``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            raise disk_full_error(path) from error
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def write_bytes(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path, durable=durable) as tmp:
        _write_file(tmp, data)
    return Path(path)


def write_text(path: Path, text: str, *, durable: bool = False) -> Path:
    """UTF-8 text version of :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats as ``None``, numpy scalars/arrays as numbers/lists,
    tuples as lists, paths as strings: what strict JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_safe(value.tolist())
    return str(value)


def to_json(payload: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text of ``payload`` (sorted keys, NaN -> ``null``; see :func:`json_safe`)."""
    return json.dumps(json_safe(payload), indent=indent, sort_keys=True, allow_nan=False)


def write_json(path: Path, payload: Any, *, durable: bool = False) -> Path:
    """Write ``payload`` as strict JSON (:func:`to_json`, newline-terminated) atomically."""
    return write_text(path, to_json(payload) + "\n", durable=durable)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_orphans(folder: Path) -> list[Path]:
    """Remove the temporaries in ``folder`` left by writers that no longer run.

    A temporary ``.<name>.<pid>[.<token>].tmp`` is an orphan when no process ``pid`` exists (a
    writer killed mid-write); those of live processes are kept. Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match and not _alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def require_free_space(folder: Path, need_bytes: int, *, what: str) -> None:
    """Refuse work that needs ``need_bytes`` in ``folder`` when its device has less free.

    Args:
        folder: an existing folder on the device that will receive the files.
        need_bytes: bytes the work will write (a 5 % margin is added).
        what: what the space is for, for the message (e.g. ``"rendering 300 mixtures"``).

    Raises:
        DiskFullError: not enough free space (names the folder, the need and what is free).
    """
    free = _free_bytes(Path(folder))
    need = int(need_bytes * 1.05)
    if free is not None and free < need:
        raise DiskFullError(
            errno.ENOSPC,
            f"{folder}: {what} needs about {format_bytes(need)}, but only {format_bytes(free)} "
            "are free on that device; free some space or use a workspace on another disk "
            "(--workspace or PAPERLIB_WORKSPACE)",
        )
