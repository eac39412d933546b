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


def load_state(
    path: Path, expected_spec: dict[str, Any], expected_key: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Read a training state and check it holds a model with ``expected_spec`` and, when the
    state records one (every state written since run keys are stored), the run key
    ``expected_key``.

    Raises:
        CheckpointError: truncated, unreadable or not a training state.
        CheckpointMismatchError: a state of another model, size or variant, or of another run
            (the differing fields are named, e.g. ``train.seed: 0 in the state, 7 here``).
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
    # a state without a run key (written before keys were stored) is accepted on its spec alone
    found_key = state.get("run_key")
    if expected_key is not None and isinstance(found_key, dict) and found_key != expected_key:
        flat_found, flat_expected = _flat(found_key), _flat(expected_key)
        differing = [
            f"{k}: {flat_found.get(k)!r} in the state, {flat_expected.get(k)!r} here"
            for k in sorted(set(flat_found) | set(flat_expected))
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
