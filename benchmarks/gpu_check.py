"""One prepared GPU check (issue 20 item 4): four parts, one JSON, under 8 minutes on an H100.

    benchmarks/gpu_check.sh                                   # on the GPU machine (wheels, then this)
    python -m benchmarks.gpu_check --out results.json         # this module alone
    python -m benchmarks.gpu_check --tiny --parts b,c,d --out /tmp/x.json   # CPU smoke run

Parts (run in the order b, c, d, a; each within its time budget, ``--budget PART=SECONDS``, and
all within ``--total`` (450 s), the book getting what is left; what a part skipped is recorded):

(b) ``steps``: paper-size training steps (batch 24, 311 x 64 input, width 1, 41 classes) of
    every model of :data:`paperlib.models.MODEL_NAMES` (Table IV's five and 2APAE-local) in
    ``fp32`` / ``tf32`` / ``bf16``: the library's ``train_step`` on ``prepare_model``'s model
    (:func:`benchmarks.bench_training.steps_per_second`); steps/s, clips/s, peak memory.
(c) ``cells``: cells per GPU: 1, 2, 4, 8 spawned processes on one GPU, each training GMP (then
    2APAE) at paper size in the paper's ``fp32`` for a fixed number of steps, timed together
    (a barrier after each one's warm-up); clips/s summed over processes, clips/s over the
    common window, peak memory of each process.
(d) ``full``: a short run of the ``full`` profile (paper sizes and recipe) on a small pocket
    corpus at 0 dB, 2APAE and GMP, with the real trainer (``python -m paperlib train``): each
    epoch's loss and validation micro-AP from ``log.csv``.
(a) ``book``: the pocket book executed with papermill on the GPU (``python -m paperlib book
    --profile pocket --set train.device=auto``), HTML included when jupyter-book is installed;
    rc, wall time and each chapter's state.

From (b), (c) and (d): the estimated wall time of the ``paper`` profile's whole grid on one GPU
(at the best number of cells per GPU) and on N GPUs with ``--engine ray``
(:func:`grid_estimate`). ``--tiny`` runs everything at a tiny size on the CPU (the smoke
profile for the book): its figures only show that the check works.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import math
import multiprocessing
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from benchmarks.bench_training import Setting, steps_per_second
from paperlib.atomic import write_json
from paperlib.config import PRECISIONS, Profile, load_profile
from paperlib.data.features import N_FRAMES, N_MELS
from paperlib.data.plan import NUM_FOLDS
from paperlib.experiment import grid_cells
from paperlib.models import MODEL_NAMES, has_decoder

REPO = Path(__file__).resolve().parents[1]
PARTS: tuple[str, ...] = ("b", "c", "d", "a")
"""The parts in the order they run: the measurements first, the book with what time is left."""
PART_NAMES = {"a": "book", "b": "steps", "c": "cells", "d": "full"}
TOTAL_S = 450.0
"""Default seconds for the whole check, so that it ends inside 8 minutes on one H100."""
BUDGETS_S: dict[str, float] = {"b": 75.0, "c": 90.0, "d": 90.0, "a": TOTAL_S}
"""Default seconds per part, each also cut to what is left of the total: (a), last, gets the rest."""
GAIN_MODELS: tuple[str, str] = ("GMP", "2APAE")
"""(c) measures these two; a model with a decoder takes 2APAE's figures, the others GMP's."""
PAPER = Setting(width=1.0, time_steps=N_FRAMES, mel_bins=N_MELS, batch=24)
TINY = Setting(width=0.0625, time_steps=N_FRAMES // 4, mel_bins=N_MELS // 4, batch=8)
"""``--tiny``: the smoke profile's width on the pocket input (77 x 16), batch 8."""
RAY_GPUS: tuple[int, ...] = (1, 2, 4, 8)
FULL_OVERRIDES: tuple[str, ...] = (
    "data.mixtures_per_fold=200",
    "data.pocket_backgrounds=800",
    "data.pocket_events_per_class=24",
    "data.snrs=[0]",
    "data.study_onsets=[]",
    "train.epochs=4",
)
TINY_FULL_OVERRIDES: tuple[str, ...] = (
    "data.mixtures_per_fold=6",
    "data.pocket_backgrounds=24",
    "data.pocket_events_per_class=3",
    "data.snrs=[0]",
    "data.study_onsets=[]",
    "train.epochs=2",
    f"train.batch_size={TINY.batch}",
    f"model.width={TINY.width}",
    "model.time_pool=4",
    "model.mel_pool=4",
)
"""(d) with ``--tiny``: the same command at :data:`TINY`'s model size and a 24-mixture corpus."""


