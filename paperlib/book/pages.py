"""What the runner changes in an executed chapter before the site is built ("dressing").

Applied to the executed copy in the build tree (never to the source notebook), at every build,
idempotently:

- the title cell keeps only the ``# Title`` line (the rest of its text becomes the next cell) and
  loses a typed number (``# 1. Data`` -> ``# Data``): the navigation numbers the chapters from
  ``_toc.yml`` (``numbered: true``), so every title is numbered the same way;
- the run-cost header (tag :data:`HEADER_TAG`) follows the title: the measured time of the
  execution shown, with its profile and machine, the last run of every other profile built in
  this folder (:class:`paperlib.book.status.RunHistory`), and the command that runs the chapter
  alone;
- papermill's injected-parameters cell is tagged ``remove-cell``: the page shows the chapter's
  own parameters cell once, and the header names the profile the page was executed with;
- the Colab setup cell names the build's repository and ref (:mod:`paperlib.book.colab`), when
  the book names a repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from paperlib.book.colab import ensure_setup_cell, find_setup_cell
from paperlib.book.launch import Repository
from paperlib.book.status import ChapterRun, format_seconds

HEADER_TAG = "run-cost"
INJECTED_TAG = "injected-parameters"
"""Tag of the cell papermill inserts after the parameters cell."""
_TITLE = re.compile(r"^#[ \t]+(?:\d+(?:\.\d+)*\.[ \t]+)?(?P<title>\S.*)$")


def chapter_command(chapter: str, profile: str) -> str:
    """``make chapter CH=03 PROFILE=smoke``: how to run one chapter alone."""
    number = chapter.split("_", 1)[0]
    return f"make chapter CH={number} PROFILE={profile}"


def run_cost_header(
    chapter: str, shown: ChapterRun | None, others: list[ChapterRun], *, profile: str
) -> str:
    """The header's MyST Markdown.

    Args:
        chapter: the chapter's name (``03_training``).
        shown: the execution whose outputs the page shows (``None``: not executed yet).
        others: the last runs of the chapter with other profiles.
        profile: the profile of this build (for the command line shown).
    """
    lines = [":::{admonition} Run cost of this chapter", ":class: run-cost"]
    if shown is None:
        lines.append("- Not executed yet in this build folder: the page shows no outputs.")
    else:
        lines.append(
            f"- `{shown.profile}` (shown here): **{format_seconds(shown.seconds)}** on "
            f"{shown.device}, {shown.finished[:10]}"
        )
    for run in others:
        lines.append(
            f"- `{run.profile}`: **{format_seconds(run.seconds)}** on {run.device}, "
            f"{run.finished[:10]}"
        )
    lines += [
        "",
        f"Run it alone: `{chapter_command(chapter, profile)}`. Wall times of the last "
        "execution; data and models already in the workspace's caches were reused, so a "
        "first run can take longer.",
        ":::",
    ]
    return "\n".join(lines)


def _split_title(nb: NotebookNode) -> None:
    """Leave only the (unnumbered) ``# Title`` line in the first cell, if it starts with one."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return
    first = nb.cells[0]
    head, _, rest = first.source.partition("\n")
    match = _TITLE.match(head.strip())
    if match is None:
        return
    first.source = f"# {match['title'].strip()}"
    if rest.strip():
        text = _new_markdown_cell(nb, rest.lstrip("\n"), f"{first.get('id', 'title')}-text")
        nb.cells.insert(1, text)


def _new_markdown_cell(nb: NotebookNode, source: str, cell_id: str) -> NotebookNode:
    """A markdown cell with a fixed id (a random one would change the page at every build)."""
    cell = nbformat.v4.new_markdown_cell(source)
    if nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = cell_id
    else:
        cell.pop("id", None)
    return cell


def _set_header(nb: NotebookNode, text: str) -> None:
    nb.cells = [c for c in nb.cells if HEADER_TAG not in c.get("metadata", {}).get("tags", [])]
    header = _new_markdown_cell(nb, text, HEADER_TAG)
    header.metadata["tags"] = [HEADER_TAG]
    position = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
    nb.cells.insert(position, header)


def _remove_injected_parameters(nb: NotebookNode) -> None:
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if INJECTED_TAG in tags and "remove-cell" not in tags:
            tags.append("remove-cell")


def dress_notebook(nb: NotebookNode, *, header: str, repository: Repository | None) -> NotebookNode:
    """Apply every change of the module docstring to ``nb`` (in place) and return it."""
    _split_title(nb)
    _set_header(nb, header)
    _remove_injected_parameters(nb)
    if repository is not None and find_setup_cell(nb) is not None:
        ensure_setup_cell(nb, repository)
    return nb


def dress_file(path: Path, *, header: str, repository: Repository | None) -> bool:
    """Dress the executed notebook at ``path``; write it only if it changed (``True`` then).

    Sphinx rebuilds only the pages whose source changed, so an unchanged chapter stays cached.
    """
    nb = nbformat.read(str(path), as_version=4)
    before = nbformat.writes(nb)
    after = nbformat.writes(dress_notebook(nb, header=header, repository=repository))
    if after == before:
        return False
    tmp = path.with_name(f".{path.name}.dress.tmp")
    tmp.write_text(after)
    os.replace(tmp, path)
    return True
