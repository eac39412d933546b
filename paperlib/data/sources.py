"""Readers of the two source datasets in their published layouts, with validation.

* FSDKaggle2018 (events): ``train_post_competition.csv`` (or ``train.csv``) with columns
  ``fname,label,manually_verified[,freesound_id,license]`` and WAVs in ``audio_train/``:
  44.1 kHz, 16-bit, mono.
* TAU Urban Acoustic Scenes 2019 development (backgrounds): TAB-separated ``meta.csv`` with
  columns ``filename,scene_label,identifier,source_label`` and WAVs in ``audio/``: 48 kHz,
  24-bit, 2 channels, 10 s.

Two levels. :func:`list_fsd` / :func:`list_tau` read a listing and return every row together
with a :class:`SourceProblem` per bad row (label, flag, duplicate, a path that would leave the
dataset folder, a listed file that is missing); only an unreadable or missing listing, or wrong
columns, stop them. :func:`audio_problems` turns facts about one WAV (from its header, or from
decoding it: see :mod:`paperlib.data.check`) into problems by the same rules for both datasets.
:func:`read_fsd` / :func:`read_tau` do both and raise one error that lists every problem
found (the first :data:`MAX_LISTED`), naming the file and what was expected.

Paths never leave their dataset folder: an FSD ``fname`` must be a plain file name, a TAU
``filename`` a relative path without ``..``; anything else is a problem of that row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import soundfile as sf

from paperlib.data.audio import CLIP_SECONDS, SILENCE_RMS
from paperlib.data.classes import CLASS_INDEX, SCENES
from paperlib.data.errors import AudioFormatError, DataError, MetadataError, MissingSourceError

FSD_CSV_NAMES: tuple[str, ...] = ("train_post_competition.csv", "train.csv")
"""Metadata files looked for in an FSDKaggle2018 folder, in this order."""
FSD_AUDIO_DIR = "audio_train"
FSD_REQUIRED: tuple[str, ...] = ("fname", "label", "manually_verified")
FSD_OPTIONAL: tuple[str, ...] = ("freesound_id", "license")
FSD_RATE, FSD_CHANNELS = 44_100, 1

TAU_META = "meta.csv"
TAU_COLUMNS: tuple[str, ...] = ("filename", "scene_label", "identifier", "source_label")
TAU_RATE, TAU_CHANNELS = 48_000, 2

FSD, TAU = "FSDKaggle2018", "TAU2019"
"""Dataset names used in problem tables."""
SOURCE_FORMAT_FILE = "source_format.json"
"""A dataset folder made by the project (the pocket corpus) may declare the format of its
audio here (``{"rate": 32000, "channels": 1}``) instead of the real dataset's; see
:func:`source_format`."""


def source_format(dataset: str, root: Path | None = None) -> tuple[int, int]:
    """``(sample rate, channels)`` the files of a dataset folder must have: the real dataset's
    (FSDKaggle2018 44.1 kHz mono, TAU 48 kHz two channels), or what the folder's
    :data:`SOURCE_FORMAT_FILE` declares (the pocket corpus: 32 kHz mono backgrounds, the
    rendering rate, so they are stored no larger than the pipeline uses them).

    Raises:
        MetadataError: a declaration that is not ``{"rate": int > 0, "channels": int > 0}``.
    """
    real = (FSD_RATE, FSD_CHANNELS) if dataset == FSD else (TAU_RATE, TAU_CHANNELS)
    marker = Path(root) / SOURCE_FORMAT_FILE if root is not None else None
    if marker is None or not marker.is_file():
        return real
    try:
        declared = json.loads(marker.read_text())
        rate, channels = int(declared["rate"]), int(declared["channels"])
        if rate <= 0 or channels <= 0:
            raise ValueError("not positive")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MetadataError(
            f'{marker}: expected {{"rate": <Hz>, "channels": <n>}} ({error})'
        ) from error
    return rate, channels


EVENT_USED_S = 2.0
"""Seconds of an event clip the recipe uses (its start; ``paperlib.data.plan.MAX_EVENT_S``)."""
MOSTLY_SILENT_FRACTION = 0.5
"""A clip whose used part has at least this share of silent 50-ms frames is flagged."""
QUIET_FRAME_RMS = 1e-4
"""A 50-ms frame with RMS below this (-80 dBFS) counts as silent."""

MAX_LISTED = 20
"""How many problems an error message lists before summarising the rest."""

METADATA_PROBLEMS: tuple[str, ...] = ("label", "flag", "duplicate", "path")
"""Problem kinds found in a listing's rows (as opposed to its audio files)."""


