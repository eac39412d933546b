"""The training loop of one run: epochs of :func:`~paperlib.run.recipe.train_step`, validation,
the best-epoch checkpoint and a resumable state after every epoch.

ReduceLROnPlateau (mode max) on the validation micro-AP, a fixed number of epochs, and the
checkpoint of the epoch with the best validation micro-AP, measured on the held-out fold that is
also reported (an optimistic protocol, kept to compare with the paper). Shuffling uses a
generator seeded per epoch and the RNG state travels in ``state.pt``, so on CPU a resumed run
ends with exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from paperlib.config import epochs_for_budget
from paperlib.data.classes import CLASSES
from paperlib.metrics import ClipMetrics, chance_levels, clip_metrics, micro_ap
from paperlib.models import save_model
from paperlib.progress import progress_bar
from paperlib.run.checkpoint import save_state, spec_dict
from paperlib.run.features import Split
from paperlib.run.key import RunKey
from paperlib.run.provenance import atomic_write_json
from paperlib.run.recipe import batches, predict, prepare_model, train_step
from paperlib.run.result import BEST_FILE, METRICS_FILE, STATE_FILE, RunResult, write_log

__all__ = ["EpochLoss", "History", "fit", "run_metrics", "train_epoch"]


@dataclass
class History:
    """What a run has done so far: the log rows and the best epoch (restored on resume)."""

    rows: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "val_micro_ap": -math.inf})


@dataclass(frozen=True)
class EpochLoss:
    """Means over one epoch's clips: ``loss``, ``bce``, ``mse`` and the training micro-AP."""

    loss: float
    bce: float
    mse: float
    train_micro_ap: float


def _optimiser(
    net: torch.nn.Module, train: dict[str, Any]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau]:
    """Adam (no weight decay) and ReduceLROnPlateau (mode max on validation micro-AP)."""
    optimiser = torch.optim.Adam(net.parameters(), lr=train["lr"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="max", patience=train["lr_patience"], factor=train["lr_factor"]
    )
    return optimiser, scheduler


def _restore(
    state: dict[str, Any] | None,
    net: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
) -> tuple[History, int]:
    """Load a saved state into the model, optimiser, scheduler and RNG: (history, first epoch)."""
    if state is None:
        return History(), 1
    net.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return History(list(state["log"]), dict(state["best"])), int(state["epoch"]) + 1


def train_epoch(
    net: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    alpha: float,
    device: torch.device,
    precision: str,
    on_batch: Any = None,
) -> EpochLoss:
    """One pass over the training clips (shuffled by ``generator``) with :func:`train_step`.

    Args:
        x_train: (N, T, F) standardised inputs; y_train: (N, K) weak targets (same device).
        on_batch: called after every batch (e.g. a progress bar's ``update``).
    """
    net.train()
    sums = np.zeros(3)
    train_scores, train_targets = [], []
    for idx in batches(len(x_train), batch_size, generator):
        idx = idx.to(x_train.device)
        x, y = x_train[idx], y_train[idx]
        out, loss, bce, mse = train_step(
            net, optimiser, x, y, alpha=alpha, device=device, precision=precision
        )
        sums += np.array([loss.item(), bce.item(), mse.item()]) * len(idx)
        train_scores.append(out["clip_probs"].detach().float().cpu())
        train_targets.append(y.cpu())
        if on_batch is not None:
            on_batch()
    train_ap = micro_ap(
        torch.cat(train_targets).numpy(), np.clip(torch.cat(train_scores).numpy(), 0.0, 1.0)
    )
    loss_mean, bce_mean, mse_mean = sums / len(x_train)
    return EpochLoss(float(loss_mean), float(bce_mean), float(mse_mean), float(train_ap))


def _log_row(
    epoch: int, steps: int, losses: EpochLoss, val: ClipMetrics, lr: float, seconds: float
) -> dict[str, float]:
    return {
        "epoch": epoch,
        "step": steps,
        "bce": losses.bce,
        "mse": losses.mse,
        "loss": losses.loss,
        "train_micro_ap": losses.train_micro_ap,
        "val_micro_ap": val.micro_ap,
        "val_macro_ap": val.macro_ap,
        "val_auc": val.roc_auc,
        "lr": float(lr),
        "seconds": seconds,
    }


def _best(epoch: int, val: ClipMetrics) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "val_micro_ap": val.micro_ap,
        "micro_ap": val.micro_ap,
        "macro_ap": val.macro_ap,
        "roc_auc": val.roc_auc,
        "per_class_ap": [float(v) for v in val.per_class_ap],
    }


