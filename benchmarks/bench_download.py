"""Cost of the download concern's safety: resumable + verified download and safe extraction.

1. Download a 64 MB file from a local HTTP server (127.0.0.1) with ``fetch_archive`` (pooch +
   :class:`ResumableDownloader`: ``.part`` file, progress off, MD5 hashed while the bytes
   arrive, then checked again by pooch) against a plain ``requests`` streaming copy with no
   verification (baseline).
2. Extract a zip of 400 WAV-sized files with ``safe_extract`` (validate every member, extract to
   a temporary folder) + moving the files into place, against ``zipfile.extractall`` (baseline).

Run alone: ``.venv/bin/python -m benchmarks.bench_download``. Figures are wall-clock seconds on a
shared machine: noisy; the ratios are the figures to read.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from paperlib.download.fetch import fetch_archive
from paperlib.download.safe_extract import iter_files, safe_extract

SIZE = 64 * 1024 * 1024
N_FILES, FILE_SIZE = 400, 256 * 1024


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_fetch(root: Path) -> tuple[float, float]:
    served = root / "served"
    served.mkdir()
    data = os.urandom(SIZE)
    (served / "blob.zip").write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    handler = functools.partial(_Quiet, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/blob.zip"
    out = root / "out"
    out.mkdir()
    session = requests.Session()

    def plain() -> None:
        with session.get(url, stream=True) as response, open(out / "plain.zip", "wb") as handle:
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)

    def verified() -> None:
        (out / "blob.zip").unlink(missing_ok=True)
        fetch_archive(
            url, path=out / "blob.zip", size=SIZE, md5=md5, session=session, progressbar=False
        )

    try:
        return _best(plain), _best(verified)
    finally:
        server.shutdown()
        server.server_close()
        session.close()


def bench_extract(root: Path) -> tuple[float, float]:
    archive = root / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(N_FILES):
            zf.writestr(f"top/audio/{i:04d}.wav", os.urandom(FILE_SIZE))

    def plain() -> None:
        target = root / "plain"
        shutil.rmtree(target, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)

    def safe() -> None:
        target = root / "safe"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        tmp = safe_extract(archive, target)
        for rel in iter_files(tmp):
            final = target / "final" / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, final)
        shutil.rmtree(tmp)

    return _best(plain), _best(safe)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain, verified = bench_fetch(root)
        print(f"download {SIZE / 2**20:.0f} MiB from 127.0.0.1 (best of 3)")
        print(f"  plain requests stream (baseline): {plain:.3f} s ({SIZE / plain / 1e6:.0f} MB/s)")
        print(
            f"  fetch_archive (resumable, verified): {verified:.3f} s "
            f"({SIZE / verified / 1e6:.0f} MB/s), ratio {verified / plain:.2f}x"
        )
        plain, safe = bench_extract(root)
        total = N_FILES * FILE_SIZE / 2**20
        print(f"extract a zip of {N_FILES} files ({total:.0f} MiB) (best of 3)")
        print(f"  zipfile.extractall (baseline): {plain:.3f} s")
        print(f"  safe_extract + move into place: {safe:.3f} s, ratio {safe / plain:.2f}x")


if __name__ == "__main__":
    main()
