"""Fetch the paper's source datasets: download (resumable), verify (MD5) and extract safely.

``python -m paperlib download --dest DIR`` or :func:`download_datasets`. Modules: ``catalog``
(records, archives, layout), ``zenodo`` (record JSON), ``fetch`` (pooch + Range resume),
``safe_extract`` (zip/tar member validation), ``core`` (the run), ``cli`` (the sub-command).
"""

from __future__ import annotations

from paperlib.download.catalog import DATASETS, ArchiveSpec, DatasetSpec
from paperlib.download.cli import mixtures_command, register
from paperlib.download.core import (
    DownloadResult,
    InsufficientSpaceError,
    LayoutError,
    download_datasets,
    space_needed,
)
from paperlib.download.fetch import ChecksumError, DownloadError, ResumableDownloader
from paperlib.download.safe_extract import UnsafeArchiveError, safe_extract
from paperlib.download.zenodo import RecordError, RemoteFile

__all__ = [
    "DATASETS",
    "ArchiveSpec",
    "ChecksumError",
    "DatasetSpec",
    "DownloadError",
    "DownloadResult",
    "InsufficientSpaceError",
    "LayoutError",
    "RecordError",
    "RemoteFile",
    "ResumableDownloader",
    "UnsafeArchiveError",
    "download_datasets",
    "mixtures_command",
    "register",
    "safe_extract",
    "space_needed",
]
