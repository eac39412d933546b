"""The book as readers use it: launch settings, the Colab cell, dressed pages, progress, quiet runs.

No HTML build here (the browser test checks the built site); the kernels started here run tiny
fake chapters.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

from paperlib import cli
from paperlib.book import colab, launch, pages, runner
from paperlib.book.console import ChapterLine, ProgressWatcher
from paperlib.book.errors import BookError, ChapterFailedError
from paperlib.book.execute import execute_chapter
from paperlib.book.site import tree_config
from paperlib.book.status import ChapterRun, RunHistory
from paperlib.book.toc import toc_notebooks
from paperlib.paths import project_root
from paperlib.progress import (
    PROGRESS_ENV,
    PROGRESS_FILE_ENV,
    describe_progress,
    progress_bar,
    read_progress,
)

ROOT = project_root()
FORK = "https://github.com/a-reader/fork-of-the-book"


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(launch.REPOSITORY_ENV, raising=False)
    monkeypatch.delenv(launch.BRANCH_ENV, raising=False)


# --- launch settings -------------------------------------------------------------------------


def test_repository_comes_from_the_config_and_the_environment_overrides_it() -> None:
    config = {"repository": {"url": "https://github.com/o/book.git", "branch": "dev"}}
    repo = launch.repository_from_config(config, environ={})
    assert (repo.url, repo.branch, repo.path_to_book) == ("https://github.com/o/book", "dev", "")
    fork = launch.repository_from_config(
        config, environ={launch.REPOSITORY_ENV: FORK, launch.BRANCH_ENV: "0123abcd"}
    )
    assert (fork.url, fork.branch) == (FORK, "0123abcd")
    assert fork.requirement == f"paperlib[book] @ git+{FORK}@0123abcd"
    assert launch.repository_from_config({"title": "no repository"}, environ={}) is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({launch.REPOSITORY_ENV: "https://gitlab.com/o/b"}, launch.REPOSITORY_ENV),
        ({launch.REPOSITORY_ENV: "github.com/o/b"}, launch.REPOSITORY_ENV),
        ({launch.BRANCH_ENV: "main; rm -rf /"}, launch.BRANCH_ENV),
    ],
)
def test_bad_repository_settings_name_the_setting_and_value(environ, named) -> None:
    config = {"repository": {"url": "https://github.com/o/b", "branch": "main"}}
    with pytest.raises(BookError) as info:
        launch.repository_from_config(config, environ=environ)
    assert named in str(info.value) and next(iter(environ.values())) in str(info.value)


def test_the_build_tree_config_launches_the_fork(tmp_path, monkeypatch) -> None:
    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "_config.yml").read_text())
    _no_overrides(monkeypatch)
    plain = yaml.safe_load(tree_config(config))
    assert plain["repository"]["url"] == _config()["repository"]["url"]
    assert plain["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert plain["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    monkeypatch.setenv(launch.REPOSITORY_ENV, FORK)
    monkeypatch.setenv(launch.BRANCH_ENV, "0123abcd")
    forked = yaml.safe_load(tree_config(config))
    assert forked["repository"] == {"url": FORK, "branch": "0123abcd", "path_to_book": ""}


def test_binder_installs_the_pinned_cpu_torch_and_the_checkout() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pins = dict(
        line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    assert f"torch=={pins['torch']}+cpu" in lines
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    constraint = next(line for line in lines if line.startswith("-c "))
    assert (ROOT / "binder" / constraint[3:]).resolve() == (ROOT / "constraints.txt").resolve()
    assert "-e .[book]" in lines
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3.") and int(runtime.split(".")[1]) >= 11


def test_the_pages_workflow_sets_the_launch_repository_to_its_own() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    env = workflow["jobs"]["build"]["env"]
    assert env[launch.REPOSITORY_ENV] == "https://github.com/${{ github.repository }}"
    assert env[launch.BRANCH_ENV] == "${{ github.sha }}"


# --- the Colab setup cell --------------------------------------------------------------------


def test_every_chapter_starts_with_the_generated_colab_cell(monkeypatch) -> None:
    repo = launch.repository_from_config(_config(), environ={})
    for path in toc_notebooks(ROOT):
        nb = nbformat.read(str(path), as_version=4)
        index = colab.find_setup_cell(nb)
        assert index == 1, (
            f"{path.name}: setup cell at {index}; run python -m paperlib book --colab-cells"
        )
        cell = nb.cells[index]
        assert cell.source == colab.setup_cell_source(repo), f"{path.name}: stale setup cell"
        assert "remove-cell" in cell.metadata["tags"]
        assert cell.outputs == [] and cell.execution_count is None
        params = next(
            i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])
        )
        assert params > index  # it runs before the first import


def _run_cell(source: str, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(list(args)))
    exec(compile(source, "<colab cell>", "exec"), {})
    return calls


def test_the_colab_cell_does_nothing_locally_and_installs_the_book_on_colab(monkeypatch) -> None:
    nb = nbformat.read(str(ROOT / "chapters" / "03_training.ipynb"), as_version=4)
    source = nb.cells[colab.find_setup_cell(nb)].source
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert _run_cell(source, monkeypatch) == []  # local kernel: a no-op
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    section = _config()["repository"]
    expected = f"paperlib[book] @ git+{section['url']}@{section['branch']}"
    assert _run_cell(source, monkeypatch) == [
        [sys.executable, "-m", "pip", "install", "--quiet", expected]
    ]


def _fake_book(tmp_path: Path, *, repository: bool = True) -> Path:
    (tmp_path / "chapters").mkdir(parents=True)
    config: dict = {"title": "fake"}
    if repository:
        config["repository"] = {"url": "https://github.com/o/b", "branch": "main"}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/a\nchapters:\n  - file: chapters/b\n"
    )
    for name, first in (("a", "# A\n\ntext"), ("b", None)):
        nb = nbformat.v4.new_notebook()
        cells = [nbformat.v4.new_code_cell("x = 1")]
        if first:
            cells.insert(0, nbformat.v4.new_markdown_cell(first))
        nb.cells = cells
        nbformat.write(nb, str(tmp_path / "chapters" / f"{name}.ipynb"))
    return tmp_path


def test_colab_cells_command_inserts_once_and_needs_a_repository(tmp_path, capsys) -> None:
    book = _fake_book(tmp_path)
    assert cli.main(["book", "--colab-cells", "--source", str(book)]) == 0
    a = nbformat.read(str(book / "chapters" / "a.ipynb"), as_version=4)
    b = nbformat.read(str(book / "chapters" / "b.ipynb"), as_version=4)
    assert colab.find_setup_cell(a) == 1 and colab.find_setup_cell(b) == 0  # after a title only
    assert "git+https://github.com/o/b@main" in a.cells[1].source
    before = (book / "chapters" / "a.ipynb").read_bytes()
    assert cli.main(["book", "--colab-cells", "--source", str(book)]) == 0
    assert (book / "chapters" / "a.ipynb").read_bytes() == before
    assert "0 notebook(s) changed" in capsys.readouterr().out
    bare = _fake_book(tmp_path / "bare", repository=False)
    assert cli.main(["book", "--colab-cells", "--source", str(bare)]) == 2
    assert "names no repository.url" in capsys.readouterr().err


# --- dressed pages ---------------------------------------------------------------------------


def _executed_like_papermill() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "pocket"')
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell('# Parameters\nprofile = "smoke"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 3. Training one model\n\n## Overview\nText."),
        nbformat.v4.new_code_cell("x"),
        params,
        injected,
    ]
    colab.ensure_setup_cell(nb, launch.Repository("https://github.com/o/b", "main"))
    return nb


def test_dressing_numbers_nothing_by_hand_shows_the_header_once_and_hides_runner_cells() -> None:
    nb = _executed_like_papermill()
    build = launch.Repository(FORK, "0123abcd")
    once = pages.dress_notebook(nb, header="HEADER", repository=build)
    again = nbformat.reads(nbformat.writes(once), as_version=4)
    twice = pages.dress_notebook(again, header="HEADER", repository=build)
    assert nbformat.writes(once) == nbformat.writes(twice)  # idempotent: pages stay cached
    sources = [c.source for c in once.cells]
    assert sources[0] == "# Training one model"  # typed number dropped; the toc numbers
    assert sources[1] == "HEADER" and sources[2] == "## Overview\nText."
    assert sources.count("HEADER") == 1
    injected = next(c for c in once.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "remove-cell" in injected.metadata["tags"]
    setup = once.cells[colab.find_setup_cell(once)]
    assert f"git+{FORK}@0123abcd" in setup.source  # the download installs the site's commit


@pytest.mark.parametrize(
    ("title", "expected"),
    [("# 1. Data: mixtures", "# Data: mixtures"), ("# 2APAE inside", "# 2APAE inside"),
     ("# 2.1. Sub", "# Sub"), ("# 2020 results", "# 2020 results")],
)  # fmt: skip
def test_only_a_typed_chapter_number_is_dropped(title: str, expected: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(title)]
    assert pages.dress_notebook(nb, header="h", repository=None).cells[0].source == expected


def test_run_cost_header_shows_measured_times_machines_and_the_command() -> None:
    shown = ChapterRun("smoke", 14.21, "2026-11-25 10:00:00 UTC", "AMD EPYC (2 cores), no GPU")
    other = ChapterRun("pocket", 348.0, "2026-11-24 09:00:00 UTC", "Intel Xeon (8 cores), no GPU")
    text = pages.run_cost_header("03_training", shown, [other], profile="smoke")
    assert "`smoke` (shown here): **14.2 s** on AMD EPYC (2 cores), no GPU, 2026-11-25" in text
    assert "`pocket`: **5 min 48 s** on Intel Xeon (8 cores), no GPU, 2026-11-24" in text
    assert "`make chapter CH=03 PROFILE=smoke`" in text
    assert "Not executed" in pages.run_cost_header("03_training", None, [], profile="smoke")


def test_run_history_keeps_each_profiles_last_run(tmp_path) -> None:
    history = RunHistory.load(tmp_path / "h.json")
    history.record(ChapterRun("smoke", 1.0, "t1", "d"), "a")
    history.record(ChapterRun("pocket", 9.0, "t2", "d"), "a")
    history.record(ChapterRun("smoke", 2.0, "t3", "d"), "a")
    history.save()
    runs = RunHistory.load(tmp_path / "h.json").runs("a")
    assert [(r.profile, r.seconds, r.finished) for r in runs] == [
        ("smoke", 2.0, "t3"),
        ("pocket", 9.0, "t2"),
    ]
    (tmp_path / "h.json").write_text("not json")
    assert RunHistory.load(tmp_path / "h.json").runs("a") == []


# --- progress and the terminal ---------------------------------------------------------------


def test_bars_report_to_the_progress_file_even_when_not_drawn(tmp_path, monkeypatch) -> None:
    target = tmp_path / "progress.json"
    monkeypatch.setenv(PROGRESS_ENV, "0")
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(target))
    stream = io.StringIO()
    outer = progress_bar(progress=True, total=3, desc="grid", unit="run", file=stream)
    outer.update()
    inner = progress_bar(progress=True, total=10, desc="2APAE-snr20", unit="batch", file=stream)
    inner.update(10)  # a finished bar is always written
    bars = read_progress(target)
    assert [(b["desc"], b["n"], b["total"]) for b in bars] == [
        ("grid", 1, 3),
        ("2APAE-snr20", 10, 10),
    ]
    assert describe_progress(bars) == "grid 1/3 runs · 2APAE-snr20 10/10 batches"
    inner.close()
    assert [b["desc"] for b in read_progress(target)] == ["grid"]
    outer.close()
    assert read_progress(target) == [] and stream.getvalue() == ""  # nothing drawn


def test_chapter_line_redraws_on_a_terminal_and_prints_one_line_elsewhere() -> None:
    echoed: list[str] = []
    terminal = io.StringIO()
    line = ChapterLine(echoed.append, terminal)
    line.show("[book] 04: executing 1.0 s · grid 1/12 runs")
    line.show("[book] 04: executing 2.0 s")
    line.finish("[book] 04: executed in 2.0 s")
    drawn = terminal.getvalue()
    assert drawn.count("\r") >= 3 and "grid 1/12 runs" in drawn
    assert drawn.endswith("\r") and echoed == ["[book] 04: executed in 2.0 s"]
    quiet: list[str] = []
    log = ChapterLine(quiet.append, None)
    log.show("progress")  # no terminal: nothing but the final line
    log.finish("done")
    assert quiet == ["done"]


def test_progress_watcher_describes_the_file_and_removes_it(tmp_path) -> None:
    target = tmp_path / "p.json"
    seen: list[tuple[float, str]] = []
    with ProgressWatcher(target, lambda s, t: seen.append((s, t)), interval=3600) as watcher:
        target.write_text(json.dumps([{"desc": "grid", "n": 2, "total": 5, "unit": "run"}]))
        watcher.poll()
    assert seen[-1][1] == "grid 2/5 runs" and seen[-1][0] >= 0
    assert not target.exists()


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def test_kernels_run_quietly_and_see_the_progress_file(tmp_path, capfd) -> None:
    source = _notebook(
        tmp_path / "c.ipynb", "import os\nprint(os.environ.get('PAPERLIB_PROGRESS_FILE'))"
    )
    out = tmp_path / "out" / "c.ipynb"
    execute_chapter(source, out, parameters={}, cell_timeout_s=60, cwd=tmp_path,
                    failed_dir=tmp_path / "failed", progress=lambda s, t: None)  # fmt: skip
    printed = nbformat.read(str(out), as_version=4).cells[0].outputs[0]["text"]
    assert printed.strip().endswith(".c.progress.json")
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out
    assert "[IPKernelApp]" not in captured.err + captured.out
    assert not list(out.parent.glob("*.progress.json"))


# --- the runner: one chapter alone, headers --------------------------------------------------


@pytest.fixture
def book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two fake chapters with a title and parameters; the library's hash held fixed."""
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(runner, "source_tree_hash", lambda _package: "fixed")
    _no_overrides(monkeypatch)
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_config.yml").write_text(
        "title: fake\nrepository:\n  url: https://github.com/o/b\n  branch: main\n"
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/intro\nchapters:\n"
        "  - file: chapters/01_a\n  - file: chapters/02_b\n"
    )
    (tmp_path / "chapters" / "intro.md").write_text("# Intro\n")
    for name in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('profile: str = "pocket"')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# 1. {name}"), params,
                    nbformat.v4.new_code_cell("print(profile)")]  # fmt: skip
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        nbformat.write(nb, str(tmp_path / "chapters" / f"{name}.ipynb"))
    return tmp_path


