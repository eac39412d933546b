"""Starting each class at its prior (``train.init: prior``), a departure from the paper's init.

With the authors' initialisation (``train.init: paper``) GMP starts far from the class
frequencies (its clip probabilities start near 0.9 for classes present in ~7 % of the clips:
the maximum over 77 x 16 positions of a randomly weighted sigmoid map) and sits at chance for
its first ~450 optimiser steps (pocket, 0 dB). ``prior`` sets the last per-class layer so that
every clip's probability starts at the class prior of the *training* split, where that was
measured to help, and leaves every other weight as the paper's initialisation drew it. What
each model changes is its :meth:`~paperlib.models.SEDModel.start_at_prior`; the evidence is in
``benchmarks/results/pocket_speed_exploration.csv`` (pocket, 0 dB, fold 1, bf16, seed 0):

* GMP: the class convolution's weight is zeroed and its bias set to ``logit(prior)``: every
  class map is the constant ``prior`` and so is every clip probability. It reached 3x chance
  after 247 steps instead of 950, and a best micro-AP of 0.45 instead of 0.25 in 1,140 steps.
  (The bias alone is not enough: the maximum of a randomly weighted map starts near 0.6 even
  when the map's typical value is the prior.)
* GAP, GWRP: unchanged. They start near 0.5 with smooth maps and no plateau; the same zeroed
  weight and prior bias slowed GAP (3x chance after 722 steps instead of 608, best 0.23
  instead of 0.28 within 817).
* 2APAE: unchanged. Step 2's classification layer (``Linear(T, T)``) is shared by the
  classes, so only the mean prior can be set there; its bias at ``logit(mean prior)`` started
  the clip probabilities at the mean prior but slowed learning (pocket, 0 dB, bf16: best
  micro-AP 0.41 instead of 0.60 within 1,140 steps; see
  ``benchmarks/results/pocket_speed_exploration.csv``), so the paper's init stays. It learns
  without a plateau from that init anyway.
* Atrous AP: unchanged. Its clip probability is ``sigmoid(sum of attention x log-softmax over
  classes)``; with class maps that do not yet vary over T x F the log-softmax sums to one over
  the K classes, so it cannot start at priors whose odds sum above one (41 classes at ~7 %:
  sum of odds ~3); the paper's init already starts it low (~0.02).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["class_prior", "start_at_prior"]


def class_prior(targets: np.ndarray) -> np.ndarray:
    """Share of training clips in which each class is present, kept half a clip from 0 and 1.

    Args:
        targets: (N, K) binary weak labels of the training split.

    Returns:
        (K,) float64 prior in ``[0.5 / N, 1 - 0.5 / N]`` (a class absent from, or present in
        every, training clip gets a finite logit).

    Raises:
        ValueError: ``targets`` is not a non-empty 2-D array of 0s and 1s.
    """
    targets = np.asarray(targets)
    if targets.ndim != 2 or targets.shape[0] == 0 or targets.shape[1] == 0:
        raise ValueError(
            f"class prior: expected training targets of shape (clips, classes), got {targets.shape}"
        )
    if not np.all(np.isin(targets, (0, 1))):
        raise ValueError("class prior: training targets must be 0 or 1 (weak clip labels)")
    half = 0.5 / targets.shape[0]
    return np.clip(targets.mean(axis=0, dtype=np.float64), half, 1.0 - half)


def start_at_prior(model: nn.Module, prior: np.ndarray) -> nn.Module:
    """Set ``model``'s last per-class layer so that it starts at ``prior`` (see the module).

    Call it right after :func:`~paperlib.models.build_model` (it draws no random numbers).

    Args:
        model: a paperlib model (a :class:`~paperlib.models.SEDModel`).
        prior: (K,) class priors strictly between 0 and 1 (:func:`class_prior`).

    Returns:
        ``model``, changed in place.

    Raises:
        ValueError: ``prior`` has the wrong length or a value outside (0, 1).
        NotImplementedError: a model that does not define ``start_at_prior``.
    """
    prior = np.asarray(prior, dtype=np.float64)
    num_classes = model.spec.num_classes
    if prior.shape != (num_classes,):
        raise ValueError(
            f"{model.spec.name}: expected a prior for each of its {num_classes} classes, "
            f"got an array of shape {prior.shape}"
        )
    if not np.all((prior > 0.0) & (prior < 1.0)):
        raise ValueError(f"{model.spec.name}: class priors must lie strictly between 0 and 1")
    logit = torch.from_numpy(np.log(prior) - np.log1p(-prior)).float()
    with torch.no_grad():
        model.start_at_prior(logit)
    return model
