"""Test support for the download concern: a fake Zenodo on 127.0.0.1 and small real-layout zips.

:class:`FakeZenodo` is a real HTTP server (``http.server.ThreadingHTTPServer`` in a thread) that
serves ``/api/records/<id>`` (record JSON in Zenodo's format, MD5s computed here with hashlib)
and ``/records/<id>/files/<name>`` with HTTP Range support. It records every request (path and
Range header), can cut a file's first responses short, and can serve bytes other than the ones
the record describes.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import wave
import zipfile
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from paperlib.download.catalog import FSD, TAU, DatasetSpec

TAU_TOP = "TAU-urban-acoustic-scenes-2019-development"


def wav_bytes(n_samples: int, *, seed: int) -> bytes:
    """A mono 16-bit WAV of random (incompressible) samples."""
    samples = np.random.default_rng(seed).integers(-2000, 2000, n_samples, dtype=np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(samples.tobytes())
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def fake_archives() -> dict[str, dict[str, bytes]]:
    """Record id -> {archive name: zip bytes}, in the real archives' internal layout."""
    fsd_csv = b"fname,label,manually_verified,freesound_id,license\n00044347.wav,Hi-hat,0,1,CC0\n"
    tau_meta = b"filename\tscene_label\tidentifier\tsource_label\naudio/a.wav\tpark\tx-1\ta\n"
    return {
        FSD.record_id: {
            "FSDKaggle2018.meta.zip": zip_bytes(
                {
                    "FSDKaggle2018.meta/train_post_competition.csv": fsd_csv,
                    "FSDKaggle2018.meta/test_post_competition_scoring_clips.csv": b"fname\n",
                }
            ),
            "FSDKaggle2018.audio_train.zip": zip_bytes(
                {
                    "FSDKaggle2018.audio_train/00044347.wav": wav_bytes(60_000, seed=1),
                    "FSDKaggle2018.audio_train/001ca53d.wav": wav_bytes(40_000, seed=2),
                }
            ),
        },
        TAU.record_id: {
            f"{TAU_TOP}.meta.zip": zip_bytes(
                {
                    f"{TAU_TOP}/meta.csv": tau_meta,
                    f"{TAU_TOP}/evaluation_setup/fold1_train.csv": b"filename\n",
                }
            ),
            f"{TAU_TOP}.audio.1.zip": zip_bytes(
                {f"{TAU_TOP}/audio/a.wav": wav_bytes(8000, seed=3)}
            ),
            f"{TAU_TOP}.audio.2.zip": zip_bytes(
                {f"{TAU_TOP}/audio/b.wav": wav_bytes(8000, seed=4)}
            ),
        },
    }


def trimmed_specs() -> tuple[DatasetSpec, DatasetSpec]:
    """The real catalogue entries, TAU trimmed to meta + audio 1-2 and without pinned MD5s."""
    tau_archives = tuple(replace(a, pinned_md5=None) for a in TAU.archives[:3])
    return FSD, replace(TAU, archives=tau_archives)


@dataclass
class FakeZenodo:
    """Fake Zenodo server state; use as a context manager (starts/stops the server thread)."""

    records: dict[str, dict[str, bytes]]
    """Record id -> {file name: bytes the record describes (size + MD5)}."""
    served: dict[str, bytes] = field(default_factory=dict)
    """File name -> bytes actually served instead (to simulate corruption)."""
    cut: dict[str, list[int]] = field(default_factory=dict)
    """File name -> byte counts after which the next responses are cut (consumed in order)."""
    ignore_range: bool = False
    """Answer Range requests with the whole file (200), like a server without range support."""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of every request, in order."""

    def __enter__(self) -> FakeZenodo:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def file_requests(self, name: str | None = None) -> list[tuple[str, str | None]]:
        """Requests for archive files (optionally one file)."""
        return [
            (path, rng)
            for path, rng in self.requests
            if "/files/" in path and (name is None or path.split("?")[0].endswith("/" + name))
        ]

    def record_json(self, record_id: str) -> dict:
        files = self.records[record_id]
        return {
            "id": int(record_id),
            "files": [
                {
                    "id": f"uuid-{i}",
                    "key": name,
                    "size": len(data),
                    "checksum": "md5:" + hashlib.md5(data).hexdigest(),
                    "links": {
                        "self": f"{self.base_url}/api/records/{record_id}/files/{name}/content"
                    },
                }
                for i, (name, data) in enumerate(files.items())
            ],
        }


def _handler(state: FakeZenodo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str], limit: int | None) -> None:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            if limit is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body if limit is None else body[:limit])
            self.wfile.flush()
            if limit is not None:
                self.close_connection = True

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            state.requests.append((self.path, rng))
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] == ["api", "records"] and len(parts) == 3 and parts[2] in state.records:
                body = json.dumps(state.record_json(parts[2])).encode()
                return self._send(200, body, {"Content-Type": "application/json"}, None)
            if len(parts) == 4 and parts[0] == "records" and parts[2] == "files":
                files = state.records.get(parts[1], {})
                if parts[3] in files:
                    data = state.served.get(parts[3], files[parts[3]])
                    cuts = state.cut.get(parts[3], [])
                    limit = cuts.pop(0) if cuts else None
                    if rng and not state.ignore_range:
                        start = int(rng.removeprefix("bytes=").split("-")[0])
                        if start >= len(data):
                            return self._send(416, b"", {}, None)
                        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                        return self._send(206, data[start:], headers, limit)
                    return self._send(200, data, {"Content-Type": "application/zip"}, limit)
            self._send(404, b"not found", {}, None)

    return Handler


def tree(root: Path) -> set[str]:
    """All paths (files and folders) under ``root``, relative, POSIX style."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()