@dataclass
class Check:
    """What every part needs: the device, the size, the clock and the results so far."""

    device: torch.device
    tiny: bool
    out: Path
    workdir: Path
    budgets: dict[str, float]
    steps_b: int
    steps_c: int
    cells: tuple[int, ...]
    book_cells_per_gpu: int
    warmup: int = 3
    """Untimed steps before each timing (cuDNN's autotuning happens in the first)."""
    started: float = field(default_factory=time.perf_counter)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def setting(self) -> Setting:
        return TINY if self.tiny else PAPER

    def save(self) -> None:
        """Write the JSON as it stands (after every part, so a killed check keeps its parts)."""
        self.results["elapsed_s"] = round(time.perf_counter() - self.started, 2)
        write_json(self.out, self.results)


def _gb(n_bytes: float) -> float:
    return round(n_bytes / 1e9, 3)


def _reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory(device: torch.device) -> dict[str, float | None]:
    if device.type != "cuda":
        return {"peak_allocated_gb": None, "peak_reserved_gb": None}
    return {
        "peak_allocated_gb": _gb(torch.cuda.max_memory_allocated(device)),
        "peak_reserved_gb": _gb(torch.cuda.max_memory_reserved(device)),
    }


def machine_facts(device: torch.device) -> dict[str, Any]:
    """GPU name and memory, driver, torch, CUDA and cuDNN versions, CPU, Python."""
    from paperlib.book.status import device_info

    facts: dict[str, Any] = {
        **device_info(),
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "gpu_memory_gb": None,
        "driver": None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts.update(gpu=props.name, gpu_memory_gb=_gb(props.total_memory))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            facts["driver"] = subprocess.run(
                query, capture_output=True, text=True, timeout=20, check=True
            ).stdout.strip()
    return facts


# ---------------------------------------------------------------- (b) training steps


def part_steps(check: Check, deadline: float) -> dict[str, Any]:
    """(b): steps/s, clips/s and peak memory of every model in every precision.

    ``fp32`` (the paper's, which the grid estimate uses) is measured for every model first.
    """
    setting, device = check.setting, check.device
    rows, skipped = [], []
    for precision in PRECISIONS:
        for model in MODEL_NAMES:
            case = f"{model} {precision}"
            if time.perf_counter() > deadline:
                skipped.append(f"{case}: time budget spent")
                continue
            _reset_memory(device)
            try:
                rate = steps_per_second(
                    model, setting, check.steps_b, device, precision=precision, warmup=check.warmup
                )
            except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
                skipped.append(f"{case}: {type(error).__name__}: {str(error)[:200]}")
                continue
            rows.append(
                {
                    "model": model,
                    "precision": precision,
                    "steps": check.steps_b,
                    "steps_per_s": rate,
                    "clips_per_s": rate * setting.batch,
                    **_peak_memory(device),
                }
            )
            print(f"[b] {case:20} {rate:8.2f} steps/s {rate * setting.batch:9.1f} clips/s")
    _reset_memory(device)
    return {"setting": vars(setting), "rows": rows, "skipped": skipped}


# ---------------------------------------------------------------- (c) cells per GPU


@dataclass(frozen=True)
class CellTask:
    """One process's share of one (model, processes) case of part (c)."""

    model: str
    setting: Setting
    steps: int
    precision: str
    device: str
    warmup: int
    barrier: Any
    """A manager's ``Barrier(processes)``: the timed steps of all processes start together."""


BARRIER_TIMEOUT_S = 120.0


def _cell_worker_init(parent: int, cpu_threads: int) -> None:
    from paperlib.experiment.pools import exit_with_parent

    exit_with_parent(parent)  # as the grid's GPU pool: a killed check leaves no trainer behind
    if cpu_threads > 0:
        torch.set_num_threads(cpu_threads)


def _cell_worker(task: CellTask) -> dict[str, Any]:
    """Train ``task.model`` for ``task.steps`` timed steps in this process; its figures."""
    device = torch.device(task.device)
    _reset_memory(device)
    try:
        rate = steps_per_second(
            task.model,
            task.setting,
            task.steps,
            device,
            precision=task.precision,
            warmup=task.warmup,
            before_timing=lambda: task.barrier.wait(BARRIER_TIMEOUT_S),
        )
    except Exception as error:  # OOM, a broken barrier: release the others, report it
        with contextlib.suppress(Exception):
            task.barrier.abort()
        return {"pid": os.getpid(), "error": f"{type(error).__name__}: {str(error)[:200]}"}
    end = time.time()  # wall clock: comparable between processes
    return {
        "pid": os.getpid(),
        "steps_per_s": rate,
        "clips_per_s": rate * task.setting.batch,
        "start": end - task.steps / rate,
        "end": end,
        **_peak_memory(device),
    }


def part_cells(check: Check, deadline: float) -> dict[str, Any]:
    """(c): 1, 2, 4, 8 processes on one GPU training side by side (GMP, then 2APAE, ``fp32``).

    Each process is spawned, as ``grid.cells_per_gpu`` does (:class:`paperlib.experiment.pools.GpuPool`),
    and bound to the device for its lifetime; the pool is kept between cases (its start-up is
    not part of any timing). ``window_clips_per_s`` is every process's clips over the span from
    the first start to the last end of the timed steps; ``gain`` is that against 1 process.
    """
    device = "cuda:0" if check.device.type == "cuda" else "cpu"
    context = multiprocessing.get_context("spawn")
    rows, skipped = [], []
    pool_start = time.perf_counter()
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(
            max(check.cells),
            mp_context=context,
            initializer=_cell_worker_init,
            initargs=(os.getpid(), 0 if check.device.type == "cuda" else 1),
        ) as pool,
    ):
        for model in GAIN_MODELS:
            single: float | None = None
            for processes in check.cells:
                case = f"{model} x {processes}"
                if time.perf_counter() > deadline:
                    skipped.append(f"{case}: time budget spent")
                    continue
                barrier = manager.Barrier(processes)
                task = CellTask(
                    model, check.setting, check.steps_c, "fp32", device, check.warmup, barrier
                )
                per_process = list(pool.map(_cell_worker, [task] * processes))
                errors = [p["error"] for p in per_process if "error" in p]
                if errors:
                    skipped.append(f"{case}: {errors[0]}")
                    continue
                span = max(p["end"] for p in per_process) - min(p["start"] for p in per_process)
                window = processes * check.steps_c * check.setting.batch / span
                single = window if processes == 1 else single
                row = {
                    "model": model,
                    "processes": processes,
                    "steps_per_process": check.steps_c,
                    "sum_clips_per_s": sum(p["clips_per_s"] for p in per_process),
                    "window_clips_per_s": window,
                    "gain": window / single if single else None,
                    "per_process": [
                        {k: v for k, v in p.items() if k not in ("start", "end")}
                        for p in per_process
                    ],
                }
                rows.append(row)
                print(
                    f"[c] {case:12} {row['sum_clips_per_s']:9.1f} clips/s summed, "
                    f"{window:9.1f} over the window"
                )
    return {
        "precision": "fp32",
        "setting": vars(check.setting),
        "rows": rows,
        "skipped": skipped,
        "seconds_with_pool_start": round(time.perf_counter() - pool_start, 2),
    }