@dataclass(frozen=True)
class SourceProblem:
    """One problem of one listed source file (or of its metadata row).

    Attributes:
        dataset: ``FSDKaggle2018`` or ``TAU2019``.
        file: the row's name as listed (``fname`` / ``filename``).
        severity: ``error`` (the file cannot be used) or ``warning`` (usable, but suspect).
        problem: the kind: ``label``, ``flag``, ``duplicate``, ``path`` (metadata), ``missing``,
            ``unreadable``, ``truncated``, ``rate``, ``channels``, ``length``, ``nonfinite``,
            ``silent``, ``mostly_silent`` (audio).
        detail: the full message, naming the path or line and what was expected.
    """

    dataset: str
    file: str
    severity: str
    problem: str
    detail: str
    line: int = 0
    """The listing's line for a problem of one row (label, flag, duplicate, path); 0 for a
    problem of the file itself, shared by every row that lists it."""


def _raise_problems(problems: list[str], what: str, error: type[Exception] = DataError) -> None:
    if not problems:
        return
    shown = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise error(f"{what}: {len(problems)} problem(s):\n  {shown}{more}")


def _column_problem(
    frame: pd.DataFrame, path: Path, required: Iterable[str], optional: Iterable[str] = ()
) -> str | None:
    """The listing's column problem (missing or unexpected columns) as one line, or ``None``."""
    required, optional = list(required), list(optional)
    missing = [c for c in required if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in required + optional]
    if not (missing or unexpected):
        return None
    parts = []
    if missing:
        parts.append(f"missing column(s) {missing}")
    if unexpected:
        parts.append(f"unexpected column(s) {unexpected}")
    return f"{path}: {' and '.join(parts)}; expected columns {required}" + (
        f" (optionally also {optional})" if optional else ""
    )


def _raise_columns(columns: str | None, problems: list[SourceProblem]) -> None:
    """Raise :class:`MetadataError` for a listing with a column problem: that line first, then
    every row problem found in the columns present (all in one pass)."""
    if columns is not None:
        raise MetadataError("\n".join([columns, *(f"  {p.detail}" for p in problems)]))


