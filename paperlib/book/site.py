"""The build tree (``_build/book``) and the HTML build with ``jupyter-book build``.

Layout under an output root ``R`` (the repository root for ``make book``)::

    R/_build/book/        build tree: _config.yml, _toc.yml, chapters/*.md + references.bib,
                          executed chapters/*.ipynb and the generated chapters/status.md
    R/_build/html/        the site (index.html), written by ``jupyter-book build --path-output R``
    R/_build/runner/      manifest.json (reuse keys), run_history.json (last run time of each
                          chapter per profile) and failed/ (partly executed chapters)
    R/_build/status.json  the status record of the last build
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from paperlib import atomic
from paperlib.book.errors import BookError
from paperlib.book.launch import apply_repository, repository_from_config

BOOK_FILES: tuple[str, ...] = ("_config.yml", "_toc.yml")
SPHINX_EXTENSION = "paperlib.book.sphinx_ext"
"""Added to the build tree's ``_config.yml`` (``sphinx.extra_extensions``): page JS fixes."""
STATUS_PAGE = Path("chapters") / "status.md"
PROFILES_SOURCE = Path(__file__).resolve().parent.parent / "profiles"
PROFILES_IN_TREE = Path("chapters") / "profiles"
"""The shipped profile YAMLs are copied here so that pages can ``literalinclude`` them."""
"""Source placeholder that the runner replaces, in the build tree, with the generated page."""
JUPYTER_BOOK_FLAGS: tuple[str, ...] = ("-W", "-n", "--keep-going", "--builder", "html")
"""Warnings are errors, nitpicky references, every warning reported before failing."""
OUTPUT_TAIL_LINES = 40


@dataclass(frozen=True)
class BookLayout:
    """Where a book's sources are and where its build goes."""

    source: Path
    """Folder with ``_config.yml``, ``_toc.yml`` and ``chapters/``."""
    output: Path
    """Folder under which ``_build/`` is created."""

    @property
    def build(self) -> Path:
        return self.output / "_build"

    @property
    def tree(self) -> Path:
        return self.build / "book"

    @property
    def html(self) -> Path:
        return self.build / "html"

    @property
    def index(self) -> Path:
        return self.html / "index.html"

    @property
    def manifest(self) -> Path:
        return self.build / "runner" / "manifest.json"

    @property
    def failed(self) -> Path:
        return self.build / "runner" / "failed"

    @property
    def run_history(self) -> Path:
        return self.build / "runner" / "run_history.json"

    @property
    def status_json(self) -> Path:
        return self.build / "status.json"

    def executed(self, notebook: Path) -> Path:
        """Where the executed copy of a source notebook lives in the build tree."""
        return self.tree / notebook.relative_to(self.source)


def copy_if_changed(src: Path, dest: Path) -> bool:
    """Copy ``src`` to ``dest`` unless the contents are equal (keeps Sphinx's build incremental)."""
    if dest.is_file() and filecmp.cmp(src, dest, shallow=False):
        return False
    with atomic.atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return True


def write_if_changed(dest: Path, text: str) -> bool:
    """Write ``text`` to ``dest`` atomically unless it already holds exactly that."""
    if dest.is_file() and dest.read_text() == text:
        return False
    atomic.write_text(dest, text)
    return True


def sync_tree(layout: BookLayout) -> None:
    """Copy the book's non-notebook sources into the build tree (only what changed).

    Copies ``_config.yml``, ``_toc.yml`` and every file in ``chapters/`` that is not a notebook
    (Markdown pages, ``references.bib``, images) and the shipped profile YAMLs (into
    ``chapters/profiles/``); the status page is generated separately.

    Raises:
        FileNotFoundError: ``_config.yml`` or ``_toc.yml`` is missing from the source folder.
    """
    for name in BOOK_FILES:
        src = layout.source / name
        if not src.is_file():
            raise FileNotFoundError(f"book file not found: {src}")
        if name == "_config.yml":
            write_if_changed(layout.tree / name, tree_config(src))
        else:
            copy_if_changed(src, layout.tree / name)
    chapters = layout.source / "chapters"
    for src in sorted(chapters.rglob("*")):
        rel = src.relative_to(layout.source)
        if (
            not src.is_file()
            or src.suffix == ".ipynb"
            or rel == STATUS_PAGE
            or "_build" in rel.parts
            or any(part.startswith(".") for part in rel.parts)
        ):
            continue
        copy_if_changed(src, layout.tree / rel)
    for src in sorted(PROFILES_SOURCE.glob("*.yaml")):
        copy_if_changed(src, layout.tree / PROFILES_IN_TREE / src.name)


def tree_config(config_path: Path) -> str:
    """The build tree's ``_config.yml``: the book's, plus :data:`SPHINX_EXTENSION`.

    The ``repository`` section (launch buttons) takes ``$PAPERLIB_BOOK_REPOSITORY`` and
    ``$PAPERLIB_BOOK_BRANCH`` into account (:func:`paperlib.book.launch.repository_from_config`).

    Raises:
        BookError: the file is not a YAML mapping.
    """
    config = yaml.safe_load(config_path.read_text()) or {}
    if not isinstance(config, dict):
        raise BookError(f"{config_path}: expected a YAML mapping")
    sphinx = config.setdefault("sphinx", {}) or {}
    config["sphinx"] = sphinx
    extensions = list(sphinx.get("extra_extensions") or [])
    if SPHINX_EXTENSION not in extensions:
        extensions.append(SPHINX_EXTENSION)
    sphinx["extra_extensions"] = extensions
    repository = repository_from_config(config)
    if repository is not None:
        apply_repository(config, repository)
    header = f"# Generated by the book runner from {config_path.name} (+ {SPHINX_EXTENSION}).\n"
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def jupyter_book_command() -> list[str]:
    """The ``jupyter-book`` executable next to this Python (the venv's), else on ``PATH``."""
    local = Path(sys.executable).with_name("jupyter-book")
    if local.is_file():
        return [str(local)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed (pip install -e '.[book]')")
    return [found]


def build_html(layout: BookLayout) -> None:
    """``jupyter-book build`` the build tree into ``layout.html`` without executing anything.

    Raises:
        BookError: the build failed (any warning counts); the message holds the output tail.
    """
    command = [
        *jupyter_book_command(),
        "build",
        str(layout.tree),
        "--path-output",
        str(layout.output),
        *JUPYTER_BOOK_FLAGS,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not layout.index.is_file():
        text = (result.stdout + "\n" + result.stderr).strip().splitlines()
        tail = "\n".join(text[-OUTPUT_TAIL_LINES:])
        raise BookError(
            f"jupyter-book build of {layout.tree} failed (exit {result.returncode}; warnings are "
            f"errors):\n{tail}"
        )
