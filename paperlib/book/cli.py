"""``python -m paperlib book``: the command line of the book runner."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paperlib.config import PROFILE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``book`` sub-command."""
    parser = subparsers.add_parser(
        "book",
        help="execute every chapter with papermill and build the site (make book)",
        description=(
            "Execute the chapters of _toc.yml in order with papermill (reusing chapters whose "
            "inputs are unchanged), then build the HTML with jupyter-book into _build/html."
        ),
    )
    parser.add_argument(
        "--profile",
        default="pocket",
        help=f"profile name ({', '.join(PROFILE_NAMES)}) or a .yaml path (default: pocket)",
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run a GPU profile (paper) on a machine without a GPU",
    )
    parser.add_argument(
        "--only",
        metavar="CHAPTER",
        help="execute just this chapter (e.g. 06), even if unchanged (make chapter CH=06)",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a chapter parameter (name=value) or profile field (train.epochs=2); repeatable",
    )
    parser.add_argument(
        "--source", type=Path, default=None, help="book folder (default: the repository root)"
    )
    parser.add_argument("--output", type=Path, default=None, help="folder under which _build/ goes")
    parser.add_argument(
        "--no-html", action="store_true", help="execute the chapters but skip jupyter-book"
    )
    parser.add_argument(
        "--colab-cells",
        action="store_true",
        help="write the Colab setup cell (from _config.yml's repository) into every chapter "
        "notebook of _toc.yml, then exit without executing anything",
    )
    parser.set_defaults(handler=_handle)


def _write_colab_cells(source: Path | None) -> int:
    import yaml

    from paperlib import paths
    from paperlib.book.colab import write_setup_cells
    from paperlib.book.launch import repository_from_config
    from paperlib.book.toc import toc_notebooks

    book = (source or paths.project_root()).resolve()
    config = yaml.safe_load((book / "_config.yml").read_text()) or {}
    repository = repository_from_config(config, environ={})  # the committed cells follow the file
    if repository is None:
        print(f"error: {book / '_config.yml'} names no repository.url", file=sys.stderr)
        return 2
    changed = write_setup_cells(toc_notebooks(book), repository)
    for path in changed:
        print(f"[book] Colab setup cell written: {path}")
    print(f"[book] {len(changed)} notebook(s) changed; installs {repository.requirement!r}")
    return 0


def _handle(args: argparse.Namespace) -> int:
    from paperlib.book.errors import ChapterFailedError
    from paperlib.book.runner import run_book

    if args.colab_cells:
        return _write_colab_cells(args.source)
    try:
        run_book(
            args.profile,
            source=args.source,
            output=args.output,
            only=args.only,
            assignments=args.assignments,
            allow_cpu=args.allow_cpu,
            build=not args.no_html,
        )
    except ChapterFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