# ---------------------------------------------------------------- subprocesses: (d) and (a)


def _environment(workspace: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PAPERLIB_WORKSPACE"] = str(workspace)
    env["PYTHONUNBUFFERED"] = "1"
    path = env.get("PYTHONPATH", "")
    if str(REPO) not in path.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), path) if p)
    return env


def run_command(
    command: Sequence[str], *, timeout: float, env: dict[str, str], log: Path
) -> tuple[int | None, float, str]:
    """Run ``command`` (its own process group) with output to ``log``; ``(rc, seconds, output)``.

    ``rc`` is ``None`` when it ran past ``timeout`` seconds: then the group gets SIGTERM, and
    SIGKILL 10 s later.
    """
    start = time.perf_counter()
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
        try:
            rc: int | None = process.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            rc = None
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)
                    break
    seconds = time.perf_counter() - start
    text = log.read_text(errors="replace")
    return rc, seconds, text[text.rfind(f"$ {' '.join(command)}") :]


def _tail(text: str, n: int = 1500) -> str:
    return text[-n:]


def _last_json(text: str) -> dict[str, Any] | None:
    import json

    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


def _remaining(deadline: float) -> float:
    return deadline - time.perf_counter()


# ---------------------------------------------------------------- (d) the full profile


def part_full(check: Check, deadline: float) -> dict[str, Any]:
    """(d): data, then 2APAE and GMP with ``python -m paperlib train --profile full``."""
    workspace = check.workdir / "full"
    log = check.out.with_name(check.out.stem + "_d.log")
    log.unlink(missing_ok=True)
    env = _environment(check.workdir)
    overrides = [*(TINY_FULL_OVERRIDES if check.tiny else FULL_OVERRIDES)]
    overrides.append(f"train.device={check.device.type}")
    sets = [arg for item in overrides for arg in ("--set", item)]
    common = ["--profile", "full", "--workspace", str(workspace), *sets]
    py = sys.executable
    result: dict[str, Any] = {"overrides": overrides, "snr_db": 0, "fold": 1, "runs": []}
    skipped: list[str] = []
    rc, seconds, text = run_command(
        [py, "-m", "paperlib", "data", "all", *common, "--quiet"],
        timeout=_remaining(deadline), env=env, log=log,
    )  # fmt: skip
    result["data"] = {"rc": rc, "wall_s": round(seconds, 2)}
    if rc != 0:
        result["data"]["log_tail"] = _tail(text)
        skipped.append("training: the data step " + ("timed out" if rc is None else "failed"))
        return {**result, "skipped": skipped}
    for model in ("2APAE", "GMP"):
        if _remaining(deadline) < 5:
            skipped.append(f"{model}: time budget spent")
            continue
        command = [py, "-m", "paperlib", "train", *common, "--no-prepare", "--no-progress"]
        command += ["--model", model, "--snr", "0", "--fold", "1"]
        rc, seconds, text = run_command(command, timeout=_remaining(deadline), env=env, log=log)
        run: dict[str, Any] = {"model": model, "rc": rc, "wall_s": round(seconds, 2)}
        summary = _last_json(text) if rc == 0 else None
        if summary is None:
            run["log_tail"] = _tail(text)
            skipped.append(f"{model}: " + ("timed out" if rc is None else f"failed (rc {rc})"))
        else:
            table = pd.read_csv(Path(summary["run_dir"]) / "log.csv")
            epochs = table[["epoch", "step", "loss", "bce", "mse", "val_micro_ap", "seconds"]]
            run["epochs"] = epochs.to_dict("records")
            run["loss_fell"] = bool(table["loss"].iloc[-1] < table["loss"].iloc[0])
            run["val_ap_rose"] = (
                bool(table["val_micro_ap"].iloc[1:].max() > table["val_micro_ap"].iloc[0])
                if len(table) > 1
                else False
            )
            run["best_val_micro_ap"] = summary.get("micro_ap")
            print(
                f"[d] {model}: loss {table['loss'].iloc[0]:.4f} -> {table['loss'].iloc[-1]:.4f}, "
                f"val micro-AP {table['val_micro_ap'].iloc[0]:.3f} -> "
                f"{table['val_micro_ap'].iloc[-1]:.3f} in {len(table)} epochs"
            )
        result["runs"].append(run)
    return {**result, "skipped": skipped}


