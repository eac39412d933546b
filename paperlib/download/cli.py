"""``python -m paperlib download``: fetch the paper's source datasets (see :mod:`.core`)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml

from paperlib import paths
from paperlib.download.catalog import DATASETS, DEFAULT_BASE_URL

__all__ = ["default_dest", "mixtures_command", "register"]

PAPER_PROFILE = "paper"


def default_dest() -> Path:
    """Where the paper profile looks for the sources when ``data.fsd_dir``/``tau_dir`` are unset
    (the parent of ``paths.fsd_dir`` and ``paths.tau_dir`` of the paper workspace)."""
    return paths.fsd_dir(paths.workspace_dir(PAPER_PROFILE)).parent


def mixtures_command(folders: dict[str, Path]) -> str:
    """The command that renders the paper's mixtures and features from the downloaded folders
    (``paperlib.data.cli``: ``data all --profile paper``, one ``--set KEY=VALUE`` per override).

    Overrides are added only for folders that differ from the paper profile's defaults; values
    are YAML (``--set`` parses them so), quoted when a path would not read back as itself.
    """
    workspace = paths.workspace_dir(PAPER_PROFILE)
    defaults = {"fsd": paths.fsd_dir(workspace), "tau": paths.tau_dir(workspace)}
    words = ["python", "-m", "paperlib", "data", "all", "--profile", PAPER_PROFILE]
    for key, folder in sorted(folders.items()):
        if folder.resolve() == defaults[key].resolve():
            continue
        value = str(folder)
        if yaml.safe_load(value) != value:  # e.g. "/data/a: b" would parse as a mapping
            value = json.dumps(value)  # a JSON string is a YAML string
        words += ["--set", f"data.{key}_dir={value}"]
    return shlex.join(words)


def _confirm(dest: Path, only: str | None) -> bool:
    names = [DATASETS[only].title] if only else [spec.title for spec in DATASETS.values()]
    print(f"This downloads {' and '.join(names)} from Zenodo into {dest}")
    print(
        "(both: about 40 GB of archives, about 50 GB of disk at the peak since each archive is "
        "deleted once extracted; the exact need is computed from the records and checked first)"
    )
    if not sys.stdin.isatty():
        print("error: not a terminal; pass --yes to confirm", file=sys.stderr)
        return False
    return input("Continue? [y/N] ").strip().lower() in ("y", "yes")


def _run(args: argparse.Namespace) -> int:
    from paperlib.download.core import download_datasets

    dest = Path(args.dest).expanduser().resolve()
    if not args.yes and not _confirm(dest, args.only):
        return 1
    result = download_datasets(
        dest,
        base_url=args.base_url,
        only=args.only,
        keep_archives=args.keep_archives,
        progress=not args.no_progress,
        retries=args.retries,
    )
    print(
        f"done: {len(result.downloaded)} archive(s) fetched, {len(result.skipped)} already in "
        f"place ({result.bytes_received / 1e6:.1f} MB received)"
    )
    for key, folder in result.folders.items():
        print(f"  {DATASETS[key].title if key in DATASETS else key}: {folder}")
    print("Create the paper's mixtures and features with:")
    print(f"  {mixtures_command(result.folders)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``download`` sub-command."""
    parser = subparsers.add_parser(
        "download",
        help="download, verify and extract FSDKaggle2018 and TAU Urban Acoustic Scenes 2019",
        description=(
            "Download FSDKaggle2018 (Zenodo 2552860: training audio + metadata) and TAU Urban "
            "Acoustic Scenes 2019 development (Zenodo 2589280: audio + metadata), verify each "
            "archive's MD5 against the record, resume interrupted downloads, extract safely and "
            "leave DEST/FSDKaggle2018 and DEST/TAU2019 in the layout the data readers expect. "
            "A second run verifies what is there and downloads nothing."
        ),
    )
    parser.add_argument(
        "--dest",
        default=str(default_dest()),
        help="folder receiving FSDKaggle2018/ and TAU2019/ (default: the paper workspace's "
        "data/sources, which the paper profile reads without overrides)",
    )
    parser.add_argument(
        "--base-url", default=DEFAULT_BASE_URL, help="Zenodo server (default: %(default)s)"
    )
    parser.add_argument("--only", choices=sorted(DATASETS), help="fetch one dataset only")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--keep-archives", action="store_true", help="keep the zip files after extraction"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--retries", type=int, default=3, help="resume attempts per archive within one run"
    )
    parser.set_defaults(handler=_run)
