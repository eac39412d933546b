"""A run directory's files and the finished run read back from it (:class:`RunResult`).

Run directory (``paths.runs_dir(ws)/<run id>``, named by :mod:`paperlib.run.key`)::

    config.yaml      the full profile plus the run key
    provenance.json  versions, git commit, feature file and its SHA-256, device, precision
    log.csv          one row per completed epoch (LOG_COLUMNS)
    state.pt         last completed epoch: model, optimiser, scheduler, RNG, log, best
    best.pt          model of the best epoch (paperlib.models.save_model)
    metrics.json     best-epoch metrics; written last, it marks the run complete
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from paperlib.run.key import RunKey
from paperlib.run.provenance import atomic_write_text

__all__ = [
    "BEST_FILE",
    "CONFIG_FILE",
    "LOG_COLUMNS",
    "LOG_FILE",
    "METRICS_FILE",
    "PROVENANCE_FILE",
    "STATE_FILE",
    "RunResult",
    "is_complete",
    "load_run",
    "write_log",
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


@dataclass(frozen=True)
class RunResult:
    """A finished run.

    Attributes:
        run_id: ``<model>-snr<S>-fold<k>-<hash>``.
        run_dir: its directory.
        key: the :class:`~paperlib.run.key.RunKey`.
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


METRICS_KEYS: tuple[str, ...] = ("best_epoch", "epochs", "micro_ap", "macro_ap", "roc_auc")
"""Keys every complete ``metrics.json`` holds."""


class DamagedRunError(ValueError):
    """A run whose ``metrics.json`` is not valid JSON or lacks keys (the message names it)."""


def read_metrics(path: Path) -> dict[str, Any]:
    """The contents of a ``metrics.json``.

    Raises:
        FileNotFoundError: there is none (the run is not complete).
        DamagedRunError: not a JSON object with :data:`METRICS_KEYS`.
    """
    path = Path(path)
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


def is_complete(run_dir: Path, *, warn: bool = True) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``metrics.json``, written last).

    A damaged ``metrics.json`` counts as not finished (with ``warn``, a line on stderr names
    it), so the run is trained again (resuming from its ``state.pt``) and the file replaced.
    """
    try:
        read_metrics(Path(run_dir) / METRICS_FILE)
    except FileNotFoundError:
        return False
    except DamagedRunError as error:
        if warn:
            print(f"warning: {error}; the run is incomplete and is trained again", file=sys.stderr)
        return False
    return True


def write_log(run_dir: Path, rows: list[dict[str, float]]) -> None:
    """Write ``log.csv`` (one row per completed epoch, :data:`LOG_COLUMNS`) atomically."""
    table = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    atomic_write_text(Path(run_dir) / LOG_FILE, table.to_csv(index=False))


def load_run(run_dir: Path) -> RunResult:
    """Read a finished run directory.

    Raises:
        FileNotFoundError: the run is not complete (no ``metrics.json``).
        DamagedRunError: its ``metrics.json`` is damaged (``train`` trains the run again).
    """
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir / METRICS_FILE)
    for name in ("micro_ap", "macro_ap", "roc_auc"):  # strict JSON holds NaN as null
        metrics[name] = math.nan if metrics.get(name) is None else metrics[name]
    metrics["per_class_ap"] = {
        k: math.nan if v is None else v for k, v in metrics.get("per_class_ap", {}).items()
    }
    config = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    key = RunKey.from_dict(config["run"])
    log = pd.read_csv(run_dir / LOG_FILE)
    return RunResult(run_dir.name, run_dir, key, metrics, log, cached=True)
