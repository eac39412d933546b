"""One smoke build of the real book per test session, shared by the book and browser tests.

Not a test module: ``tests/test_book_build.py`` and ``tests/test_site_browser.py`` import
:func:`smoke_book`, which builds once (cached for the session) into a temporary folder with
``PAPERLIB_WORKSPACE`` pointed at a temporary workspace, removed at exit unless
``PAPERLIB_KEEP_TEST_BOOK`` is set. The launch buttons point at :data:`LAUNCH` (a fork).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from paperlib.book.launch import BRANCH_ENV, REPOSITORY_ENV, Repository
from paperlib.book.runner import run_book
from paperlib.book.site import BookLayout
from paperlib.book.status import StatusRecord
from paperlib.book.toc import resolve_entry, toc_entries
from paperlib.paths import project_root

KEEP_ENV = "PAPERLIB_KEEP_TEST_BOOK"
"""Set it to keep the temporary build (site, executed chapters, workspace) after the tests."""
LAUNCH = Repository("https://github.com/a-reader/fork-of-the-book", "0123abcd")
"""The repository and commit the smoke build launches, set through the environment as the Pages
workflow does (a fork's site must launch the fork)."""


@dataclass(frozen=True)
class SmokeBook:
    """A finished smoke build: its layout, status record and the toc's pages."""

    layout: BookLayout
    record: StatusRecord
    entries: tuple[str, ...]
    """Toc entries (``chapters/intro``, ``chapters/01_data``, ...) in reading order."""

    def html_page(self, entry: str) -> Path:
        return self.layout.html / f"{entry}.html"


@functools.lru_cache(maxsize=1)
def smoke_book() -> SmokeBook:
    """Build the real book with the smoke profile (once per session) and return it."""
    source = project_root()
    entries = tuple(toc_entries(source / "_toc.yml"))
    for entry in entries:  # every chapter the toc lists must exist
        resolve_entry(source, entry)
    out = Path(tempfile.mkdtemp(prefix="paperlib-smoke-book-"))
    if not os.environ.get(KEEP_ENV):
        atexit.register(shutil.rmtree, out, ignore_errors=True)
    environment = {
        "PAPERLIB_WORKSPACE": str(out / "workspace"),
        REPOSITORY_ENV: LAUNCH.url,
        BRANCH_ENV: LAUNCH.branch,
    }
    previous = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        record = run_book("smoke", source=source, output=out, echo=lambda _line: None)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return SmokeBook(BookLayout(source, out), record, entries)
