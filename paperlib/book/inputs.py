"""What each chapter reads from the workspace, and whether that changed since it was executed.

A chapter's reuse key (:func:`paperlib.book.execute.input_key`) covers the notebook, the
profile, the parameters and the library; the chapter's *inputs* cover what it reads from the
workspace, by content, with the library's own hashes:

* ``workspace``: the folder itself (``paths.workspace_dir(profile.name)``), so another or an
  empty ``PAPERLIB_WORKSPACE`` never reuses a chapter that reads it;
* ``data``: :func:`paperlib.data.pipeline.data_digest` (the stage keys of ``data/manifest.json``,
  the files left out, the source content as the cached source check sees it now, and the
  SHA-256 of every feature file);
* ``runs``: run id -> SHA-256 of its ``metrics.json`` for every complete run of the workspace.

:data:`CHAPTER_INPUTS` says which of these each chapter reads. The runner records the inputs
*after* a chapter executed (the state its outputs show, including data or runs it made) and
reuses the chapter while they still hold: the same workspace and data, and every run it recorded
still there with the same metrics (runs that later chapters add do not matter).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paperlib import paths
from paperlib.config import Profile
from paperlib.fingerprint import file_sha256

CHAPTER_INPUTS: dict[str, tuple[str, ...]] = {
    "01_data": ("data",),
    "02_model": (),  # builds models from the profile only
    "03_training": ("data", "runs"),
    "04_results": ("data", "runs"),
    "05_ablation": ("data", "runs"),
    "06_interpretability": ("data", "runs"),
    "07_exercises": ("data", "runs"),
    "08_localisation": ("data", "runs"),
    "09_robustness": ("data", "runs"),
}
"""Chapter (notebook stem) -> the workspace parts it reads: ``data`` and/or ``runs``."""
DEFAULT_INPUTS: tuple[str, ...] = ("data", "runs")
"""What a chapter missing from :data:`CHAPTER_INPUTS` is assumed to read (everything)."""


def chapter_inputs(chapter: str) -> tuple[str, ...]:
    """The workspace parts ``chapter`` reads (:data:`CHAPTER_INPUTS`, else everything)."""
    return CHAPTER_INPUTS.get(chapter, DEFAULT_INPUTS)


def run_digests(workspace: Path) -> dict[str, str]:
    """Run id -> SHA-256 of its ``metrics.json``, for every complete run of ``workspace``."""
    folder = paths.runs_dir(Path(workspace))
    if not folder.is_dir():
        return {}
    out = {}
    for metrics in sorted(folder.glob("*/metrics.json")):
        try:
            out[metrics.parent.name] = file_sha256(metrics)
        except OSError:
            continue
    return out


class WorkspaceInputs:
    """The current inputs of one workspace, computed once and again after :meth:`changed`.

    Args:
        profile: the effective profile of the build (its data section and name).
        workspace: the folder the chapters read (default ``paths.workspace_dir(profile.name)``).
    """

    def __init__(self, profile: Profile, workspace: Path | None = None):
        self.profile = profile
        self.workspace = Path(workspace or paths.workspace_dir(profile.name)).absolute()
        self._parts: dict[str, Any] = {}

    def changed(self) -> None:
        """Forget the digests (a chapter executed and may have made data or runs)."""
        self._parts.clear()

    def _part(self, name: str) -> Any:
        if name not in self._parts:
            if name == "data":
                from paperlib.data.pipeline import data_digest

                self._parts[name] = data_digest(self.profile, self.workspace)
            elif name == "runs":
                self._parts[name] = run_digests(self.workspace)
            else:
                raise ValueError(f"unknown chapter input {name!r}; expected data or runs")
        return self._parts[name]

    def of(self, chapter: str) -> dict[str, Any]:
        """``{"workspace": ..., "data": ..., "runs": ...}`` for the parts ``chapter`` reads
        (``{}`` for a chapter that reads nothing of the workspace)."""
        parts = chapter_inputs(chapter)
        if not parts:
            return {}
        return {"workspace": str(self.workspace), **{name: self._part(name) for name in parts}}


def _data_change(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """Which part of two :func:`~paperlib.data.pipeline.data_digest` mappings differs."""
    if recorded.get("sources") != now.get("sources"):
        return "source files changed"
    was, new = recorded.get("features") or {}, now.get("features") or {}
    differing = sorted(tag for tag in set(was) | set(new) if was.get(tag) != new.get(tag))
    if differing:
        return f"feature file(s) {', '.join(differing)} changed"
    if recorded.get("stages") != now.get("stages"):
        return "data stage keys changed"
    return "files left out of the data changed"


def change_reason(recorded: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str | None:
    """Why a chapter executed with inputs ``recorded`` must execute again (``None``: reuse).

    Args:
        recorded: the inputs stored after its last execution (``None`` when none were).
        now: :meth:`WorkspaceInputs.of` for the chapter.
    """
    if not isinstance(recorded, Mapping):
        return "its workspace inputs were not recorded"
    if not now and not recorded:
        return None  # it reads nothing of the workspace
    if recorded.get("workspace") != now.get("workspace"):
        return f"workspace changed ({recorded.get('workspace')} -> {now['workspace']})"
    if "data" in now and recorded.get("data") != now["data"]:
        if not isinstance(recorded.get("data"), Mapping):
            return "data digest changed (not recorded before)"
        return f"data digest changed: {_data_change(recorded['data'], now['data'])}"
    if "runs" in now:
        runs_now = now["runs"]
        seen = recorded.get("runs")
        if not isinstance(seen, Mapping):
            return "run digests changed (not recorded before)"
        gone = sorted(r for r in seen if r not in runs_now)
        if gone:
            return f"run {gone[0]} is gone" + (f" (and {len(gone) - 1} more)" if gone[1:] else "")
        edited = sorted(r for r, sha in seen.items() if runs_now[r] != sha)
        if edited:
            return f"metrics of run {edited[0]} changed"
    return None
