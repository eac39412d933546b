"""Training on this machine: the pocket setting against the previous one, in speed and learning.

Two parts, in one run:

1. **Steps/s** of one training step (forward, backward, Adam; one torch thread, the pocket's
   width, batch and pooled input) for every model, in the *previous* setting (fp32) and in the
   pocket profile's precision, plus a plain authors'-style fp32 loop (``DataLoader``,
   ``nn.AvgPool2d``) as the outside baseline; and the cost of scoring one validation epoch
   with :func:`paperlib.metrics.clip_metrics` against scikit-learn's functions (the library's
   implementation before the speed change). Each change's effect is a ratio against a
   baseline measured in the same run.
2. **Learning**: every model trained on the pocket corpus (``--snr``, ``--fold``) in the
   *previous* setting (fp32, the paper's init, 60 epochs = 1,140 steps), in the *pocket*
   profile as shipped, and in the pocket profile with each kept learning change reverted
   alone (``init``, for the models it changes; ``precision``): steps until the validation micro-AP first reaches 3x chance
   (*time to learned*, from ``log.csv``), the best micro-AP, the steps trained and the run's
   wall seconds. The runs are ordinary cached runs of the workspace (the pocket ones are the
   book's own cells), ``--workers`` at a time, one thread each, so a second call reports
   without training. The step budget's effect is exact by construction (steps trained); the
   runs are deterministic on the CPU, their seconds are not (measure on a quiet machine).

    python -m benchmarks training                       # everything (~20 min on 2 cores)
    python -m benchmarks.bench_training --steps 3 --budget 38 --workspace /tmp/ws  # smoke
    python -m benchmarks.bench_training --device cuda --paper   # paper size on a GPU

The learning part needs the pocket features of ``--snr`` in the workspace (``python -m paperlib
data all``); without them it says so and stops after part 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from paperlib import paths
from paperlib.config import Profile, load_profile, profile_with_overrides
from paperlib.data.features import N_FRAMES, N_MELS
from paperlib.models import MODEL_NAMES, build_model
from paperlib.models.blocks import SmoothingPool
from paperlib.run.recipe import prepare_model, train_step

PREVIOUS: dict[str, Any] = {
    "train.precision": "fp32",
    "train.init": "paper",
    "train.steps": None,
    "train.steps_by_model": {},
    "train.epochs": 60,
}
"""The pocket profile's training before the speed change (commit e1c1f77): 1,140 steps."""

REVERTIBLE = ("train.init", "train.precision")
"""Kept learning changes whose effect is measured by reverting each alone (the step budget's
effect needs no run: the steps trained are the budget)."""


@dataclass(frozen=True)
class Setting:
    """Model size and input of one timing case."""

    width: float
    time_steps: int
    mel_bins: int
    batch: int


def pocket_setting(profile: Profile) -> Setting:
    return Setting(
        profile.model.width,
        N_FRAMES // profile.model.time_pool,
        N_MELS // profile.model.mel_pool,
        profile.train.batch_size,
    )


