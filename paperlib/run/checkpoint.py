"""The training state of a run (``state.pt``): written atomically, read back safely.

The state of the last completed epoch holds the model, optimiser, scheduler, RNG, log and best
epoch; it is read with ``torch.load(weights_only=True)``
(:func:`paperlib.models.checkpoint.load_torch_file`) and refused when it holds another model,
size or variant than the run trains.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from paperlib.models.checkpoint import CheckpointError, load_torch_file
from paperlib.run.provenance import atomic_write_bytes

__all__ = ["CheckpointMismatchError", "load_state", "save_state", "spec_dict"]


class CheckpointMismatchError(ValueError):
    """A checkpoint that belongs to another model, size or variant than the run asked for."""


def spec_dict(model: torch.nn.Module) -> dict[str, Any]:
    """The model's :class:`~paperlib.models.ModelSpec` as a plain dict (stored in the state)."""
    spec = model.spec
    return {k: getattr(spec, k) for k in spec.__dataclass_fields__}


def _describe(spec: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(spec.items()))


def save_state(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` of ``payload`` to ``path``, atomically (fsynced)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(path: Path, expected_spec: dict[str, Any]) -> dict[str, Any]:
    """Read a training state and check it holds a model with ``expected_spec``.

    Raises:
        CheckpointError: truncated, unreadable or not a training state.
        CheckpointMismatchError: a state of another model, size or variant.
    """
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
    return state
