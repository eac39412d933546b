"""The book runner on tiny fake books: bad input, failures, reuse (no HTML build here)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from paperlib import cli
from paperlib.book import preflight, runner
from paperlib.book.errors import BookError, ChapterFailedError, DataMissingError, GPURequiredError
from paperlib.book.status import StatusRecord, render_status_page
from paperlib.book.toc import resolve_entry, toc_entries
from paperlib.config import ConfigError, load_profile

GOOD = 'print("hello", profile, n)'


def write_notebook(path: Path, cells: list[str], parameters: str) -> None:
    """A notebook with a title, a tagged parameters cell and ``cells`` as code cells."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


@pytest.fixture
def book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A book of two chapters (a, b) and a page; paperlib's source hash is held fixed."""
    monkeypatch.setenv("PAPERLIB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(runner, "source_tree_hash", lambda _package: "fixed")
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (tmp_path / "_config.yml").write_text("title: fake\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/intro\nparts:\n  - caption: P\n    chapters:\n"
        "      - file: chapters/a\n      - file: chapters/b\n"
    )
    (chapters / "intro.md").write_text("# Intro\n")
    write_notebook(chapters / "a.ipynb", [GOOD], 'profile: str = "pocket"  # p\nn: int = 1  # n')
    write_notebook(chapters / "b.ipynb", ["x = 2 * 2", "1 / 0", "never = 1"], 'profile: str = "x"')
    return tmp_path


def run(book: Path, *args: str, **kwargs):
    return runner.run_book(
        "smoke", source=book, build=False, echo=lambda _line: None, assignments=args, **kwargs
    )


def test_toc_order_and_missing_entry(book: Path) -> None:
    assert toc_entries(book / "_toc.yml") == ["chapters/intro", "chapters/a", "chapters/b"]
    assert resolve_entry(book, "chapters/a") == book / "chapters" / "a.ipynb"
    with pytest.raises(FileNotFoundError, match=r"chapters/zz\.ipynb nor chapters/zz\.md"):
        resolve_entry(book, "chapters/zz")


def test_parse_assignments_splits_parameters_and_profile_fields() -> None:
    params, overrides = preflight.parse_assignments(
        ["n=3", "name=abc", "train.epochs=2", "x=[1, 2]"]
    )
    assert params == {"n": 3, "name": "abc", "x": [1, 2]}
    assert overrides == {"train.epochs": 2}
    with pytest.raises(BookError, match="name=value"):
        preflight.parse_assignments(["novalue"])


def test_unknown_profile_lists_valid_ones(book: Path) -> None:
    with pytest.raises(ConfigError, match="valid profiles: pocket, paper, full, smoke"):
        runner.run_book("smokey", source=book, build=False, echo=lambda _l: None)


def test_unknown_parameter_lists_valid_ones_per_chapter(book: Path) -> None:
    with pytest.raises(BookError, match=r"unknown parameter\(s\) m;.*a: profile, n; b: profile"):
        run(book, "m=1")
    with pytest.raises(BookError, match="use --profile"):
        run(book, "profile=pocket")
    with pytest.raises(ConfigError, match="valid keys in train"):
        run(book, "train.epoch=1")


def test_unknown_chapter_lists_valid_ones(book: Path) -> None:
    with pytest.raises(BookError, match="valid chapters: a, b"):
        run(book, only="zz")


def test_failing_chapter_names_chapter_cell_and_traceback(book: Path) -> None:
    with pytest.raises(ChapterFailedError) as info:
        run(book, "n=5")
    error = info.value
    assert error.chapter == "b"
    assert error.cell_index == 3  # 0: title, 1: parameters, 2: x = 2 * 2, 3: 1 / 0
    assert "1 / 0" in error.cell_source
    assert "ZeroDivisionError" in error.traceback_tail
    assert "chapter 'b' failed in cell 3" in str(error)
    failed = nbformat.read(error.executed_path, as_version=4)
    assert "never" not in str([c.get("outputs") for c in failed.cells if "never" in c.source])
    # the good chapter ran and was recorded; the failed one left no executed copy
    assert (book / "_build" / "book" / "chapters" / "a.ipynb").is_file()
    assert not (book / "_build" / "book" / "chapters" / "b.ipynb").exists()
    executed = nbformat.read(str(book / "_build" / "book" / "chapters" / "a.ipynb"), as_version=4)
    assert executed.metadata.papermill.parameters == {"profile": "smoke", "n": 5}


def test_cli_reports_failure_with_nonzero_exit(book: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["book", "--profile", "smoke", "--source", str(book), "--no-html"])
    assert code == 1
    err = capsys.readouterr().err
    assert "chapter 'b' failed in cell 3" in err and "ZeroDivisionError" in err


def test_cli_bad_profile_exits_2(book: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["book", "--profile", "nope", "--source", str(book)]) == 2
    assert "valid profiles" in capsys.readouterr().err


def test_reuse_skips_unchanged_chapters(book: Path) -> None:
    (book / "chapters" / "b.ipynb").unlink()
    write_notebook(book / "chapters" / "b.ipynb", ["y = 1"], 'profile: str = "x"  # p')
    first = run(book, "n=2")
    assert [c.state for c in first.chapters] == ["executed", "executed"]
    second = run(book, "n=2")
    assert [c.state for c in second.chapters] == ["reused", "reused"]
    assert second.chapters[0].executed_seconds == pytest.approx(first.chapters[0].seconds, abs=0.01)
    # a parameter only chapter a declares re-executes a alone
    third = run(book, "n=3")
    assert [c.state for c in third.chapters] == ["executed", "reused"]
    # an edited notebook re-executes; so does another profile field
    write_notebook(book / "chapters" / "b.ipynb", ["y = 2"], 'profile: str = "x"  # p')
    assert [c.state for c in run(book, "n=3").chapters] == ["reused", "executed"]
    overridden = run(book, "n=3", "train.epochs=3")
    assert [c.state for c in overridden.chapters] == ["executed", "executed"]
    assert load_profile(overridden.profile).train.epochs == 3  # chapters got the YAML path
    status = json.loads((book / "_build" / "status.json").read_text())
    assert [c["chapter"] for c in status["chapters"]] == ["a", "b"]
    assert status["versions"]["paperlib"] and status["device"]["cpu_cores"] >= 1


def test_only_executes_one_chapter(book: Path) -> None:
    record = run(book, only="a")
    assert [c.state for c in record.chapters] == ["executed", "not executed (--only)"]
    # the left-out chapter is shown unexecuted so the site still builds
    assert (book / "_build" / "book" / "chapters" / "b.ipynb").is_file()


def test_cell_timeout_fails_the_chapter(book: Path) -> None:
    write_notebook(
        book / "chapters" / "a.ipynb", ["import time", "time.sleep(30)"], 'profile: str = "p"'
    )
    with pytest.raises(ChapterFailedError, match="chapter 'a' failed in cell 3") as info:
        run(book, "book.cell_timeout_s=2")
    assert "time.sleep(30)" in info.value.cell_source
    assert "Timeout" in info.value.traceback_tail or "timed out" in info.value.traceback_tail


def test_paper_profile_without_data_says_what_to_download(book: Path) -> None:
    with pytest.raises(DataMissingError) as info:
        runner.run_book("paper", source=book, build=False, echo=lambda _l: None)
    message = str(info.value)
    for text in (
        "10.5281/zenodo.2552860",
        "10.5281/zenodo.2589280",
        "python -m paperlib download --dest DIR",
        "train_post_competition.csv",
        "meta.csv",
        str(book / "ws" / "paper" / "data" / "sources" / "FSDKaggle2018"),
        "data.fsd_dir",
    ):
        assert text in message


def test_paper_profile_data_check_passes_with_the_files(tmp_path: Path) -> None:
    fsd, tau = tmp_path / "fsd", tmp_path / "tau"
    (fsd / "audio_train").mkdir(parents=True)
    (fsd / "train_post_competition.csv").write_text("fname,label,manually_verified\n")
    (tau / "audio").mkdir(parents=True)
    (tau / "meta.csv").write_text("filename\tscene_label\n")
    from paperlib.config import profile_with_overrides

    profile = profile_with_overrides(
        load_profile("paper"), {"data.fsd_dir": str(fsd), "data.tau_dir": str(tau)}
    )
    preflight.check_dcase_data(profile)  # no error
    (tau / "meta.csv").unlink()
    with pytest.raises(DataMissingError, match=r"tau: missing meta\.csv"):
        preflight.check_dcase_data(profile)


def test_paper_profile_without_gpu_needs_allow_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "cuda_available", lambda: False)
    paper = load_profile("paper")
    rate = 1e11
    # 5 models x 3 SNRs x 4 folds + (alphas 0 and 0.01 + linear decoder) x 3 SNRs x 4 folds,
    # + the robustness study: 2APAE-local fixed and 6 models random, at 0 and 20 dB, x 4 folds
    cells = 5 * 3 * 4 + 3 * 3 * 4 + (1 + 6) * 2 * 4
    assert preflight.grid_run_count(paper) == cells
    expected = 210e9 * (3 * 2000) * 80 * cells / rate
    assert preflight.estimate_cpu_seconds(paper, rate) == pytest.approx(expected)
    with pytest.raises(GPURequiredError, match="--allow-cpu") as info:
        preflight.check_gpu(paper, allow_cpu=False, flops_per_second=rate)
    assert f"{expected / 86400:,.0f} days" in str(info.value)
    warning = preflight.check_gpu(paper, allow_cpu=True, flops_per_second=rate)
    assert warning.startswith("warning:") and "days" in warning
    assert preflight.check_gpu(load_profile("pocket"), allow_cpu=False) == ""


def test_status_page_lists_chapters_versions_and_device() -> None:
    from paperlib.book.status import ChapterStatus

    record = StatusRecord(profile="smoke", profile_hash="abc", started="now")
    record.chapters = [
        ChapterStatus(
            "01_data", "executed", 12.5, 12.5, "data digest changed: source files changed"
        ),
        ChapterStatus("02_model", "reused", 0.0, 3.0, "inputs unchanged"),
    ]
    record.execute_seconds, record.html_seconds, record.total_seconds = 12.5, 30.0, 75.0
    page = render_status_page(record)
    assert page.startswith("# Build status")
    assert (
        "| 01_data | executed | data digest changed: source files changed | 12.5 | 12.5 |" in page
    )
    assert "| 02_model | reused | inputs unchanged | 0.0 | 3.0 |" in page
    assert "1 min 15 s" in page and "`smoke`" in page
    assert f"| torch | {record.versions['torch']} |" in page
    assert record.device["cpu"] in page