def _batch(setting: Setting, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(setting.batch, setting.time_steps, setting.mel_bins, generator=g)
    y = (torch.rand(setting.batch, 41, generator=g) < 3 / 41).float()
    return x, y


def _model(name: str, setting: Setting) -> nn.Module:
    torch.manual_seed(0)
    return build_model(
        name, time_steps=setting.time_steps, mel_bins=setting.mel_bins, width=setting.width
    )


def steps_per_second(
    name: str,
    setting: Setting,
    steps: int,
    device: torch.device,
    precision: str | None = None,
    *,
    warmup: int = 2,
    before_timing: Callable[[], object] | None = None,
) -> float:
    """Steps/s of our ``train_step`` over ``steps`` steps, after ``warmup`` warm-up steps.

    Args:
        precision: ``fp32``, ``tf32`` or ``bf16`` (default: ``bf16`` on CUDA, ``fp32`` on CPU).
        before_timing: called after the warm-up, before the clock starts (e.g. a barrier, so
            that processes measured side by side start their timed steps together).
    """
    net = prepare_model(_model(name, setting), device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = (t.to(device) for t in _batch(setting))
    if precision is None:
        precision = "bf16" if device.type == "cuda" else "fp32"
    for i in range(steps + warmup):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if before_timing is not None:
                before_timing()
            start = time.perf_counter()
        train_step(net, opt, x, y, alpha=0.001, device=device, precision=precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - start)


def _with_torch_pooling(module: nn.Module) -> nn.Module:
    for child_name, child in module.named_children():
        if isinstance(child, SmoothingPool):
            setattr(module, child_name, nn.AvgPool2d(3, stride=1, padding=1))
        else:
            _with_torch_pooling(child)
    return module


def plain_steps_per_second(name: str, setting: Setting, steps: int) -> float:
    """Steps/s of the authors'-style fp32 loop: DataLoader, ``nn.AvgPool2d`` (CPU)."""
    net = _with_torch_pooling(_model(name, setting))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = _batch(setting)
    data = torch.utils.data.TensorDataset(x.repeat(steps + 2, 1, 1), y.repeat(steps + 2, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=setting.batch, shuffle=True)
    for i, (xb, yb) in enumerate(loader):
        if i == 2:
            start = time.perf_counter()
        out = net(xb)
        loss = F.binary_cross_entropy(out["clip_probs"].clamp(0, 1), yb)
        if "reconstruction" in out:
            loss = loss + 0.001 * F.mse_loss(out["reconstruction"], xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def _sklearn_epoch_scores(
    y_val: np.ndarray, s_val: np.ndarray, y_tr: np.ndarray, s_tr: np.ndarray
) -> None:
    """What the trainer computed per epoch before: scikit-learn's micro-AP and per-class AP
    and ROC-AUC, of the validation and of the training scores."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    for y, s in ((y_val, s_val), (y_tr, s_tr)):
        average_precision_score(y, s, average="micro")
        for k in range(y.shape[1]):
            average_precision_score(y[:, k], s[:, k])
            roc_auc_score(y[:, k], s[:, k])


def _ours_epoch_scores(
    y_val: np.ndarray, s_val: np.ndarray, y_tr: np.ndarray, s_tr: np.ndarray
) -> None:
    """What the trainer computes per epoch now: full metrics of validation, micro-AP of training."""
    from paperlib.metrics import clip_metrics, micro_ap

    clip_metrics(y_val, s_val)
    micro_ap(y_tr, s_tr)


def scoring_seconds(profile: Profile, repeats: int) -> tuple[float, float]:
    """(ours, scikit-learn) seconds of one epoch's scoring at the pocket's fold sizes."""
    rng = np.random.default_rng(0)
    n_val = profile.data.mixtures_per_fold
    arrays = []
    for n in (n_val, 3 * n_val):
        y = (rng.random((n, 41)) < 3 / 41).astype(np.float32)
        y[0] = 1
        arrays += [y, rng.random((n, 41)).astype(np.float32)]
    timings = []
    for fn in (_ours_epoch_scores, _sklearn_epoch_scores):
        fn(*arrays)
        start = time.perf_counter()
        for _ in range(repeats):
            fn(*arrays)
        timings.append((time.perf_counter() - start) / repeats)
    return timings[0], timings[1]


def _one_process(args: tuple[str, Setting, int, int, str]) -> float:
    name, setting, steps, threads, precision = args
    torch.set_num_threads(threads)
    return steps_per_second(name, setting, steps, torch.device("cpu"), precision)


def thread_settings(
    name: str, setting: Setting, steps: int, precision: str
) -> list[tuple[str, float]]:
    """Total steps/s of ``name`` with 1 process x 1 thread, 1 x 2 threads, 2 x 1 thread."""
    context = multiprocessing.get_context("spawn")
    rows = []
    for label, processes, threads in (
        ("1 process x 1 thread", 1, 1),
        ("1 process x 2 threads", 1, 2),
        ("2 processes x 1 thread (grid.workers: 2)", 2, 1),
    ):
        with context.Pool(processes) as pool:
            rates = pool.map(_one_process, [(name, setting, steps, threads, precision)] * processes)
        rows.append((label, sum(rates)))
    return rows


# --- learning ------------------------------------------------------------------------------


def learning_settings(profile: Profile, budget: int | None) -> dict[str, dict[str, Any]]:
    """Label -> ``--set`` overrides of the pocket profile, for the learning runs.

    ``previous`` (:data:`PREVIOUS`), ``pocket`` (as shipped) and ``pocket, <field> as before``
    for each field of :data:`REVERTIBLE` in which the pocket differs from ``previous``.
    ``budget`` (smoke tests) replaces every setting's step budget.
    """
    shipped = {key: getattr(profile.train, key.split(".")[1]) for key in REVERTIBLE}
    settings: dict[str, dict[str, Any]] = {"previous": dict(PREVIOUS), "pocket": {}}
    for key in REVERTIBLE:
        if shipped[key] != PREVIOUS[key]:
            settings[f"pocket, {key.split('.')[1]} {PREVIOUS[key]}"] = {key: PREVIOUS[key]}
    if budget is not None:
        settings = {
            k: {**v, "train.steps": budget, "train.steps_by_model": {}} for k, v in settings.items()
        }
    return settings


@dataclass(frozen=True)
class Learning:
    """One learning run's summary."""

    label: str
    model: str
    steps_to_learned: int | None
    best_micro_ap: float
    chance: float
    steps: int
    seconds: float


def steps_to_learned(log: Any, chance: float, factor: float = 3.0) -> int | None:
    """Optimiser steps at the end of the first epoch whose validation micro-AP >= factor x
    chance (``None`` if never): from a run's ``log.csv`` table."""
    hit = log[log["val_micro_ap"] >= factor * chance]
    return None if hit.empty else int(hit["step"].iloc[0])


def _learn(task: tuple[str, dict[str, Any], str, str, int, int]) -> Learning:
    from paperlib.run import train_run

    label, overrides, model, workspace, snr, fold = task
    profile = profile_with_overrides(
        load_profile("pocket"), {**overrides, "train.num_threads": 1, "train.device": "cpu"}
    )
    result = train_run(profile, Path(workspace), model=model, snr_db=snr, fold=fold, progress=False)
    chance = float(result.metrics["chance_micro_ap"])
    return Learning(
        label,
        model,
        steps_to_learned(result.log, chance),
        float(result.metrics["micro_ap"]),
        chance,
        int(result.log["step"].iloc[-1]),
        float(result.log["seconds"].sum()),
    )


def prior_changes(name: str, setting: Setting) -> bool:
    """Whether ``train.init: prior`` changes any weight of ``name`` (else its run with the
    paper's init is the same computation as the pocket run and is not trained again)."""
    from paperlib.models.prior import start_at_prior

    before = _model(name, setting).state_dict()
    after = start_at_prior(_model(name, setting), np.full(41, 3 / 41)).state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)


def learning(
    profile: Profile,
    models: list[str],
    workspace: Path,
    *,
    snr: int,
    fold: int,
    workers: int,
    budget: int | None,
) -> list[Learning]:
    """Train (or read from the cache) every model in every :func:`learning_settings`."""
    setting = pocket_setting(profile)
    same = {m for m in models if not prior_changes(m, setting)}
    tasks, copies = [], []
    for label, overrides in learning_settings(profile, budget).items():
        for model in models:
            if label != "previous" and overrides.get("train.init") == "paper" and model in same:
                copies.append((label, model))  # = the pocket run: init prior leaves it as is
            else:
                tasks.append((label, overrides, model, str(workspace), snr, fold))
    tasks.sort(key=lambda t: t[2] != "2APAE")  # the longest runs first
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        results = pool.map(_learn, tasks, chunksize=1)
    pocket = {r.model: r for r in results if r.label == "pocket"}
    for label, model in copies:
        results.append(dataclasses.replace(pocket[model], label=label + " (= pocket)"))
    return results


def _print_learning(results: list[Learning], models: list[str]) -> None:
    by = {(r.label.removesuffix(" (= pocket)"), r.model): r for r in results}
    labels = list(dict.fromkeys(label for label, _ in by))
    print(
        f"{'model':8} {'setting':32} {'steps to 3x chance':>18} {'best micro-AP':>13} "
        f"{'x chance':>8} {'steps':>6} {'run s':>7} {'steps/previous':>14} {'s/previous':>10}"
    )
    for model in models:
        base = by[("previous", model)]
        for label in labels:
            r = by[(label, model)]
            shown = r.label
            learned = "never" if r.steps_to_learned is None else str(r.steps_to_learned)
            print(
                f"{model:8} {shown:32} {learned:>18} {r.best_micro_ap:13.3f} "
                f"{r.best_micro_ap / r.chance:8.1f} {r.steps:6d} {r.seconds:7.0f} "
                f"{r.steps / base.steps:14.2f} {r.seconds / base.seconds:10.2f}"
            )
    chance = results[0].chance
    print(
        f"chance (micro-AP of the training class frequencies) {chance:.4f}; 3x = {3 * chance:.3f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per speed case")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (speed only)")
    parser.add_argument("--paper", action="store_true", help="paper size on --device, speed only")
    parser.add_argument("--workspace", type=Path, default=None, help="default: the pocket's")
    parser.add_argument("--snr", type=int, default=0, help="SNR of the learning runs")
    parser.add_argument("--fold", type=int, default=1, help="held-out fold of the learning runs")
    parser.add_argument("--workers", type=int, default=2, help="learning runs at once")
    parser.add_argument(
        "--budget", type=int, default=None, help="steps of every learning run (smoke)"
    )
    parser.add_argument("--no-learning", action="store_true", help="part 1 only")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    device = torch.device(args.device)
    print(
        f"device {device}, cpu cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start"
    )
    if args.paper:
        paper = Setting(1.0, N_FRAMES, N_MELS, 24)
        for name in models:
            rate = steps_per_second(name, paper, args.steps, device, "bf16")
            print(
                f"paper size {name:8}: {rate:6.2f} steps/s {rate * paper.batch:8.1f} clips/s (bf16)"
            )
        return
    profile = load_profile("pocket")
    precision = profile.train.precision
    torch.set_num_threads(1)
    pocket = pocket_setting(profile)
    print(
        f"1. steps/s, pocket size: width {pocket.width}, input {pocket.time_steps} x "
        f"{pocket.mel_bins}, batch {pocket.batch}, one torch thread"
    )
    print(
        f"{'model':8} {'previous fp32':>13} {'pocket ' + precision:>12} {'ratio':>6} "
        f"{'plain fp32':>10} {'fp32/plain':>10}"
    )
    for name in models:
        before = steps_per_second(name, pocket, args.steps, device, "fp32")
        now = steps_per_second(name, pocket, args.steps, device, precision)
        plain = plain_steps_per_second(name, pocket, args.steps)
        print(
            f"{name:8} {before:13.2f} {now:12.2f} {now / before:6.2f} {plain:10.2f} "
            f"{before / plain:10.2f}"
        )
    ours, sklearn = scoring_seconds(profile, repeats=max(3, args.steps // 3))
    print(
        f"scoring one epoch ({profile.data.mixtures_per_fold} validation + "
        f"{3 * profile.data.mixtures_per_fold} training clips x 41 classes): ours {ours * 1e3:.1f} ms, "
        f"scikit-learn {sklearn * 1e3:.1f} ms ({sklearn / ours:.1f}x)"
    )
    print(f"CPU settings, 2APAE in the pocket setting ({precision}), total steps/s:")
    baseline = None
    for label, rate in thread_settings("2APAE", pocket, args.steps, precision):
        baseline = baseline or rate
        print(f"  {label:42} {rate:6.2f} steps/s ({rate / baseline:.2f}x)")
    if args.no_learning:
        return
    workspace = args.workspace or paths.workspace_dir(profile.name)
    features = paths.feature_file(workspace, args.snr)
    if not features.is_file():
        print(f"2. learning: skipped, no features at {features} (python -m paperlib data all)")
        return
    budget = "--budget " + str(args.budget) if args.budget else "each setting's budget"
    print(
        f"2. learning: {args.snr} dB, fold {args.fold}, {budget}, {args.workers} runs at once "
        f"(one thread each), workspace {workspace}"
    )
    results = learning(
        profile,
        models,
        workspace,
        snr=args.snr,
        fold=args.fold,
        workers=args.workers,
        budget=args.budget,
    )
    _print_learning(results, models)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
