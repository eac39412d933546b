"""The prepared GPU check (benchmarks/gpu_check.py) on the CPU at tiny sizes.

One run of ``python -m benchmarks.gpu_check --tiny --parts b,c,d`` checks the JSON's structure,
that its figures are positive and consistent, and that the grid estimate is the arithmetic its
docstring states, recomputed here from the JSON's own figures. Part (a) runs the smoke book,
which ``test_book_build`` already covers, so it is left out here.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import gpu_check
from paperlib.config import PRECISIONS, load_profile
from paperlib.experiment import grid_cells
from paperlib.models import MODEL_NAMES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_check(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--tiny", "--parts", "b,c,d"]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"results: {out}" in done.stdout
    assert "[estimate] the paper grid: " in done.stdout
    return json.loads(out.read_text())


def test_machine_facts_and_parts(tiny_check: dict) -> None:
    machine = tiny_check["machine"]
    assert machine["device"] == "cpu" and machine["gpu"] is None
    assert machine["torch"] and machine["python"]
    assert tiny_check["tiny"] is True
    assert set(tiny_check["parts"]) == {"b", "c", "d"}
    assert tiny_check["skipped_parts"] == ["a (book): not in --parts"]
    for part in tiny_check["parts"].values():
        assert part["status"] == "done", part
        assert part["skipped"] == [] and part["seconds"] > 0


def test_steps_every_model_and_precision(tiny_check: dict) -> None:
    part = tiny_check["parts"]["b"]
    assert part["setting"] == {"width": 0.0625, "time_steps": 77, "mel_bins": 16, "batch": 8}
    rows = part["rows"]
    assert sorted((r["model"], r["precision"]) for r in rows) == sorted(
        (m, p) for m in MODEL_NAMES for p in PRECISIONS
    )
    for row in rows:
        assert row["steps_per_s"] > 0
        assert row["clips_per_s"] == pytest.approx(row["steps_per_s"] * 8)
        assert row["peak_allocated_gb"] is None  # CPU: no CUDA allocator figures


def test_cells_sum_window_and_gain(tiny_check: dict) -> None:
    part = tiny_check["parts"]["c"]
    assert part["precision"] == "fp32"
    rows = {(r["model"], r["processes"]): r for r in part["rows"]}
    assert set(rows) == {(m, k) for m in ("GMP", "2APAE") for k in (1, 2)}
    for (model, k), row in rows.items():
        processes = row["per_process"]
        assert len(processes) == k and len({p["pid"] for p in processes}) == k
        assert all(p["clips_per_s"] > 0 for p in processes)
        assert row["sum_clips_per_s"] == pytest.approx(sum(p["clips_per_s"] for p in processes))
        # the common window is at least as long as each process's own timed steps (up to the
        # rounding of wall-clock times near 1.7e9 s: 1e-3 of a span of a few tens of ms)
        assert 0 < row["window_clips_per_s"] <= row["sum_clips_per_s"] * (1 + 1e-3)
        single = rows[(model, 1)]["window_clips_per_s"]
        assert row["gain"] == pytest.approx(row["window_clips_per_s"] / single)
    assert rows[("GMP", 1)]["gain"] == 1.0


def test_full_profile_runs_log_every_epoch(tiny_check: dict) -> None:
    part = tiny_check["parts"]["d"]
    assert part["data"]["rc"] == 0
    assert "train.device=cpu" in part["overrides"]
    runs = {r["model"]: r for r in part["runs"]}
    assert set(runs) == {"2APAE", "GMP"}
    for run in runs.values():
        assert run["rc"] == 0 and run["wall_s"] > 0
        epochs = run["epochs"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        # 6 mixtures per fold, 3 training folds, batch 8: 3 steps an epoch, counted cumulatively
        assert [e["step"] for e in epochs] == [3, 6]
        for e in epochs:
            assert e["loss"] > 0 and e["seconds"] > 0 and 0 <= e["val_micro_ap"] <= 1
        assert run["loss_fell"] == (epochs[-1]["loss"] < epochs[0]["loss"])
    assert runs["GMP"]["epochs"][0]["mse"] == 0.0  # no decoder: loss = BCE
    assert runs["2APAE"]["epochs"][0]["mse"] > 0


def _hand_estimate(result: dict) -> dict:
    """The estimate recomputed from the JSON's (b), (c) and (d) figures and the paper profile."""
    paper = load_profile("paper")
    runs = Counter(c.model for c in grid_cells(paper))
    steps_per_run = 80 * math.ceil(2000 * 3 / 24)
    rates = {
        r["model"]: r["steps_per_s"]
        for r in result["parts"]["b"]["rows"]
        if r["precision"] == "fp32"
    }
    overhead = {}
    for run in result["parts"]["d"]["runs"]:
        epochs = run["epochs"]
        later = statistics.median(e["seconds"] for e in epochs[1:])
        overhead[run["model"]] = later / (epochs[0]["step"] / rates[run["model"]])
    family = {m: "2APAE" if m.startswith("2APAE") else "GMP" for m in runs}
    run_s = {m: steps_per_run / rates[m] * overhead[family[m]] for m in runs}
    gains = {1: {"GMP": 1.0, "2APAE": 1.0}}
    for row in result["parts"]["c"]["rows"]:
        gains.setdefault(row["processes"], {})[row["model"]] = row["gain"]
    one = {k: sum(runs[m] * run_s[m] / g[family[m]] for m in runs) for k, g in gains.items()}
    best = min(one, key=one.get)
    longest = max(run_s[m] * best / gains[best][family[m]] for m in runs)
    return {
        "runs": sum(runs.values()),
        "steps_per_run": steps_per_run,
        "run_seconds": run_s,
        "one_gpu": one,
        "best": best,
        "ray": {n: max(one[best] / n, longest) for n in (1, 2, 4, 8)},
    }


