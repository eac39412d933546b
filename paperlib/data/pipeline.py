"""The whole data pipeline, cached stage by stage: pocket corpus -> plan -> render -> features.

:func:`prepare_data` runs only what is missing or out of date. A small manifest
(``<data dir>/manifest.json``) records, per stage, a hash of everything the stage's output
depends on (configuration, input file hashes, code version). A stage is skipped when its hash
is unchanged and its outputs are in place, and redone when either is not; so a second call with
unchanged inputs costs a few file checks (well under a second).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperlib import paths
from paperlib.config import Profile, config_hash
from paperlib.data import features as feat
from paperlib.data import render
from paperlib.data.audio import ensure_writable_dir
from paperlib.data.plan import make_plan, plan_sha256, write_plan
from paperlib.data.pocket import write_pocket_corpus
from paperlib.data.sources import TAU_META, find_fsd_csv, read_fsd, read_tau

MANIFEST_NAME = "manifest.json"
POCKET_VERSION = 1
"""Bumped whenever the pocket synthesis changes (invalidates the corpus and what follows)."""
PLAN_VERSION = 1
FEATURE_VERSION = 1
STAGES: tuple[str, ...] = ("pocket", "plan", "render", "features")


@dataclass(frozen=True)
class DataProducts:
    """Where the data of a profile lies once :func:`prepare_data` has run."""

    workspace: Path
    fsd_dir: Path
    tau_dir: Path
    plan_path: Path
    mixture_dirs: dict[int, Path] = field(default_factory=dict)
    """snr_db -> folder of ``<name>.wav``, ``<name>.events.wav``, ``<name>.background.wav``."""
    feature_files: dict[int, Path] = field(default_factory=dict)
    """snr_db -> HDF5 feature file."""
    ran: tuple[str, ...] = ()
    """Stages (e.g. ``render/snr20db``) that ran in this call; empty when all were cached."""


def source_dirs(profile: Profile, workspace: Path) -> tuple[Path, Path]:
    """(FSDKaggle2018 folder, TAU 2019 folder) for a profile.

    ``pocket`` always uses the workspace folders; ``dcase`` uses ``data.fsd_dir`` /
    ``data.tau_dir`` when set (``~`` expanded), else the same workspace folders.
    """
    data = profile.data
    if data.source not in ("pocket", "dcase"):
        raise ValueError(f"data.source={data.source!r}: expected 'pocket' or 'dcase'")
    if data.source == "pocket":
        return paths.fsd_dir(workspace), paths.tau_dir(workspace)
    fsd = Path(data.fsd_dir).expanduser() if data.fsd_dir else paths.fsd_dir(workspace)
    tau = Path(data.tau_dir).expanduser() if data.tau_dir else paths.tau_dir(workspace)
    return fsd, tau


def manifest_path(workspace: Path) -> Path:
    return paths.data_dir(workspace) / MANIFEST_NAME


def _load_manifest(workspace: Path) -> dict[str, Any]:
    try:
        return json.loads(manifest_path(workspace).read_text())
    except (OSError, ValueError):
        return {}


def _record(workspace: Path, stage: str, key: str) -> None:
    manifest = _load_manifest(workspace)
    manifest[stage] = key
    target = manifest_path(workspace)
    tmp = target.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, target)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Stages:
    """Stage keys, up-to-date checks and runners for one profile and workspace."""

    def __init__(self, profile: Profile, workspace: Path, progress: bool):
        self.profile, self.ws, self.progress = profile, Path(workspace), progress
        self.fsd, self.tau = source_dirs(profile, self.ws)
        self.plan_path = paths.plan_file(self.ws)
        self.manifest = _load_manifest(self.ws)
        self.ran: list[str] = []

    def _fresh(self, stage: str, key: str, outputs_ok: bool) -> bool:
        return self.manifest.get(stage) == key and outputs_ok

    def _done(self, stage: str, key: str) -> None:
        _record(self.ws, stage, key)
        self.manifest[stage] = key
        self.ran.append(stage)

    def pocket_key(self) -> str:
        d = self.profile.data
        return config_hash(
            {
                "events_per_class": d.pocket_events_per_class,
                "seed": d.seed,
                "backgrounds": d.pocket_backgrounds,
                "version": POCKET_VERSION,
            }
        )

    def pocket(self, force: bool = False) -> None:
        if self.profile.data.source != "pocket":
            return
        key = self.pocket_key()
        ok = (self.fsd / "train_post_competition.csv").is_file() and (self.tau / TAU_META).is_file()
        if force or not self._fresh("pocket", key, ok):
            d = self.profile.data
            write_pocket_corpus(
                self.fsd,
                self.tau,
                events_per_class=d.pocket_events_per_class,
                backgrounds=d.pocket_backgrounds,
                seed=d.seed,
                workers=d.workers,
                progress=self.progress,
            )
            self._done("pocket", key)

    def plan_key(self) -> str:
        d = self.profile.data
        return config_hash(
            {
                "fsd_csv": _file_sha(find_fsd_csv(self.fsd)),
                "tau_meta": _file_sha(self.tau / TAU_META),
                "pocket": self.pocket_key() if d.source == "pocket" else None,
                "mixtures_per_fold": d.mixtures_per_fold,
                "seed": d.seed,
                "version": PLAN_VERSION,
            }
        )

    def plan(self, force: bool = False) -> None:
        key = self.plan_key()
        if force or not self._fresh("plan", key, self.plan_path.is_file()):
            ensure_writable_dir(self.plan_path.parent)
            plan = make_plan(
                read_fsd(self.fsd),
                read_tau(self.tau),
                mixtures_per_fold=self.profile.data.mixtures_per_fold,
                seed=self.profile.data.seed,
            )
            write_plan(plan, self.plan_path)
            self._done("plan", key)

    def render_key(self, snr: int) -> str:
        # content, not location: the plan names its sources relative to their folders, and
        # the plan key covers the metadata (and the pocket recipe); moving a workspace is free
        return config_hash(
            {
                "plan": plan_sha256(self.plan_path),
                "sources": self.plan_key(),
                "snr": snr,
                "version": render.RENDER_VERSION,
            }
        )

    def render(self, force: bool = False) -> None:
        todo: dict[int, Path] = {}
        n_files = 3 * self.profile.data.mixtures_per_fold * 4
        for snr in self.profile.data.snrs:
            folder = paths.mixtures_dir(self.ws, snr)
            count = (
                sum(1 for e in os.scandir(folder) if e.name.endswith(".wav"))
                if folder.is_dir()
                else 0
            )
            if force or not self._fresh(
                f"render/{paths.snr_tag(snr)}", self.render_key(snr), count == n_files
            ):
                todo[snr] = folder
        if todo:
            render.render_plan(
                self.plan_path,
                fsd_dir=self.fsd,
                tau_dir=self.tau,
                out_dirs=todo,
                workers=self.profile.data.workers,
                progress=self.progress,
            )
            for snr in todo:
                self._done(f"render/{paths.snr_tag(snr)}", self.render_key(snr))

    def features(self, force: bool = False) -> None:
        for snr in self.profile.data.snrs:
            stage = f"features/{paths.snr_tag(snr)}"
            key = config_hash({"render": self.render_key(snr), "version": FEATURE_VERSION})
            out = paths.feature_file(self.ws, snr)
            if force or not self._fresh(stage, key, out.is_file()):
                feat.write_features(
                    self.plan_path,
                    paths.mixtures_dir(self.ws, snr),
                    out,
                    snr_db=snr,
                    workers=self.profile.data.workers,
                    progress=self.progress,
                )
                self._done(stage, key)

    def products(self) -> DataProducts:
        snrs = self.profile.data.snrs
        return DataProducts(
            workspace=self.ws,
            fsd_dir=self.fsd,
            tau_dir=self.tau,
            plan_path=self.plan_path,
            mixture_dirs={s: paths.mixtures_dir(self.ws, s) for s in snrs},
            feature_files={s: paths.feature_file(self.ws, s) for s in snrs},
            ran=tuple(self.ran),
        )


def run_stages(
    profile: Profile,
    workspace: Path | None = None,
    *,
    stages: tuple[str, ...] = STAGES,
    force: bool = False,
    progress: bool = True,
) -> DataProducts:
    """Run the named stages in pipeline order (each skipped when up to date, unless ``force``).

    A stage needs the outputs of the ones before it (e.g. ``render`` needs the plan).
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown data stage(s) {unknown}; expected some of {list(STAGES)}")
    workspace = Path(workspace) if workspace is not None else paths.workspace_dir(profile.name)
    ensure_writable_dir(paths.data_dir(workspace))
    runner = _Stages(profile, workspace, progress)
    for stage in STAGES:
        if stage in stages:
            getattr(runner, stage)(force=force)
    return runner.products()


def prepare_data(
    profile: Profile, workspace: Path | None = None, *, progress: bool = True
) -> DataProducts:
    """Make every data product of ``profile`` (cached): pocket sources (if ``source`` is
    ``pocket``), the plan, mixtures at every SNR of ``profile.data.snrs`` and their features.

    Args:
        profile: a loaded profile (see :func:`paperlib.config.load_profile`).
        workspace: defaults to ``paths.workspace_dir(profile.name)``.
        progress: show tqdm progress bars.

    Returns:
        :class:`DataProducts` with ``plan_path``, ``mixture_dirs`` and ``feature_files``.
    """
    return run_stages(profile, workspace, progress=progress)
