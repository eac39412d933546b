"""Bad input caught before any chapter runs: profile, parameters, DCASE data and GPU.

Every check raises with a message that lists the valid values or says exactly what to do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paperlib import atomic, paths
from paperlib.book.errors import BookError, DataMissingError, GPURequiredError
from paperlib.config import (
    ConfigError,
    Profile,
    load_profile,
    parse_assignment,
    profile_with_overrides,
)
from paperlib.download.catalog import FSD, TAU
from paperlib.experiment.cells import grid_cells

RESERVED_PARAMETERS: tuple[str, ...] = ("profile",)
"""Notebook parameters the runner sets itself (``--profile``), never through ``--set``."""

FLOP_PER_CLIP_STEP: float = 210e9
"""Training cost of one clip (forward + backward) of the full-size 2APAE (REFERENCE_FACTS)."""

FSD_DOI = f"10.5281/zenodo.{FSD.record_id}"
TAU_DOI = f"10.5281/zenodo.{TAU.record_id}"
# What each dataset folder must hold is the download catalog's (FSD.required, TAU.required).


@dataclass(frozen=True)
class Settings:
    """Everything the runner needs to know about one invocation, validated.

    Attributes:
        profile: the effective profile (overrides applied).
        profile_parameter: what chapters receive as ``profile`` (a name or a YAML path).
        parameters: extra notebook parameters from ``--set name=value``.
    """

    profile: Profile
    profile_parameter: str
    parameters: dict[str, Any]


def parse_assignments(assignments: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``--set`` items into (notebook parameters, dotted profile overrides).

    ``name=value`` sets a notebook parameter; ``section.key=value`` (e.g. ``train.epochs=2``)
    overrides a profile field. Values are YAML literals (``2``, ``0.5``, ``[0, 20]``, ``text``).

    Raises:
        BookError: an item without ``=`` or with an empty name.
    """
    parameters: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for item in assignments:
        try:
            name, value = parse_assignment(item)
        except ConfigError as error:
            raise BookError(str(error)) from error
        (overrides if "." in name else parameters)[name] = value
    return parameters, overrides


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters cell of ``notebook`` as ``{name: papermill Parameter}`` (may be empty)."""
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def check_parameters(parameters: Mapping[str, Any], notebooks: Sequence[Path]) -> None:
    """Every name in ``parameters`` must be declared by at least one chapter's parameters cell.

    Raises:
        BookError: a reserved or unknown name (the message lists the valid ones per chapter).
    """
    for name in parameters:
        if name in RESERVED_PARAMETERS:
            raise BookError(f"parameter {name!r} is set by the runner; use --{name} instead")
    declared = {nb.stem: notebook_parameters(nb) for nb in notebooks}
    known = set().union(*[set(p) for p in declared.values()]) if declared else set()
    unknown = sorted(set(parameters) - known)
    if unknown:
        listing = "; ".join(
            f"{chapter}: {', '.join(p) or '(none)'}" for chapter, p in declared.items()
        )
        raise BookError(
            f"unknown parameter(s) {', '.join(unknown)}; valid parameters by chapter: {listing} "
            "(profile fields are set as section.key=value, e.g. train.epochs=2)"
        )


def resolve_settings(
    profile: str, assignments: Sequence[str], notebooks: Sequence[Path], *, build_dir: Path
) -> Settings:
    """Validate ``--profile`` and ``--set`` and decide what the chapters receive.

    With profile overrides the effective profile is written to ``build_dir/profile.yaml`` and
    its path is what chapters receive, so a chapter run alone with that path sees the same.

    Raises:
        ConfigError: an unknown profile (valid ones listed) or profile override.
        BookError: an unknown notebook parameter (valid ones listed).
    """
    base = load_profile(profile)
    parameters, overrides = parse_assignments(assignments)
    check_parameters(parameters, notebooks)
    if not overrides:
        return Settings(base, str(profile), parameters)
    effective = profile_with_overrides(base, overrides)
    from paperlib.config import to_dict

    target = build_dir / "profile.yaml"
    atomic.write_text(target, yaml.safe_dump(to_dict(effective), sort_keys=False))
    return Settings(effective, str(target.resolve()), parameters)


def _missing(folder: Path, required: Sequence[str]) -> list[str]:
    return [name for name in required if not (folder / name).exists()]


def check_dcase_data(profile: Profile) -> None:
    """A ``dcase`` profile needs both datasets (unless its features are already computed).

    Raises:
        DataMissingError: says which DOI to download, the download command and where to put
            each dataset (the default folders or ``data.fsd_dir`` / ``data.tau_dir``).
    """
    if profile.data.source != "dcase":
        return
    ws = paths.workspace_dir(profile.name)
    if all(paths.feature_file(ws, snr).is_file() for snr in profile.data.snrs):
        return  # features exist: the chapters never read the audio again
    fsd = Path(profile.data.fsd_dir).expanduser() if profile.data.fsd_dir else paths.fsd_dir(ws)
    tau = Path(profile.data.tau_dir).expanduser() if profile.data.tau_dir else paths.tau_dir(ws)
    problems = [
        f"  - {folder}: missing {', '.join(missing)}"
        for folder, missing in (
            (fsd, _missing(fsd, FSD.required)),
            (tau, _missing(tau, TAU.required)),
        )
        if missing
    ]
    if not problems:
        return
    raise DataMissingError(
        f"profile {profile.name!r} uses the real DCASE data, which is not there:\n"
        + "\n".join(problems)
        + "\nDownload (about 40 GB) both datasets:\n"
        f"  1. FSDKaggle2018 = DCASE 2018 Task 2, https://doi.org/{FSD_DOI}: "
        "FSDKaggle2018.audio_train.zip and FSDKaggle2018.meta.zip, unzipped so that the folder "
        "holds train_post_competition.csv and audio_train/*.wav;\n"
        f"  2. TAU Urban Acoustic Scenes 2019 development = DCASE 2019 Task 1a, "
        f"https://doi.org/{TAU_DOI}: the meta zip and audio.1-21 zips, unzipped so that the "
        "folder holds meta.csv and audio/*.wav.\n"
        "`python -m paperlib download --dest DIR` fetches and unpacks both. Then either put "
        f"them at {fsd} and {tau}, or point the profile at them: "
        "--set data.fsd_dir=DIR/FSDKaggle2018 --set data.tau_dir=DIR/TAU2019 "
        "(or data.fsd_dir / data.tau_dir in a copy of the profile YAML)."
    )


def grid_run_count(profile: Profile) -> int:
    """Number of training runs of the profile's grid: its cells
    (:func:`paperlib.experiment.cells.grid_cells`: Table IV, the ablation and the repeats)."""
    return len(grid_cells(profile))


def measure_cpu_flops(seconds: float = 0.3) -> float:
    """Dense float32 matrix-multiply throughput of this CPU in FLOP/s (an optimistic peak)."""
    import torch

    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start)


def budget_epochs(profile: Profile) -> int:
    """Epochs a run of ``profile`` trains: ``train.epochs``, or ``train.steps`` in whole epochs
    of the training split (three folds of ``mixtures_per_fold`` clips)."""
    clips = 3 * profile.data.mixtures_per_fold
    return profile.train.epochs_for(math.ceil(clips / profile.train.batch_size))


def estimate_cpu_seconds(profile: Profile, flops_per_second: float) -> float:
    """Lower-bound CPU time of the profile's grid: FLOP per clip step x clips x epochs x cells.

    Uses 210 GFLOP per training clip at width 1 (scaled by width squared), three training folds
    of ``mixtures_per_fold`` clips, the epochs of the training budget (:func:`budget_epochs`)
    and :func:`grid_run_count` runs.
    """
    clips = 3 * profile.data.mixtures_per_fold
    flop = FLOP_PER_CLIP_STEP * profile.model.width**2 * clips * budget_epochs(profile)
    return flop * grid_run_count(profile) / flops_per_second


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


def check_gpu(profile: Profile, *, allow_cpu: bool, flops_per_second: float | None = None) -> str:
    """A ``requires_gpu`` profile on a machine without CUDA needs ``--allow-cpu``.

    Returns:
        A warning to print ("" when there is nothing to say).

    Raises:
        GPURequiredError: no GPU and no ``allow_cpu``; the message estimates the CPU time.
    """
    if not profile.requires_gpu or cuda_available():
        return ""
    rate = flops_per_second or measure_cpu_flops()
    seconds = estimate_cpu_seconds(profile, rate)
    clips = 3 * profile.data.mixtures_per_fold
    text = (
        f"profile {profile.name!r} is a GPU workload and torch sees no CUDA GPU. Estimated CPU "
        f"time: at least {seconds / 86400:,.0f} days ({FLOP_PER_CLIP_STEP / 1e9:.0f} GFLOP per "
        f"training clip x {clips:,} clips x {budget_epochs(profile)} epochs x {grid_run_count(profile)} "
        f"training runs at this CPU's measured {rate / 1e9:.0f} GFLOP/s matrix-multiply peak)."
    )
    if not allow_cpu:
        raise GPURequiredError(
            text + " Run on a CUDA machine, use --profile pocket, or pass --allow-cpu to go on."
        )
    return "warning: " + text + " Going on because of --allow-cpu."
