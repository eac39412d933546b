"""Which files make the book, in reading order, as listed in ``_toc.yml`` (Jupyter Book 1.x)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from paperlib.book.errors import BookError

SOURCE_SUFFIXES: tuple[str, ...] = (".ipynb", ".md")
"""Suffixes a toc entry may resolve to (the toc names files without their suffix)."""


def _entries(node: Any) -> Iterator[str]:
    """Every ``file:`` entry below ``node`` in document order (parts, chapters, sections)."""
    if isinstance(node, Mapping):
        if "file" in node:
            yield str(node["file"])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                yield from _entries(child)
    elif isinstance(node, list):
        for child in node:
            yield from _entries(child)


def toc_entries(toc_path: Path) -> list[str]:
    """The toc's files in reading order, root first, without suffix (e.g. ``chapters/intro``).

    Raises:
        FileNotFoundError: ``toc_path`` does not exist.
        BookError: the file is not a Jupyter Book toc (no ``root``).
    """
    if not toc_path.is_file():
        raise FileNotFoundError(f"table of contents not found: {toc_path}")
    toc = yaml.safe_load(toc_path.read_text())
    if not isinstance(toc, Mapping) or "root" not in toc:
        raise BookError(f"{toc_path}: expected a Jupyter Book toc with a 'root' entry")
    return [str(toc["root"]), *_entries({k: v for k, v in toc.items() if k != "root"})]


def resolve_entry(book_dir: Path, entry: str) -> Path:
    """The source file of a toc entry (``chapters/01_data`` -> ``chapters/01_data.ipynb``).

    Raises:
        FileNotFoundError: no ``.ipynb`` or ``.md`` file exists for the entry.
    """
    base = book_dir / entry
    if base.suffix in SOURCE_SUFFIXES and base.is_file():
        return base
    for suffix in SOURCE_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"_toc.yml lists {entry!r} but neither {entry}.ipynb nor {entry}.md exists in {book_dir}"
    )


def toc_notebooks(book_dir: Path) -> list[Path]:
    """The notebooks of the book in reading order (the chapters the runner executes)."""
    files = [resolve_entry(book_dir, e) for e in toc_entries(book_dir / "_toc.yml")]
    return [f for f in files if f.suffix == ".ipynb"]


def chapter_name(path: Path) -> str:
    """Short name of a chapter file: ``chapters/03_training.ipynb`` -> ``03_training``."""
    return path.stem
