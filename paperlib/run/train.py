"""Training one model on one SNR and held-out fold: cached, locked, resumable, reproducible.

:func:`train_run` is the one entry point: it names the run (:mod:`paperlib.run.key`), returns
the finished run directory when there is one (:mod:`paperlib.run.result`), and otherwise takes
the run's lock, writes ``config.yaml`` and ``provenance.json`` and trains
(:func:`paperlib.run.loop.fit`, the recipe of :mod:`paperlib.run.recipe`).

Every file is written atomically (temporary name + ``os.replace``) and checkpoints are read with
``torch.load(weights_only=True)``, so a run killed at any moment (even ``kill -9``) resumes
from its last completed epoch and, on CPU, ends with exactly the numbers of an uninterrupted
run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from paperlib.atomic import clean_orphans
from paperlib.config import Profile, replace, to_dict
from paperlib.locking import workspace_lock
from paperlib.models import MODEL_NAMES, build_model
from paperlib.models.prior import class_prior, start_at_prior
from paperlib.run.checkpoint import load_state, spec_dict
from paperlib.run.features import (
    Split,
    check_feature_snr,
    feature_path_for_snr,
    features_sha256,
    load_split,
)
from paperlib.run.key import RunKey, run_key
from paperlib.run.loop import fit
from paperlib.run.provenance import atomic_write_json, atomic_write_text, git_commit, versions
from paperlib.run.recipe import resolve_device
from paperlib.run.result import (
    CONFIG_FILE,
    PROVENANCE_FILE,
    STATE_FILE,
    RunResult,
    is_complete,
    load_run,
)

__all__ = ["train_run"]


def _set_threads(n: int) -> None:
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def train_run(
    profile: Profile,
    workspace: Path,
    *,
    model: str,
    snr_db: int,
    fold: int,
    alpha: float | None = None,
    decoder_activation: str | None = None,
    seed: int | None = None,
    onsets: str = "fixed",
    feature_path: Path | None = None,
    resume_from: Path | None = None,
    device: str | None = None,
    progress: bool = True,
    wait: bool = True,
) -> RunResult:
    """Train (or resume, or fetch from the cache) one model on one SNR and held-out fold.

    Args:
        profile: the profile (its ``model``, ``train`` and ``data`` sections).
        workspace: the profile's workspace (``paths.workspace_dir(profile.name)``).
        model: one of ``paperlib.models.MODEL_NAMES``.
        snr_db: SNR whose feature file is used (``paths.feature_file(workspace, snr_db)``).
        fold: held-out validation fold.
        alpha: 2APAE reconstruction weight (default ``profile.train.alpha``; 0 for baselines).
        decoder_activation: 2APAE last decoder activation (default the profile's).
        seed: override ``profile.train.seed`` (weight initialisation and shuffling); a
            repeat of a cell with another seed measures the spread between runs.
        onsets: the mixing recipe whose features are used (``fixed``, the paper's slots, or
            ``random``; see ``data.onsets``).
        feature_path: use this feature file instead of the workspace's one for ``snr_db``.
        resume_from: a ``state.pt`` (or a run directory) of an interrupted run to continue
            from; it must hold the same model, size and variant.
        device: override ``profile.train.device``.
        progress: show a tqdm progress bar (stderr).
        wait: when another process is training the same run (same run id, same workspace),
            wait for it and return its result; ``False`` raises
            :class:`~paperlib.locking.LockedError` instead.

    Returns:
        The :class:`~paperlib.run.result.RunResult` of the finished run.

    Raises:
        MissingFeaturesError, FeatureFileError, FoldNotPresentError: bad feature file or fold.
        CheckpointMismatchError: ``resume_from`` (or a stale state in the run directory)
            holds another model or size; nothing is overwritten.
        CheckpointError: a ``state.pt`` that is truncated or not a training state.
        LockedError: another process trains this run and ``wait`` is false.
        ValueError: an unknown model name or device.
    """
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; valid models: {', '.join(MODEL_NAMES)}")
    if seed is not None:
        profile = replace(profile, train={"seed": int(seed)})
    workspace = Path(workspace)
    feature_path = (
        Path(feature_path)
        if feature_path
        else feature_path_for_snr(workspace, snr_db, onsets=onsets)
    )
    check_feature_snr(feature_path, snr_db)
    key = run_key(
        profile,
        model=model,
        snr_db=snr_db,
        fold=fold,
        features_sha256=features_sha256(feature_path),
        alpha=alpha,
        decoder_activation=decoder_activation,
        onsets=onsets,
    )
    # validates the file and the fold; pools the input to the model's resolution
    split = load_split(feature_path, fold, time_pool=key.time_pool, mel_pool=key.mel_pool)
    run_dir = key.run_dir(workspace)
    if is_complete(run_dir):
        return load_run(run_dir)
    # one process per run directory: a second one waits, then finds the finished run
    with workspace_lock(workspace, f"run-{key.run_id}", what=f"run {key.run_id}", wait=wait):
        if is_complete(run_dir, warn=False):
            return load_run(run_dir)
        return _train_locked(
            profile, key, split, feature_path, run_dir, resume_from, device, progress
        )


def _resume_state(
    run_dir: Path, resume_from: Path | None, spec: dict[str, Any], key: RunKey
) -> dict[str, Any] | None:
    """The state to continue from: ``resume_from``'s, else the run directory's, else none."""
    if resume_from is not None:
        resume_path = Path(resume_from)
        resume_path = resume_path / STATE_FILE if resume_path.is_dir() else resume_path
        if not resume_path.is_file():
            raise FileNotFoundError(f"checkpoint to resume from {resume_path} does not exist")
        return load_state(resume_path, spec, key.as_dict())
    if (run_dir / STATE_FILE).is_file():
        return load_state(run_dir / STATE_FILE, spec, key.as_dict())
    return None


def _write_records(
    profile: Profile, key: RunKey, run_dir: Path, feature_path: Path, device: torch.device
) -> None:
    """``config.yaml`` (once) and ``provenance.json`` (every attempt) of the run."""
    if not (run_dir / CONFIG_FILE).is_file():
        config = {"run_id": key.run_id, "run": key.as_dict(), "profile": to_dict(profile)}
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
    atomic_write_json(
        run_dir / PROVENANCE_FILE,
        {
            "run_id": key.run_id,
            "versions": versions(),
            "git_commit": git_commit(),
            "feature_file": str(feature_path),
            "feature_sha256": key.features_sha256,  # the hash in the run key: what was used
            "device": str(device),
            "precision": profile.train.precision,
            "torch_threads": torch.get_num_threads(),
        },
    )


def _train_locked(
    profile: Profile,
    key: RunKey,
    split: Split,
    feature_path: Path,
    run_dir: Path,
    resume_from: Path | None,
    device: str | None,
    progress: bool,
) -> RunResult:
    """The body of :func:`train_run` once the run's lock is held."""
    cfg = profile.train
    dev = resolve_device(device or cfg.device)
    _set_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    net = build_model(
        key.model,
        num_classes=split.y_train.shape[1],
        time_steps=split.x_train.shape[1],
        mel_bins=split.x_train.shape[2],
        **key.model_kwargs(),
    )
    if key.train.get("init", "paper") == "prior":  # the last per-class layer starts at the priors
        start_at_prior(net, class_prior(split.y_train))
    state = _resume_state(run_dir, resume_from, spec_dict(net), key)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_orphans(run_dir)  # temporaries of a killed earlier attempt
    _write_records(profile, key, run_dir, feature_path, dev)
    return fit(
        net, split, key, run_dir, state, dev, progress=progress,
        eval_batch_size=cfg.eval_batch_size,
    )  # fmt: skip
