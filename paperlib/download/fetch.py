"""Download one archive with resume, progress and MD5 verification (pooch + HTTP Range).

:func:`fetch_archive` hands the work to :func:`pooch.retrieve`, which skips a file that is already
there with the right hash, downloads into a temporary name, checks the hash and only then moves
the file into place. pooch does not resume, so the ``downloader=`` it calls is
:class:`ResumableDownloader`: it appends to ``<archive>.part`` (kept across runs), asks the server
only for the missing bytes (``Range: bytes=<have>-``), retries a dropped connection the same way,
and checks size and MD5 (hashed while the bytes arrive) before handing the file to pooch. A
complete file with the wrong MD5 is renamed ``<archive>.corrupt`` (never trusted, never resumed
from) and :class:`ChecksumError` names the file, the expected and the actual MD5.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ChecksumError", "DownloadError", "ResumableDownloader", "fetch_archive", "md5_file"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A downloaded file does not have the MD5 the repository publishes."""


class DownloadError(OSError):
    """A download failed for good (HTTP error, or the connection kept dropping)."""


@contextlib.contextmanager
def _disk_errors(path: Path) -> Iterator[None]:
    """A full disk while receiving ``path`` is one error naming it."""
    try:
        yield
    except OSError as error:
        from paperlib.atomic import disk_full_error, is_disk_full

        if is_disk_full(error):
            raise disk_full_error(path) from error
        raise


class _Incomplete(Exception):
    """The server closed the response early; resume with a Range request."""


def _chunks(response: Any) -> Iterator[bytes]:
    """The body of a streamed ``requests`` response, as the bytes arrive.

    ``read1`` returns whatever has arrived (up to 1 MiB) instead of waiting to fill a buffer, so
    when the connection drops every byte received is on disk and the resume starts right after
    it (``iter_content`` would drop the last partly filled chunk).
    """
    from urllib3.exceptions import ProtocolError

    if not hasattr(response.raw, "read1"):  # urllib3 < 2: plain chunks
        yield from response.iter_content(chunk_size=64 * 1024)
        return
    try:
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            yield chunk
    except ProtocolError as error:
        raise _Incomplete(str(error)) from error


def _md5_prefix(path: Path, *, chunk_size: int = _CHUNK) -> Any:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest


def md5_file(path: Path) -> str:
    """Hexadecimal MD5 of a file, read in chunks."""
    return _md5_prefix(path).hexdigest()


