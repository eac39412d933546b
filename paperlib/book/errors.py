"""Errors of the book runner; each message names the chapter, file or value and what to do."""

from __future__ import annotations


class BookError(ValueError):
    """Bad input to the book runner (unknown profile, parameter, chapter or build failure)."""


class GPURequiredError(BookError):
    """A profile that needs a GPU was asked to run on a machine without one (no --allow-cpu)."""


class DataMissingError(FileNotFoundError):
    """The real DCASE data that the profile needs is not where the profile says it is."""


class ChapterFailedError(BookError):
    """A chapter raised while executing; the message is the full report (chapter, cell, trace)."""

    def __init__(
        self,
        message: str,
        *,
        chapter: str,
        cell_index: int | None,
        cell_source: str,
        traceback_tail: str,
        executed_path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.chapter = chapter
        self.cell_index = cell_index
        self.cell_source = cell_source
        self.traceback_tail = traceback_tail
        self.executed_path = executed_path
