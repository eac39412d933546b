"""Where everything lives: the workspace of a profile and the file names inside it.

Layout of ``workspace/<profile>/`` (override the root with ``PAPERLIB_WORKSPACE``)::

    data/sources/FSDKaggle2018/   train_post_competition.csv + audio_train/   (pocket: generated)
    data/sources/TAU2019/         meta.csv + audio/                          (pocket: generated)
    data/manifest.json            stage keys, the data's origin, the files left out and why
    data/check.csv                the problem table of the last source check
    data/plan.csv                 the mixture plan shared by every SNR (fixed onsets, the paper's)
    data/mixtures/tracks/         each mixture's event track (16-bit FLAC, for every SNR)
    data/mixtures/backgrounds/    the background tracks (16-bit FLAC), shared by the onset recipes
    data/mixtures/snr{S}db/       the SNR's stamp (render.json); render.read_tracks gives its audio
    data/features/snr{S}db.h5     log-mel features, targets and standardisation statistics
    data/plan_random.csv, data/mixtures/random/snr{S}db/, data/features/random/snr{S}db.h5
                                  the same for the random-onset recipe (``data.onsets: random``)
    runs/<model>-<hash>/          one training run (config, log, checkpoints, metrics)
    results/                      the grid's tidy results tables
    .locks/                       inter-process locks (paperlib.locking)

Paths never depend on the current working directory: chapters run from ``chapters/`` and the
command line from anywhere resolve the same folders.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

WORKSPACE_ENV = "PAPERLIB_WORKSPACE"
ONSET_RECIPES: tuple[str, ...] = ("fixed", "random")
"""Where a plan puts its events (``data.onsets``): ``fixed`` = the paper's three slots at 0.5,
3.0 and 5.5 s; ``random`` = uniform onsets that keep the events inside the clip and apart
(:mod:`paperlib.data.plan`). ``fixed`` keeps the workspace's original file names."""


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


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def is_plain_name(name: object) -> bool:
    """Whether ``name`` can name a folder under the workspace root: letters, digits, ``_``,
    ``.`` and ``-``, no leading dot, no ``..``, no path separator."""
    return isinstance(name, str) and bool(_PLAIN_NAME.fullmatch(name)) and ".." not in name


def workspace_dir(profile_name: str) -> Path:
    """Folder holding the data, runs and results of one profile (always inside the root).

    Raises:
        ValueError: a name that is not a plain folder name (:func:`is_plain_name`; profiles
            are checked when they are built, :func:`paperlib.config.check_profile_name`).
    """
    if not is_plain_name(profile_name):
        raise ValueError(
            f"profile name {profile_name!r} is not a plain name (letters, digits, '_', '.', '-'; "
            "no path separators, no '..'): it names the workspace folder under PAPERLIB_WORKSPACE"
        )
    return workspace_root() / profile_name


def data_dir(workspace: Path) -> Path:
    return workspace / "data"


def fsd_dir(workspace: Path) -> Path:
    """Default FSDKaggle2018 folder (the pocket corpus writes its events here)."""
    return data_dir(workspace) / "sources" / "FSDKaggle2018"


def tau_dir(workspace: Path) -> Path:
    """Default TAU Urban Acoustic Scenes 2019 development folder (pocket backgrounds too)."""
    return data_dir(workspace) / "sources" / "TAU2019"


def check_onsets(onsets: str) -> str:
    """``onsets`` if it is one of :data:`ONSET_RECIPES`, else a ``ValueError`` naming them."""
    if onsets not in ONSET_RECIPES:
        raise ValueError(f"onsets={onsets!r}: expected one of {list(ONSET_RECIPES)}")
    return onsets


def plan_file(workspace: Path, onsets: str = "fixed") -> Path:
    """``data/plan.csv`` (fixed onsets) or ``data/plan_<onsets>.csv``."""
    name = "plan.csv" if check_onsets(onsets) == "fixed" else f"plan_{onsets}.csv"
    return data_dir(workspace) / name


def _recipe_dir(folder: Path, onsets: str) -> Path:
    return folder if check_onsets(onsets) == "fixed" else folder / onsets


def snr_tag(snr_db: int) -> str:
    """``snr20db``, ``snr0db``, ``snr-5db``: the tag used in folder and file names."""
    return f"snr{int(snr_db)}db"


def mixtures_dir(workspace: Path, snr_db: int, onsets: str = "fixed") -> Path:
    """``data/mixtures/snr{S}db`` (fixed onsets) or ``data/mixtures/<onsets>/snr{S}db``."""
    return _recipe_dir(data_dir(workspace) / "mixtures", onsets) / snr_tag(snr_db)


def feature_file(workspace: Path, snr_db: int, onsets: str = "fixed") -> Path:
    """``data/features/snr{S}db.h5`` (fixed onsets) or ``data/features/<onsets>/snr{S}db.h5``."""
    return _recipe_dir(data_dir(workspace) / "features", onsets) / f"{snr_tag(snr_db)}.h5"


def runs_dir(workspace: Path) -> Path:
    return workspace / "runs"


def results_dir(workspace: Path) -> Path:
    return workspace / "results"
