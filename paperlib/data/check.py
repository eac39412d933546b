"""Check every source file once, before any work: ``python -m paperlib data check``.

:func:`check_sources` reads both listings (:func:`~paperlib.data.sources.list_fsd`,
:func:`~paperlib.data.sources.list_tau`) and decodes every listed WAV once, in parallel with a
progress bar (:func:`scan_audio`): its SHA-256, rate, channels, length, whether every sample is
finite, the RMS of the part the recipe uses and the share of silent 50-ms frames in it. The
facts are cached per file by size, modification time and inode
(:class:`~paperlib.fingerprint.StatCache`), so a rerun only stats the files and a changed file is
read again. Every problem of every file ends up in one table (:attr:`SourceCheck.problems`);
the content hashes feed the cache keys of the plan and of every rendered mixture, so a source
replaced under the same name is noticed.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from paperlib.data.audio import CLIP_SECONDS
from paperlib.data.errors import DataError, MetadataError
from paperlib.data.parallel import imap
from paperlib.data.sources import (
    EVENT_USED_S,
    FSD,
    QUIET_FRAME_RMS,
    TAU,
    SourceProblem,
    audio_problems,
    list_fsd,
    list_tau,
    problem_table,
    source_format,
)
from paperlib.fingerprint import StatCache, stat_signature

__all__ = [
    "SCAN_CACHE_KIND",
    "PlanReport",
    "SourceCheck",
    "SourceProblemsError",
    "check_sources",
    "format_missing",
    "format_problems",
    "plan_report",
    "scan_audio",
]

FRAME_S = 0.05
"""Frame length of the silence measure (50 ms)."""
SCAN_CACHE_KIND = f"audio-scan-2-{EVENT_USED_S:g}-{CLIP_SECONDS:g}-{FRAME_S:g}-{QUIET_FRAME_RMS:g}"
"""Names what :func:`scan_audio` computes; a cache written by another version is ignored."""


class SourceProblemsError(DataError):
    """Source files that cannot be used (the message holds the whole problem table)."""


STREAMING_SIZES = (0, 0xFFFFFFFF)
"""``data`` chunk sizes that mean "unknown" (a WAV written while streaming), not a length."""


def wav_data_bytes(data: bytes) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of the ``data`` chunk of a RIFF/WAVE file's bytes.

    ``None`` for a file that is not RIFF/WAVE, has no ``data`` chunk header or declares an
    unknown size (:data:`STREAMING_SIZES`); those are left to the decoder.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = (
            data[offset : offset + 4],
            int.from_bytes(data[offset + 4 : offset + 8], "little"),
        )
        if chunk == b"data":
            if size in STREAMING_SIZES:
                return None
            return size, len(data) - (offset + 8)
        offset += 8 + size + (size & 1)
    return None


def scan_audio(task: tuple[str, float]) -> tuple[str, list[int] | None, dict[str, Any]]:
    """Read one WAV once and measure it.

    Args:
        task: ``(path, used_s)``: the file and how many seconds of its start the recipe uses.

    Returns:
        ``(path, signature, facts)``: the file's stat signature taken before reading (``None``
        if it could not be read) and ``sha256``, ``rate``, ``channels``, ``frames``,
        ``duration_s``, ``nonfinite`` (count of NaN/inf samples), ``rms_used`` (RMS of the
        channel mean over the used part) and ``silent_fraction`` (share of its 50-ms frames
        with RMS < ``QUIET_FRAME_RMS``), plus ``data_declared`` and ``data_present`` (bytes)
        when the header declares more audio than the file holds (a truncated download); or
        ``{"sha256"?, "error": text}`` for an unreadable file.
    """
    path, used_s = task
    try:
        signature = stat_signature(Path(path))
        data = Path(path).read_bytes()
    except OSError as error:
        return path, None, {"error": f"cannot be read: {error.strerror or error}"}
    facts: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest()}
    sizes = wav_data_bytes(data)
    if sizes is not None and sizes[1] < sizes[0]:  # libsndfile would read the part present
        facts.update(data_declared=sizes[0], data_present=sizes[1])
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, EOFError, sf.LibsndfileError) as error:
        text = re.sub(r"^Error opening <[^>]*>: ", "", str(error))  # the in-memory buffer
        return path, signature, {**facts, "error": text}
    frames, channels = audio.shape
    facts.update(rate=int(rate), channels=int(channels), frames=int(frames))
    facts["duration_s"] = frames / rate if rate else 0.0
    facts["nonfinite"] = int(audio.size - np.count_nonzero(np.isfinite(audio)))
    if frames and not facts["nonfinite"]:
        used = audio[: max(1, round(used_s * rate))].mean(axis=1, dtype=np.float64)
        facts["rms_used"] = float(np.sqrt(np.mean(used * used)))
        size = max(1, round(FRAME_S * rate))
        count = used.size // size
        if count:
            levels = np.sqrt(np.mean(used[: count * size].reshape(count, size) ** 2, axis=1))
            facts["silent_fraction"] = float(np.mean(levels < QUIET_FRAME_RMS))
        else:
            facts["silent_fraction"] = float(facts["rms_used"] < QUIET_FRAME_RMS)
    return path, signature, facts


@dataclass(frozen=True)
class SourceCheck:
    """The result of :func:`check_sources`.

    Attributes:
        fsd_dir, tau_dir: the two dataset folders.
        events: every listed FSDKaggle2018 row (``fname, label, manually_verified, source,
            path, safe, line``) plus ``duration_s``, ``sha256`` and ``usable`` (no error).
        backgrounds: every listed TAU row (``filename, scene_label, identifier,
            source_label, path, safe, line``) plus ``duration_s``, ``sha256``, ``usable``.
        problems: one row per problem (``dataset, file, severity, problem, detail``).
        scanned: files read in this call (the others came from the cache).
    """

    fsd_dir: Path
    tau_dir: Path
    events: pd.DataFrame
    backgrounds: pd.DataFrame
    problems: pd.DataFrame
    scanned: int

    @property
    def errors(self) -> pd.DataFrame:
        """The problems that make a file unusable."""
        return self.problems[self.problems["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        """The problems of files that are usable but suspect (mostly silent)."""
        return self.problems[self.problems["severity"] == "warning"]

    def excluded(self) -> list[dict[str, str]]:
        """One entry per unusable file: ``dataset, file, problems`` (kinds) and ``detail``."""
        out = []
        for (dataset, name), rows in self.errors.groupby(["dataset", "file"], sort=True):
            out.append(
                {
                    "dataset": str(dataset),
                    "file": str(name),
                    "problems": ", ".join(dict.fromkeys(rows["problem"])),
                    "detail": " | ".join(rows["detail"]),
                }
            )
        return out

    def event_hashes(self) -> dict[str, str]:
        """``source`` (``audio_train/<fname>``) -> SHA-256 of every usable event."""
        ok = self.events[self.events["usable"]]
        return dict(zip(ok["source"], ok["sha256"], strict=True))

    def background_hashes(self) -> dict[str, str]:
        """``filename`` -> SHA-256 of every usable background."""
        ok = self.backgrounds[self.backgrounds["usable"]]
        return dict(zip(ok["filename"], ok["sha256"], strict=True))

    def identity(self) -> dict[str, Any]:
        """What the plan depends on in the sources: every usable row and its content hash."""
        ev = self.events[self.events["usable"]]
        bg = self.backgrounds[self.backgrounds["usable"]]
        return {
            "events": [
                [int(line), s, label, int(v), h, round(float(d), 6)]
                for line, s, label, v, h, d in zip(
                    ev["line"],
                    ev["source"],
                    ev["label"],
                    ev["manually_verified"],
                    ev["sha256"],
                    ev["duration_s"],
                    strict=True,
                )
            ],
            "backgrounds": [
                [int(line), f, scene, ident, h]
                for line, f, scene, ident, h in zip(
                    bg["line"],
                    bg["filename"],
                    bg["scene_label"],
                    bg["identifier"],
                    bg["sha256"],
                    strict=True,
                )
            ],
            "event_rows": len(self.events),
            "background_rows": len(self.backgrounds),
        }

    def raise_for_errors(self, *, table_path: Path | None = None) -> None:
        """Raise :class:`SourceProblemsError` listing every problem (errors first), if there is
        an error."""
        if self.errors.empty:
            return
        where = f" (also written to {table_path})" if table_path else ""
        files = self.errors.groupby(["dataset", "file"]).ngroups
        raise SourceProblemsError(
            f"{files} source file(s) cannot be used{where}; fix them, or leave them out with "
            "`python -m paperlib data all --exclude-bad` (or --set data.exclude_bad=true on "
            "any command, or data.exclude_bad: true in the profile), which records them in the "
            "data manifest; later train, grid and book commands on this workspace leave them "
            f"out too:\n{format_problems(self.problems)}"
        )


def format_problems(problems: pd.DataFrame) -> str:
    """Every row of a problem table as aligned text lines (severity, dataset, kind, detail)."""
    if problems.empty:
        return "  (no problems)"
    width = max(len(p) for p in problems["problem"])
    return "\n".join(
        f"  {sev:<7} {dataset:<13} {kind:<{width}}  {detail}"
        for sev, dataset, kind, detail in zip(
            problems["severity"],
            problems["dataset"],
            problems["problem"],
            problems["detail"],
            strict=True,
        )
    )


def check_sources(
    fsd_dir: Path,
    tau_dir: Path,
    *,
    cache_path: Path | None = None,
    workers: int = 0,
    progress: bool = True,
    rescan: bool = False,
) -> SourceCheck:
    """List both datasets and read every listed file once; collect every problem.

    Args:
        fsd_dir: FSDKaggle2018 folder; tau_dir: TAU 2019 folder.
        cache_path: the :class:`~paperlib.fingerprint.StatCache` file of the scan facts (none:
            every file is read).
        workers: processes (0: one per core); progress: show a progress bar.
        rescan: read every file even if the cache has it (the cache is then refreshed).

    Returns:
        The :class:`SourceCheck` (it raises nothing for bad files: see
        :meth:`SourceCheck.raise_for_errors`).

    Raises:
        MissingSourceError / MetadataError: a missing folder or listing, or a listing that
            cannot be read at all (wrong columns).
    """
    listings: list[str] = []  # listing-level problems of both datasets, reported together
    rows_read: list[SourceProblem] = []
    try:
        events, fsd_problems = list_fsd(fsd_dir)
        rows_read += fsd_problems
    except MetadataError as error:
        listings.append(str(error))
    try:
        backgrounds, tau_problems = list_tau(tau_dir)
        rows_read += tau_problems
    except MetadataError as error:
        listings.append(str(error))
    if listings:  # with the row problems of a listing that could be read: all in one pass
        raise MetadataError(
            f"{len(listings)} dataset listing(s) cannot be read; fix them first:\n"
            + "\n".join([*listings, *(f"{p.detail}" for p in rows_read)])
        )
    problems: list[SourceProblem] = [*fsd_problems, *tau_problems]
    cache = StatCache(cache_path, SCAN_CACHE_KIND) if cache_path else None
    jobs: dict[str, float] = {}
    for frame, used in ((events, EVENT_USED_S), (backgrounds, CLIP_SECONDS)):
        for path, safe in zip(frame["path"], frame["safe"], strict=True):
            if safe and path.is_file():
                jobs[str(path)] = used
    facts: dict[str, dict[str, Any]] = {}
    todo = []
    for path, used in jobs.items():
        hit = cache.get(Path(path)) if cache and not rescan else None
        if hit is None:
            todo.append((path, used))
        else:
            facts[path] = hit
    for path, signature, found in imap(
        scan_audio,
        todo,
        workers=workers,
        ordered=False,
        desc="check sources",
        unit="file",
        progress=progress,
    ):
        facts[path] = found
        if cache is not None and signature is not None:
            cache.put(Path(path), found, signature)
    if cache is not None:
        cache.save()

    def attach(frame: pd.DataFrame, dataset: str, column: str, root: Path) -> pd.DataFrame:
        expected = source_format(dataset, root)
        frame = frame.copy()
        found = [facts.get(str(p)) for p in frame["path"]]
        frame["sha256"] = [f.get("sha256", "") if f else "" for f in found]
        frame["duration_s"] = [f.get("duration_s", np.nan) if f else np.nan for f in found]
        for name, path, f in zip(frame[column], frame["path"], found, strict=True):
            if f is not None:
                problems.extend(audio_problems(dataset, name, path, f, expected))
        return frame

    events = attach(events, FSD, "fname", Path(fsd_dir))
    backgrounds = attach(backgrounds, TAU, "filename", Path(tau_dir))
    table = problem_table(problems)
    for frame, dataset, column in ((events, FSD, "fname"), (backgrounds, TAU, "filename")):
        errors = table[(table["dataset"] == dataset) & (table["severity"] == "error")]
        bad_lines = set(errors.loc[errors["line"] > 0, "line"])
        bad_files = set(errors.loc[errors["line"] == 0, "file"])
        frame["usable"] = [
            line not in bad_lines and name not in bad_files
            for name, line in zip(frame[column], frame["line"], strict=True)
        ]
    return SourceCheck(Path(fsd_dir), Path(tau_dir), events, backgrounds, table, len(todo))


@dataclass(frozen=True)
class PlanReport:
    """What a plan means for training and validation (see :func:`plan_report`).

    Attributes:
        coverage: :func:`~paperlib.data.plan.class_coverage` (class, held-out fold, training
            and validation clips).
        missing: the rows of ``coverage`` with no training or no validation clip
            (:func:`~paperlib.data.plan.missing_classes`).
        split_recordings: TAU recordings whose segments back mixtures of several folds.
        recordings: TAU recordings the plan uses.
    """

    coverage: pd.DataFrame
    missing: pd.DataFrame
    split_recordings: int
    recordings: int


def plan_report(
    plan: pd.DataFrame, backgrounds: pd.DataFrame, folds: tuple[int, ...] = (1, 2, 3, 4)
) -> PlanReport:
    """Class coverage per held-out fold and the recordings split across folds of a plan.

    Args:
        plan: a plan; backgrounds: rows with ``filename`` and ``identifier`` (the TAU listing);
        folds: the held-out folds of interest (the grid's).
    """
    from paperlib.data.plan import class_coverage, missing_classes, split_recordings

    coverage = class_coverage(plan, tuple(folds))
    split, used = split_recordings(plan, backgrounds)
    return PlanReport(coverage, missing_classes(coverage), split, used)


def format_missing(missing: pd.DataFrame) -> str:
    """One line per held-out fold listing the classes without training or validation clips."""
    lines = []
    for fold, rows in missing.groupby("held_out_fold"):
        for side in ("training", "validation", "both"):
            names = rows.loc[rows["missing"] == side, "class"].tolist()
            if names:
                what = "training or validation" if side == "both" else side
                lines.append(
                    f"  fold {fold} held out: {len(names)} class(es) with no {what} clip: "
                    + ", ".join(names)
                )
    return "\n".join(lines)
