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
    parser.add_argument("--only", metavar="CHAPTER", help="execute just this chapter (e.g. 06)")
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
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from paperlib.book.errors import ChapterFailedError
    from paperlib.book.runner import run_book

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
