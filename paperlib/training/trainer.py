"""Training one model on one SNR and held-out fold, resumable and reproducible.

Recipe (authors' code, REFERENCE_FACTS "Training"): Adam (lr 1e-3, no weight decay), batches
of 24 clips, loss ``BCE(clip_probs, weak targets) + α · MSE(reconstruction, standardised
input)`` (α only for 2APAE), ReduceLROnPlateau (mode max) on the validation micro-AP, a fixed
number of epochs, and the checkpoint of the epoch with the best validation micro-AP, measured on
the held-out fold that is also reported (an optimistic protocol, kept to compare with the
paper).

Run directory (``paths.runs_dir(ws)/<run id>``, see :mod:`paperlib.training.runs`)::

    config.yaml      the full profile plus the run key
    provenance.json  versions, git commit, feature file and its SHA-256, device, precision
    log.csv          one row per completed epoch (LOG_COLUMNS)
    state.pt         last completed epoch: model, optimiser, scheduler, RNG, log, best
    best.pt          model of the best epoch (paperlib.models.save_model)
    metrics.json     best-epoch metrics; written last, it marks the run complete

Every file is written atomically (temporary name + ``os.replace``) and checkpoints are read with
``torch.load(weights_only=True)``, so a run killed at any moment (even ``kill -9``) resumes
from its last completed epoch and, on CPU, ends with exactly the numbers of an uninterrupted
run: shuffling uses a generator seeded per epoch and the RNG state travels in the checkpoint.
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch.nn import functional as F

from paperlib.config import Profile, to_dict
from paperlib.metrics import chance_levels, clip_metrics
from paperlib.progress import progress_bar
from paperlib.training.data import Split, load_split, open_feature_file
from paperlib.training.precision import Precision
from paperlib.training.provenance import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    git_commit,
    versions,
)
from paperlib.training.runs import RunKey, run_key

__all__ = [
    "LOG_COLUMNS",
    "CheckpointMismatchError",
    "DamagedRunError",
    "RunResult",
    "load_run",
    "resolve_device",
    "train_run",
]

LOG_COLUMNS: tuple[str, ...] = (
    "epoch",
    "step",
    "bce",
    "mse",
    "loss",
    "train_micro_ap",
    "val_micro_ap",
    "val_macro_ap",
    "val_auc",
    "lr",
    "seconds",
)
"""Columns of ``log.csv``: epoch (1-based), optimiser steps taken so far, mean training loss terms (``mse`` unweighted,
``loss = bce + α·mse``), training micro-AP (scores collected while training), validation
micro/macro AP and macro ROC-AUC, learning rate used in the epoch, wall seconds."""

STATE_FILE = "state.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.json"
LOG_FILE = "log.csv"
CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"


class CheckpointMismatchError(ValueError):
    """A checkpoint that belongs to another model, size or variant than the run asked for."""


@dataclass(frozen=True)
class RunResult:
    """A finished run.

    Attributes:
        run_id: ``<model>-snr<S>-fold<k>-<hash>``.
        run_dir: its directory.
        key: the :class:`~paperlib.training.runs.RunKey`.
        metrics: contents of ``metrics.json`` (best epoch, micro/macro AP, AUC, per-class AP).
        log: the per-epoch table (``LOG_COLUMNS``).
        cached: True when the run was already complete and nothing was trained.
    """

    run_id: str
    run_dir: Path
    key: RunKey
    metrics: dict[str, Any]
    log: pd.DataFrame
    cached: bool

    @property
    def checkpoint(self) -> Path:
        """The best-epoch model (load with ``paperlib.models.load_model``)."""
        return self.run_dir / BEST_FILE


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device is {name!r} but no CUDA device is available; use cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"train.device must be auto, cpu or cuda[:N]; got {name!r}")
    return torch.device(name)


def _features_sha(feature_path: Path) -> str:
    """SHA-256 of the feature file (checked to be a complete one), hashed once per version."""
    from paperlib.fingerprint import cached_sha256

    with open_feature_file(feature_path):
        pass
    return cached_sha256(feature_path)


def _check_feature_snr(feature_path: Path, snr_db: int) -> None:
    """The feature file's own ``snr_db`` attribute must be the run's SNR (a file without the
    attribute is taken at its word).

    Raises:
        ValueError: the file was made at another SNR (names the file and both values).
    """
    with open_feature_file(feature_path) as handle:
        found = handle.attrs.get("snr_db")
    if found is not None and int(found) != int(snr_db):
        raise ValueError(
            f"{feature_path} holds features at {int(found)} dB (its snr_db attribute), but the "
            f"run is for {int(snr_db)} dB: pass --snr {int(found)} (snr_db={int(found)}) or the "
            f"feature file of {int(snr_db)} dB"
        )


def _spec_dict(model: torch.nn.Module) -> dict[str, Any]:
    spec = model.spec
    return {k: getattr(spec, k) for k in spec.__dataclass_fields__}


def _describe(spec: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(spec.items()))


def _torch_save(payload: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_state(
    path: Path, expected_spec: dict[str, Any], expected_key: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A training state of the model ``expected_spec`` and, when the state records one (every
    state written since issue 22 does), of the run key ``expected_key``.

    Raises:
        CheckpointError: not a readable training state.
        CheckpointMismatchError: another model spec, or another run key (the differing
            fields are named, e.g. ``train.seed: 0 in the state, 7 here``).
    """
    from paperlib.models.checkpoint import CheckpointError, load_torch_file

    try:
        state = load_torch_file(path)
    except CheckpointError as error:
        raise CheckpointError(
            f"{error}; delete it to train this run from the first epoch"
        ) from None
    if not isinstance(state, dict) or not {"spec", "model", "epoch"} <= set(state):
        raise CheckpointError(
            f"{path}: not a training state (expected the keys spec, model, epoch, ...); "
            "delete it to train this run from the first epoch"
        )
    found = state.get("spec", {})
    if found != expected_spec:
        raise CheckpointMismatchError(
            f"cannot resume from {path}: it holds a model with {_describe(found)}, "
            f"but this run trains a model with {_describe(expected_spec)}"
        )
    # a state without a run key (written before keys were stored) is accepted on its spec alone
    found_key = state.get("run_key")
    if expected_key is not None and isinstance(found_key, dict) and found_key != expected_key:
        flat_found, flat_expected = _flat(found_key), _flat(expected_key)
        fields = sorted(set(flat_found) | set(flat_expected))
        differing = [
            f"{k}: {flat_found.get(k)!r} in the state, {flat_expected.get(k)!r} here"
            for k in fields
            if flat_found.get(k) != flat_expected.get(k)
        ]
        raise CheckpointMismatchError(
            f"cannot resume from {path}: it belongs to another run (run key differs in "
            f"{'; '.join(differing)}); resume a state of this very run, or train without --resume"
        )
    return state


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 0}}`` -> ``{"train.seed": 0}``."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _loss_terms(
    out: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, alpha: float, decoder: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bce, mse): BCE on clip probabilities plus α·MSE(reconstruction, input)."""
    probs = out["clip_probs"].float().clamp(0.0, 1.0)
    bce = F.binary_cross_entropy(probs, y)
    if decoder:
        mse = F.mse_loss(out["reconstruction"].float(), x)
    else:
        mse = torch.zeros((), device=x.device)
    loss = bce + alpha * mse if decoder and alpha != 0.0 else bce
    return loss, bce, mse


def prepare_model(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move ``net`` to ``device``; on CUDA also channels_last and cudnn.benchmark."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return net.to(device, memory_format=torch.channels_last)
    return net.to(device)


def train_step(
    net: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float,
    device: torch.device,
    precision: str = "fp32",
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimisation step in ``precision`` (the heads and the loss always in fp32).

    Args:
        net: a paperlib model (2APAE adds the α-weighted reconstruction MSE).
        optimiser: its optimiser.
        x: (B, T, F) standardised log-mel on ``device``.
        y: (B, K) weak targets on ``device``.
        alpha: MSE weight (used only when the model returns a ``reconstruction``).
        device: where ``net`` lives.
        precision: ``fp32``, ``tf32`` or ``bf16`` (see :mod:`paperlib.training.precision`).

    Returns:
        ``(outputs, loss, bce, mse)``.
    """
    scope = Precision(precision, device)
    with scope.backends():
        with scope.autocast():
            out = net(x)
        loss, bce, mse = _loss_terms(out, x, y, alpha, "reconstruction" in out)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return out, loss, bce, mse


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    x: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """Clip probabilities of ``model`` in eval mode.

    Args:
        model: a paperlib model.
        x: (N, T, F) standardised log-mel.
        batch_size: clips per forward pass.
        device: where to run.
        precision: ``fp32``, ``tf32`` or ``bf16`` (see :mod:`paperlib.training.precision`).

    Returns:
        (N, K) float32 clip probabilities.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    xs = torch.as_tensor(x)
    outs = []
    scope = Precision(precision, device)
    with scope.backends():
        for idx in _batches(len(xs), batch_size, None):
            batch = xs[idx].to(device, non_blocking=True)
            with scope.autocast():
                outs.append(model(batch)["clip_probs"].float().cpu())
    model.train(was_training)
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)


def _write_log(run_dir: Path, rows: list[dict[str, float]]) -> None:
    table = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    atomic_write_text(run_dir / LOG_FILE, table.to_csv(index=False))


METRICS_KEYS: tuple[str, ...] = ("best_epoch", "epochs", "micro_ap", "macro_ap", "roc_auc")
"""Keys every complete ``metrics.json`` holds."""


class DamagedRunError(ValueError):
    """A run whose ``metrics.json`` is not valid JSON or lacks keys (the message names it)."""


def _read_metrics(path: Path) -> dict[str, Any]:
    """The contents of a ``metrics.json``.

    Raises:
        FileNotFoundError: there is none (the run is not complete).
        DamagedRunError: not a JSON object with :data:`METRICS_KEYS`.
    """
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"run {path.parent} is not complete: {path} is missing") from None
    except (OSError, ValueError) as error:
        raise DamagedRunError(f"{path}: not a readable JSON file ({error})") from None
    missing = [k for k in METRICS_KEYS if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise DamagedRunError(f"{path}: lacks {', '.join(missing)}; expected {list(METRICS_KEYS)}")
    return metrics


def run_complete(run_dir: Path, *, warn: bool = True) -> bool:
    """Whether ``run_dir`` holds a finished run; a damaged ``metrics.json`` counts as not
    finished (a warning on stderr names it), so the run is trained again (resuming from its
    ``state.pt``) and the file replaced."""
    try:
        _read_metrics(Path(run_dir) / METRICS_FILE)
    except FileNotFoundError:
        return False
    except DamagedRunError as error:
        if warn:
            print(f"warning: {error}; the run is incomplete and is trained again", file=sys.stderr)
        return False
    return True


def load_run(run_dir: Path) -> RunResult:
    """Read a finished run directory.

    Raises:
        FileNotFoundError: the run is not complete (no ``metrics.json``).
        DamagedRunError: its ``metrics.json`` is damaged (``train`` trains the run again).
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / METRICS_FILE
    metrics = _read_metrics(metrics_path)
    for name in ("micro_ap", "macro_ap", "roc_auc"):  # strict JSON holds NaN as null
        metrics[name] = math.nan if metrics.get(name) is None else metrics[name]
    metrics["per_class_ap"] = {
        k: math.nan if v is None else v for k, v in metrics.get("per_class_ap", {}).items()
    }
    config = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    key = RunKey.from_dict(config["run"])
    log = pd.read_csv(run_dir / LOG_FILE)
    return RunResult(run_dir.name, run_dir, key, metrics, log, cached=True)


