"""Readers of the two source datasets in their published layouts, with validation.

* FSDKaggle2018 (events): ``train_post_competition.csv`` (or ``train.csv``) with columns
  ``fname,label,manually_verified[,freesound_id,license]`` and WAVs in ``audio_train/``:
  44.1 kHz, 16-bit, mono.
* TAU Urban Acoustic Scenes 2019 development (backgrounds): TAB-separated ``meta.csv`` with
  columns ``filename,scene_label,identifier,source_label`` and WAVs in ``audio/``: 48 kHz,
  24-bit, 2 channels, 10 s.

The readers check every row (columns, labels, file presence, WAV header: rate, channels, length)
and raise one error that lists every problem found (the first :data:`MAX_LISTED` of them),
naming the file and what was expected. Decoding the audio itself (to find silent clips) is
left to the renderer, which has to decode anyway and checks the exact samples it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from paperlib.data.audio import CLIP_SECONDS, wav_info
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

MAX_LISTED = 20
"""How many problems an error message lists before summarising the rest."""


def _raise_problems(problems: list[str], what: str, error: type[Exception] = DataError) -> None:
    if not problems:
        return
    shown = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise error(f"{what}: {len(problems)} problem(s):\n  {shown}{more}")


def _require_listed_files(paths: Iterable[Path], *, listing: str, folder: Path) -> None:
    """Raise :class:`MissingSourceError` naming every path of ``listing`` that is not a file."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        _raise_problems(
            [f"{p}: listed in {listing} but not found" for p in missing],
            f"{folder}",
            MissingSourceError,
        )


def _check_columns(
    frame: pd.DataFrame, path: Path, required: Iterable[str], optional: Iterable[str] = ()
) -> None:
    required, optional = list(required), list(optional)
    missing = [c for c in required if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in required + optional]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if unexpected:
            parts.append(f"unexpected column(s) {unexpected}")
        raise MetadataError(
            f"{path}: {' and '.join(parts)}; expected columns {required}"
            + (f" (optionally also {optional})" if optional else "")
        )


def _check_audio(paths: Iterable[Path], check: Callable[[Path], object]) -> list[str]:
    problems = []
    for path in paths:
        try:
            check(path)
        except (AudioFormatError, MissingSourceError) as error:
            problems.append(str(error))
    return problems


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
            ``manually_verified`` not 0/1, duplicate file names.
        AudioFormatError: unreadable WAVs or ones not 44.1 kHz mono.
    """
    fsd_dir = Path(fsd_dir)
    csv_path = find_fsd_csv(fsd_dir)
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise MetadataError(f"{csv_path}: not a readable CSV file ({error})") from error
    _check_columns(frame, csv_path, FSD_REQUIRED, FSD_OPTIONAL)
    problems = []
    for row, (fname, label, verified) in enumerate(
        zip(frame["fname"], frame["label"], frame["manually_verified"], strict=True), start=2
    ):
        if label not in CLASS_INDEX:
            problems.append(f"line {row} ({fname}): label {label!r} is not one of the 41 classes")
        if verified not in ("0", "1"):
            problems.append(
                f"line {row} ({fname}): manually_verified {verified!r}, expected 0 or 1"
            )
    duplicated = frame["fname"][frame["fname"].duplicated()].tolist()
    if duplicated:
        problems.append(f"duplicate fname(s) {duplicated[:5]}")
    _raise_problems(problems, str(csv_path), MetadataError)

    out = pd.DataFrame(
        {
            "fname": frame["fname"],
            "label": frame["label"],
            "manually_verified": frame["manually_verified"].astype(int),
            "source": [f"{FSD_AUDIO_DIR}/{name}" for name in frame["fname"]],
        }
    )
    out["path"] = [fsd_dir / source for source in out["source"]]
    out["duration_s"] = float("nan")
    _require_listed_files(out["path"], listing=csv_path.name, folder=fsd_dir)
    if check_audio:
        durations: list[float] = []
        problems = []
        for path in out["path"]:
            try:
                info = wav_info(path, expected_rate=FSD_RATE, expected_channels=FSD_CHANNELS)
                durations.append(info.frames / info.samplerate)
            except AudioFormatError as error:
                problems.append(str(error))
                durations.append(float("nan"))
        _raise_problems(problems, f"{fsd_dir} (expected {FSD_RATE} Hz mono WAVs)", AudioFormatError)
        out["duration_s"] = durations
    return out


def read_tau(tau_dir: Path, *, check_audio: bool = True) -> pd.DataFrame:
    """Read and validate TAU Urban Acoustic Scenes 2019 development metadata.

    Returns:
        One row per ``meta.csv`` row, in file order: ``filename`` (relative path, as in the
        plan), ``scene_label``, ``identifier``, ``source_label``, ``path`` (absolute Path).

    Raises:
        MissingSourceError: no folder / meta.csv, or listed WAVs missing.
        MetadataError: missing or unexpected columns, scene labels outside the 10 scenes.
        AudioFormatError: unreadable WAVs, ones not 48 kHz 2-channel, or shorter than 10 s.
    """
    tau_dir = Path(tau_dir)
    meta = tau_dir / TAU_META
    if not tau_dir.is_dir():
        raise MissingSourceError(f"{tau_dir}: TAU Urban Acoustic Scenes 2019 folder not found")
    if not meta.is_file():
        raise MissingSourceError(f"{meta}: TAU 2019 metadata not found (TAB-separated meta.csv)")
    try:
        frame = pd.read_csv(meta, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise MetadataError(f"{meta}: not a readable TAB-separated file ({error})") from error
    _check_columns(frame, meta, TAU_COLUMNS)
    problems = [
        f"line {row} ({name}): scene_label {scene!r} is not one of {list(SCENES)}"
        for row, (name, scene) in enumerate(
            zip(frame["filename"], frame["scene_label"], strict=True), start=2
        )
        if scene not in SCENES
    ]
    duplicated = frame["filename"][frame["filename"].duplicated()].tolist()
    if duplicated:
        problems.append(f"duplicate filename(s) {duplicated[:5]}")
    _raise_problems(problems, str(meta), MetadataError)
    out = frame[list(TAU_COLUMNS)].copy()
    out["path"] = [tau_dir / name for name in out["filename"]]
    _require_listed_files(out["path"], listing=TAU_META, folder=tau_dir)
    if check_audio:

        def check(path: Path) -> None:
            info = wav_info(path, expected_rate=TAU_RATE, expected_channels=TAU_CHANNELS)
            if info.frames < CLIP_SECONDS * info.samplerate:
                raise AudioFormatError(
                    f"{path}: background is {info.frames / info.samplerate:.3f} s long, "
                    f"expected at least {CLIP_SECONDS:g} s"
                )

        _raise_problems(
            _check_audio(out["path"], check),
            f"{tau_dir} (expected {TAU_RATE} Hz 2-channel WAVs of >= 10 s)",
            AudioFormatError,
        )
    return out
