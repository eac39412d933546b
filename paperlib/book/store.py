"""The book runner's small JSON stores (the chapter manifest, the run history): one mechanism.

A store is one JSON object in one file: loading a missing, unreadable or non-object file gives
an empty store (the runner then re-executes or shows no history: never an error), and saving
writes strict JSON atomically (:func:`paperlib.atomic.write_text`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from paperlib import atomic

__all__ = ["JsonStore"]


@dataclass
class JsonStore:
    """A JSON object kept in ``path`` (subclasses give ``entries`` its meaning).

    Attributes:
        path: the file.
        entries: the object, as read or as it will be written.
        sort_keys: class setting: write the keys sorted (``False`` keeps insertion order).
    """

    path: Path
    entries: dict[str, Any] = field(default_factory=dict)
    sort_keys: ClassVar[bool] = True

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read the store; a missing or unreadable file (or one not holding an object) is empty."""
        try:
            entries = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            entries = {}
        return cls(Path(path), entries if isinstance(entries, dict) else {})

    def save(self) -> None:
        """Write the store atomically (strict JSON, NaN as ``null``), creating its folder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            atomic.json_safe(self.entries), indent=1, sort_keys=self.sort_keys, allow_nan=False
        )
        atomic.write_text(self.path, text + "\n")