def _read_table(path: Path, sep: str, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise MetadataError(f"{path}: not a readable {what} ({error})") from error


def inside_folder(name: str, *, plain_name: bool = False) -> bool:
    """True when ``name`` (as listed) names a file inside its dataset folder.

    A relative POSIX path without ``..`` components, not empty; with ``plain_name`` a bare file
    name (no folder part). Backslashes are refused too, so a listing means the same everywhere.
    """
    if not name or "\\" in name or "\x00" in name:
        return False
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts or name.startswith("~"):
        return False
    return len(parts) == 1 and parts[0] not in (".",) if plain_name else len(parts) >= 1


def _duplicates(names: pd.Series, dataset: str, column: str) -> list[SourceProblem]:
    first: dict[str, int] = {}
    problems = []
    for row, name in enumerate(names, start=2):
        if name in first:
            problems.append(
                SourceProblem(
                    dataset,
                    name,
                    "error",
                    "duplicate",
                    f"line {row} ({name}): duplicate {column}, first listed on line {first[name]}",
                    row,
                )
            )
        else:
            first[name] = row
    return problems


def _links_outside(
    frame: pd.DataFrame, dataset: str, column: str, folder: Path
) -> list[SourceProblem]:
    """Rows whose file resolves (through symbolic links) outside the dataset ``folder``.

    Such rows are marked unsafe in ``frame`` (so they are never read) and reported as ``path``
    errors. Links that stay inside the folder are fine, and so is a dataset folder that is
    itself a link (both sides are resolved).
    """
    root = Path(folder).resolve()
    safe = list(frame["safe"])
    problems = []
    for i, (name, path, line) in enumerate(
        zip(frame[column], frame["path"], frame["line"], strict=True)
    ):
        if not safe[i]:
            continue
        try:
            target = Path(path).resolve()
        except (OSError, RuntimeError):  # a link loop: the missing-file check reports it
            continue
        if not target.is_relative_to(root):
            safe[i] = False
            problems.append(
                SourceProblem(
                    dataset,
                    name,
                    "error",
                    "path",
                    f"line {line} ({name}): {path} resolves to {target}, outside {root}; "
                    "expected a file inside the dataset folder (links must stay inside it)",
                    int(line),
                )
            )
    frame["safe"] = safe
    return problems


def _missing(frame: pd.DataFrame, dataset: str, column: str, listing: str) -> list[SourceProblem]:
    return [
        SourceProblem(
            dataset, name, "error", "missing", f"{path}: listed in {listing} but not found"
        )
        for name, path, safe in zip(frame[column], frame["path"], frame["safe"], strict=True)
        if safe and not path.is_file()
    ]


def find_fsd_csv(fsd_dir: Path) -> Path:
    """The metadata CSV of an FSDKaggle2018 folder (post-competition file preferred)."""
    fsd_dir = Path(fsd_dir)
    if not fsd_dir.is_dir():
        raise MissingSourceError(f"{fsd_dir}: FSDKaggle2018 folder not found")
    for name in FSD_CSV_NAMES:
        if (fsd_dir / name).is_file():
            return fsd_dir / name
    raise MissingSourceError(
        f"{fsd_dir}: none of {list(FSD_CSV_NAMES)} found (FSDKaggle2018 metadata)"
    )


def list_fsd(fsd_dir: Path) -> tuple[pd.DataFrame, list[SourceProblem]]:
    """Every row of the FSDKaggle2018 listing, and the problems of its rows.

    Returns:
        ``(rows, problems)``: ``rows`` in CSV order with ``fname``, ``label``,
        ``manually_verified`` (int; -1 when not 0/1), ``source`` (``audio_train/<fname>``),
        ``path`` (Path), ``safe`` (the name stays inside the folder) and ``line`` (CSV line);
        ``problems`` one :class:`SourceProblem` per bad row (``label``, ``flag``,
        ``duplicate``, ``path``, ``missing``).

    Raises:
        MissingSourceError: no folder or no metadata CSV.
        MetadataError: an unreadable CSV, or missing or unexpected columns (the message also
            lists every row problem found in the columns present).
    """
    fsd_dir = Path(fsd_dir)
    csv_path = find_fsd_csv(fsd_dir)
    frame = _read_table(csv_path, ",", "CSV file")
    columns = _column_problem(frame, csv_path, FSD_REQUIRED, FSD_OPTIONAL)
    have = set(frame.columns)
    frame = frame.assign(**{c: "" for c in FSD_REQUIRED if c not in have})  # checks skip them
    problems: list[SourceProblem] = []
    for row, (fname, label, verified) in enumerate(
        zip(frame["fname"], frame["label"], frame["manually_verified"], strict=True), start=2
    ):
        if "label" in have and label not in CLASS_INDEX:
            problems.append(
                SourceProblem(
                    FSD,
                    fname,
                    "error",
                    "label",
                    f"line {row} ({fname}): label {label!r} is not one of the 41 classes",
                    row,
                )
            )
        if "manually_verified" in have and verified not in ("0", "1"):
            problems.append(
                SourceProblem(
                    FSD,
                    fname,
                    "error",
                    "flag",
                    f"line {row} ({fname}): manually_verified {verified!r}, expected 0 or 1",
                    row,
                )
            )
        if "fname" in have and not inside_folder(fname, plain_name=True):
            problems.append(
                SourceProblem(
                    FSD,
                    fname,
                    "error",
                    "path",
                    f"line {row} ({fname!r}): fname must be a file name inside "
                    f"{fsd_dir / FSD_AUDIO_DIR}, not a path",
                    row,
                )
            )
    if "fname" in have:
        problems += _duplicates(frame["fname"], FSD, "fname")
    _raise_columns(columns, problems)
    rows = pd.DataFrame(
        {
            "fname": frame["fname"],
            "label": frame["label"],
            "manually_verified": [
                int(v) if v in ("0", "1") else -1 for v in frame["manually_verified"]
            ],
            "source": [f"{FSD_AUDIO_DIR}/{name}" for name in frame["fname"]],
        }
    )
    rows["safe"] = [inside_folder(name, plain_name=True) for name in frame["fname"]]
    rows["path"] = [fsd_dir / source for source in rows["source"]]
    rows["line"] = range(2, len(rows) + 2)
    problems += _links_outside(rows, FSD, "fname", fsd_dir)
    problems += _missing(rows, FSD, "fname", csv_path.name)
    return rows, problems


def list_tau(tau_dir: Path) -> tuple[pd.DataFrame, list[SourceProblem]]:
    """Every row of the TAU 2019 ``meta.csv``, and the problems of its rows.

    Returns:
        ``(rows, problems)``: ``rows`` in file order with :data:`TAU_COLUMNS`, ``path``,
        ``safe`` and ``line``; ``problems`` per bad row (``label``, ``duplicate``, ``path``,
        ``missing``).

    Raises:
        MissingSourceError: no folder or no meta.csv.
        MetadataError: an unreadable file, or missing or unexpected columns (the message also
            lists every row problem found in the columns present).
    """
    tau_dir = Path(tau_dir)
    meta = tau_dir / TAU_META
    if not tau_dir.is_dir():
        raise MissingSourceError(f"{tau_dir}: TAU Urban Acoustic Scenes 2019 folder not found")
    if not meta.is_file():
        raise MissingSourceError(f"{meta}: TAU 2019 metadata not found (TAB-separated meta.csv)")
    frame = _read_table(meta, "\t", "TAB-separated file")
    columns = _column_problem(frame, meta, TAU_COLUMNS)
    have = set(frame.columns)
    frame = frame.assign(**{c: "" for c in TAU_COLUMNS if c not in have})  # checks skip them
    problems: list[SourceProblem] = []
    for row, (name, scene) in enumerate(
        zip(frame["filename"], frame["scene_label"], strict=True), start=2
    ):
        if "scene_label" in have and scene not in SCENES:
            problems.append(
                SourceProblem(
                    TAU,
                    name,
                    "error",
                    "label",
                    f"line {row} ({name}): scene_label {scene!r} is not one of {list(SCENES)}",
                    row,
                )
            )
        if "filename" in have and not inside_folder(name):
            problems.append(
                SourceProblem(
                    TAU,
                    name,
                    "error",
                    "path",
                    f"line {row} ({name!r}): filename must be a relative path inside {tau_dir} "
                    "(no absolute path, no '..')",
                    row,
                )
            )
    if "filename" in have:
        problems += _duplicates(frame["filename"], TAU, "filename")
    _raise_columns(columns, problems)
    rows = frame[list(TAU_COLUMNS)].copy()
    rows["safe"] = [inside_folder(name) for name in rows["filename"]]
    rows["path"] = [tau_dir / name for name in rows["filename"]]
    rows["line"] = range(2, len(rows) + 2)
    problems += _links_outside(rows, TAU, "filename", tau_dir)
    problems += _missing(rows, TAU, "filename", TAU_META)
    return rows, problems


def header_facts(path: Path) -> dict[str, Any]:
    """``{"rate", "channels", "frames"}`` from a WAV header, or ``{"error": text}``."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as error:
        return {"error": str(error)}
    return {
        "rate": int(info.samplerate),
        "channels": int(info.channels),
        "frames": int(info.frames),
    }


def audio_problems(
    dataset: str,
    name: str,
    path: Path,
    facts: Mapping[str, Any],
    expected: tuple[int, int] | None = None,
) -> list[SourceProblem]:
    """The problems of one WAV of ``dataset`` given facts about it.

    ``facts`` come from :func:`header_facts` (``rate``, ``channels``, ``frames``) or from a full
    decode (:func:`paperlib.data.check.scan_audio`, which adds ``nonfinite``, ``rms_used`` and
    ``silent_fraction``); rules whose facts are absent are skipped. The expectations:
    FSDKaggle2018 44.1 kHz mono; TAU 48 kHz two channels and at least 10 s; finite samples; the
    part the recipe uses (an event's first 2 s, a background's first 10 s) not silent (RMS >=
    ``SILENCE_RMS``; an error) and not mostly silent (a warning).
    """

    def problem(kind: str, text: str, severity: str = "error") -> SourceProblem:
        return SourceProblem(dataset, name, severity, kind, f"{path}: {text}")

    if "error" in facts:
        return [problem("unreadable", f"not a readable WAV file ({facts['error']})")]
    if "data_declared" in facts:
        return [
            problem(
                "truncated",
                f"truncated: its header declares {facts['data_declared']:,} bytes of audio, the "
                f"file holds {facts['data_present']:,}; expected a complete WAV (copy or "
                "download it again)",
            )
        ]
    rate, channels = expected or source_format(dataset)
    out = []
    if facts["rate"] != rate:
        out.append(problem("rate", f"sample rate {facts['rate']} Hz, expected {rate} Hz"))
    if facts["channels"] != channels:
        out.append(problem("channels", f"{facts['channels']} channel(s), expected {channels}"))
    if facts["frames"] <= 0:
        return [*out, problem("length", "contains no samples, expected audio")]
    seconds = facts["frames"] / facts["rate"]
    if dataset == TAU and seconds < CLIP_SECONDS:
        out.append(
            problem(
                "length",
                f"background is {seconds:.3f} s long, expected at least {CLIP_SECONDS:g} s",
            )
        )
    if facts.get("nonfinite", 0):
        out.append(
            problem(
                "nonfinite",
                f"{facts['nonfinite']} NaN or infinite sample(s), expected finite audio",
            )
        )
        return out  # levels of a signal with NaNs mean nothing
    used = f"first {min(seconds, EVENT_USED_S if dataset == FSD else CLIP_SECONDS):.3g} s"
    if "rms_used" in facts and facts["rms_used"] < SILENCE_RMS:
        out.append(
            problem(
                "silent",
                f"the {used} (the part mixtures use) is silent (RMS "
                f"{facts['rms_used']:.2e}); expected RMS >= {SILENCE_RMS:g}",
            )
        )
    elif facts.get("silent_fraction", 0.0) >= MOSTLY_SILENT_FRACTION:
        out.append(
            problem(
                "mostly_silent",
                f"mostly silent: {100 * facts['silent_fraction']:.0f} % of the 50-ms frames of the "
                f"{used} are below -80 dBFS",
                "warning",
            )
        )
    return out


def problem_table(problems: Iterable[SourceProblem]) -> pd.DataFrame:
    """Problems as a table: ``dataset, file, severity, problem, detail, line`` (errors first)."""
    table = pd.DataFrame(
        [p.__dict__ for p in problems],
        columns=["dataset", "file", "severity", "problem", "detail", "line"],
    )
    order = table["severity"].map({"error": 0, "warning": 1})
    return (
        table.assign(_o=order)
        .sort_values(["_o", "dataset", "file"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def _raise_listing(problems: list[SourceProblem], csv_path: Path, folder: Path) -> None:
    """Raise the listing's row problems the readers' way: metadata first, then missing files."""
    meta = [p.detail for p in problems if p.problem in METADATA_PROBLEMS]
    _raise_problems(meta, str(csv_path), MetadataError)
    _raise_problems(
        [p.detail for p in problems if p.problem == "missing"], str(folder), MissingSourceError
    )


def read_fsd(fsd_dir: Path, *, check_audio: bool = True) -> pd.DataFrame:
    """Read and validate FSDKaggle2018 training metadata.

    Returns:
        One row per CSV row, in CSV order: ``fname`` (str), ``label`` (str, one of the 41
        classes), ``manually_verified`` (int 0/1), ``path`` (absolute Path), ``source`` (path
        relative to ``fsd_dir``, as written in the plan) and ``duration_s`` (float, from the
        WAV header; NaN when ``check_audio`` is False).

    Raises:
        MissingSourceError: no folder / CSV, or listed WAVs missing.
        MetadataError: missing or unexpected columns, labels outside the 41 classes,
            ``manually_verified`` not 0/1, duplicate file names, names that are paths.
        AudioFormatError: unreadable WAVs or ones not 44.1 kHz mono.
    """
    fsd_dir = Path(fsd_dir)
    rows, problems = list_fsd(fsd_dir)
    _raise_listing(problems, find_fsd_csv(fsd_dir), fsd_dir)
    out = rows[["fname", "label", "manually_verified", "source", "path"]].copy()
    out["duration_s"] = float("nan")
    if check_audio:
        facts = [header_facts(path) for path in out["path"]]
        rate, channels = expected = source_format(FSD, fsd_dir)
        details = [
            p.detail
            for name, path, f in zip(out["fname"], out["path"], facts, strict=True)
            for p in audio_problems(FSD, name, path, f, expected)
        ]
        _raise_problems(
            details, f"{fsd_dir} (expected {rate} Hz {channels}-channel audio)", AudioFormatError
        )
        out["duration_s"] = [f["frames"] / f["rate"] for f in facts]
    return out


def read_tau(tau_dir: Path, *, check_audio: bool = True) -> pd.DataFrame:
    """Read and validate TAU Urban Acoustic Scenes 2019 development metadata.

    Returns:
        One row per ``meta.csv`` row, in file order: ``filename`` (relative path, as in the
        plan), ``scene_label``, ``identifier``, ``source_label``, ``path`` (absolute Path).

    Raises:
        MissingSourceError: no folder / meta.csv, or listed WAVs missing.
        MetadataError: missing or unexpected columns, scene labels outside the 10 scenes,
            duplicates, file names outside the folder.
        AudioFormatError: unreadable WAVs, ones not 48 kHz 2-channel, or shorter than 10 s.
    """
    tau_dir = Path(tau_dir)
    rows, problems = list_tau(tau_dir)
    _raise_listing(problems, tau_dir / TAU_META, tau_dir)
    out = rows[[*TAU_COLUMNS, "path"]].copy()
    if check_audio:
        rate, channels = expected = source_format(TAU, tau_dir)
        details = [
            p.detail
            for name, path in zip(out["filename"], out["path"], strict=True)
            for p in audio_problems(TAU, name, path, header_facts(path), expected)
        ]
        _raise_problems(
            details,
            f"{tau_dir} (expected {rate} Hz {channels}-channel audio of >= 10 s)",
            AudioFormatError,
        )
    return out