def _chance_fields(split: Split) -> dict[str, float]:
    """``metrics.json`` fields of the two audio-blind scorers (:func:`chance_levels`)."""
    chance = chance_levels(split.y_train, split.y_val)
    return {
        "chance_positive_share": chance.positive_share,
        "chance_class_frequency": chance.class_frequency,
        "chance_micro_ap": chance.micro_ap,
    }


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
        feature_path: use this feature file instead of the workspace's one for ``snr_db``.
        resume_from: a ``state.pt`` (or a run directory) of an interrupted run to continue
            from; it must hold the same model, size and variant.
        device: override ``profile.train.device``.
        progress: show a tqdm progress bar (stderr).
        wait: when another process is training the same run (same run id, same workspace),
            wait for it and return its result; ``False`` raises
            :class:`~paperlib.locking.LockedError` instead.

    Returns:
        The :class:`RunResult` of the finished run.

    Raises:
        MissingFeaturesError, FeatureFileError, FoldNotPresentError: bad feature file or fold.
        CheckpointMismatchError: ``resume_from`` (or a stale state in the run directory)
            holds another model or size; nothing is overwritten.
        CheckpointError: a ``state.pt`` that is truncated or not a training state.
        LockedError: another process trains this run and ``wait`` is false.
        ValueError: an unknown model name or device.
    """
    from paperlib.models import MODEL_NAMES
    from paperlib.training.data import feature_path_for_snr

    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; valid models: {', '.join(MODEL_NAMES)}")
    if seed is not None:
        from paperlib.config import replace

        profile = replace(profile, train={"seed": int(seed)})
    workspace = Path(workspace)
    feature_path = Path(feature_path) if feature_path else feature_path_for_snr(workspace, snr_db)
    _check_feature_snr(feature_path, snr_db)
    key = run_key(
        profile,
        model=model,
        snr_db=snr_db,
        fold=fold,
        features_sha256=_features_sha(feature_path),
        alpha=alpha,
        decoder_activation=decoder_activation,
    )
    # validates the file and the fold; pools the input to the model's resolution
    split = load_split(feature_path, fold, time_pool=key.time_pool, mel_pool=key.mel_pool)
    run_dir = key.run_dir(workspace)
    if run_complete(run_dir):
        return load_run(run_dir)
    from paperlib.locking import workspace_lock

    # one process per run directory: a second one waits, then finds the finished run
    with workspace_lock(workspace, f"run-{key.run_id}", what=f"run {key.run_id}", wait=wait):
        if run_complete(run_dir, warn=False):
            return load_run(run_dir)
        return _train_locked(
            profile, key, split, feature_path, run_dir, resume_from, device, progress
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
    from paperlib.models import build_model, save_model

    model = key.model
    cfg = profile.train
    dev = resolve_device(device or cfg.device)
    _set_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    net = build_model(
        model,
        num_classes=split.y_train.shape[1],
        time_steps=split.x_train.shape[1],
        mel_bins=split.x_train.shape[2],
        **key.model_kwargs(),
    )
    spec = _spec_dict(net)

    state: dict[str, Any] | None = None
    if resume_from is not None:
        resume_path = Path(resume_from)
        resume_path = resume_path / STATE_FILE if resume_path.is_dir() else resume_path
        if not resume_path.is_file():
            raise FileNotFoundError(f"checkpoint to resume from {resume_path} does not exist")
        state = _load_state(resume_path, spec, key.as_dict())
    elif (run_dir / STATE_FILE).is_file():
        state = _load_state(run_dir / STATE_FILE, spec, key.as_dict())

    run_dir.mkdir(parents=True, exist_ok=True)
    from paperlib.atomic import clean_orphans

    clean_orphans(run_dir)  # temporaries of a killed earlier attempt
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
            "device": str(dev),
            "precision": cfg.precision,
            "torch_threads": torch.get_num_threads(),
        },
    )
    return _fit(net, split, key, run_dir, state, dev, progress, save_model, cfg.eval_batch_size)


def _fit(
    net: torch.nn.Module,
    split: Split,
    key: RunKey,
    run_dir: Path,
    state: dict[str, Any] | None,
    dev: torch.device,
    progress: bool,
    save_model: Any,
    eval_batch: int,
) -> RunResult:
    cfg = key.train
    alpha = key.alpha
    net = prepare_model(net, dev)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="max", patience=cfg["lr_patience"], factor=cfg["lr_factor"]
    )
    rows: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "val_micro_ap": -math.inf}
    start_epoch = 1
    if state is not None:
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        rows = list(state["log"])
        best = dict(state["best"])
        start_epoch = int(state["epoch"]) + 1

    x_train = torch.from_numpy(split.x_train)
    y_train = torch.from_numpy(split.y_train)
    if dev.type == "cuda":
        x_train, y_train = x_train.to(dev), y_train.to(dev)
    epochs = int(cfg["epochs"])
    n_batches = math.ceil(len(x_train) / cfg["batch_size"])
    bar = progress_bar(
        progress=progress,
        total=epochs * n_batches,
        initial=(start_epoch - 1) * n_batches,
        desc=key.run_id,
        unit="batch",
        file=sys.stderr,
        mininterval=1.0,
        leave=False,
    )
    deterministic = torch.are_deterministic_algorithms_enabled()
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        for epoch in range(start_epoch, epochs + 1):
            started = time.perf_counter()
            lr = optimiser.param_groups[0]["lr"]
            generator = torch.Generator().manual_seed(cfg["seed"] * 1_000_003 + epoch)
            net.train()
            sums = np.zeros(3)
            train_scores, train_targets = [], []
            for idx in _batches(len(x_train), cfg["batch_size"], generator):
                idx = idx.to(x_train.device)
                x, y = x_train[idx], y_train[idx]
                out, loss, bce, mse = train_step(
                    net, optimiser, x, y, alpha=alpha, device=dev, precision=cfg["precision"]
                )
                sums += np.array([loss.item(), bce.item(), mse.item()]) * len(idx)
                train_scores.append(out["clip_probs"].detach().float().cpu())
                train_targets.append(y.cpu())
                bar.update()
            val_scores = predict(
                net, split.x_val, batch_size=eval_batch, device=dev, precision=cfg["precision"]
            )
            val = clip_metrics(split.y_val, val_scores)
            train_ap = clip_metrics(
                torch.cat(train_targets).numpy(),
                np.clip(torch.cat(train_scores).numpy(), 0.0, 1.0),
            ).micro_ap
            scheduler.step(val.micro_ap)
            loss_mean, bce_mean, mse_mean = sums / len(x_train)
            rows.append(
                {
                    "epoch": epoch,
                    "step": epoch * n_batches,
                    "bce": float(bce_mean),
                    "mse": float(mse_mean),
                    "loss": float(loss_mean),
                    "train_micro_ap": float(train_ap),
                    "val_micro_ap": val.micro_ap,
                    "val_macro_ap": val.macro_ap,
                    "val_auc": val.roc_auc,
                    "lr": float(lr),
                    "seconds": time.perf_counter() - started,
                }
            )
            if val.micro_ap > best["val_micro_ap"] or best["epoch"] == 0:
                save_model(run_dir / BEST_FILE, net)
                best = {
                    "epoch": epoch,
                    "val_micro_ap": val.micro_ap,
                    "micro_ap": val.micro_ap,
                    "macro_ap": val.macro_ap,
                    "roc_auc": val.roc_auc,
                    "per_class_ap": [float(v) for v in val.per_class_ap],
                }
            _torch_save(
                {
                    "epoch": epoch,
                    "run_key": key.as_dict(),
                    "spec": _spec_dict(net),
                    "model": net.state_dict(),
                    "optimizer": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "log": rows,
                    "best": best,
                },
                run_dir / STATE_FILE,
            )
            _write_log(run_dir, rows)
            bar.set_postfix(epoch=epoch, val_micro_ap=f"{val.micro_ap:.3f}")
    finally:
        bar.close()
        torch.use_deterministic_algorithms(deterministic)

    from paperlib.data.classes import CLASSES

    n_classes = len(best["per_class_ap"])
    classes = list(CLASSES) if n_classes == len(CLASSES) else [str(i) for i in range(n_classes)]
    metrics = {
        "run_id": key.run_id,
        "model": key.model,
        "snr_db": key.snr_db,
        "fold": key.fold,
        "alpha": key.alpha,
        "decoder_activation": key.decoder_activation,
        "best_epoch": best["epoch"],
        "epochs": len(rows),
        "micro_ap": best["micro_ap"],
        "macro_ap": best["macro_ap"],
        "roc_auc": best["roc_auc"],
        "per_class_ap": dict(zip(classes, best["per_class_ap"], strict=True)),
        "val_clips": len(split.y_val),
        "train_clips": len(split.y_train),
        "val_class_prior": float(split.y_val.mean()),
        **_chance_fields(split),
    }
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    return RunResult(key.run_id, run_dir, key, metrics, pd.DataFrame(rows), cached=False)