class ResumableDownloader:
    """A pooch ``downloader`` that resumes ``<part_path>`` with HTTP Range requests.

    Parameters (keyword-only): ``part_path`` the stable partial file; ``size`` and ``md5`` the
    published size (bytes) and MD5; ``session`` a ``requests.Session``; ``retries`` how many
    times a dropped connection is resumed within one call; ``retry_wait_s`` the pause before a
    retry (doubled each time, at most 30 s); ``progressbar`` show a tqdm bar on stderr.
    """

    def __init__(
        self,
        *,
        part_path: Path,
        size: int,
        md5: str,
        session: Any,
        retries: int = 3,
        retry_wait_s: float = 2.0,
        timeout: float = 60.0,
        progressbar: bool = False,
    ) -> None:
        self.part_path = Path(part_path)
        self.size = size
        self.md5 = md5
        self.session = session
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self.timeout = timeout
        self.progressbar = progressbar
        self.bytes_received = 0
        """Bytes received over the network by this downloader (all attempts)."""
        self._digest = hashlib.md5(usedforsecurity=False)
        self._hashed = 0  # bytes of the .part file covered by _digest

    # pooch calls downloader(url, output_file, pooch) and, for availability checks,
    # downloader(url, None, pooch, check_only=True).
    def __call__(
        self, url: str, output_file: Any, pooch: Any = None, check_only: bool = False
    ) -> bool | None:
        import requests

        if check_only:
            response = self.session.head(url, allow_redirects=True, timeout=self.timeout)
            return response.status_code == 200
        errors = (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            _Incomplete,
        )
        for attempt in range(self.retries + 1):
            try:
                self._fetch_once(url)
                break
            except errors as error:
                have = self._part_size()
                if attempt == self.retries:
                    raise DownloadError(
                        f"{url}: download interrupted at {have:,} of {self.size:,} bytes after "
                        f"{attempt + 1} attempts ({error}); run again to resume from "
                        f"{self.part_path}"
                    ) from error
                log.warning("%s: interrupted at %d bytes (%s); resuming", url, have, error)
                time.sleep(min(self.retry_wait_s * 2**attempt, 30.0))
        self._verify_part()
        os.replace(self.part_path, output_file)
        return None

    def _part_size(self) -> int:
        return self.part_path.stat().st_size if self.part_path.exists() else 0

    def _fetch_once(self, url: str) -> None:
        from tqdm.auto import tqdm

        offset = self._part_size()
        if offset > self.size:  # cannot be a prefix of the published file
            self.part_path.unlink()
            offset = 0
        if offset == self.size:
            return
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self.session.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416:  # the range starts past the end: start over
                self.part_path.unlink()
                raise _Incomplete(f"server refused range bytes={offset}- (HTTP 416)")
            if response.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
            content_range = response.headers.get("Content-Range", "")
            if offset and not (
                response.status_code == 206 and content_range.startswith(f"bytes {offset}-")
            ):
                log.warning("%s: server ignored the Range request; starting over", url)
                offset = 0
            mode = "ab" if offset else "wb"
            self._sync_digest(offset)
            self.part_path.parent.mkdir(parents=True, exist_ok=True)
            with (
                _disk_errors(self.part_path),
                open(self.part_path, mode) as handle,
                tqdm(
                    total=self.size,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=self.part_path.name.removesuffix(".part"),
                    disable=not self.progressbar,
                    leave=True,
                ) as bar,
            ):
                have = offset
                for chunk in _chunks(response):
                    self.bytes_received += len(chunk)
                    if have + len(chunk) > self.size:  # never past the published size
                        log.warning(
                            "%s: the server sends more than the %d bytes the record declares; "
                            "stopped there (the checksum decides)",
                            url,
                            self.size,
                        )
                        chunk = chunk[: self.size - have]
                    handle.write(chunk)
                    self._digest.update(chunk)
                    self._hashed += len(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
                    if have >= self.size:
                        break
        got = self._part_size()
        if got < self.size:
            raise _Incomplete(f"response ended at {got:,} of {self.size:,} bytes")

    def _sync_digest(self, offset: int) -> None:
        """Make the running MD5 cover the first ``offset`` bytes of the ``.part`` file, so the
        finished file needs no second read (a resumed file's prefix is read once)."""
        if offset == 0:
            self._digest, self._hashed = hashlib.md5(usedforsecurity=False), 0
        elif offset != self._hashed:
            self._digest, self._hashed = _md5_prefix(self.part_path), offset

    def _verify_part(self) -> None:
        got = self._part_size()
        actual = self._digest.hexdigest() if got == self._hashed else md5_file(self.part_path)
        if got != self.size or actual != self.md5:
            corrupt = self.part_path.with_name(
                self.part_path.name.removesuffix(".part") + ".corrupt"
            )
            os.replace(self.part_path, corrupt)
            raise ChecksumError(
                f"{corrupt.name.removesuffix('.corrupt')}: checksum mismatch: expected md5 "
                f"{self.md5} ({self.size:,} bytes), got md5 {actual} ({got:,} bytes); the file "
                f"was moved to {corrupt} and will be downloaded again on the next run"
            )


def fetch_archive(
    url: str,
    *,
    path: Path,
    size: int,
    md5: str,
    session: Any,
    retries: int = 3,
    retry_wait_s: float = 2.0,
    progressbar: bool = True,
) -> tuple[Path, int]:
    """Make ``path`` hold the verified archive; return ``(path, bytes received)``.

    An existing ``path`` with the right MD5 is kept (pooch checks it); otherwise the archive is
    downloaded (resuming ``<path>.part``) and verified twice: by :class:`ResumableDownloader`,
    which quarantines a bad file as ``<path>.corrupt``, and by pooch before it moves the file to
    ``path``. Raises :class:`ChecksumError` or :class:`DownloadError`.
    """
    import pooch

    downloader = ResumableDownloader(
        part_path=path.with_name(path.name + ".part"),
        size=size,
        md5=md5,
        session=session,
        retries=retries,
        retry_wait_s=retry_wait_s,
        progressbar=progressbar,
    )
    pooch.retrieve(
        url,
        known_hash=f"md5:{md5}",
        fname=path.name,
        path=path.parent,
        downloader=downloader,
        progressbar=False,
    )
    return path, downloader.bytes_received
