"""The book's chapter cache covers the workspace and the content of the data and runs read.

Issue 22, case 1: a source WAV replaced under the same name, features remade by ``data all``,
an edited run and an empty ``PAPERLIB_WORKSPACE`` each re-execute exactly the chapters that read
them, and the status page says why each chapter was executed or reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_support import write_event
from test_book_runner import write_notebook

from paperlib import paths
from paperlib.book import runner
from paperlib.book.inputs import CHAPTER_INPUTS, change_reason, run_digests
from paperlib.book.status import render_status_page
from paperlib.book.toc import toc_notebooks
from paperlib.data.plan import read_plan

SETTINGS = ("data.snrs=[20]", "data.workers=1")
"""The smoke profile at one SNR (the chapters receive it as a YAML file)."""
PREPARE = """
from paperlib.config import load_profile
from paperlib.data.pipeline import prepare_data
from paperlib.paths import workspace_dir
P = load_profile(profile)
prepare_data(P, workspace_dir(P.name), progress=False)
"""
READ_RUNS = """
from paperlib.config import load_profile
from paperlib.paths import runs_dir, workspace_dir
P = load_profile(profile)
print(sorted(p.name for p in runs_dir(workspace_dir(P.name)).glob("*/metrics.json")))
"""


def test_every_real_chapter_declares_what_it_reads() -> None:
    stems = {nb.stem for nb in toc_notebooks(paths.project_root())}
    assert stems == set(CHAPTER_INPUTS)


@pytest.fixture
def book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A book of three chapters named as the real ones: 01 prepares the data, 02 reads nothing
    of the workspace, 03 reads the data and the runs."""
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(runner, "source_tree_hash", lambda _package: "fixed")
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (tmp_path / "_config.yml").write_text("title: fake\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/intro\nparts:\n  - caption: P\n    chapters:\n"
        "      - file: chapters/01_data\n      - file: chapters/02_model\n"
        "      - file: chapters/03_training\n"
    )
    (chapters / "intro.md").write_text("# Intro\n")
    parameters = 'profile: str = "smoke"'
    write_notebook(chapters / "01_data.ipynb", [PREPARE], parameters)
    write_notebook(chapters / "02_model.ipynb", ["print(profile)"], parameters)
    write_notebook(chapters / "03_training.ipynb", [PREPARE, READ_RUNS], parameters)
    return tmp_path


def build(book: Path) -> list[tuple[str, str]]:
    record = runner.run_book(
        "smoke", source=book, build=False, echo=lambda _line: None, assignments=SETTINGS
    )
    page = render_status_page(record)
    for chapter in record.chapters:  # the status page says why
        assert f"| {chapter.chapter} | {chapter.state} | {chapter.reason} |" in page
    return [(c.state, c.reason) for c in record.chapters]


def used_event(ws: Path, index: int) -> Path:
    """The source WAV of the ``index``-th distinct event the plan uses."""
    sources = list(dict.fromkeys(read_plan(paths.plan_file(ws))["source"]))
    return paths.fsd_dir(ws) / sources[index]


def test_changed_inputs_re_execute_exactly_the_chapters_that_read_them(
    book: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Path(os.environ["PAPERLIB_WORKSPACE"]) / "smoke"
    fake_run = paths.runs_dir(ws) / "GMP-snr20-fold1-0123456789ab"
    fake_run.mkdir(parents=True)
    (fake_run / "metrics.json").write_text('{"micro_ap": 0.5}')

    first = build(book)
    assert [s for s, _ in first] == ["executed"] * 3
    assert {r for _, r in first} == {"no earlier execution in this build folder"}
    unchanged = [("reused", "inputs unchanged")] * 3
    assert build(book) == unchanged

    # a source WAV the plan uses, replaced under the same name: the data chapters execute
    write_event(used_event(ws, 0), 1.0, freq=3000.0)
    changed = ("executed", "data digest changed: source files changed")
    assert build(book) == [changed, ("reused", "inputs unchanged"), changed]
    assert build(book) == unchanged

    # features remade by `data all` (another source replaced first)
    write_event(used_event(ws, 1), 1.0, freq=2500.0)
    profile_file = book / "_build" / "profile.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "paperlib",
            "data",
            "all",
            "--profile",
            str(profile_file),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    states = build(book)
    assert [s for s, _ in states] == ["executed", "reused", "executed"]
    assert states[0][1].startswith("data digest changed:")

    # an edited run re-executes the chapter that read it, and only that one
    (fake_run / "metrics.json").write_text('{"micro_ap": 0.9}')
    assert build(book) == [
        ("reused", "inputs unchanged"),
        ("reused", "inputs unchanged"),
        ("executed", f"metrics of run {fake_run.name} changed"),
    ]

    # an empty workspace: nothing that reads it is reused, and the chapters make it
    empty = book / "empty"
    empty.mkdir()
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(empty))
    states = build(book)
    assert [s for s, _ in states] == ["executed", "reused", "executed"]
    assert states[0][1] == f"workspace changed ({ws} -> {empty / 'smoke'})"
    assert (empty / "smoke" / "data" / "manifest.json").is_file()


def test_change_reason_names_the_part_that_changed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name, text in (("a", "1"), ("b", "2")):
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.json").write_text(text)
    (runs / "c").mkdir()  # incomplete: no metrics.json
    digests = run_digests(tmp_path)
    assert set(digests) == {"a", "b"}
    assert digests["a"] == __import__("hashlib").sha256(b"1").hexdigest()
    data = {"stages": {"plan": "k"}, "excluded": [], "sources": "s", "features": {"snr0db": "f"}}
    now = {"workspace": "/w", "data": data, "runs": digests}
    assert change_reason(dict(now), now) is None
    # runs added since (by a later chapter) do not matter; a run gone or changed does
    assert change_reason({**now, "runs": {"a": digests["a"]}}, now) is None
    assert change_reason({**now, "runs": {**digests, "z": "x"}}, now) == "run z is gone"
    assert change_reason({**now, "runs": {"a": "x"}}, now) == "metrics of run a changed"
    assert change_reason(None, now) == "its workspace inputs were not recorded"
    other = {**data, "features": {"snr0db": "g"}}
    assert change_reason({**now, "data": other}, now) == (
        "data digest changed: feature file(s) snr0db changed"
    )
    assert change_reason({**now, "data": {**data, "stages": {}}}, now) == (
        "data digest changed: data stage keys changed"
    )
    json.dumps(now)  # the manifest stores it as JSON
