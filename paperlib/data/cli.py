"""``python -m paperlib data pocket|check|plan|render|features|all``: the data pipeline's command line.

Examples::

    python -m paperlib data all --profile pocket
    python -m paperlib data check --profile paper --exclude-bad
    python -m paperlib data plan --profile paper --set data.fsd_dir=/data/FSDKaggle2018 \\
        --set data.tau_dir=/data/TAU-urban-acoustic-scenes-2019-development
    python -m paperlib data render --profile smoke --set "data.snrs=[0, 20]" --force
    python -m paperlib data all --profile pocket --onsets random   # only the random recipe
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from paperlib.config import load_profile_with_overrides, parse_overrides
from paperlib.data.pipeline import STAGES
from paperlib.paths import ONSET_RECIPES

if TYPE_CHECKING:
    from paperlib.config import Profile
    from paperlib.data.pipeline import DataProducts

COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "pocket": (("pocket",), "synthesise the offline pocket corpus (FSDKaggle2018/TAU2019 layouts)"),
    "check": (
        ("pocket", "check"),
        "read and check every listed source file once; report every problem in one table",
    ),
    "plan": (
        ("pocket", "check", "plan"),
        "write the mixture plan (folds, backgrounds, events, onsets)",
    ),
    "render": (
        ("pocket", "check", "plan", "render"),
        "render the mixtures at every SNR of the profile",
    ),
    "features": (STAGES, "compute the log-mel HDF5 file of every SNR"),
    "all": (STAGES, "run every stage (each skipped when up to date)"),
}

__all__ = ["COMMANDS", "parse_overrides", "register"]


def _report(products: DataProducts, profile: Profile, *, planned: bool) -> None:
    """Print the source check and what the plan means for training (warnings, exclusions)."""
    from paperlib.data.check import format_missing, format_problems, plan_report
    from paperlib.data.pipeline import CHECK_TABLE
    from paperlib.data.plan import make_plan, read_plan

    check = products.check
    if check is None:
        return
    errors, warnings = len(check.errors), len(check.warnings)
    files = len(check.events) + len(check.backgrounds)
    print(
        f"check: {files} listed file(s) ({check.scanned} read now, the others unchanged): "
        f"{errors} error(s), {warnings} warning(s); table: "
        f"{products.plan_path.parent / CHECK_TABLE}"
    )
    if not check.problems.empty:
        print(format_problems(check.problems))
    if products.excluded:
        print(f"excluded ({len(products.excluded)} file(s), recorded in the data manifest):")
        for item in products.excluded:
            print(f"  {item['dataset']} {item['file']}: {item['problems']}")
    d = profile.data
    plan = (
        read_plan(products.plan_path)
        if planned
        else make_plan(
            check.events,
            check.backgrounds,
            mixtures_per_fold=d.mixtures_per_fold,
            seed=d.seed,
            keep_recordings_in_one_fold=d.keep_recordings_in_one_fold,
        )
    )
    report = plan_report(plan, check.backgrounds, profile.grid.folds)
    if not report.missing.empty:
        print("warning: classes the grid's folds cannot train or score:")
        print(format_missing(report.missing))
    print(
        f"recordings: {report.split_recordings} of the {report.recordings} background "
        "recordings used are split across folds"
        + (
            ""
            if d.keep_recordings_in_one_fold
            else " (data.keep_recordings_in_one_fold: true keeps each in one fold)"
        )
    )


def _handler(args: argparse.Namespace) -> int:
    from paperlib.data.pipeline import run_stages

    items = list(args.set or [])
    if args.exclude_bad:
        items.append("data.exclude_bad=true")
    profile = load_profile_with_overrides(args.profile, items)
    stages, _ = COMMANDS[args.data_command]
    forced = (stages[-1],) if args.force else ()
    start = time.perf_counter()
    products = run_stages(
        profile,
        args.workspace,
        stages=tuple(s for s in stages if s not in forced),
        progress=not args.quiet,
        onsets=args.onsets,
    )
    if forced:
        products = run_stages(
            profile,
            args.workspace,
            stages=forced,
            force=True,
            progress=not args.quiet,
            onsets=args.onsets,
        )
    print(
        f"data {args.data_command} ({profile.name}) done in {time.perf_counter() - start:.1f} s; "
        f"ran: {', '.join(products.ran) or 'nothing (all up to date)'}"
    )
    if args.data_command in ("check", "all"):
        _report(products, profile, planned=args.data_command == "all")
    for recipe in (products, *products.study):
        print(f"  plan ({recipe.onsets} onsets): {recipe.plan_path}")
        for snr, path in recipe.feature_files.items():
            if args.data_command in ("features", "all"):
                print(f"  {snr:>3} dB: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its sub-commands to the paperlib command line."""
    parser = subparsers.add_parser(
        "data",
        help="make the paper's mixtures and features (pocket corpus or real DCASE data)",
        description="Data pipeline (paper Section IV-A/C). Each stage runs the ones before it "
        "when they are missing or out of date; finished work is never redone.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="STAGE", required=True)
    for name, (_, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument(
            "--profile", default="pocket", help="profile name (pocket, smoke, paper) or .yaml path"
        )
        p.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a profile value, e.g. data.mixtures_per_fold=10 or "
            "data.fsd_dir=/data/FSDKaggle2018 (repeatable; values are YAML)",
        )
        p.add_argument(
            "--workspace", default=None, help="workspace folder (default: workspace/<profile>)"
        )
        p.add_argument(
            "--force",
            action="store_true",
            help=f"run the {name!r} stage even if the manifest says it is up to date "
            "(check: read every file again; render still keeps complete WAVs)",
        )
        p.add_argument(
            "--exclude-bad",
            action="store_true",
            help="leave out the source files the check finds unusable (recorded, with the "
            "reason, in the data manifest) instead of stopping (= --set data.exclude_bad=true)",
        )
        p.add_argument(
            "--onsets",
            choices=ONSET_RECIPES,
            default=None,
            help="build only this onset recipe, at data.snrs (default: the profile's "
            "data.onsets, then each of data.study_onsets at data.study_snrs)",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(handler=_handler)