# ---------------------------------------------------------------- (a) the book


def _book_tools() -> tuple[str | None, str | None]:
    """(why the chapters cannot run, why the HTML cannot be built); ``None`` where they can."""
    import importlib.util

    from paperlib.book.site import jupyter_book_command

    missing = [m for m in ("papermill", "ipykernel", "nbclient") if not importlib.util.find_spec(m)]
    run = (
        f"not run: {', '.join(missing)} not installed (carry the wheels: benchmarks/gpu_check_wheels.sh)"
        if missing
        else None
    )
    try:
        jupyter_book_command()
        html = None
    except FileNotFoundError as error:
        html = f"not built: {error} (its wheels are left out of .whl/ when they do not fit)"
    return run, html


def part_book(check: Check, deadline: float) -> dict[str, Any]:
    """(a): ``python -m paperlib book`` (pocket on the GPU, smoke with ``--tiny``), timed."""
    profile = "smoke" if check.tiny else "pocket"
    cannot_run, no_html = _book_tools()
    result: dict[str, Any] = {"profile": profile}
    if cannot_run:
        return {
            **result,
            "rc": None,
            "html": {"built": False, "why": cannot_run},
            "skipped": [cannot_run],
        }
    sets = ["train.device=auto" if check.device.type == "cuda" else "train.device=cpu"]
    if check.device.type == "cuda" and check.book_cells_per_gpu > 1:
        sets.append(f"grid.cells_per_gpu={check.book_cells_per_gpu}")
    command = [sys.executable, "-m", "paperlib", "book", "--profile", profile]
    command += ["--output", str(check.workdir / "book")]
    command += [arg for item in sets for arg in ("--set", item)]
    if no_html:
        command.append("--no-html")
    log = check.out.with_name(check.out.stem + "_a.log")
    log.unlink(missing_ok=True)
    rc, seconds, text = run_command(
        command, timeout=_remaining(deadline), env=_environment(check.workdir), log=log
    )
    chapters = [
        line.split("[book] ", 1)[1]
        for line in text.splitlines()
        if line.startswith("[book] ") and ": " in line and line[7:9].isdigit()
    ]
    html_built = rc == 0 and not no_html and "[book] site:" in text
    why = (
        None
        if html_built
        else (no_html or ("the book did not finish" if rc != 0 else "no site line"))
    )
    result.update(
        command=command[1:],
        rc=rc,
        wall_s=round(seconds, 2),
        timed_out=rc is None,
        chapters=chapters,
        html={"built": html_built, "why": why},
        skipped=[]
        if rc == 0
        else [f"book: {'time budget spent' if rc is None else f'failed (rc {rc})'}"],
    )
    status = check.workdir / "book" / "_build" / "status.json"
    if status.is_file():
        import json

        record = json.loads(status.read_text())
        result["status"] = {
            k: record.get(k)
            for k in ("execute_seconds", "html_seconds", "total_seconds", "device", "chapters")
        }
    if rc != 0:
        result["log_tail"] = _tail(text)
    return result