def test_one_chapter_alone_skips_the_html_until_the_others_ran(book: Path) -> None:
    lines: list[str] = []
    record = runner.run_book("smoke", source=book, only="01", echo=lines.append)
    assert [c.state for c in record.chapters] == ["executed", "not executed (--only)"]
    assert record.html_seconds is None and not (book / "_build" / "html").exists()
    assert any(line.startswith("[book] HTML not built: 02_b not executed") for line in lines)
    executed = book / "_build" / "book" / "chapters" / "01_a.ipynb"
    assert f"[book] executed notebook: {executed}" in lines
    assert sum(line.startswith("[book] 01_a") for line in lines) == 1  # one line per chapter


def test_headers_show_each_profiles_last_run_from_the_history(book: Path) -> None:
    quiet = {"build": False, "echo": lambda _line: None}
    first = runner.run_book("smoke", source=book, **quiet)
    runner.run_book("smoke", source=book, assignments=["train.epochs=2"], **quiet)
    executed = nbformat.read(str(book / "_build" / "book" / "chapters" / "01_a.ipynb"), 4)
    header = next(c.source for c in executed.cells if "run-cost" in c.metadata.get("tags", []))
    assert "`smoke, modified` (shown here)" in header and "- `smoke`: **" in header
    assert executed.cells[0].source == "# 01_a" and executed.cells[1].source == header
    history = json.loads((book / "_build" / "runner" / "run_history.json").read_text())
    assert history["smoke"]["01_a"]["seconds"] == pytest.approx(first.chapters[0].seconds, abs=0.01)
    assert set(history) == {"smoke", "smoke, modified"}


def test_a_failing_chapter_ends_its_line(book: Path) -> None:
    nb = nbformat.read(str(book / "chapters" / "02_b.ipynb"), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("1 / 0"))
    nbformat.write(nb, str(book / "chapters" / "02_b.ipynb"))
    lines: list[str] = []
    with pytest.raises(ChapterFailedError):
        runner.run_book("smoke", source=book, build=False, echo=lines.append)
    assert lines[-1] == "[book] 02_b: failed (smoke)" and lines[0].startswith(
        "[book] 01_a: executed"
    )


def test_one_chapter_alone_runs_even_when_unchanged(book: Path) -> None:
    quiet = {"build": False, "echo": lambda _line: None}
    runner.run_book("smoke", source=book, **quiet)
    again = runner.run_book("smoke", source=book, only="02_b", **quiet)
    assert [c.state for c in again.chapters] == ["reused", "executed"]
    assert [c.state for c in runner.run_book("smoke", source=book, **quiet).chapters] == [
        "reused",
        "reused",
    ]
