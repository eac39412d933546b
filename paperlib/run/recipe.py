"""The training recipe: the loss, one optimisation step and scoring (chapter 3 of the book).

Recipe (authors' code, REFERENCE_FACTS "Training"): Adam (lr 1e-3, no weight decay), batches
of 24 clips, loss ``BCE(clip_probs, weak targets) + α · MSE(reconstruction, standardised
input)`` (α only for 2APAE)::

    from paperlib.run import loss_terms, train_step
    out, loss, bce, mse = train_step(net, optimiser, x, y, alpha=0.001, device=device)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from paperlib.run.precision import Precision

__all__ = [
    "batches",
    "loss_terms",
    "predict",
    "prepare_model",
    "resolve_device",
    "train_step",
]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device is {name!r} but no CUDA device is available; use cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"train.device must be auto, cpu or cuda[:N]; got {name!r}")
    return torch.device(name)


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Indices of ``n`` clips in batches of ``batch_size``: shuffled by ``generator``, or in
    order when it is ``None``; the last batch may be smaller."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def loss_terms(
    out: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, bce, mse)``: BCE on clip probabilities plus α·MSE(reconstruction, input).

    Args:
        out: the model's outputs: ``clip_probs`` (B, K) and, for 2APAE, ``reconstruction``
            (B, T, F).
        x: (B, T, F) the standardised input the reconstruction is compared with.
        y: (B, K) weak targets in {0, 1}.
        alpha: weight of the MSE; a model without ``reconstruction`` has ``mse = 0`` and
            ``loss = bce``.

    Returns:
        Three scalar float32 tensors (``mse`` unweighted).
    """
    probs = out["clip_probs"].float().clamp(0.0, 1.0)
    bce = F.binary_cross_entropy(probs, y)
    decoder = "reconstruction" in out
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
        precision: ``fp32``, ``tf32`` or ``bf16`` (see :mod:`paperlib.run.precision`).

    Returns:
        ``(outputs, loss, bce, mse)``.
    """
    scope = Precision(precision, device)
    with scope.backends():
        with scope.autocast():
            out = net(x)
        loss, bce, mse = loss_terms(out, x, y, alpha)
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
        precision: ``fp32``, ``tf32`` or ``bf16`` (see :mod:`paperlib.run.precision`).

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
        for idx in batches(len(xs), batch_size, None):
            batch = xs[idx].to(device, non_blocking=True)
            with scope.autocast():
                outs.append(model(batch)["clip_probs"].float().cpu())
    model.train(was_training)
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)