def test_estimate_is_the_stated_arithmetic(tiny_check: dict) -> None:
    estimate = tiny_check["estimate"]
    hand = _hand_estimate(tiny_check)
    assert estimate["status"] == "computed"
    assert estimate["runs"] == hand["runs"] == len(grid_cells(load_profile("paper")))
    assert estimate["steps_per_run"] == hand["steps_per_run"] == 20_000
    assert estimate["run_seconds"] == pytest.approx(hand["run_seconds"], rel=1e-9)
    assert {int(k): v for k, v in estimate["one_gpu_seconds"].items()} == pytest.approx(
        hand["one_gpu"], rel=1e-9
    )
    assert estimate["best_cells_per_gpu"] == hand["best"]
    assert {int(k): v for k, v in estimate["ray_seconds"].items()} == pytest.approx(
        hand["ray"], rel=1e-9
    )


def _rows(rate: float) -> dict:
    return {"rows": [{"model": m, "precision": "fp32", "steps_per_s": rate} for m in MODEL_NAMES]}


def test_estimate_prefers_more_cells_and_bounds_by_the_longest_run() -> None:
    profile = load_profile("smoke")  # few runs, so the longest one bounds many GPUs
    cells = {
        "rows": [
            {"model": m, "processes": k, "gain": g}
            for m in ("GMP", "2APAE")
            for k, g in ((1, 1.0), (2, 1.6), (4, 2.0))
        ]
    }
    estimate = gpu_check.grid_estimate(_rows(10.0), cells, None, profile)
    n_runs = len(grid_cells(profile))
    # 1 epoch of 3 x 6 training clips (the folds other than the held-out one) in batches of 8
    assert estimate["steps_per_run"] == 1 * math.ceil(3 * 6 / 8) == 3
    run_s = 3 / 10.0
    assert estimate["trainer_overhead"] == {"GMP": 1.0, "2APAE": 1.0}
    assert estimate["one_gpu_seconds"]["1"] == pytest.approx(n_runs * run_s)
    assert estimate["one_gpu_seconds"]["4"] == pytest.approx(n_runs * run_s / 2.0)
    assert estimate["best_cells_per_gpu"] == 4
    longest = run_s * 4 / 2.0
    for n in (1, 2, 4, 8):
        assert estimate["ray_seconds"][str(n)] == pytest.approx(
            max(n_runs * run_s / 2.0 / n, longest)
        )
    assert estimate["ray_seconds"]["8"] == pytest.approx(longest)  # bound by one run


def test_estimate_names_what_is_missing() -> None:
    rows = _rows(10.0)
    rows["rows"] = [r for r in rows["rows"] if r["model"] != "AtrousAP"]
    estimate = gpu_check.grid_estimate(rows, None, None, load_profile("paper"))
    assert estimate["status"] == "not computed: (b) has no fp32 figure for ['AtrousAP']"


def test_a_spent_budget_skips_and_records(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    args = ["--tiny", "--parts", "b", "--budget", "b=1e-9", "--out", str(out)]
    assert gpu_check.main(args) == 0
    result = json.loads(out.read_text())
    part = result["parts"]["b"]
    assert part["status"] == "partial" and part["rows"] == []
    assert len(part["skipped"]) == len(MODEL_NAMES) * len(PRECISIONS)
    assert all(s.endswith(": time budget spent") for s in part["skipped"])
    assert result["estimate"]["status"].startswith("not computed: (b) has no fp32 figure")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--parts", "b,x"], "--parts 'b,x': expected a comma list of a, b, c, d"),
        (["--budget", "b=0"], "--budget 'b=0': expected PART=SECONDS"),
        (["--budget", "e=5"], "--budget 'e=5': expected PART=SECONDS"),
        (["--cells", "2,4"], "--cells '2,4': expected process counts that include 1"),
        (["--total", "0"], "--total 0: expected seconds > 0"),
    ],
)
def test_bad_options_are_named(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--tiny", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_command_past_its_budget_is_stopped(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    sleeper = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    rc, seconds, text = gpu_check.run_command(sleeper, timeout=1.0, env=dict(os.environ), log=log)
    assert rc is None  # ran past its time: stopped, not waited for
    assert 1.0 <= seconds < 30
    assert "started" in text and text.startswith("$ ")


def test_book_without_papermill_is_not_run_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name)
    )
    check = gpu_check.Check(
        device=gpu_check.torch.device("cpu"), tiny=True, out=tmp_path / "r.json",
        workdir=tmp_path, budgets=dict(gpu_check.BUDGETS_S), steps_b=1, steps_c=1, cells=(1,),
        book_cells_per_gpu=1,
    )  # fmt: skip
    result = gpu_check.part_book(check, deadline=1e18)
    assert result["rc"] is None and result["html"]["built"] is False
    assert result["html"]["why"].startswith("not run: papermill not installed")
    assert result["skipped"] == [result["html"]["why"]]
    assert not (tmp_path / "book").exists()  # nothing was started