# ---------------------------------------------------------------- the paper grid, priced


def grid_estimate(
    steps_part: dict[str, Any] | None,
    cells_part: dict[str, Any] | None,
    full_part: dict[str, Any] | None,
    profile: Profile,
) -> dict[str, Any]:
    """The wall time of ``profile``'s whole grid on one GPU and on N GPUs (``--engine ray``).

    Per model ``m`` (at the profile's precision, ``fp32`` for the paper):

    - ``run_seconds[m] = steps_per_run / steps_per_s[m] * trainer_overhead[m]``, with
      ``steps_per_run = epochs * ceil(train_clips / batch)`` and ``train_clips`` the mixtures of
      the folds other than the held-out one; ``steps_per_s`` from (b); ``trainer_overhead`` the
      (d) epochs' median wall time (epoch 2 on) over their steps at (b)'s rate: validation,
      scoring and logging (1 where (d) did not run);
    - ``gain[k][m]``: (c)'s clips/s of ``k`` processes over 1 process, for GMP or (models with a
      decoder) 2APAE;
    - one GPU at ``k`` cells: ``one_gpu_seconds[k] = sum_m runs[m] * run_seconds[m] / gain[k][m]``;
      ``best_cells_per_gpu`` minimises it;
    - ``N`` GPUs at the best ``k``: ``ray_seconds[N] = max(one_gpu_seconds[k] / N,
      max_m run_seconds[m] * k / gain[k][m])`` (the work spread evenly, but never less than one
      run at that concurrency).
    """
    cells = grid_cells(profile)
    runs = {m: sum(c.model == m for c in cells) for m in MODEL_NAMES}
    runs = {m: n for m, n in runs.items() if n}
    train_clips = profile.data.mixtures_per_fold * (NUM_FOLDS - 1)  # the other three folds
    steps_per_epoch = math.ceil(train_clips / profile.train.batch_size)
    steps_per_run = profile.train.epochs * steps_per_epoch
    precision = profile.train.precision
    estimate: dict[str, Any] = {
        "profile": profile.name,
        "runs": len(cells),
        "runs_per_model": runs,
        "epochs": profile.train.epochs,
        "train_clips": train_clips,
        "batch": profile.train.batch_size,
        "steps_per_run": steps_per_run,
        "precision": precision,
    }
    rates = {
        r["model"]: r["steps_per_s"]
        for r in (steps_part or {}).get("rows", [])
        if r["precision"] == precision
    }
    missing = [m for m in runs if m not in rates]
    if missing:
        return {**estimate, "status": f"not computed: (b) has no {precision} figure for {missing}"}

    def family(model: str) -> str:
        return "2APAE" if has_decoder(model) else "GMP"

    overhead = {"GMP": 1.0, "2APAE": 1.0}
    overhead_source = {"GMP": "none: (d) did not run", "2APAE": "none: (d) did not run"}
    for run in (full_part or {}).get("runs", []):
        epochs = run.get("epochs") or []
        if run["model"] not in overhead or not epochs:
            continue
        later = epochs[1:] or epochs
        steps = epochs[0]["step"]  # steps of one epoch (log.csv counts them cumulatively)
        measured = statistics.median(e["seconds"] for e in later)
        overhead[run["model"]] = measured * rates[run["model"]] / steps
        overhead_source[run["model"]] = (
            f"(d): median epoch {measured:.3f} s of {steps} steps at (b)'s {rates[run['model']]:.3f} steps/s"
        )
    run_seconds = {m: steps_per_run / rates[m] * overhead[family(m)] for m in runs}
    gains: dict[int, dict[str, float]] = {1: {"GMP": 1.0, "2APAE": 1.0}}
    by_k: dict[int, dict[str, float]] = {}
    for row in (cells_part or {}).get("rows", []):
        if row.get("gain") is not None:
            by_k.setdefault(row["processes"], {})[row["model"]] = row["gain"]
    for k, models in by_k.items():
        if set(models) == set(GAIN_MODELS):
            gains[k] = models
    one_gpu = {
        k: sum(runs[m] * run_seconds[m] / gain[family(m)] for m in runs)
        for k, gain in sorted(gains.items())
    }
    best = min(one_gpu, key=one_gpu.__getitem__)
    longest = max(run_seconds[m] * best / gains[best][family(m)] for m in runs)
    ray = {n: max(one_gpu[best] / n, longest) for n in RAY_GPUS}
    return {
        **estimate,
        "status": "computed",
        "steps_per_s": {m: rates[m] for m in runs},
        "trainer_overhead": overhead,
        "trainer_overhead_source": overhead_source,
        "run_seconds": run_seconds,
        "gain": {str(k): v for k, v in gains.items()},
        "gain_model": {m: family(m) for m in runs},
        "one_gpu_seconds": {str(k): v for k, v in one_gpu.items()},
        "best_cells_per_gpu": best,
        "longest_run_seconds": longest,
        "ray_seconds": {str(n): v for n, v in ray.items()},
        "not_counted": "data preparation, start-up of processes and Ray, checkpoints, retries",
    }


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h ({seconds / 86400:.2f} days)"


