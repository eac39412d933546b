"""Where everything lives: the workspace of a profile and the file names inside it.

Layout of ``workspace/<profile>/`` (override the root with ``PAPERLIB_WORKSPACE``)::

    data/sources/FSDKaggle2018/   train_post_competition.csv + audio_train/   (pocket: generated)
    data/sources/TAU2019/         meta.csv + audio/                          (pocket: generated)
    data/manifest.json            stage keys, the data's origin, the files left out and why
    data/check.csv                the problem table of the last source check
    data/plan.csv                 the mixture plan shared by every SNR
    data/mixtures/snr{S}db/       mixture, event-track and background-track WAVs
    data/features/snr{S}db.h5     log-mel features, targets and standardisation statistics
    runs/<model>-<hash>/          one training run (config, log, checkpoints, metrics)
    results/                      the grid's tidy results tables
    .locks/                       inter-process locks (paperlib.locking)

Paths never depend on the current working directory: chapters run from ``chapters/`` and the
command line from anywhere resolve the same folders.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKSPACE_ENV = "PAPERLIB_WORKSPACE"


def project_root() -> Path:
    """The repository root when paperlib is used from a checkout, else the current directory."""
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return Path.cwd()


def workspace_root() -> Path:
    """Root of all workspaces: ``$PAPERLIB_WORKSPACE`` or ``<project root>/workspace``."""
    env = os.environ.get(WORKSPACE_ENV)
    return Path(env).expanduser().resolve() if env else project_root() / "workspace"


def workspace_dir(profile_name: str) -> Path:
    """Folder holding the data, runs and results of one profile (always inside the root).

    Raises:
        ValueError: a name that is not a plain folder name (see
            :func:`paperlib.config.check_profile_name`).
    """
    from paperlib.config import check_profile_name

    check_profile_name(profile_name)
    return workspace_root() / profile_name


def data_dir(workspace: Path) -> Path:
    return workspace / "data"


def fsd_dir(workspace: Path) -> Path:
    """Default FSDKaggle2018 folder (the pocket corpus writes its events here)."""
    return data_dir(workspace) / "sources" / "FSDKaggle2018"


def tau_dir(workspace: Path) -> Path:
    """Default TAU Urban Acoustic Scenes 2019 development folder (pocket backgrounds too)."""
    return data_dir(workspace) / "sources" / "TAU2019"


def plan_file(workspace: Path) -> Path:
    return data_dir(workspace) / "plan.csv"


def snr_tag(snr_db: int) -> str:
    """``snr20db``, ``snr0db``, ``snr-5db``: the tag used in folder and file names."""
    return f"snr{int(snr_db)}db"


def mixtures_dir(workspace: Path, snr_db: int) -> Path:
    return data_dir(workspace) / "mixtures" / snr_tag(snr_db)


def feature_file(workspace: Path, snr_db: int) -> Path:
    return data_dir(workspace) / "features" / f"{snr_tag(snr_db)}.h5"


def runs_dir(workspace: Path) -> Path:
    return workspace / "runs"


def results_dir(workspace: Path) -> Path:
    return workspace / "results"
