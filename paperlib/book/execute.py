"""Execute one chapter with papermill, reuse unchanged ones, and report failures precisely.

A chapter is reused (not executed again) when its *input key* is unchanged (the hash of the
notebook file, of the effective profile (:func:`paperlib.config.config_hash`), of the injected
parameters and of the paperlib source tree) and so are the workspace inputs it reads (the
workspace folder, its data and runs by content: :mod:`paperlib.book.inputs`). Expensive results inside a chapter (data, trained
models, grid tables) are cached separately by the library itself, so even a re-executed chapter
is quick when only its text changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperlib.book.errors import ChapterFailedError
from paperlib.book.status import ChapterRun
from paperlib.book.store import JsonStore
from paperlib.progress import PROGRESS_ENV, PROGRESS_FILE_ENV

KERNEL_NAME = "python3"
TRACEBACK_LINES = 20
"""How many lines of the traceback the failure report keeps."""
RUNNER_TAGS = {"injected-parameters", "papermill-error-cell-tag"}
"""Tags of cells papermill adds to the executed copy (not part of the source notebook)."""
KERNEL_ARGUMENTS: tuple[str, ...] = ("--IPKernelApp.log_level=CRITICAL",)
"""Options of the kernels papermill starts: no log lines of the kernel's own on the terminal
(ipykernel warns at every start that it runs over TCP without encryption, although it listens on
127.0.0.1 only, and logs "KeyboardInterrupt caught in kernel" at shutdown). A cell's errors and
a dead kernel still reach the failure report through nbclient."""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


HASH_EXCLUDED: tuple[str, ...] = ("book",)
"""Sub-packages left out of the source hash: the runner itself does not shape chapter outputs."""


def source_tree_hash(package_dir: Path) -> str:
    """SHA-256 over the paperlib sources (``*.py``, ``*.yaml``, ``*.csv``), names included.

    The book runner's own package (:data:`HASH_EXCLUDED`) is left out, so editing the runner
    does not re-execute every chapter.
    """
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in package_dir.rglob("*")
        if p.suffix in (".py", ".yaml", ".csv")
        and "__pycache__" not in p.parts
        and p.relative_to(package_dir).parts[0] not in HASH_EXCLUDED
        and p.is_file()
    )
    for path in files:
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def input_key(
    notebook: Path, *, profile_hash: str, parameters: dict[str, Any], library_hash: str
) -> str:
    """The reuse key of one chapter execution (see the module docstring)."""
    payload = {
        "notebook": file_hash(notebook),
        "profile": profile_hash,
        "parameters": parameters,
        "library": library_hash,
        "kernel": KERNEL_NAME,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Manifest(JsonStore):
    """What the runner executed before (JSON): per chapter the reuse key and the execution shown.

    ``{chapter: {"key", "inputs", "seconds", "finished", "finished_utc", "profile", "device"}}``
    (``inputs``: :meth:`paperlib.book.inputs.WorkspaceInputs.of` after the execution).
    """

    def reusable(self, chapter: str, key: str, executed: Path) -> bool:
        """Whether ``executed`` holds a successful run of ``chapter`` with this input key."""
        return executed.is_file() and self.entries.get(chapter, {}).get("key") == key

    def execute_reason(
        self, chapter: str, key: str, executed: Path, inputs: dict[str, Any]
    ) -> str | None:
        """Why ``chapter`` must be executed (``None``: its executed copy can be reused).

        Args:
            key: the chapter's :func:`input_key` now.
            executed: where its executed copy lies.
            inputs: its workspace inputs now (:meth:`~paperlib.book.inputs.WorkspaceInputs.of`).
        """
        from paperlib.book.inputs import change_reason

        entry = self.entries.get(chapter)
        if not executed.is_file() or not isinstance(entry, dict):
            return "no earlier execution in this build folder"
        if entry.get("key") != key:
            return "notebook, profile, parameters or library changed"
        return change_reason(entry.get("inputs"), inputs)

    def record(
        self, chapter: str, key: str, run: ChapterRun, inputs: dict[str, Any] | None = None
    ) -> None:
        """Remember a successful execution (with the workspace ``inputs`` it left) and save the
        manifest atomically."""
        self.entries[chapter] = {
            "key": key,
            "inputs": inputs,
            "seconds": round(run.seconds, 2),
            "finished": time.time(),
            "finished_utc": run.finished,
            "profile": run.profile,
            "device": run.device,
        }
        self.save()

    def shown_run(self, chapter: str) -> ChapterRun | None:
        """The execution whose outputs the executed copy of ``chapter`` holds, if recorded."""
        entry = self.entries.get(chapter)
        if not isinstance(entry, dict) or not isinstance(entry.get("seconds"), int | float):
            return None
        return ChapterRun(
            str(entry.get("profile", "?")),
            float(entry["seconds"]),
            str(entry.get("finished_utc", "")),
            str(entry.get("device", "unknown machine")),
        )

    def forget(self, chapter: str) -> None:
        self.entries.pop(chapter, None)
        self.save()


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _failing_cell(notebook_path: Path) -> tuple[int | None, str]:
    """(index in the source notebook, source) of the cell that failed.

    That is the cell papermill marked with an exception or as running, else (a timeout, a dead
    kernel) the last cell that started executing.
    """
    import nbformat

    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except (OSError, ValueError):
        return None, ""
    source_index, last = -1, (None, "")
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if set(tags) & RUNNER_TAGS:
            continue
        source_index += 1
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("exception") or meta.get("status") == "running":
            return source_index, cell.get("source", "")
        if meta.get("start_time"):
            last = (source_index, cell.get("source", ""))
    return last


def format_failure(
    chapter: str, cell_index: int | None, source: str, traceback: str, executed: Path | None
) -> str:
    """The report printed when a chapter fails: chapter, cell, source head, traceback tail."""
    head = "\n".join("    " + line for line in source.splitlines()[:5])
    tail = "\n".join("    " + line for line in traceback.splitlines()[-TRACEBACK_LINES:])
    where = f"cell {cell_index}" if cell_index is not None else "an unknown cell"
    lines = [
        f"chapter {chapter!r} failed in {where} (0-based index in chapters/{chapter}.ipynb).",
        "Cell source (first lines):",
        head or "    (empty)",
        "Traceback (last lines):",
        tail or "    (none)",
    ]
    if executed is not None:
        lines.append(f"The partly executed notebook is {executed}")
    return "\n".join(lines)


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, unset) environment variables inside the block; restore them after.

    The kernels papermill starts inherit them.
    """
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_chapter(
    notebook: Path,
    output: Path,
    *,
    parameters: dict[str, Any],
    cell_timeout_s: int,
    cwd: Path,
    failed_dir: Path,
    progress: Callable[[float, str], None] | None = None,
) -> float:
    """Execute ``notebook`` with papermill into ``output``; return the wall time in seconds.

    The executed copy is written to a temporary name and moved into place only on success, so
    ``output`` never holds a half-run chapter. The kernel draws no progress bars
    (``PAPERLIB_PROGRESS=0``) and logs nothing of its own (:data:`KERNEL_ARGUMENTS`); with
    ``progress``, it is called about every second with the elapsed seconds and what the
    kernel's bars report (:class:`paperlib.book.console.ProgressWatcher`).

    Raises:
        ChapterFailedError: a cell raised or timed out; the partly executed notebook is kept
            in ``failed_dir`` and the message names the chapter, cell and traceback tail.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from paperlib.book.console import ProgressWatcher

    chapter = notebook.stem
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.running.ipynb")
    progress_file = output.with_name(f".{output.stem}.progress.json")
    start = time.perf_counter()
    environment = {
        PROGRESS_ENV: "0",  # no redrawn tqdm bars in the pages
        PROGRESS_FILE_ENV: str(progress_file) if progress else None,
    }
    watcher = ProgressWatcher(progress_file, progress) if progress else contextlib.nullcontext()
    try:
        with _environment(environment), watcher:
            papermill.execute_notebook(
                str(notebook),
                str(tmp),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                cwd=str(cwd),
                execution_timeout=cell_timeout_s,
                progress_bar=False,
                log_output=False,
                extra_arguments=list(KERNEL_ARGUMENTS),
            )
    except Exception as error:  # papermill, nbclient (timeouts, dead kernel) or the engine
        failed_dir.mkdir(parents=True, exist_ok=True)
        kept = failed_dir / notebook.name
        kept_path: Path | None = kept if tmp.is_file() else None
        if tmp.is_file():
            os.replace(tmp, kept)
        index, source = _failing_cell(kept) if kept_path else (None, "")
        if isinstance(error, PapermillExecutionError):
            trace = _strip_ansi("\n".join(error.traceback))
            source = source or error.source
        else:
            trace = _strip_ansi(f"{type(error).__name__}: {error}")
        message = format_failure(chapter, index, source, trace, kept_path)
        raise ChapterFailedError(
            message,
            chapter=chapter,
            cell_index=index,
            cell_source=source,
            traceback_tail="\n".join(trace.splitlines()[-TRACEBACK_LINES:]),
            executed_path=str(kept_path) if kept_path else None,
        ) from error
    os.replace(tmp, output)
    return time.perf_counter() - start
