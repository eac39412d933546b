"""The whole data pipeline, cached stage by stage: pocket corpus -> check -> plan -> render ->
features.

:func:`prepare_data` runs only what is missing or out of date. A small manifest
(``<data dir>/manifest.json``) records, per stage, a hash of everything the stage's output
depends on, and a stage is skipped when its hash is unchanged and its outputs are in place:

* ``check`` reads every listed source file once (:mod:`paperlib.data.check`; cached per file
  by size, modification time and inode, so a rerun only stats them) and stops with one table of
  every problem, unless ``data.exclude_bad`` leaves the bad files out (recorded in the
  manifest under ``excluded``, with the reason; files recorded there stay left out for every
  later command on the workspace, ``train``, ``grid`` and ``book`` included, while a file
  that turns bad later stops the pipeline again);
* ``plan`` depends on every usable listed row and the **content hash** of its WAV, and on the
  plan settings;
* ``render`` keeps a key per mixture (its plan rows, the content hashes of its sources, the
  SNR): a source replaced under the same name re-renders exactly the mixtures that use it;
* ``features`` depend on the render keys of their SNR.

Onset recipes (``data.onsets``, :data:`paperlib.paths.ONSET_RECIPES`) live side by side: the
``plan``, ``render`` and ``features`` stages run once per recipe, into the recipe's own paths
(``paths.plan_file(ws, onsets=...)`` etc.) and under the recipe's own manifest entries
(``plan``, ``render/snr0db``, ``features/snr0db`` for ``fixed``, the paper's, unchanged from
before recipes existed; ``plan/random``, ``render/random/snr0db``, ... for ``random``, whose
keys also hold the recipe), so the caches of two recipes never mix. :func:`data_recipes` says
which recipes a call builds: the profile's main one at ``data.snrs``, then each of
``data.study_onsets`` at ``data.study_snrs``.

The manifest also records where the data came from (``origin``: ``pocket``, or ``dcase`` and
the two folders): data of another origin is never written over another's; the command stops
and says to use another workspace. A workspace lock (:mod:`paperlib.locking`) keeps two
processes from preparing the same workspace at once: the second waits, then finds the work
done. A second call with unchanged inputs costs a few file checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperlib import atomic, paths
from paperlib.config import Profile, config_hash
from paperlib.data import features as feat
from paperlib.data import render
from paperlib.data.audio import ensure_writable_dir
from paperlib.data.check import SourceCheck, check_sources
from paperlib.data.errors import DataError
from paperlib.data.plan import make_plan, read_plan, write_plan
from paperlib.data.pocket import write_pocket_corpus
from paperlib.data.sources import TAU_META, find_fsd_csv
from paperlib.fingerprint import cached_sha256
from paperlib.locking import workspace_lock

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
CHECK_TABLE = "check.csv"
"""The problem table of the last source check (``<data dir>/check.csv``)."""
SCAN_CACHE = "source_scan.json"
"""Cached per-file facts of the source check (``<data dir>/source_scan.json``)."""
POCKET_VERSION = 2
"""Bumped whenever the pocket synthesis changes (invalidates the corpus and what follows).
2: backgrounds at 32 kHz mono 16-bit (1: 48 kHz stereo 24-bit)."""
PLAN_VERSION = 2
FEATURE_VERSION = 1
STAGES: tuple[str, ...] = ("pocket", "check", "plan", "render", "features")
BACKGROUNDS_DIR = "backgrounds"
"""``data/mixtures/backgrounds/``: the background tracks shared by the onset recipes."""


class WorkspaceConflictError(DataError):
    """The workspace holds data made from other sources; it is not overwritten."""


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
    check: SourceCheck | None = None
    """The source check of this call (``None`` when the check stage was not asked for)."""
    excluded: tuple[dict[str, str], ...] = ()
    """Source files left out (``data.exclude_bad``): ``dataset, file, problems, detail``."""
    onsets: str = "fixed"
    """The onset recipe of ``plan_path``, ``mixture_dirs`` and ``feature_files``."""
    study: tuple[DataProducts, ...] = ()
    """The further recipes built in the same call (``data.study_onsets``), in order."""


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


def data_recipes(
    profile: Profile, onsets: str | None = None
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The ``(onset recipe, SNRs)`` a data call builds, in order.

    With ``onsets`` given: that recipe at ``data.snrs``. Otherwise the main recipe
    (``data.onsets`` at ``data.snrs``), then each of ``data.study_onsets`` at
    ``data.study_snrs`` (``None``: ``data.snrs``), leaving out SNRs already listed for the
    same recipe.

    Raises:
        ValueError: an unknown ``onsets``.
    """
    d = profile.data
    if onsets is not None:
        return ((paths.check_onsets(onsets), tuple(d.snrs)),)
    built: dict[str, set[int]] = {d.onsets: set(d.snrs)}
    recipes = [(d.onsets, tuple(d.snrs))]
    for recipe in d.study_onsets:
        snrs = tuple(
            s for s in (d.study_snrs if d.study_snrs is not None else d.snrs)
            if s not in built.setdefault(recipe, set())
        )  # fmt: skip
        if snrs:
            built[recipe].update(snrs)
            recipes.append((recipe, snrs))
    return tuple(recipes)


