"""``python -m paperlib``: one command line, one sub-command per concern.

Each concern registers its own sub-commands (``register(subparsers)`` in its ``cli`` module), so
this file only dispatches; modules are imported lazily, keeping ``--help`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from paperlib import __version__

# sub-command -> module that defines ``register(subparsers) -> None``
COMMAND_MODULES: dict[str, str] = {
    "data": "paperlib.data.cli",
    "train": "paperlib.experiment.cli",
    "grid": "paperlib.experiment.cli",
    "download": "paperlib.download",
    "book": "paperlib.book.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m paperlib",
        description="Reproduce Deshmukh, Raj & Singh (2020): data, training, grid and book.",
    )
    parser.add_argument("--version", action="version", version=f"paperlib {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in dict.fromkeys(COMMAND_MODULES.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise
            continue  # that part of the library is not written yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as error:  # library errors already name the file or value
        from paperlib.atomic import DiskFullError, is_disk_full

        if is_disk_full(error) and not isinstance(error, DiskFullError):  # one line, with a path
            where = getattr(error, "filename", None)
            error = DiskFullError(
                f"no space left on the device{f' while writing {where}' if where else ''}; free "
                "some space or use a workspace on another disk (--workspace)"
            )
        print(f"error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)
