"""Errors of the data pipeline: each message names the file or value and what was expected.

They subclass :class:`ValueError` or :class:`FileNotFoundError`, so ``python -m paperlib``
prints them as one-line errors and callers can catch them by the built-in kind.
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad source data or a bad data request (the message says which file/value and why)."""


class MetadataError(DataError):
    """A metadata CSV with missing/unexpected columns or values outside the allowed set."""


class AudioFormatError(DataError):
    """A WAV that cannot be decoded, or one with an unexpected sample rate, channel count or length."""


class SilentAudioError(DataError):
    """A clip (or the cut part of it) whose RMS is too low to be scaled to a target level."""


class NotEnoughDataError(DataError):
    """Fewer events or backgrounds than the requested plan needs (the message says how many)."""


class MissingSourceError(FileNotFoundError):
    """A source folder, metadata file or listed audio file that does not exist."""


class OutputFolderError(DataError):
    """An output folder that cannot be created or written (the path is the bad value)."""
