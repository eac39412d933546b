"""The runner's terminal output: one line per chapter, with live progress on a terminal.

On a terminal the line of the running chapter is redrawn in place (elapsed time and what the
chapter's progress bars report, e.g. ``grid 3/12 runs``) and replaced by the final line when the
chapter ends. Elsewhere (a CI log, a pipe) only the final line is printed, so a build log has
exactly one line per chapter.

The progress comes from the file the kernel's bars write (:mod:`paperlib.progress`); a
:class:`ProgressWatcher` thread polls it while papermill runs the chapter.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from paperlib.progress import describe_progress, read_progress

POLL_INTERVAL_S = 1.0
"""How often the watcher reads the progress file and redraws the line."""


class ChapterLine:
    """Prints finished lines through ``echo`` and, on a terminal, one redrawn progress line.

    Args:
        echo: where finished lines go (``print`` for the command line).
        stream: the terminal to redraw on, or ``None`` for no live line (logs, tests).
    """

    def __init__(self, echo: Callable[[str], None], stream: TextIO | None = None) -> None:
        self.echo = echo
        self.stream = stream
        self._drawn = 0
        self._lock = threading.Lock()

    @classmethod
    def for_echo(cls, echo: Callable[[str], None]) -> ChapterLine:
        """A live line when ``echo`` is ``print`` and standard output is a terminal."""
        live = echo is print and sys.stdout.isatty()
        return cls(echo, sys.stdout if live else None)

    @property
    def live(self) -> bool:
        return self.stream is not None

    def show(self, text: str) -> None:
        """Redraw the progress line (nothing without a terminal)."""
        if self.stream is None:
            return
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        text = text if len(text) <= width else text[: width - 1] + "…"
        with self._lock:
            self.stream.write("\r" + text.ljust(self._drawn))
            self.stream.flush()
            self._drawn = len(text)

    def finish(self, text: str) -> None:
        """Replace the progress line with a finished line."""
        with self._lock:
            if self.stream is not None and self._drawn:
                self.stream.write("\r" + " " * self._drawn + "\r")
                self.stream.flush()
            self._drawn = 0
        self.echo(text)


class ProgressWatcher:
    """While open, calls ``show(elapsed_seconds, progress_text)`` every ``interval`` seconds.

    ``progress_text`` describes the bars in ``path`` (see :func:`paperlib.progress.read_progress`);
    the file is removed when the watcher closes.
    """

    def __init__(
        self,
        path: Path,
        show: Callable[[float, str], None],
        *,
        interval: float = POLL_INTERVAL_S,
    ) -> None:
        self.path = path
        self._show = show
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.perf_counter()

    def __enter__(self) -> ProgressWatcher:
        self.path.unlink(missing_ok=True)
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.path.unlink(missing_ok=True)

    def poll(self) -> None:
        """Read the progress file once and report."""
        text = describe_progress(read_progress(self.path))
        self._show(time.perf_counter() - self._start, text)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()
