"""``python -m paperlib book``: execute every chapter with papermill, then build the site.

Steps: validate the input (:mod:`paperlib.book.preflight`); copy the book's pages into the build
tree; execute each notebook of ``_toc.yml`` in order, reusing an executed copy whose input key
and workspace inputs are unchanged (:mod:`paperlib.book.execute`, :mod:`paperlib.book.inputs`;
the status page says why each chapter was executed or reused), one terminal line per chapter
(:mod:`paperlib.book.console`); stop at the first failing chapter; dress the executed copies
(run-cost header, hidden runner cells: :mod:`paperlib.book.pages`); generate the status page;
``jupyter-book build`` with warnings as errors; write the status record.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from paperlib import paths
from paperlib.book import preflight
from paperlib.book.console import ChapterLine
from paperlib.book.errors import BookError
from paperlib.book.execute import Manifest, execute_chapter, input_key, source_tree_hash
from paperlib.book.inputs import WorkspaceInputs
from paperlib.book.launch import Repository, repository_from_config
from paperlib.book.pages import dress_file, run_cost_header
from paperlib.book.site import (
    STATUS_PAGE,
    BookLayout,
    build_html,
    copy_if_changed,
    sync_tree,
    write_if_changed,
)
from paperlib.book.status import (
    ChapterRun,
    ChapterStatus,
    RunHistory,
    StatusRecord,
    device_summary,
    format_seconds,
    render_status_page,
)
from paperlib.book.toc import toc_notebooks
from paperlib.config import config_hash


def select_chapters(notebooks: Sequence[Path], only: str | None) -> list[Path]:
    """The notebooks to execute: all, or the one ``only`` names (stem, number prefix or path).

    Raises:
        BookError: ``only`` matches no chapter or several (the valid names are listed).
    """
    if only is None:
        return list(notebooks)
    wanted = Path(only).stem
    matches = [nb for nb in notebooks if nb.stem == wanted or nb.stem.split("_")[0] == wanted]
    if len(matches) != 1:
        valid = ", ".join(nb.stem for nb in notebooks)
        raise BookError(f"--only {only!r} names no single chapter; valid chapters: {valid}")
    return matches


def profile_label(settings: preflight.Settings) -> str:
    """How pages and logs name the profile: ``smoke``, or ``smoke, modified`` when the
    chapters received a YAML file (``--set section.key=value`` overrides, or a profile file)."""
    name = settings.profile.name
    return name if settings.profile_parameter == name else f"{name}, modified"


def book_repository(source: Path) -> Repository | None:
    """The launch repository of the book in ``source`` (``_config.yml`` and the environment)."""
    config = yaml.safe_load((source / "_config.yml").read_text()) or {}
    return repository_from_config(config if isinstance(config, dict) else {})


def _progress_line(line: ChapterLine, chapter: str, label: str) -> Callable[[float, str], None]:
    """The callback that redraws ``[book] 04_results: executing (pocket) 1 min 20 s · grid 3/12 runs``."""

    def show(elapsed: float, progress: str) -> None:
        text = f"[book] {chapter}: executing ({label}) {format_seconds(elapsed)}"
        line.show(text + (f" · {progress}" if progress else ""))

    return show


def run_book(
    profile: str,
    *,
    source: Path | None = None,
    output: Path | None = None,
    only: str | None = None,
    assignments: Sequence[str] = (),
    allow_cpu: bool = False,
    build: bool = True,
    echo: Callable[[str], None] = print,
) -> StatusRecord:
    """Execute the book's chapters for ``profile`` and build the site; return the status record.

    Args:
        profile: profile name (``pocket``, ``smoke``, ``paper``) or YAML path.
        source: folder with ``_config.yml``, ``_toc.yml``, ``chapters/`` (default: repo root).
        output: folder under which ``_build/`` goes (default: ``source``).
        only: execute just this chapter, even if its inputs are unchanged (the others keep
            their executed copies; the HTML is built only if every other chapter was executed
            in this output folder before).
        assignments: ``--set`` items: ``name=value`` notebook parameters or
            ``section.key=value`` profile overrides.
        allow_cpu: run a ``requires_gpu`` profile without a GPU.
        build: also run ``jupyter-book build`` (tests of the execution part turn it off).
        echo: where progress lines go.

    Raises:
        ConfigError / BookError: unknown profile, parameter or chapter (valid ones listed).
        DataMissingError: a ``dcase`` profile without the data (what to download and where).
        GPURequiredError: a ``requires_gpu`` profile without a GPU and without ``allow_cpu``.
        ChapterFailedError: a chapter failed (chapter, cell, traceback tail).
    """
    started = time.perf_counter()
    layout = BookLayout(
        (source or paths.project_root()).resolve(), (output or source or paths.project_root())
    )
    layout = BookLayout(layout.source, layout.output.resolve())
    notebooks = toc_notebooks(layout.source)
    selected = select_chapters(notebooks, only)
    settings = preflight.resolve_settings(
        profile, assignments, selected if only else notebooks, build_dir=layout.build
    )
    preflight.check_dcase_data(settings.profile)
    warning = preflight.check_gpu(settings.profile, allow_cpu=allow_cpu)
    if warning:
        echo(warning)

    sync_tree(layout)
    manifest = Manifest.load(layout.manifest)
    history = RunHistory.load(layout.run_history)
    profile_hash = config_hash(settings.profile)
    library_hash = source_tree_hash(Path(preflight.__file__).resolve().parent.parent)
    record = StatusRecord(
        profile=settings.profile_parameter,
        profile_hash=profile_hash,
        started=StatusRecord.now(),
        parameters=dict(settings.parameters),
    )
    label = profile_label(settings)
    device = device_summary(record.device)
    repository = book_repository(layout.source)
    line = ChapterLine.for_echo(echo)
    timeout = settings.profile.book.cell_timeout_s
    workspace = WorkspaceInputs(settings.profile)  # what the chapters read, by content
    for notebook in notebooks:
        chapter = notebook.stem
        executed = layout.executed(notebook)
        declared = preflight.notebook_parameters(notebook)
        parameters = {"profile": settings.profile_parameter}
        parameters.update({k: v for k, v in settings.parameters.items() if k in declared})
        key = input_key(
            notebook, profile_hash=profile_hash, parameters=parameters, library_hash=library_hash
        )
        previous = manifest.entries.get(chapter, {}).get("seconds")
        forced = only is not None and notebook in selected  # `make chapter` always runs it
        reason = (
            "--only names it"
            if forced
            else manifest.execute_reason(chapter, key, executed, workspace.of(chapter))
        )
        if reason is None:
            record.chapters.append(
                ChapterStatus(chapter, "reused", 0.0, previous, "inputs unchanged")
            )
            line.finish(f"[book] {chapter}: reused (inputs unchanged)")
        elif notebook not in selected:
            if not executed.is_file():
                copy_if_changed(notebook, executed)  # shown without outputs
            state = "not executed (--only)"
            record.chapters.append(
                ChapterStatus(chapter, state, 0.0, previous, f"out of date: {reason}")
            )
            line.finish(f"[book] {chapter}: {state}")
        else:
            manifest.forget(chapter)
            try:
                seconds = execute_chapter(
                    notebook,
                    executed,
                    parameters=parameters,
                    cell_timeout_s=timeout,
                    cwd=notebook.parent,
                    failed_dir=layout.failed,
                    progress=_progress_line(line, chapter, label) if line.live else None,
                )
            except BaseException:
                workspace.changed()
                line.finish(f"[book] {chapter}: failed ({label})")
                raise
            workspace.changed()  # it may have made data or runs: what it read is the state now
            run = ChapterRun(label, seconds, StatusRecord.now(), device)
            manifest.record(chapter, key, run, workspace.of(chapter))
            history.record(run, chapter)
            history.save()
            record.chapters.append(
                ChapterStatus(chapter, "executed", round(seconds, 2), seconds, reason)
            )
            line.finish(
                f"[book] {chapter}: executed in {format_seconds(seconds)} ({label}): {reason}"
            )
        if executed.is_file():
            shown = manifest.shown_run(chapter)
            others = [
                r for r in history.runs(chapter) if shown is None or r.profile != shown.profile
            ]
            header = run_cost_header(chapter, shown, others, profile=settings.profile.name)
            dress_file(executed, header=header, repository=repository)
    record.execute_seconds = round(time.perf_counter() - started, 2)

    status_page = layout.tree / STATUS_PAGE
    unexecuted = [nb.stem for nb in notebooks if manifest.shown_run(nb.stem) is None]
    if build and unexecuted:
        build = False
        echo(
            f"[book] HTML not built: {', '.join(unexecuted)} not executed in {layout.build} yet "
            "(their pages would lack the values the text quotes); `make book` executes them all"
        )
    if only is not None:
        for notebook in selected:
            echo(f"[book] executed notebook: {layout.executed(notebook)}")
    if build:
        write_if_changed(status_page, render_status_page(record))
        echo("[book] building the HTML with jupyter-book (warnings are errors) ...")
        html_start = time.perf_counter()
        build_html(layout)
        record.html_seconds = round(time.perf_counter() - html_start, 2)
        record.total_seconds = round(time.perf_counter() - started, 2)
        # second, incremental pass: only the status page changed, now with the full timings
        write_if_changed(status_page, render_status_page(record))
        build_html(layout)
    record.total_seconds = round(time.perf_counter() - started, 2)
    record.save(layout.status_json)
    if build:
        echo(f"[book] site: {layout.index}  (open it in a browser)")
    echo(f"[book] status record: {layout.status_json}; total {record.total_seconds:.1f} s")
    return record


def clean(layout: BookLayout) -> None:
    """Remove the build tree and the runner state (the library's caches are kept)."""
    for folder in (layout.tree, layout.build / "runner"):
        shutil.rmtree(folder, ignore_errors=True)
