"""Progress bars that the book runner can silence, and follow from outside the kernel.

Executed chapters keep every stream their cells print; a tqdm bar that redraws itself hundreds
of times would fill the rendered page. The book runner sets ``PAPERLIB_PROGRESS=0`` for the
kernels it starts; interactive use (a terminal, Jupyter) keeps its bars.

The runner also sets ``PAPERLIB_PROGRESS_FILE`` to a JSON file: every bar made by
:func:`progress_bar` (drawn or not) then writes the list of open bars there, outermost first,
as ``[{"desc", "n", "total", "unit"}, ...]``, at most every :data:`REPORT_INTERVAL_S` seconds
and whenever a bar opens, finishes or closes. The runner reads it to show, on one terminal line,
how far a long chapter is (e.g. ``grid 3/12 runs``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

PROGRESS_ENV = "PAPERLIB_PROGRESS"
PROGRESS_FILE_ENV = "PAPERLIB_PROGRESS_FILE"
REPORT_INTERVAL_S = 0.5
"""Least time between two writes of the progress file (a bar's end is always written)."""


def progress_enabled(requested: bool) -> bool:
    """``requested`` unless ``$PAPERLIB_PROGRESS`` is ``0`` (then always off)."""
    return requested and os.environ.get(PROGRESS_ENV, "1") != "0"


class _Reporter:
    """The open bars of this process, written to one progress file (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bars: dict[int, dict[str, Any]] = {}
        self._last_write = 0.0

    def update(self, bar: _ReportingBar, *, force: bool = False) -> None:
        with self._lock:
            self._bars[id(bar)] = {
                "desc": bar.report_desc,
                "n": int(bar.n),
                "total": None if bar.total is None else int(bar.total),
                "unit": bar.report_unit,
            }
            self._write(bar.report_to, force=force or bar.n == bar.total)

    def remove(self, bar: _ReportingBar) -> None:
        with self._lock:
            if self._bars.pop(id(bar), None) is not None:
                self._write(bar.report_to, force=True)

    def _write(self, path: Path, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < REPORT_INTERVAL_S:
            return
        self._last_write = now
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(list(self._bars.values())))
            os.replace(tmp, path)
        except OSError:
            pass  # progress is a courtesy: never fail the computation because of it


_REPORTER = _Reporter()


class _ReportingBar(tqdm):
    """A tqdm bar that also reports its position to ``$PAPERLIB_PROGRESS_FILE``.

    A disabled tqdm bar does not count; this one does, so the runner can follow bars that are
    not drawn.
    """

    def __init__(self, *args: Any, report_to: Path, **kwargs: Any) -> None:
        self.report_to = report_to
        self.report_desc = str(kwargs.get("desc") or "")
        self.report_unit = str(kwargs.get("unit") or "it")
        super().__init__(*args, **kwargs)
        _REPORTER.update(self, force=True)

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        if self.disable:
            self.n += n or 0
        _REPORTER.update(self)
        return shown

    def close(self) -> None:
        _REPORTER.remove(self)
        super().close()


def progress_bar(*, progress: bool, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar, disabled when ``progress`` is false or ``$PAPERLIB_PROGRESS`` is ``0``.

    With ``$PAPERLIB_PROGRESS_FILE`` set, the bar also reports to that file, drawn or not.
    """
    disable = not progress_enabled(progress)
    report_to = os.environ.get(PROGRESS_FILE_ENV)
    if report_to:
        return _ReportingBar(disable=disable, report_to=Path(report_to), **kwargs)
    return tqdm(disable=disable, **kwargs)


def read_progress(path: Path) -> list[dict[str, Any]]:
    """The open bars written to ``path`` (outermost first); ``[]`` if absent or unreadable."""
    try:
        bars = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [b for b in bars if isinstance(b, dict)] if isinstance(bars, list) else []


def _plural(unit: str) -> str:
    if unit.endswith("s"):
        return unit
    return unit + ("es" if unit.endswith(("x", "ch", "sh")) else "s")


def describe_progress(bars: list[dict[str, Any]]) -> str:
    """``grid 3/12 runs · 2APAE-snr20-fold1-1a2b 40/128 batches``: the open bars in words."""
    parts = []
    for bar in bars:
        n, total, unit = bar.get("n", 0), bar.get("total"), str(bar.get("unit") or "it")
        count = f"{n}/{total}" if total else f"{n}"
        plural = unit if total == 1 else _plural(unit)
        desc = str(bar.get("desc") or "").strip()
        parts.append(f"{desc} {count} {plural}".strip())
    return " · ".join(parts)
