"""What every run directory records so a number traces back to its code, config and data."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

from paperlib import __version__, atomic, paths
from paperlib.fingerprint import file_sha256

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_sha256",
    "git_commit",
    "versions",
]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`paperlib.atomic.write_bytes`, fsynced (a run's files survive a power cut)."""
    atomic.write_bytes(path, data, durable=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic.write_text(path, text, durable=True)


def atomic_write_json(path: Path, payload: Any) -> None:
    """Strict JSON (NaN -> ``null``; :func:`paperlib.atomic.to_json`) written atomically."""
    atomic.write_json(path, payload, durable=True)


def git_commit() -> str:
    """Commit of the checkout paperlib runs from, ``<sha>+dirty`` if modified, else "unknown"."""
    root = paths.project_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries a run's numbers depend on."""
    import h5py
    import numpy
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "h5py": h5py.__version__,
        "paperlib": __version__,
    }