def print_estimate(estimate: dict[str, Any]) -> None:
    if estimate.get("status") != "computed":
        print(f"[estimate] {estimate.get('status')}")
        return
    best = estimate["best_cells_per_gpu"]
    print(
        f"[estimate] the {estimate['profile']} grid: {estimate['runs']} runs of "
        f"{estimate['steps_per_run']} steps ({estimate['precision']})"
    )
    for k, seconds in estimate["one_gpu_seconds"].items():
        print(f"[estimate]   one GPU, {k} cell(s) per GPU: {_hours(seconds)}")
    for n, seconds in estimate["ray_seconds"].items():
        print(f"[estimate]   --engine ray on {n} GPU(s), {best} cell(s) each: {_hours(seconds)}")


# ---------------------------------------------------------------- main

PART_FUNCTIONS: dict[str, Callable[[Check, float], dict[str, Any]]] = {
    "a": part_book,
    "b": part_steps,
    "c": part_cells,
    "d": part_full,
}


def _parse_parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"--parts {text!r}: expected a comma list of {', '.join(sorted(PARTS))}")
    return [p for p in PARTS if p in parts]


def _parse_budgets(items: Sequence[str]) -> dict[str, float]:
    budgets = dict(BUDGETS_S)
    for item in items:
        part, _, value = item.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if part not in PARTS or seconds <= 0:
            raise ValueError(
                f"--budget {item!r}: expected PART=SECONDS with PART one of a, b, c, d and SECONDS > 0"
            )
        budgets[part] = seconds
    return budgets


