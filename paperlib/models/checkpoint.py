"""Checkpoint I/O: a state_dict plus the model's spec, never a pickled module."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperlib import atomic
from paperlib.models.registry import build_model_from_spec
from paperlib.models.spec import ModelSpec

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout ``{"format", "spec", "state_dict", "extra"}``."""


class CheckpointError(ValueError):
    """A checkpoint file that is malformed or does not match the expected model."""


def save_model(path: str | Path, model: nn.Module, *, extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"format", "spec", "state_dict", "extra"}`` to ``path`` atomically.

    Args:
        path: destination file (its folder is created).
        model: a model built by :func:`~paperlib.models.build_model` (it has ``.spec``).
        extra: optional small metadata (plain numbers/strings/lists/dicts only, so the file
            stays loadable with ``weights_only=True``).

    Returns:
        The path written.
    """
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise CheckpointError(
            f"cannot save {type(model).__name__} to {path}: it has no ModelSpec in .spec "
            "(build it with paperlib.models.build_model)"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "spec": spec.to_dict(),
        "state_dict": state,
        "extra": dict(extra or {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic.write_bytes(path, buffer.getvalue())


def load_torch_file(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one clear error for a bad file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, not a torch file, or holds objects other than
            tensors and plain containers; the message names the file and never suggests
            loading it unsafely.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        reason = "it holds objects other than tensors and plain containers, which are not loaded"
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = f"truncated or not a torch file: {first}"
    raise CheckpointError(f"{path}: not a readable paperlib checkpoint ({reason})")


def read_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load the raw checkpoint dict with ``torch.load(weights_only=True)`` and check its layout.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not a paperlib checkpoint.
    """
    path = Path(path)
    payload = load_torch_file(path, map_location=map_location)
    if not isinstance(payload, dict) or not {"spec", "state_dict"} <= set(payload):
        raise CheckpointError(f"{path}: expected a dict with 'spec' and 'state_dict'")
    return payload


def load_model(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    spec: ModelSpec | None = None,
) -> nn.Module:
    """Rebuild the model stored at ``path`` (in eval mode).

    Args:
        path: a file written by :func:`save_model`.
        map_location: device for the tensors.
        spec: if given, the stored spec must equal it (guards against loading, say, a pocket
            checkpoint where a paper-size model is expected).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: malformed file, a stored spec that differs from ``spec`` (the differing
            fields are listed), or weights that do not fit the stored spec.
    """
    payload = read_checkpoint(path, map_location=map_location)
    try:
        stored = ModelSpec.from_dict(payload["spec"])
    except ValueError as error:
        raise CheckpointError(f"{path}: invalid stored spec ({error})") from error
    if spec is not None and stored != spec:
        diffs = [
            f"{k}: file has {v!r}, expected {spec.to_dict()[k]!r}"
            for k, v in stored.to_dict().items()
            if spec.to_dict()[k] != v
        ]
        raise CheckpointError(f"{path}: checkpoint spec does not match; {'; '.join(diffs)}")
    model = build_model_from_spec(stored)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit spec {stored}: {error}") from error
    return model.to(map_location).eval()