def manifest_path(workspace: Path) -> Path:
    return paths.data_dir(workspace) / MANIFEST_NAME


def load_manifest(workspace: Path) -> dict[str, Any]:
    """The data manifest of a workspace: ``version``, ``origin``, ``stages`` (stage -> key),
    ``check`` (counts) and ``excluded`` (files left out, with the reason); empty when absent
    or written by an older version."""
    try:
        manifest = json.loads(manifest_path(workspace).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if manifest.get("version") == MANIFEST_VERSION else {}


def data_origin(profile: Profile, workspace: Path) -> dict[str, str]:
    """Where a profile's data comes from: ``{"source": "pocket"}``, or for DCASE data the two
    folders and a hash of their two listings (``train_post_competition.csv``, ``meta.csv``)."""
    if profile.data.source == "pocket":
        return {"source": "pocket"}
    fsd, tau = source_dirs(profile, workspace)
    digest = hashlib.sha256()
    for listing in (find_fsd_csv(fsd), tau / TAU_META):
        digest.update(listing.read_bytes() if listing.is_file() else b"")
    return {
        "source": "dcase",
        "fsd_dir": str(fsd.resolve()),
        "tau_dir": str(tau.resolve()),
        "listings": digest.hexdigest(),
    }


def _same_origin(held: dict[str, str], origin: dict[str, str]) -> bool:
    """The same source kind and, for DCASE data, the same folders or the same listings (a
    dataset moved elsewhere is still the same data)."""
    if held.get("source") != origin.get("source"):
        return False
    same_folders = all(held.get(k) == origin.get(k) for k in ("fsd_dir", "tau_dir"))
    return same_folders or held.get("listings") == origin.get("listings")


def _describe(origin: dict[str, str]) -> str:
    if origin.get("source") == "pocket":
        return "the pocket corpus"
    return f"DCASE data in {origin.get('fsd_dir')} and {origin.get('tau_dir')}"


def _digest(payload: Any) -> str:
    return hashlib.sha256(atomic.to_json(payload, indent=None).encode()).hexdigest()


class _Stages:
    """Stage keys, up-to-date checks and runners for one profile and workspace."""

    def __init__(
        self,
        profile: Profile,
        workspace: Path,
        progress: bool,
        *,
        onsets: str = "fixed",
        snrs: tuple[int, ...] | None = None,
        check: SourceCheck | None = None,
    ):
        self.profile, self.ws, self.progress = profile, Path(workspace), progress
        self.onsets = paths.check_onsets(onsets)
        self.snrs = tuple(snrs) if snrs is not None else tuple(profile.data.snrs)
        self.fsd, self.tau = source_dirs(profile, self.ws)
        self.plan_path = paths.plan_file(self.ws, self.onsets)
        self.manifest = load_manifest(self.ws)
        self.manifest.setdefault("version", MANIFEST_VERSION)
        self.manifest.setdefault("stages", {})
        self.ran: list[str] = []
        self._check: SourceCheck | None = check
        self._keys: dict[int, dict[str, str]] = {}
        self._claim_origin()

    def _claim_origin(self) -> None:
        origin = data_origin(self.profile, self.ws)
        held = self.manifest.get("origin")
        if held and not _same_origin(held, origin):
            folder = paths.data_dir(self.ws)
            raise WorkspaceConflictError(
                f"{folder} holds data made from {_describe(held)}; this profile's data comes "
                f"from {_describe(origin)}. Nothing was changed: use another workspace for it "
                f"(--workspace DIR, or PAPERLIB_WORKSPACE), or delete {folder} to replace the "
                "data there"
            )
        if held != origin:
            self.manifest["origin"] = origin
            self._save()

    def _save(self) -> None:
        atomic.write_json(manifest_path(self.ws), self.manifest)

    def _fresh(self, stage: str, key: str, outputs_ok: bool) -> bool:
        return self.manifest["stages"].get(stage) == key and outputs_ok

    def stage_name(self, stage: str, snr: int | None = None) -> str:
        """Manifest entry of a recipe's stage: ``plan``, ``render/snr0db`` for ``fixed``;
        ``plan/random``, ``render/random/snr0db`` for ``random``."""
        parts = [stage] + ([] if self.onsets == "fixed" else [self.onsets])
        return "/".join(parts + ([] if snr is None else [paths.snr_tag(snr)]))

    def _recipe(self) -> dict[str, str]:
        """The recipe's part of a stage key (empty for ``fixed``: the keys from before recipes)."""
        return {} if self.onsets == "fixed" else {"onsets": self.onsets}

    def _done(self, stage: str, key: str) -> None:
        self.manifest["stages"][stage] = key
        self._save()
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

    def source_check(self, rescan: bool = False) -> SourceCheck:
        """The source check (every listed file read once; cached per file), made once.

        Writes the problem table to ``check.csv`` and the files left out to the manifest.

        Raises:
            SourceProblemsError: a file that cannot be used, unless ``data.exclude_bad``
                (the message holds every problem).
        """
        if self._check is not None and not rescan:
            return self._check
        find_fsd_csv(self.fsd)  # a clear error for a missing folder before anything else
        result = check_sources(
            self.fsd,
            self.tau,
            cache_path=paths.data_dir(self.ws) / SCAN_CACHE,
            workers=self.profile.data.workers,
            progress=self.progress,
            rescan=rescan,
        )
        table = paths.data_dir(self.ws) / CHECK_TABLE
        text = result.problems.to_csv(index=False)
        if not table.is_file() or table.read_text() != text:
            atomic.write_text(table, text)
        # files left out before (data.exclude_bad, recorded in the manifest) stay left out for
        # every later command on this workspace; a newly bad file still stops the pipeline
        recorded = {(e.get("dataset"), e.get("file")) for e in self.manifest.get("excluded", [])}
        new_bad = {(e["dataset"], e["file"]) for e in result.excluded()} - recorded
        if not self.profile.data.exclude_bad and new_bad:
            result.raise_for_errors(table_path=table)
        excluded = result.excluded()
        summary = {
            "files": len(result.events) + len(result.backgrounds),
            "errors": len(result.errors),
            "warnings": len(result.warnings),
            "excluded": len(excluded),
        }
        if self.manifest.get("excluded") != excluded or self.manifest.get("check") != summary:
            self.manifest["excluded"], self.manifest["check"] = excluded, summary
            self._save()
        self._check = result
        return result

    def check(self, force: bool = False) -> None:
        """The source check; ``force`` reads every file again instead of trusting the cache."""
        if self.source_check(rescan=force).scanned:
            self.ran.append("check")

    def plan_key(self) -> str:
        d = self.profile.data
        return config_hash(
            {
                "sources": _digest(self.source_check().identity()),
                "mixtures_per_fold": d.mixtures_per_fold,
                "seed": d.seed,
                "keep_recordings_in_one_fold": d.keep_recordings_in_one_fold,
                "version": PLAN_VERSION,
                **self._recipe(),
            }
        )

    def plan(self, force: bool = False) -> None:
        key = self.plan_key()
        if force or not self._fresh(self.stage_name("plan"), key, self.plan_path.is_file()):
            ensure_writable_dir(self.plan_path.parent)
            result = self.source_check()
            plan = make_plan(
                result.events,
                result.backgrounds,
                mixtures_per_fold=self.profile.data.mixtures_per_fold,
                seed=self.profile.data.seed,
                keep_recordings_in_one_fold=self.profile.data.keep_recordings_in_one_fold,
                onsets=self.onsets,
            )
            write_plan(plan, self.plan_path)
            self._keys.clear()
            self._done(self.stage_name("plan"), key)

    def render_settings(self) -> dict[str, Any]:
        """What a rendered mixture depends on besides its plan rows, sources and SNR."""
        return {}

    def mixture_keys(self, snr: int) -> dict[str, str]:
        """Key of every mixture at ``snr`` (as :func:`paperlib.data.render.render_plan` makes)."""
        if snr not in self._keys:
            result = self.source_check()
            self._keys[snr] = render.mixture_keys(
                read_plan(self.plan_path),
                event_hashes=result.event_hashes(),
                background_hashes=result.background_hashes(),
                settings={**self.render_settings(), "snr_db": int(snr)},
            )
        return self._keys[snr]

    def render_key(self, snr: int) -> str:
        # content, not location: the keys hold the plan rows and the sources' content hashes;
        # moving a workspace or a dataset folder is free
        return config_hash({"mixtures": _digest(self.mixture_keys(snr)), "snr": snr,
                            "version": render.RENDER_VERSION, **self._recipe()})  # fmt: skip

    def backgrounds_dir(self) -> Path:
        """The background tracks every recipe of the workspace shares (their mixtures use the
        same backgrounds; only the onsets differ)."""
        return paths.data_dir(self.ws) / "mixtures" / BACKGROUNDS_DIR

    def render(self, force: bool = False) -> None:
        todo: dict[int, Path] = {}
        names = list(self.mixture_keys(self.snrs[0])) if self.snrs else []
        for snr in self.snrs:
            folder = paths.mixtures_dir(self.ws, snr, self.onsets)
            done = render.is_rendered(folder, names)
            if force or not self._fresh(self.stage_name("render", snr), self.render_key(snr), done):
                todo[snr] = folder
        if todo:
            result = self.source_check()
            render.render_plan(  # every SNR in one pass: each source is decoded once
                self.plan_path,
                fsd_dir=self.fsd,
                tau_dir=self.tau,
                out_dirs=todo,
                workers=self.profile.data.workers,
                progress=self.progress,
                event_hashes=result.event_hashes(),
                background_hashes=result.background_hashes(),
                settings=self.render_settings(),
                backgrounds_dir=self.backgrounds_dir(),
            )
            stamps = (paths.data_dir(self.ws) / "mixtures").glob(
                f"**/{render.TRACKS_DIR}/{render.STAMP_NAME}"
            )
            render.clean_backgrounds(self.backgrounds_dir(), sorted(stamps))
            for snr in todo:
                self._done(self.stage_name("render", snr), self.render_key(snr))

    def features(self, force: bool = False) -> None:
        for snr in self.snrs:
            stage = self.stage_name("features", snr)
            key = config_hash(
                {"render": self.render_key(snr), "version": FEATURE_VERSION, **self._recipe()}
            )
            out = paths.feature_file(self.ws, snr, self.onsets)
            if force or not self._fresh(stage, key, feat.is_complete_feature_file(out)):
                feat.write_features(
                    self.plan_path,
                    paths.mixtures_dir(self.ws, snr, self.onsets),
                    out,
                    snr_db=snr,
                    workers=self.profile.data.workers,
                    progress=self.progress,
                )
                cached_sha256(out)  # the runs' key: hashed once here, not by every run
                self._done(stage, key)

    def products(self) -> DataProducts:
        snrs, onsets = self.snrs, self.onsets
        return DataProducts(
            workspace=self.ws,
            fsd_dir=self.fsd,
            tau_dir=self.tau,
            plan_path=self.plan_path,
            mixture_dirs={s: paths.mixtures_dir(self.ws, s, onsets) for s in snrs},
            feature_files={s: paths.feature_file(self.ws, s, onsets) for s in snrs},
            ran=tuple(self.ran),
            check=self._check,
            excluded=tuple(self.manifest.get("excluded", ())),
            onsets=onsets,
        )


def run_stages(
    profile: Profile,
    workspace: Path | None = None,
    *,
    stages: tuple[str, ...] = STAGES,
    force: bool = False,
    progress: bool = True,
    onsets: str | None = None,
) -> DataProducts:
    """Run the named stages in pipeline order (each skipped when up to date, unless ``force``).

    A stage needs the outputs of the ones before it (e.g. ``render`` needs the plan). The
    ``plan``, ``render`` and ``features`` stages run for every recipe of
    :func:`data_recipes` (``onsets``: only that recipe, at ``data.snrs``); ``pocket`` and
    ``check`` once. Returns the products of the first recipe, the others in ``study``; its
    ``ran`` lists the stages every recipe ran.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown data stage(s) {unknown}; expected some of {list(STAGES)}")
    workspace = Path(workspace) if workspace is not None else paths.workspace_dir(profile.name)
    ensure_writable_dir(paths.data_dir(workspace))
    with workspace_lock(workspace, "data", what=f"the data of workspace {workspace}"):
        atomic.clean_orphans(paths.data_dir(workspace))  # left by a killed earlier run
        runners: list[_Stages] = []
        for recipe, snrs in data_recipes(profile, onsets):
            check = runners[-1]._check if runners else None
            runner = _Stages(profile, workspace, progress, onsets=recipe, snrs=snrs, check=check)
            for stage in STAGES:
                if stage in stages and not (runners and stage in ("pocket", "check")):
                    getattr(runner, stage)(force=force)
            runners.append(runner)
        main, *study = (r.products() for r in runners)
        ran = tuple(s for r in runners for s in r.ran)
        return dataclasses.replace(main, ran=ran, study=tuple(study))


def prepare_data(
    profile: Profile, workspace: Path | None = None, *, progress: bool = True
) -> DataProducts:
    """Make every data product of ``profile`` (cached): pocket sources (if ``source`` is
    ``pocket``), the plan, mixtures at every SNR of ``profile.data.snrs`` and their features,
    then the same for each recipe of ``data.study_onsets`` at ``data.study_snrs``.

    Args:
        profile: a loaded profile (see :func:`paperlib.config.load_profile`).
        workspace: defaults to ``paths.workspace_dir(profile.name)``.
        progress: show tqdm progress bars.

    Returns:
        :class:`DataProducts` with ``plan_path``, ``mixture_dirs`` and ``feature_files`` of
        the main recipe, and the study recipes' products in ``study``.
    """
    return run_stages(profile, workspace, progress=progress)


def data_digest(profile: Profile, workspace: Path) -> dict[str, Any]:
    """What the data of ``profile`` in ``workspace`` is now, by content, making nothing.

    Used by the book runner to tell whether a chapter that reads the data may be reused. Parts:

    * ``stages`` and ``excluded``: the stage keys and the files left out, as recorded in the
      data manifest (empty for a workspace without data);
    * ``sources``: a hash of the usable source rows and their content hashes as the source
      check finds them *now* (cached per file: only changed files are read), so a source WAV
      replaced under the same name changes it before any stage runs again. It is ``None``
      while the workspace holds no data manifest (nothing was checked yet), and names the
      error when the listings cannot be read;
    * ``features``: SNR tag (``random/snr0db`` for another recipe) -> SHA-256 of each complete
      feature file of every recipe the profile builds (:func:`data_recipes`)
      (:func:`paperlib.fingerprint.cached_sha256`, the hash the run keys use), ``None`` when
      missing or incomplete.

    Returns:
        A JSON-ready mapping; equal mappings mean the same data.
    """
    workspace = Path(workspace)
    manifest = load_manifest(workspace)
    sources: str | None = None
    if manifest:
        fsd, tau = source_dirs(profile, workspace)
        try:
            find_fsd_csv(fsd)
            check = check_sources(
                fsd,
                tau,
                cache_path=paths.data_dir(workspace) / SCAN_CACHE,
                workers=1,
                progress=False,
            )
            sources = _digest(check.identity())
        except (OSError, ValueError) as error:  # the chapter that reads them reports it
            sources = f"unreadable: {error}"
    features: dict[str, str | None] = {}
    for onsets, snrs in data_recipes(profile):  # the main recipe and the study's
        for snr in snrs:
            out = paths.feature_file(workspace, snr, onsets=onsets)
            complete = feat.is_complete_feature_file(out)
            tag = paths.snr_tag(snr) if onsets == "fixed" else f"{onsets}/{paths.snr_tag(snr)}"
            features[tag] = cached_sha256(out) if complete else None
    return {
        "stages": dict(manifest.get("stages", {})),
        "excluded": list(manifest.get("excluded", [])),
        "sources": sources,
        "features": features,
    }
