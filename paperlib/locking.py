"""Inter-process locks on a workspace: one writer per run directory, per data folder, per grid.

Two commands on one workspace must not both do the same work or interleave their files. Each
unit of work takes an exclusive ``fcntl.flock`` on a small file in ``<workspace>/.locks/``
(:func:`workspace_lock`); a second command asking for the same lock waits for it (saying on
stderr who holds it) and then finds the first one's result in the cache, or, with
``wait=False``, stops with :class:`LockedError`. The kernel drops a lock when its holder dies,
even by ``kill -9``, so a crash never leaves a workspace locked. Locks are advisory and local:
on a network file system without ``flock`` support they may not exclude other machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCKS_DIR", "LockedError", "file_lock", "workspace_lock"]

LOCKS_DIR = ".locks"
"""Folder of the lock files inside a workspace."""


class LockedError(OSError):
    """Another process holds the lock (the message names the work and the process)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        return "another process"
    return f"process {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def file_lock(
    path: Path, *, what: str, wait: bool = True, timeout_s: float | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` body.

    Args:
        path: the lock file.
        what: the work it protects, for messages (e.g. ``"run GMP-snr20-fold1-..."``).
        wait: wait for a busy lock (printing one line on stderr) instead of raising.
        timeout_s: give up waiting after this many seconds (``None``: wait as long as it takes).

    Raises:
        LockedError: the lock is busy and ``wait`` is false, or ``timeout_s`` passed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise LockedError(
                    f"{what} is in use by {holder}; wait for it to finish (or stop it) and "
                    "run again"
                ) from None
            print(f"waiting: {what} is in use by {holder} ...", file=sys.stderr, flush=True)
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise LockedError(
                            f"{what} is still in use by {holder} after {timeout_s:g} s"
                        ) from None
                    time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def workspace_lock(
    workspace: Path, name: str, *, what: str, wait: bool = True, timeout_s: float | None = None
) -> contextlib.AbstractContextManager[None]:
    """:func:`file_lock` on ``<workspace>/.locks/<name>.lock`` (``name``: ``data``, ``grid``,
    ``run-<run id>``; unsafe characters are replaced)."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
    return file_lock(
        Path(workspace) / LOCKS_DIR / f"{safe}.lock", what=what, wait=wait, timeout_s=timeout_s
    )
