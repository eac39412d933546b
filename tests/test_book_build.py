"""A smoke build of the real book: every chapter executed, one HTML page per toc entry."""

from __future__ import annotations

import json

import nbformat
import pytest
from book_build_helpers import smoke_book

from paperlib.book.toc import toc_notebooks

pytestmark = pytest.mark.book


def test_smoke_book_builds_every_page() -> None:
    book = smoke_book()
    assert book.layout.index.is_file()
    missing = [e for e in book.entries if not book.html_page(e).is_file()]
    assert not missing, f"no HTML page for {missing}"


def test_every_notebook_was_executed_with_the_smoke_profile() -> None:
    book = smoke_book()
    notebooks = toc_notebooks(book.layout.source)
    assert [c.chapter for c in book.record.chapters] == [nb.stem for nb in notebooks]
    assert {c.state for c in book.record.chapters} <= {"executed", "reused"}
    for nb in notebooks:
        executed = nbformat.read(str(book.layout.executed(nb)), as_version=4)
        assert executed.metadata.papermill.parameters["profile"] == "smoke"
        assert not any(
            o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", [])
        )


def test_status_record_and_page() -> None:
    book = smoke_book()
    status = json.loads(book.layout.status_json.read_text())
    assert status["profile"] == "smoke"
    assert status["total_seconds"] > 0 and status["html_seconds"] > 0
    assert {"python", "torch", "numpy", "librosa", "jupyter-book", "paperlib"} <= set(
        status["versions"]
    )
    page = book.html_page("chapters/status").read_text()
    for chapter in status["chapters"]:
        assert chapter["chapter"] in page
    assert "smoke" in page and status["versions"]["torch"] in page