def run_metrics(key: RunKey, split: Split, history: History) -> dict[str, Any]:
    """The contents of ``metrics.json``: the best epoch's metrics, the split's sizes, the class
    prior of the held-out fold and the chance levels (:func:`paperlib.metrics.chance_levels`)."""
    best = history.best
    n_classes = len(best["per_class_ap"])
    classes = list(CLASSES) if n_classes == len(CLASSES) else [str(i) for i in range(n_classes)]
    chance = chance_levels(split.y_train, split.y_val)
    return {
        "run_id": key.run_id,
        "model": key.model,
        "snr_db": key.snr_db,
        "fold": key.fold,
        "alpha": key.alpha,
        "decoder_activation": key.decoder_activation,
        "onsets": key.onsets,
        "best_epoch": best["epoch"],
        "epochs": len(history.rows),
        "micro_ap": best["micro_ap"],
        "macro_ap": best["macro_ap"],
        "roc_auc": best["roc_auc"],
        "per_class_ap": dict(zip(classes, best["per_class_ap"], strict=True)),
        "val_clips": len(split.y_val),
        "train_clips": len(split.y_train),
        "val_class_prior": float(split.y_val.mean()),
        "chance_positive_share": chance.positive_share,
        "chance_class_frequency": chance.class_frequency,
        "chance_micro_ap": chance.micro_ap,
    }


def fit(
    net: torch.nn.Module,
    split: Split,
    key: RunKey,
    run_dir: Path,
    state: dict[str, Any] | None,
    device: torch.device,
    *,
    progress: bool,
    eval_batch_size: int,
) -> RunResult:
    """Train ``net`` for the epochs of ``key.train`` left after ``state`` (``None``: from the
    first), writing ``best.pt``, ``state.pt`` and ``log.csv`` after every epoch and
    ``metrics.json`` at the end."""
    cfg = key.train
    net = prepare_model(net, device)
    optimiser, scheduler = _optimiser(net, cfg)
    history, start_epoch = _restore(state, net, optimiser, scheduler)
    x_train, y_train = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    if device.type == "cuda":
        x_train, y_train = x_train.to(device), y_train.to(device)
    n_batches = math.ceil(len(x_train) / cfg["batch_size"])
    epochs = epochs_for_budget(cfg.get("epochs", 0), cfg.get("steps"), n_batches)
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
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        for epoch in range(start_epoch, epochs + 1):
            started = time.perf_counter()
            lr = optimiser.param_groups[0]["lr"]
            losses = train_epoch(
                net,
                optimiser,
                x_train,
                y_train,
                batch_size=cfg["batch_size"],
                generator=torch.Generator().manual_seed(cfg["seed"] * 1_000_003 + epoch),
                alpha=key.alpha,
                device=device,
                precision=cfg["precision"],
                on_batch=bar.update,
            )
            val_scores = predict(
                net, split.x_val, batch_size=eval_batch_size, device=device,
                precision=cfg["precision"],
            )  # fmt: skip
            val = clip_metrics(split.y_val, val_scores)
            scheduler.step(val.micro_ap)
            seconds = time.perf_counter() - started
            history.rows.append(_log_row(epoch, epoch * n_batches, losses, val, lr, seconds))
            if val.micro_ap > history.best["val_micro_ap"] or history.best["epoch"] == 0:
                save_model(run_dir / BEST_FILE, net)
                history.best = _best(epoch, val)
            save_state(
                {
                    "epoch": epoch,
                    "run_key": key.as_dict(),
                    "spec": spec_dict(net),
                    "model": net.state_dict(),
                    "optimizer": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "log": history.rows,
                    "best": history.best,
                },
                run_dir / STATE_FILE,
            )
            write_log(run_dir, history.rows)
            bar.set_postfix(epoch=epoch, val_micro_ap=f"{val.micro_ap:.3f}")
    finally:
        bar.close()
        torch.use_deterministic_algorithms(deterministic)
    metrics = run_metrics(key, split, history)
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    return RunResult(key.run_id, run_dir, key, metrics, pd.DataFrame(history.rows), cached=False)