def _parse_cells(text: str) -> tuple[int, ...]:
    try:
        cells = tuple(sorted({int(c) for c in text.split(",") if c.strip()}))
    except ValueError:
        cells = ()
    if not cells or cells[0] != 1:
        raise ValueError(f"--cells {text!r}: expected process counts that include 1, e.g. 1,2,4,8")
    return cells


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--tiny", action="store_true", help="tiny sizes on the CPU (a smoke run of the check)"
    )
    parser.add_argument(
        "--device", default=None, help="cuda or cpu (default: cuda when present, cpu with --tiny)"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu_check.json"
    )
    parser.add_argument(
        "--parts", default="a,b,c,d", help="comma list of a (book), b (steps), c (cells), d (full)"
    )
    parser.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="PART=SECONDS",
        help=f"time budget of a part (default {BUDGETS_S}), cut to what is left of --total",
    )
    parser.add_argument(
        "--total",
        type=float,
        default=TOTAL_S,
        help=f"seconds for the whole check (default {TOTAL_S:.0f}); the last part gets the rest",
    )
    parser.add_argument(
        "--cells", default=None, help="processes per GPU for (c) (default 1,2,4,8; 1,2 with --tiny)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per case of (b) (default 30; 2 with --tiny)",
    )
    parser.add_argument(
        "--cell-steps",
        type=int,
        default=None,
        help="timed steps per process in (c) (default 20; 2 with --tiny)",
    )
    parser.add_argument(
        "--book-cells-per-gpu",
        type=int,
        default=4,
        help="grid.cells_per_gpu for the book on a GPU (1: as the profile)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="workspaces of (a) and (d) (default: a temporary folder, removed after)",
    )
    args = parser.parse_args(argv)
    try:
        parts = _parse_parts(args.parts)
        budgets = _parse_budgets(args.budget)
        cells = _parse_cells(args.cells or ("1,2" if args.tiny else "1,2,4,8"))
        if args.total <= 0:
            raise ValueError(f"--total {args.total:g}: expected seconds > 0")
    except ValueError as error:
        parser.error(str(error))
    device = torch.device(
        args.device or ("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    )
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    if device.type == "cpu" and not args.tiny:
        print(
            "warning: paper sizes on a CPU take hours; use --tiny for a smoke run", file=sys.stderr
        )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    workdir.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    check = Check(
        device=device,
        tiny=args.tiny,
        out=out,
        workdir=workdir.resolve(),
        budgets=budgets,
        steps_b=args.steps or (2 if args.tiny else 30),
        steps_c=args.cell_steps or (2 if args.tiny else 20),
        cells=cells,
        book_cells_per_gpu=args.book_cells_per_gpu,
        warmup=1 if args.tiny else 3,
    )
    check.results = {
        "schema": 1,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "tiny": args.tiny,
        "argv": list(sys.argv[1:] if argv is None else argv),
        "machine": machine_facts(device),
        "budgets_s": budgets,
        "total_budget_s": args.total,
        "parts": {},
        "skipped_parts": [
            f"{p} ({PART_NAMES[p]}): not in --parts" for p in PARTS if p not in parts
        ],
    }
    print(
        f"[gpu_check] {check.results['machine']['gpu'] or 'CPU'}, torch {torch.__version__}, parts {','.join(parts)} -> {out}"
    )
    check.save()
    try:
        for part in parts:
            start = time.perf_counter()
            deadline = min(start + budgets[part], check.started + args.total)
            print(f"[gpu_check] part {part} ({PART_NAMES[part]}), {deadline - start:.0f} s budget")
            try:
                result = PART_FUNCTIONS[part](check, deadline)
                result["status"] = "partial" if result.get("skipped") else "done"
            except Exception as error:  # one part's failure must not lose the others
                result = {"status": "failed", "error": f"{type(error).__name__}: {error}"[:2000]}
                print(f"[gpu_check] part {part} failed: {result['error']}", file=sys.stderr)
            result["seconds"] = round(time.perf_counter() - start, 2)
            check.results["parts"][part] = result
            if part in ("b", "c", "d"):
                parts_so_far = check.results["parts"]
                check.results["estimate"] = grid_estimate(
                    parts_so_far.get("b"), parts_so_far.get("c"), parts_so_far.get("d"),
                    load_profile("paper"),
                )  # fmt: skip
            check.save()
        print_estimate(check.results.get("estimate", {"status": "not computed: (b) did not run"}))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [p for p, r in check.results["parts"].items() if r["status"] == "failed"]
    print(f"[gpu_check] results: {out}" + (f"; failed parts: {','.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
